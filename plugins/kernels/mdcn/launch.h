// Launchers of the modulated deformable convolution (RrsrModulatedDeformConv, = ONNX DeformConv opset 19).
// Plain pointers, sizes, dtype enums and a void* stream only; hosts (ORT, TensorRT, torch) validate shapes and
// attributes first and translate their types.
//
// Layouts (all NCHW, contiguous):
//   x      [n, c, h, w]                                   type t
//   weight [c_out, c / group, kh, kw]                     type t
//   offset [n, 2 * offset_group * kh * kw, h_out, w_out]  type t_offset; (dy, dx) per group and tap
//   bias   [c_out] or nullptr                             type t
//   mask   [n, offset_group * kh * kw, h_out, w_out] or nullptr   type t_offset
//   y      [n, c_out, h_out, w_out]                       type t
// Coordinates, bilinear weights and accumulation are FP32 for every type combination.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/launch_common.h"

namespace rrsr {
namespace mdcn {

struct Shape {
  int64_t n, c, h, w;          // input
  int64_t c_out, kh, kw;       // weight
  int64_t h_out, w_out;        // output (conv_out_size of the above and the attributes)
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;   // bottom/right padding only shows in h_out/w_out
  int64_t dil_h, dil_w;
  int64_t group, offset_group;
};

// Checks positivity, divisibility and the h_out/w_out relation; returns kOk or kErrInvalidArgument. Hosts give
// users a precise message first; this is the kernels' own guard against a host that forgot. n == 0 is valid.
inline int check_shape(const Shape& s) {
  const bool ok = s.n >= 0 && s.c >= 1 && s.h >= 1 && s.w >= 1 && s.c_out >= 1 && s.kh >= 1 && s.kw >= 1 &&
                  s.stride_h >= 1 && s.stride_w >= 1 && s.pad_top >= 0 && s.pad_left >= 0 && s.dil_h >= 1 &&
                  s.dil_w >= 1 && s.group >= 1 && s.offset_group >= 1 && s.c % s.group == 0 &&
                  s.c_out % s.group == 0 && s.c % s.offset_group == 0 && s.h_out >= 1 && s.w_out >= 1 &&
                  // the sampling math indexes planes with int
                  s.h * s.w < (int64_t{1} << 31) && s.h_out * s.w_out < (int64_t{1} << 31);
  return ok ? kOk : kErrInvalidArgument;
}

// CPU kernel; t, t_offset in {kFloat32, kFloat16}. `par` may be nullptr (std::thread).
int forward_cpu(const Shape& s, DType t, DType t_offset, const void* x, const void* weight, const void* offset,
                const void* bias, const void* mask, void* y, const CpuParallelFor* par);

// Kernel variants a host can offer to be timed on the target GPU (TensorRT custom tactics: the builder times each
// at the profile's kOPT shape and keeps the fastest in the engine). A variant applies where the problem allows it
// and is the kernel's own choice elsewhere, so each one runs every shape the default runs, with the same
// workspace. The values are the tactic numbers, so they must not change.
enum class Variant : int {
  kDefault = 0,
  kThreeStage = 1,       // the octet kernel's three-stage K pipeline, on the tile and splits it picks
  kRegisterB = 2,        // the register-B variant (64 x 128 pixels) where the kernel picks a 64-row tile
  kTwoBlocksPerSm = 3,   // its 256 x 64 tile with registers capped for two blocks per SM, where it picks that tile
                         // (its own choice there since the H200 measurements: no longer offered as a tactic)
  kColumnSlab = 4,       // the columns sampled first into the workspace, then a plain GEMM, a band of pixels at a
                         // time (at most 32 MiB of columns: cuda_workspace_bytes with this variant)
};

// Whether variant v has passed the GPU tests (tests/gpu through scripts/gpu_check.sh) on real hardware. A variant
// that has only run in the CPU replays could still be wrong on a GPU (a race, a fragment layout), and a tactic is
// picked for speed alone, so hosts offer unverified ones only when asked to.
bool variant_verified(Variant v);

// The variants other than kDefault that can run differently from it for problems with these channels, groups
// and types (any batch and spatial size) on the CUDA path, GPU-verified ones only unless `unverified_too`; written
// to `out` (at most `capacity`), count returned. None unless the octet kernel takes such problems (FP16 features,
// channel multiples of 8 per group and offset group).
int cuda_variants(const Shape& s, DType t, DType t_offset, Variant* out, int capacity, bool unverified_too = false);

// Tuning hook for benchmarks and tests: the tile (bm output channels x bn pixels, from 64x64, 64x128, 128x64,
// 128x128, 256x64) and the number of K splits the vec8 tensor-core kernel runs instead of its own choice; regb = 1
// runs its register-B variant (mdcn_vec8_regb.cuh; tiles 64x128, 64x256), stages = 3 the shared-memory kernel's
// three-stage K pipeline (gathers a whole iteration ahead; pipelined_chunks), min_blocks = 2 registers capped for two
// blocks per SM on the two-stage 256x64 tile (the kernel's own choice there; a pinned tile or pipeline depth runs
// with its own register rule unless min_blocks says otherwise). Zero fields keep its choice; ignored by the other
// kernels. `variant` is applied first, where it applies (see Variant); the fields above then override it and fail
// where the kernel lacks what they name. `band`: the column-slab variant's pixels per band, when fewer than its slab
// holds (a multiple of 256 unless it covers the plane).
struct TileChoice {
  int bm = 0, bn = 0, splits = 0, regb = 0, stages = 0, min_blocks = 0;
  Variant variant = Variant::kDefault;
  int64_t band = 0;
};

// Device scratch forward_cuda(s, t, t_offset, ..., algo) needs, in bytes (0: none). The vec8 tensor-core kernel
// takes a channel-octet copy of x plus the re-laid weights (n*c*h*w + c_out*c/group*kh*kw halves) and, for problems too
// small to fill the GPU, FP32 partial sums of up to 4 K splits (4*n*c_out*h_out*w_out floats). Sizes only grow
// with the shape, except the partial sums: a host that sizes the scratch for its largest shape still runs smaller
// ones (unsplit where the partial sums do not fit).
// `variant` kColumnSlab adds the column slab, at most 32 MiB or one 256-pixel band (its variant runs only with that
// room; the others need nothing extra).
size_t cuda_workspace_bytes(const Shape& s, DType t, DType t_offset, Algo algo = Algo::kAuto,
                            Variant variant = Variant::kDefault);
// Scratch enough for every shape from `smallest` to `largest` (same channels and attributes; e.g. a TensorRT
// profile's min and max): cuda_workspace_bytes(s) <= this for each s between (with the same variant). Hosts that
// allocate once for a range of shapes ask this, then pass cuda_workspace_bytes(s) of the shape at hand.
size_t cuda_workspace_bytes(const Shape& smallest, const Shape& largest, DType t, DType t_offset,
                            Algo algo = Algo::kAuto, Variant variant = Variant::kDefault);

// CUDA kernels (built only with RRSR_WITH_CUDA); pointers are device pointers, stream is a cudaStream_t; workspace
// holds workspace_bytes (at least cuda_workspace_bytes() of the same arguments; may be null when that is 0).
// Returns kOk, a negative Status (kErrWorkspaceTooSmall among them) or a cudaError_t from the launch.
// algo:
//   kSimt        FP32 FMA for every type combination.
//   kTensorCore  FP16 features only: samples rounded to FP16 as tensor-core operands; FP32 coordinates, bilinear
//                weights and accumulation. Channel counts that are multiples of 8 per group and per offset group
//                (RRSR's) run the vec8 kernel (mdcn_vec8.cuh: 16-byte gathers, needs the workspace); others the
//                NCHW kernel (mdcn_tc.cuh, when its shared memory fits the device: always for 3x3 kernels).
//   kAuto        kTensorCore for FP16 features where one of its kernels takes the problem, else kSimt.
int forward_cuda(const Shape& s, DType t, DType t_offset, const void* x, const void* weight, const void* offset,
                 const void* bias, const void* mask, void* y, void* workspace, size_t workspace_bytes, void* stream,
                 Algo algo = Algo::kAuto, const TileChoice* tile = nullptr);

}  // namespace mdcn
}  // namespace rrsr
