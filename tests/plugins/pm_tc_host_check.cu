// Host replay of RrsrPatchMatch's tensor-core CUDA path (plugins/kernels/patch_match/patch_match.cu, Algo::
// kTensorCore) for tests/plugins/test_plugin_cuda_patch_match_tc.py. No GPU: the kernels' __host__ __device__ phase
// functions run here in the order the GPU runs them -- the prep kernels per pixel, tc_match_kernel block by block
// (threads for the loads / sums / best updates, warps for the tensor-core tiles via mma_tile.cuh's host emulation,
// one loop per phase standing in for each __syncthreads()), then the split merge + FP32 score per input patch.
//
// usage: pm_tc_host_check n c h w hr wr k fp16 in.bin ref.bin out.bin [splits [variant]]
//        pm_tc_host_check n c h w hr wr k      (prints the workspace sizes: SIMT, tensor core, cuda_workspace_bytes)
//   in.bin / ref.bin: float32 NCHW (fp16 = 1: rounded to FP16 and run as __half inputs); out.bin: int32 index then
//   float32 score, each [n][h - k + 1][w - k + 1]. splits overrides the kernel's z-split count (0 / absent: its own);
//   variant 1 / 2 picks tc_match_kernel / tc_wide_match_kernel<64> (absent: 2 when the padded channels are <= 256, as
//   the launcher does on a device with enough shared memory); 3 the FP32 diagonal path (Algo::kSimtDiagonal); 4
//   tc_wide_match_kernel<128> (v3, Algo::kTensorCoreWide).
#include "plugins/kernels/patch_match/patch_match.cu"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <vector>

using namespace rrsr::patch_match;
using rrsr::cuda::MmaAcc;

// The warp's 32 x 32 block of v3's G on the CPU: each 16-channel step, every lane's fragments (the device code's
// tc3_load_frags), then mma_m16n8k16_warp per tile -- the PTX fragment layout reassembled, so the bookkeeping of the
// lanes' loads and of tc3_store_g is checked too.
static void replay_tc3_mma(const TcWideStage<kTc3Ref>& st, int cp, int warp, Tc3Acc (&acc)[32]) {
  for (auto& a : acc) tc3_zero(a);
  static Tc3Frags f[32];
  for (int kk = 0; kk < cp; kk += 16) {
    for (int lane = 0; lane < 32; ++lane) tc3_load_frags(st, warp, lane, kk, f[lane]);
    for (int mi = 0; mi < kTc3M; ++mi)
      for (int ni = 0; ni < kTc3N; ++ni) {
        float c[32][4];
        uint32_t a[32][4], b[32][2];
        for (int l = 0; l < 32; ++l) {
          for (int i = 0; i < 4; ++i) c[l][i] = acc[l].c[mi][ni][i], a[l][i] = f[l].a[mi][i];
          for (int i = 0; i < 2; ++i) b[l][i] = f[l].b[ni][i];
        }
        rrsr::cuda::mma_m16n8k16_warp(c, a, b);
        for (int l = 0; l < 32; ++l)
          for (int i = 0; i < 4; ++i) acc[l].c[mi][ni][i] = c[l][i];
      }
  }
}

