// Small CPU helpers shared by the *_cpu.cpp kernels: typed loads/stores and the tile GEMM that turns a block of
// sampled columns into output pixels. Plain C++ (CPU only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rrsr_math.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && !defined(__AVX2__)
#define RRSR_CPU_X86_DISPATCH 1
#else
#define RRSR_CPU_X86_DISPATCH 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RRSR_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define RRSR_ALWAYS_INLINE inline
#endif

namespace rrsr {
namespace cpu {

// Element access with FP32 compute: float is read as is, FP16 arrives as raw uint16_t bits.
inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const uint16_t* p, int64_t i) { return half_bits_to_float(p[i]); }
inline void store(float* p, int64_t i, float v) { p[i] = v; }
inline void store(uint16_t* p, int64_t i, float v) { p[i] = float_to_half_bits(v); }

// A whole tensor as FP32: the pointer itself for float, a converted copy (kept in `keep`) for FP16.
inline const float* as_float(const float* p, int64_t, std::vector<float>&) { return p; }
inline const float* as_float(const uint16_t* p, int64_t count, std::vector<float>& keep) {
  keep.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) keep[static_cast<size_t>(i)] = half_bits_to_float(p[i]);
  return keep.data();
}

// acc[r][0..P) = sum_k w[r * ldw + k] * col[k * P + 0..P) for R rows, written with GCC/Clang vector extensions so
// the register blocking is explicit: per chunk of 2 vectors of pixels, R x 2 vector accumulators stay in registers
// while k streams through, and each column vector loaded feeds R multiply-adds. The summation order over k is the
// same for every vector width, so the SSE2 and AVX2 builds give the same results.
#if defined(__GNUC__) || defined(__clang__)
template <int L>
struct VecOf {
  typedef float type __attribute__((vector_size(L * sizeof(float))));
};

template <int R, int P, int L>
RRSR_ALWAYS_INLINE void gemm_rows_body(const float* w, int64_t ldw, const float* col, int64_t k_count,
                                       float (*acc)[P]) {
  typedef typename VecOf<L>::type V;
  static_assert(P % (2 * L) == 0, "the tile must hold whole pixel chunks");
  for (int p0 = 0; p0 < P; p0 += 2 * L) {
    V a[R][2];
    for (int r = 0; r < R; ++r) a[r][0] = a[r][1] = V{};
    for (int64_t k = 0; k < k_count; ++k) {
      V c0, c1;
      std::memcpy(&c0, col + k * P + p0, sizeof(V));  // unaligned vector loads
      std::memcpy(&c1, col + k * P + p0 + L, sizeof(V));
      for (int r = 0; r < R; ++r) {
        const V wr = V{} + w[r * ldw + k];  // broadcast
        a[r][0] += wr * c0;
        a[r][1] += wr * c1;
      }
    }
    for (int r = 0; r < R; ++r) {
      std::memcpy(&acc[r][p0], &a[r][0], sizeof(V));
      std::memcpy(&acc[r][p0 + L], &a[r][1], sizeof(V));
    }
  }
}
#else
template <int R, int P, int L>
inline void gemm_rows_body(const float* w, int64_t ldw, const float* col, int64_t k_count, float (*acc)[P]) {
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p) acc[r][p] = 0.0f;
  for (int64_t k = 0; k < k_count; ++k)
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < P; ++p) acc[r][p] += w[r * ldw + k] * col[k * P + p];
}
#endif

template <int R, int P>
void gemm_rows_generic(const float* w, int64_t ldw, const float* col, int64_t k_count, float (*acc)[P]) {
  gemm_rows_body<R, P, 4>(w, ldw, col, k_count, acc);  // SSE2: 4 x 2 accumulators of 4 lanes
}

#if RRSR_CPU_X86_DISPATCH
// The same loop with 8-lane vectors for AVX2 machines (about 2x on the GEMM); chosen at run time, so the library
// still runs on any x86-64. Only this function carries the target attribute: no AVX2 code can leak into shared
// inline symbols that the generic path might call. No FMA on purpose: separate multiply and add round exactly like
// the SSE2 path, so results are bitwise the same on every x86-64 machine.
template <int R, int P>
__attribute__((target("avx2"))) void gemm_rows_avx2(const float* w, int64_t ldw, const float* col, int64_t k_count,
                                                    float (*acc)[P]) {
  gemm_rows_body<R, P, 8>(w, ldw, col, k_count, acc);
}

// RRSR_CPU_NO_AVX2=1 forces the SSE2 path (tests compare both paths on one machine).
inline bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") &&
                          !(std::getenv("RRSR_CPU_NO_AVX2") && std::getenv("RRSR_CPU_NO_AVX2")[0] == '1');
  return yes;
}
#endif

template <int R, int P>
inline void gemm_rows(const float* w, int64_t ldw, const float* col, int64_t k_count, float (*acc)[P]) {
#if RRSR_CPU_X86_DISPATCH
  if (cpu_has_avx2()) return gemm_rows_avx2<R, P>(w, ldw, col, k_count, acc);
#endif
  gemm_rows_generic<R, P>(w, ldw, col, k_count, acc);
}

// For each of m output rows: out(row, acc_row) gets the P accumulated values of w[row] . col.
// Rows go four at a time so each column value loaded feeds four multiply-adds.
template <int P, class Out>
inline void gemm_tile(const float* w, int64_t ldw, const float* col, int64_t m, int64_t k_count, Out&& out) {
  float acc[4][P];
  int64_t row = 0;
  for (; row + 4 <= m; row += 4) {
    gemm_rows<4, P>(w + row * ldw, ldw, col, k_count, acc);
    for (int r = 0; r < 4; ++r) out(row + r, acc[r]);
  }
  for (; row < m; ++row) {
    gemm_rows<1, P>(w + row * ldw, ldw, col, k_count, acc);
    out(row, acc[0]);
  }
}

}  // namespace cpu
}  // namespace rrsr
