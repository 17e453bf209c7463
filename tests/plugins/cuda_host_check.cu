// Runs the CUDA kernels' device code on the CPU, for machines without a GPU.
//
// The .cu files are included whole, so this checks their own code, not a copy: the samplers and epilogues of the
// MDCN and RAS problems, the tiled kernel's three phases (load / accumulate / store, emulated block by block and
// thread by thread, with a loop over threads standing in for each __syncthreads()), and the per-element math of
// the RAS mean / gate / mixing kernels. Not covered: the hardware itself (launch configuration, shared-memory
// races, the block reduction of ras_mean_kernel) -- that needs the GPU machine.
//
// usage: cuda_host_check mdcn|mdcn_tc|ras <dir>   (inputs and meta.txt written by test_plugin_cuda_host_check.py)
//        cuda_host_check variants   (the launcher's configurations with each mdcn::Variant applied)
//        cuda_host_check window     (window_sample against bilinear_sample)
//        cuda_host_check mdcn_vec8 <dir> <bm> <bn> <splits> [regb|stages3|slab[<band>]]   (the vec8 tensor-core
//                                      kernel with that tile; regb: its register-B variant; stages3: its three-stage
//                                      K pipeline; slab: its column-slab variant, slab<band>: with bands of that many
//                                      pixels)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../plugins/kernels/mdcn/mdcn.cu"
#include "../../plugins/kernels/ras/ras.cu"

