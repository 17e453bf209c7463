// CUDA reference-aware selection, four launches on one stream:
//   1. ras_mean_kernel    one block per (image, channel): mean over the valid region (valid_size read on device)
//   2. ras_gate_kernel    one block per image: routing = sigmoid(Lin(mu)), gate = sigmoid(SE(mu))
//   3. ras_mix_kernel     grid-stride: mixed kernel K_n = sum_e routing_e W_e and bias beta_n (FP32, workspace)
//   4. tiled_conv_kernel  3x3 convolution of concat(x, r) with K_n, epilogue (acc + beta) * gate
// Everything after the loads is FP32.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/conv_tile.cuh"
#include "../common/rrsr_math.h"
#include "launch.h"

namespace rrsr {
namespace ras {
namespace {

constexpr int kTaps = kKernel * kKernel;
constexpr int kReduceThreads = 256;

// FP32 workspace layout; each part starts on a 256-byte boundary.
struct Workspace {
  float* mu;       // [n][c]
  float* routing;  // [n][e]
  float* gate;     // [n][c_out]
  float* beta;     // [n][c_out]
  float* kmix;     // [n][c_out][c * 9]
};

inline size_t align_floats(size_t count) { return (count + 63) / 64 * 64; }

inline size_t workspace_floats(const Shape& s, size_t* offsets) {
  const size_t n = static_cast<size_t>(s.n), c = static_cast<size_t>(s.cx + s.cr);
  const size_t sizes[5] = {n * c, n * static_cast<size_t>(s.experts), n * static_cast<size_t>(s.c_out),
                           n * static_cast<size_t>(s.c_out), n * static_cast<size_t>(s.c_out) * c * kTaps};
  size_t total = 0;
  for (int i = 0; i < 5; ++i) {
    if (offsets) offsets[i] = total;
    total += align_floats(sizes[i]);
  }
  return total;
}

template <typename T>
__host__ __device__ __forceinline__ const T* channel_plane(const T* x, const T* r, int n, int ch, int cx, int cr,
                                                  int64_t hw) {
  return ch < cx ? x + (static_cast<int64_t>(n) * cx + ch) * hw : r + (static_cast<int64_t>(n) * cr + (ch - cx)) * hw;
}

// ---- per-element math, __host__ __device__ so tests/plugins/cuda_host_check.cu runs it on the CPU

// Rows and columns of the valid top-left region: valid_size clamped to [1, h] x [1, w], the whole map when absent.
__host__ __device__ __forceinline__ void valid_extent(const void* valid_size, DType t_valid, int h, int w, int* vh,
                                                      int* vw) {
  *vh = h;
  *vw = w;
  if (valid_size == nullptr) return;
  const int64_t rows = t_valid == DType::kInt64 ? static_cast<const int64_t*>(valid_size)[0]
                                                : static_cast<const int32_t*>(valid_size)[0];
  const int64_t cols = t_valid == DType::kInt64 ? static_cast<const int64_t*>(valid_size)[1]
                                                : static_cast<const int32_t*>(valid_size)[1];
  *vh = static_cast<int>(clamp_i64(rows, 1, h));
  *vw = static_cast<int>(clamp_i64(cols, 1, w));
}

// bias[j] + weight[j, :] . v over c values (a row of a Linear / 1x1 conv applied to the channel means)
template <typename TG>
__host__ __device__ __forceinline__ float affine_row(const TG* weight, const TG* bias, const float* v, int c, int j) {
  float acc = cuda::to_float(bias[j]);
  const TG* row = weight + static_cast<int64_t>(j) * c;
  for (int k = 0; k < c; ++k) acc = fmaf(cuda::to_float(row[k]), v[k], acc);
  return acc;
}

// sum_e routing[e] * src[e * stride + idx]: one element of the expert-mixed kernel (stride = c_out * c * 9) or bias
// (stride = c_out)
template <typename T>
__host__ __device__ __forceinline__ float mix_value(const float* routing, const T* src, int experts, int64_t stride,
                                                   int64_t idx) {
  float acc = 0.0f;
  for (int e = 0; e < experts; ++e) acc = fmaf(routing[e], cuda::to_float(src[e * stride + idx]), acc);
  return acc;
}

// ---- kernels

template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    ras_mean_kernel(const T* __restrict__ x, const T* __restrict__ r, int cx, int cr, int h, int w,
                    const void* valid_size, DType t_valid, float* __restrict__ mu) {
  __shared__ float partial[kReduceThreads];
  const int c = cx + cr;
  const int n = static_cast<int>(blockIdx.x) / c, ch = static_cast<int>(blockIdx.x) % c;
  int vh, vw;
  valid_extent(valid_size, t_valid, h, w, &vh, &vw);
  const T* plane = channel_plane(x, r, n, ch, cx, cr, static_cast<int64_t>(h) * w);
  float sum = 0.0f;
  const int64_t count = static_cast<int64_t>(vh) * vw;
  for (int64_t i = threadIdx.x; i < count; i += kReduceThreads) {
    const int64_t yy = i / vw, xx = i % vw;
    sum += cuda::to_float(plane[yy * w + xx]);
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) mu[blockIdx.x] = partial[0] / static_cast<float>(count);
}

// One block per image; dynamic shared memory: 2 * c floats (this image's means, the SE hidden layer).
template <typename TG>
__global__ void __launch_bounds__(kReduceThreads)
    ras_gate_kernel(const float* __restrict__ mu, int c, int experts, int c_out, const TG* __restrict__ rw,
                    const TG* __restrict__ rb, const TG* __restrict__ s1w, const TG* __restrict__ s1b,
                    const TG* __restrict__ s2w, const TG* __restrict__ s2b, float* __restrict__ routing,
                    float* __restrict__ gate) {
  extern __shared__ float smem[];
  float* m = smem;
  float* hidden = smem + c;
  const int n = static_cast<int>(blockIdx.x);
  for (int j = threadIdx.x; j < c; j += blockDim.x) m[j] = mu[static_cast<int64_t>(n) * c + j];
  __syncthreads();
  for (int j = threadIdx.x; j < c; j += blockDim.x) hidden[j] = fmaxf(affine_row(s1w, s1b, m, c, j), 0.0f);
  for (int e = threadIdx.x; e < experts; e += blockDim.x)
    routing[static_cast<int64_t>(n) * experts + e] = sigmoidf_(affine_row(rw, rb, m, c, e));
  __syncthreads();  // hidden complete
  for (int o = threadIdx.x; o < c_out; o += blockDim.x)
    gate[static_cast<int64_t>(n) * c_out + o] = sigmoidf_(affine_row(s2w, s2b, hidden, c, o));
}

// kmix[n][o][k] = sum_e routing[n][e] * W[e][o][k]; beta[n][o] = sum_e routing[n][e] * B[e][o]
template <typename T>
__global__ void ras_mix_kernel(const float* __restrict__ routing, const T* __restrict__ weight,
                               const T* __restrict__ bias, int n_images, int experts, int c_out, int64_t k_count,
                               float* __restrict__ kmix, float* __restrict__ beta) {
  const int64_t per_image = static_cast<int64_t>(c_out) * k_count;  // = one expert's kernel size
  const int64_t total = static_cast<int64_t>(n_images) * per_image;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride)
    kmix[i] = mix_value(routing + (i / per_image) * experts, weight, experts, per_image, i % per_image);
  const int64_t total_b = static_cast<int64_t>(n_images) * c_out;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total_b; i += stride)
    beta[i] = mix_value(routing + (i / c_out) * experts, bias, experts, c_out, i % c_out);
}

template <typename T>
struct RasConvProblem {
  int cx, cr, h, w, c_out;
  const T* __restrict__ x_ptr;
  const T* __restrict__ r_ptr;
  const float* __restrict__ kmix;
  const float* __restrict__ beta;
  const float* __restrict__ gate;
  T* __restrict__ y_ptr;

