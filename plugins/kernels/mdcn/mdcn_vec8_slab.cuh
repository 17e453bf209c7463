// The column-slab variant of the octet kernel (Variant::kColumnSlab). The fused kernel samples a K chunk just before
// its products, so where the blocks are few (RRSR's small stages: each block with many chunks in sequence) or the
// gathers dominate, it mostly waits on them. Here the sampling is done first, for every column of a band of pixels
// at once (slab_band: all of them where they fit kMaxSlabBytes, else bands of kBandAlign multiples, one after the
// other on the stream, the slab reused):
//   2a. im2col: one gather item per thread -- the fused kernel's own (gather_at, blend_pack: FP32 position, weights
//       and blend, one FP16 rounding), a warp taking 8 pixels x 4 K' octets as there -- into the slab
//       [n * group][band][chunks * kKc] (K' past k_total written as zeros), so the whole GPU's parallelism hides
//       the gathers' latency;
//   2b. gemm: the octet kernel's products and epilogue, both operand tiles copied by cp.async three stages deep
//       (pipelined_chunks), no gathers in the K loop; a band's columns are read back soon after they were written
//       (from L2 where the band fits it, as the default 32 MiB does on an H100/H200).
// Prepare (the octet copy, the weights) and the split-K reduction are the octet kernel's. The slab is the last part
// of the workspace (workspace_layout(..., want_slab)).
#pragma once

#include "mdcn_vec8.cuh"