namespace {

using rrsr::cuda::kBK;
using rrsr::cuda::kBM;
using rrsr::cuda::kBN;
using rrsr::cuda::kThreads;

std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const void* data, size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

// tiled_conv_kernel on the CPU: every block of the grid, every thread of the block, phase by phase.
template <class Problem>
void emulate_tiled_conv(const Problem& pr, int batches) {
  const int64_t gx = (pr.p_count() + kBN - 1) / kBN, gy = (pr.m_count() + kBM - 1) / kBM;
  static rrsr::cuda::TileSmem sm;
  static float acc[kThreads][4][4];
  for (int z = 0; z < batches; ++z)
    for (int64_t by = 0; by < gy; ++by)
      for (int64_t bx = 0; bx < gx; ++bx) {
        const rrsr::cuda::TileCoord tc{z, by * kBM, bx * kBN};
        for (auto& a : acc)
          for (auto& row : a)
            for (float& v : row) v = 0.0f;
        for (int64_t k0 = 0; k0 < pr.k_count(); k0 += kBK) {
          for (int t = 0; t < kThreads; ++t) rrsr::cuda::tile_load(pr, tc, k0, t, sm);
          for (int t = 0; t < kThreads; ++t) rrsr::cuda::tile_accumulate(sm, t, acc[t]);
        }
        for (int t = 0; t < kThreads; ++t) rrsr::cuda::tile_store(pr, tc, t, acc[t]);
      }
}

// mdcn_tc_kernel on the CPU: per block, per K chunk, the loads thread by thread, then the tensor-core products
// warp by warp (mma_tile.cuh's host tiles), then the epilogue warp by warp and lane by lane.
template <int BM, typename TO>
void emulate_mdcn_tc_bm(const rrsr::mdcn::tc::Problem<TO>& pr, int batches) {
  namespace tc = rrsr::mdcn::tc;
  using Tl = tc::Tiling<BM>;
  const int64_t gx = (pr.p_count() + tc::kBN - 1) / tc::kBN, gy = (pr.cout_g + BM - 1) / BM;
  std::vector<unsigned char> smem(tc::smem_bytes_for<BM>(pr.taps));
  __half* a = reinterpret_cast<__half*>(smem.data());
  __half* b = a + BM * pr.lda();
  float* scratch = reinterpret_cast<float*>(b + pr.k_chunk() * tc::kLdb);
  static rrsr::cuda::MmaAcc acc[tc::kWarps][2][Tl::kFragsN];
  for (int z = 0; z < batches; ++z)
    for (int64_t by = 0; by < gy; ++by)
      for (int64_t bx = 0; bx < gx; ++bx) {
        const tc::Coord co{z / pr.group, z % pr.group, static_cast<int>(by) * BM, bx * tc::kBN};
        for (auto& w : acc)
          for (auto& r : w)
            for (auto& f : r) rrsr::cuda::mma_zero(f);
        for (int c0 = 0; c0 < pr.cin_g; c0 += tc::kChunkCh) {
          for (int t = 0; t < tc::kThreads; ++t) tc::load_weights<BM>(pr, co, c0, t, a);
          for (int t = 0; t < tc::kThreads; ++t) tc::load_columns(pr, co, c0, t, b);
          for (int w = 0; w < tc::kWarps; ++w) tc::multiply_chunk<BM>(a, pr.lda(), b, pr.taps, w, acc[w]);
        }
        for (int w = 0; w < tc::kWarps; ++w)
          for (int fm = 0; fm < Tl::kFragsM; ++fm)
            for (int fn = 0; fn < Tl::kFragsN; ++fn) {
              float* mine = scratch + w * rrsr::cuda::kMmaTile * rrsr::cuda::kMmaTile;
              rrsr::cuda::mma_store(acc[w][fm][fn], mine, rrsr::cuda::kMmaTile);
              for (int lane = 0; lane < 32; ++lane) tc::write_tile<BM>(pr, co, w, fm, fn, mine, lane);
            }
      }
}

template <typename TO>
void emulate_mdcn_tc(const rrsr::mdcn::tc::Problem<TO>& pr, int batches) {
  switch (rrsr::mdcn::tc::pick_bm(pr.cout_g)) {
    case 64: return emulate_mdcn_tc_bm<64>(pr, batches);
    case 128: return emulate_mdcn_tc_bm<128>(pr, batches);
    default: return emulate_mdcn_tc_bm<256>(pr, batches);
  }
}

// The octet kernels' shared steps, replayed: prepare (the input vectors and the weight re-layout element by
// element), the epilogue of a block's accumulators (warp by warp through its scratch, lane by lane), the split-K
// reduction element by element.
template <typename TO>
void replay_prepare(const rrsr::mdcn::vec8::Problem<TO>& pr) {
  namespace nh = rrsr::mdcn::vec8;
  for (int64_t v = 0; v < static_cast<int64_t>(pr.n) * (pr.c / nh::kVec) * pr.h * pr.w; ++v) nh::vectorise_input(pr, v);
  for (int64_t i = 0; i < nh::weight_elements(pr); ++i) {
    if (pr.regb)
      nh::reorder_weight_frag(pr, i);
    else
      nh::reorder_weight(pr, i);
  }
}

template <int BM, int BN, typename TO, typename Acc>
void replay_write_accumulators(const rrsr::mdcn::vec8::Problem<TO>& pr, const rrsr::mdcn::vec8::Coord& co,
                               const Acc& acc, float* scratch) {
  namespace nh = rrsr::mdcn::vec8;
  using Tl = nh::Tiling<BM, BN>;
  for (int w = 0; w < nh::kWarps; ++w)
    for (int fm = 0; fm < Tl::kFragsM; ++fm)
      for (int fn = 0; fn < Tl::kFragsN; ++fn) {
        float* mine = scratch + w * rrsr::cuda::kMmaTile * rrsr::cuda::kMmaTile;
        rrsr::cuda::mma_store(acc[w][fm][fn], mine, rrsr::cuda::kMmaTile);
        for (int lane = 0; lane < 32; ++lane) nh::write_tile<BM, BN>(pr, co, w, fm, fn, mine, lane);
      }
}

template <typename TO>
void replay_reduce(const rrsr::mdcn::vec8::Problem<TO>& pr) {
  if (pr.splits > 1)
    for (int64_t i = 0; i < static_cast<int64_t>(pr.n) * pr.c_out * pr.p_count(); ++i)
      rrsr::mdcn::vec8::reduce_element(pr, i);
}

// Every block of an octet GEMM's grid (BM x BN tiles, K splits: the launchers' gemm_grid), in launch order, with its
// K chunk range; `band`: the column-slab GEMM's grid over the current band (band_pixels, band_coord).
template <int BM, int BN, typename TO, typename F>
void for_each_block(const rrsr::mdcn::vec8::Problem<TO>& pr, F&& f, bool band = false) {
  namespace nh = rrsr::mdcn::vec8;
  namespace sl = rrsr::mdcn::vec8::slab;
  dim3 grid;
  if (!nh::gemm_grid(pr, BM, BN, &grid, band ? sl::band_pixels(pr) : -1)) std::abort();
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        const int x = static_cast<int>(bx), y = static_cast<int>(by), zz = static_cast<int>(z);
        const nh::Coord co = band ? sl::band_coord<BM, BN>(pr, x, y, zz) : nh::coord_of<BM>(pr, x, y, zz, BN);
        const int c_begin = co.split * pr.chunks_per_split;
        f(co, c_begin, std::min(c_begin + pr.chunks_per_split, pr.chunks));
      }
}

