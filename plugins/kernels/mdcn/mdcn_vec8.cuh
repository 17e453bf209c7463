// Tensor-core MDCN over a channel-octet copy of the features (NC/8HW8: 8 channels = 16 bytes per pixel), the FP16
// path for channel counts that are multiples of 8 per group and per offset group (RRSR's: 64, 128, 256 channels in
// 8 offset groups). Up to three kernels on the stream, all scratch in the launcher's workspace:
//   1. prepare:  x NCHW -> xh [n][c/8][h][w][8], and the weights re-laid [group][c_out/group][K'] with K' octet-major
//                (K' = (octet * taps + tap) * 8 + channel % 8, 8-aligned rows for 16-byte copies).
//   2. gemm:     an implicit GEMM y[row][pix] = sum_k' W'[row][k'] * col[k'][pix]. A K' chunk is 32 deep: four
//                channel octets. A work item (pixel, octet) computes one FP32 bilinear sample and gathers its four
//                corners as four 16-byte loads (all 8 channels of the octet, which one offset group shares), blends
//                them in FP32 and stores 8 FP16 column values with one 16-byte store. A warp's lanes take 8
//                neighbouring pixels x the chunk's 4 octets, which (K' octet-major) are mostly one octet at 4 taps:
//                their corners mostly share 128-byte lines of one plane (in NHWC each corner would be a line of its
//                own; octet_kv). Weight tiles come by cp.async; operands are double-buffered, offsets loaded two chunks
//                and gathers one chunk ahead of their use, so they are in flight during the tensor-core products.
//   3. reduce:   only for split-K launches (small problems: too few output tiles to fill the GPU), the FP32
//                partial sums of the splits, added in a fixed order (deterministic), + bias -> y.
// Precision: sampling positions, bilinear weights and the blend are FP32 (rrsr_math.h); a sample is rounded to
// FP16 once, as the tensor-core operand; products accumulate in FP32.
//
// Tile: BM output channels x BN pixels, 8 warps (kWarpsM x kWarpsN), each warp kFragsM x kFragsN 16x16
// accumulators. pick_config chooses (BM, BN) in {64, 128, 256} x {64, 128} and the split count.
//
// Written as __host__ __device__ phases sequenced by the __global__ kernels, so tests/plugins/cuda_host_check.cu
// replays the same code on a CPU (mma_tile.cuh and async_copy.cuh emulate the tensor cores and cp.async there).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../common/address.cuh"
#include "../common/async_copy.cuh"
#include "../common/device_info.cuh"
#include "../common/mma_tile.cuh"
#include "../common/rrsr_math.h"
#include "geometry.cuh"

