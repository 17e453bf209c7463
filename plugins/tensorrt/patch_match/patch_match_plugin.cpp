#include "patch_match_plugin.h"

#include <vector>

namespace rrsr {
namespace trt {

namespace sp = spec::patch_match;
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::TensorFormat;

const OpInfo& patch_match_op_info() {
  static const OpInfo info{sp::kOpType, sp::kPluginVersion, sp::kPluginNamespace, sp::kAttrs, sp::kNumAttrs};
  return info;
}

PatchMatchPlugin::PatchMatchPlugin(std::string layer, AttrValues values)
    : PluginBase(patch_match_op_info(), std::move(layer), std::move(values)) {
  k_ = values_.v[sp::kAttrPatchSize][0];
}

bool PatchMatchPlugin::check_attrs(const AttrValues& values, std::string* why) {
  if (values.v.size() <= static_cast<size_t>(sp::kAttrPatchSize) ||
      values.v[static_cast<size_t>(sp::kAttrPatchSize)].size() != 1) {
    *why = std::string("field '") + sp::kAttrNamePatchSize + "' must hold exactly one value";
    return false;
  }
  return true;
}

namespace {
bool known(int64_t d) { return d >= 0; }

std::string input_name(int i) { return std::string("input '") + sp::kInputs[i].name + "'"; }
std::string output_name(int i) { return std::string("output '") + sp::kOutputs[i].name + "'"; }

std::string want_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + (d[i] < 0 ? std::string("?") : std::to_string(d[i]));
  return s + "]";
}

bool matches(const Dims& got, const std::vector<int64_t>& want) {
  if (got.nbDims != static_cast<int32_t>(want.size())) return false;
  for (size_t i = 0; i < want.size(); ++i)
    if (known(want[i]) && known(got.d[i]) && got.d[i] != want[i]) return false;
  return true;
}
}  // namespace

int32_t PatchMatchPlugin::getNbOutputs() const noexcept { return sp::kNumOutputs; }

int32_t PatchMatchPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                             int32_t nbInputs) const noexcept {
  trace("getOutputDataTypes");
  if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != sp::kNumOutputs || nbInputs != sp::kNumInputs) {
    report("getOutputDataTypes: expected " + std::to_string(sp::kNumInputs) + " inputs and " +
           std::to_string(sp::kNumOutputs) + " outputs, got " + std::to_string(nbInputs) + " and " +
           std::to_string(nbOutputs));
    return 1;
  }
  for (int i = 0; i < sp::kNumInputs; ++i) {
    if (!is_float_or_half(inputTypes[i])) {
      report(input_name(i) + " must be FLOAT or HALF, got " + trt_type_name(inputTypes[i]));
      return 1;
    }
  }
  outputTypes[sp::kOutputIndex] = DataType::kINT32;
  outputTypes[sp::kOutputScore] = DataType::kFLOAT;
  return 0;
}

std::string PatchMatchPlugin::check_shapes(const Dims* in, int32_t nb_inputs, patch_match::Shape* s) const {
  if (nb_inputs != sp::kNumInputs)
    return "expected " + std::to_string(sp::kNumInputs) + " inputs (F_in, F_ref), got " + std::to_string(nb_inputs);
  const Dims& x = in[sp::kInputFIn];
  const Dims& r = in[sp::kInputFRef];
  if (x.nbDims != 4) return input_name(sp::kInputFIn) + " must have shape [N, C, H, W] (rank 4), got " + dims_str(x);
  if (r.nbDims != 4)
    return input_name(sp::kInputFRef) + " must have shape [N, C, Hr, Wr] (rank 4), got " + dims_str(r);
  const int64_t n = x.d[0], c = x.d[1], h = x.d[2], w = x.d[3];
  if (!matches(r, {n, c, -1, -1}))
    return input_name(sp::kInputFRef) + " must have shape " + want_str({n, c, -1, -1}) +
           " = [N, C, Hr, Wr] (N, C of 'F_in'), got " + dims_str(r);
  const int64_t hr = r.d[2], wr = r.d[3];
  if (known(c) && c < 1) return input_name(sp::kInputFIn) + " must have C >= 1, got " + dims_str(x);
  const std::string ks = std::string(sp::kAttrNamePatchSize) + " = " + std::to_string(k_);
  if ((known(h) && h < k_) || (known(w) && w < k_))
    return ks + " exceeds the spatial size of " + input_name(sp::kInputFIn) + " " + dims_str(x) +
           " (H and W must be >= patch_size)";
  if ((known(hr) && hr < k_) || (known(wr) && wr < k_))
    return ks + " exceeds the spatial size of " + input_name(sp::kInputFRef) + " " + dims_str(r) +
           " (Hr and Wr must be >= patch_size)";
  if (known(h) && known(w) && h * w >= (int64_t{1} << 31))
    return input_name(sp::kInputFIn) + ": feature maps of 2^31 pixels or more are not supported";
  if (known(hr) && known(wr) && hr * wr >= (int64_t{1} << 31))
    return input_name(sp::kInputFRef) + ": feature maps of 2^31 pixels or more are not supported";
  if (s != nullptr) *s = patch_match::Shape{n, c, h, w, hr, wr, k_};
  return "";
}

int32_t PatchMatchPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  trace("configurePlugin");
  return check_and_record("configurePlugin", in, nbInputs, out, nbOutputs,
                          [&](const std::vector<Dims>& dims) { return check_shapes(dims.data(), nbInputs, nullptr); });
}