// The vec8 kernel on the CPU: prepare (the input vectors and the weight re-layout element by element), then per
// block the kernel's own K-loop schedule (pipelined_chunks: a buffer per stage, offsets one chunk ahead of the
// gathers) with each step done for the whole block -- weight copies and gathers thread by thread (each thread's
// offsets and gathered corners kept between steps, as its registers are), the products warp by warp; the epilogue
// lane by lane, and the split-K reduction element by element. The weight copies land only at the schedule's
// waits (host::DeferCopies), so a product that read a buffer before its copies were waited for would be wrong.
template <int BM, int BN, int Stages, typename TO>
void emulate_mdcn_vec8_tile(const rrsr::mdcn::vec8::Problem<TO>& pr) {
  namespace nh = rrsr::mdcn::vec8;
  using Tl = nh::Tiling<BM, BN, Stages>;
  const rrsr::cuda::host::DeferCopies defer;
  replay_prepare(pr);
  std::vector<unsigned char> smem(Tl::smem_bytes(pr.k_total));
  __half* a = reinterpret_cast<__half*>(smem.data());
  __half* b = a + Stages * BM * nh::kLd;
  float* scratch = reinterpret_cast<float*>(b + Stages * BN * nh::kLd);
  int4* table = reinterpret_cast<int4*>(scratch + nh::kWarps * rrsr::cuda::kMmaTile * rrsr::cuda::kMmaTile);
  static rrsr::cuda::MmaAcc acc[nh::kWarps][Tl::kFragsM][Tl::kFragsN];
  for_each_block<BM, BN>(pr, [&](const nh::Coord& co, int c_begin, int c_end) {
        for (auto& w : acc)
          for (auto& r : w)
            for (auto& f : r) rrsr::cuda::mma_zero(f);
        for (int t = 0; t < nh::kThreads; ++t) nh::build_table(pr, co, t, table);
        static nh::OffsetRegs ahead[nh::kThreads][Tl::kItems];
        static nh::Gathered gr[Stages - 1][nh::kThreads][Tl::kItems];  // the register sets
        auto pixel = [&](int t, int j) {
          return nh::item_pixel(pr, co, t / 32 * Tl::kItems + j, nh::lane_item(t % 32));
        };
        for (int t = 0; t < nh::kThreads; ++t)
          for (int j = 0; j < Tl::kItems; ++j)
            ahead[t][j] = nh::load_offsets_at(pr, pixel(t, j), table, nh::octet_kv(pr, c_begin, nh::lane_item(t % 32)));
        nh::pipelined_chunks<Stages>(
            c_begin, c_end,
            [&](int c, int buf, int set) {
              for (int t = 0; t < nh::kThreads; ++t) {
                nh::load_weights<BM>(pr, nh::weight_cursor<BM>(pr, co, t), c, a + buf * BM * nh::kLd);
                const nh::LaneItem li = nh::lane_item(t % 32);
                const int kv = nh::octet_kv(pr, c, li), kv_next = nh::octet_kv(pr, c + 1, li);
                for (int j = 0; j < Tl::kItems; ++j) {
                  nh::gather_at(pr, pixel(t, j), table, kv, ahead[t][j], gr[set][t][j]);
                  if (c + 1 < c_end) ahead[t][j] = nh::load_offsets_at(pr, pixel(t, j), table, kv_next);
                }
              }
              rrsr::cuda::cp_async_commit();  // every thread's group of this chunk
            },
            [&](int buf) {
              for (int w = 0; w < nh::kWarps; ++w)
                nh::multiply_chunk<BM, BN>(a + buf * BM * nh::kLd, b + buf * BN * nh::kLd, w, acc[w]);
            },
            [&](int buf, int set) {
              for (int t = 0; t < nh::kThreads; ++t)
                for (int j = 0; j < Tl::kItems; ++j)
                  nh::blend_store(gr[set][t][j], t / 32 * Tl::kItems + j, nh::lane_item(t % 32),
                                  b + buf * BN * nh::kLd);
            });
        replay_write_accumulators<BM, BN>(pr, co, acc, scratch);
      });
  replay_reduce(pr);
}

// The register-B variant (mdcn_vec8_regb.cuh) on the CPU: prepare in fragment order, then per block the kernel's
// K-loop schedule (pipelined_chunks) with whole-block steps: weight copies and each lane's gathers and blend (its B
// fragments, kept between steps as registers are), and per warp the A fragment loads multiplied by
// mma_m16n8k16_warp (the fragments of all 32 lanes reassembled by the PTX layout); the epilogue lane by lane, then
// the split-K reduction.
template <int P, typename TO>
void emulate_mdcn_vec8_regb(const rrsr::mdcn::vec8::Problem<TO>& pr) {
  namespace nh = rrsr::mdcn::vec8;
  namespace rb = rrsr::mdcn::vec8::regb;
  using Tl = rb::Tiling<P>;
  const rrsr::cuda::host::DeferCopies defer;
  replay_prepare(pr);
  std::vector<unsigned char> smem(Tl::smem_bytes(pr.k_total));
  __half* a = reinterpret_cast<__half*>(smem.data());
  int4* table = reinterpret_cast<int4*>(a + 2 * rb::kTileA);
  static float acc[nh::kWarps][32][rb::kFragsM][P][4];
  for_each_block<rb::kBM, Tl::kBN>(pr, [&](const nh::Coord& co, int c_begin, int c_end) {
        std::memset(acc, 0, sizeof acc);
        for (int t = 0; t < nh::kThreads; ++t) nh::build_table(pr, co, t, table);
        // per thread, between steps: offsets one chunk ahead, gathered corners, blended octets (its B fragments)
        static nh::OffsetRegs ahead[nh::kThreads][P];
        static nh::Gathered gr[nh::kThreads][P];
        static uint4 bv[nh::kThreads][P];
        auto pixel = [&](int t, int pp) { return nh::item_pixel(pr, co, t / 32 * P + pp, rb::fragment_item(t % 32)); };
        for (int t = 0; t < nh::kThreads; ++t)
          for (int pp = 0; pp < P; ++pp)
            ahead[t][pp] =
                nh::load_offsets_at(pr, pixel(t, pp), table, nh::octet_kv(pr, c_begin, rb::fragment_item(t % 32)));
        nh::pipelined_chunks<2>(
            c_begin, c_end,
            [&](int c, int buf, int) {
              for (int t = 0; t < nh::kThreads; ++t) {
                rb::load_weights_frag(pr, co, c, t, a + buf * rb::kTileA);
                const nh::LaneItem li = rb::fragment_item(t % 32);
                const int kv = nh::octet_kv(pr, c, li), kv_next = nh::octet_kv(pr, c + 1, li);
                for (int pp = 0; pp < P; ++pp) {
                  nh::gather_at(pr, pixel(t, pp), table, kv, ahead[t][pp], gr[t][pp]);
                  if (c + 1 < c_end) ahead[t][pp] = nh::load_offsets_at(pr, pixel(t, pp), table, kv_next);
                }
              }
              rrsr::cuda::cp_async_commit();
            },
            [&](int buf) {  // per warp: all 32 lanes' fragments into one tensor-core product
              for (int w = 0; w < nh::kWarps; ++w)
                for (int fm = 0; fm < rb::kFragsM; ++fm)
                  for (int s = 0; s < 2; ++s)
                    for (int pp = 0; pp < P; ++pp) {
                      uint32_t fa[32][4], fb[32][2];
                      float fc[32][4];
                      for (int lane = 0; lane < 32; ++lane) {
                        const rb::AFrag af = rb::load_a(a + buf * rb::kTileA, fm, s, lane);
                        const rb::BFrag bf = rb::b_frag(bv[w * 32 + lane][pp], s);
                        for (int i = 0; i < 4; ++i) fa[lane][i] = af.r[i], fc[lane][i] = acc[w][lane][fm][pp][i];
                        for (int i = 0; i < 2; ++i) fb[lane][i] = bf.r[i];
                      }
                      rrsr::cuda::mma_m16n8k16_warp(fc, fa, fb);
                      for (int lane = 0; lane < 32; ++lane)
                        for (int i = 0; i < 4; ++i) acc[w][lane][fm][pp][i] = fc[lane][i];
                    }
            },
            [&](int, int) {
              for (int t = 0; t < nh::kThreads; ++t)
                for (int pp = 0; pp < P; ++pp) bv[t][pp] = nh::blend_pack(gr[t][pp]);
            });
        for (int w = 0; w < nh::kWarps; ++w)
          for (int lane = 0; lane < 32; ++lane) rb::store_lane<P>(pr, co, w, lane, acc[w][lane]);
      });
  replay_reduce(pr);
}