namespace rrsr {
namespace mdcn {
namespace vec8 {
namespace slab {

constexpr int kStages = 3;
constexpr int kIm2colPixels = kWarps * 8;  // pixels per im2col block: each warp 8 pixels x a chunk's 4 octets

// 2a. Gather item (lane of warp wid) of block (bx, chunk, z): pixel band0 + bx * kIm2colPixels + wid * 8 + lane % 8
// and K' octet chunk * 4 + lane / 8 of image z / group, group z % group -> its 16 bytes of the slab. Pixels past the
// plane write nothing (the GEMM zero-fills their rows); octets past K' write zeros.
template <typename TO>
__host__ __device__ __forceinline__ void im2col_item(const Problem<TO>& pr, int bx, int chunk, int z, int wid,
                                                     int lane) {
  const Coord co{z / pr.group, z % pr.group, 0, 0, 0};
  const LaneItem li = lane_item(lane);
  const int64_t in_band = static_cast<int64_t>(bx) * kIm2colPixels + wid * 8 + li.pixel;
  const int64_t pix = pr.band0 + in_band;
  if (pix >= pr.p_count()) return;
  const int kv = octet_kv(pr, chunk, li);  // -1 past K'
  const int4 entry = table_entry(pr, co.g, kv < 0 ? 0 : kv);
  const int local = kv < 0 ? -1 : 0;       // the item's entry is the one-entry table `entry`
  const Pixel<TO> px = pixel_at(pr, co, pix);
  const OffsetRegs o = load_offsets_at(pr, px, &entry, local);
  Gathered gr;
  gather_at(pr, px, &entry, local, o, gr);
  const int64_t row = static_cast<int64_t>(z) * pr.band + in_band;
  *reinterpret_cast<uint4*>(pr.slab + row * (static_cast<int64_t>(pr.chunks) * kKc) +
                            (static_cast<int64_t>(chunk) * kVecs + li.slot) * kVec) = blend_pack(gr);
}

template <typename TO>
__global__ void __launch_bounds__(kThreads) im2col_kernel(const Problem<TO> pr) {
  const int tid = static_cast<int>(threadIdx.x);
  im2col_item(pr, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z), tid / 32,
              tid % 32);
}

// 2b. Thread tid's share of chunk `chunk`'s column tile: pixel rows pix0 .. pix0 + BN (inside the band) of the slab
// -> b[BN][kLd] by cp.async, rows past the plane zero-filled.
template <int BN, typename TO>
__host__ __device__ __forceinline__ void load_columns(const Problem<TO>& pr, const Coord& co, int chunk, int tid,
                                                     __half* b) {
  constexpr int kPieces = BN * kVecs / kThreads;  // 16-byte pieces per thread: 1 (BN 64) or 2 (BN 128)
  static_assert(kPieces >= 1 && BN * kVecs % kThreads == 0, "every thread copies the same number of pieces");
  const int64_t k_pad = static_cast<int64_t>(pr.chunks) * kKc;
  const int64_t z = static_cast<int64_t>(co.n) * pr.group + co.g;
  const int vec = tid % kVecs;
RRSR_UNROLL
  for (int i = 0; i < kPieces; ++i) {
    const int r = tid / kVecs + i * (kThreads / kVecs);
    const int64_t pix = co.pix0 + r;
    const bool valid = pix < pr.p_count();
    const __half* src = pr.slab + (z * pr.band + (valid ? pix - pr.band0 : 0)) * k_pad + chunk * kKc + vec * kVec;
    cuda::cp_async16(b + r * kLd + vec * kVec, src, valid);
  }
}

// The GEMM block (bx, by, bz) of the current band: coord_of, pixels counted from band0.
template <int BM, int BN, typename TO>
__host__ __device__ __forceinline__ Coord band_coord(const Problem<TO>& pr, int bx, int by, int bz) {
  Coord co = coord_of<BM>(pr, bx, by, bz, BN);
  co.pix0 += pr.band0;
  return co;
}

// Whether the slab kernels can run bands of `band` pixels: a multiple of kBandAlign (so no im2col block or GEMM
// tile straddles two bands) unless one band covers the plane.
template <typename TO>
__host__ __device__ __forceinline__ bool runnable_band(const Problem<TO>& pr, int64_t band) {
  return band >= 1 && (band >= pr.p_count() || band % kBandAlign == 0);
}

// Output pixels of the current band.
template <typename TO>
__host__ __device__ __forceinline__ int64_t band_pixels(const Problem<TO>& pr) {
  const int64_t left = pr.p_count() - pr.band0;
  return left < pr.band ? left : pr.band;
}

template <int BM, int BN, typename TO>
__global__ void __launch_bounds__(kThreads, Tiling<BM, BN, kStages>::kMinBlocks)
    gemm_slab_kernel(const Problem<TO> pr) {
  using Tl = Tiling<BM, BN, kStages>;
  extern __shared__ __align__(128) unsigned char smem[];
  __half* a_buf = reinterpret_cast<__half*>(smem);  // [kStages][BM][kLd]
  __half* b_buf = a_buf + kStages * BM * kLd;       // [kStages][BN][kLd]
  float* scratch = reinterpret_cast<float*>(b_buf + kStages * BN * kLd);
  const Coord co = band_coord<BM, BN>(pr, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
                                     static_cast<int>(blockIdx.z));
  const int tid = static_cast<int>(threadIdx.x), wid = tid / 32, lane = tid % 32;
  const WeightCursor<BM> wc = weight_cursor<BM>(pr, co, tid);
  const int c_begin = co.split * pr.chunks_per_split;
  const int c_end = c_begin + pr.chunks_per_split < pr.chunks ? c_begin + pr.chunks_per_split : pr.chunks;
  MmaAcc acc[Tl::kFragsM][Tl::kFragsN];
RRSR_UNROLL
  for (int fm = 0; fm < Tl::kFragsM; ++fm)
RRSR_UNROLL
    for (int fn = 0; fn < Tl::kFragsN; ++fn) cuda::mma_zero(acc[fm][fn]);
  pipelined_chunks<kStages>(
      c_begin, c_end,
      [&](int c, int buf, int) {
        load_weights<BM>(pr, wc, c, a_buf + buf * BM * kLd);
        load_columns<BN>(pr, co, c, tid, b_buf + buf * BN * kLd);
        cuda::cp_async_commit();
      },
      [&](int buf) { multiply_chunk<BM, BN>(a_buf + buf * BM * kLd, b_buf + buf * BN * kLd, wid, acc); },
      [&](int, int) {});  // the columns come with the copies
  write_accumulators<BM, BN>(pr, co, wid, lane, acc, scratch + wid * kMmaTile * kMmaTile);
}

template <int BM, int BN, typename TO>
cudaError_t launch_gemm_tile(const Problem<TO>& pr, cudaStream_t stream) {
  dim3 grid;
  if (!gemm_grid(pr, BM, BN, &grid, band_pixels(pr))) return cudaErrorInvalidConfiguration;
  return cuda::launch_with_smem(gemm_slab_kernel<BM, BN, TO>, grid, kThreads, Tiling<BM, BN, kStages>::kSmemFixed,
                                stream, pr);
}

template <typename TO>
cudaError_t launch_band(const Problem<TO>& pr, const Config& cfg, cudaStream_t stream) {
  const int64_t gx = (band_pixels(pr) + kIm2colPixels - 1) / kIm2colPixels;
  im2col_kernel<TO><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(pr.chunks),
                           static_cast<unsigned>(static_cast<int64_t>(pr.n) * pr.group)),
                      kThreads, 0, stream>>>(pr);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  switch (cfg.bm * 1000 + cfg.bn) {
    case 64064: return launch_gemm_tile<64, 64>(pr, stream);
    case 64128: return launch_gemm_tile<64, 128>(pr, stream);
    case 128064: return launch_gemm_tile<128, 64>(pr, stream);
    case 128128: return launch_gemm_tile<128, 128>(pr, stream);
    case 256064: return launch_gemm_tile<256, 64>(pr, stream);
    default: return cudaErrorInvalidValue;
  }
}

// 2a + 2b (cfg's tile and splits) band by band: pr.band pixels at a time (all of them, or a multiple of kBandAlign),
// pr.band0 ignored. Stream order keeps a band's im2col after the previous band's GEMM, which read the same slab.
template <typename TO>
cudaError_t launch(Problem<TO> pr, const Config& cfg, cudaStream_t stream) {
  if (pr.slab == nullptr || !runnable_band(pr, pr.band)) return cudaErrorInvalidValue;
  const int64_t gx = (pr.band + kIm2colPixels - 1) / kIm2colPixels, gz = static_cast<int64_t>(pr.n) * pr.group;
  if (gx > 0x7fffffff || pr.chunks > 65535 || gz > 65535) return cudaErrorInvalidConfiguration;
  for (pr.band0 = 0; pr.band0 < pr.p_count(); pr.band0 += pr.band) {
    const cudaError_t err = launch_band(pr, cfg, stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace slab
}  // namespace vec8
}  // namespace mdcn
}  // namespace rrsr