// tc_wide_match_kernel<kRef> (v2: kRef 64, v3: 128) for one block: the same loop as the kernel, each phase over all
// threads / warps in turn. The threads' register rows are an array here; cp.async copies land at once
// (async_copy.cuh).
template <int kRef>
static void replay_wide_block(const TcDims& d, const TcBlock& blk, const __half* fin_b, const __half* fref_b,
                              const float* den_b, TcWideSmem<kRef>& sm, float* pscore, int* pidx) {
  constexpr int kWarps = kTcThreads / 32;
  using Rows = TcWideRows<TcWide<kRef>::kCells>;
  static MmaAcc acc[kWarps][2];
  static Tc3Acc acc3[kWarps][32];
  static Rows rows[kTcThreads];
  for (auto& r : rows)  // garbage in rows that are never finished must not matter
    for (auto& dy : r.s)
      for (float& v : dy) v = 1e30f;
  for (int tid = 0; tid < kTcThreads; ++tid) tc_init_best(sm, tid);
  const int trw = tc_wide_tw<kRef>(d);
  Tc2Item cur;
  bool have = tc2_first_of(d, blk, blk.d_lo, &cur);
  if (have)
    for (int tid = 0; tid < kTcThreads; ++tid) tc_wide_issue<kRef>(d, fin_b, fref_b, blk, cur, tid, sm.stage[0]);
  int buf = 0;
  while (have) {
    const int i = blk.y0 + cur.u, j = i - cur.delta;
    if (i < 0 || i >= d.h || j < 0 || j >= d.hr) std::abort();  // every item stays inside both maps
    Tc2Item nxt = cur;
    const bool more = tc_wide_next<kRef>(d, blk, &nxt);
    if (more)
      for (int tid = 0; tid < kTcThreads; ++tid)
        tc_wide_issue<kRef>(d, fin_b, fref_b, blk, nxt, tid, sm.stage[buf ^ 1]);
    if constexpr (kRef == 64) {
      for (int w = 0; w < kWarps; ++w) tc2_mma(sm.stage[buf], d.cp, w, acc[w]);
      for (int w = 0; w < kWarps; ++w) tc2_store_g(acc[w], w, tc_wide_g(sm, buf));
    } else {
      for (int w = 0; w < kWarps; ++w) replay_tc3_mma(sm.stage[buf], d.cp, w, acc3[w]);
      for (int w = 0; w < kWarps; ++w)
        for (int lane = 0; lane < 32; ++lane) tc3_store_g(acc3[w][lane], w, lane, tc_wide_g(sm, buf));
    }
    for (int tid = 0; tid < kTcThreads; ++tid) tc_wide_diag_add<kRef>(tc_wide_g(sm, buf), d.k, d.tw, trw, tid, rows[tid]);
    const int t = cur.u - (d.k - 1);
    if (t >= cur.t_lo) {
      for (int tid = 0; tid < kTcThreads; ++tid)
        tc_wide_scan<kRef>(d, blk, den_b, cur.delta, cur.r0, t, tid, rows[tid], sm);
      for (int tid = 0; tid < kTcThreads; ++tid) tc_update_best(d, blk, t, tid, sm);
    }
    for (int tid = 0; tid < kTcThreads; ++tid) tc_wide_shift(d.k, rows[tid]);
    cur = nxt;
    have = more;
    buf ^= 1;
  }
  for (int tid = 0; tid < kTcThreads; ++tid) tc_store_partial(d, blk, sm, tid, pscore, pidx);
}

// diag_match_kernel<Ops> (v1 of the tensor-core kernel, or the FP32 path) for one block: the kernel's loop, each
// phase over all threads in turn (the tensor-core products once per warp, the FP32 products once per thread).
template <class Ops>
static void replay_diag_block(const TcDims& d, const TcBlock& blk, const TcImageT<typename Ops::Elem>& img,
                              typename Ops::Smem& sm, float* pscore, int* pidx) {
  constexpr int kStride = std::is_same<typename Ops::Elem, __half>::value ? 32 : 1;  // threads per accumulator set
  static typename Ops::Acc acc[kTcThreads / kStride];
  for (int tid = 0; tid < kTcThreads; ++tid) tc_init_best(sm, tid);
  tc_for_each_row(d, blk, [&](int delta, int r0, int u, int t_lo) {
    const int i = blk.y0 + u, j = i - delta;
    if (i < 0 || i >= d.h || j < 0 || j >= d.hr) std::abort();  // the row loop must stay inside both maps
    for (auto& a : acc) Ops::zero(a);
    for (int c0 = 0; c0 < d.cp; c0 += Ops::kKc) {
      for (int tid = 0; tid < kTcThreads; ++tid) Ops::load(d, img.fin, img.fref, i, j, blk.x0, r0, c0, tid, sm);
      for (int tid = 0; tid < kTcThreads; tid += kStride)
        Ops::multiply(sm, tid, tc_min(Ops::kKc, d.cp - c0), acc[tid / kStride]);
    }
    for (int tid = 0; tid < kTcThreads; tid += kStride) Ops::store(acc[tid / kStride], tid, sm);
    for (int tid = 0; tid < kTcThreads; ++tid) tc_diag_add(sm, d.k, d.tw, u, tid);
    const int t = u - (d.k - 1);
    if (t >= t_lo) {
      for (int tid = 0; tid < kTcThreads; ++tid) tc_scan_row(d, blk, img.den, delta, r0, t, tid, sm);
      for (int tid = 0; tid < kTcThreads; ++tid) tc_update_best(d, blk, t, tid, sm);
    }
  });
  for (int tid = 0; tid < kTcThreads; ++tid) tc_store_partial(d, blk, sm, tid, pscore, pidx);
}

