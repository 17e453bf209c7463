// RrsrPatchMatch's CUDA pieces every kernel family uses (included by simt.cuh, diag.cuh): element loads, the
// per-pixel normalisation divisor, the reference patch denominators and their kernel, grid sizing.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>

#include <cstdint>

#include "launch.h"

#if defined(__CUDA_ARCH__)
#define RRSR_PM_UNROLL _Pragma("unroll")
#else
#define RRSR_PM_UNROLL
#endif

namespace rrsr {
namespace patch_match {
namespace {

__host__ __device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__host__ __device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }

// The normalisation divisor max(||x||, 1e-12) of the pixel whose first channel is x[base] (channel stride hw).
template <typename T>
__host__ __device__ __forceinline__ float pixel_divisor(const T* x, int64_t base, int c, int64_t hw) {
  float ss = 0.0f;
  for (int ch = 0; ch < c; ++ch) {
    const float v = load(x, base + ch * hw);
    ss += v * v;
  }
  return fmaxf(sqrtf(ss), kNormEps);
}

// ||P_ref(r)|| + 1e-5 of reference patch i (of [n][hrp][wrp]) from the pixel squared norms sq [n][hr][wr].
__host__ __device__ __forceinline__ float patch_den(const float* sq, int64_t i, int hr, int wr, int k, int hrp,
                                                    int wrp) {
  const int64_t per = static_cast<int64_t>(hrp) * wrp;
  const int64_t b = i / per;
  const int r = static_cast<int>(i % per), ry = r / wrp, rx = r % wrp;
  const float* plane = sq + b * hr * wr;
  float acc = 0.0f;
  for (int dy = 0; dy < k; ++dy)
    for (int dx = 0; dx < k; ++dx) acc += plane[(ry + dy) * wr + rx + dx];
  return sqrtf(acc) + kPatchEps;
}

__global__ void patch_den_kernel(const float* __restrict__ sq, int64_t count, int hr, int wr, int k, int hrp, int wrp,
                                 float* __restrict__ den) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  den[i] = patch_den(sq, i, hr, wr, k, hrp, wrp);
}

inline unsigned blocks_for(int64_t count, int threads) { return static_cast<unsigned>((count + threads - 1) / threads); }

}  // namespace
}  // namespace patch_match
}  // namespace rrsr
