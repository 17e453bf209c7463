// base[i] of read-only global data for a 32-bit unsigned index, its address one wide multiply-add
// (IMAD.WIDE.U32). Left to itself the compiler keeps a 64-bit running index and spends four integer instructions
// per address on it; in the MDCN gather loop, where every sample reads four corners and three offset values, those
// were a third of the instructions. Host compilations (the CPU replays in tests/plugins) index plainly.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace rrsr {
namespace cuda {

template <typename T>
__host__ __device__ __forceinline__ const T* element_at(const T* base, unsigned i) {
#if defined(__CUDA_ARCH__)
  const T* p;
  asm("mad.wide.u32 %0, %1, %2, %3;" : "=l"(p) : "r"(i), "n"(static_cast<unsigned>(sizeof(T))), "l"(base));
  return p;
#else
  return base + i;
#endif
}

// Read through the non-coherent (read-only) path: only for data no thread of the kernel writes. The address from
// element_at() is generic to the compiler, so without this the load would be a generic LD.
template <typename T>
__host__ __device__ __forceinline__ T load_ro(const T* base, unsigned i) {
#if defined(__CUDA_ARCH__)
  return __ldg(element_at(base, i));
#else
  return base[i];
#endif
}

// *p through the same path (p from element_at(); a constant element offset from it folds into the load).
template <typename T>
__host__ __device__ __forceinline__ T load_ro(const T* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

}  // namespace cuda
}  // namespace rrsr
