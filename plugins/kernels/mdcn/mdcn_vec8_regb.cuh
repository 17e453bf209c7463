// The octet MDCN kernel (mdcn_vec8.cuh) with its column operand kept in registers: a variant for C_out / group <= 64
// (RRSR's 64-channel stage, its largest). The shared-memory kernel writes each blended octet to a B tile that the
// warps then read back with the wmma loads; here the lane that blends an octet owns exactly the tensor-core B
// fragment registers those 8 values belong to, so B never leaves registers (no store, no reload by each warp row):
//
//   mma.sync m16n8k16 (mma_m16n8k16.cuh): lane (g, t) holds B[2t, 2t+1][g] and B[2t+8, 2t+9][g] of a 16-deep k
//   step. Over the two k steps of a 32-deep K' chunk that is 8 values per lane -- one octet -- once the chunk's K'
//   order is permuted: k index kk of step s is K' 8 * (kk % 8 / 2) + 4 * s + 2 * (kk / 8) + kk % 2 of the chunk.
//   So lane (g, t) gathers and blends the item (pixel g of its 8-pixel group, K' octet t of the chunk) as before,
//   and its packed octet {ch 0-1, 2-3, 4-5, 6-7} is {b[0], b[1]} of step 0 and {b[0], b[1]} of step 1 -- the same
//   8 pixels x 4 K' octets per warp as the shared-memory kernel, lanes assigned by the fragment layout
//   (fragment_item).
//   The A fragments follow the same permutation. The prepare kernel lays the weights out in fragment order
//   (mdcn_vec8.cuh, reorder_weight_frag): a lane's four A registers of a k step are 16 contiguous bytes, so a
//   block copies a chunk's 64 x 32 weight tile with one 16-byte cp.async per thread, and a lane reads each fragment
//   with one conflict-free 16-byte shared load straight into the registers mma.sync takes (no register shuffles).
//
// Every warp multiplies all 64 rows against its own 8 * P pixels (P 8-pixel groups; a block is 8 warps, 64 * P
// pixels), so gathers are never duplicated across warps; the weight tile (64 x 32, by cp.async, double-buffered) is
// what the warps share. The same K loop (pipelined_chunks): offsets two chunks and gathers one chunk ahead.
// Same prepare kernel, K table, sampling, split-K partial sums and reduction (mdcn_vec8.cuh).
#pragma once

#include "../common/mma_m16n8k16.cuh"
#include "mdcn_vec8.cuh"

