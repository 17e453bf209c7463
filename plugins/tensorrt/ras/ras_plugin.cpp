#include "ras_plugin.h"

#include <vector>

namespace rrsr {
namespace trt {

namespace sp = spec::ref_aware_selection;
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::TensorFormat;

const OpInfo& ras_op_info() {
  static const OpInfo info{sp::kOpType, sp::kPluginVersion, sp::kPluginNamespace, sp::kAttrs, sp::kNumAttrs};
  return info;
}

RasPlugin::RasPlugin(std::string layer, AttrValues values)
    : PluginBase(ras_op_info(), std::move(layer), std::move(values)) {}

namespace {
constexpr int32_t kRequiredInputs = sp::kNumInputs - 1;  // every input but valid_size

bool known(int64_t d) { return d >= 0; }

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

// Sum that stays unknown (-1) when either side is.
int64_t add(int64_t a, int64_t b) { return known(a) && known(b) ? a + b : -1; }
}  // namespace

std::string RasPlugin::check_shapes(const Dims* in, int32_t nb_inputs, ras::Shape* s) {
  if (nb_inputs != kRequiredInputs && nb_inputs != sp::kNumInputs)
    return "expected " + std::to_string(kRequiredInputs) + " or " + std::to_string(sp::kNumInputs) +
           " inputs (valid_size is optional), got " + std::to_string(nb_inputs);
  const Dims& x = in[sp::kInputX];
  const Dims& r = in[sp::kInputR];
  const Dims& w = in[sp::kInputW];
  if (x.nbDims != 4) return "input 'X' must have shape [N, Cx, H, W] (rank 4), got " + dims_str(x);
  const int64_t n = x.d[0], cx = x.d[1], h = x.d[2], wd = x.d[3];
  if (!matches(r, {n, -1, h, wd}))
    return "input 'R' must have shape " + want_str({n, -1, h, wd}) + " = [N, Cr, H, W] (N, H, W of 'X'), got " +
           dims_str(r);
  if (w.nbDims != 5) return "input 'W' must have shape [E, C_out, Cx + Cr, 3, 3] (rank 5), got " + dims_str(w);
  const int64_t cr = r.d[1], c = add(cx, cr), e = w.d[0], c_out = w.d[1];
  struct Want {
    int idx;
    std::vector<int64_t> dims;
    const char* symbolic;
  };
  const Want wants[] = {
      {sp::kInputW, {e, c_out, c, ras::kKernel, ras::kKernel}, "E, C_out, Cx + Cr, 3, 3"},
      {sp::kInputB, {e, c_out}, "E, C_out"},
      {sp::kInputRoutingWeight, {e, c}, "E, Cx + Cr"},
      {sp::kInputRoutingBias, {e}, "E"},
      {sp::kInputSe1Weight, {c, c, 1, 1}, "Cx + Cr, Cx + Cr, 1, 1"},
      {sp::kInputSe1Bias, {c}, "Cx + Cr"},
      {sp::kInputSe2Weight, {c_out, c, 1, 1}, "C_out, Cx + Cr, 1, 1"},
      {sp::kInputSe2Bias, {c_out}, "C_out"},
      {sp::kInputValidSize, {2}, "rows, cols"},
  };
  for (const Want& want : wants) {
    if (want.idx >= nb_inputs) continue;
    if (!matches(in[want.idx], want.dims))
      return std::string("input '") + sp::kInputs[want.idx].name + "' must have shape " + want_str(want.dims) +
             " = [" + want.symbolic + "], got " + dims_str(in[want.idx]);
  }
  if ((known(cx) && cx < 1) || (known(cr) && cr < 1) || (known(h) && h < 1) || (known(wd) && wd < 1) ||
      (known(e) && e < 1) || (known(c_out) && c_out < 1))
    return "Cx, Cr, H, W, E and C_out must all be >= 1 (X " + dims_str(x) + ", R " + dims_str(r) + ", W " +
           dims_str(w) + ")";
  if (known(h) && known(wd) && h * wd >= (int64_t{1} << 31)) return "feature maps of 2^31 pixels or more are not supported";
  if (s != nullptr) *s = ras::Shape{n, cx, cr, h, wd, e, c_out};
  return "";
}

int32_t RasPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                   nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  trace("configurePlugin");
  return check_and_record("configurePlugin", in, nbInputs, out, nbOutputs, [&](const std::vector<Dims>& dims) {
    std::string err = check_shapes(dims.data(), nbInputs, nullptr);
    if (err.empty()) nb_inputs_ = nbInputs;
    return err;
  });
}

int32_t RasPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                   nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                   nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                   nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept {
  trace("getOutputShapes");
  if (inputs == nullptr || outputs == nullptr || nbOutputs != 1 || nbInputs < kRequiredInputs ||
      inputs[sp::kInputX].nbDims != 4 || inputs[sp::kInputW].nbDims != 5) {
    report("getOutputShapes: expected X [N, Cx, H, W], W [E, C_out, Cx + Cr, 3, 3], ... and one output");
    return 1;
  }
  // Y = [N, C_out, H, W]
  outputs[0].nbDims = 4;
  outputs[0].d[0] = inputs[sp::kInputX].d[0];
  outputs[0].d[1] = inputs[sp::kInputW].d[1];
  outputs[0].d[2] = inputs[sp::kInputX].d[2];
  outputs[0].d[3] = inputs[sp::kInputX].d[3];
  return 0;
}

bool RasPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                          int32_t nbInputs, int32_t nbOutputs) noexcept {
  trace("supportsFormatCombination");
  if (inOut == nullptr || nbOutputs != 1 || pos < 0 || pos >= nbInputs + nbOutputs) return false;
  if (nbInputs != kRequiredInputs && nbInputs != sp::kNumInputs) return false;
  const nvinfer1::PluginTensorDesc& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  const DataType t = inOut[sp::kInputX].desc.type;
  if (pos == nbInputs) return d.type == t;  // Y has X's type
  switch (pos) {
    case sp::kInputX: return is_float_or_half(d.type);
    case sp::kInputR:
    case sp::kInputW:
    case sp::kInputB: return d.type == t;  // type parameter T
    case sp::kInputRoutingWeight: return is_float_or_half(d.type);  // T2, independent of T
    case sp::kInputRoutingBias:
    case sp::kInputSe1Weight:
    case sp::kInputSe1Bias:
    case sp::kInputSe2Weight:
    case sp::kInputSe2Bias: return d.type == inOut[sp::kInputRoutingWeight].desc.type;
    case sp::kInputValidSize:  // ONNX INT64; TensorRT may present INT64 or INT32
      return d.type == DataType::kINT32 || d.type == DataType::kINT64;
    default: return false;
  }
}