int32_t PatchMatchPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                          nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                          nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                          nvinfer1::IExprBuilder& exprBuilder) noexcept {
  trace("getOutputShapes");
  if (inputs == nullptr || outputs == nullptr || nbOutputs != sp::kNumOutputs || nbInputs != sp::kNumInputs ||
      inputs[sp::kInputFIn].nbDims != 4) {
    report("getOutputShapes: expected F_in [N, C, H, W], F_ref [N, C, Hr, Wr] and two outputs");
    return 1;
  }
  // index, score = [N, H - k + 1, W - k + 1]
  const nvinfer1::IDimensionExpr* km1 = exprBuilder.constant(k_ - 1);
  const nvinfer1::IDimensionExpr* hp =
      km1 == nullptr ? nullptr
                     : exprBuilder.operation(nvinfer1::DimensionOperation::kSUB, *inputs[sp::kInputFIn].d[2], *km1);
  const nvinfer1::IDimensionExpr* wp =
      km1 == nullptr ? nullptr
                     : exprBuilder.operation(nvinfer1::DimensionOperation::kSUB, *inputs[sp::kInputFIn].d[3], *km1);
  if (hp == nullptr || wp == nullptr) {
    report("getOutputShapes: the expression builder returned null");
    return 1;
  }
  for (int o = 0; o < sp::kNumOutputs; ++o) {
    outputs[o].nbDims = 3;
    outputs[o].d[0] = inputs[sp::kInputFIn].d[0];
    outputs[o].d[1] = hp;
    outputs[o].d[2] = wp;
  }
  return 0;
}

bool PatchMatchPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                 int32_t nbInputs, int32_t nbOutputs) noexcept {
  trace("supportsFormatCombination");
  if (inOut == nullptr || nbInputs != sp::kNumInputs || nbOutputs != sp::kNumOutputs || pos < 0 ||
      pos >= nbInputs + nbOutputs)
    return false;
  const nvinfer1::PluginTensorDesc& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  switch (pos) {
    case sp::kInputFIn: return is_float_or_half(d.type);
    case sp::kInputFRef: return d.type == inOut[sp::kInputFIn].desc.type;  // type parameter T
    case sp::kNumInputs + sp::kOutputIndex: return d.type == DataType::kINT32;
    case sp::kNumInputs + sp::kOutputScore: return d.type == DataType::kFLOAT;
    default: return false;
  }
}

size_t PatchMatchPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                          nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                                          int32_t /*nbOutputs*/) const noexcept {
  trace("getWorkspaceSize");
  try {
    if (inputs == nullptr || nbInputs != sp::kNumInputs) return 0;
    const std::vector<Dims> dims = max_dims(inputs, nbInputs);
    patch_match::Shape s{};
    if (!check_shapes(dims.data(), nbInputs, &s).empty() || patch_match::check_shape(s) != kOk) return 0;
    return patch_match::cuda_workspace_bytes(s);
  } catch (...) {
    return 0;
  }
}

int32_t PatchMatchPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  trace("onShapeChange");
  return check_and_record("onShapeChange", in, nbInputs, out, nbOutputs, [&](const std::vector<Dims>& dims) {
    patch_match::Shape s{};
    std::string err = check_shapes(dims.data(), nbInputs, &s);
    for (int o = 0; err.empty() && o < sp::kNumOutputs; ++o) {
      const std::vector<int64_t> want{s.n, s.hp(), s.wp()};
      if (!matches(out[o].dims, want))
        err = output_name(o) + " has shape " + dims_str(out[o].dims) + ", expected " + want_str(want);
    }
    return err;
  });
}

int32_t PatchMatchPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                  nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept {
  trace("enqueue");
  try {
    if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr) {
      report("enqueue: null descriptors or pointers");
      return 1;
    }
    const Dims& x = inputDesc[sp::kInputFIn].dims;
    const Dims& r = inputDesc[sp::kInputFRef].dims;
    if (x.nbDims != 4 || r.nbDims != 4) {
      report("enqueue: F_in and F_ref must have rank 4");
      return 1;
    }
    const patch_match::Shape s{x.d[0], x.d[1], x.d[2], x.d[3], r.d[2], r.d[3], k_};
    if (s.n == 0) return 0;
    if (r.d[0] != s.n || r.d[1] != s.c || patch_match::check_shape(s) != kOk) {
      report("enqueue: invalid shapes F_in " + dims_str(x) + ", F_ref " + dims_str(r) + " for " +
             sp::kAttrNamePatchSize + " = " + std::to_string(k_));
      return 1;
    }
    DType t;
    if (!to_dtype(inputDesc[sp::kInputFIn].type, &t) || inputDesc[sp::kInputFRef].type != inputDesc[sp::kInputFIn].type ||
        outputDesc[sp::kOutputIndex].type != DataType::kINT32 || outputDesc[sp::kOutputScore].type != DataType::kFLOAT) {
      report("enqueue: unsupported data types");
      return 1;
    }
    const size_t bytes = patch_match::cuda_workspace_bytes(s);
    const int code = patch_match::forward_cuda(s, t, inputs[sp::kInputFIn], inputs[sp::kInputFRef],
                                               static_cast<int32_t*>(outputs[sp::kOutputIndex]),
                                               static_cast<float*>(outputs[sp::kOutputScore]), workspace, bytes,
                                               static_cast<void*>(stream));
    return launch_result(code, "patch matching");
  } catch (...) {
    report("enqueue failed", nvinfer1::ErrorCode::kINTERNAL_ERROR);
    return 1;
  }
}

}  // namespace trt
}  // namespace rrsr
