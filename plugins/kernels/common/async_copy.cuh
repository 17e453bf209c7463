// 16-byte global -> shared copies the SM performs asynchronously (cp.async, sm_80+), so a block can fetch the next
// tile while it computes on the current one. Host compilations (the CPU replays in tests/plugins) copy at once,
// which is what the device code sees after cp_async_wait_all() + __syncthreads().
#pragma once

#include <cuda_runtime.h>

#include <cstring>

namespace rrsr {
namespace cuda {

// Copies 16 bytes from src (16-byte aligned) to dst in shared memory, or zero-fills dst when !valid (src is then
// not read but must still be a valid address).
__host__ __device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__)
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes) : "memory");
#else
  if (valid)
    std::memcpy(dst, src, 16);
  else
    std::memset(dst, 0, 16);
#endif
}

// Closes the group of copies issued since the last commit.
__host__ __device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits for all of this thread's copies; a __syncthreads() after it makes every thread's copies visible.
__host__ __device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

}  // namespace cuda
}  // namespace rrsr
