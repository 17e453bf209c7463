// CUDA building blocks shared by the .cu kernels: FP32 <-> storage conversions and one tiled "implicit GEMM"
// convolution kernel whose column (B) operand is produced on the fly by a problem-specific sampler.
//
// out[z][row][pix] = sum_k A(z, row, k) * B(z, k, pix), with A the (mixed) weights and B the sampled input columns.
// A block computes a kBM x kBN output tile, stepping over k in chunks of kBK: it stages an A chunk and a freshly
// sampled B chunk in shared memory (FP32), then every thread accumulates a 4 x 4 sub-tile in registers. The full
// column matrix never exists; its tile is rebuilt per block (gridDim.y blocks share a pixel tile; C_out <= 64 means
// no re-sampling at all, which covers RRSR's 64-channel stages).
//
// This is the correct-first version: FP32 FMA on CUDA cores. A tensor-core (mma/wgmma, FP16 in, FP32 accumulate)
// mainloop can replace compute_tile() without touching the samplers.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "rrsr_math.h"

namespace rrsr {
namespace cuda {

// __host__ too, so the samplers can be checked on a machine without a GPU (tests/plugins/cuda_host_check.cu)
__host__ __device__ __forceinline__ float to_float(float v) { return v; }
__host__ __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T>
__host__ __device__ __forceinline__ T from_float(float v);
template <>
__host__ __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__host__ __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

constexpr int kBM = 64;       // output rows (channels) per block
constexpr int kBN = 64;       // output pixels per block
constexpr int kBK = 16;       // reduction chunk
constexpr int kThreads = 256; // 16 x 16 threads, 4 x 4 outputs each

// Problem interface (__host__ __device__, passed by value as a kernel argument):
//   int64_t k_count() const;  int64_t m_count() const;  int64_t p_count() const;
//   float weight(int z, int64_t row, int64_t k) const;   // A
//   float column(int z, int64_t k, int64_t pix) const;   // B (sampled input)
//   void store(int z, int64_t row, int64_t pix, float acc) const;
// grid = (ceil(p_count / kBN), ceil(m_count / kBM), batches z)
// The kernel body in three phases, each a __host__ __device__ function of one thread's index, so that
// tests/plugins/cuda_host_check.cu can run the same code on the CPU (one loop over threads per phase stands in for
// the __syncthreads() between phases).
struct TileSmem {
  // +1 column of padding: the A stores below walk k across a warp, which would otherwise hit one bank 16 times.
  float a[kBK][kBM + 1];
  float b[kBK][kBN];
};

struct TileCoord {
  int z;
  int64_t row0, pix0;
};

// Phase 1: thread `tid` stages its share of the A (weights) and B (sampled columns) chunks starting at k0.
template <class Problem>
__host__ __device__ __forceinline__ void tile_load(const Problem& pr, const TileCoord& tc, int64_t k0, int tid,
                                                   TileSmem& sm) {
  const int64_t k_count = pr.k_count(), m_count = pr.m_count(), p_count = pr.p_count();
RRSR_UNROLL
  for (int i = 0; i < (kBM * kBK) / kThreads; ++i) {
    // consecutive threads read consecutive k of one weight row: coalesced global loads
    const int e = tid + i * kThreads;
    const int kk = e % kBK, rr = e / kBK;
    const int64_t row = tc.row0 + rr, k = k0 + kk;
    sm.a[kk][rr] = (row < m_count && k < k_count) ? pr.weight(tc.z, row, k) : 0.0f;
  }
RRSR_UNROLL
  for (int i = 0; i < (kBN * kBK) / kThreads; ++i) {
    // consecutive threads sample consecutive output pixels: coalesced offset/mask loads, nearby gathers
    const int e = tid + i * kThreads;
    const int pp = e % kBN, kk = e / kBN;
    const int64_t pix = tc.pix0 + pp, k = k0 + kk;
    sm.b[kk][pp] = (pix < p_count && k < k_count) ? pr.column(tc.z, k, pix) : 0.0f;
  }
}

// Phase 2: thread (tx, ty) accumulates rows ty + 16 i and pixels tx + 16 j of the staged chunk.
__host__ __device__ __forceinline__ void tile_accumulate(const TileSmem& sm, int tid, float (&acc)[4][4]) {
  const int tx = tid % 16, ty = tid / 16;
RRSR_UNROLL
  for (int kk = 0; kk < kBK; ++kk) {
    float a[4], b[4];
RRSR_UNROLL
    for (int i = 0; i < 4; ++i) a[i] = sm.a[kk][ty + 16 * i];
RRSR_UNROLL
    for (int j = 0; j < 4; ++j) b[j] = sm.b[kk][tx + 16 * j];
RRSR_UNROLL
    for (int i = 0; i < 4; ++i)
RRSR_UNROLL
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// Phase 3: thread (tx, ty) stores its 4 x 4 outputs through the problem's epilogue.
template <class Problem>
__host__ __device__ __forceinline__ void tile_store(const Problem& pr, const TileCoord& tc, int tid,
                                                    const float (&acc)[4][4]) {
  const int tx = tid % 16, ty = tid / 16;
RRSR_UNROLL
  for (int i = 0; i < 4; ++i) {
    const int64_t row = tc.row0 + ty + 16 * i;
    if (row >= pr.m_count()) continue;
RRSR_UNROLL
    for (int j = 0; j < 4; ++j) {
      const int64_t pix = tc.pix0 + tx + 16 * j;
      if (pix < pr.p_count()) pr.store(tc.z, row, pix, acc[i][j]);
    }
  }
}

template <class Problem>
__global__ void __launch_bounds__(kThreads) tiled_conv_kernel(const Problem pr) {
  __shared__ TileSmem sm;
  const TileCoord tc{static_cast<int>(blockIdx.z), static_cast<int64_t>(blockIdx.y) * kBM,
                     static_cast<int64_t>(blockIdx.x) * kBN};
  const int tid = static_cast<int>(threadIdx.x);
  float acc[4][4];
RRSR_UNROLL
  for (int i = 0; i < 4; ++i)
RRSR_UNROLL
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  for (int64_t k0 = 0; k0 < pr.k_count(); k0 += kBK) {
    tile_load(pr, tc, k0, tid, sm);
    __syncthreads();
    tile_accumulate(sm, tid, acc);
    __syncthreads();
  }
  tile_store(pr, tc, tid, acc);
}

template <class Problem>
cudaError_t launch_tiled_conv(const Problem& pr, int batches, cudaStream_t stream) {
  const int64_t gx = (pr.p_count() + kBN - 1) / kBN;
  const int64_t gy = (pr.m_count() + kBM - 1) / kBM;
  if (gx < 1 || gy < 1 || batches < 1) return cudaSuccess;
  if (gx > 0x7fffffff || gy > 65535 || batches > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(batches));
  tiled_conv_kernel<Problem><<<grid, kThreads, 0, stream>>>(pr);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace rrsr
