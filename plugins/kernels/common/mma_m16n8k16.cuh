// One m16n8k16 tensor-core product (mma.sync, FP16 operands, FP32 accumulation) on operands that live in
// registers: unlike wmma (mma_tile.cuh), the per-lane fragment layout is fixed by the PTX ISA, so a kernel can build
// its B operand straight from values it computed, without a round trip through shared memory.
//
// Lane l = 4 * g + t (g = l / 4 "group", t = l % 4), halves packed two per 32-bit register (low half first):
//   A (16 x 16, row-major m x k): a[0] = A[g][2t, 2t+1]    a[1] = A[g+8][2t, 2t+1]
//                                 a[2] = A[g][2t+8, 2t+9]  a[3] = A[g+8][2t+8, 2t+9]
//   B (16 x 8,  k x n):           b[0] = B[2t, 2t+1][g]    b[1] = B[2t+8, 2t+9][g]
//   C (16 x 8,  FP32):            c[0], c[1] = C[g][2t, 2t+1]    c[2], c[3] = C[g+8][2t, 2t+1]
//
// Host compilations (tests/plugins/cuda_host_check.cu) have no per-lane call: mma_m16n8k16_warp() takes all 32
// lanes' registers, reassembles the matrices by the layout above and multiplies them, so a CPU replay of a kernel
// checks its fragment bookkeeping too.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "rrsr_math.h"

namespace rrsr {
namespace cuda {

// c += A * B for this lane's fragments (every lane of the warp calls it together). Device code only.
__device__ __forceinline__ void mma_m16n8k16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Host side.
inline float mma_half(uint32_t reg, int hi) {
  return half_bits_to_float(static_cast<uint16_t>(hi ? reg >> 16 : reg & 0xffffu));
}

// The whole warp's c += A * B (c[lane], a[lane], b[lane] as on the device).
inline void mma_m16n8k16_warp(float (&c)[32][4], const uint32_t (&a)[32][4], const uint32_t (&b)[32][2]) {
  float am[16][16], bm[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 2; ++i) {
      am[g][2 * t + i] = mma_half(a[l][0], i);
      am[g + 8][2 * t + i] = mma_half(a[l][1], i);
      am[g][2 * t + 8 + i] = mma_half(a[l][2], i);
      am[g + 8][2 * t + 8 + i] = mma_half(a[l][3], i);
      bm[2 * t + i][g] = mma_half(b[l][0], i);
      bm[2 * t + 8 + i][g] = mma_half(b[l][1], i);
    }
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 4; ++i) {
      const int m = g + (i / 2) * 8, n = 2 * t + i % 2;
      float s = 0.0f;
      for (int k = 0; k < 16; ++k) s += am[m][k] * bm[k][n];
      c[l][i] += s;
    }
  }
}

}  // namespace cuda
}  // namespace rrsr
