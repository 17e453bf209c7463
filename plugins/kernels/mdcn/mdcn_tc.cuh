// Tensor-core MDCN for FP16 features and weights (offsets/mask FP32 or FP16): an implicit GEMM
//   y[row][pix] = bias[row] + sum_k W[row][k] * col[k][pix],  k = channel * taps + tap (the weight layout),
// whose column matrix is sampled straight into shared memory, one 16-channel slice of K at a time
// (K chunk = 16 * taps, a whole number of 16-deep tensor-core steps for any kernel size). Sampling positions and
// bilinear weights are FP32 (rrsr_math.h, as in every other kernel); a sample is rounded to FP16 once, as the
// tensor-core operand; products accumulate in FP32. One bilinear sample per (tap, pixel, offset group) serves all
// the channels of a quad (4 channels) in that group.
//
// Block: BM output channels x kBN = 64 pixels, 8 warps, each warp 32 x (64 / warps along N) = 2 x kFragsN
// accumulator tiles. BM is 64, 128 or 256 (the smallest >= C_out / group, so RRSR's stages sample each column
// chunk exactly once). Shared memory (dynamic): A [BM][16 taps + 8], B [16 taps][kBN + 8] (FP16; +8 halves keep
// rows 16-byte aligned and spread banks) and a 16 x 16 FP32 scratch per warp for the epilogue.
//
// Written as __host__ __device__ phases (load per thread, products per warp, epilogue per lane) sequenced by the
// __global__ kernel, so tests/plugins/cuda_host_check.cu replays the same code on a CPU (mma_tile.cuh emulates
// the tensor-core tiles there).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/conv_tile.cuh"
#include "../common/device_info.cuh"
#include "../common/mma_tile.cuh"
#include "../common/rrsr_math.h"
#include "geometry.cuh"

namespace rrsr {
namespace mdcn {
namespace tc {

using cuda::kMmaTile;
using cuda::MmaAcc;
using cuda::mma_accumulate;
using cuda::mma_store;
using cuda::mma_zero;

constexpr int kChunkCh = 16;  // input channels per K chunk
constexpr int kBN = 64;       // output pixels per block
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kPad = 8;       // halves of padding per shared-memory row
constexpr int kLdb = kBN + kPad;

__host__ __device__ __forceinline__ int tc_min_int(int a, int b) { return a < b ? a : b; }

template <int BM>
struct Tiling {
  static_assert(BM == 64 || BM == 128 || BM == 256, "BM");
  static constexpr int kWarpsM = BM / 32;
  static constexpr int kWarpsN = kWarps / kWarpsM;
  static constexpr int kFragsM = 2;
  static constexpr int kFragsN = kBN / kMmaTile / kWarpsN;
  // resident blocks per SM the registers are capped for (shared memory allows as many on H100/H200 and Orin)
  static constexpr int kMinBlocks = BM == 64 ? 3 : 2;
};

template <typename TO>
struct Problem : Geometry {
  bool weight_vec;  // weight rows may be read 8 halves (16 bytes) at a time
  const __half* __restrict__ x;
  const __half* __restrict__ wt;
  const TO* __restrict__ off;
  const __half* __restrict__ bias;  // may be null
  const TO* __restrict__ mask;      // may be null
  __half* __restrict__ y;

