// Launchers of RRSR's reference-aware selection block (RrsrRefAwareSelection). Plain pointers, sizes, dtype
// enums and a void* stream only.
//
// z = concat(x, r) along channels (c = cx + cr); mu = mean of z over the top-left valid region;
// routing = sigmoid(routing_weight @ mu + routing_bias) (e experts); K = sum_e routing_e W_e, beta = sum_e routing_e B_e;
// out = conv3x3(z, K, beta, stride 1, pad 1); gate = sigmoid(se2_w @ relu(se1_w @ mu + se1_b) + se2_b); y = out * gate.
//
// Layouts (NCHW, contiguous):
//   x [n, cx, h, w], r [n, cr, h, w], weight [e, c_out, c, 3, 3], bias [e, c_out]      type t
//   routing_weight [e, c], routing_bias [e], se1_weight [c, c(,1,1)], se1_bias [c],
//   se2_weight [c_out, c(,1,1)], se2_bias [c_out]                                       type t_gate
//   valid_size [2] (rows, cols) or nullptr (whole map); clamped to [1, h] x [1, w]      type t_valid (int32/int64)
//   y [n, c_out, h, w]                                                                  type t
// Means, routing, gates, kernel mixing and the convolution accumulate in FP32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/launch_common.h"

namespace rrsr {
namespace ras {

constexpr int kKernel = 3;  // the experts are 3x3 convolutions with padding 1

struct Shape {
  int64_t n, cx, cr, h, w;  // inputs; c = cx + cr
  int64_t experts, c_out;
};

inline int check_shape(const Shape& s) {
  const bool ok = s.n >= 0 && s.cx >= 1 && s.cr >= 1 && s.h >= 1 && s.w >= 1 && s.experts >= 1 && s.c_out >= 1 &&
                  s.h * s.w < (int64_t{1} << 31);
  return ok ? kOk : kErrInvalidArgument;
}

// CPU kernel: t, t_gate in {kFloat32, kFloat16}; t_valid in {kInt32, kInt64} (ignored when valid_size is null).
int forward_cpu(const Shape& s, DType t, DType t_gate, DType t_valid, const void* x, const void* r,
                const void* weight, const void* bias, const void* routing_weight, const void* routing_bias,
                const void* se1_weight, const void* se1_bias, const void* se2_weight, const void* se2_bias,
                const void* valid_size, void* y, const CpuParallelFor* par);

// Device scratch the CUDA kernel needs (means, routing, gates, mixed kernels of every image), in bytes.
size_t cuda_workspace_bytes(const Shape& s);

// CUDA kernel (built only with RRSR_WITH_CUDA). All pointers are device pointers, valid_size included (read on the
// device, so no host synchronisation); stream is a cudaStream_t.
int forward_cuda(const Shape& s, DType t, DType t_gate, DType t_valid, const void* x, const void* r,
                 const void* weight, const void* bias, const void* routing_weight, const void* routing_bias,
                 const void* se1_weight, const void* se1_bias, const void* se2_weight, const void* se2_bias,
                 const void* valid_size, void* y, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace ras
}  // namespace rrsr