// The column-slab variant (mdcn_vec8_slab.cuh) on the CPU: prepare, then band by band (slab::launch's loop) the
// im2col kernel item by item (block by block, warp by warp, lane by lane) and per GEMM block the kernel's own
// three-stage K loop (pipelined_chunks) with whole-block steps -- every thread's weight and column copies (landing
// only at the schedule's waits), the products warp by warp -- and the epilogue lane by lane; then the split-K
// reduction. The slab is poisoned before each band, so a column the GEMM reads must have been written for it.
template <int BM, int BN, typename TO>
void emulate_mdcn_vec8_slab(rrsr::mdcn::vec8::Problem<TO> pr) {
  namespace nh = rrsr::mdcn::vec8;
  namespace sl = rrsr::mdcn::vec8::slab;
  using Tl = nh::Tiling<BM, BN, sl::kStages>;
  const rrsr::cuda::host::DeferCopies defer;
  replay_prepare(pr);
  std::vector<unsigned char> smem(Tl::kSmemFixed);
  __half* a = reinterpret_cast<__half*>(smem.data());
  __half* b = a + sl::kStages * BM * nh::kLd;
  float* scratch = reinterpret_cast<float*>(b + sl::kStages * BN * nh::kLd);
  static rrsr::cuda::MmaAcc acc[nh::kWarps][Tl::kFragsM][Tl::kFragsN];
  const int64_t slab_elems = static_cast<int64_t>(pr.n) * pr.group * pr.band * pr.chunks * nh::kKc;
  for (pr.band0 = 0; pr.band0 < pr.p_count(); pr.band0 += pr.band) {
    for (int64_t i = 0; i < slab_elems; ++i) pr.slab[i] = __float2half_rn(1e4f);
    const int64_t pixels = sl::band_pixels(pr);
    for (int z = 0; z < pr.n * pr.group; ++z)
      for (int chunk = 0; chunk < pr.chunks; ++chunk)
        for (int64_t bx = 0; bx < (pixels + sl::kIm2colPixels - 1) / sl::kIm2colPixels; ++bx)
          for (int t = 0; t < nh::kThreads; ++t) sl::im2col_item(pr, static_cast<int>(bx), chunk, z, t / 32, t % 32);
    for_each_block<BM, BN>(
        pr,
        [&](const nh::Coord& co, int c_begin, int c_end) {
          for (auto& w : acc)
            for (auto& r : w)
              for (auto& f : r) rrsr::cuda::mma_zero(f);
          nh::pipelined_chunks<sl::kStages>(
              c_begin, c_end,
              [&](int c, int buf, int) {
                for (int t = 0; t < nh::kThreads; ++t) {
                  nh::load_weights<BM>(pr, nh::weight_cursor<BM>(pr, co, t), c, a + buf * BM * nh::kLd);
                  sl::load_columns<BN>(pr, co, c, t, b + buf * BN * nh::kLd);
                }
                rrsr::cuda::cp_async_commit();
              },
              [&](int buf) {
                for (int w = 0; w < nh::kWarps; ++w)
                  nh::multiply_chunk<BM, BN>(a + buf * BM * nh::kLd, b + buf * BN * nh::kLd, w, acc[w]);
              },
              [&](int, int) {});
          replay_write_accumulators<BM, BN>(pr, co, acc, scratch);
        },
        true);
  }
  replay_reduce(pr);
}