  __host__ __device__ int64_t k_count() const { return static_cast<int64_t>(cx + cr) * kTaps; }
  __host__ __device__ int64_t m_count() const { return c_out; }
  __host__ __device__ int64_t p_count() const { return static_cast<int64_t>(h) * w; }

  __host__ __device__ float weight(int z, int64_t row, int64_t k) const {
    return kmix[(static_cast<int64_t>(z) * c_out + row) * k_count() + k];
  }
  __host__ __device__ float column(int z, int64_t k, int64_t pix) const {
    const int ch = static_cast<int>(k / kTaps), tap = static_cast<int>(k % kTaps);
    const int yy = static_cast<int>(pix / w) + tap / kKernel - kKernel / 2;  // pad 1
    const int xx = static_cast<int>(pix % w) + tap % kKernel - kKernel / 2;
    if (yy < 0 || yy >= h || xx < 0 || xx >= w) return 0.0f;
    return cuda::to_float(channel_plane(x_ptr, r_ptr, z, ch, cx, cr, p_count())[static_cast<int64_t>(yy) * w + xx]);
  }
  __host__ __device__ void store(int z, int64_t row, int64_t pix, float acc) const {
    const int64_t nc = static_cast<int64_t>(z) * c_out + row;
    y_ptr[nc * p_count() + pix] = cuda::from_float<T>((acc + beta[nc]) * gate[nc]);
  }
};

template <typename T, typename TG>
int launch(const Shape& s, DType t_valid, const void* x, const void* r, const void* weight, const void* bias,
           const void* rw, const void* rb, const void* s1w, const void* s1b, const void* s2w, const void* s2b,
           const void* valid_size, void* y, void* workspace, cudaStream_t stream) {
  size_t off[5];
  workspace_floats(s, off);
  float* base = static_cast<float*>(workspace);
  const Workspace ws{base + off[0], base + off[1], base + off[2], base + off[3], base + off[4]};
  const int n = static_cast<int>(s.n), cx = static_cast<int>(s.cx), cr = static_cast<int>(s.cr);
  const int c = cx + cr, h = static_cast<int>(s.h), w = static_cast<int>(s.w);
  const int e = static_cast<int>(s.experts), c_out = static_cast<int>(s.c_out);

  ras_mean_kernel<T><<<static_cast<unsigned>(n * c), kReduceThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(r), cx, cr, h, w, valid_size, t_valid, ws.mu);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return static_cast<int>(err);

