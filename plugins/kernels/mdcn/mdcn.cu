// CUDA modulated deformable convolution, two kernels behind one launcher (see launch.h for which runs):
//   kSimt        the shared tiled implicit-GEMM kernel (common/conv_tile.cuh), FP32 FMA, with a sampler that
//                bilinearly samples the input at the deformed tap positions; every type combination.
//   kTensorCore  FP16 features: the column chunk sampled into shared memory as FP16 and multiplied on tensor cores
//                with FP32 accumulation: from a channel-octet copy with 16-byte gathers where the channel counts allow
//                (mdcn_vec8.cuh), else straight from NCHW (mdcn_tc.cuh).
// One GEMM batch per (image, group). Sampling positions and weights use the same FP32 helpers as the CPU kernel
// (common/rrsr_math.h).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/conv_tile.cuh"
#include "../common/rrsr_math.h"
#include "geometry.cuh"
#include "launch.h"
#include "mdcn_vec8.cuh"
#include "mdcn_vec8_variants.cuh"
#include "mdcn_tc.cuh"

namespace rrsr {
namespace mdcn {
namespace {

template <typename T, typename TO>
struct MdcnProblem : Geometry {
  const T* __restrict__ x_ptr;
  const T* __restrict__ w_ptr;
  const TO* __restrict__ off_ptr;
  const T* __restrict__ bias_ptr;   // may be null
  const TO* __restrict__ mask_ptr;  // may be null
  T* __restrict__ y_ptr;

  __host__ __device__ int64_t k_count() const { return static_cast<int64_t>(cin_g) * taps; }
  __host__ __device__ int64_t m_count() const { return cout_g; }

  // z = image * group + g; the weight rows of group g, row-major [c_out/group][c/group * kh * kw]
  __host__ __device__ float weight(int z, int64_t row, int64_t k) const {
    const int g = z % group;
    return cuda::to_float(w_ptr[(static_cast<int64_t>(g) * cout_g + row) * k_count() + k]);
  }

  // column row k = (channel within group) * taps + tap, as in a weight row
  __host__ __device__ float column(int z, int64_t k, int64_t pix) const {
    const int n = z / group, g = z % group;
    const int ch = g * cin_g + static_cast<int>(k / taps);
    const int tap = static_cast<int>(k % taps);
    const int og = ch / ch_per_og;
    const int ho = static_cast<int>(pix / w_out), wo = static_cast<int>(pix % w_out);
    const int64_t hw_out = p_count();
    const int64_t off_base = static_cast<int64_t>(n) * 2 * offset_group * taps;
    const float dy = cuda::to_float(off_ptr[(off_base + offset_channel(og, tap, taps, 0)) * hw_out + pix]);
    const float dx = cuda::to_float(off_ptr[(off_base + offset_channel(og, tap, taps, 1)) * hw_out + pix]);
    const float m =
        mask_ptr ? cuda::to_float(
                       mask_ptr[(static_cast<int64_t>(n) * offset_group * taps + mask_channel(og, tap, taps)) * hw_out +
                                pix])
                 : 1.0f;
    const float py = sample_position(ho, stride_h, pad_top, tap / kw, dil_h, dy);
    const float px = sample_position(wo, stride_w, pad_left, tap % kw, dil_w, dx);
    const BilinearSample s = bilinear_sample(py, px, h, w, m);
    const T* plane = x_ptr + (static_cast<int64_t>(n) * c + ch) * h * w;
    float v = 0.0f;
RRSR_UNROLL
    for (int i = 0; i < 4; ++i) v = fmaf(s.w[i], cuda::to_float(plane[s.idx[i]]), v);
    return v;
  }

