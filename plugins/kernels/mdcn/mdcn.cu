// CUDA modulated deformable convolution, two kernels behind one launcher (see launch.h for which runs):
//   kSimt        the shared tiled implicit-GEMM kernel (common/conv_tile.cuh), FP32 FMA, with a sampler that
//                bilinearly samples the input at the deformed tap positions; every type combination.
//   kTensorCore  FP16 features: the column chunk sampled into shared memory as FP16 and multiplied on tensor cores
//                with FP32 accumulation (mdcn_tc.cuh).
// One GEMM batch per (image, group). Sampling positions and weights use the same FP32 helpers as the CPU kernel
// (common/rrsr_math.h).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/conv_tile.cuh"
#include "../common/rrsr_math.h"
#include "geometry.cuh"
#include "launch.h"
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
  int dev = 0, optin = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
    return false;
  const int taps = static_cast<int>(s.kh * s.kw), cout_g = static_cast<int>(s.c_out / s.group);
  const int bm = tc::pick_bm(cout_g);
  const size_t need = bm == 64 ? tc::smem_bytes_for<64>(taps)
                               : (bm == 128 ? tc::smem_bytes_for<128>(taps) : tc::smem_bytes_for<256>(taps));
  return need <= static_cast<size_t>(optin);
}

template <typename TO>
int launch_tc(const Shape& s, const void* x, const void* weight, const void* offset, const void* bias,
              const void* mask, void* y, cudaStream_t stream) {
  const tc::Problem<TO> p = make_tc_problem<TO>(s, x, weight, offset, bias, mask, y);
  const int64_t batches = s.n * s.group;
  if (batches > 65535) return static_cast<int>(cudaErrorInvalidConfiguration);
  return static_cast<int>(tc::launch(p, static_cast<int>(batches), stream));
}

}  // namespace

int forward_cuda(const Shape& s, DType t, DType t_offset, const void* x, const void* weight, const void* offset,
                 const void* bias, const void* mask, void* y, void* stream, Algo algo) {
  if (check_shape(s) != kOk) return kErrInvalidArgument;
  if (s.n == 0) return kOk;
  if (!x || !weight || !offset || !y) return kErrInvalidArgument;
  // every int-typed field of the problem must fit
  if (s.c > INT32_MAX || s.c_out > INT32_MAX || s.kh * s.kw > INT32_MAX || s.stride_h > INT32_MAX ||
      s.stride_w > INT32_MAX || s.pad_top > INT32_MAX || s.pad_left > INT32_MAX || s.dil_h > INT32_MAX ||
      s.dil_w > INT32_MAX)
    return kErrInvalidArgument;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const bool t32 = t == DType::kFloat32, t16 = t == DType::kFloat16;
  const bool o32 = t_offset == DType::kFloat32, o16 = t_offset == DType::kFloat16;
  if (!(t32 || t16) || !(o32 || o16)) return kErrUnsupportedDType;
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