  const size_t gate_smem = 2 * static_cast<size_t>(c) * sizeof(float);
  if (gate_smem > 48 * 1024) return kErrInvalidArgument;  // c > 6144 channels: not an RRSR shape
  ras_gate_kernel<TG><<<static_cast<unsigned>(n), kReduceThreads, gate_smem, stream>>>(
      ws.mu, c, e, c_out, static_cast<const TG*>(rw), static_cast<const TG*>(rb), static_cast<const TG*>(s1w),
      static_cast<const TG*>(s1b), static_cast<const TG*>(s2w), static_cast<const TG*>(s2b), ws.routing, ws.gate);
  if ((err = cudaGetLastError()) != cudaSuccess) return static_cast<int>(err);

  const int64_t k_count = static_cast<int64_t>(c) * kTaps;
  const int64_t mix_total = s.n * s.c_out * k_count;
  const unsigned mix_blocks = static_cast<unsigned>(mix_total / 256 + 1 < 4096 ? mix_total / 256 + 1 : 4096);
  ras_mix_kernel<T><<<mix_blocks, 256, 0, stream>>>(ws.routing, static_cast<const T*>(weight),
                                                    static_cast<const T*>(bias), n, e, c_out, k_count, ws.kmix,
                                                    ws.beta);
  if ((err = cudaGetLastError()) != cudaSuccess) return static_cast<int>(err);

  RasConvProblem<T> p{cx, cr, h, w, c_out, static_cast<const T*>(x), static_cast<const T*>(r), ws.kmix, ws.beta,
                      ws.gate, static_cast<T*>(y)};
  return static_cast<int>(cuda::launch_tiled_conv(p, n, stream));
}

}  // namespace

size_t cuda_workspace_bytes(const Shape& s) { return workspace_floats(s, nullptr) * sizeof(float); }

int forward_cuda(const Shape& s, DType t, DType t_gate, DType t_valid, const void* x, const void* r,
                 const void* weight, const void* bias, const void* routing_weight, const void* routing_bias,
                 const void* se1_weight, const void* se1_bias, const void* se2_weight, const void* se2_bias,
                 const void* valid_size, void* y, void* workspace, size_t workspace_bytes, void* stream) {
  if (check_shape(s) != kOk) return kErrInvalidArgument;
  if (s.n == 0) return kOk;
  if (!x || !r || !weight || !bias || !routing_weight || !routing_bias || !se1_weight || !se1_bias ||
      !se2_weight || !se2_bias || !y || !workspace)
    return kErrInvalidArgument;
  if (workspace_bytes < cuda_workspace_bytes(s)) return kErrWorkspaceTooSmall;
  if (s.n > 65535 || s.cx + s.cr > INT32_MAX || s.c_out > INT32_MAX || s.experts > INT32_MAX ||
      s.n * (s.cx + s.cr) > INT32_MAX)
    return kErrInvalidArgument;
  if (valid_size && t_valid != DType::kInt32 && t_valid != DType::kInt64) return kErrUnsupportedDType;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const bool t32 = t == DType::kFloat32, t16 = t == DType::kFloat16;
  const bool g32 = t_gate == DType::kFloat32, g16 = t_gate == DType::kFloat16;
#define RRSR_RAS_LAUNCH(TT, TGG)                                                                                   \
  return launch<TT, TGG>(s, t_valid, x, r, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias,        \
                         se2_weight, se2_bias, valid_size, y, workspace, st)
  if (t32 && g32) RRSR_RAS_LAUNCH(float, float);
  if (t32 && g16) RRSR_RAS_LAUNCH(float, __half);
  if (t16 && g32) RRSR_RAS_LAUNCH(__half, float);
  if (t16 && g16) RRSR_RAS_LAUNCH(__half, __half);
#undef RRSR_RAS_LAUNCH
  return kErrUnsupportedDType;
}

}  // namespace ras
}  // namespace rrsr
