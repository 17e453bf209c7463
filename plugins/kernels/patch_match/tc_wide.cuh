// The pipelined tensor-core match kernels (included by patch_match.cu after the v1 / FP32-diagonal code, whose
// blocks, diagonals, splits, tie rule, best merge and finish kernel they share), used when the padded channel count
// cp <= 256 (RRSR's 256-channel CCN features). v1 stages 128 channels at a time and waits for every load; these keep
// the block busy while the next tile is in flight:
//   * the whole K (cp channels) of a G tile's operands is one stage; two stages, filled with cp.async, so the
//     operands of the next (delta, r0, u) item load while the current one is multiplied, summed and scanned;
//   * G is stored over the stage whose operands it consumed (no separate buffer);
//   * the k rolling patch rows live in registers: thread (warp w, lane l) owns input column a = 8 w + l % 8 and
//     reference columns b = l / 8 + 4 m (m < kRef / 4) -- 32 distinct banks per G read, and the scan of a finished
//     row needs no shared memory but the 4-part merge.
// Two widths of the reference tile, kRef pixels (input tiles are always kTcPix = 64):
//   kRef = 64  (v2, TcVariant 2): G = 64 x 64, each warp two 16 x 16 wmma tiles; ~142 KB of shared memory.
//   kRef = 128 (v3, TcVariant 4): G = 64 x 128 -- half the items, so half the per-item pipeline, sync and scan set-up
//              per product, and a quarter less operand traffic per product ((1/64 + 1/128) instead of 2/64) --
//              each warp a 32 x 32 block of mma.sync m16n8k16 tiles fed by 32-bit fragment loads (padded rows:
//              conflict-free), twice the operand reuse per shared-memory read of v2's 16 x 32 warp tiles;
//              ~208 KB of shared memory (H100/H200: 227 KB per block; not Orin's 163 KB, where v2 runs).
// Both form every S sum by the same operations in the same order (a G cell is the FP32 sum over 16-channel steps in
// ascending order; the diagonal adds as v1), so they pick the same indices as v1 up to the products' own rounding.
#pragma once

#include "../common/mma_m16n8k16.cuh"
#include "diag.cuh"

