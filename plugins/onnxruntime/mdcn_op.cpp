// ORT kernel of RrsrModulatedDeformConv: attribute parsing (spec-driven), input shape checks with messages that
// name the input and the expected shape, then one call into the CPU or CUDA launcher.
#include "ort_ops.h"

#include <sstream>

#include "../kernels/common/rrsr_math.h"
#include "../kernels/mdcn/launch.h"

namespace rrsr {
namespace ort {

namespace sp = spec::modulated_deform_conv;

MdcnKernel::MdcnKernel(const OrtApi& api, Device device) : api_(api), device_(device) {}

OrtStatus* MdcnKernel::Create(const OrtApi& api, const OrtKernelInfo* info, Device device, void** out) {
  *out = nullptr;
  auto* k = new (std::nothrow) MdcnKernel(api, device);
  if (k == nullptr) return api.CreateStatus(ORT_FAIL, "RrsrModulatedDeformConv: out of memory");
  k->node_ = NodeId{sp::kOpType, node_name(api, info)};
  std::vector<int64_t> v;
  OrtStatus* st = nullptr;
  if (!st && !(st = read_int_attr(api, info, k->node_, sp::kAttrs[sp::kAttrStrides], &v))) {
    k->stride_h_ = v[0];
    k->stride_w_ = v[1];
  }
  if (!st && !(st = read_int_attr(api, info, k->node_, sp::kAttrs[sp::kAttrPads], &v))) {
    for (int i = 0; i < 4; ++i) k->pads_[i] = v[static_cast<size_t>(i)];
  }
  if (!st && !(st = read_int_attr(api, info, k->node_, sp::kAttrs[sp::kAttrDilations], &v))) {
    k->dil_h_ = v[0];
    k->dil_w_ = v[1];
  }
  if (!st && !(st = read_int_attr(api, info, k->node_, sp::kAttrs[sp::kAttrGroup], &v))) k->group_ = v[0];
  if (!st && !(st = read_int_attr(api, info, k->node_, sp::kAttrs[sp::kAttrOffsetGroup], &v)))
    k->offset_group_ = v[0];
  if (!st)
    st = check_plugin_attrs(api, info, k->node_, sp::kAttrs[sp::kAttrPluginVersion], sp::kAttrs[sp::kAttrPluginNamespace]);
  if (st) {
    delete k;
    return st;
  }
  *out = k;
  return nullptr;
}

OrtStatus* MdcnKernel::Compute(OrtKernelContext* ctx) {
  const OrtApi& api = api_;
  Tensor in[sp::kNumInputs];
  for (size_t i = 0; i < sp::kNumInputs; ++i)
    if (OrtStatus* st = get_input(api, ctx, i, &in[i])) return st;
  const Tensor& x = in[sp::kInputX];
  const Tensor& w = in[sp::kInputW];
  const Tensor& off = in[sp::kInputOffset];
  const Tensor& b = in[sp::kInputB];
  const Tensor& m = in[sp::kInputMask];
  auto bad_input = [&](int idx, const std::string& expected, const Tensor& t) {
    return make_error(api, node_, std::string("input '") + sp::kInputs[idx].name + "' must have shape " + expected +
                                      ", got " + dims_str(t.dims));
  };
  if (!x.present || !w.present || !off.present)
    return make_error(api, node_, "inputs 'X', 'W' and 'offset' are required");
  if (x.dims.size() != 4) return bad_input(sp::kInputX, "[N, C, H, W] (rank 4)", x);
  if (w.dims.size() != 4) return bad_input(sp::kInputW, "[C_out, C / group, kh, kw] (rank 4)", w);
  const int64_t n = x.dims[0], c = x.dims[1], h = x.dims[2], wd = x.dims[3];
  const int64_t c_out = w.dims[0], kh = w.dims[2], kw = w.dims[3];
  std::ostringstream os;
  if (c < 1 || h < 1 || wd < 1) return bad_input(sp::kInputX, "[N, C, H, W] with C, H, W >= 1", x);
  if (c_out < 1 || kh < 1 || kw < 1) return bad_input(sp::kInputW, "[C_out, C / group, kh, kw] with all >= 1", w);
  if (c % group_ != 0 || c_out % group_ != 0) {
    os << "attribute 'group' = " << group_ << " must divide the input channels C = " << c
       << " and the output channels C_out = " << c_out;
    return make_error(api, node_, os.str());
  }
  if (c % offset_group_ != 0) {
    os << "attribute 'offset_group' = " << offset_group_ << " must divide the input channels C = " << c;
    return make_error(api, node_, os.str());
  }
  if (w.dims[1] * group_ != c) {
    os << "[C_out, C / group = " << c / group_ << ", kh, kw] (C = " << c << ", group = " << group_ << ")";
    return bad_input(sp::kInputW, os.str(), w);
  }
  const int64_t h_out = conv_out_size(h, kh, stride_h_, pads_[0], pads_[2], dil_h_);
  const int64_t w_out = conv_out_size(wd, kw, stride_w_, pads_[1], pads_[3], dil_w_);
  if (h_out < 1 || w_out < 1) {
    os << "output would be empty: input " << h << "x" << wd << ", kernel " << kh << "x" << kw << ", pads "
       << dims_str({pads_[0], pads_[1], pads_[2], pads_[3]}) << ", dilations " << dims_str({dil_h_, dil_w_});
    return make_error(api, node_, os.str());
  }
  const std::vector<int64_t> off_want{n, 2 * offset_group_ * kh * kw, h_out, w_out};
  if (off.dims != off_want) {
    os << dims_str(off_want) << " = [N, 2 * offset_group * kh * kw, H_out, W_out]";
    return bad_input(sp::kInputOffset, os.str(), off);
  }
  if (b.present && b.dims != std::vector<int64_t>{c_out}) return bad_input(sp::kInputB, dims_str({c_out}) + " = [C_out]", b);
  const std::vector<int64_t> mask_want{n, offset_group_ * kh * kw, h_out, w_out};
  if (m.present && m.dims != mask_want) {
    os << dims_str(mask_want) << " = [N, offset_group * kh * kw, H_out, W_out]";
    return bad_input(sp::kInputMask, os.str(), m);
  }
  if (h * wd >= (int64_t{1} << 31) || h_out * w_out >= (int64_t{1} << 31))
    return make_error(api, node_, "feature maps of 2^31 pixels or more are not supported");

  DType t, t_off;
  if (!to_dtype(x.type, &t) || !to_dtype(off.type, &t_off))
    return make_error(api, node_, "unsupported element type", ORT_INVALID_ARGUMENT);

  void* y = nullptr;
  if (OrtStatus* st = make_output(api, ctx, sp::kOutputY, {n, c_out, h_out, w_out}, &y)) return st;
  if (n == 0) return nullptr;

  mdcn::Shape s{n,        c,        h,        wd,       c_out,  kh,           kw,
                h_out,    w_out,    stride_h_, stride_w_, pads_[0], pads_[1], dil_h_,
                dil_w_,   group_,   offset_group_};
  const void* bias = b.present ? b.data : nullptr;
  const void* mask = m.present ? m.data : nullptr;
  int code = kOk;
  if (device_ == Device::kCpu) {
    OrtParallel pool{&api, ctx};
    CpuParallelFor par = pool.as_cpu_parallel();
    code = mdcn::forward_cpu(s, t, t_off, x.data, w.data, off.data, bias, mask, y, &par);
  } else {
#ifdef RRSR_WITH_CUDA
    void* stream = nullptr;
    if (OrtStatus* st = api.KernelContext_GetGPUComputeStream(ctx, &stream)) return st;
    Scratch ws(api);  // the tensor-core kernel's octet copy of X (none for FP32)
    if (OrtStatus* st = ws.acquire(ctx, x, mdcn::cuda_workspace_bytes(s, t, t_off), node_)) return st;
    code = mdcn::forward_cuda(s, t, t_off, x.data, w.data, off.data, bias, mask, y, ws.data(), ws.bytes(), stream);
#else
    return make_error(api, node_, "this library was built without CUDA", ORT_NOT_IMPLEMENTED);
#endif
  }
  return launcher_status(api, node_, code, "modulated deformable convolution kernel");
}

}  // namespace ort
}  // namespace rrsr