// variant: 1 = tc_match_kernel, 2 = tc_wide_match_kernel<64> (v2: what launch_diag runs when cp <= 256 and it fits
// the device), 3 = the FP32 path (Algo::kSimtDiagonal: FP32 NHWC operands, diag_match_kernel<DfOps>), 4 =
// tc_wide_match_kernel<128> (v3, Algo::kTensorCoreWide).
template <typename T>
static void replay_tc(const Shape& s, int splits, int variant, const std::vector<T>& x, const std::vector<T>& y,
                      std::vector<int32_t>& index, std::vector<float>& score) {
  TcDims d = variant == 3 ? df_dims(s) : tc_dims(s);
  if (splits > 0) d.splits = splits;
  const int64_t pin = s.n * s.h * s.w, pref = s.n * s.hr * s.wr, nden = s.n * s.hrp() * s.wrp();
  const int64_t q_count = s.hp() * s.wp();
  std::vector<__half> fin(variant == 3 ? 0 : pin * d.cp), fref(variant == 3 ? 0 : pref * d.cp);
  std::vector<float> fin32(variant == 3 ? pin * d.cp : 0), fref32(variant == 3 ? pref * d.cp : 0);
  std::vector<float> nin(pin), nref(pref), sq(pref), den(nden);
  std::vector<float> pscore(static_cast<size_t>(d.splits) * s.n * q_count, -1.0f);
  std::vector<int> pidx(pscore.size(), -7);  // every entry must be written by the match kernel
  // 1. prep kernels
  for (int64_t i = 0; i < pin; ++i) {
    if (variant == 3)
      tc_prep_pixel(x.data(), i, d.c, d.cp, s.h * s.w, fin32.data(), &nin[i]);
    else
      tc_prep_pixel(x.data(), i, d.c, d.cp, s.h * s.w, fin.data(), &nin[i]);
  }
  for (int64_t i = 0; i < pref; ++i)
    sq[i] = variant == 3 ? tc_prep_pixel(y.data(), i, d.c, d.cp, s.hr * s.wr, fref32.data(), &nref[i])
                         : tc_prep_pixel(y.data(), i, d.c, d.cp, s.hr * s.wr, fref.data(), &nref[i]);
  // 2. patch denominators
  for (int64_t i = 0; i < nden; ++i) den[i] = patch_den(sq.data(), i, d.hr, d.wr, d.k, d.hrp, d.wrp);
  // 3. the match kernel, block by block
  const dim3 grid = tc_grid(d);
  std::unique_ptr<Tc2Smem> sm2(variant == 2 ? new Tc2Smem : nullptr);
  std::unique_ptr<Tc3Smem> sm4(variant == 4 ? new Tc3Smem : nullptr);
  std::unique_ptr<TcSmem> sm1(variant == 1 ? new TcSmem : nullptr);
  std::unique_ptr<DfSmem> sm3(variant == 3 ? new DfSmem : nullptr);
  for (int bz = 0; bz < static_cast<int>(grid.z); ++bz)
    for (int by = 0; by < static_cast<int>(grid.y); ++by)
      for (int bx = 0; bx < static_cast<int>(grid.x); ++bx) {
        const TcBlock blk = tc_block(d, bx, by, bz);
        if (variant == 3) {
          replay_diag_block<DfOps>(d, blk, tc_image(d, blk.b, fin32.data(), fref32.data(), den.data()), *sm3,
                                   pscore.data(), pidx.data());
          continue;
        }
        const TcImage img = tc_image(d, blk.b, fin.data(), fref.data(), den.data());
        if (variant == 2)
          replay_wide_block<64>(d, blk, img.fin, img.fref, img.den, *sm2, pscore.data(), pidx.data());
        else if (variant == 4)
          replay_wide_block<kTc3Ref>(d, blk, img.fin, img.fref, img.den, *sm4, pscore.data(), pidx.data());
        else
          replay_diag_block<TcOps>(d, blk, img, *sm1, pscore.data(), pidx.data());
      }
  for (int v : pidx)
    if (v < -1) std::abort();  // a partial result no block wrote
  // 4. merge over splits + FP32 score
  for (int64_t i = 0; i < s.n * q_count; ++i)
    tc_finish(d, x.data(), y.data(), nin.data(), nref.data(), den.data(), pscore.data(), pidx.data(), i, index.data(),
              score.data());
}

