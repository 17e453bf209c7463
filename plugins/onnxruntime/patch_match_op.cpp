// ORT kernel of RrsrPatchMatch: patch_size from the spec (>= 1), input shape checks naming the input and the
// expected shape, then one call into the CPU or CUDA launcher.
#include "ort_ops.h"

#include <algorithm>
#include <sstream>

#include "../kernels/patch_match/launch.h"

namespace rrsr {
namespace ort {

namespace sp = spec::patch_match;

PatchMatchKernel::PatchMatchKernel(const OrtApi& api, Device device) : api_(api), device_(device) {}

OrtStatus* PatchMatchKernel::Create(const OrtApi& api, const OrtKernelInfo* info, Device device, void** out) {
  *out = nullptr;
  auto* k = new (std::nothrow) PatchMatchKernel(api, device);
  if (k == nullptr) return api.CreateStatus(ORT_FAIL, "RrsrPatchMatch: out of memory");
  k->node_ = NodeId{sp::kOpType, node_name(api, info)};
  std::vector<int64_t> v;
  OrtStatus* st = read_int_attr(api, info, k->node_, sp::kAttrs[sp::kAttrPatchSize], &v);
  if (!st) k->patch_size_ = v[0];
  if (!st)
    st = check_plugin_attrs(api, info, k->node_, sp::kAttrs[sp::kAttrPluginVersion], sp::kAttrs[sp::kAttrPluginNamespace]);
  if (st) {
    delete k;
    return st;
  }
  *out = k;
  return nullptr;
}

OrtStatus* PatchMatchKernel::Compute(OrtKernelContext* ctx) {
  const OrtApi& api = api_;
  Tensor in[sp::kNumInputs];
  for (size_t i = 0; i < sp::kNumInputs; ++i)
    if (OrtStatus* st = get_input(api, ctx, i, &in[i])) return st;
  for (size_t i = 0; i < sp::kNumInputs; ++i)
    if (!in[i].present) return make_error(api, node_, std::string("input '") + sp::kInputs[i].name + "' is required");

  const Tensor& a = in[sp::kInputFIn];
  const Tensor& r = in[sp::kInputFRef];
  if (a.dims.size() != 4 || a.dims[1] < 1 || a.dims[2] < 1 || a.dims[3] < 1)
    return make_error(api, node_, "input 'F_in' must have shape [N, C, H, W] with C, H, W >= 1, got " +
                                      dims_str(a.dims));
  const int64_t n = a.dims[0], c = a.dims[1], h = a.dims[2], w = a.dims[3];
  if (r.dims.size() != 4 || r.dims[0] != n || r.dims[1] != c || r.dims[2] < 1 || r.dims[3] < 1)
    return make_error(api, node_, "input 'F_ref' must have shape [N, C, Hr, Wr] = [" + std::to_string(n) + ", " +
                                      std::to_string(c) + ", Hr, Wr] (N, C of 'F_in'), got " + dims_str(r.dims));
  const int64_t hr = r.dims[2], wr = r.dims[3], k = patch_size_;
  if (k > std::min(std::min(h, w), std::min(hr, wr))) {
    std::ostringstream os;
    os << "attribute 'patch_size' = " << k << " must be <= min(H, W, Hr, Wr) = "
       << std::min(std::min(h, w), std::min(hr, wr)) << " ('F_in' " << dims_str(a.dims) << ", 'F_ref' "
       << dims_str(r.dims) << ")";
    return make_error(api, node_, os.str());
  }
  if (h * w >= (int64_t{1} << 31) || hr * wr >= (int64_t{1} << 31))
    return make_error(api, node_, "feature maps of 2^31 pixels or more are not supported");

  DType t;
  if (!to_dtype(a.type, &t)) return make_error(api, node_, "unsupported element type");

  const patch_match::Shape s{n, c, h, w, hr, wr, k};
  const std::vector<int64_t> out_dims{n, s.hp(), s.wp()};
  void* index = nullptr;
  void* score = nullptr;
  if (OrtStatus* st = make_output(api, ctx, sp::kOutputIndex, out_dims, &index)) return st;
  if (OrtStatus* st = make_output(api, ctx, sp::kOutputScore, out_dims, &score)) return st;
  if (n == 0) return nullptr;

  int code = kOk;
  if (device_ == Device::kCpu) {
    OrtParallel pool{&api, ctx};
    CpuParallelFor par = pool.as_cpu_parallel();
    code = patch_match::forward_cpu(s, t, a.data, r.data, static_cast<int32_t*>(index), static_cast<float*>(score),
                                    &par);
  } else {
#ifdef RRSR_WITH_CUDA
    void* stream = nullptr;
    if (OrtStatus* st = api.KernelContext_GetGPUComputeStream(ctx, &stream)) return st;
    Scratch ws(api);
    if (OrtStatus* st = ws.acquire(ctx, a, patch_match::cuda_workspace_bytes(s), node_)) return st;
    code = patch_match::forward_cuda(s, t, a.data, r.data, static_cast<int32_t*>(index), static_cast<float*>(score),
                                     ws.data(), ws.bytes(), stream);
#else
    return make_error(api, node_, "this library was built without CUDA", ORT_NOT_IMPLEMENTED);
#endif
  }
  return launcher_status(api, node_, code, "patch matching kernel");
}

}  // namespace ort
}  // namespace rrsr
