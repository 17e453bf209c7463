// What the CUDA launchers ask the runtime about on each call, asked once per device instead. Launchers need
// two things per call: the SM count or shared-memory limit, and a raised dynamic shared-memory limit for
// kernels above 48 KB. Asking the runtime each time takes its locks on every launch. That is host time an eager
// caller or a TensorRT enqueue outside a CUDA graph pays per call, and small MDCN calls are only tens of
// microseconds of GPU time.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <mutex>

namespace rrsr {
namespace cuda {

constexpr int kMaxCachedDevices = 64;  // devices past this are asked every time

struct DeviceInfo {
  int sms = 0;         // multiprocessors
  int smem_optin = 0;  // dynamic shared memory a block may opt in to, bytes
};

// The current device's DeviceInfo. These are properties of the hardware, so they cannot go stale.
inline cudaError_t current_device_info(DeviceInfo& info) {
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  static std::atomic<int> sms[kMaxCachedDevices], optin[kMaxCachedDevices];  // 0: not asked yet
  const bool cached = dev < kMaxCachedDevices;
  if (cached) {
    info.sms = sms[dev].load(std::memory_order_relaxed);
    info.smem_optin = optin[dev].load(std::memory_order_relaxed);
    if (info.sms > 0 && info.smem_optin > 0) return cudaSuccess;
  }
  err = cudaDeviceGetAttribute(&info.sms, cudaDevAttrMultiProcessorCount, dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&info.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (err != cudaSuccess) return err;
  if (cached) {
    sms[dev].store(info.sms, std::memory_order_relaxed);
    optin[dev].store(info.smem_optin, std::memory_order_relaxed);
  }
  return cudaSuccess;
}

// The dynamic shared-memory limits already raised, per (kernel, device). The limit belongs to the device's
// context: after cudaDeviceReset it is gone while this record says otherwise. launch_with_smem notices this,
// because the launch then fails.
class SmemLimits {
 public:
  static SmemLimits& instance() {
    static SmemLimits s;
    return s;
  }
  // Raises kernel's limit on the current device to at least `bytes` (no call when it already is);
  // `fresh` says whether the runtime was asked just now.
  cudaError_t reserve(const void* kernel, size_t bytes, bool& fresh) {
    fresh = false;
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err != cudaSuccess) return err;
    std::lock_guard<std::mutex> lock(mu_);
    Entry* e = find(kernel, dev);
    if (e && e->bytes >= bytes) return cudaSuccess;
    fresh = true;
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (err != cudaSuccess) return err;
    if (!e && count_ < kEntries) e = &entries_[count_++];  // table full: ask every time for the rest
    if (e) *e = Entry{kernel, dev, bytes};
    return cudaSuccess;
  }
  void forget(const void* kernel) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < count_; ++i)
      if (entries_[i].kernel == kernel) entries_[i].bytes = 0;
  }

 private:
  struct Entry {
    const void* kernel;
    int dev;
    size_t bytes;
  };
  static constexpr int kEntries = 256;  // kernels x devices: the MDCN and PatchMatch instantiations fit many times
  Entry* find(const void* kernel, int dev) {
    for (int i = 0; i < count_; ++i)
      if (entries_[i].kernel == kernel && entries_[i].dev == dev) return &entries_[i];
    return nullptr;
  }
  std::mutex mu_;
  Entry entries_[kEntries];
  int count_ = 0;
};

// kernel<<<grid, block, smem, stream>>>(args...) with its dynamic shared-memory limit raised to smem first
// (SmemLimits). If the launch fails and the limit came from the record, the limit is set again and the
// launch retried once: a failed launch ran nothing, and the record may be stale after a device reset.
template <class... Params, class... Args>
cudaError_t launch_with_smem(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             const Args&... args) {
  const void* key = reinterpret_cast<const void*>(kernel);
  bool fresh = false;
  cudaError_t err = SmemLimits::instance().reserve(key, smem, fresh);
  if (err != cudaSuccess) return err;
  kernel<<<grid, block, smem, stream>>>(args...);
  err = cudaGetLastError();
  if (err == cudaSuccess || fresh) return err;
  SmemLimits::instance().forget(key);
  err = SmemLimits::instance().reserve(key, smem, fresh);
  if (err != cudaSuccess) return err;
  kernel<<<grid, block, smem, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace rrsr
