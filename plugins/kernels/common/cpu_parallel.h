// CPU task runner used by the *_cpu.cpp kernels: the host's pool when it gives one, else plain std::threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <type_traits>
#include <vector>

#include "launch_common.h"

namespace rrsr {

// Runs task(arg, i) for i in [0, n). Each task must write disjoint outputs; then the result is the same for any
// thread count. With no host pool, tasks are handed out by an atomic counter to at most hardware_concurrency
// threads (the calling thread included).
inline void parallel_for(const CpuParallelFor* pf, size_t n, void (*task)(void*, size_t), void* arg) {
  if (n == 0) return;
  if (pf != nullptr && pf->run != nullptr) {
    pf->run(pf->ctx, n, task, arg);
    return;
  }
  const size_t hw = std::max<size_t>(1, std::thread::hardware_concurrency());
  const size_t nthreads = std::min(hw, n);
  if (nthreads <= 1) {
    for (size_t i = 0; i < n; ++i) task(arg, i);
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) task(arg, i);
  };
  std::vector<std::thread> threads;
  threads.reserve(nthreads - 1);
  for (size_t t = 1; t < nthreads; ++t) {
    try {
      threads.emplace_back(worker);
    } catch (...) {  // no more threads to be had: the ones we have (and this one) finish the work
      break;
    }
  }
  worker();
  for (auto& th : threads) th.join();
}

// Adapts a lambda to parallel_for's C-style callback.
template <class F>
void parallel_for(const CpuParallelFor* pf, size_t n, F&& f) {
  using Fn = typename std::remove_reference<F>::type;
  parallel_for(pf, n, [](void* a, size_t i) { (*static_cast<Fn*>(a))(i); }, static_cast<void*>(&f));
}

}  // namespace rrsr
