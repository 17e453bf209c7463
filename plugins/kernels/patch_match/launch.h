// Launchers of RRSR's dense top-1 patch matching (RrsrPatchMatch). Plain pointers, sizes, dtype enums and a void*
// stream only; hosts validate shapes and attributes first.
//
// f = x / max(||x||, 1e-12) per pixel over channels (both maps); P(q) = the flattened C*k*k patch of f at q;
// score(q, r) = <P_in(q), P_ref(r)> / (||P_ref(r)|| + 1e-5); index[q] = first (lowest r) maximum, score[q] = its
// score. Patch grids are row-major: q = qy * (w - k + 1) + qx, r = ry * (wr - k + 1) + rx.
//
// Layouts (NCHW, contiguous):
//   f_in  [n, c, h, w]                   type t (kFloat32 / kFloat16)
//   f_ref [n, c, hr, wr]                 type t
//   index [n, h - k + 1, w - k + 1]      int32
//   score [n, h - k + 1, w - k + 1]      float32
// Normalisation, accumulation and scores are FP32 whatever t is. The score matrix is never materialised.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/launch_common.h"

namespace rrsr {
namespace patch_match {

constexpr float kNormEps = 1e-12f;   // per-pixel normalisation: x / max(||x||, kNormEps)
constexpr float kPatchEps = 1e-5f;   // score denominator: ||P_ref|| + kPatchEps

struct Shape {
  int64_t n, c, h, w;  // input features
  int64_t hr, wr;      // reference features (same n, c)
  int64_t k;           // patch_size
  int64_t hp() const { return h - k + 1; }
  int64_t wp() const { return w - k + 1; }
  int64_t hrp() const { return hr - k + 1; }
  int64_t wrp() const { return wr - k + 1; }
};

// The kernels' own guard (hosts give users a precise message first). n == 0 is valid. Indices are int32, so the
// reference patch grid must stay below 2^31 entries.
inline int check_shape(const Shape& s) {
  const bool ok = s.n >= 0 && s.c >= 1 && s.k >= 1 && s.h >= s.k && s.w >= s.k && s.hr >= s.k && s.wr >= s.k &&
                  s.h * s.w < (int64_t{1} << 31) && s.hr * s.wr < (int64_t{1} << 31) &&
                  s.c * s.h * s.w < (int64_t{1} << 40) && s.c * s.hr * s.wr < (int64_t{1} << 40);
  return ok ? kOk : kErrInvalidArgument;
}

// CPU kernel; t in {kFloat32, kFloat16}. `par` may be nullptr (std::thread). Deterministic for any thread count.
int forward_cpu(const Shape& s, DType t, const void* f_in, const void* f_ref, int32_t* index, float* score,
                const CpuParallelFor* par);

// Device scratch the CUDA kernels need, in bytes: enough for whichever algorithm forward_cuda runs with kAuto (the
// maximum of the SIMT path's FP32 normalised maps and the tensor-core path's FP16 NHWC maps plus per-split partial
// results; an explicit kSimtDiagonal needs cuda_workspace_bytes(s, t, kSimtDiagonal)).
size_t cuda_workspace_bytes(const Shape& s);
// The same for the algorithm forward_cuda(s, t, ..., algo) runs (kAuto resolved as there); a host that knows the
// input type passes it and allocates only what that kernel uses (tensor core: about half of SIMT's).
size_t cuda_workspace_bytes(const Shape& s, DType t, Algo algo);

// CUDA kernels (built only with RRSR_WITH_CUDA). Device pointers; stream is a cudaStream_t. Returns kOk, a negative
// Status or a cudaError_t from the launch.
//   Algo::kSimt        exact FP32 arithmetic (CUDA cores) for every t.
//   Algo::kTensorCore  the normalised features are rounded to FP16 and correlated on tensor cores with FP32
//                      accumulation (per-pixel correlation tiles summed along patch diagonals), so the argmax sees
//                      FP16 rounding (near ties, score gaps below ~1e-3, may pick another index); the reported score
//                      of the chosen index is then recomputed in exact FP32, as kSimt computes it. Any t; k <= 3
//                      only (kErrUnsupportedDType otherwise, and for grids the kernel cannot cover).
//   Algo::kSimtDiagonal FP32 normalised features correlated per pixel pair with FP32 FMAs in 64 x 64 tiles and
//                      summed along patch diagonals (the tensor-core path's blocks and scans): 9x fewer
//                      multiply-adds than kSimt at k = 3; another summation order, so only float-rounding ties
//                      (score gaps ~1e-6) may pick another index; the score is recomputed as kSimt computes it. Any
//                      t; k <= 3 only.
//   Algo::kTensorCoreWide kTensorCore with 64 x 128 correlation tiles (v3, tc_wide.cuh: mma.sync fragments, half
//                      the items of v2's 64 x 64); the same sums in the same order, so the same indices and scores.
//                      Needs ~208 KB of shared memory per block: where the device has less (Orin), v2 runs.
//   Algo::kAuto        kTensorCore when t == kFloat16 and k <= 3 (and the sizes are supported; kTensorCoreWide once
//                      it has passed the GPU tests and the benchmark), else kSimtDiagonal (FP32 inputs: near-exact),
//                      or kSimt where the diagonal path does not apply.
int forward_cuda(const Shape& s, DType t, const void* f_in, const void* f_ref, int32_t* index, float* score,
                 void* workspace, size_t workspace_bytes, void* stream, Algo algo = Algo::kAuto);

}  // namespace patch_match
}  // namespace rrsr
