// CPU modulated deformable convolution. Work is split into tasks of (image, tile of kTileP output pixels); a task
// samples the C * kh * kw columns of its tile only (never the whole C*kh*kw*H_out*W_out column buffer), then runs
// one small GEMM per convolution group. Each output element is written by exactly one task in a fixed order, so
// results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <new>
#include <vector>

#include "../common/cpu_gemm.h"
#include "../common/cpu_parallel.h"
#include "../common/rrsr_math.h"
#include "launch.h"

namespace rrsr {
namespace mdcn {
namespace {

constexpr int kTileP = 32;  // output pixels per task: C*9*32 floats of columns stay in L2 for C <= 256

template <typename T, typename TO>
struct CpuMdcn {
  Shape s;
  const T* x;
  const float* w;     // weight as FP32, [c_out][c/group * kh * kw]
  const TO* offset;
  const float* bias;  // FP32 or nullptr
  const TO* mask;
  T* y;
  int64_t tiles_per_image;
  std::atomic<bool>* failed;

  // Tasks may run on pool threads where an escaping exception would terminate the process: report instead.
  void run(size_t task) const {
    try {
      run_tile(task);
    } catch (...) {
      failed->store(true);
    }
  }

  void run_tile(size_t task) const {
    const int64_t n = static_cast<int64_t>(task) / tiles_per_image;
    const int64_t p0 = (static_cast<int64_t>(task) % tiles_per_image) * kTileP;
    const int64_t hw_out = s.h_out * s.w_out;
    const int np = static_cast<int>(std::min<int64_t>(kTileP, hw_out - p0));
    const int taps = static_cast<int>(s.kh * s.kw);
    const int64_t groups_off = s.offset_group;
    const int64_t ch_per_og = s.c / groups_off;

    // Per-thread scratch, reused across tasks and calls (sizes only grow).
    thread_local std::vector<BilinearSample> samples;
    thread_local std::vector<float> col;
    samples.resize(static_cast<size_t>(groups_off * taps * kTileP));
    col.resize(static_cast<size_t>(s.c * taps * kTileP));

    // 1. Sampling positions and bilinear weights (mask folded in) per deformable group, tap and pixel.
    const int64_t off_ch = 2 * groups_off * taps;
    const int64_t mask_ch = groups_off * taps;
    for (int og = 0; og < groups_off; ++og) {
      for (int tap = 0; tap < taps; ++tap) {
        const int ki = tap / static_cast<int>(s.kw), kj = tap % static_cast<int>(s.kw);
        const int64_t dy_base = (n * off_ch + offset_channel(og, tap, taps, 0)) * hw_out;
        const int64_t dx_base = (n * off_ch + offset_channel(og, tap, taps, 1)) * hw_out;
        const int64_t m_base = (n * mask_ch + mask_channel(og, tap, taps)) * hw_out;
        BilinearSample* out = &samples[static_cast<size_t>((og * taps + tap) * kTileP)];
        for (int p = 0; p < kTileP; ++p) {
          if (p >= np) {  // tail of the last tile: sample nothing, the GEMM lanes are discarded
            out[p] = empty_sample();
            continue;
          }
          const int64_t pix = p0 + p;
          const int ho = static_cast<int>(pix / s.w_out), wo = static_cast<int>(pix % s.w_out);
          const float dy = cpu::load(offset, dy_base + pix);
          const float dx = cpu::load(offset, dx_base + pix);
          const float m = mask ? cpu::load(mask, m_base + pix) : 1.0f;
          const float py = sample_position(ho, static_cast<int>(s.stride_h), static_cast<int>(s.pad_top), ki,
                                           static_cast<int>(s.dil_h), dy);
          const float px = sample_position(wo, static_cast<int>(s.stride_w), static_cast<int>(s.pad_left), kj,
                                           static_cast<int>(s.dil_w), dx);
          out[p] = bilinear_sample(py, px, static_cast<int>(s.h), static_cast<int>(s.w), m);
        }
      }
    }

    // 2. Sampled columns, rows ordered (channel, tap) like a weight row [c/group][kh][kw].
    const int64_t hw = s.h * s.w;
    for (int64_t c = 0; c < s.c; ++c) {
      const int64_t og = c / ch_per_og;
      const T* plane = x + (n * s.c + c) * hw;
      for (int tap = 0; tap < taps; ++tap) {
        const BilinearSample* sp = &samples[static_cast<size_t>((og * taps + tap) * kTileP)];
        float* row = &col[static_cast<size_t>((c * taps + tap) * kTileP)];
        for (int p = 0; p < kTileP; ++p) {
          const BilinearSample& b = sp[p];
          row[p] = b.w[0] * cpu::load(plane, b.idx[0]) + b.w[1] * cpu::load(plane, b.idx[1]) +
                   b.w[2] * cpu::load(plane, b.idx[2]) + b.w[3] * cpu::load(plane, b.idx[3]);
        }
      }
    }

    // 3. One GEMM per convolution group: [c_out/group, K] x [K, kTileP], K = (c/group) * kh * kw.
    const int64_t cout_g = s.c_out / s.group;
    const int64_t k_count = (s.c / s.group) * taps;
    for (int64_t g = 0; g < s.group; ++g) {
      const float* wg = w + g * cout_g * k_count;
      const float* colg = &col[static_cast<size_t>(g * k_count * kTileP)];
      cpu::gemm_tile<kTileP>(wg, k_count, colg, cout_g, k_count, [&](int64_t row, const float* acc) {
        const int64_t oc = g * cout_g + row;
        const float b = bias ? bias[oc] : 0.0f;
        const int64_t base = (n * s.c_out + oc) * hw_out + p0;
        for (int p = 0; p < np; ++p) cpu::store(y, base + p, acc[p] + b);
      });
    }
  }
};

template <typename T, typename TO>
int run_typed(const Shape& s, const void* x, const void* weight, const void* offset, const void* bias,
              const void* mask, void* y, const CpuParallelFor* par) {
  std::vector<float> w_keep, b_keep;
  std::atomic<bool> failed{false};
  const int64_t w_count = s.c_out * (s.c / s.group) * s.kh * s.kw;
  CpuMdcn<T, TO> k{s,
                   static_cast<const T*>(x),
                   cpu::as_float(static_cast<const T*>(weight), w_count, w_keep),
                   static_cast<const TO*>(offset),
                   bias ? cpu::as_float(static_cast<const T*>(bias), s.c_out, b_keep) : nullptr,
                   static_cast<const TO*>(mask),
                   static_cast<T*>(y),
                   (s.h_out * s.w_out + kTileP - 1) / kTileP,
                   &failed};
  parallel_for(par, static_cast<size_t>(s.n * k.tiles_per_image), [&k](size_t i) { k.run(i); });
  return failed.load() ? kErrOutOfMemory : kOk;
}

}  // namespace

int forward_cpu(const Shape& s, DType t, DType t_offset, const void* x, const void* weight, const void* offset,
                const void* bias, const void* mask, void* y, const CpuParallelFor* par) {
  if (check_shape(s) != kOk) return kErrInvalidArgument;
  if (s.n == 0) return kOk;
  if (!x || !weight || !offset || !y) return kErrInvalidArgument;
  const bool t32 = t == DType::kFloat32, t16 = t == DType::kFloat16;
  const bool o32 = t_offset == DType::kFloat32, o16 = t_offset == DType::kFloat16;
  try {
    if (t32 && o32) return run_typed<float, float>(s, x, weight, offset, bias, mask, y, par);
    if (t32 && o16) return run_typed<float, uint16_t>(s, x, weight, offset, bias, mask, y, par);
    if (t16 && o32) return run_typed<uint16_t, float>(s, x, weight, offset, bias, mask, y, par);
    if (t16 && o16) return run_typed<uint16_t, uint16_t>(s, x, weight, offset, bias, mask, y, par);
  } catch (...) {  // scratch allocation (bad_alloc / length_error)
    return kErrOutOfMemory;
  }
  return kErrUnsupportedDType;
}

}  // namespace mdcn
}  // namespace rrsr
