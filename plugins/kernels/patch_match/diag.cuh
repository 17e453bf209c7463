// RrsrPatchMatch's diagonal kernel family (included by patch_match.cu): the tensor-core path's v1 kernel and the
// FP32 diagonal path (Algo::kSimtDiagonal), their shared blocks, diagonals, scans, best merge, prep and finish
// kernels; the pipelined v2 / v3 kernels built on them are in tc_wide.cuh.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../common/async_copy.cuh"
#include "../common/device_info.cuh"
#include "../common/mma_tile.cuh"
#include "common.cuh"

namespace rrsr {
namespace patch_match {
namespace {

// =====================================================================================================================
// Tensor-core path (Algo::kTensorCore): "diagonal" patch correlation.
//
// corr(q, r) = sum_{dy, dx < k} <f_in(qy + dy, qx + dx), f_ref(ry + dy, rx + dx)>: a sum of k*k PIXEL dot products
// along a diagonal of the pixel-correlation matrix. So a block computes 64 x 64 pixel-correlation tiles
//   G = F_in[i, X0 .. X0 + 63, :] . F_ref[j, R0 .. R0 + 63, :]^T      (K = channels, FP16 operands, FP32 accumulate)
// on tensor cores and adds them along diagonals into patch-correlation rows:
//   S_t[a][b] = sum_{dy} sum_{dx} G_{row Y0 + t + dy}[a + dx][b + dx]          (a, b < tw = 64 - (k - 1))
// Five launches on one stream:
//   1. tc_prep_kernel (x2)  one thread per pixel: FP32 normalisation (bit-identical to normalise_pixel), FP16 NHWC
//                           copy with channels zero-padded to a multiple of 16, the pixel's norm denominator, and
//                           for the reference its squared norm after normalisation
//   2. patch_den_kernel     the SIMT path's FP32 patch denominators ||P_ref(r)|| + 1e-5
//   3. tc_match_kernel      (diag_match_kernel<TcOps>; v2 below) grid (x tiles, y tiles, n * splits), 256 threads
//                           (8 warps), dynamic shared memory
//                           (TcSmem, ~110 KB: two blocks per SM on H100/H200). Block = input patches X0 .. X0 + TW - 1 x Y0 .. Y0 + kTcRows - 1 and a
//                           range of diagonals delta = qy - ry (the block's relevant range, hrp + kTcRows - 1 long,
//                           split over `splits` z-blocks). Per (delta, R0, pixel row u): G via wmma (K chunks of
//                           kTcKc channels staged in shared memory with 16-byte loads), diagonal sums into k rolling
//                           S buffers; after row u the completed patch row t = u - (k - 1) is scanned (4 threads per
//                           input patch, 16 reference columns each) and merged into the running best (score, index)
//                           of each input patch (first maximum, NaN never wins). The running bests stay in shared
//                           memory; the block writes them to the workspace at the end ([splits][n][hp * wp]).
//   4. tc_finish_kernel     per input patch: the best over the splits (equal score -> lower index), and its score
//                           recomputed in FP32 from the original inputs exactly as the SIMT kernel computes it.
// Only rows t whose k pixel rows are all inside both maps (qy < hp, 0 <= ry < hrp) are ever used; the row loop runs
// exactly over the pixel rows these need, so every G it computes is in range and no S buffer is ever zeroed: the
// first contribution (dy = 0) of a row assigns, the later ones add.

constexpr int kTcPix = 64;                  // pixel tile width (input and reference), halo included
constexpr int kTcRows = 16;                 // input patch rows per block (T)
constexpr int kTcKc = 128;                  // channels per shared-memory stage
constexpr int kTcLd = kTcKc + 8;            // __half row stride of the A/B stages (multiple of 8, 16-byte rows)
constexpr int kTcLdg = kTcPix + 4;          // float row stride of G (multiple of 4)
constexpr int kTcLds = kTcPix + 1;          // float row stride of S (odd: the best update reads down a column)
constexpr int kTcMaxK = 3;
constexpr int kTcScan = 16;                 // reference columns per thread in the best-update scan (4 parts)
constexpr int kTcThreads = 256;             // 8 warps, each 2 of the 16 16x16 tiles of G
constexpr int kTcTargetBlocks = 1024;       // z-splits are chosen so the grid has about this many blocks
constexpr int kTcMaxSplits = 64;

static_assert(kTcThreads == (kTcPix / kTcScan) * kTcPix, "one scan part of one patch column per thread");
static_assert((kTcThreads / 32) * 2 == (kTcPix / 16) * (kTcPix / 16), "8 warps x 2 tiles cover the 64 x 64 G");
static_assert(kTcKc % 16 == 0 && kTcLd % 8 == 0 && kTcLdg % 4 == 0, "wmma tile / stride rules");

// The operands of one channel chunk, for the tensor-core kernel (v1); the FP32 path has its own (DfStage).
struct TcStage {
  __half a[kTcPix][kTcLd];                  // input pixels x channel chunk (row-major A)
  __half b[kTcPix][kTcLd];                  // reference pixels x channel chunk (column-major K x N B)
};

template <class Stage>
struct TcSmemT {
  Stage op;                                 // the chunk's operands
  float g[kTcPix][kTcLdg];                  // pixel-correlation tile
  float s[kTcMaxK][kTcPix][kTcLds];         // rolling patch-correlation rows
  float best[kTcRows][kTcPix];              // running best score per (t, a)
  int best_r[kTcRows][kTcPix];              // and its reference patch index (-1: none yet)
  float pbest[kTcPix / kTcScan][kTcPix];    // per-part best of the row being scanned
  int pbest_r[kTcPix / kTcScan][kTcPix];
};
using TcSmem = TcSmemT<TcStage>;

struct TcDims {
  int n, c, cp, h, w, hr, wr, k, hp, wp, hrp, wrp, tw, splits;
};

__host__ __device__ __forceinline__ int tc_min(int a, int b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int tc_max(int a, int b) { return a > b ? a : b; }

inline int tc_channels_padded(int64_t c) { return static_cast<int>((c + 15) / 16 * 16); }

inline int tc_splits(const Shape& s) {
  const int64_t tw = kTcPix - (s.k - 1);
  const int64_t blocks = (s.wp() + tw - 1) / tw * ((s.hp() + kTcRows - 1) / kTcRows) * std::max<int64_t>(s.n, 1);
  int64_t splits = (kTcTargetBlocks + blocks - 1) / blocks;
  splits = std::min<int64_t>(splits, s.hrp() + kTcRows - 1);  // never more splits than a block has diagonals
  splits = std::min<int64_t>(splits, kTcMaxSplits);
  splits = std::min<int64_t>(splits, 65535 / std::max<int64_t>(s.n, 1));
  return static_cast<int>(std::max<int64_t>(splits, 1));
}

// Sizes the tensor-core kernel covers (beyond check_shape): k <= 3, the grid fits (gridDim.y, gridDim.z).
// Sizes a diagonal path with channels padded to cp covers (the FP32 one too, df_supported).
inline bool diag_supported(const Shape& s, int64_t cp) {
  if (s.k > kTcMaxK || s.n > 65535) return false;
  if ((s.hp() + kTcRows - 1) / kTcRows > 65535) return false;
  return s.n * cp * std::max(s.h * s.w, s.hr * s.wr) < (int64_t{1} << 40);
}

inline bool tc_supported(const Shape& s) { return diag_supported(s, tc_channels_padded(s.c)); }

inline TcDims tc_dims(const Shape& s) {
  return TcDims{static_cast<int>(s.n),   static_cast<int>(s.c),   tc_channels_padded(s.c),  static_cast<int>(s.h),
                static_cast<int>(s.w),   static_cast<int>(s.hr),  static_cast<int>(s.wr),   static_cast<int>(s.k),
                static_cast<int>(s.hp()), static_cast<int>(s.wp()), static_cast<int>(s.hrp()), static_cast<int>(s.wrp()),
                static_cast<int>(kTcPix - (s.k - 1)), tc_splits(s)};
}

inline size_t align_bytes(size_t count) { return (count + 255) / 256 * 256; }

template <typename E>
struct TcWorkspaceT {
  E* fin;         // [n][h][w][cp]   normalised input, NHWC, zero-padded channels (FP16; FP32 for the FP32 path)
  E* fref;        // [n][hr][wr][cp] normalised reference
  float* nin;     // [n][h][w]       tc_max(||x||, 1e-12) of each input pixel
  float* nref;    // [n][hr][wr]
  float* sq;      // [n][hr][wr]     squared norm of the normalised reference pixel
  float* den;     // [n][hrp][wrp]   ||P_ref|| + 1e-5
  float* pscore;  // [splits][n][hp * wp] partial best per z-split
  int* pidx;      // [splits][n][hp * wp]
};

using TcWorkspace = TcWorkspaceT<__half>;

// The workspace of the diagonal paths, elements E (FP16: tensor cores; FP32: the FP32 path) with channels padded to
// cp, laid out in `base` (null: sizes only); returns the bytes.
template <typename E>
inline size_t diag_workspace_bytes(const Shape& s, int64_t cp, TcWorkspaceT<E>* ws, void* base) {
  const size_t pin = static_cast<size_t>(s.n * s.h * s.w), pref = static_cast<size_t>(s.n * s.hr * s.wr);
  const size_t parts = static_cast<size_t>(tc_splits(s)) * static_cast<size_t>(s.n * s.hp() * s.wp());
  const size_t sizes[8] = {pin * cp * sizeof(E), pref * cp * sizeof(E), pin * sizeof(float),
                           pref * sizeof(float), pref * sizeof(float),
                           static_cast<size_t>(s.n * s.hrp() * s.wrp()) * sizeof(float), parts * sizeof(float),
                           parts * sizeof(int)};
  unsigned char* p[8] = {};
  size_t total = 0;
  for (int i = 0; i < 8; ++i) {
    if (base) p[i] = static_cast<unsigned char*>(base) + total;
    total += align_bytes(sizes[i]);
  }
  if (ws)
    *ws = TcWorkspaceT<E>{reinterpret_cast<E*>(p[0]),     reinterpret_cast<E*>(p[1]),     reinterpret_cast<float*>(p[2]),
                          reinterpret_cast<float*>(p[3]), reinterpret_cast<float*>(p[4]), reinterpret_cast<float*>(p[5]),
                          reinterpret_cast<float*>(p[6]), reinterpret_cast<int*>(p[7])};
  return total;
}

inline size_t tc_workspace_bytes(const Shape& s, TcWorkspace* ws, void* base) {
  return diag_workspace_bytes(s, tc_channels_padded(s.c), ws, base);
}

// ---- per-thread / per-warp phases (__host__ __device__: tests/plugins/pm_tc_host_check.cu replays them on a CPU)

__host__ __device__ __forceinline__ void store_operand(__half* o, float v) { *o = __float2half_rn(v); }
__host__ __device__ __forceinline__ void store_operand(float* o, float v) { *o = v; }

// Pixel i of x [n][c][hw]: out[i][0 .. cp) = normalised channels as FP16 (the tensor-core path) or FP32 (the FP32
// diagonal path; zeros past c), *norm = the divisor tc_max(||x||, 1e-12); returns the squared norm after
// normalisation. Same FP32 operations as normalise_pixel.
template <typename T, typename O>
__host__ __device__ __forceinline__ float tc_prep_pixel(const T* x, int64_t i, int c, int cp, int64_t hw, O* out,
                                                        float* norm) {
  const int64_t b = i / hw, p = i % hw;
  const int64_t base = b * c * hw + p;
  const float den = pixel_divisor(x, base, c, hw);
  float nn = 0.0f;
  O* o = out + i * cp;
  for (int ch = 0; ch < c; ++ch) {
    const float v = load(x, base + ch * hw) / den;
    store_operand(o + ch, v);
    nn += v * v;
  }
  for (int ch = c; ch < cp; ++ch) store_operand(o + ch, 0.0f);
  *norm = den;
  return nn;
}

// 16-byte copy / zero (uint4 on the device, memcpy on the host: no type punning there).
__host__ __device__ __forceinline__ void tc_copy16(void* dst, const void* src) {
#if defined(__CUDA_ARCH__)
  *static_cast<uint4*>(dst) = *static_cast<const uint4*>(src);
#else
  std::memcpy(dst, src, 16);
#endif
}
__host__ __device__ __forceinline__ void tc_zero16(void* dst) {
#if defined(__CUDA_ARCH__)
  *static_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
#else
  std::memset(dst, 0, 16);
#endif
}

// What a block covers: batch b, z-split, patch columns x0 .. x0 + tw - 1, patch rows y0 .. y0 + kTcRows - 1 and
// diagonals delta in [d_lo, d_hi).
struct TcBlock {
  int b, split, x0, y0, d_lo, d_hi;
};

__host__ __device__ __forceinline__ TcBlock tc_block(const TcDims& d, int bx, int by, int bz) {
  TcBlock blk;
  blk.b = bz / d.splits;
  blk.split = bz % d.splits;
  blk.x0 = bx * d.tw;
  blk.y0 = by * kTcRows;
  // every delta = qy - ry with qy in [y0, y0 + kTcRows) and < hp, ry in [0, hrp)
  const int lo = blk.y0 - (d.hrp - 1), hi = tc_min(blk.y0 + kTcRows - 1, d.hp - 1);
  const int64_t count = static_cast<int64_t>(hi) - lo + 1;
  blk.d_lo = lo + static_cast<int>(count * blk.split / d.splits);
  blk.d_hi = lo + static_cast<int>(count * (blk.split + 1) / d.splits);
  return blk;
}

// Batch b's slices of the workspace: the NHWC maps (FP16, or FP32 for the FP32 path) and the patch denominators.
template <typename E>
struct TcImageT {
  const E* fin;
  const E* fref;
  const float* den;
};
using TcImage = TcImageT<__half>;

template <typename E>
__host__ __device__ __forceinline__ TcImageT<E> tc_image(const TcDims& d, int b, const E* fin, const E* fref,
                                                         const float* den) {
  return TcImageT<E>{fin + static_cast<int64_t>(b) * d.h * d.w * d.cp,
                     fref + static_cast<int64_t>(b) * d.hr * d.wr * d.cp, den + static_cast<int64_t>(b) * d.hrp * d.wrp};
}

// The match kernels' grid: (patch-column tiles, patch-row tiles, images x z-splits).
inline dim3 tc_grid(const TcDims& d) {
  return dim3(static_cast<unsigned>((d.wp + d.tw - 1) / d.tw), static_cast<unsigned>((d.hp + kTcRows - 1) / kTcRows),
              static_cast<unsigned>(d.n * d.splits));
}

// Patch rows t in [*t_lo, *t_hi) of the block are complete for diagonal delta: qy = y0 + t < hp, ry = qy - delta in
// [0, hrp). Their pixel rows u = t .. t + k - 1 are the ones the row loop visits.
__host__ __device__ __forceinline__ void tc_rows(const TcDims& d, const TcBlock& blk, int delta, int* t_lo,
                                                 int* t_hi) {
  *t_lo = tc_max(0, delta - blk.y0);
  *t_hi = tc_min(kTcRows, tc_min(d.hp - blk.y0, d.hrp + delta - blk.y0));
}

// A v1 block's work in order: every diagonal delta with complete patch rows [t_lo, t_hi), every reference column
// tile r0, every pixel row u those rows need: f(delta, r0, u, t_lo).
template <class F>
__host__ __device__ __forceinline__ void tc_for_each_row(const TcDims& d, const TcBlock& blk, F&& f) {
  for (int delta = blk.d_lo; delta < blk.d_hi; ++delta) {
    int t_lo, t_hi;
    tc_rows(d, blk, delta, &t_lo, &t_hi);
    if (t_lo >= t_hi) continue;
    for (int r0 = 0; r0 < d.wrp; r0 += d.tw)
      for (int u = t_lo; u < t_hi + d.k - 1; ++u) f(delta, r0, u, t_lo);
  }
}

template <class Smem>
__host__ __device__ __forceinline__ void tc_init_best(Smem& sm, int tid) {
  for (int e = tid; e < kTcRows * kTcPix; e += kTcThreads) {
    sm.best[e / kTcPix][e % kTcPix] = -INFINITY;
    sm.best_r[e / kTcPix][e % kTcPix] = -1;
  }
}

// Thread tid stages channels c0 .. c0 + cw of input pixels (i, x0 ..) and reference pixels (j, r0 ..) (cw a
// multiple of 16; pixels past the map's right edge are zeros). fin_b / fref_b: the batch's NHWC planes.
__host__ __device__ __forceinline__ void tc_load_chunk(const TcDims& d, const __half* fin_b, const __half* fref_b,
                                                       int i, int j, int x0, int r0, int c0, int tid, TcSmem& sm) {
  const int cw = tc_min(kTcKc, d.cp - c0), vecs = cw / 8;
  for (int v = tid; v < kTcPix * vecs; v += kTcThreads) {
    const int p = v / vecs, cv = (v % vecs) * 8;
    const int x = x0 + p, rx = r0 + p;
    if (x < d.w)
      tc_copy16(&sm.op.a[p][cv], fin_b + (static_cast<int64_t>(i) * d.w + x) * d.cp + c0 + cv);
    else
      tc_zero16(&sm.op.a[p][cv]);
    if (rx < d.wr)
      tc_copy16(&sm.op.b[p][cv], fref_b + (static_cast<int64_t>(j) * d.wr + rx) * d.cp + c0 + cv);
    else
      tc_zero16(&sm.op.b[p][cv]);
  }
}

// Warp `warp` owns G tiles (row tile warp / 2, column tiles 2 (warp % 2) and 2 (warp % 2) + 1).
__host__ __device__ __forceinline__ void tc_mma_chunk(const TcSmem& sm, int warp, int cw, cuda::MmaAcc (&acc)[2]) {
  const int tm = warp / 2, tn = (warp % 2) * 2;
  for (int kk = 0; kk < cw; kk += cuda::kMmaTile)
    for (int j = 0; j < 2; ++j)
      cuda::mma_accumulate<true>(acc[j], &sm.op.a[tm * 16][kk], kTcLd, &sm.op.b[(tn + j) * 16][kk], kTcLd);
}

__host__ __device__ __forceinline__ void tc_store_g(const cuda::MmaAcc (&acc)[2], int warp, TcSmem& sm) {
  const int tm = warp / 2, tn = (warp % 2) * 2;
  for (int j = 0; j < 2; ++j) cuda::mma_store(acc[j], &sm.g[tm * 16][(tn + j) * 16], kTcLdg);
}

// Pixel row u's G into the rows t = u - dy (dy < k) that contain it: S_t[a][b] (+)= sum_dx G[a + dx][b + dx]; the
// first contribution (dy = 0) assigns. Row t lives in buffer t % k.
template <class Smem>
__host__ __device__ __forceinline__ void tc_diag_add(Smem& sm, int k, int tw, int u, int tid) {
  for (int e = tid; e < kTcPix * kTcPix; e += kTcThreads) {
    const int a = e / kTcPix, bb = e % kTcPix;
    if (a >= tw || bb >= tw) continue;
    float v = 0.0f;
    for (int dx = 0; dx < k; ++dx) v += sm.g[a + dx][bb + dx];
    for (int dy = 0; dy < k; ++dy) {
      const int t = u - dy;
      if (t < 0 || t >= kTcRows) continue;
      float& s = sm.s[t % k][a][bb];
      s = dy == 0 ? v : s + v;
    }
  }
}

// Completed patch row t (diagonal delta, reference columns r0 ..), in two phases. A candidate (score, r) beats the
// current best on a greater score or an equal score with a lower index -- a total order on non-NaN scores, so the
// split of the scan changes nothing: the result is the first maximum; NaN never wins.
__host__ __device__ __forceinline__ bool tc_better(float sc, int r, float best, int best_r) {
  return sc > best || (sc == best && r < best_r);
}

// Phase 1: thread tid scans reference columns b in [part * 16, part * 16 + 16) (part = tid / 64) for input patch
// a = tid % 64 into pbest[part][a].
template <class Smem>
__host__ __device__ __forceinline__ void tc_scan_row(const TcDims& d, const TcBlock& blk, const float* den_b, int delta,
                                                     int r0, int t, int tid, Smem& sm) {
  const int a = tid % kTcPix, part = tid / kTcPix;
  if (a >= d.tw || blk.x0 + a >= d.wp) return;
  const int ry = blk.y0 + t - delta;
  const int b_end = tc_min(tc_min(d.tw, d.wrp - r0), (part + 1) * kTcScan);
  const int rbase = ry * d.wrp + r0;
  const float* srow = sm.s[t % d.k][a];
  float best = -INFINITY;
  int best_r = -1;
  for (int bb = part * kTcScan; bb < b_end; ++bb) {
    const int r = rbase + bb;
    const float sc = srow[bb] / den_b[r];
    if (tc_better(sc, r, best, best_r)) {
      best = sc;
      best_r = r;
    }
  }
  sm.pbest[part][a] = best;
  sm.pbest_r[part][a] = best_r;
}

// Phase 2: thread a < 64 merges the scan parts into the running best of (t, a).
template <class Smem>
__host__ __device__ __forceinline__ void tc_update_best(const TcDims& d, const TcBlock& blk, int t, int tid,
                                                        Smem& sm) {
  const int a = tid;
  if (a >= d.tw || blk.x0 + a >= d.wp) return;
  float best = sm.best[t][a];
  int best_r = sm.best_r[t][a];
  for (int part = 0; part < kTcPix / kTcScan; ++part) {
    const int r = sm.pbest_r[part][a];
    if (r >= 0 && tc_better(sm.pbest[part][a], r, best, best_r)) {
      best = sm.pbest[part][a];
      best_r = r;
    }
  }
  sm.best[t][a] = best;
  sm.best_r[t][a] = best_r;
}

template <class Smem>
__host__ __device__ __forceinline__ void tc_store_partial(const TcDims& d, const TcBlock& blk, const Smem& sm,
                                                          int tid, float* pscore, int* pidx) {
  const int64_t q_count = static_cast<int64_t>(d.hp) * d.wp;
  const int64_t base = (static_cast<int64_t>(blk.split) * d.n + blk.b) * q_count;
  for (int e = tid; e < kTcRows * kTcPix; e += kTcThreads) {
    const int t = e / kTcPix, a = e % kTcPix, qy = blk.y0 + t, qx = blk.x0 + a;
    if (a >= d.tw || qx >= d.wp || qy >= d.hp) continue;
    pscore[base + static_cast<int64_t>(qy) * d.wp + qx] = sm.best[t][a];
    pidx[base + static_cast<int64_t>(qy) * d.wp + qx] = sm.best_r[t][a];
  }
}

// Input patch i (of [n][hp * wp]): best over the splits, index and FP32 score into index / score. x_in / x_ref are
// the original inputs; nin / nref their per-pixel divisors; den the patch denominators. The score is the SIMT
// kernel's: fmaf over the patch elements e = ch * k * k + dy * k + dx in ascending order, then / den.
template <typename T>
__host__ __device__ __forceinline__ void tc_finish(const TcDims& d, const T* x_in, const T* x_ref, const float* nin,
                                                   const float* nref, const float* den, const float* pscore,
                                                   const int* pidx, int64_t i, int32_t* index, float* score) {
  const int64_t q_count = static_cast<int64_t>(d.hp) * d.wp;
  float best = -INFINITY;
  int best_r = -1;
  for (int z = 0; z < d.splits; ++z) {
    const int64_t o = static_cast<int64_t>(z) * d.n * q_count + i;
    const int r = pidx[o];
    if (r < 0) continue;
    const float sc = pscore[o];
    if (best_r < 0 || sc > best || (sc == best && r < best_r)) {
      best = sc;
      best_r = r;
    }
  }
  if (best_r < 0) {  // every score was NaN
    index[i] = 0;
    score[i] = NAN;
    return;
  }
  const int64_t b = i / q_count;
  const int q = static_cast<int>(i % q_count), qy = q / d.wp, qx = q % d.wp;
  const int ry = best_r / d.wrp, rx = best_r % d.wrp;
  const int64_t hw = static_cast<int64_t>(d.h) * d.w, hwr = static_cast<int64_t>(d.hr) * d.wr;
  const T* xi = x_in + b * d.c * hw;
  const T* xr = x_ref + b * d.c * hwr;
  const float* ni = nin + b * hw;
  const float* nr = nref + b * hwr;
  float acc = 0.0f;
  for (int ch = 0; ch < d.c; ++ch)
    for (int dy = 0; dy < d.k; ++dy)
      for (int dx = 0; dx < d.k; ++dx) {
        const int64_t pi = static_cast<int64_t>(qy + dy) * d.w + qx + dx;
        const int64_t pr = static_cast<int64_t>(ry + dy) * d.wr + rx + dx;
        const float vi = load(xi, ch * hw + pi) / ni[pi];
        const float vr = load(xr, ch * hwr + pr) / nr[pr];
        acc = fmaf(vi, vr, acc);
      }
  index[i] = best_r;
  score[i] = acc / den[b * static_cast<int64_t>(d.hrp) * d.wrp + best_r];
}


// ---- The FP32 diagonal path (Algo::kSimtDiagonal): tc_match_kernel's blocks, diagonals, row sums and scans (the
// same functions), with each 64 x 64 pixel-correlation tile G formed by FP32 FMAs from FP32 normalised NHWC
// features. Per patch pair that is C multiply-adds per pixel pair shared by k * k patch pairs, against the SIMT
// kernel's C * k * k: 9x fewer for RRSR's k = 3, and register-tiled (each thread 4 x 4 of G). FP32 throughout; the
// sums run in another order than the SIMT kernel's, so only near ties (score gaps of float rounding) may pick
// another index; equal patches still get bit-equal scores (every cell of G and S is formed the same way), and the
// reported score is tc_finish's exact FP32 recompute.
constexpr int kDfKc = 32;          // channels per stage
constexpr int kDfLd = kTcPix + 4;  // float row stride of a channel-major stage: 16-byte rows

struct DfStage {
  float at[kDfKc][kDfLd];  // input pixels x channel chunk, channel-major: a thread's 4 pixels are one 16-byte load
  float bt[kDfKc][kDfLd];  // reference pixels, likewise
};
using DfSmem = TcSmemT<DfStage>;

inline int df_channels_padded(int64_t c) { return static_cast<int>((c + kDfKc - 1) / kDfKc * kDfKc); }

inline TcDims df_dims(const Shape& s) {
  TcDims d = tc_dims(s);
  d.cp = df_channels_padded(s.c);
  return d;
}

// Sizes the FP32 path covers (beyond check_shape): as the tensor-core path.
inline bool df_supported(const Shape& s) { return diag_supported(s, df_channels_padded(s.c)); }

inline size_t df_workspace_bytes(const Shape& s, TcWorkspaceT<float>* ws, void* base) {
  return diag_workspace_bytes(s, df_channels_padded(s.c), ws, base);
}

__host__ __device__ __forceinline__ float4 df_load4(const float* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const float4*>(p);
#else
  return make_float4(p[0], p[1], p[2], p[3]);
#endif
}

// Thread tid's share of channels c0 .. c0 + kDfKc of input pixels (i, x0 ..) and reference pixels (j, r0 ..) into
// the channel-major stages (pixels past a map's right edge: zeros), 4 channels per 16-byte load.
__host__ __device__ __forceinline__ void df_load_chunk(const TcDims& d, const float* fin_b, const float* fref_b, int i,
                                                       int j, int x0, int r0, int c0, int tid, DfSmem& sm) {
  constexpr int kQuads = kDfKc / 4;
  for (int v = tid; v < kTcPix * kQuads; v += kTcThreads) {
    const int p = v / kQuads, c4 = (v % kQuads) * 4;
    const int x = x0 + p, rx = r0 + p;
    const float4 a = x < d.w ? df_load4(fin_b + (static_cast<int64_t>(i) * d.w + x) * d.cp + c0 + c4)
                             : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4 b = rx < d.wr ? df_load4(fref_b + (static_cast<int64_t>(j) * d.wr + rx) * d.cp + c0 + c4)
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    sm.op.at[c4][p] = a.x;
    sm.op.at[c4 + 1][p] = a.y;
    sm.op.at[c4 + 2][p] = a.z;
    sm.op.at[c4 + 3][p] = a.w;
    sm.op.bt[c4][p] = b.x;
    sm.op.bt[c4 + 1][p] = b.y;
    sm.op.bt[c4 + 2][p] = b.z;
    sm.op.bt[c4 + 3][p] = b.w;
  }
}

// Thread tid's 4 x 4 cells of G: input pixels 4 (tid / 16) .., reference pixels 4 (tid % 16) ..
struct DfAcc {
  float v[4][4];
};

__host__ __device__ __forceinline__ void df_fma_chunk(const DfSmem& sm, int tid, DfAcc& acc) {
  const int ty = tid / 16, tx = tid % 16;
RRSR_PM_UNROLL
  for (int kk = 0; kk < kDfKc; ++kk) {
    const float4 a4 = df_load4(&sm.op.at[kk][4 * ty]), b4 = df_load4(&sm.op.bt[kk][4 * tx]);
    const float a[4] = {a4.x, a4.y, a4.z, a4.w}, b[4] = {b4.x, b4.y, b4.z, b4.w};
RRSR_PM_UNROLL
    for (int r = 0; r < 4; ++r)
RRSR_PM_UNROLL
      for (int c = 0; c < 4; ++c) acc.v[r][c] = fmaf(a[r], b[c], acc.v[r][c]);
  }
}

__host__ __device__ __forceinline__ void df_store_g(const DfAcc& acc, int tid, DfSmem& sm) {
  const int ty = tid / 16, tx = tid % 16;
RRSR_PM_UNROLL
  for (int r = 0; r < 4; ++r)
RRSR_PM_UNROLL
    for (int c = 0; c < 4; ++c) sm.g[4 * ty + r][4 * tx + c] = acc.v[r][c];
}

#define RRSR_PM_OP __host__ __device__ __forceinline__

// What diag_match_kernel (and its CPU replay) needs of an operand type: the chunk loads, the product into each
// thread's accumulators (its warp's tensor-core tiles, or its own 4 x 4 FP32 cells) and G.
struct TcOps {
  using Elem = __half;
  using Smem = TcSmem;
  static constexpr int kKc = kTcKc;
  static constexpr int kMinBlocks = 4;  // 64 registers (~110 KB of shared memory allows two blocks per SM anyway)
  struct Acc {
    cuda::MmaAcc m[2];
  };
  RRSR_PM_OP static void zero(Acc& a) {
    cuda::mma_zero(a.m[0]);
    cuda::mma_zero(a.m[1]);
  }
  RRSR_PM_OP static void load(const TcDims& d, const Elem* fin_b, const Elem* fref_b, int i, int j, int x0, int r0,
                              int c0, int tid, Smem& sm) {
    tc_load_chunk(d, fin_b, fref_b, i, j, x0, r0, c0, tid, sm);
  }
  RRSR_PM_OP static void multiply(const Smem& sm, int tid, int cw, Acc& a) {
    tc_mma_chunk(sm, tid / 32, cw, a.m);
  }
  RRSR_PM_OP static void store(const Acc& a, int tid, Smem& sm) { tc_store_g(a.m, tid / 32, sm); }
};

struct DfOps {
  using Elem = float;
  using Smem = DfSmem;
  static constexpr int kKc = kDfKc;
  static constexpr int kMinBlocks = 2;  // its ~95 KB of shared memory: two blocks per SM (104 registers, no spills)
  using Acc = DfAcc;
  RRSR_PM_OP static void zero(Acc& a) {
    for (auto& r : a.v)
      for (float& v : r) v = 0.0f;
  }
  RRSR_PM_OP static void load(const TcDims& d, const Elem* fin_b, const Elem* fref_b, int i, int j, int x0, int r0,
                              int c0, int tid, Smem& sm) {
    df_load_chunk(d, fin_b, fref_b, i, j, x0, r0, c0, tid, sm);
  }
  RRSR_PM_OP static void multiply(const Smem& sm, int tid, int /*cw: always kDfKc*/, Acc& a) {
    df_fma_chunk(sm, tid, a);
  }
  RRSR_PM_OP static void store(const Acc& a, int tid, Smem& sm) { df_store_g(a, tid, sm); }
};


// ---- tensor-core kernels

template <typename T, typename O>
__global__ void tc_prep_kernel(const T* __restrict__ x, int64_t pixels, int c, int cp, int64_t hw,
                               O* __restrict__ out, float* __restrict__ norm, float* __restrict__ sq) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= pixels) return;
  const float nn = tc_prep_pixel(x, i, c, cp, hw, out, norm + i);
  if (sq != nullptr) sq[i] = nn;
}

// grid (ceil(wp / tw), ceil(hp / kTcRows), n * splits), kTcThreads threads, sizeof(Ops::Smem) dynamic shared
// memory: tc_match_kernel (Ops = TcOps, v1 of the tensor-core kernel) and the FP32 path's (DfOps). Only sequences
// the phases above (tests/plugins/pm_tc_host_check.cu replays the same sequence on the CPU).
template <class Ops>
__global__ void __launch_bounds__(kTcThreads, Ops::kMinBlocks)
    diag_match_kernel(TcDims d, const typename Ops::Elem* __restrict__ fin, const typename Ops::Elem* __restrict__ fref,
                      const float* __restrict__ den, float* __restrict__ pscore, int* __restrict__ pidx) {
  extern __shared__ __align__(128) unsigned char tc_smem_raw[];
  typename Ops::Smem& sm = *reinterpret_cast<typename Ops::Smem*>(tc_smem_raw);
  const TcBlock blk = tc_block(d, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
                               static_cast<int>(blockIdx.z));
  const int tid = static_cast<int>(threadIdx.x);
  const TcImageT<typename Ops::Elem> img = tc_image(d, blk.b, fin, fref, den);
  tc_init_best(sm, tid);
  tc_for_each_row(d, blk, [&](int delta, int r0, int u, int t_lo) {
    const int i = blk.y0 + u, j = i - delta;
    typename Ops::Acc acc;
    Ops::zero(acc);
    for (int c0 = 0; c0 < d.cp; c0 += Ops::kKc) {
      __syncthreads();  // the previous stage (and, first time round, S / best of the previous row) is consumed
      Ops::load(d, img.fin, img.fref, i, j, blk.x0, r0, c0, tid, sm);
      __syncthreads();
      Ops::multiply(sm, tid, tc_min(Ops::kKc, d.cp - c0), acc);
    }
    Ops::store(acc, tid, sm);
    __syncthreads();
    tc_diag_add(sm, d.k, d.tw, u, tid);
    __syncthreads();
    const int t = u - (d.k - 1);
    if (t >= t_lo) {  // block-uniform
      tc_scan_row(d, blk, img.den, delta, r0, t, tid, sm);
      __syncthreads();
      tc_update_best(d, blk, t, tid, sm);
    }
  });
  __syncthreads();
  tc_store_partial(d, blk, sm, tid, pscore, pidx);
}

template <typename T>
__global__ void tc_finish_kernel(TcDims d, const T* __restrict__ x_in, const T* __restrict__ x_ref,
                                 const float* __restrict__ nin, const float* __restrict__ nref,
                                 const float* __restrict__ den, const float* __restrict__ pscore,
                                 const int* __restrict__ pidx, int64_t count, int32_t* __restrict__ index,
                                 float* __restrict__ score) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  tc_finish(d, x_in, x_ref, nin, nref, den, pscore, pidx, i, index, score);
}

}  // namespace
}  // namespace patch_match
}  // namespace rrsr
