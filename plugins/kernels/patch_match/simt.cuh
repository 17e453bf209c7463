// RrsrPatchMatch's SIMT kernel (Algo::kSimt, exact FP32; included by patch_match.cu), three launches on one
// stream, all FP32 after the loads:
//   1. normalise_kernel    one thread per pixel: f = x / max(||x||, 1e-12) over channels (NCHW, FP32 workspace);
//                          for the reference also the pixel's squared norm after normalisation
//   2. patch_den_kernel    one thread per reference patch: ||P_ref(r)|| + 1e-5 from the pixel squared norms
//   3. match_kernel        one thread per input patch q; the block walks the reference patches in tiles of kRefTile,
//                          staging their flattened C*k*k vectors in shared memory kElemTile elements at a time;
//                          each thread keeps kRefTile dot products and its running max/argmax in registers
// Reference patches are visited in ascending r and the running max is replaced only by a strictly greater score,
// so equal scores keep the lowest r (torch.argmax's first maximum). Every score of a thread is accumulated by the
// same sequence of operations, so equal reference patches get bit-equal scores. The score matrix is never stored.
#pragma once

#include "common.cuh"

namespace rrsr {
namespace patch_match {
namespace {

constexpr int kThreads = 128;   // input patches per block (one per thread)
constexpr int kRefTile = 32;    // reference patches per shared-memory tile (accumulators per thread)
constexpr int kElemTile = 128;  // patch elements (of C*k*k) per shared-memory stage

inline size_t align_floats(size_t count) { return (count + 63) / 64 * 64; }

struct Workspace {
  float* fin;   // [n][c][h][w]
  float* fref;  // [n][c][hr][wr]
  float* sq;    // [n][hr][wr]
  float* den;   // [n][hrp][wrp]
};

inline size_t workspace_floats(const Shape& s, Workspace* ws, void* base) {
  const size_t sizes[4] = {static_cast<size_t>(s.n * s.c * s.h * s.w), static_cast<size_t>(s.n * s.c * s.hr * s.wr),
                           static_cast<size_t>(s.n * s.hr * s.wr), static_cast<size_t>(s.n * s.hrp() * s.wrp())};
  float* parts[4] = {nullptr, nullptr, nullptr, nullptr};
  size_t total = 0;
  for (int i = 0; i < 4; ++i) {
    if (base) parts[i] = static_cast<float*>(base) + total;
    total += align_floats(sizes[i]);
  }
  if (ws) *ws = Workspace{parts[0], parts[1], parts[2], parts[3]};
  return total;
}

// ---- per-thread math, __host__ __device__ so a host program (tests/plugins/test_plugin_ort_patch_match.py) can
// run the kernels' phases block by block and thread by thread on the CPU.

// Pixel i of x [n][c][hw] normalised into out; returns its squared norm after normalisation.
template <typename T>
__host__ __device__ __forceinline__ float normalise_pixel(const T* x, int64_t i, int c, int64_t hw, float* out) {
  const int64_t b = i / hw, p = i % hw;
  const int64_t base = b * c * hw + p;
  const float den = pixel_divisor(x, base, c, hw);
  float nn = 0.0f;
  for (int ch = 0; ch < c; ++ch) {
    const float v = load(x, base + ch * hw) / den;
    out[base + ch * hw] = v;
    nn += v * v;
  }
  return nn;
}

struct MatchDims {
  int c, h, w, hr, wr, k, wp, wrp;
  int q_count, r_count;  // hp * wp, hrp * wrp
};

// Stage slot i (row i / kElemTile = reference patch r0 + row, column = patch element e0 + i % kElemTile, element
// e = ch * k * k + dy * k + dx as in the flattened patch); 0 past the last patch or element.
__host__ __device__ __forceinline__ float ref_stage_value(const float* fref_b, const MatchDims& d, int r0, int e0,
                                                          int i) {
  const int kk = d.k * d.k, r = r0 + i / kElemTile, e = e0 + i % kElemTile;
  if (r >= d.r_count || e >= d.c * kk) return 0.0f;
  const int ch = e / kk, tap = e % kk, ry = r / d.wrp, rx = r % d.wrp;
  return fref_b[(static_cast<int64_t>(ch) * d.hr + ry + tap / d.k) * d.wr + rx + tap % d.k];
}

// acc[j] += <input patch (qy, qx), staged reference patch j> over the stage's elements e0 .. e0 + kElemTile.
__host__ __device__ __forceinline__ void accumulate_stage(float (&acc)[kRefTile], const float (*sref)[kElemTile],
                                                          const float* fin_b, const MatchDims& d, int qy, int qx,
                                                          int e0) {
  const int kk = d.k * d.k;
  const int rest = d.c * kk - e0, ne = rest < kElemTile ? rest : kElemTile;
  for (int e = 0; e < ne; ++e) {
    const int ee = e0 + e, ch = ee / kk, tap = ee % kk;
    const float v = fin_b[(static_cast<int64_t>(ch) * d.h + qy + tap / d.k) * d.w + qx + tap % d.k];
    RRSR_PM_UNROLL
    for (int j = 0; j < kRefTile; ++j) acc[j] = fmaf(v, sref[j][e], acc[j]);
  }
}

// Running max over the tile's scores, in ascending r with a strict '>': the first maximum wins; NaN never wins.
__host__ __device__ __forceinline__ void update_best(const float (&acc)[kRefTile], const float* den_b, int r0,
                                                     int r_count, float* best, int* best_r) {
  RRSR_PM_UNROLL
  for (int j = 0; j < kRefTile; ++j) {
    const int r = r0 + j;
    if (r < r_count) {
      const float sc = acc[j] / den_b[r];
      if (sc > *best) {
        *best = sc;
        *best_r = r;
      }
    }
  }
}

// ---- kernels

// x [n][c][hw] -> out [n][c][hw] normalised per pixel; sq [n][hw] (optional) = squared norm after normalisation.
template <typename T>
__global__ void normalise_kernel(const T* __restrict__ x, int64_t pixels, int c, int64_t hw, float* __restrict__ out,
                                 float* __restrict__ sq) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= pixels) return;
  const float nn = normalise_pixel(x, i, c, hw, out);
  if (sq != nullptr) sq[i] = nn;
}

// grid (ceil(q_count / kThreads), n), kThreads threads.
__global__ void match_kernel(const float* __restrict__ fin, const float* __restrict__ fref,
                             const float* __restrict__ den, MatchDims d, int32_t* __restrict__ index,
                             float* __restrict__ score) {
  __shared__ float sref[kRefTile][kElemTile];
  const int b = blockIdx.y;
  const int q = blockIdx.x * kThreads + threadIdx.x;
  const bool active = q < d.q_count;
  const int qy = active ? q / d.wp : 0, qx = active ? q % d.wp : 0;
  const int elems = d.c * d.k * d.k;
  const float* fin_b = fin + static_cast<int64_t>(b) * d.c * d.h * d.w;
  const float* fref_b = fref + static_cast<int64_t>(b) * d.c * d.hr * d.wr;
  const float* den_b = den + static_cast<int64_t>(b) * d.r_count;

  float best = -INFINITY;
  int best_r = -1;
  for (int r0 = 0; r0 < d.r_count; r0 += kRefTile) {
    float acc[kRefTile];
#pragma unroll
    for (int j = 0; j < kRefTile; ++j) acc[j] = 0.0f;
    for (int e0 = 0; e0 < elems; e0 += kElemTile) {
      __syncthreads();  // the previous stage is consumed
      for (int i = threadIdx.x; i < kRefTile * kElemTile; i += kThreads)
        sref[i / kElemTile][i % kElemTile] = ref_stage_value(fref_b, d, r0, e0, i);
      __syncthreads();
      if (active) accumulate_stage(acc, sref, fin_b, d, qy, qx, e0);
    }
    if (active) update_best(acc, den_b, r0, d.r_count, &best, &best_r);
  }
  if (active) {
    const int64_t o = static_cast<int64_t>(b) * d.q_count + q;
    index[o] = best_r < 0 ? 0 : best_r;  // best_r < 0 only when every score was NaN
    score[o] = best_r < 0 ? __int_as_float(0x7fc00000) : best;
  }
}

template <typename T>
int launch(const Shape& s, const void* f_in, const void* f_ref, int32_t* index, float* score, const Workspace& ws,
           cudaStream_t stream) {
  const int threads = 256;
  const int64_t pin = s.n * s.h * s.w, pref = s.n * s.hr * s.wr;
  normalise_kernel<T><<<blocks_for(pin, threads), threads, 0, stream>>>(
      static_cast<const T*>(f_in), pin, static_cast<int>(s.c), s.h * s.w, ws.fin, nullptr);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return static_cast<int>(err);
  normalise_kernel<T><<<blocks_for(pref, threads), threads, 0, stream>>>(
      static_cast<const T*>(f_ref), pref, static_cast<int>(s.c), s.hr * s.wr, ws.fref, ws.sq);
  if ((err = cudaGetLastError()) != cudaSuccess) return static_cast<int>(err);
  const int64_t nden = s.n * s.hrp() * s.wrp();
  patch_den_kernel<<<blocks_for(nden, threads), threads, 0, stream>>>(
      ws.sq, nden, static_cast<int>(s.hr), static_cast<int>(s.wr), static_cast<int>(s.k), static_cast<int>(s.hrp()),
      static_cast<int>(s.wrp()), ws.den);
  if ((err = cudaGetLastError()) != cudaSuccess) return static_cast<int>(err);
  const MatchDims d{static_cast<int>(s.c),   static_cast<int>(s.h),   static_cast<int>(s.w),
                    static_cast<int>(s.hr),  static_cast<int>(s.wr),  static_cast<int>(s.k),
                    static_cast<int>(s.wp()), static_cast<int>(s.wrp()),
                    static_cast<int>(s.hp() * s.wp()), static_cast<int>(s.hrp() * s.wrp())};
  const dim3 grid(blocks_for(d.q_count, kThreads), static_cast<unsigned>(s.n));
  match_kernel<<<grid, kThreads, 0, stream>>>(ws.fin, ws.fref, ws.den, d, index, score);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace
}  // namespace patch_match
}  // namespace rrsr