namespace rrsr {
namespace patch_match {
namespace {

constexpr int kTc2MaxCp = 256;
constexpr int kTc2Ld = kTc2MaxCp + 8;  // __half row stride of a stage (multiple of 8, 16-byte rows; 132 words:
                                       // rows 4 banks apart, so 8 rows x 4 words of a fragment load hit 32 banks)

template <int kRef>
struct TcWideStage {
  __half a[kTcPix][kTc2Ld];  // input pixels x channels (row-major A)
  __half b[kRef][kTc2Ld];    // reference pixels x channels (column-major K x N B)
};

template <int kRef>
struct TcWideSmem {
  TcWideStage<kRef> stage[2];
  float best[kTcRows][kTcPix];
  int best_r[kTcRows][kTcPix];
  float pbest[kTcPix / kTcScan][kTcPix];
  int pbest_r[kTcPix / kTcScan][kTcPix];
};

template <int kRef>
struct TcWide {
  static constexpr int kLdg = kRef + 4;    // float row stride of G (multiple of 4; 4 banks apart, as the stage rows)
  static constexpr int kCells = kRef / 4;  // reference columns per thread
};

using Tc2Smem = TcWideSmem<64>;
using Tc3Smem = TcWideSmem<128>;
static_assert(sizeof(float) * kTcPix * TcWide<64>::kLdg <= sizeof(TcWideStage<64>), "G fits over a consumed stage");
static_assert(sizeof(float) * kTcPix * TcWide<128>::kLdg <= sizeof(TcWideStage<128>), "G fits over a stage");
static_assert(kTcThreads / 32 * 8 == kTcPix, "8 warps x 8 input columns");
static_assert(TcWide<64>::kLdg == kTcLdg, "v2's G stride is v1's");

template <int kRef>
__host__ __device__ __forceinline__ float* tc_wide_g(TcWideSmem<kRef>& sm, int buf) {
  return reinterpret_cast<float*>(&sm.stage[buf]);
}

// Reference patch columns per tile: kRef pixels less the k - 1 halo.
template <int kRef>
__host__ __device__ __forceinline__ int tc_wide_tw(const TcDims& d) {
  return kRef - (d.k - 1);
}

// One item of a block's work: pixel row u of patch-row range [t_lo, t_hi) for diagonal delta, reference tile r0.
struct Tc2Item {
  int delta, r0, u, t_lo, t_hi;
};

__host__ __device__ __forceinline__ bool tc2_first_of(const TcDims& d, const TcBlock& blk, int delta_from,
                                                      Tc2Item* it) {
  for (int delta = delta_from; delta < blk.d_hi; ++delta) {
    int t_lo, t_hi;
    tc_rows(d, blk, delta, &t_lo, &t_hi);
    if (t_lo < t_hi) {
      *it = Tc2Item{delta, 0, t_lo, t_lo, t_hi};
      return true;
    }
  }
  return false;
}

// The item after *it in v1's loop order (delta, then r0 in steps of the reference tile, then u); false past the last.
template <int kRef>
__host__ __device__ __forceinline__ bool tc_wide_next(const TcDims& d, const TcBlock& blk, Tc2Item* it) {
  if (++it->u < it->t_hi + d.k - 1) return true;
  it->u = it->t_lo;
  it->r0 += tc_wide_tw<kRef>(d);
  if (it->r0 < d.wrp) return true;
  return tc2_first_of(d, blk, it->delta + 1, it);
}

// Thread tid issues its share of the item's operand copies into `st` (pixels past a map's edge: zeros).
template <int kRef>
__host__ __device__ __forceinline__ void tc_wide_issue(const TcDims& d, const __half* fin_b, const __half* fref_b,
                                                       const TcBlock& blk, const Tc2Item& it, int tid,
                                                       TcWideStage<kRef>& st) {
  const int i = blk.y0 + it.u, j = i - it.delta, vecs = d.cp / 8;
  const __half* arow = fin_b + static_cast<int64_t>(i) * d.w * d.cp;
  const __half* brow = fref_b + static_cast<int64_t>(j) * d.wr * d.cp;
  for (int v = tid; v < kTcPix * vecs; v += kTcThreads) {
    const int p = v / vecs, cv = (v % vecs) * 8;
    const int x = blk.x0 + p;
    cuda::cp_async16(&st.a[p][cv], arow + static_cast<int64_t>(tc_min(x, d.w - 1)) * d.cp + cv, x < d.w);
  }
  for (int v = tid; v < kRef * vecs; v += kTcThreads) {
    const int p = v / vecs, cv = (v % vecs) * 8;
    const int rx = it.r0 + p;
    cuda::cp_async16(&st.b[p][cv], brow + static_cast<int64_t>(tc_min(rx, d.wr - 1)) * d.cp + cv, rx < d.wr);
  }
}

// ---- v2's products: warp `warp` owns two 16 x 16 wmma tiles of the 64 x 64 G (v1's tile assignment).
__host__ __device__ __forceinline__ void tc2_mma(const TcWideStage<64>& st, int cp, int warp, cuda::MmaAcc (&acc)[2]) {
  const int tm = warp / 2, tn = (warp % 2) * 2;
  cuda::mma_zero(acc[0]);
  cuda::mma_zero(acc[1]);
  for (int kk = 0; kk < cp; kk += cuda::kMmaTile) {
RRSR_PM_UNROLL
    for (int j = 0; j < 2; ++j)
      cuda::mma_accumulate<true>(acc[j], &st.a[tm * 16][kk], kTc2Ld, &st.b[(tn + j) * 16][kk], kTc2Ld);
  }
}

__host__ __device__ __forceinline__ void tc2_store_g(const cuda::MmaAcc (&acc)[2], int warp, float* g) {
  const int tm = warp / 2, tn = (warp % 2) * 2;
  for (int j = 0; j < 2; ++j) cuda::mma_store(acc[j], g + tm * 16 * kTcLdg + (tn + j) * 16, kTcLdg);
}

// ---- v3's products: warp w owns G rows 32 (w / 4) .. + 31 and columns 32 (w % 4) .. + 31: two m16 x four n8
// mma.sync tiles (mma_m16n8k16.cuh's fragment layout), a lane's operands read as 32-bit words of the stage.
constexpr int kTc3Ref = 128;
constexpr int kTc3M = 2, kTc3N = 4;  // m16 / n8 tiles per warp

struct Tc3Acc {
  float c[kTc3M][kTc3N][4];
};

struct Tc3Frags {
  uint32_t a[kTc3M][4];
  uint32_t b[kTc3N][2];
};

__host__ __device__ __forceinline__ uint32_t tc3_word(const __half* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint32_t*>(p);
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

// Lane `lane` of warp `warp`: its fragments of the 16-channel step kk.
__host__ __device__ __forceinline__ void tc3_load_frags(const TcWideStage<kTc3Ref>& st, int warp, int lane, int kk,
                                                        Tc3Frags& f) {
  const int g = lane / 4, t = lane % 4, row0 = (warp / 4) * 32, col0 = (warp % 4) * 32;
RRSR_PM_UNROLL
  for (int mi = 0; mi < kTc3M; ++mi) {
    const __half* r = &st.a[row0 + mi * 16 + g][kk + 2 * t];
    const __half* r8 = &st.a[row0 + mi * 16 + g + 8][kk + 2 * t];
    f.a[mi][0] = tc3_word(r);
    f.a[mi][1] = tc3_word(r8);
    f.a[mi][2] = tc3_word(r + 8);
    f.a[mi][3] = tc3_word(r8 + 8);
  }
RRSR_PM_UNROLL
  for (int ni = 0; ni < kTc3N; ++ni) {
    const __half* c = &st.b[col0 + ni * 8 + g][kk + 2 * t];
    f.b[ni][0] = tc3_word(c);
    f.b[ni][1] = tc3_word(c + 8);
  }
}

__host__ __device__ __forceinline__ void tc3_zero(Tc3Acc& acc) {
  for (auto& m : acc.c)
    for (auto& n : m)
      for (float& v : n) v = 0.0f;
}

#if defined(__CUDA_ARCH__)
// The warp's 32 x 32 block of G over the whole K of the stage (every lane calls it together).
__device__ __forceinline__ void tc3_mma(const TcWideStage<kTc3Ref>& st, int cp, int warp, int lane, Tc3Acc& acc) {
  tc3_zero(acc);
  for (int kk = 0; kk < cp; kk += 16) {
    Tc3Frags f;
    tc3_load_frags(st, warp, lane, kk, f);
RRSR_PM_UNROLL
    for (int mi = 0; mi < kTc3M; ++mi)
RRSR_PM_UNROLL
      for (int ni = 0; ni < kTc3N; ++ni) cuda::mma_m16n8k16(acc.c[mi][ni], f.a[mi], f.b[ni]);
  }
}
#endif

// Lane `lane`'s accumulators into G: c[0], c[1] = G[g][2t, 2t + 1], c[2], c[3] = G[g + 8][2t, 2t + 1] of each tile.
__host__ __device__ __forceinline__ void tc3_store_g(const Tc3Acc& acc, int warp, int lane, float* g) {
  constexpr int ldg = TcWide<kTc3Ref>::kLdg;
  const int gr = lane / 4, t = lane % 4, row0 = (warp / 4) * 32, col0 = (warp % 4) * 32;
  for (int mi = 0; mi < kTc3M; ++mi)
    for (int ni = 0; ni < kTc3N; ++ni) {
      float* p = g + (row0 + mi * 16 + gr) * ldg + col0 + ni * 8 + 2 * t;
      p[0] = acc.c[mi][ni][0];
      p[1] = acc.c[mi][ni][1];
      p[8 * ldg] = acc.c[mi][ni][2];
      p[8 * ldg + 1] = acc.c[mi][ni][3];
    }
}

// ---- the shared epilogue: rolling rows, diagonal adds, scan, shift.

// The rolling patch rows of one thread: s[dy][m] = S of patch row u - dy at its cell m (constant indices only, so
// they stay in registers).
template <int kCells>
struct TcWideRows {
  float s[kTcMaxK][kCells];
};
using Tc2Rows = TcWideRows<TcWide<64>::kCells>;
using Tc3Rows = TcWideRows<TcWide<kTc3Ref>::kCells>;

// Thread tid adds pixel row u's G to its cells of rows u - dy (dy < k): v1's tc_diag_add, same operations.
template <int kRef>
__host__ __device__ __forceinline__ void tc_wide_diag_add(const float* g, int k, int tw, int trw, int tid,
                                                          TcWideRows<TcWide<kRef>::kCells>& rows) {
  constexpr int ldg = TcWide<kRef>::kLdg;
  const int lane = tid % 32, a = (tid / 32) * 8 + lane % 8, boff = lane / 8;
  if (a >= tw) return;
RRSR_PM_UNROLL
  for (int m = 0; m < TcWide<kRef>::kCells; ++m) {
    const int bb = boff + 4 * m;
    if (bb >= trw) continue;
    float v = 0.0f;
    for (int dx = 0; dx < k; ++dx) v += g[(a + dx) * ldg + bb + dx];
    if (k == 3) {
      rows.s[2][m] = rows.s[2][m] + v;
      rows.s[1][m] = rows.s[1][m] + v;
    } else if (k == 2) {
      rows.s[1][m] = rows.s[1][m] + v;
    }
    rows.s[0][m] = v;
  }
}

// Thread tid's best over its cells of the finished row (the oldest, s[k - 1]) -> pbest[l / 8][a]; then the rows
// shift by one for the next pixel row.
template <int kRef>
__host__ __device__ __forceinline__ void tc_wide_scan(const TcDims& d, const TcBlock& blk, const float* den_b,
                                                      int delta, int r0, int t, int tid,
                                                      TcWideRows<TcWide<kRef>::kCells>& rows,
                                                      TcWideSmem<kRef>& sm) {
  const int lane = tid % 32, a = (tid / 32) * 8 + lane % 8, boff = lane / 8;
  float best = -INFINITY;
  int best_r = -1;
  if (a < d.tw && blk.x0 + a < d.wp) {
    const int ry = blk.y0 + t - delta;
    const int rbase = ry * d.wrp + r0, b_end = tc_min(tc_wide_tw<kRef>(d), d.wrp - r0);
RRSR_PM_UNROLL
    for (int m = 0; m < TcWide<kRef>::kCells; ++m) {
      const int bb = boff + 4 * m;
      if (bb >= b_end) continue;
      const float row = d.k == 3 ? rows.s[2][m] : (d.k == 2 ? rows.s[1][m] : rows.s[0][m]);
      const int r = rbase + bb;
      const float sc = row / den_b[r];
      if (tc_better(sc, r, best, best_r)) {
        best = sc;
        best_r = r;
      }
    }
  }
  sm.pbest[boff][a] = best;
  sm.pbest_r[boff][a] = best_r;
}

// After each pixel row: the rows move up one place (s[0] is assigned next time).
template <int kCells>
__host__ __device__ __forceinline__ void tc_wide_shift(int k, TcWideRows<kCells>& rows) {
RRSR_PM_UNROLL
  for (int m = 0; m < kCells; ++m) {
    if (k == 3) rows.s[2][m] = rows.s[1][m];
    if (k >= 2) rows.s[1][m] = rows.s[0][m];
  }
}

// v2 / v3: grid and launch as tc_match_kernel, sizeof(TcWideSmem<kRef>) dynamic shared memory (one block per SM,
// whose next operands are always in flight). Only sequences the phases above (tests/plugins/pm_tc_host_check.cu
// replays the same sequence on the CPU).
template <int kRef>
__global__ void __launch_bounds__(kTcThreads, 1)
    tc_wide_match_kernel(TcDims d, const __half* __restrict__ fin, const __half* __restrict__ fref,
                         const float* __restrict__ den, float* __restrict__ pscore, int* __restrict__ pidx) {
  extern __shared__ __align__(128) unsigned char tc_smem_raw[];
  TcWideSmem<kRef>& sm = *reinterpret_cast<TcWideSmem<kRef>*>(tc_smem_raw);
  const TcBlock blk = tc_block(d, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
                               static_cast<int>(blockIdx.z));
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32;
  const TcImage img = tc_image(d, blk.b, fin, fref, den);
  const __half *fin_b = img.fin, *fref_b = img.fref;
  const float* den_b = img.den;
  const int trw = tc_wide_tw<kRef>(d);
  tc_init_best(sm, tid);
  Tc2Item cur;
  bool have = tc2_first_of(d, blk, blk.d_lo, &cur);
  if (have) tc_wide_issue<kRef>(d, fin_b, fref_b, blk, cur, tid, sm.stage[0]);
  cuda::cp_async_commit();
  TcWideRows<TcWide<kRef>::kCells> rows;
  int buf = 0;
  while (have) {
    cuda::cp_async_wait_all();
    __syncthreads();  // this item's operands are in for every thread; the other stage (last G) is consumed
    Tc2Item nxt = cur;
    const bool more = tc_wide_next<kRef>(d, blk, &nxt);
    if (more) tc_wide_issue<kRef>(d, fin_b, fref_b, blk, nxt, tid, sm.stage[buf ^ 1]);
    cuda::cp_async_commit();
    if constexpr (kRef == 64) {
      cuda::MmaAcc acc[2];
      tc2_mma(sm.stage[buf], d.cp, warp, acc);
      __syncthreads();  // every warp is done with the operands G goes over
      tc2_store_g(acc, warp, tc_wide_g(sm, buf));
    } else {
#if defined(__CUDA_ARCH__)
      Tc3Acc acc;
      tc3_mma(sm.stage[buf], d.cp, warp, tid % 32, acc);
      __syncthreads();  // every warp is done with the operands G goes over
      tc3_store_g(acc, warp, tid % 32, tc_wide_g(sm, buf));
#endif
    }
    __syncthreads();
    tc_wide_diag_add<kRef>(tc_wide_g(sm, buf), d.k, d.tw, trw, tid, rows);
    const int t = cur.u - (d.k - 1);
    if (t >= cur.t_lo) {  // block-uniform
      tc_wide_scan<kRef>(d, blk, den_b, cur.delta, cur.r0, t, tid, rows, sm);
      __syncthreads();
      tc_update_best(d, blk, t, tid, sm);
    }
    tc_wide_shift(d.k, rows);
    cur = nxt;
    have = more;
    buf ^= 1;
  }
  __syncthreads();
  tc_store_partial(d, blk, sm, tid, pscore, pidx);
}

// The wide kernels need cp <= 256 and sizeof(TcWideSmem<kRef>) of shared memory per block (v2 ~142 KB, v3 ~208 KB;
// H100/H200: 227 KB, Orin: 163 KB).
template <int kRef>
inline bool tc_wide_fits(const TcDims& d) {
  if (d.cp > kTc2MaxCp) return false;
  cuda::DeviceInfo dev;
  return cuda::current_device_info(dev) == cudaSuccess &&
         sizeof(TcWideSmem<kRef>) <= static_cast<size_t>(dev.smem_optin);
}

}  // namespace
}  // namespace patch_match
}  // namespace rrsr
