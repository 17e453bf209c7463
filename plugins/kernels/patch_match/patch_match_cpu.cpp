// CPU kernel of RrsrPatchMatch (see launch.h), streamed with the "diagonal" decomposition of deployment.md s3:
//
//   score(q, r) * (||P_ref(r)|| + 1e-5) = sum_{dy, dx} <f_in(qy + dy, qx + dx), f_ref(ry + dy, rx + dx)>
//
// so for one input patch row qy and one reference patch row ry = qy + d, the k*k taps are sums of per-pixel
// correlations of k pixel-row pairs (qy + dy, ry + dy) along their diagonals. Pixel-row pair (a, a + d) serves
// every (qy, ry) on the diagonal d, so a task (one image, a band of kBand input patch rows) walks the diagonals d,
// computes the kBand + k - 1 row-pair correlations of the band once per d (a small GEMM each: W x C by C x Wr), and
// folds them into the band's running max/argmax. Per task memory is (kBand + k) * W * Wr floats; the score matrix
// is never materialised.
//
// Precision and ties: everything is FP32 (FP16 features are converted while they are normalised). Each score is
// computed by the same sequence of operations whatever its position, so equal reference patches get bit-equal
// scores; the running update keeps the lowest r among equal scores (torch.argmax's first maximum) whatever the
// visiting order. Tasks write disjoint outputs, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <thread>
#include <vector>

#include "../common/cpu_gemm.h"
#include "../common/cpu_parallel.h"
#include "launch.h"

namespace rrsr {
namespace patch_match {
namespace {

constexpr int kTileP = 16;    // reference pixels per GEMM column tile
constexpr int64_t kBand = 8;  // input patch rows per task (fewer when that leaves fewer tasks than cores)
constexpr int64_t kNone = std::numeric_limits<int64_t>::max();  // no candidate yet

// Normalised input as [n][h][w][c] (rows of the GEMM's left operand).
template <class T>
void normalise_input(const Shape& s, const T* x, float* out, const CpuParallelFor* par) {
  const int64_t hw = s.h * s.w;
  parallel_for(par, static_cast<size_t>(s.n * s.h), [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) / s.h, y = static_cast<int64_t>(task) % s.h;
    const T* src = x + b * s.c * hw + y * s.w;
    for (int64_t px = 0; px < s.w; ++px) {
      float ss = 0.0f;
      for (int64_t c = 0; c < s.c; ++c) {
        const float v = cpu::load(src, c * hw + px);
        ss += v * v;
      }
      const float den = std::max(std::sqrt(ss), kNormEps);
      float* dst = out + ((b * s.h + y) * s.w + px) * s.c;
      for (int64_t c = 0; c < s.c; ++c) dst[c] = cpu::load(src, c * hw + px) / den;
    }
  });
}

// Normalised reference packed for the GEMM: per image and pixel row, ceil(wr / kTileP) tiles of [c][kTileP]
// (zero padded), plus each pixel's squared norm after normalisation.
template <class T>
void normalise_reference(const Shape& s, const T* x, int64_t tiles, float* packed, float* sq,
                         const CpuParallelFor* par) {
  const int64_t hw = s.hr * s.wr;
  parallel_for(par, static_cast<size_t>(s.n * s.hr), [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) / s.hr, y = static_cast<int64_t>(task) % s.hr;
    const T* src = x + b * s.c * hw + y * s.wr;
    float* row = packed + (b * s.hr + y) * tiles * s.c * kTileP;
    for (int64_t i = 0; i < tiles * s.c * kTileP; ++i) row[i] = 0.0f;
    for (int64_t px = 0; px < s.wr; ++px) {
      float ss = 0.0f;
      for (int64_t c = 0; c < s.c; ++c) {
        const float v = cpu::load(src, c * hw + px);
        ss += v * v;
      }
      const float den = std::max(std::sqrt(ss), kNormEps);
      float* dst = row + (px / kTileP) * s.c * kTileP + px % kTileP;
      float nn = 0.0f;
      for (int64_t c = 0; c < s.c; ++c) {
        const float v = cpu::load(src, c * hw + px) / den;
        dst[c * kTileP] = v;
        nn += v * v;
      }
      sq[(b * s.hr + y) * s.wr + px] = nn;
    }
  });
}

template <class T>
int run(const Shape& s, const T* f_in, const T* f_ref, int32_t* index, float* score, const CpuParallelFor* par) {
  const int64_t k = s.k, hp = s.hp(), wp = s.wp(), hrp = s.hrp(), wrp = s.wrp();
  const int64_t tiles = (s.wr + kTileP - 1) / kTileP, ld = tiles * kTileP;
  std::vector<float> fin, fref, sq, den;
  try {
    fin.resize(static_cast<size_t>(s.n * s.h * s.w * s.c));
    fref.resize(static_cast<size_t>(s.n * s.hr * ld * s.c));
    sq.resize(static_cast<size_t>(s.n * s.hr * s.wr));
    den.resize(static_cast<size_t>(s.n * hrp * wrp));
  } catch (const std::bad_alloc&) {
    return kErrOutOfMemory;
  }
  normalise_input(s, f_in, fin.data(), par);
  normalise_reference(s, f_ref, tiles, fref.data(), sq.data(), par);
  // Reference patch norms: ||P_ref(r)|| + eps, taps summed in row-major order.
  parallel_for(par, static_cast<size_t>(s.n * hrp), [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) / hrp, ry = static_cast<int64_t>(task) % hrp;
    for (int64_t rx = 0; rx < wrp; ++rx) {
      float acc = 0.0f;
      for (int64_t dy = 0; dy < k; ++dy)
        for (int64_t dx = 0; dx < k; ++dx) acc += sq[static_cast<size_t>((b * s.hr + ry + dy) * s.wr + rx + dx)];
      den[static_cast<size_t>((b * hrp + ry) * wrp + rx)] = std::sqrt(acc) + kPatchEps;
    }
  });

