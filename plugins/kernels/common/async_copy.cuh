// 16-byte global -> shared copies the SM performs asynchronously (cp.async, sm_80+), so a block can fetch the next
// tile while it computes on the current one. Host compilations (the CPU replays in tests/plugins) copy at once,
// which is what the device code sees after its wait + __syncthreads(); a replay that checks its wait discipline
// holds the copies back instead (host::DeferCopies), so that reading a buffer before its wait reads stale data.
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <deque>
#include <utility>
#include <vector>

namespace rrsr {
namespace cuda {

namespace host {  // host-only: the CPU replays' model of the copies
// The copies issued while a DeferCopies is alive, in commit groups as on the GPU. The source is read at issue (the
// kernels copy read-only data), the destination written when a wait releases the group.
struct PendingCopies {
  struct Copy {
    void* dst;
    unsigned char bytes[16];
  };
  bool defer = false;
  std::vector<Copy> open;                // issued since the last commit
  std::deque<std::vector<Copy>> groups;  // committed, oldest first
  static PendingCopies& instance() {
    static PendingCopies p;
    return p;
  }
  static void land(const std::vector<Copy>& g) {
    for (const Copy& c : g) std::memcpy(c.dst, c.bytes, 16);
  }
  void release_all_but(size_t pending) {
    while (groups.size() > pending) {
      land(groups.front());
      groups.pop_front();
    }
  }
  void release_all() {  // committed or not (cp.async.wait_all)
    release_all_but(0);
    land(open);
    open.clear();
  }
};

// Scope of a replay whose copies land only at the device code's waits (single-threaded replays only).
class DeferCopies {
 public:
  DeferCopies() { PendingCopies::instance().defer = true; }
  ~DeferCopies() {
    PendingCopies& p = PendingCopies::instance();
    p.release_all();
    p.defer = false;
  }
  DeferCopies(const DeferCopies&) = delete;
  DeferCopies& operator=(const DeferCopies&) = delete;
};
}  // namespace host

// Copies 16 bytes from src (16-byte aligned) to dst in shared memory, or zero-fills dst when !valid (src is then
// not read but must still be a valid address).
__host__ __device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__)
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes) : "memory");
#else
  host::PendingCopies& p = host::PendingCopies::instance();
  host::PendingCopies::Copy c{dst, {}};
  if (valid) std::memcpy(c.bytes, src, 16);
  if (p.defer)
    p.open.push_back(c);
  else
    std::memcpy(dst, c.bytes, 16);
#endif
}

// Closes the group of copies issued since the last commit.
__host__ __device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  host::PendingCopies& p = host::PendingCopies::instance();
  if (p.defer) {
    p.groups.push_back(std::move(p.open));
    p.open.clear();
  }
#endif
}

// Waits until at most `Pending` of this thread's most recent committed groups are still in flight (the older ones
// have landed); a __syncthreads() after it makes every thread's landed copies visible.
template <int Pending>
__host__ __device__ __forceinline__ void cp_async_wait_pending() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#else
  host::PendingCopies::instance().release_all_but(Pending);
#endif
}

// Waits for all of this thread's copies, committed or not.
__host__ __device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#else
  host::PendingCopies::instance().release_all();
#endif
}

}  // namespace cuda
}  // namespace rrsr