int main(int argc, char** argv) {
  if (argc == 8) {  // pm_tc_host_check n c h w hr wr k: print the workspace sizes only
    long v[7];
    for (int i = 0; i < 7; ++i) v[i] = std::atol(argv[1 + i]);
    const Shape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    std::printf("simt %zu tc %zu total %zu splits %d fp32diag %zu verified %d\n",
                workspace_floats(s, nullptr, nullptr) * sizeof(float), tc_workspace_bytes(s, nullptr, nullptr),
                cuda_workspace_bytes(s), tc_splits(s), df_workspace_bytes(s, nullptr, nullptr),
                kDiagonalFp32Verified ? 1 : 0);
    return 0;
  }
  if (argc < 12 || argc > 14) return 2;
  long v[8];
  for (int i = 0; i < 8; ++i) v[i] = std::atol(argv[1 + i]);
  const int splits = argc >= 13 ? std::atoi(argv[12]) : 0;
  const Shape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
  const int variant = argc == 14 ? std::atoi(argv[13]) : (tc_channels_padded(s.c) <= kTc2MaxCp ? 2 : 1);
  if ((variant == 2 || variant == 4) && tc_channels_padded(s.c) > kTc2MaxCp) return 5;
  if (variant < 1 || variant > 4) return 2;
  if (check_shape(s) != rrsr::kOk || !(variant == 3 ? df_supported(s) : tc_supported(s))) return 4;
  std::vector<float> x(s.n * s.c * s.h * s.w), y(s.n * s.c * s.hr * s.wr);
  FILE* f = std::fopen(argv[9], "rb");
  if (!f || std::fread(x.data(), 4, x.size(), f) != x.size()) return 3;
  std::fclose(f);
  f = std::fopen(argv[10], "rb");
  if (!f || std::fread(y.data(), 4, y.size(), f) != y.size()) return 3;
  std::fclose(f);
  std::vector<int32_t> index(s.n * s.hp() * s.wp());
  std::vector<float> score(index.size());
  if (v[7]) {
    std::vector<__half> hx(x.size()), hy(y.size());
    for (size_t i = 0; i < x.size(); ++i) hx[i] = __float2half(x[i]);
    for (size_t i = 0; i < y.size(); ++i) hy[i] = __float2half(y[i]);
    replay_tc(s, splits, variant, hx, hy, index, score);
  } else {
    replay_tc(s, splits, variant, x, y, index, score);
  }
  f = std::fopen(argv[11], "wb");
  if (!f) return 3;
  std::fwrite(index.data(), 4, index.size(), f);
  std::fwrite(score.data(), 4, score.size(), f);
  std::fclose(f);
  std::printf("splits %d variant %d\n", splits > 0 ? splits : tc_dims(s).splits, variant);
  return 0;
}