size_t RasPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                   nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                                   int32_t /*nbOutputs*/) const noexcept {
  trace("getWorkspaceSize");
  try {
    if (inputs == nullptr || nbInputs < kRequiredInputs) return 0;
    const std::vector<Dims> dims = max_dims(inputs, nbInputs);
    ras::Shape s{};
    if (!check_shapes(dims.data(), nbInputs, &s).empty() || ras::check_shape(s) != kOk) return 0;
    return ras::cuda_workspace_bytes(s);
  } catch (...) {
    return 0;
  }
}

int32_t RasPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                 nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  trace("onShapeChange");
  return check_and_record("onShapeChange", in, nbInputs, out, nbOutputs, [&](const std::vector<Dims>& dims) {
    ras::Shape s{};
    std::string err = check_shapes(dims.data(), nbInputs, &s);
    if (err.empty() && !matches(out[0].dims, {s.n, s.c_out, s.h, s.w}))
      err = "output 'Y' has shape " + dims_str(out[0].dims) + ", expected " + want_str({s.n, s.c_out, s.h, s.w});
    if (err.empty()) nb_inputs_ = nbInputs;
    return err;
  });
}

int32_t RasPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                           void const* const* inputs, void* const* outputs, void* workspace,
                           cudaStream_t stream) noexcept {
  trace("enqueue");
  try {
    if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr) {
      report("enqueue: null descriptors or pointers");
      return 1;
    }
    // enqueue is not told the number of inputs: configurePlugin / onShapeChange recorded it.
    if (nb_inputs_ != kRequiredInputs && nb_inputs_ != sp::kNumInputs) {
      report("enqueue: called before configurePlugin/onShapeChange told the inputs", nvinfer1::ErrorCode::kINTERNAL_ERROR);
      return 1;
    }
    const Dims& x = inputDesc[sp::kInputX].dims;
    const Dims& r = inputDesc[sp::kInputR].dims;
    const Dims& w = inputDesc[sp::kInputW].dims;
    if (x.nbDims != 4 || r.nbDims != 4 || w.nbDims != 5) {
      report("enqueue: X and R must have rank 4 and W rank 5");
      return 1;
    }
    const ras::Shape s{x.d[0], x.d[1], r.d[1], x.d[2], x.d[3], w.d[0], w.d[1]};
    if (s.n == 0) return 0;
    if (ras::check_shape(s) != kOk) {
      report("enqueue: invalid shapes X " + dims_str(x) + ", R " + dims_str(r) + ", W " + dims_str(w));
      return 1;
    }
    const bool has_valid = nb_inputs_ == sp::kNumInputs;
    DType t, t_gate, t_valid = DType::kInt64;
    if (!to_dtype(inputDesc[sp::kInputX].type, &t) || !to_dtype(inputDesc[sp::kInputRoutingWeight].type, &t_gate) ||
        (has_valid && !to_dtype(inputDesc[sp::kInputValidSize].type, &t_valid))) {
      report("enqueue: unsupported data type");
      return 1;
    }
    const size_t bytes = ras::cuda_workspace_bytes(s);
    const int code = ras::forward_cuda(
        s, t, t_gate, t_valid, inputs[sp::kInputX], inputs[sp::kInputR], inputs[sp::kInputW], inputs[sp::kInputB],
        inputs[sp::kInputRoutingWeight], inputs[sp::kInputRoutingBias], inputs[sp::kInputSe1Weight],
        inputs[sp::kInputSe1Bias], inputs[sp::kInputSe2Weight], inputs[sp::kInputSe2Bias],
        has_valid ? inputs[sp::kInputValidSize] : nullptr, outputs[0], workspace, bytes, static_cast<void*>(stream));
    return launch_result(code, "reference-aware selection");
  } catch (...) {
    report("enqueue failed", nvinfer1::ErrorCode::kINTERNAL_ERROR);
    return 1;
  }
}

}  // namespace trt
}  // namespace rrsr
