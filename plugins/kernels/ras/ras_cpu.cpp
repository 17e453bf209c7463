// CPU reference-aware selection. Per image: valid-region channel means -> routing and SE gate -> expert-mixed
// 3x3 kernel (FP32); then the 3x3 convolution in tasks of (image, tile of kTileP pixels), each sampling only its own
// columns and running one small GEMM. concat(x, r) is never materialised: the column builder reads whichever input
// holds the channel. Each output element has one writer, so results do not depend on the thread count.
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
namespace ras {
namespace {

constexpr int kTileP = 32;
constexpr int kTaps = kKernel * kKernel;

template <typename T, typename TG>
struct CpuRas {
  Shape s;
  const T* x;
  const T* r;
  const T* weight;
  const T* bias;
  const TG* routing_weight;
  const TG* routing_bias;
  const TG* se1_weight;
  const TG* se1_bias;
  const TG* se2_weight;
  const TG* se2_bias;
  int64_t valid_h, valid_w;
  T* y;
  // FP32 intermediates
  std::vector<float> mu;      // [n][c]
  std::vector<float> gate;    // [n][c_out]
  std::vector<float> beta;    // [n][c_out]
  std::vector<float> routing; // [n][e]
  std::vector<float> kmix;    // [n][c_out][c * 9]
  std::atomic<bool> failed{false};

  int64_t c() const { return s.cx + s.cr; }
  const T* plane(int64_t n, int64_t ch) const {
    const int64_t hw = s.h * s.w;
    return ch < s.cx ? x + (n * s.cx + ch) * hw : r + (n * s.cr + (ch - s.cx)) * hw;
  }

  // mean over the valid top-left region; double accumulation keeps it exact enough for any map size
  void mean_task(size_t i) {
    const int64_t n = static_cast<int64_t>(i) / c(), ch = static_cast<int64_t>(i) % c();
    const T* p = plane(n, ch);
    double sum = 0.0;
    for (int64_t yy = 0; yy < valid_h; ++yy) {
      float row = 0.0f;
      for (int64_t xx = 0; xx < valid_w; ++xx) row += cpu::load(p, yy * s.w + xx);
      sum += row;
    }
    mu[i] = static_cast<float>(sum / static_cast<double>(valid_h * valid_w));
  }

  // routing, SE gate and mixed bias of one image
  void gate_task(size_t i) {
    const int64_t n = static_cast<int64_t>(i), cc = c();
    const float* m = &mu[static_cast<size_t>(n * cc)];
    for (int64_t e = 0; e < s.experts; ++e) {
      float acc = cpu::load(routing_bias, e);
      for (int64_t k = 0; k < cc; ++k) acc += cpu::load(routing_weight, e * cc + k) * m[k];
      routing[static_cast<size_t>(n * s.experts + e)] = sigmoidf_(acc);
    }
    std::vector<float> hidden(static_cast<size_t>(cc));
    for (int64_t j = 0; j < cc; ++j) {
      float acc = cpu::load(se1_bias, j);
      for (int64_t k = 0; k < cc; ++k) acc += cpu::load(se1_weight, j * cc + k) * m[k];
      hidden[static_cast<size_t>(j)] = acc > 0.0f ? acc : 0.0f;
    }
    for (int64_t o = 0; o < s.c_out; ++o) {
      float acc = cpu::load(se2_bias, o);
      for (int64_t k = 0; k < cc; ++k) acc += cpu::load(se2_weight, o * cc + k) * hidden[static_cast<size_t>(k)];
      gate[static_cast<size_t>(n * s.c_out + o)] = sigmoidf_(acc);
      float b = 0.0f;
      for (int64_t e = 0; e < s.experts; ++e)
        b += routing[static_cast<size_t>(n * s.experts + e)] * cpu::load(bias, e * s.c_out + o);
      beta[static_cast<size_t>(n * s.c_out + o)] = b;
    }
  }

  // one output channel's mixed kernel row: sum_e routing_e * W[e][o][:]
  void mix_task(size_t i) {
    const int64_t n = static_cast<int64_t>(i) / s.c_out, o = static_cast<int64_t>(i) % s.c_out;
    const int64_t k_count = c() * kTaps;
    float* dst = &kmix[static_cast<size_t>((n * s.c_out + o) * k_count)];
    std::fill(dst, dst + k_count, 0.0f);
    for (int64_t e = 0; e < s.experts; ++e) {
      const float re = routing[static_cast<size_t>(n * s.experts + e)];
      const int64_t src = (e * s.c_out + o) * k_count;
      for (int64_t k = 0; k < k_count; ++k) dst[k] += re * cpu::load(weight, src + k);
    }
  }

  void conv_task(size_t i, int64_t tiles_per_image) {
    const int64_t n = static_cast<int64_t>(i) / tiles_per_image;
    const int64_t p0 = (static_cast<int64_t>(i) % tiles_per_image) * kTileP;
    const int64_t hw = s.h * s.w;
    const int np = static_cast<int>(std::min<int64_t>(kTileP, hw - p0));
    const int64_t cc = c(), k_count = cc * kTaps;
    thread_local std::vector<float> col;
    col.resize(static_cast<size_t>(k_count * kTileP));
    int py[kTileP], px[kTileP];
    for (int p = 0; p < kTileP; ++p) {
      const int64_t pix = p0 + std::min(p, np - 1);
      py[p] = static_cast<int>(pix / s.w);
      px[p] = static_cast<int>(pix % s.w);
    }
    const int h = static_cast<int>(s.h), w = static_cast<int>(s.w);
    for (int64_t ch = 0; ch < cc; ++ch) {
      const T* src = plane(n, ch);
      for (int tap = 0; tap < kTaps; ++tap) {
        const int dy = tap / kKernel - kKernel / 2, dx = tap % kKernel - kKernel / 2;  // pad 1
        float* row = &col[static_cast<size_t>((ch * kTaps + tap) * kTileP)];
        for (int p = 0; p < kTileP; ++p) {
          const int yy = py[p] + dy, xx = px[p] + dx;
          row[p] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? cpu::load(src, yy * s.w + xx) : 0.0f;
        }
      }
    }
    const float* kn = &kmix[static_cast<size_t>(n * s.c_out * k_count)];
    cpu::gemm_tile<kTileP>(kn, k_count, col.data(), s.c_out, k_count, [&](int64_t o, const float* acc) {
      const float b = beta[static_cast<size_t>(n * s.c_out + o)];
      const float g = gate[static_cast<size_t>(n * s.c_out + o)];
      const int64_t base = (n * s.c_out + o) * hw + p0;
      for (int p = 0; p < np; ++p) cpu::store(y, base + p, (acc[p] + b) * g);
    });
  }