  // Smaller bands recompute more row pairs ((band + k - 1) / band) but give a many-core pool work on one image.
  // Results do not depend on the band: every score is computed the same way and the tie rule is order-free.
  const int64_t min_tasks = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  int64_t band = kBand;
  while (band > 2 && s.n * ((hp + band - 1) / band) < min_tasks) band /= 2;
  const int64_t bands = (hp + band - 1) / band;
  bool oom = false;  // written only as true, read after the join
  parallel_for(par, static_cast<size_t>(s.n * bands), [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) / bands, q0 = (static_cast<int64_t>(task) % bands) * band;
    const int64_t rows = std::min(band, hp - q0), na = rows + k - 1;
    std::vector<float> corr, tsum, acc, best;
    std::vector<int64_t> best_r;
    try {
      corr.resize(static_cast<size_t>(na * s.w * ld));
      tsum.resize(static_cast<size_t>(s.w * ld));
      acc.resize(static_cast<size_t>(wrp));
      best.assign(static_cast<size_t>(rows * wp), -std::numeric_limits<float>::infinity());
      best_r.assign(static_cast<size_t>(rows * wp), kNone);
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    const float* fin_b = fin.data() + b * s.h * s.w * s.c;
    const float* fref_b = fref.data() + b * s.hr * ld * s.c;
    const float* den_b = den.data() + b * hrp * wrp;
    for (int64_t d = -(q0 + rows - 1); d <= hrp - 1 - q0; ++d) {
      const int64_t qlo = std::max(q0, -d), qhi = std::min(q0 + rows, hrp - d);  // ry = qy + d in [0, hrp)
      if (qlo >= qhi) continue;
      // Row-pair correlations corr[a - q0][x][x'] = <f_in(a, x), f_ref(a + d, x')> for the pixel rows needed.
      for (int64_t a = qlo; a < qhi + k - 1; ++a) {
        float* dst = corr.data() + (a - q0) * s.w * ld;
        const float* lhs = fin_b + a * s.w * s.c;
        for (int64_t t = 0; t < tiles; ++t) {
          const float* col = fref_b + ((a + d) * tiles + t) * s.c * kTileP;
          cpu::gemm_tile<kTileP>(lhs, s.c, col, s.w, s.c, [&](int64_t x, const float* v) {
            float* o = dst + x * ld + t * kTileP;
            for (int p = 0; p < kTileP; ++p) o[p] = v[p];
          });
        }
      }
      for (int64_t qy = qlo; qy < qhi; ++qy) {
        const int64_t ry = qy + d;
        // tsum = sum over dy of the k row pairs of this (qy, ry)
        const float* c0 = corr.data() + (qy - q0) * s.w * ld;
        for (int64_t i = 0; i < s.w * ld; ++i) tsum[static_cast<size_t>(i)] = c0[i];
        for (int64_t dy = 1; dy < k; ++dy) {
          const float* cd = corr.data() + (qy + dy - q0) * s.w * ld;
          for (int64_t i = 0; i < s.w * ld; ++i) tsum[static_cast<size_t>(i)] += cd[i];
        }
        float* best_row = best.data() + (qy - q0) * wp;
        int64_t* best_r_row = best_r.data() + (qy - q0) * wp;
        const float* den_row = den_b + ry * wrp;
        for (int64_t qx = 0; qx < wp; ++qx) {
          // diagonal sums over dx: acc[rx] = sum_dx tsum[qx + dx][rx + dx]
          const float* t0 = tsum.data() + qx * ld;
          for (int64_t rx = 0; rx < wrp; ++rx) acc[static_cast<size_t>(rx)] = t0[rx];
          for (int64_t dx = 1; dx < k; ++dx) {
            const float* td = tsum.data() + (qx + dx) * ld + dx;
            for (int64_t rx = 0; rx < wrp; ++rx) acc[static_cast<size_t>(rx)] += td[rx];
          }
          float bs = best_row[qx];
          int64_t br = best_r_row[qx];
          for (int64_t rx = 0; rx < wrp; ++rx) {
            const float sc = acc[static_cast<size_t>(rx)] / den_row[rx];
            const int64_t r = ry * wrp + rx;
            if (sc > bs || (sc == bs && r < br)) {  // NaN never wins
              bs = sc;
              br = r;
            }
          }
          best_row[qx] = bs;
          best_r_row[qx] = br;
        }
      }
    }
    for (int64_t i = 0; i < rows * wp; ++i) {
      const int64_t o = (b * hp + q0) * wp + i;
      const int64_t r = best_r[static_cast<size_t>(i)];
      index[o] = r == kNone ? 0 : static_cast<int32_t>(r);  // only when every score was NaN
      score[o] = r == kNone ? std::numeric_limits<float>::quiet_NaN() : best[static_cast<size_t>(i)];
    }
  });
  return oom ? kErrOutOfMemory : kOk;
}

}  // namespace

int forward_cpu(const Shape& s, DType t, const void* f_in, const void* f_ref, int32_t* index, float* score,
                const CpuParallelFor* par) {
  if (check_shape(s) != kOk) return kErrInvalidArgument;
  if (s.n == 0) return kOk;
  if (f_in == nullptr || f_ref == nullptr || index == nullptr || score == nullptr) return kErrInvalidArgument;
  switch (t) {
    case DType::kFloat32:
      return run(s, static_cast<const float*>(f_in), static_cast<const float*>(f_ref), index, score, par);
    case DType::kFloat16:
      return run(s, static_cast<const uint16_t*>(f_in), static_cast<const uint16_t*>(f_ref), index, score, par);
    default:
      return kErrUnsupportedDType;
  }
}

}  // namespace patch_match
}  // namespace rrsr