// Tile chosen as forward_cuda would (rrsr::mdcn::TileChoice), on the workspace it would get.
template <typename TO>
int emulate_mdcn_vec8(const rrsr::mdcn::Shape& s, const void* x, const void* w, const void* off, const void* bias,
                      const void* mask, void* y, const rrsr::mdcn::TileChoice& tile) {
  namespace nh = rrsr::mdcn::vec8;
  const rrsr::mdcn::Geometry g = rrsr::mdcn::make_geometry(s);
  if (!nh::supports(g)) {
    std::fprintf(stderr, "the vec8 kernel needs channel counts that are multiples of 8 and at least 2 x 2 pixels\n");
    return 2;
  }
  const bool slab = tile.variant == rrsr::mdcn::Variant::kColumnSlab;
  const nh::WorkspaceLayout l = nh::workspace_layout(g, s.n, slab);
  std::vector<unsigned char> ws(l.total + 16);
  if (tile.splits > l.max_splits) {
    std::fprintf(stderr, "%d splits exceed the %d the workspace reserves for this shape\n", tile.splits,
                 static_cast<int>(l.max_splits));
    return 2;
  }
  const bool regb = tile.regb != 0;
  auto pr = rrsr::mdcn::make_vec8_problem<TO>(s, g, l, tile.splits, regb, x, w, off, bias, mask, y, ws.data());
  if (slab && !rrsr::mdcn::narrow_band(pr, tile.band)) {
    std::fprintf(stderr, "band %lld: not a multiple of %lld below the plane\n", static_cast<long long>(tile.band),
                 static_cast<long long>(nh::kBandAlign));
    return 2;
  }
  if (regb) {
    if (tile.bm == 64 && tile.bn == nh::regb::Tiling<2>::kBN) return emulate_mdcn_vec8_regb<2>(pr), 0;
    if (tile.bm == 64 && tile.bn == nh::regb::Tiling<4>::kBN) return emulate_mdcn_vec8_regb<4>(pr), 0;
    std::fprintf(stderr, "bad register-B tile %dx%d\n", tile.bm, tile.bn);
    return 2;
  }
  if (slab) {
    switch (tile.bm * 1000 + tile.bn) {
      case 64064: emulate_mdcn_vec8_slab<64, 64>(pr); return 0;
      case 64128: emulate_mdcn_vec8_slab<64, 128>(pr); return 0;
      case 128064: emulate_mdcn_vec8_slab<128, 64>(pr); return 0;
      case 128128: emulate_mdcn_vec8_slab<128, 128>(pr); return 0;
      case 256064: emulate_mdcn_vec8_slab<256, 64>(pr); return 0;
      default: std::fprintf(stderr, "bad tile %dx%d\n", tile.bm, tile.bn); return 2;
    }
  }
  const bool three = tile.stages == 3;
  switch (tile.bm * 1000 + tile.bn) {
    case 64064: three ? emulate_mdcn_vec8_tile<64, 64, 3>(pr) : emulate_mdcn_vec8_tile<64, 64, 2>(pr); return 0;
    case 64128: three ? emulate_mdcn_vec8_tile<64, 128, 3>(pr) : emulate_mdcn_vec8_tile<64, 128, 2>(pr); return 0;
    case 128064: three ? emulate_mdcn_vec8_tile<128, 64, 3>(pr) : emulate_mdcn_vec8_tile<128, 64, 2>(pr); return 0;
    case 128128: three ? emulate_mdcn_vec8_tile<128, 128, 3>(pr) : emulate_mdcn_vec8_tile<128, 128, 2>(pr); return 0;
    case 256064: three ? emulate_mdcn_vec8_tile<256, 64, 3>(pr) : emulate_mdcn_vec8_tile<256, 64, 2>(pr); return 0;
    default: std::fprintf(stderr, "bad tile %dx%d\n", tile.bm, tile.bn); return 2;
  }
}

rrsr::mdcn::TileChoice g_tile;  // mdcn_vec8's tile (argv)