namespace rrsr {
namespace mdcn {
namespace vec8 {
namespace regb {

constexpr int kBM = 64;
constexpr int kFragsM = kBM / kFragRows;
constexpr int kTileA = kFragsM * kFragBlock;  // halves of a chunk's weight tile
static_assert(kTileA == kThreads * kVec, "one 16-byte copy per thread and chunk");

template <int P>
struct Tiling {
  static_assert(P == 2 || P == 4, "pixel groups per warp");
  static constexpr int kBN = kWarps * 8 * P;
  static constexpr int kMinBlocks = P <= 2 ? 2 : 1;
  static constexpr size_t kSmemFixed = 2 * static_cast<size_t>(kTileA) * sizeof(__half);
  static size_t smem_bytes(int k_total) { return kSmemFixed + static_cast<size_t>(k_total / kVec) * sizeof(int4); }
};

// Lane (g, t)'s item: pixel g of each 8-pixel group, K' octet t -- the B fragment it holds.
__host__ __device__ __forceinline__ LaneItem fragment_item(int lane) { return LaneItem{lane / 4, lane % 4}; }

// Tiles (BM x BN) of this kernel.
inline bool supported_tile(int bm, int bn) { return bm == kBM && (bn == Tiling<2>::kBN || bn == Tiling<4>::kBN); }

// Phase c (thread tid): chunk `chunk`'s weight tile (row tiles row0 / 16 .. + 4, fragment order) -> a[kTileA] by
// cp.async; row tiles past C_out / group are zero-filled.
template <typename TO>
__host__ __device__ __forceinline__ void load_weights_frag(const Problem<TO>& pr, const Coord& co, int chunk, int tid,
                                                           __half* a) {
  const int tiles = frag_row_tiles(pr);
  const int tile = co.row0 / kFragRows + tid / (kFragBlock / kVec);
  const bool valid = tile < tiles;
  const __half* src =
      pr.wr + ((static_cast<int64_t>(co.g) * tiles + tile) * pr.chunks + chunk) * kFragBlock +
      (tid % (kFragBlock / kVec)) * kVec;
  cuda::cp_async16(a + tid * kVec, valid ? src : pr.wr, valid);
}

// The A fragment of rows fm * 16 .. + 16, k step s (the permuted K' order above): a[0..3] in one 16-byte load.
struct AFrag {
  uint32_t r[4];
};

__host__ __device__ __forceinline__ AFrag load_a(const __half* a, int fm, int s, int lane) {
  const uint4 v = *reinterpret_cast<const uint4*>(a + (fm * 2 + s) * (kFragBlock / 2) + lane * kVec);
  return AFrag{{v.x, v.y, v.z, v.w}};
}

// B fragment of k step s from a lane's blended octet.
struct BFrag {
  uint32_t r[2];
};

__host__ __device__ __forceinline__ BFrag b_frag(const uint4& octet, int s) {
  BFrag b;
  b.r[0] = s == 0 ? octet.x : octet.z;
  b.r[1] = s == 0 ? octet.y : octet.w;
  return b;
}

// Epilogue of one lane: accumulator (fm, pp) holds rows fm * 16 + g (+ 8) at pixels 2t, 2t + 1 of group pp
// (write_run: y + bias, or the split's partial sums).
template <int P, typename TO>
__host__ __device__ __forceinline__ void store_lane(const Problem<TO>& pr, const Coord& co, int wid, int lane,
                                                    const float (&acc)[kFragsM][P][4]) {
  const int g = lane / 4, t = lane % 4;
RRSR_UNROLL
  for (int fm = 0; fm < kFragsM; ++fm)
RRSR_UNROLL
    for (int pp = 0; pp < P; ++pp) {
      const int64_t pix = co.pix0 + (wid * P + pp) * 8 + 2 * t;
      const int row = co.row0 + fm * 16 + g;
      write_run<2>(pr, co, row, pix, &acc[fm][pp][0]);      // c[0], c[1]: row g
      write_run<2>(pr, co, row + 8, pix, &acc[fm][pp][2]);  // c[2], c[3]: row g + 8
    }
}

template <int P, typename TO>
__global__ void __launch_bounds__(kThreads, Tiling<P>::kMinBlocks) gemm_regb_kernel(const Problem<TO> pr) {
  extern __shared__ __align__(128) unsigned char smem[];
  __half* a_buf = reinterpret_cast<__half*>(smem);  // [2][kTileA]
  int4* table = reinterpret_cast<int4*>(a_buf + 2 * kTileA);
  const Coord co = coord_of<kBM>(pr, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
                                 static_cast<int>(blockIdx.z), Tiling<P>::kBN);
  const int tid = static_cast<int>(threadIdx.x), wid = tid / 32, lane = tid % 32;
  const LaneItem li = fragment_item(lane);
  Pixel<TO> px[P];
RRSR_UNROLL
  for (int pp = 0; pp < P; ++pp) px[pp] = item_pixel(pr, co, wid * P + pp, li);
  const int c_begin = co.split * pr.chunks_per_split;
  const int c_end = c_begin + pr.chunks_per_split < pr.chunks ? c_begin + pr.chunks_per_split : pr.chunks;
  build_table(pr, co, tid, table);

  float acc[kFragsM][P][4];
RRSR_UNROLL
  for (int fm = 0; fm < kFragsM; ++fm)
RRSR_UNROLL
    for (int pp = 0; pp < P; ++pp)
RRSR_UNROLL
      for (int i = 0; i < 4; ++i) acc[fm][pp][i] = 0.0f;
  __syncthreads();  // the table

  OffsetRegs ahead[P];
  Gathered gr[P];
  uint4 bv[P];  // the blended octets of the chunk being multiplied: the B fragments (one set: registers)
RRSR_UNROLL
  for (int pp = 0; pp < P; ++pp) ahead[pp] = load_offsets_at(pr, px[pp], table, octet_kv(pr, c_begin, li));
  pipelined_chunks<2>(
      c_begin, c_end,
      [&](int c, int buf, int) {
        load_weights_frag(pr, co, c, tid, a_buf + buf * kTileA);
        cuda::cp_async_commit();
        const int kv = octet_kv(pr, c, li), kv_next = octet_kv(pr, c + 1, li);
RRSR_UNROLL
        for (int pp = 0; pp < P; ++pp) {
          gather_at(pr, px[pp], table, kv, ahead[pp], gr[pp]);
          if (c + 1 < c_end) ahead[pp] = load_offsets_at(pr, px[pp], table, kv_next);
        }
      },
      [&](int buf) {
RRSR_UNROLL
        for (int fm = 0; fm < kFragsM; ++fm)
RRSR_UNROLL
          for (int s = 0; s < 2; ++s) {
            const AFrag f = load_a(a_buf + buf * kTileA, fm, s, lane);
RRSR_UNROLL
            for (int pp = 0; pp < P; ++pp) cuda::mma_m16n8k16(acc[fm][pp], f.r, b_frag(bv[pp], s).r);
          }
      },
      // B lives in registers, so the "buffer" the staged chunk lands in is bv itself: multiply() of the current
      // chunk has already run when land() overwrites it (so two stages only)
      [&](int, int) {
RRSR_UNROLL
        for (int pp = 0; pp < P; ++pp) bv[pp] = blend_pack(gr[pp]);
      });
  store_lane<P>(pr, co, wid, lane, acc);
}

template <int P, typename TO>
cudaError_t launch_gemm_regb(const Problem<TO>& pr, cudaStream_t stream) {
  dim3 grid;
  if (!gemm_grid(pr, kBM, Tiling<P>::kBN, &grid)) return cudaErrorInvalidConfiguration;
  return cuda::launch_with_smem(gemm_regb_kernel<P, TO>, grid, kThreads, Tiling<P>::smem_bytes(pr.k_total), stream,
                                pr);
}

template <typename TO>
cudaError_t launch_gemm(const Problem<TO>& pr, const Config& cfg, cudaStream_t stream) {
  if (cfg.bm != kBM) return cudaErrorInvalidValue;
  switch (cfg.bn) {
    case Tiling<2>::kBN: return launch_gemm_regb<2>(pr, stream);
    case Tiling<4>::kBN: return launch_gemm_regb<4>(pr, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace regb
}  // namespace vec8
}  // namespace mdcn
}  // namespace rrsr
