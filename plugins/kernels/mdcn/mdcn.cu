// CUDA modulated deformable convolution: the shared tiled implicit-GEMM kernel (common/conv_tile.cuh) with a
// sampler that bilinearly samples the input at the deformed tap positions. One GEMM batch per (image, group).
// Sampling positions and weights use the same FP32 helpers as the CPU kernel (common/rrsr_math.h).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/conv_tile.cuh"
#include "../common/rrsr_math.h"
#include "launch.h"

namespace rrsr {
namespace mdcn {
namespace {

template <typename T, typename TO>
struct MdcnProblem {
  // sizes as int: check_shape() bounds the planes below 2^31 px; products that can exceed it use int64_t
  int c, h, w, c_out, kw, taps, h_out, w_out;
  int stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
  int group, offset_group, cin_g, cout_g, ch_per_og;
  const T* __restrict__ x_ptr;
  const T* __restrict__ w_ptr;
  const TO* __restrict__ off_ptr;
  const T* __restrict__ bias_ptr;   // may be null
  const TO* __restrict__ mask_ptr;  // may be null
  T* __restrict__ y_ptr;

  __host__ __device__ int64_t k_count() const { return static_cast<int64_t>(cin_g) * taps; }
  __host__ __device__ int64_t m_count() const { return cout_g; }
  __host__ __device__ int64_t p_count() const { return static_cast<int64_t>(h_out) * w_out; }

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
  p.c = static_cast<int>(s.c);
  p.h = static_cast<int>(s.h);
  p.w = static_cast<int>(s.w);
  p.c_out = static_cast<int>(s.c_out);
  p.kw = static_cast<int>(s.kw);
  p.taps = static_cast<int>(s.kh * s.kw);
  p.h_out = static_cast<int>(s.h_out);
  p.w_out = static_cast<int>(s.w_out);
  p.stride_h = static_cast<int>(s.stride_h);
  p.stride_w = static_cast<int>(s.stride_w);
  p.pad_top = static_cast<int>(s.pad_top);
  p.pad_left = static_cast<int>(s.pad_left);
  p.dil_h = static_cast<int>(s.dil_h);
  p.dil_w = static_cast<int>(s.dil_w);
  p.group = static_cast<int>(s.group);
  p.offset_group = static_cast<int>(s.offset_group);
  p.cin_g = static_cast<int>(s.c / s.group);
  p.cout_g = static_cast<int>(s.c_out / s.group);
  p.ch_per_og = static_cast<int>(s.c / s.offset_group);
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

}  // namespace

int forward_cuda(const Shape& s, DType t, DType t_offset, const void* x, const void* weight, const void* offset,
                 const void* bias, const void* mask, void* y, void* stream) {
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
  if (t32 && o32) return launch<float, float>(s, x, weight, offset, bias, mask, y, st);
  if (t32 && o16) return launch<float, __half>(s, x, weight, offset, bias, mask, y, st);
  if (t16 && o32) return launch<__half, float>(s, x, weight, offset, bias, mask, y, st);
  if (t16 && o16) return launch<__half, __half>(s, x, weight, offset, bias, mask, y, st);
  return kErrUnsupportedDType;
}

}  // namespace mdcn
}  // namespace rrsr
