// ORT kernel of RrsrRefAwareSelection: input shape checks naming the input and the expected shape, then one call
// into the CPU or CUDA launcher.
#include "ort_ops.h"

#include <sstream>

#include "../kernels/ras/launch.h"

namespace rrsr {
namespace ort {

namespace sp = spec::ref_aware_selection;

RasKernel::RasKernel(const OrtApi& api, Device device) : api_(api), device_(device) {}

OrtStatus* RasKernel::Create(const OrtApi& api, const OrtKernelInfo* info, Device device, void** out) {
  *out = nullptr;
  auto* k = new (std::nothrow) RasKernel(api, device);
  if (k == nullptr) return api.CreateStatus(ORT_FAIL, "RrsrRefAwareSelection: out of memory");
  k->node_ = NodeId{sp::kOpType, node_name(api, info)};
  OrtStatus* st =
      check_plugin_attrs(api, info, k->node_, sp::kAttrs[sp::kAttrPluginVersion], sp::kAttrs[sp::kAttrPluginNamespace]);
  if (st) {
    delete k;
    return st;
  }
  *out = k;
  return nullptr;
}

OrtStatus* RasKernel::Compute(OrtKernelContext* ctx) {
  const OrtApi& api = api_;
  Tensor in[sp::kNumInputs];
  for (size_t i = 0; i < sp::kNumInputs; ++i)
    if (OrtStatus* st = get_input(api, ctx, i, &in[i])) return st;
  for (size_t i = 0; i < sp::kNumInputs; ++i)
    if (!sp::kInputs[i].optional && !in[i].present)
      return make_error(api, node_, std::string("input '") + sp::kInputs[i].name + "' is required");

  const Tensor& x = in[sp::kInputX];
  const Tensor& r = in[sp::kInputR];
  auto expect = [&](int idx, const std::vector<int64_t>& want, const char* symbolic) -> OrtStatus* {
    if (in[idx].dims == want) return nullptr;
    return make_error(api, node_, std::string("input '") + sp::kInputs[idx].name + "' must have shape " +
                                      dims_str(want) + " = [" + symbolic + "], got " + dims_str(in[idx].dims));
  };
  if (x.dims.size() != 4 || x.dims[1] < 1 || x.dims[2] < 1 || x.dims[3] < 1)
    return make_error(api, node_, "input 'X' must have shape [N, Cx, H, W] with Cx, H, W >= 1, got " +
                                      dims_str(x.dims));
  const int64_t n = x.dims[0], cx = x.dims[1], h = x.dims[2], w = x.dims[3];
  if (r.dims.size() != 4 || r.dims[0] != n || r.dims[1] < 1 || r.dims[2] != h || r.dims[3] != w)
    return make_error(api, node_, "input 'R' must have shape [N, Cr, H, W] = [" + std::to_string(n) + ", Cr, " +
                                      std::to_string(h) + ", " + std::to_string(w) + "] (N, H, W of 'X'), got " +
                                      dims_str(r.dims));
  const int64_t cr = r.dims[1], c = cx + cr;
  const Tensor& wt = in[sp::kInputW];
  if (wt.dims.size() != 5 || wt.dims[0] < 1 || wt.dims[1] < 1)
    return make_error(api, node_, "input 'W' must have shape [E, C_out, Cx + Cr, 3, 3] with E, C_out >= 1, got " +
                                      dims_str(wt.dims));
  const int64_t e = wt.dims[0], c_out = wt.dims[1];
  OrtStatus* st = nullptr;
  if (!st) st = expect(sp::kInputW, {e, c_out, c, ras::kKernel, ras::kKernel}, "E, C_out, Cx + Cr, 3, 3");
  if (!st) st = expect(sp::kInputB, {e, c_out}, "E, C_out");
  if (!st) st = expect(sp::kInputRoutingWeight, {e, c}, "E, Cx + Cr");
  if (!st) st = expect(sp::kInputRoutingBias, {e}, "E");
  if (!st) st = expect(sp::kInputSe1Weight, {c, c, 1, 1}, "Cx + Cr, Cx + Cr, 1, 1");
  if (!st) st = expect(sp::kInputSe1Bias, {c}, "Cx + Cr");
  if (!st) st = expect(sp::kInputSe2Weight, {c_out, c, 1, 1}, "C_out, Cx + Cr, 1, 1");
  if (!st) st = expect(sp::kInputSe2Bias, {c_out}, "C_out");
  const Tensor& vs = in[sp::kInputValidSize];
  if (!st && vs.present) st = expect(sp::kInputValidSize, {2}, "rows, cols");
  if (st) return st;
  if (h * w >= (int64_t{1} << 31)) return make_error(api, node_, "feature maps of 2^31 pixels or more are not supported");

  DType t, t_gate, t_valid = DType::kInt64;
  if (!to_dtype(x.type, &t) || !to_dtype(in[sp::kInputRoutingWeight].type, &t_gate) ||
      (vs.present && !to_dtype(vs.type, &t_valid)))
    return make_error(api, node_, "unsupported element type");

  void* y = nullptr;
  if (OrtStatus* s2 = make_output(api, ctx, sp::kOutputY, {n, c_out, h, w}, &y)) return s2;
  if (n == 0) return nullptr;

  const ras::Shape s{n, cx, cr, h, w, e, c_out};
  const void* p[sp::kNumInputs];
  for (size_t i = 0; i < sp::kNumInputs; ++i) p[i] = in[i].present ? in[i].data : nullptr;
  int code = kOk;
  if (device_ == Device::kCpu) {
    OrtParallel pool{&api, ctx};
    CpuParallelFor par = pool.as_cpu_parallel();
    code = ras::forward_cpu(s, t, t_gate, t_valid, p[sp::kInputX], p[sp::kInputR], p[sp::kInputW], p[sp::kInputB],
                            p[sp::kInputRoutingWeight], p[sp::kInputRoutingBias], p[sp::kInputSe1Weight],
                            p[sp::kInputSe1Bias], p[sp::kInputSe2Weight], p[sp::kInputSe2Bias],
                            p[sp::kInputValidSize], y, &par);
  } else {
#ifdef RRSR_WITH_CUDA
    void* stream = nullptr;
    if (OrtStatus* s2 = api.KernelContext_GetGPUComputeStream(ctx, &stream)) return s2;
    Scratch ws(api);
    if (OrtStatus* s2 = ws.acquire(ctx, x, ras::cuda_workspace_bytes(s), node_)) return s2;
    code = ras::forward_cuda(s, t, t_gate, t_valid, p[sp::kInputX], p[sp::kInputR], p[sp::kInputW],
                             p[sp::kInputB], p[sp::kInputRoutingWeight], p[sp::kInputRoutingBias],
                             p[sp::kInputSe1Weight], p[sp::kInputSe1Bias], p[sp::kInputSe2Weight],
                             p[sp::kInputSe2Bias], p[sp::kInputValidSize], y, ws.data(), ws.bytes(), stream);
#else
    return make_error(api, node_, "this library was built without CUDA", ORT_NOT_IMPLEMENTED);
#endif
  }
  return launcher_status(api, node_, code, "reference-aware selection kernel");
}

}  // namespace ort
}  // namespace rrsr
