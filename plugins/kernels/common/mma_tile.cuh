// Warp-level tensor-core tiles: 16x16x16, FP16 operands from shared memory, FP32 accumulation in registers.
//
// On the device these are nvcuda::wmma calls (every lane of the warp must make them together). In host
// compilations (tests/plugins/cuda_host_check.cu) the same functions are plain loops over a full 16x16 array, and
// one call stands for the whole warp -- so a kernel written against this header can be stepped through on a CPU
// phase by phase (threads for the loads, warps for the products), as the GPU would run it.
//
// Operand rules (wmma's): pointers 32-byte aligned; leading dimensions a multiple of 8 (__half) / 4 (float).
#pragma once

#include <cuda_fp16.h>

#include <type_traits>

#if defined(__CUDA_ARCH__)
#include <mma.h>
#endif

namespace rrsr {
namespace cuda {

constexpr int kMmaTile = 16;  // M = N = K of one tensor-core tile

// One warp's 16x16 FP32 accumulator.
struct MmaAcc {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> f;
#else
  float v[16][16];
#endif
};

__host__ __device__ __forceinline__ void mma_zero(MmaAcc& c) {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::fill_fragment(c.f, 0.0f);
#else
  for (auto& row : c.v)
    for (float& x : row) x = 0.0f;
#endif
}

// Operand fragments, loaded once and reused across several products (a warp's A tile against each of its B
// tiles). Layouts as in mma_accumulate below.
struct MmaFragA {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major> f;
#else
  __half v[16][16];  // (m, k)
#endif
};

template <bool kBColMajor>
struct MmaFragB {
#if defined(__CUDA_ARCH__)
  using Layout = typename std::conditional<kBColMajor, nvcuda::wmma::col_major, nvcuda::wmma::row_major>::type;
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __half, Layout> f;
#else
  __half v[16][16];  // (k, n)
#endif
};

__host__ __device__ __forceinline__ void mma_load_a(MmaFragA& fa, const __half* a, int lda) {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::load_matrix_sync(fa.f, a, static_cast<unsigned>(lda));
#else
  for (int m = 0; m < 16; ++m)
    for (int k = 0; k < 16; ++k) fa.v[m][k] = a[m * lda + k];
#endif
}

template <bool kBColMajor>
__host__ __device__ __forceinline__ void mma_load_b(MmaFragB<kBColMajor>& fb, const __half* b, int ldb) {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::load_matrix_sync(fb.f, b, static_cast<unsigned>(ldb));
#else
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 16; ++n) fb.v[k][n] = kBColMajor ? b[n * ldb + k] : b[k * ldb + n];
#endif
}

// c += a * b
template <bool kBColMajor>
__host__ __device__ __forceinline__ void mma_run(MmaAcc& c, const MmaFragA& fa, const MmaFragB<kBColMajor>& fb) {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::mma_sync(c.f, fa.f, fb.f, c.f);
#else
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      float s = 0.0f;
      for (int k = 0; k < 16; ++k) s += __half2float(fa.v[m][k]) * __half2float(fb.v[k][n]);
      c.v[m][n] += s;
    }
#endif
}

// c += A * B with A 16x16 (M x K) row-major at a (stride lda) and B 16x16 (K x N) at b: row-major (element (k, n)
// at b[k * ldb + n]) or, with kBColMajor, column-major (element (k, n) at b[n * ldb + k]). One load of each operand:
// for operands used once; load fragments (above) to reuse one against several tiles.
template <bool kBColMajor>
__host__ __device__ __forceinline__ void mma_accumulate(MmaAcc& c, const __half* a, int lda, const __half* b,
                                                        int ldb) {
  MmaFragA fa;
  MmaFragB<kBColMajor> fb;
  mma_load_a(fa, a, lda);
  mma_load_b<kBColMajor>(fb, b, ldb);
  mma_run<kBColMajor>(c, fa, fb);
}

// Row-major store of the accumulator to out (stride ldo floats).
__host__ __device__ __forceinline__ void mma_store(const MmaAcc& c, float* out, int ldo) {
#if defined(__CUDA_ARCH__)
  nvcuda::wmma::store_matrix_sync(out, c.f, static_cast<unsigned>(ldo), nvcuda::wmma::mem_row_major);
#else
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) out[m * ldo + n] = c.v[m][n];
#endif
}

}  // namespace cuda
}  // namespace rrsr