// `window`: window_sample (the octet kernels' gathers) against bilinear_sample (every other kernel) at positions on
// a 1/8-pixel grid past every border, at the borders' float neighbours, and NaN / infinite / huge ones, for images
// of 2..7 pixels a side: every in-image corner of bilinear_sample must sit in the window with the bit-identical
// weight and every other window corner weigh 0. Prints the positions checked; exit status 1 on a mismatch.
int window_main() {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  long checked = 0, bad = 0;
  for (int h = 2; h <= 7; h += 5)
    for (int w = 2; w <= 7; ++w) {
      std::vector<float> ys, xs;
      for (int i = -24; i <= 8 * (h + 3); ++i) ys.push_back(i / 8.0f);
      for (int i = -24; i <= 8 * (w + 3); ++i) xs.push_back(i / 8.0f);
      for (float b : {-1.0f, 0.0f, static_cast<float>(h - 1), static_cast<float>(h)}) {
        ys.push_back(std::nextafter(b, -inf));
        ys.push_back(std::nextafter(b, inf));
      }
      for (float b : {-1.0f, 0.0f, static_cast<float>(w - 1), static_cast<float>(w)}) {
        xs.push_back(std::nextafter(b, -inf));
        xs.push_back(std::nextafter(b, inf));
      }
      for (float v : {nan, inf, -inf, 3e9f, -3e9f}) ys.push_back(v), xs.push_back(v);
      for (float y : ys)
        for (float x : xs)
          for (float scale : {1.0f, 0.37f, -2.0f}) {
            const rrsr::BilinearSample b = rrsr::bilinear_sample(y, x, h, w, scale);
            const rrsr::WindowSample ws = rrsr::window_sample(y, x, h, w, scale);
            float want[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // bilinear_sample's weights moved to the window's corners
            bool ok = ws.y >= 0 && ws.y <= h - 2 && ws.x >= 0 && ws.x <= w - 2;
            for (int k = 0; k < 4 && ok; ++k) {
              if (b.w[k] == 0.0f) continue;
              const int dy = b.idx[k] / w - ws.y, dx = b.idx[k] % w - ws.x;
              ok = dy >= 0 && dy <= 1 && dx >= 0 && dx <= 1;
              if (ok) want[dy * 2 + dx] = b.w[k];
            }
            for (int k = 0; k < 4 && ok; ++k)
              ok = std::memcmp(&want[k], &ws.w[k], sizeof(float)) == 0 || (want[k] == 0.0f && ws.w[k] == 0.0f);
            ++checked;
            if (!ok && bad++ < 10)
              std::fprintf(stderr, "h %d w %d y %g x %g scale %g: window (%d, %d) weights %g %g %g %g\n", h, w, y, x,
                           scale, ws.y, ws.x, ws.w[0], ws.w[1], ws.w[2], ws.w[3]);
          }
    }
  std::printf("window_sample: %ld positions, %ld mismatches\n", checked, bad);
  return bad == 0 ? 0 : 1;
}

// `variants`: for RRSR's three stages (C = C_out = 64, 128, 256, offset_group 8) at 160 x 160 and 40 x 40 and a few
// SM counts, the launcher's own configuration, each Variant applied to it (vec8::with_variant) and two TileChoices
// (vec8::with_tile: 10 = three stages pinned, 11 = the 128x64 tile pinned), one line each:
//   <channels> <size> <sms> <variant> <bm> <bn> <splits> <regb> <stages> <min_blocks> <slab> <has_kernel>
// and the variants cuda_variants offers: "offered <channels> <fp16, all> | <fp32, all> | <fp16, GPU-verified only>".
int variants_main() {
  namespace nh = rrsr::mdcn::vec8;
  for (int ch : {64, 128, 256}) {
    rrsr::mdcn::Shape s{1, ch, 160, 160, ch, 3, 3, 160, 160, 1, 1, 1, 1, 1, 1, 1, 8};
    for (int size : {160, 40}) {
      rrsr::mdcn::Shape sz = s;
      sz.h = sz.w = sz.h_out = sz.w_out = size;
      const rrsr::mdcn::Geometry g = rrsr::mdcn::make_geometry(sz);
      for (int sms : {16, 132}) {
        const nh::Config base = nh::pick_config(g, sz.n, sms, nh::workspace_layout(g, sz.n).max_splits);
        const bool slab_room = nh::workspace_layout(g, sz.n, true).has_slab;
        // v 0..4: the variants; 10: a TileChoice pinning three stages, 11: one pinning the 128x64 tile
        rrsr::mdcn::TileChoice three, pinned;
        three.stages = 3;
        pinned.bm = 128;
        pinned.bn = 64;
        for (int v : {0, 1, 2, 3, 4, 10, 11}) {
          const nh::Config c = v == 10   ? nh::with_tile(base, three, slab_room)
                               : v == 11 ? nh::with_tile(base, pinned, slab_room)
                                         : nh::with_variant(base, static_cast<rrsr::mdcn::Variant>(v), slab_room);
          std::printf("%d %d %d %d %d %d %d %d %d %d %d %d\n", ch, size, sms, v, c.bm, c.bn, c.splits, c.regb ? 1 : 0,
                      c.stages, c.min_blocks, c.slab ? 1 : 0, nh::has_kernel(c) ? 1 : 0);
        }
      }
    }
    rrsr::mdcn::Variant out[8];
    std::printf("offered %d", ch);
    const rrsr::DType f16 = rrsr::DType::kFloat16, f32 = rrsr::DType::kFloat32;
    const std::pair<rrsr::DType, bool> asks[3] = {{f16, true}, {f32, true}, {f16, false}};
    for (int a = 0; a < 3; ++a) {
      const int n = rrsr::mdcn::cuda_variants(s, asks[a].first, f32, out, 8, asks[a].second);
      for (int i = 0; i < n; ++i) std::printf(" %d", static_cast<int>(out[i]));
      if (a < 2) std::printf(" |");
    }
    std::printf("\n");
  }
  return 0;
}

template <typename T, typename TO>
int run_mdcn(const std::string& dir, const rrsr::mdcn::Shape& s, bool has_bias, bool has_mask, bool tensor_core,
             bool vec8) {
  auto x = read_file(dir + "/x.bin"), w = read_file(dir + "/w.bin"), off = read_file(dir + "/off.bin");
  std::vector<char> b, m;
  if (has_bias) b = read_file(dir + "/b.bin");
  if (has_mask) m = read_file(dir + "/m.bin");
  std::vector<T> y(static_cast<size_t>(s.n * s.c_out * s.h_out * s.w_out));
  const void* bias = has_bias ? b.data() : nullptr;
  const void* mask = has_mask ? m.data() : nullptr;
  if constexpr (std::is_same<T, __half>::value) {
    if (vec8) {
      const int rc = emulate_mdcn_vec8<TO>(s, x.data(), w.data(), off.data(), bias, mask, y.data(), g_tile);
      if (rc == 0) write_file(dir + "/y.bin", y.data(), y.size() * sizeof(T));
      return rc;
    }
    if (tensor_core) {
      emulate_mdcn_tc(rrsr::mdcn::make_tc_problem<TO>(s, x.data(), w.data(), off.data(), bias, mask, y.data()),
                      static_cast<int>(s.n * s.group));
      write_file(dir + "/y.bin", y.data(), y.size() * sizeof(T));
      return 0;
    }
  }
  if (tensor_core || vec8) {
    std::fprintf(stderr, "the tensor-core MDCN kernel takes FP16 features only\n");
    return 2;
  }
  const auto p = rrsr::mdcn::make_problem<T, TO>(s, x.data(), w.data(), off.data(), bias, mask, y.data());
  emulate_tiled_conv(p, static_cast<int>(s.n * s.group));
  write_file(dir + "/y.bin", y.data(), y.size() * sizeof(T));
  return 0;
}

int mdcn_main(const std::string& dir, bool tensor_core, bool vec8 = false) {
  std::ifstream meta(dir + "/meta.txt");
  rrsr::mdcn::Shape s{};
  int has_bias = 0, has_mask = 0, t16 = 0, o16 = 0;
  meta >> s.n >> s.c >> s.h >> s.w >> s.c_out >> s.kh >> s.kw >> s.h_out >> s.w_out >> s.stride_h >> s.stride_w >>
      s.pad_top >> s.pad_left >> s.dil_h >> s.dil_w >> s.group >> s.offset_group >> has_bias >> has_mask >> t16 >> o16;
  if (!meta || rrsr::mdcn::check_shape(s) != rrsr::kOk) {
    std::fprintf(stderr, "bad mdcn meta.txt\n");
    return 2;
  }
  if (!t16 && !o16) return run_mdcn<float, float>(dir, s, has_bias, has_mask, tensor_core, vec8);
  if (!t16 && o16) return run_mdcn<float, __half>(dir, s, has_bias, has_mask, tensor_core, vec8);
  if (t16 && !o16) return run_mdcn<__half, float>(dir, s, has_bias, has_mask, tensor_core, vec8);
  return run_mdcn<__half, __half>(dir, s, has_bias, has_mask, tensor_core, vec8);
}

template <typename T, typename TG>
int run_ras(const std::string& dir, const rrsr::ras::Shape& s, bool has_valid, rrsr::DType t_valid) {
  using namespace rrsr::ras;
  const char* names[] = {"x", "r", "w", "b", "rw", "rb", "s1w", "s1b", "s2w", "s2b"};
  std::vector<char> in[10];
  for (int i = 0; i < 10; ++i) in[i] = read_file(dir + "/" + names[i] + ".bin");
  std::vector<char> vs;
  if (has_valid) vs = read_file(dir + "/vs.bin");
  const T* x = reinterpret_cast<const T*>(in[0].data());
  const T* r = reinterpret_cast<const T*>(in[1].data());
  const int n = static_cast<int>(s.n), cx = static_cast<int>(s.cx), cr = static_cast<int>(s.cr);
  const int c = cx + cr, h = static_cast<int>(s.h), w = static_cast<int>(s.w);
  const int e = static_cast<int>(s.experts), c_out = static_cast<int>(s.c_out);
  const int64_t k_count = static_cast<int64_t>(c) * kTaps;

  // ras_mean_kernel's per-block result (its tree reduction is replaced by a plain sum)
  std::vector<float> mu(static_cast<size_t>(n) * c);
  int vh, vw;
  valid_extent(has_valid ? vs.data() : nullptr, t_valid, h, w, &vh, &vw);
  for (int i = 0; i < n * c; ++i) {
    const T* plane = channel_plane(x, r, i / c, i % c, cx, cr, static_cast<int64_t>(h) * w);
    double sum = 0.0;
    for (int yy = 0; yy < vh; ++yy)
      for (int xx = 0; xx < vw; ++xx) sum += rrsr::cuda::to_float(plane[yy * w + xx]);
    mu[static_cast<size_t>(i)] = static_cast<float>(sum / (static_cast<double>(vh) * vw));
  }
  // ras_gate_kernel, thread loops in order
  std::vector<float> routing(static_cast<size_t>(n) * e), gate(static_cast<size_t>(n) * c_out), hidden(c);
  const TG* g[6];
  for (int i = 0; i < 6; ++i) g[i] = reinterpret_cast<const TG*>(in[4 + i].data());
  for (int img = 0; img < n; ++img) {
    const float* m = &mu[static_cast<size_t>(img) * c];
    for (int j = 0; j < c; ++j) hidden[j] = fmaxf(affine_row(g[2], g[3], m, c, j), 0.0f);
    for (int k = 0; k < e; ++k) routing[static_cast<size_t>(img) * e + k] = rrsr::sigmoidf_(affine_row(g[0], g[1], m, c, k));
    for (int o = 0; o < c_out; ++o)
      gate[static_cast<size_t>(img) * c_out + o] = rrsr::sigmoidf_(affine_row(g[4], g[5], hidden.data(), c, o));
  }
  // ras_mix_kernel, every element
  const T* wt = reinterpret_cast<const T*>(in[2].data());
  const T* bt = reinterpret_cast<const T*>(in[3].data());
  const int64_t per_image = static_cast<int64_t>(c_out) * k_count;
  std::vector<float> kmix(static_cast<size_t>(n * per_image)), beta(static_cast<size_t>(n) * c_out);
  for (int64_t i = 0; i < n * per_image; ++i)
    kmix[static_cast<size_t>(i)] = mix_value(&routing[static_cast<size_t>(i / per_image) * e], wt, e, per_image, i % per_image);
  for (int64_t i = 0; i < static_cast<int64_t>(n) * c_out; ++i)
    beta[static_cast<size_t>(i)] = mix_value(&routing[static_cast<size_t>(i / c_out) * e], bt, e, c_out, i % c_out);
  // the convolution through the tiled kernel's phases
  std::vector<T> y(static_cast<size_t>(n) * c_out * h * w);
  RasConvProblem<T> p{cx, cr, h, w, c_out, x, r, kmix.data(), beta.data(), gate.data(), y.data()};
  emulate_tiled_conv(p, n);
  write_file(dir + "/y.bin", y.data(), y.size() * sizeof(T));
  return 0;
}

int ras_main(const std::string& dir) {
  std::ifstream meta(dir + "/meta.txt");
  rrsr::ras::Shape s{};
  int has_valid = 0, valid64 = 0, t16 = 0, g16 = 0;
  meta >> s.n >> s.cx >> s.cr >> s.h >> s.w >> s.experts >> s.c_out >> has_valid >> valid64 >> t16 >> g16;
  if (!meta || rrsr::ras::check_shape(s) != rrsr::kOk) {
    std::fprintf(stderr, "bad ras meta.txt\n");
    return 2;
  }
  const rrsr::DType tv = valid64 ? rrsr::DType::kInt64 : rrsr::DType::kInt32;
  if (!t16 && !g16) return run_ras<float, float>(dir, s, has_valid, tv);
  if (!t16 && g16) return run_ras<float, __half>(dir, s, has_valid, tv);
  if (t16 && !g16) return run_ras<__half, float>(dir, s, has_valid, tv);
  return run_ras<__half, __half>(dir, s, has_valid, tv);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "variants") return variants_main();
  if (argc == 2 && std::string(argv[1]) == "window") return window_main();
  if (argc != 3 && !((argc == 6 || argc == 7) && std::string(argv[1]) == "mdcn_vec8")) {
    std::fprintf(stderr,
                 "usage: %s mdcn|mdcn_tc|ras <dir> | mdcn_vec8 <dir> <bm> <bn> <splits> [regb|stages3|slab[<band>]] | "
                 "variants\n",
                 argv[0]);
    return 2;
  }
  const std::string op = argv[1], dir = argv[2];
  if (op == "mdcn") return mdcn_main(dir, false);
  if (op == "mdcn_tc") return mdcn_main(dir, true);
  if (op == "mdcn_vec8") {
    g_tile.bm = std::atoi(argv[3]);
    g_tile.bn = std::atoi(argv[4]);
    g_tile.splits = std::atoi(argv[5]);
    const std::string variant = argc == 7 ? argv[6] : "";
    const bool slab = variant.compare(0, 4, "slab") == 0 &&
                      variant.find_first_not_of("0123456789", 4) == std::string::npos;
    if (!variant.empty() && variant != "regb" && variant != "stages3" && !slab) {
      std::fprintf(stderr, "unknown variant %s (regb, stages3, slab or slab<band pixels>)\n", variant.c_str());
      return 2;
    }
    g_tile.regb = variant == "regb";
    g_tile.stages = variant == "stages3" ? 3 : 2;
    if (slab) {
      g_tile.variant = rrsr::mdcn::Variant::kColumnSlab;
      g_tile.band = variant.size() > 4 ? std::atoll(variant.c_str() + 4) : 0;
    }
    return mdcn_main(dir, true, true);
  }
  if (op == "ras") return ras_main(dir);
  std::fprintf(stderr, "unknown op %s\n", op.c_str());
  return 2;
}