  __host__ __device__ void store(int z, int64_t row, int64_t pix, float acc) const {
    const int n = z / group, g = z % group;
    const int64_t oc = static_cast<int64_t>(g) * cout_g + row;
    if (bias_ptr) acc += cuda::to_float(bias_ptr[oc]);
    y_ptr[(static_cast<int64_t>(n) * c_out + oc) * p_count() + pix] = cuda::from_float<T>(acc);
  }
};

template <typename T, typename TO>
MdcnProblem<T, TO> make_problem(const Shape& s, const void* x, const void* weight, const void* offset,
                                const void* bias, const void* mask, void* y) {
  MdcnProblem<T, TO> p;
  static_cast<Geometry&>(p) = make_geometry(s);
  p.x_ptr = static_cast<const T*>(x);
  p.w_ptr = static_cast<const T*>(weight);
  p.off_ptr = static_cast<const TO*>(offset);
  p.bias_ptr = static_cast<const T*>(bias);
  p.mask_ptr = static_cast<const TO*>(mask);
  p.y_ptr = static_cast<T*>(y);
  return p;
}

template <typename T, typename TO>
int launch(const Shape& s, const void* x, const void* weight, const void* offset, const void* bias, const void* mask,
           void* y, cudaStream_t stream) {
  const MdcnProblem<T, TO> p = make_problem<T, TO>(s, x, weight, offset, bias, mask, y);
  const int64_t batches = s.n * s.group;
  if (batches > 65535) return static_cast<int>(cudaErrorInvalidConfiguration);
  return static_cast<int>(cuda::launch_tiled_conv(p, static_cast<int>(batches), stream));
}

template <typename TO>
tc::Problem<TO> make_tc_problem(const Shape& s, const void* x, const void* weight, const void* offset,
                                const void* bias, const void* mask, void* y) {
  tc::Problem<TO> q;
  static_cast<Geometry&>(q) = make_geometry(s);
  q.weight_vec = (static_cast<int64_t>(q.cin_g) * q.taps) % 8 == 0 && reinterpret_cast<uintptr_t>(weight) % 16 == 0;
  q.x = static_cast<const __half*>(x);
  q.wt = static_cast<const __half*>(weight);
  q.off = static_cast<const TO*>(offset);
  q.bias = static_cast<const __half*>(bias);
  q.mask = static_cast<const TO*>(mask);
  q.y = static_cast<__half*>(y);
  return q;
}

// Whether the tensor-core kernel's shared memory fits this device (e.g. a 5x5 kernel at 256 channels may not).
bool tc_fits(const Shape& s) {
  cuda::DeviceInfo dev;
  if (cuda::current_device_info(dev) != cudaSuccess) return false;
  const int taps = static_cast<int>(s.kh * s.kw), cout_g = static_cast<int>(s.c_out / s.group);
  const int bm = tc::pick_bm(cout_g);
  const size_t need = bm == 64 ? tc::smem_bytes_for<64>(taps)
                               : (bm == 128 ? tc::smem_bytes_for<128>(taps) : tc::smem_bytes_for<256>(taps));
  return need <= static_cast<size_t>(dev.smem_optin);
}

template <typename TO>
int launch_tc(const Shape& s, const void* x, const void* weight, const void* offset, const void* bias,
              const void* mask, void* y, cudaStream_t stream) {
  const tc::Problem<TO> p = make_tc_problem<TO>(s, x, weight, offset, bias, mask, y);
  const int64_t batches = s.n * s.group;
  if (batches > 65535) return static_cast<int>(cudaErrorInvalidConfiguration);
  return static_cast<int>(tc::launch(p, static_cast<int>(batches), stream));
}

// The vec8 kernel's problem over the workspace laid out as `l` (vec8::workspace_layout of g and s.n), K split in
// `splits` (1: none; more needs the partial sums of l), the weights prepared for the register-B variant or not.
template <typename TO>
vec8::Problem<TO> make_vec8_problem(const Shape& s, const Geometry& g, const vec8::WorkspaceLayout& l, int splits,
                                    bool regb, const void* x, const void* weight, const void* offset, const void* bias,
                                    const void* mask, void* y, void* workspace) {
  vec8::Problem<TO> q;
  static_cast<Geometry&>(q) = g;
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  q.n = static_cast<int>(s.n);
  q.k_total = q.cin_g * q.taps;
  q.chunks = vec8::chunk_count(g);
  q.splits = splits;
  q.chunks_per_split = (q.chunks + splits - 1) / splits;
  q.regb = regb;
  q.x = static_cast<const __half*>(x);
  q.wt = static_cast<const __half*>(weight);
  q.xh = reinterpret_cast<__half*>(ws + l.xh);
  q.wr = reinterpret_cast<__half*>(ws + l.wr);
  q.partial = l.max_splits > 1 ? reinterpret_cast<float*>(ws + l.partial) : nullptr;
  q.slab = l.has_slab ? reinterpret_cast<__half*>(ws + l.slab) : nullptr;
  q.band0 = 0;
  q.band = l.has_slab ? vec8::slab_band(g, s.n) : g.p_count();
  q.off = static_cast<const TO*>(offset);
  q.mask = static_cast<const TO*>(mask);
  q.bias = static_cast<const __half*>(bias);
  q.y = static_cast<__half*>(y);
  return q;
}

// The column-slab variant's band cut to `band` pixels (TileChoice::band; 0 keeps it) where that is narrower; false
// for a band the kernel cannot run (not a kBandAlign multiple below the plane's pixel count).
template <typename TO>
bool narrow_band(vec8::Problem<TO>& q, int64_t band) {
  if (band < 0 || (band > 0 && !vec8::slab::runnable_band(q, band))) return false;
  if (band > 0 && band < q.band) q.band = band;
  return true;
}

template <typename TO>
int launch_vec8(const Shape& s, const void* x, const void* weight, const void* offset, const void* bias,
                const void* mask, void* y, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                const TileChoice* tile) {
  const Geometry g = make_geometry(s);
  const bool want_slab = tile && tile->variant == Variant::kColumnSlab;
  vec8::WorkspaceLayout l = vec8::workspace_layout(g, s.n, want_slab);
  if (workspace == nullptr || workspace_bytes < l.partial) return kErrWorkspaceTooSmall;
  if (l.has_slab && workspace_bytes < l.total) l = vec8::workspace_layout(g, s.n);  // no room: the default runs
  const int64_t max_splits = workspace_bytes >= l.slab ? l.max_splits : 1;
  cuda::DeviceInfo dev;
  cudaError_t err = cuda::current_device_info(dev);
  if (err != cudaSuccess) return static_cast<int>(err);
  vec8::Config cfg = vec8::pick_config(g, s.n, dev.sms, max_splits);
  if (tile) cfg = vec8::with_tile(cfg, *tile, l.has_slab);
  if (!vec8::has_kernel(cfg)) return kErrInvalidArgument;
  if (tile && tile->splits) {
    if (tile->splits < 1) return kErrInvalidArgument;
    if (tile->splits > max_splits) return kErrWorkspaceTooSmall;
    cfg.splits = tile->splits;
  }
  vec8::Problem<TO> q =
      make_vec8_problem<TO>(s, g, l, cfg.splits, cfg.regb, x, weight, offset, bias, mask, y, workspace);
  if (cfg.slab && tile && !narrow_band(q, tile->band)) return kErrInvalidArgument;
  err = vec8::launch_prepare(q, stream);
  if (err == cudaSuccess)
    err = cfg.slab ? vec8::slab::launch(q, cfg, stream)
                   : (cfg.regb ? vec8::regb::launch_gemm(q, cfg, stream) : vec8::launch_gemm_smem(q, cfg, stream));
  if (err == cudaSuccess && q.splits > 1) err = vec8::launch_reduce(q, stream);
  return static_cast<int>(err);
}

bool uses_vec8(const Shape& s, DType t, Algo algo) {
  return t == DType::kFloat16 && (algo == Algo::kAuto || algo == Algo::kTensorCore) &&
         vec8::supports(make_geometry(s)) && s.n * s.group <= 65535;
}

// the int-typed fields of the problems must fit
bool fits_int(const Shape& s) {
  return s.c <= INT32_MAX && s.c_out <= INT32_MAX && s.kh * s.kw <= INT32_MAX && s.stride_h <= INT32_MAX &&
         s.stride_w <= INT32_MAX && s.pad_top <= INT32_MAX && s.pad_left <= INT32_MAX && s.dil_h <= INT32_MAX &&
         s.dil_w <= INT32_MAX && s.n <= INT32_MAX && s.c_out * s.c / s.group * s.kh * s.kw <= INT32_MAX * int64_t{8};
}

}  // namespace

bool variant_verified(Variant v) {
  // Flip a variant to true only after tests/gpu (its tile and variant cases) passed on a GPU; say which in the
  // plugins README. All passed on an H200 (2026-11-26), with compute-sanitizer memcheck and racecheck clean on
  // their TensorRT enqueue cases.
  switch (v) {
    case Variant::kDefault: return true;
    case Variant::kThreeStage: return true;
    case Variant::kRegisterB: return true;
    case Variant::kTwoBlocksPerSm: return true;
    case Variant::kColumnSlab: return true;
  }
  return false;
}

int cuda_variants(const Shape& s, DType t, DType /*t_offset*/, Variant* out, int capacity, bool unverified_too) {
  // channel conditions only (vec8::supports' size limits depend on the spatial size; a variant is harmless where
  // the octet kernel does not run)
  if (t != DType::kFloat16 || check_shape(s) != kOk || !fits_int(s)) return 0;
  const Geometry g = make_geometry(s);
  if (!vec8::channels_fit(g)) return 0;
  Variant all[3];  // kTwoBlocksPerSm is pick_config's own choice for its 256-row tile: never different
  int n = 0;
  all[n++] = Variant::kThreeStage;
  if (g.cout_g <= vec8::regb::kBM) all[n++] = Variant::kRegisterB;      // pick_config's 64-row tiles
  all[n++] = Variant::kColumnSlab;                                      // band by band where it is large
  int kept = 0;
  for (int i = 0; i < n; ++i)
    if (unverified_too || variant_verified(all[i])) {
      if (kept < capacity) out[kept] = all[i];
      ++kept;
    }
  return kept;
}

size_t cuda_workspace_bytes(const Shape& s, DType t, DType /*t_offset*/, Algo algo, Variant variant) {
  if (check_shape(s) != kOk || s.n == 0 || !fits_int(s) || !uses_vec8(s, t, algo)) return 0;
  return vec8::workspace_layout(make_geometry(s), s.n, variant == Variant::kColumnSlab).total;
}

size_t cuda_workspace_bytes(const Shape& smallest, const Shape& largest, DType t, DType t_offset, Algo algo,
                            Variant variant) {
  const size_t hi = cuda_workspace_bytes(largest, t, t_offset, algo, variant);
  if (hi == 0 || cuda_workspace_bytes(smallest, t, t_offset, algo) == 0) return hi;
  const Geometry g = make_geometry(largest);
  const vec8::WorkspaceLayout l = vec8::workspace_layout(g, largest.n, variant == Variant::kColumnSlab);
  // shapes in between may be split-eligible although `largest` is not, or take a larger slab (whole where
  // `largest`'s is cut into bands): reserve the most any of them can use
  const bool small_min = vec8::workspace_layout(make_geometry(smallest), smallest.n).max_splits > 1;
  const size_t partial = small_min ? vec8::max_partial_bytes(g) : 0;
  const size_t need = vec8::align_up(l.partial + partial) + (l.has_slab ? vec8::slab_bytes_up_to(g, largest.n) : 0);
  return hi > need ? hi : need;
}

int forward_cuda(const Shape& s, DType t, DType t_offset, const void* x, const void* weight, const void* offset,
                 const void* bias, const void* mask, void* y, void* workspace, size_t workspace_bytes, void* stream,
                 Algo algo, const TileChoice* tile) {
  if (check_shape(s) != kOk) return kErrInvalidArgument;
  if (s.n == 0) return kOk;
  if (!x || !weight || !offset || !y) return kErrInvalidArgument;
  if (!fits_int(s)) return kErrInvalidArgument;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const bool t32 = t == DType::kFloat32, t16 = t == DType::kFloat16;
  const bool o32 = t_offset == DType::kFloat32, o16 = t_offset == DType::kFloat16;
  if (!(t32 || t16) || !(o32 || o16)) return kErrUnsupportedDType;
  if (uses_vec8(s, t, algo))
    return o32 ? launch_vec8<float>(s, x, weight, offset, bias, mask, y, workspace, workspace_bytes, st, tile)
               : launch_vec8<__half>(s, x, weight, offset, bias, mask, y, workspace, workspace_bytes, st, tile);
  if (algo == Algo::kTensorCore || (algo == Algo::kAuto && t16 && tc_fits(s))) {
    if (!t16 || !tc_fits(s)) return kErrUnsupportedDType;
    return o32 ? launch_tc<float>(s, x, weight, offset, bias, mask, y, st)
               : launch_tc<__half>(s, x, weight, offset, bias, mask, y, st);
  }
  if (algo != Algo::kAuto && algo != Algo::kSimt) return kErrUnsupportedDType;
  if (t32 && o32) return launch<float, float>(s, x, weight, offset, bias, mask, y, st);
  if (t32 && o16) return launch<float, __half>(s, x, weight, offset, bias, mask, y, st);
  if (t16 && o32) return launch<__half, float>(s, x, weight, offset, bias, mask, y, st);
  return launch<__half, __half>(s, x, weight, offset, bias, mask, y, st);
}

}  // namespace mdcn
}  // namespace rrsr