namespace rrsr {
namespace mdcn {
namespace vec8 {

using cuda::kMmaTile;
using cuda::MmaAcc;

constexpr int kVec = 8;               // channels per 16-byte gather
constexpr int kKc = 32;               // K' per chunk
constexpr int kVecs = kKc / kVec;     // vectors per chunk row
constexpr int kLd = kKc + 8;          // shared row stride (halves): 80 B keeps 16-byte stores conflict-free
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxSplits = 4;
// Split-K is considered only while the smallest tiling (64 x 64) gives fewer blocks than this (more SMs than any
// current GPU has); the workspace reserves the partial sums only for such problems.
constexpr int64_t kSplitBlocks = 256;
constexpr size_t kAlign = 256;

__host__ __device__ __forceinline__ size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

constexpr int kMaxKVecs = 2048;  // K' octets per block table (32 KB of shared memory): K' = taps * c/group <= 16384
constexpr int kMaxTapSpan = 1 << 15;  // a tap's dilated row / column, packed as two 16-bit halves in the K table

// Whether the channels split into octets that stay inside one offset group and one conv group (any spatial size).
inline bool channels_fit(const Geometry& g) {
  return g.cin_g % kVec == 0 && g.ch_per_og % kVec == 0 && g.c % kVec == 0;
}

// Which problems this kernel takes: channels_fit; the per-image offsets, mask and feature copy are indexed with int
// (as the other kernels index a plane); a sample's 2 x 2 window needs two rows and columns (gather_at).
inline bool supports(const Geometry& g) {
  const int64_t hw_out = g.p_count(), hw = static_cast<int64_t>(g.h) * g.w;
  const int64_t kh = g.taps / g.kw;
  return channels_fit(g) && g.h >= 2 && g.w >= 2 &&
         static_cast<int64_t>(g.cin_g) * g.taps / kVec <= kMaxKVecs && (kh - 1) * g.dil_h < kMaxTapSpan &&
         (g.kw - 1) * static_cast<int64_t>(g.dil_w) < kMaxTapSpan &&
         2 * static_cast<int64_t>(g.offset_group) * g.taps * hw_out < (int64_t{1} << 31) &&
         static_cast<int64_t>(g.c) * hw < (int64_t{1} << 31);
}

template <int BM, int BN, int Stages = 2>
struct Tiling {
  static_assert((BM == 64 || BM == 128 || BM == 256) && (BN == 64 || BN == 128), "tile");
  static_assert(Stages == 2 || Stages == 3, "stages (pipelined_chunks)");
  static constexpr int kWarpsM = BM >= 2 * BN ? 4 : 2;
  static constexpr int kWarpsN = kWarps / kWarpsM;
  static constexpr int kWarpM = BM / kWarpsM;  // rows per warp
  static constexpr int kWarpN = BN / kWarpsN;  // pixels per warp
  static constexpr int kFragsM = kWarpM / kMmaTile;
  static constexpr int kFragsN = kWarpN / kMmaTile;
  static constexpr int kItems = BN * kVecs / kThreads;  // gather items per thread and chunk
  // resident blocks per SM the registers are capped for: 2 unless a warp holds 8 accumulator tiles, or a thread
  // two register sets of two gather items each (three stages at BN 128: 128 registers would spill)
  static constexpr int kMinBlocks = kFragsM * kFragsN >= 8 || (Stages == 3 && kItems >= 2) ? 1 : 2;
  static_assert(kItems >= 1 && kItems * kWarps * 8 == BN, "each warp takes kItems 8-pixel groups");
  // operands (a buffer per stage), epilogue scratch; the K table (smem_bytes) follows
  static constexpr size_t kSmemFixed = static_cast<size_t>(Stages) * (BM + BN) * kLd * sizeof(__half) +
                                       static_cast<size_t>(kWarps) * kMmaTile * kMmaTile * sizeof(float);
  static size_t smem_bytes(int k_total) { return kSmemFixed + static_cast<size_t>(k_total / kVec) * sizeof(int4); }
};

template <typename TO>
struct Problem : Geometry {
  int n;                            // images
  int k_total;                      // taps * cin_g
  int chunks;                       // ceil(k_total / kKc)
  int splits, chunks_per_split;
  bool regb;                        // wr in the register-B variant's fragment order (reorder_weight_frag)
  const __half* __restrict__ x;     // NCHW input (prepare reads it)
  const __half* __restrict__ wt;    // [c_out][cin_g][taps] (prepare reads it)
  __half* __restrict__ xh;          // workspace: [n][c / 8][h][w][8] (channel octets, 16 bytes per pixel)
  __half* __restrict__ wr;          // workspace: [group][cout_g][K'] (reorder_weight) or fragment-ordered
  float* __restrict__ partial;      // workspace: [splits][n][c_out][hw_out] (splits > 1)
  __half* __restrict__ slab;        // workspace: [n * group][band][chunks * kKc] (the column-slab variant only)
  int64_t band0, band;              // column-slab variant: the slab holds output pixels band0 .. band0 + band - 1
  const TO* __restrict__ off;
  const TO* __restrict__ mask;      // may be null
  const __half* __restrict__ bias;  // may be null
  __half* __restrict__ y;
};

// Workspace layout: xh, wr, then (split-K) the partial sums, then (when asked for) the column slab of the
// column-slab variant (mdcn_vec8_slab.cuh).
struct WorkspaceLayout {
  size_t xh, wr, partial, slab, total;  // byte offsets of each part; total bytes
  int64_t max_splits;                   // partial sums reserved for this many splits (1 = none)
  bool has_slab;                        // the slab is part of `total`
};

inline int64_t blocks_for(const Geometry& g, int64_t n, int bm, int bn) {
  return (g.p_count() + bn - 1) / bn * ((g.cout_g + bm - 1) / bm) * n * g.group;
}

// K' chunks of a problem: ceil(taps * cin_g / kKc).
inline int chunk_count(const Geometry& g) { return (g.cin_g * g.taps + kKc - 1) / kKc; }

// The register-B variant's weights: per conv group, 16-row tile and K' chunk, the 512 halves of its tensor-core A
// fragments in the order the lanes read them (reorder_weight_frag); rows and K' padded with zeros.
constexpr int kFragRows = 16;
constexpr int kFragBlock = kFragRows * kKc;  // halves per (row tile, chunk)
__host__ __device__ inline int frag_row_tiles(const Geometry& g) { return (g.cout_g + kFragRows - 1) / kFragRows; }
inline size_t frag_weight_elements(const Geometry& g) {
  return static_cast<size_t>(g.group) * frag_row_tiles(g) * chunk_count(g) * kFragBlock;
}

// The column slab of the column-slab variant: the (pixel, K' chunk) columns of every image and group, FP16, for a
// band of output pixels at a time -- all of them where they fit kMaxSlabBytes (RRSR's small stages), else the most
// multiples of kBandAlign that do (at least one), so the workspace stays bounded and a band can stay in L2 between
// its im2col and its GEMM. Bands of kBandAlign multiples keep every im2col block and GEMM tile inside one band.
constexpr size_t kMaxSlabBytes = size_t{32} << 20;
constexpr int64_t kBandAlign = 256;
inline size_t slab_pixel_bytes(const Geometry& g, int64_t n) {
  return static_cast<size_t>(n) * g.group * chunk_count(g) * kKc * sizeof(__half);
}
inline int64_t slab_band(const Geometry& g, int64_t n) {
  const int64_t p = g.p_count();
  const size_t per = slab_pixel_bytes(g, n);
  if (static_cast<size_t>(p) * per <= kMaxSlabBytes) return p;
  const int64_t fit = static_cast<int64_t>(kMaxSlabBytes / per) / kBandAlign * kBandAlign;
  return fit > kBandAlign ? fit : kBandAlign;
}
inline size_t slab_bytes(const Geometry& g, int64_t n) {
  return static_cast<size_t>(slab_band(g, n)) * slab_pixel_bytes(g, n);
}
// Slab bytes enough for every problem with these channels up to g's size and n images: slab_bytes(g, n), or
// kMaxSlabBytes where g's own band was cut down to a kBandAlign multiple below it (a smaller problem that fits
// whole can take up to kMaxSlabBytes).
inline size_t slab_bytes_up_to(const Geometry& g, int64_t n) {
  const size_t own = slab_bytes(g, n);
  const size_t whole = static_cast<size_t>(g.p_count()) * slab_pixel_bytes(g, n);
  const size_t small = whole < kMaxSlabBytes ? whole : kMaxSlabBytes;
  return own > small ? own : small;
}

inline WorkspaceLayout workspace_layout(const Geometry& g, int64_t n, bool want_slab = false) {
  WorkspaceLayout l{};
  l.xh = 0;
  l.wr = align_up(static_cast<size_t>(n) * g.c * g.h * g.w * sizeof(__half));
  const size_t plain = static_cast<size_t>(g.c_out) * g.cin_g * g.taps, frag = frag_weight_elements(g);
  l.partial = l.wr + align_up((plain > frag ? plain : frag) * sizeof(__half));
  l.max_splits = blocks_for(g, n, 64, 64) < kSplitBlocks ? kMaxSplits : 1;
  l.slab = align_up(l.partial + (l.max_splits > 1 ? static_cast<size_t>(l.max_splits) * n * g.c_out * g.p_count() *
                                                        sizeof(float)
                                                  : 0));
  l.has_slab = want_slab;
  l.total = l.slab + (l.has_slab ? slab_bytes(g, n) : 0);
  return l;
}

// Partial-sum bytes enough for every split-eligible problem with these channels and groups (any n, h, w): the
// eligible ones have n * ceil(hw_out / 64) < kSplitBlocks / (ceil(cout_g / 64) * group).
inline size_t max_partial_bytes(const Geometry& g) {
  const int64_t per = ((g.cout_g + 63) / 64) * static_cast<int64_t>(g.group);
  const int64_t tiles = (kSplitBlocks - 1) / per;  // n * ceil(hw_out / 64) at most
  return static_cast<size_t>(kMaxSplits) * g.c_out * (tiles * 64) * sizeof(float);
}

struct Config {
  int bm, bn, splits;
  bool regb;   // the register-B variant (mdcn_vec8_regb.cuh) instead of the shared-memory column tile
  bool slab;   // the column-slab variant (mdcn_vec8_slab.cuh): im2col into the workspace, then a plain GEMM
  int stages;  // K-loop pipeline depth of the shared-memory kernel (pipelined_chunks): 2 or 3
  // resident blocks per SM its registers are capped for; 0 = the tile's rule (Tiling::kMinBlocks). The one cap
  // that exists (has_kernel) is pick_config's: 256x64 with two stages at 2 (126 registers instead of 176, no spills:
  // twice the warps per SM). Caps for 64x64 (3, 4) and 128x64 (3) were slower than the launcher's tiles on an H200
  // (plugins/README.md) and were removed.
  int min_blocks;
};

// The tiles (BM x BN) the kernel is instantiated for; launch_gemm_smem and slab::launch dispatch exactly these.
inline bool supported_tile(int bm, int bn) {
  return (bm == 64 && (bn == 64 || bn == 128)) || (bm == 128 && (bn == 64 || bn == 128)) || (bm == 256 && bn == 64);
}

// Tile and split choice, from the H200 tile sweep (scripts/bench_kernels.py --tiles; plugins/README.md). BM: the
// smallest tile holding C_out / group, so each column chunk is sampled once; BN 128 for BM 64 (halves the weight
// traffic per pixel), else 64 (fewer registers). While the grid would leave SMs idle: BN 64, then BM 256 -> 128;
// below half a wave, split K (within the workspace's reservation, >= 16 chunks per split: shorter splits lost
// more to their prologue and the reduction than they gained in parallelism). The 256x64 tile runs with registers
// capped for two blocks per SM (H200: 1.31x at 256@160^2, 1.05x at 256@40^2 split in 4).
inline Config pick_config(const Geometry& g, int64_t n, int sm_count, int64_t max_splits) {
  Config c{g.cout_g <= 64 ? 64 : (g.cout_g <= 128 ? 128 : 256), 64, 1, false, false, 2, 0};
  if (c.bm == 64) c.bn = 128;
  const int64_t want = sm_count;
  if (blocks_for(g, n, c.bm, c.bn) < want && c.bn == 128) c.bn = 64;
  if (blocks_for(g, n, c.bm, c.bn) < want && c.bm == 256) c.bm = 128;
  const int64_t blocks = blocks_for(g, n, c.bm, c.bn);
  const int chunks = chunk_count(g);
  if (2 * blocks < want && max_splits > 1) {
    int64_t s = (2 * want + blocks - 1) / blocks;
    if (s > max_splits) s = max_splits;
    if (s > chunks / 16) s = chunks / 16;
    if (s > 1) c.splits = static_cast<int>(s);
  }
  if (c.bm == 256 && c.bn == 64) c.min_blocks = 2;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. prepare

// The tap and channel octet (within the conv group) of K' octet kv: K' runs octet-major (kv = octet * taps + tap),
// so the lanes of a pixel sample one octet plane at neighbouring taps (octet_kv).
__host__ __device__ __forceinline__ void octet_slot(const Geometry& g, int kv, int& tap, int& octet) {
  octet = kv / g.taps;
  tap = kv % g.taps;
}

// Element i of the re-laid weights: wr[(g * cout_g + row) * k_total + k'] = wt[g * cout_g + row][ch][tap], K' octet
// k' / 8 = (octet, tap) (octet_slot), ch = octet * 8 + k' % 8.
template <typename TO>
__host__ __device__ __forceinline__ void reorder_weight(const Problem<TO>& pr, int64_t i) {
  const int64_t row = i / pr.k_total;
  const int k = static_cast<int>(i % pr.k_total);
  int tap, octet;
  octet_slot(pr, k / kVec, tap, octet);
  const int ch = octet * kVec + k % kVec;
  pr.wr[i] = pr.wt[row * pr.k_total + static_cast<int64_t>(ch) * pr.taps + tap];
}

// Element i of the fragment-ordered weights (register-B variant). i = (((group * row_tiles + tile) * chunks + chunk)
// * 2 + step) * 256 + lane * 8 + h: lane (g, t)'s A registers a[0..3] of that k step (mma_m16n8k16.cuh), two halves
// each: register r = h / 2 holds row tile * 16 + g + 8 * (r % 2), K' chunk * 32 + 8t + 4 * step + 2 * (r / 2) + h % 2
// (the chunk's permuted K' order, mdcn_vec8_regb.cuh).
template <typename TO>
__host__ __device__ __forceinline__ void reorder_weight_frag(const Problem<TO>& pr, int64_t i) {
  const int h = static_cast<int>(i % 8), lane = static_cast<int>(i / 8 % 32), step = static_cast<int>(i / 256 % 2);
  const int64_t block = i / kFragBlock;
  const int chunk = static_cast<int>(block % pr.chunks);
  const int64_t tile_all = block / pr.chunks;
  const int tiles = frag_row_tiles(pr);
  const int grp = static_cast<int>(tile_all / tiles), tile = static_cast<int>(tile_all % tiles);
  const int r = h / 2;
  const int row = tile * kFragRows + lane / 4 + 8 * (r % 2);
  const int k = chunk * kKc + 8 * (lane % 4) + 4 * step + 2 * (r / 2) + h % 2;
  __half v = __float2half_rn(0.0f);
  if (row < pr.cout_g && k < pr.k_total) {
    int tap, octet;
    octet_slot(pr, k / kVec, tap, octet);
    const int ch = octet * kVec + k % kVec;
    v = pr.wt[(static_cast<int64_t>(grp) * pr.cout_g + row) * pr.k_total + static_cast<int64_t>(ch) * pr.taps + tap];
  }
  pr.wr[i] = v;
}

// Weight elements prepare writes.
template <typename TO>
__host__ __device__ __forceinline__ int64_t weight_elements(const Problem<TO>& pr) {
  return pr.regb ? static_cast<int64_t>(pr.group) * frag_row_tiles(pr) * pr.chunks * kFragBlock
                 : static_cast<int64_t>(pr.c_out) * pr.k_total;
}

// Element v of the vectorised copy: vector v = (image, channel octet, pixel) <- the octet's 8 NCHW values. Lanes
// take consecutive pixels: each of the 8 reads is coalesced across the warp, the write is one 16-byte store.
template <typename TO>
__host__ __device__ __forceinline__ void vectorise_input(const Problem<TO>& pr, int64_t v) {
  const int64_t hw = static_cast<int64_t>(pr.h) * pr.w;
  const int64_t p = v % hw, oct = v / hw;  // oct = image * (c / 8) + channel octet
  const __half* src = pr.x + oct * kVec * hw + p;
  uint4 out;
  __half* o = reinterpret_cast<__half*>(&out);
RRSR_UNROLL
  for (int i = 0; i < kVec; ++i) o[i] = src[i * hw];
  *reinterpret_cast<uint4*>(pr.xh + v * kVec) = out;
}

constexpr int kPrepThreads = 256;

template <typename TO>
__global__ void __launch_bounds__(kPrepThreads) prepare_kernel(const Problem<TO> pr, int64_t weight_blocks) {
  const int64_t b = blockIdx.x;
  if (b < weight_blocks) {  // the first blocks re-lay the weights, one element per thread
    const int64_t i = b * kPrepThreads + threadIdx.x;
    if (i < weight_elements(pr)) {
      if (pr.regb)
        reorder_weight_frag(pr, i);
      else
        reorder_weight(pr, i);
    }
    return;
  }
  const int64_t v = (b - weight_blocks) * kPrepThreads + threadIdx.x;
  if (v < static_cast<int64_t>(pr.n) * (pr.c / kVec) * pr.h * pr.w) vectorise_input(pr, v);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. gemm

struct Coord {
  int n, g;
  int row0;      // first output channel (within the group) of the block
  int64_t pix0;  // first output pixel of the block
  int split;
};

// Per-block table of the K' octets (built once, read every chunk instead of dividing and multiplying): for octet
// kv = k' / 8, {where its dy lies in the image's offsets (dx is hw_out further), where its mask value lies, the
// octet's plane in xh (in 16-byte pixels, within an image), tap row * dilation << 16 | tap column * dilation}.
// Element indices, not channels: a gather item then needs no multiply to find its operands.
template <typename TO>
__host__ __device__ __forceinline__ int4 table_entry(const Problem<TO>& pr, int group, int kv) {
  const int hw_out = static_cast<int>(pr.p_count());  // supports(): 2 * offset_group * taps * hw_out < 2^31
  const int plane = pr.h * pr.w;                     // and c * h * w < 2^31
  int tap, octet;
  octet_slot(pr, kv, tap, octet);
  const int gch = group * pr.cin_g + octet * kVec;
  const int og = gch / pr.ch_per_og;
  return make_int4(offset_channel(og, tap, pr.taps, 0) * hw_out, mask_channel(og, tap, pr.taps) * hw_out,
                   (gch / kVec) * plane, ((tap / pr.kw) * pr.dil_h) << 16 | ((tap % pr.kw) * pr.dil_w));
}

template <typename TO>
__host__ __device__ __forceinline__ void build_table(const Problem<TO>& pr, const Coord& co, int tid, int4* table) {
  for (int kv = tid; kv < pr.k_total / kVec; kv += kThreads) table[kv] = table_entry(pr, co.g, kv);
}

// A thread's output pixel and what of it stays fixed over the K loop (kThreads % BN == 0).
template <typename TO>
struct Pixel {
  bool valid;
  int y0, x0;           // ho * stride - pad_top, wo * stride - pad_left: the tap (0, 0) position before offsets
  unsigned q;           // the pixel's index in the output plane (0 for a tail pixel)
  // Per-image bases, indexed with 32-bit sums (int-sized per image, supports()) so an address is one wide multiply-add
  const TO* off;        // the image's offsets: a table entry's dy at off[entry.x + q]
  const TO* mask;       // likewise (mask[entry.y + q]), or null
  const uint4* xh;      // the image's vectorised copy, one 16-byte octet per element
};

// Output pixel pix (may be past the plane: a tail pixel) of image co.n.
template <typename TO>
__host__ __device__ __forceinline__ Pixel<TO> pixel_at(const Problem<TO>& pr, const Coord& co, int64_t pix) {
  Pixel<TO> px;
  const int64_t hw_out = pr.p_count();
  px.valid = pix < hw_out;
  const int64_t q = px.valid ? pix : 0;
  px.y0 = static_cast<int>(q / pr.w_out) * pr.stride_h - pr.pad_top;
  px.x0 = static_cast<int>(q % pr.w_out) * pr.stride_w - pr.pad_left;
  px.q = static_cast<unsigned>(q);
  px.off = pr.off + static_cast<int64_t>(co.n) * 2 * pr.offset_group * pr.taps * hw_out;
  px.mask = pr.mask ? pr.mask + static_cast<int64_t>(co.n) * pr.offset_group * pr.taps * hw_out : nullptr;
  px.xh = reinterpret_cast<const uint4*>(pr.xh) + static_cast<int64_t>(co.n) * (pr.c / kVec) * pr.h * pr.w;
  return px;
}

// The work items of a K chunk (both kernels): a warp takes 8 neighbouring pixels (per 8-pixel group) x the chunk's
// 4 K' octets. With K' octet-major (octet_slot) those are mostly one octet at four taps, so a warp's 32 corner loads
// fall within 8 pixels x 4 taps of one plane: fewer cache lines than 32 pixels in a row of one plane (random
// offsets) and than 4 planes (RRSR's octets each have their own offsets). Which lane takes which item is the
// kernel's choice (LaneItem).
struct LaneItem {
  int pixel;  // within each 8-pixel group
  int slot;   // K' octet of the chunk, 0..3
};

// The shared-memory kernel's: a quarter warp (the 8 lanes of one 16-byte shared-store phase) takes one octet of 8
// pixels, whose column rows (kLd apart) fall in distinct banks.
__host__ __device__ __forceinline__ LaneItem lane_item(int lane) { return LaneItem{lane % 8, lane / 8}; }

// K' octet of the item in chunk `chunk`, or -1 past K'.
template <typename TO>
__host__ __device__ __forceinline__ int octet_kv(const Problem<TO>& pr, int chunk, const LaneItem& li) {
  const int kv = chunk * kVecs + li.slot;
  return kv < pr.k_total / kVec ? kv : -1;
}

// The item's pixel in 8-pixel group `group` (of the block's BN / 8).
template <typename TO>
__host__ __device__ __forceinline__ Pixel<TO> item_pixel(const Problem<TO>& pr, const Coord& co, int group,
                                                         const LaneItem& li) {
  return pixel_at(pr, co, co.pix0 + group * 8 + li.pixel);
}

// A gather item's offset and mask values, loaded two chunks ahead of their use (software pipelining: the block
// never waits for them in its K loop).
struct OffsetRegs {
  float dy, dx, m;
};

// The registers of one gather item between issue and blend.
struct Gathered {
  uint4 v[4];  // four corners x 8 FP16 channels
  float w[4];  // their bilinear weights (mask folded in; 0 for corners outside the image)
  bool valid;  // false: a tail item (pixel past the image or K' past k_total), whose column must be exactly 0
};

// Phase a1 (the item (pixel px, K' octet kv; kv = -1 past K')): its offset and mask values. Tail items read those
// of a valid octet and pixel (no branch; the blend zeroes their column).
template <typename TO>
__host__ __device__ __forceinline__ OffsetRegs load_offsets_at(const Problem<TO>& pr, const Pixel<TO>& px,
                                                               const int4* table, int kv) {
  const int4 e = table[kv < 0 ? 0 : kv];
  const unsigned hw_out = static_cast<unsigned>(pr.p_count());  // supports(): the image's offsets are int-indexed
  const unsigned at = static_cast<unsigned>(e.x) + px.q;
  OffsetRegs o;
  o.dy = cuda::to_float(cuda::load_ro(px.off, at));
  o.dx = cuda::to_float(cuda::load_ro(px.off, at + hw_out));
  o.m = px.mask ? cuda::to_float(cuda::load_ro(px.mask, static_cast<unsigned>(e.y) + px.q)) : 1.0f;
  return o;
}

// Phase a2: the sample position from those values and the four 16-byte corner loads. The sample is taken as a
// window inside the image (window_sample; supports(): h, w >= 2): one address and its neighbours at +1 pixel and +1
// row instead of four checked indices -- half the address arithmetic and no branch (H200: 3% faster at 64@512^2).
template <typename TO>
__host__ __device__ __forceinline__ void gather_at(const Problem<TO>& pr, const Pixel<TO>& px, const int4* table,
                                                   int kv, const OffsetRegs& o, Gathered& gr) {
  gr.valid = px.valid && kv >= 0;
  const int4 e = table[kv < 0 ? 0 : kv];
  // as sample_position(): the integer part exact, then the offset added in FP32
  const float py = static_cast<float>(px.y0 + (e.w >> 16)) + o.dy;
  const float pxf = static_cast<float>(px.x0 + (e.w & 0xffff)) + o.dx;
  const WindowSample s = window_sample(py, pxf, pr.h, pr.w, o.m);
  const uint4* row0 = cuda::element_at(px.xh, static_cast<unsigned>(e.z + s.y * pr.w + s.x));
  const uint4* row1 = cuda::element_at(row0, static_cast<unsigned>(pr.w));
RRSR_UNROLL
  for (int q = 0; q < 4; ++q) {  // 16 bytes per pixel, so neighbouring lanes' corners share lines
    gr.v[q] = cuda::load_ro((q < 2 ? row0 : row1) + q % 2);
    gr.w[q] = s.w[q];
  }
}

// Phase b: the FP32 blend of the four corners, rounded to FP16: the item's 8 column values, channel order.
__host__ __device__ __forceinline__ uint4 blend_pack(const Gathered& gr) {
  float acc[kVec];
RRSR_UNROLL
  for (int i = 0; i < kVec; ++i) acc[i] = 0.0f;
RRSR_UNROLL
  for (int q = 0; q < 4; ++q) {
    const __half* h = reinterpret_cast<const __half*>(&gr.v[q]);
RRSR_UNROLL
    for (int i = 0; i < kVec; ++i) acc[i] = fmaf(gr.w[q], __half2float(h[i]), acc[i]);
  }
  uint4 out;
  __half* o = reinterpret_cast<__half*>(&out);
RRSR_UNROLL
  for (int i = 0; i < kVec; ++i) o[i] = __float2half_rn(acc[i]);
  if (!gr.valid) out = make_uint4(0u, 0u, 0u, 0u);  // not 0 * v: a non-finite v would poison the products
  return out;
}

// ... into the column tile b[BN][kLd] (pixel-major), as the item li of 8-pixel group `group`.
__host__ __device__ __forceinline__ void blend_store(const Gathered& gr, int group, const LaneItem& li, __half* b) {
  *reinterpret_cast<uint4*>(b + (group * 8 + li.pixel) * kLd + li.slot * kVec) = blend_pack(gr);
}

// A thread's share of every weight tile, fixed over the K loop: 16-byte pieces (row r0 + i * kRowStep, octet vec)
// for i < kPieces, so a chunk's copies need only the chunk's offset.
template <int BM>
struct WeightCursor {
  static constexpr int kPieces = BM * kVecs / kThreads;
  static constexpr int kRowStep = kThreads / kVecs;
  static_assert(kPieces >= 1 && BM * kVecs % kThreads == 0, "every thread copies the same number of pieces");
  const __half* src;  // row r0's octet vec at chunk 0
  int64_t row_stride;  // kRowStep rows of wr
  int r0, vec, rows_valid;  // rows_valid: pieces i < rows_valid have a row inside C_out / group
};

template <int BM, typename TO>
__host__ __device__ __forceinline__ WeightCursor<BM> weight_cursor(const Problem<TO>& pr, const Coord& co, int tid) {
  WeightCursor<BM> wc;
  wc.r0 = tid / kVecs;
  wc.vec = tid % kVecs;
  wc.src = pr.wr + (static_cast<int64_t>(co.g) * pr.cout_g + co.row0 + wc.r0) * pr.k_total + wc.vec * kVec;
  wc.row_stride = static_cast<int64_t>(WeightCursor<BM>::kRowStep) * pr.k_total;
  const int left = pr.cout_g - co.row0 - wc.r0;  // rows of this thread's column that exist
  wc.rows_valid = left <= 0 ? 0 : (left + WeightCursor<BM>::kRowStep - 1) / WeightCursor<BM>::kRowStep;
  return wc;
}

// Phase c (thread tid): the weight tile of chunk `chunk`, rows row0 .. row0 + BM -> a[BM][LD] by cp.async; rows
// past C_out / group and K' past k_total are zero-filled.
template <int BM, int LD = kLd, typename TO>
__host__ __device__ __forceinline__ void load_weights(const Problem<TO>& pr, const WeightCursor<BM>& wc, int chunk,
                                                      __half* a) {
  const bool k_valid = chunk * kKc + wc.vec * kVec < pr.k_total;
  const __half* src = wc.src + chunk * kKc;
RRSR_UNROLL
  for (int i = 0; i < WeightCursor<BM>::kPieces; ++i) {
    const bool valid = k_valid && i < wc.rows_valid;
    cuda::cp_async16(a + (wc.r0 + i * WeightCursor<BM>::kRowStep) * LD + wc.vec * kVec,
                     valid ? src + i * wc.row_stride : pr.wr, valid);
  }
}

// Phase d (warp wid): acc += a[warp rows] * b[warp pixels] over the chunk's kKc.
template <int BM, int BN>
__host__ __device__ __forceinline__ void multiply_chunk(const __half* a, const __half* b, int wid,
                                                        MmaAcc (&acc)[Tiling<BM, BN>::kFragsM][Tiling<BM, BN>::kFragsN]) {
  using Tl = Tiling<BM, BN>;
  const int wm = wid / Tl::kWarpsN, wn = wid % Tl::kWarpsN;
RRSR_UNROLL
  for (int ks = 0; ks < kKc / kMmaTile; ++ks) {
    cuda::MmaFragA fa[Tl::kFragsM];
    cuda::MmaFragB<true> fb[Tl::kFragsN];
RRSR_UNROLL
    for (int fm = 0; fm < Tl::kFragsM; ++fm)
      cuda::mma_load_a(fa[fm], a + (wm * Tl::kWarpM + fm * kMmaTile) * kLd + ks * kMmaTile, kLd);
RRSR_UNROLL
    for (int fn = 0; fn < Tl::kFragsN; ++fn)
      cuda::mma_load_b<true>(fb[fn], b + (wn * Tl::kWarpN + fn * kMmaTile) * kLd + ks * kMmaTile, kLd);
RRSR_UNROLL
    for (int fm = 0; fm < Tl::kFragsM; ++fm)
RRSR_UNROLL
      for (int fn = 0; fn < Tl::kFragsN; ++fn) cuda::mma_run<true>(acc[fm][fn], fa[fm], fb[fn]);
  }
}

// N output values of one row (within the group) at consecutive pixels from pix -> y (+ bias, rounded to FP16) or
// the split's FP32 partial sums; pixels past the plane are dropped. A whole aligned run is one N-half store.
template <int N, typename TO>
__host__ __device__ __forceinline__ void write_run(const Problem<TO>& pr, const Coord& co, int row, int64_t pix,
                                                   const float* v) {
  const int64_t hw_out = pr.p_count();
  if (row >= pr.cout_g) return;
  const int oc = co.g * pr.cout_g + row;
  const int64_t at = (static_cast<int64_t>(co.n) * pr.c_out + oc) * hw_out + pix;
  if (pr.splits > 1) {
    float* out = pr.partial + static_cast<int64_t>(co.split) * pr.n * pr.c_out * hw_out + at;
RRSR_UNROLL
    for (int i = 0; i < N; ++i)  // constant indices: v may be the caller's registers
      if (pix + i < hw_out) out[i] = v[i];
    return;
  }
  const float bias = pr.bias ? __half2float(pr.bias[oc]) : 0.0f;
  static_assert(N == 2 || N == 8, "a run is one 4- or 16-byte store");
  using Word = typename std::conditional<N == 8, uint4, unsigned>::type;
  Word word;
  __half* h = reinterpret_cast<__half*>(&word);
RRSR_UNROLL
  for (int i = 0; i < N; ++i) h[i] = __float2half_rn(v[i] + bias);
  if (pix + N <= hw_out && reinterpret_cast<uintptr_t>(pr.y + at) % sizeof(Word) == 0) {
    *reinterpret_cast<Word*>(pr.y + at) = word;
  } else {
RRSR_UNROLL
    for (int i = 0; i < N; ++i)
      if (pix + i < hw_out) pr.y[at + i] = __float2half_rn(v[i] + bias);
  }
}

// Phase e (lane of warp wid): accumulator tile (fm, fn), stored row-major in the warp's scratch -> write_run. A lane
// writes 8 consecutive pixels of one row.
template <int BM, int BN, typename TO>
__host__ __device__ __forceinline__ void write_tile(const Problem<TO>& pr, const Coord& co, int wid, int fm, int fn,
                                                    const float* scratch, int lane) {
  using Tl = Tiling<BM, BN>;
  const int wm = wid / Tl::kWarpsN, wn = wid % Tl::kWarpsN;
  const int r = lane / 2, c8 = (lane % 2) * 8;
  write_run<8>(pr, co, co.row0 + wm * Tl::kWarpM + fm * kMmaTile + r, co.pix0 + wn * Tl::kWarpN + fn * kMmaTile + c8,
               scratch + r * kMmaTile + c8);
}

// Phase e for the whole warp: each accumulator tile through the warp's scratch (`mine`, 16 x 16 floats) to
// write_tile.
template <int BM, int BN, int FM, int FN, typename TO>
__device__ __forceinline__ void write_accumulators(const Problem<TO>& pr, const Coord& co, int wid, int lane,
                                                   MmaAcc (&acc)[FM][FN], float* mine) {
RRSR_UNROLL
  for (int fm = 0; fm < FM; ++fm)
RRSR_UNROLL
    for (int fn = 0; fn < FN; ++fn) {
      cuda::mma_store(acc[fm][fn], mine, kMmaTile);
      __syncwarp();
      write_tile<BM, BN>(pr, co, wid, fm, fn, mine, lane);
      __syncwarp();
    }
}

template <int BM, typename TO>
__host__ __device__ __forceinline__ Coord coord_of(const Problem<TO>& pr, int bx, int by, int bz, int bn) {
  return Coord{bz / pr.group, bz % pr.group, (by / pr.splits) * BM, static_cast<int64_t>(bx) * bn, by % pr.splits};
}

// The K loop of both octet kernels, software-pipelined: a chunk's weight copies and gathers are issued before the
// tensor-core products of an earlier chunk and land (blended) after them, with the offsets one chunk further ahead,
// so the loads are in flight during the products. Per thread:
//   stage(c, buf, set)  start chunk c into buffer buf: its weight copies (committed), its gathers into register set
//                       `set` with the offsets already loaded, then the offsets of chunk c + 1 (when c + 1 < c_end)
//   multiply(buf)       the products of the chunk in buffer buf
//   land(buf, set)      the gathers in register set `set`, blended, into buffer buf
// Stages = 2: chunk c + 1 is staged just before chunk c's products and lands just after them (one register set,
// double buffers). Stages = 3: chunk c + 2 is staged there, and chunk c + 1 (staged one iteration earlier) lands:
// a gather has a whole iteration to arrive instead of one product phase, for two register sets and triple
// buffers. `set` is always a constant after unrolling (0 or 1), so register sets stay registers.
// The CPU replays (tests/plugins/cuda_host_check.cu) run this same schedule with steps that do the whole block's
// work each, so the buffer and prefetch bookkeeping is checked too (the barriers are then no-ops, and the replays'
// weight copies land only at these waits: host::DeferCopies).
__host__ __device__ __forceinline__ void block_barrier() {
#if defined(__CUDA_ARCH__)
  __syncthreads();
#endif
}

template <int Stages, class Stage, class Multiply, class Land>
__host__ __device__ __forceinline__ void pipelined_chunks(int c_begin, int c_end, Stage&& stage, Multiply&& multiply,
                                                          Land&& land) {
  static_assert(Stages == 2 || Stages == 3, "two or three stages");
  const int n = c_end - c_begin;
  if (n <= 0) return;  // an empty split: its partial sums are zeros
  if constexpr (Stages == 2) {
    stage(c_begin, 0, 0);
    land(0, 0);
    cuda::cp_async_wait_all();
    block_barrier();
    for (int c = c_begin; c < c_end; ++c) {
      const int cur = (c - c_begin) & 1, nxt = cur ^ 1;
      const bool more = c + 1 < c_end;
      if (more) stage(c + 1, nxt, 0);
      multiply(cur);
      if (more) {
        land(nxt, 0);
        cuda::cp_async_wait_all();
      }
      block_barrier();  // chunk c+1 visible to all warps, and nobody still reads chunk c's buffers
    }
  } else {
    // chunk i (of this split) sits in buffer i % 3 and, between stage and land, in register set i % 2
    stage(c_begin, 0, 0);
    if (n > 1) stage(c_begin + 1, 1, 1);
    land(0, 0);
    if (n > 1)
      cuda::cp_async_wait_pending<1>();  // chunk 0's weights; chunk 1's may still be in flight
    else
      cuda::cp_async_wait_all();
    block_barrier();
    int cur = 0;  // i % 3
    auto step = [&](int i, int set) {
      const int next = cur == 2 ? 0 : cur + 1, after = next == 2 ? 0 : next + 1;
      if (i + 2 < n) stage(c_begin + i + 2, after, set);  // set `set` held chunk i, landed last iteration
      multiply(cur);
      if (i + 1 < n) land(next, set ^ 1);
      if (i + 2 < n)
        cuda::cp_async_wait_pending<1>();  // chunk i+1's weights landed; chunk i+2's may be in flight
      else
        cuda::cp_async_wait_all();
      block_barrier();  // chunk i+1 visible to all warps, and nobody still reads chunk i's buffers
      cur = next;
    };
    for (int i = 0; i < n; i += 2) {
      step(i, 0);
      if (i + 1 < n) step(i + 1, 1);
    }
  }
}

// MinBlocks: the resident blocks per SM the registers are capped for (Tiling::kMinBlocks unless a variant asks
// for more, TileChoice::min_blocks)
template <int BM, int BN, int Stages, int MinBlocks, typename TO>
__global__ void __launch_bounds__(kThreads, MinBlocks) gemm_kernel(const Problem<TO> pr) {
  using Tl = Tiling<BM, BN, Stages>;
  extern __shared__ __align__(128) unsigned char smem[];
  __half* a_buf = reinterpret_cast<__half*>(smem);       // [Stages][BM][kLd]
  __half* b_buf = a_buf + Stages * BM * kLd;             // [Stages][BN][kLd]
  float* scratch = reinterpret_cast<float*>(b_buf + Stages * BN * kLd);
  int4* table = reinterpret_cast<int4*>(scratch + kWarps * kMmaTile * kMmaTile);
  const Coord co = coord_of<BM>(pr, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
                                static_cast<int>(blockIdx.z), BN);
  const int tid = static_cast<int>(threadIdx.x), wid = tid / 32, lane = tid % 32;
  const LaneItem li = lane_item(lane);
  Pixel<TO> px[Tl::kItems];  // item j: the lane's pixel in the warp's 8-pixel group wid * kItems + j
RRSR_UNROLL
  for (int j = 0; j < Tl::kItems; ++j) px[j] = item_pixel(pr, co, wid * Tl::kItems + j, li);
  const WeightCursor<BM> wc = weight_cursor<BM>(pr, co, tid);
  const int c_begin = co.split * pr.chunks_per_split;
  const int c_end = c_begin + pr.chunks_per_split < pr.chunks ? c_begin + pr.chunks_per_split : pr.chunks;
  build_table(pr, co, tid, table);

  MmaAcc acc[Tl::kFragsM][Tl::kFragsN];
RRSR_UNROLL
  for (int fm = 0; fm < Tl::kFragsM; ++fm)
RRSR_UNROLL
    for (int fn = 0; fn < Tl::kFragsN; ++fn) cuda::mma_zero(acc[fm][fn]);
  __syncthreads();  // the table

  OffsetRegs ahead[Tl::kItems];
  Gathered gr[Stages - 1][Tl::kItems];  // register sets (pipelined_chunks)
RRSR_UNROLL
  for (int j = 0; j < Tl::kItems; ++j) ahead[j] = load_offsets_at(pr, px[j], table, octet_kv(pr, c_begin, li));
  pipelined_chunks<Stages>(
      c_begin, c_end,
      [&](int c, int buf, int set) {
        load_weights<BM>(pr, wc, c, a_buf + buf * BM * kLd);
        cuda::cp_async_commit();
        const int kv = octet_kv(pr, c, li), kv_next = octet_kv(pr, c + 1, li);
RRSR_UNROLL
        for (int j = 0; j < Tl::kItems; ++j) {
          gather_at(pr, px[j], table, kv, ahead[j], gr[set][j]);
          if (c + 1 < c_end) ahead[j] = load_offsets_at(pr, px[j], table, kv_next);
        }
      },
      [&](int buf) { multiply_chunk<BM, BN>(a_buf + buf * BM * kLd, b_buf + buf * BN * kLd, wid, acc); },
      [&](int buf, int set) {
RRSR_UNROLL
        for (int j = 0; j < Tl::kItems; ++j)
          blend_store(gr[set][j], wid * Tl::kItems + j, li, b_buf + buf * BN * kLd);
      });

  write_accumulators<BM, BN>(pr, co, wid, lane, acc, scratch + wid * kMmaTile * kMmaTile);
}

// ---------------------------------------------------------------------------------------------------------------
// 3. reduce (split-K only): element i of y = bias + sum over splits, in split order

template <typename TO>
__host__ __device__ __forceinline__ void reduce_element(const Problem<TO>& pr, int64_t i) {
  const int64_t hw_out = pr.p_count();
  const int64_t total = static_cast<int64_t>(pr.n) * pr.c_out * hw_out;
  const int oc = static_cast<int>((i / hw_out) % pr.c_out);
  float v = pr.partial[i];
  for (int s = 1; s < pr.splits; ++s) v += pr.partial[s * total + i];
  if (pr.bias) v += __half2float(pr.bias[oc]);
  pr.y[i] = __float2half_rn(v);
}

template <typename TO>
__global__ void reduce_kernel(const Problem<TO> pr) {
  const int64_t total = static_cast<int64_t>(pr.n) * pr.c_out * pr.p_count();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    reduce_element(pr, i);
}

// ---------------------------------------------------------------------------------------------------------------
// Launch

// The grid of an octet GEMM (any of the kernels) with bm x bn tiles: x pixel tiles, y row tiles x K splits, z images
// x groups (x: `pixels` of them, default all); false past CUDA's grid limits.
template <typename TO>
inline bool gemm_grid(const Problem<TO>& pr, int bm, int bn, dim3* grid, int64_t pixels = -1) {
  const int64_t gx = ((pixels < 0 ? pr.p_count() : pixels) + bn - 1) / bn;
  const int64_t gy = (pr.cout_g + bm - 1) / bm * pr.splits;
  const int64_t gz = static_cast<int64_t>(pr.n) * pr.group;
  if (gx > 0x7fffffff || gy > 65535 || gz > 65535) return false;
  *grid = dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz));
  return true;
}

template <int BM, int BN, int Stages, int MinBlocks = Tiling<BM, BN, Stages>::kMinBlocks, typename TO>
cudaError_t launch_gemm(const Problem<TO>& pr, cudaStream_t stream) {
  dim3 grid;
  if (!gemm_grid(pr, BM, BN, &grid)) return cudaErrorInvalidConfiguration;
  return cuda::launch_with_smem(gemm_kernel<BM, BN, Stages, MinBlocks, TO>, grid, kThreads,
                                Tiling<BM, BN, Stages>::smem_bytes(pr.k_total), stream, pr);
}

// 1. prepare: weight blocks first, then the input vectors
template <typename TO>
cudaError_t launch_prepare(const Problem<TO>& pr, cudaStream_t stream) {
  const int64_t vectors = static_cast<int64_t>(pr.n) * (pr.c / kVec) * pr.h * pr.w;
  const int64_t w_total = weight_elements(pr);
  const int64_t w_blocks = (w_total + kPrepThreads - 1) / kPrepThreads;
  const int64_t x_blocks = (vectors + kPrepThreads - 1) / kPrepThreads;
  if (x_blocks + w_blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  prepare_kernel<TO><<<static_cast<unsigned>(x_blocks + w_blocks), kPrepThreads, 0, stream>>>(pr, w_blocks);
  return cudaGetLastError();
}

// 2. gemm with the shared-memory column tile (cfg's tile)
template <typename TO>
cudaError_t launch_gemm_smem(const Problem<TO>& pr, const Config& cfg, cudaStream_t stream) {
  if (cfg.min_blocks != 0) {  // more blocks per SM than the tile's own rule: 256x64 at two (has_kernel)
    if (cfg.stages != 2 || cfg.bm != 256 || cfg.bn != 64 || cfg.min_blocks != 2) return cudaErrorInvalidValue;
    return launch_gemm<256, 64, 2, 2>(pr, stream);
  }
  switch (cfg.stages * 1000000 + cfg.bm * 1000 + cfg.bn) {
    case 2064064: return launch_gemm<64, 64, 2>(pr, stream);
    case 2064128: return launch_gemm<64, 128, 2>(pr, stream);
    case 2128064: return launch_gemm<128, 64, 2>(pr, stream);
    case 2128128: return launch_gemm<128, 128, 2>(pr, stream);
    case 2256064: return launch_gemm<256, 64, 2>(pr, stream);
    case 3064064: return launch_gemm<64, 64, 3>(pr, stream);
    case 3064128: return launch_gemm<64, 128, 3>(pr, stream);
    case 3128064: return launch_gemm<128, 64, 3>(pr, stream);
    case 3128128: return launch_gemm<128, 128, 3>(pr, stream);
    case 3256064: return launch_gemm<256, 64, 3>(pr, stream);
    default: return cudaErrorInvalidValue;
  }
}

// 3. reduce (split launches only)
template <typename TO>
cudaError_t launch_reduce(const Problem<TO>& pr, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(pr.n) * pr.c_out * pr.p_count();
  int64_t blocks = (total + 255) / 256;
  if (blocks > 8192) blocks = 8192;
  reduce_kernel<TO><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(pr);
  return cudaGetLastError();
}

}  // namespace vec8
}  // namespace mdcn
}  // namespace rrsr