  template <class F>
  void guarded(const CpuParallelFor* par, size_t count, F&& f) {
    parallel_for(par, count, [&](size_t i) {
      try {
        f(i);
      } catch (...) {  // never let an exception escape into a pool thread
        failed.store(true);
      }
    });
  }

  int run(const CpuParallelFor* par) {
    const int64_t cc = c();
    mu.assign(static_cast<size_t>(s.n * cc), 0.0f);
    gate.assign(static_cast<size_t>(s.n * s.c_out), 0.0f);
    beta.assign(static_cast<size_t>(s.n * s.c_out), 0.0f);
    routing.assign(static_cast<size_t>(s.n * s.experts), 0.0f);
    kmix.assign(static_cast<size_t>(s.n * s.c_out * cc * kTaps), 0.0f);
    guarded(par, static_cast<size_t>(s.n * cc), [this](size_t i) { mean_task(i); });
    if (failed.load()) return kErrOutOfMemory;
    guarded(par, static_cast<size_t>(s.n), [this](size_t i) { gate_task(i); });
    if (failed.load()) return kErrOutOfMemory;
    guarded(par, static_cast<size_t>(s.n * s.c_out), [this](size_t i) { mix_task(i); });
    if (failed.load()) return kErrOutOfMemory;
    const int64_t tiles = (s.h * s.w + kTileP - 1) / kTileP;
    guarded(par, static_cast<size_t>(s.n * tiles), [this, tiles](size_t i) { conv_task(i, tiles); });
    return failed.load() ? kErrOutOfMemory : kOk;
  }
};

int64_t read_int(const void* p, DType t, int i) {
  return t == DType::kInt64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

template <typename T, typename TG>
int run_typed(const Shape& s, DType t_valid, const void* x, const void* r, const void* weight, const void* bias,
              const void* rw, const void* rb, const void* s1w, const void* s1b, const void* s2w, const void* s2b,
              const void* valid_size, void* y, const CpuParallelFor* par) {
  int64_t vh = s.h, vw = s.w;
  if (valid_size) {
    if (t_valid != DType::kInt32 && t_valid != DType::kInt64) return kErrUnsupportedDType;
    vh = clamp_i64(read_int(valid_size, t_valid, 0), 1, s.h);
    vw = clamp_i64(read_int(valid_size, t_valid, 1), 1, s.w);
  }
  CpuRas<T, TG> k;
  k.s = s;
  k.x = static_cast<const T*>(x);
  k.r = static_cast<const T*>(r);
  k.weight = static_cast<const T*>(weight);
  k.bias = static_cast<const T*>(bias);
  k.routing_weight = static_cast<const TG*>(rw);
  k.routing_bias = static_cast<const TG*>(rb);
  k.se1_weight = static_cast<const TG*>(s1w);
  k.se1_bias = static_cast<const TG*>(s1b);
  k.se2_weight = static_cast<const TG*>(s2w);
  k.se2_bias = static_cast<const TG*>(s2b);
  k.valid_h = vh;
  k.valid_w = vw;
  k.y = static_cast<T*>(y);
  return k.run(par);
}

}  // namespace

int forward_cpu(const Shape& s, DType t, DType t_gate, DType t_valid, const void* x, const void* r,
                const void* weight, const void* bias, const void* routing_weight, const void* routing_bias,
                const void* se1_weight, const void* se1_bias, const void* se2_weight, const void* se2_bias,
                const void* valid_size, void* y, const CpuParallelFor* par) {
  if (check_shape(s) != kOk) return kErrInvalidArgument;
  if (s.n == 0) return kOk;
  if (!x || !r || !weight || !bias || !routing_weight || !routing_bias || !se1_weight || !se1_bias ||
      !se2_weight || !se2_bias || !y)
    return kErrInvalidArgument;
  try {
    const bool t32 = t == DType::kFloat32, t16 = t == DType::kFloat16;
    const bool g32 = t_gate == DType::kFloat32, g16 = t_gate == DType::kFloat16;
#define RRSR_RAS_CALL(TT, TGG)                                                                                 \
  return run_typed<TT, TGG>(s, t_valid, x, r, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias, \
                            se2_weight, se2_bias, valid_size, y, par)
    if (t32 && g32) RRSR_RAS_CALL(float, float);
    if (t32 && g16) RRSR_RAS_CALL(float, uint16_t);
    if (t16 && g32) RRSR_RAS_CALL(uint16_t, float);
    if (t16 && g16) RRSR_RAS_CALL(uint16_t, uint16_t);
#undef RRSR_RAS_CALL
  } catch (...) {  // scratch allocation (bad_alloc / length_error)
    return kErrOutOfMemory;
  }
  return kErrUnsupportedDType;
}

}  // namespace ras
}  // namespace rrsr