  __host__ __device__ int k_chunk() const { return kChunkCh * taps; }
  __host__ __device__ int lda() const { return k_chunk() + kPad; }
};

struct Coord {
  int n, g;
  int row0;      // first output channel (within the group) of the block
  int64_t pix0;  // first output pixel of the block
};

template <int BM>
__host__ __device__ constexpr size_t smem_bytes_for(int taps) {
  return static_cast<size_t>(BM) * (kChunkCh * taps + kPad) * sizeof(__half) +
         static_cast<size_t>(kChunkCh) * taps * kLdb * sizeof(__half) +
         static_cast<size_t>(kWarps) * kMmaTile * kMmaTile * sizeof(float);
}

// Phase 1a, thread tid: weight rows row0 .. row0 + BM of the chunk starting at channel c0 -> a [BM][lda].
// Global k = c0 * taps + kk is contiguous along a weight row; k >= K (channels past the group) and rows past
// C_out / group read 0.
template <int BM, typename TO>
__host__ __device__ __forceinline__ void load_weights(const Problem<TO>& pr, const Coord& co, int c0, int tid,
                                                      __half* a) {
  const int kc = pr.k_chunk(), lda = pr.lda();
  const int64_t k_total = static_cast<int64_t>(pr.cin_g) * pr.taps;
  const int64_t kbase = static_cast<int64_t>(c0) * pr.taps;
  if (pr.weight_vec) {  // K % 8 == 0 and 16-byte aligned rows: 8 halves per load, all valid or all past K
    const int per_row = kc / 8;
    for (int e = tid; e < BM * per_row; e += kThreads) {
      const int r = e / per_row, kk = (e % per_row) * 8;
      const int row = co.row0 + r;
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (row < pr.cout_g && kbase + kk < k_total)
        v = *reinterpret_cast<const uint4*>(pr.wt + (static_cast<int64_t>(co.g) * pr.cout_g + row) * k_total +
                                            kbase + kk);
      *reinterpret_cast<uint4*>(a + r * lda + kk) = v;
    }
  } else {
    for (int e = tid; e < BM * kc; e += kThreads) {
      const int r = e / kc, kk = e % kc;
      const int row = co.row0 + r;
      a[r * lda + kk] = (row < pr.cout_g && kbase + kk < k_total)
                            ? pr.wt[(static_cast<int64_t>(co.g) * pr.cout_g + row) * k_total + kbase + kk]
                            : __float2half_rn(0.0f);
    }
  }
}

// Phase 1b, thread tid: the sampled columns of channels c0 .. c0 + 16 -> b [16 taps][kLdb], row (ch - c0) * taps +
// tap, column = pixel. Work items are (channel quad, tap, pixel): 4 * taps * 64 of them, 9 per thread for 3x3
// kernels (no idle threads); consecutive threads take consecutive pixels of one tap (coalesced offset/mask reads,
// nearby gathers). An item computes one bilinear sample per offset group it meets (one, when the group size is a
// multiple of 4, as in RRSR) and issues the 16 gathers of its 4 channels together.
constexpr int kQuad = 4;

template <typename TO>
__host__ __device__ __forceinline__ BilinearSample sample_at(const Problem<TO>& pr, const Coord& co, int og, int tap,
                                                             int64_t pix, int ho, int wo) {
  const int64_t hw_out = pr.p_count();
  const int64_t off_base = static_cast<int64_t>(co.n) * 2 * pr.offset_group * pr.taps;
  const float dy = cuda::to_float(pr.off[(off_base + offset_channel(og, tap, pr.taps, 0)) * hw_out + pix]);
  const float dx = cuda::to_float(pr.off[(off_base + offset_channel(og, tap, pr.taps, 1)) * hw_out + pix]);
  const float m = pr.mask ? cuda::to_float(pr.mask[(static_cast<int64_t>(co.n) * pr.offset_group * pr.taps +
                                                    mask_channel(og, tap, pr.taps)) *
                                                       hw_out +
                                                   pix])
                          : 1.0f;
  const float py = sample_position(ho, pr.stride_h, pr.pad_top, tap / pr.kw, pr.dil_h, dy);
  const float px = sample_position(wo, pr.stride_w, pr.pad_left, tap % pr.kw, pr.dil_w, dx);
  return bilinear_sample(py, px, pr.h, pr.w, m);
}

template <typename TO>
__host__ __device__ __forceinline__ void load_columns(const Problem<TO>& pr, const Coord& co, int c0, int tid,
                                                      __half* b) {
  const int64_t hw_out = pr.p_count();
  const int64_t plane_size = static_cast<int64_t>(pr.h) * pr.w;
  const int pairs = pr.taps * kBN;
  for (int e = tid; e < (kChunkCh / kQuad) * pairs; e += kThreads) {
    const int quad = e / pairs, pair = e % pairs;
    const int tap = pair / kBN, p = pair % kBN;
    const int cq = c0 + quad * kQuad;  // first channel (within the group) of the item
    const int64_t pix = co.pix0 + p;
    float v[kQuad] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (pix < hw_out) {
      const int ho = static_cast<int>(pix / pr.w_out), wo = static_cast<int>(pix % pr.w_out);
      const int gch0 = co.g * pr.cin_g + cq;
      const int og0 = gch0 / pr.ch_per_og;
      const BilinearSample s0 = sample_at(pr, co, og0, tap, pix, ho, wo);
      const __half* plane0 = pr.x + (static_cast<int64_t>(co.n) * pr.c + gch0) * plane_size;
      // the quad's channels that exist and share og0: gathered together (independent loads in flight)
      const int n_same = tc_min_int(tc_min_int(kQuad, pr.cin_g - cq), (og0 + 1) * pr.ch_per_og - gch0);
      if (n_same == kQuad) {
RRSR_UNROLL
        for (int q = 0; q < kQuad; ++q) {
          const __half* plane = plane0 + q * plane_size;
          float acc = 0.0f;
RRSR_UNROLL
          for (int k = 0; k < 4; ++k) acc = fmaf(s0.w[k], __half2float(plane[s0.idx[k]]), acc);
          v[q] = acc;
        }
      } else {  // a quad past the group's last channel or across an offset-group boundary
        for (int q = 0; q < kQuad && cq + q < pr.cin_g; ++q) {
          const int og = (gch0 + q) / pr.ch_per_og;
          const BilinearSample s = og == og0 ? s0 : sample_at(pr, co, og, tap, pix, ho, wo);
          const __half* plane = plane0 + q * plane_size;
          float acc = 0.0f;
          for (int k = 0; k < 4; ++k) acc = fmaf(s.w[k], __half2float(plane[s.idx[k]]), acc);
          v[q] = acc;
        }
      }
    }
RRSR_UNROLL
    for (int q = 0; q < kQuad; ++q) b[((quad * kQuad + q) * pr.taps + tap) * kLdb + p] = __float2half_rn(v[q]);
  }
}

// Phase 2, warp wid: acc += a[warp's 32 rows] * b[:, warp's columns] over the chunk.
template <int BM>
__host__ __device__ __forceinline__ void multiply_chunk(const __half* a, int lda, const __half* b, int taps, int wid,
                                                        MmaAcc (&acc)[2][Tiling<BM>::kFragsN]) {
  using Tl = Tiling<BM>;
  const int wm = wid / Tl::kWarpsN, wn = wid % Tl::kWarpsN;
  for (int ks = 0; ks < taps; ++ks) {  // 16 taps deep = taps steps of 16
RRSR_UNROLL
    for (int fm = 0; fm < Tl::kFragsM; ++fm)
RRSR_UNROLL
      for (int fn = 0; fn < Tl::kFragsN; ++fn)
        mma_accumulate<false>(acc[fm][fn], a + (wm * 32 + fm * kMmaTile) * lda + ks * kMmaTile, lda,
                              b + ks * kMmaTile * kLdb + (wn * Tl::kFragsN + fn) * kMmaTile, kLdb);
  }
}

// Phase 3, lane of warp wid: output tile (fm, fn), already stored row-major in the warp's scratch, + bias -> y.
template <int BM, typename TO>
__host__ __device__ __forceinline__ void write_tile(const Problem<TO>& pr, const Coord& co, int wid, int fm, int fn,
                                                    const float* scratch, int lane) {
  using Tl = Tiling<BM>;
  const int wm = wid / Tl::kWarpsN, wn = wid % Tl::kWarpsN;
  const int64_t hw_out = pr.p_count();
  for (int e = lane; e < kMmaTile * kMmaTile; e += 32) {
    const int r = e / kMmaTile, col = e % kMmaTile;
    const int row = co.row0 + wm * 32 + fm * kMmaTile + r;
    const int64_t pix = co.pix0 + (wn * Tl::kFragsN + fn) * kMmaTile + col;
    if (row >= pr.cout_g || pix >= hw_out) continue;
    const int oc = co.g * pr.cout_g + row;
    float v = scratch[e];
    if (pr.bias) v += __half2float(pr.bias[oc]);
    pr.y[(static_cast<int64_t>(co.n) * pr.c_out + oc) * hw_out + pix] = __float2half_rn(v);
  }
}

template <int BM, typename TO>
__global__ void __launch_bounds__(kThreads, Tiling<BM>::kMinBlocks) mdcn_tc_kernel(const Problem<TO> pr) {
  extern __shared__ __align__(128) unsigned char smem[];
  using Tl = Tiling<BM>;
  const int lda = pr.lda();
  __half* a = reinterpret_cast<__half*>(smem);
  __half* b = a + BM * lda;
  float* scratch = reinterpret_cast<float*>(b + pr.k_chunk() * kLdb);
  const int z = static_cast<int>(blockIdx.z);
  const Coord co{z / pr.group, z % pr.group, static_cast<int>(blockIdx.y) * BM,
                 static_cast<int64_t>(blockIdx.x) * kBN};
  const int tid = static_cast<int>(threadIdx.x), wid = tid / 32, lane = tid % 32;
  MmaAcc acc[2][Tl::kFragsN];  // constant indices only (unrolled loops): the tiles must stay in registers
RRSR_UNROLL
  for (int fm = 0; fm < Tl::kFragsM; ++fm)
RRSR_UNROLL
    for (int fn = 0; fn < Tl::kFragsN; ++fn) mma_zero(acc[fm][fn]);
  for (int c0 = 0; c0 < pr.cin_g; c0 += kChunkCh) {
    load_weights<BM>(pr, co, c0, tid, a);
    load_columns(pr, co, c0, tid, b);
    __syncthreads();
    multiply_chunk<BM>(a, lda, b, pr.taps, wid, acc);
    __syncthreads();
  }
  float* mine = scratch + wid * kMmaTile * kMmaTile;
RRSR_UNROLL
  for (int fm = 0; fm < Tl::kFragsM; ++fm)
RRSR_UNROLL
    for (int fn = 0; fn < Tl::kFragsN; ++fn) {
      mma_store(acc[fm][fn], mine, kMmaTile);
      __syncwarp();
      write_tile<BM>(pr, co, wid, fm, fn, mine, lane);
      __syncwarp();
    }
}

// The BM a problem uses: the smallest tile that holds C_out / group (RRSR: 256, 128, 64), at most 256.
inline int pick_bm(int cout_g) { return cout_g <= 64 ? 64 : (cout_g <= 128 ? 128 : 256); }

template <int BM, typename TO>
cudaError_t launch_bm(const Problem<TO>& pr, int batches, cudaStream_t stream) {
  const int64_t gx = (pr.p_count() + kBN - 1) / kBN, gy = (pr.cout_g + BM - 1) / BM;
  if (gx > 0x7fffffff || gy > 65535 || batches > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(batches));
  return cuda::launch_with_smem(mdcn_tc_kernel<BM, TO>, grid, kThreads, smem_bytes_for<BM>(pr.taps), stream, pr);
}

template <typename TO>
cudaError_t launch(const Problem<TO>& pr, int batches, cudaStream_t stream) {
  switch (pick_bm(pr.cout_g)) {
    case 64: return launch_bm<64>(pr, batches, stream);
    case 128: return launch_bm<128>(pr, batches, stream);
    default: return launch_bm<256>(pr, batches, stream);
  }
}

}  // namespace tc
}  // namespace mdcn
}  // namespace rrsr
