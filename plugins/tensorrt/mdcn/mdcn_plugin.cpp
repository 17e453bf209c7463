#include "mdcn_plugin.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "../../kernels/common/rrsr_math.h"
#include "../../kernels/mdcn/launch.h"

namespace rrsr {
namespace trt {

namespace sp = spec::modulated_deform_conv;
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimensionOperation;
using nvinfer1::TensorFormat;

const OpInfo& mdcn_op_info() {
  static const OpInfo info{sp::kOpType, sp::kPluginVersion, sp::kPluginNamespace, sp::kAttrs, sp::kNumAttrs};
  return info;
}

MdcnPlugin::MdcnPlugin(std::string layer, AttrValues values)
    : PluginBase(mdcn_op_info(), std::move(layer), std::move(values)) {
  const auto& v = values_.v;
  stride_h_ = v[sp::kAttrStrides][0];
  stride_w_ = v[sp::kAttrStrides][1];
  pad_t_ = v[sp::kAttrPads][0];
  pad_l_ = v[sp::kAttrPads][1];
  pad_b_ = v[sp::kAttrPads][2];
  pad_r_ = v[sp::kAttrPads][3];
  dil_h_ = v[sp::kAttrDilations][0];
  dil_w_ = v[sp::kAttrDilations][1];
  group_ = v[sp::kAttrGroup][0];
  offset_group_ = v[sp::kAttrOffsetGroup][0];
  std::ostringstream id;  // "strides=1,1;pads=1,1,1,1;..." (the integer attributes: the plugin's whole state)
  for (int a = 0; a < sp::kNumAttrs; ++a) {
    if (sp::kAttrs[a].type == spec::AttrType::kString) continue;
    id << (id.tellp() > 0 ? ";" : "") << sp::kAttrs[a].name << "=";
    const auto& vals = v[static_cast<size_t>(a)];
    for (size_t i = 0; i < vals.size(); ++i) id << (i ? "," : "") << vals[i];
  }
  timing_id_ = id.str();
}

bool MdcnPlugin::check_attrs(const AttrValues& values, std::string* why) {
  // parse_fields already checked type, length and minimum of each field; make sure every one is there.
  for (int a : {sp::kAttrStrides, sp::kAttrPads, sp::kAttrDilations, sp::kAttrGroup, sp::kAttrOffsetGroup}) {
    const auto& spec_a = sp::kAttrs[a];
    const size_t want = spec_a.type == spec::AttrType::kInt ? 1u : static_cast<size_t>(spec_a.length);
    if (values.v[static_cast<size_t>(a)].size() != want) {
      *why = std::string("field '") + spec_a.name + "' has the wrong number of values";
      return false;
    }
  }
  return true;
}

bool MdcnPlugin::roles(int32_t nb_inputs, int32_t rank3, Roles* r) {
  *r = Roles{};
  if (nb_inputs == 3) return true;
  if (nb_inputs == 4) {
    if (rank3 == 1) r->b = 3;
    else if (rank3 == 4) r->mask = 3;
    else return false;
    return true;
  }
  if (nb_inputs == 5) {
    r->b = 3;
    r->mask = 4;
    return true;
  }
  return false;
}

namespace {
bool known(int64_t d) { return d >= 0; }

std::string shape_msg(const char* input, const std::string& want, const Dims& got) {
  return std::string("input '") + input + "' must have shape " + want + ", got " + dims_str(got);
}

// "[a, b, ?, d]" with -1 shown as "?"
std::string want_str(const std::vector<int64_t>& d) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < d.size(); ++i) {
    os << (i ? ", " : "");
    if (d[i] < 0) os << "?"; else os << d[i];
  }
  os << "]";
  return os.str();
}

bool matches(const Dims& got, const std::vector<int64_t>& want) {
  if (got.nbDims != static_cast<int32_t>(want.size())) return false;
  for (size_t i = 0; i < want.size(); ++i)
    if (known(want[i]) && known(got.d[i]) && got.d[i] != want[i]) return false;
  return true;
}
}  // namespace

std::string MdcnPlugin::check_shapes(const Dims* in, int32_t nb_inputs, Dims* out) const {
  if (nb_inputs < 3 || nb_inputs > 5)
    return "expected 3 to 5 inputs (X, W, offset, [B], [mask]), got " + std::to_string(nb_inputs);
  Roles r;
  if (!roles(nb_inputs, in[nb_inputs > 3 ? 3 : 0].nbDims, &r))
    return "with 4 inputs the fourth must be 'B' (rank 1) or 'mask' (rank 4), got " + dims_str(in[3]);
  const Dims& x = in[0];
  const Dims& w = in[1];
  if (x.nbDims != 4) return shape_msg(sp::kInputs[sp::kInputX].name, "[N, C, H, W] (rank 4)", x);
  if (w.nbDims != 4) return shape_msg(sp::kInputs[sp::kInputW].name, "[C_out, C / group, kh, kw] (rank 4)", w);
  const int64_t n = x.d[0], c = x.d[1], h = x.d[2], wd = x.d[3];
  const int64_t c_out = w.d[0], kh = w.d[2], kw = w.d[3];
  std::ostringstream os;
  if (known(c) && c % group_ != 0) {
    os << "attribute 'group' = " << group_ << " must divide the input channels C = " << c;
    return os.str();
  }
  if (known(c_out) && c_out % group_ != 0) {
    os << "attribute 'group' = " << group_ << " must divide the output channels C_out = " << c_out;
    return os.str();
  }
  if (known(c) && c % offset_group_ != 0) {
    os << "attribute 'offset_group' = " << offset_group_ << " must divide the input channels C = " << c;
    return os.str();
  }
  if (known(c) && known(w.d[1]) && w.d[1] * group_ != c) {
    os << "[C_out, C / group = " << c / group_ << ", kh, kw] (C = " << c << ", group = " << group_ << ")";
    return shape_msg(sp::kInputs[sp::kInputW].name, os.str(), w);
  }
  int64_t h_out = -1, w_out = -1;
  if (known(h) && known(kh)) {
    h_out = conv_out_size(h, kh, stride_h_, pad_t_, pad_b_, dil_h_);
    if (h_out < 1) return "output height would be empty (H = " + std::to_string(h) + ", kh = " + std::to_string(kh) + ")";
  }
  if (known(wd) && known(kw)) {
    w_out = conv_out_size(wd, kw, stride_w_, pad_l_, pad_r_, dil_w_);
    if (w_out < 1) return "output width would be empty (W = " + std::to_string(wd) + ", kw = " + std::to_string(kw) + ")";
  }
  const int64_t taps = known(kh) && known(kw) ? offset_group_ * kh * kw : -1;
  const std::vector<int64_t> off_want{n, known(taps) ? 2 * taps : -1, h_out, w_out};
  if (!matches(in[2], off_want))
    return shape_msg(sp::kInputs[sp::kInputOffset].name,
                     want_str(off_want) + " = [N, 2 * offset_group * kh * kw, H_out, W_out]", in[2]);
  if (r.b >= 0 && !matches(in[r.b], {c_out}))
    return shape_msg(sp::kInputs[sp::kInputB].name, want_str({c_out}) + " = [C_out]", in[r.b]);
  const std::vector<int64_t> mask_want{n, taps, h_out, w_out};
  if (r.mask >= 0 && !matches(in[r.mask], mask_want))
    return shape_msg(sp::kInputs[sp::kInputMask].name,
                     want_str(mask_want) + " = [N, offset_group * kh * kw, H_out, W_out]", in[r.mask]);
  if (known(h) && known(wd) && h * wd >= (int64_t{1} << 31)) return "feature maps of 2^31 pixels or more are not supported";
  if (out != nullptr) {
    out->nbDims = 4;
    out->d[0] = n;
    out->d[1] = c_out;
    out->d[2] = h_out;
    out->d[3] = w_out;
  }
  return "";
}

int32_t MdcnPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  trace("configurePlugin");
  return check_and_record("configurePlugin", in, nbInputs, out, nbOutputs, [&](const std::vector<Dims>& dims) {
    std::string err = check_shapes(dims.data(), nbInputs, nullptr);
    if (!err.empty()) return err;
    record_inputs(dims);
    tactics_ = variants_for(in, out);
    return err;
  });
}

// The variants to offer for these descriptors (channels and types). A function of the descriptors and the policy
// alone, so getWorkspaceSize -- which may be asked of another object than configurePlugin -- reserves the column
// slab exactly when the slab's tactic can be chosen.
std::vector<int32_t> MdcnPlugin::variants_for(nvinfer1::DynamicPluginTensorDesc const* in,
                                              nvinfer1::DynamicPluginTensorDesc const* out) const {
  std::vector<int32_t> offered;
  const TacticPolicy policy = tactic_policy();
  DType t, t_off;
  if (policy == TacticPolicy::kNone || in[0].max.nbDims != 4 || in[1].max.nbDims != 4 || out[0].max.nbDims != 4 ||
      !to_dtype(in[0].desc.type, &t) || !to_dtype(in[2].desc.type, &t_off))
    return offered;
  mdcn::Variant v[8];
  const mdcn::Shape hi = kernel_shape(in[0].max, in[1].max, out[0].max);
  if (mdcn::check_shape(hi) != kOk) return offered;
  const int nv = mdcn::cuda_variants(hi, t, t_off, v, 8, policy == TacticPolicy::kAll);
  for (int i = 0; i < nv && i < 8; ++i) offered.push_back(static_cast<int32_t>(v[i]));
  return offered;
}

MdcnPlugin::TacticPolicy MdcnPlugin::tactic_policy() {
  const char* e = std::getenv("RRSR_TRT_MDCN_TACTICS");
  const std::string v = e == nullptr ? "" : e;
  if (v == "all") return TacticPolicy::kAll;
  if (v == "none") return TacticPolicy::kNone;
  if (!v.empty() && v != "verified")
    log(nvinfer1::ILogger::Severity::kWARNING,
        std::string(sp::kOpType) + ": RRSR_TRT_MDCN_TACTICS='" + v + "' is not one of verified, all, none; using verified");
  return TacticPolicy::kVerified;
}

int32_t MdcnPlugin::getValidTactics(int32_t* tactics, int32_t nbTactics) noexcept {
  trace("getValidTactics");
  if (tactics == nullptr || nbTactics != static_cast<int32_t>(tactics_.size())) {
    report("getValidTactics: asked for " + std::to_string(nbTactics) + " tactics, getNbTactics() is " +
           std::to_string(tactics_.size()));
    return 1;
  }
  for (size_t i = 0; i < tactics_.size(); ++i) tactics[i] = tactics_[i];
  return 0;
}

int32_t MdcnPlugin::setTactic(int32_t tactic) noexcept {
  trace("setTactic");
  switch (static_cast<mdcn::Variant>(tactic)) {  // every variant is valid at every shape (launch.h)
    case mdcn::Variant::kDefault:
    case mdcn::Variant::kThreeStage:
    case mdcn::Variant::kRegisterB:
    case mdcn::Variant::kTwoBlocksPerSm:
    case mdcn::Variant::kColumnSlab:
      variant_ = static_cast<mdcn::Variant>(tactic);
      return 0;
  }
  report("setTactic: unknown tactic " + std::to_string(tactic) + " (0 to 4: mdcn::Variant)");
  return 1;
}

int32_t MdcnPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                    nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                    nvinfer1::IExprBuilder& eb) noexcept {
  trace("getOutputShapes");
  try {
    if (inputs == nullptr || outputs == nullptr || nbOutputs != 1 || nbInputs < 3 || nbInputs > 5 ||
        inputs[0].nbDims != 4 || inputs[1].nbDims != 4) {
      report("getOutputShapes: expected inputs X [N, C, H, W], W [C_out, C / group, kh, kw], offset, [B], [mask] "
             "and one output");
      return 1;
    }
    // out = (in + pad_begin + pad_end - (dil * (k - 1) + 1)) floordiv stride + 1
    auto out_size = [&](const nvinfer1::IDimensionExpr* in, const nvinfer1::IDimensionExpr* k, int64_t pad_sum,
                        int64_t dil, int64_t stride) -> const nvinfer1::IDimensionExpr* {
      const nvinfer1::IDimensionExpr* span =
          eb.operation(DimensionOperation::kSUM, *eb.operation(DimensionOperation::kPROD, *k, *eb.constant(dil)),
                       *eb.constant(1 - dil));
      const nvinfer1::IDimensionExpr* num =
          eb.operation(DimensionOperation::kSUB, *eb.operation(DimensionOperation::kSUM, *in, *eb.constant(pad_sum)),
                       *span);
      return eb.operation(DimensionOperation::kSUM,
                          *eb.operation(DimensionOperation::kFLOOR_DIV, *num, *eb.constant(stride)), *eb.constant(1));
    };
    outputs[0].nbDims = 4;
    outputs[0].d[0] = inputs[0].d[0];
    outputs[0].d[1] = inputs[1].d[0];
    outputs[0].d[2] = out_size(inputs[0].d[2], inputs[1].d[2], pad_t_ + pad_b_, dil_h_, stride_h_);
    outputs[0].d[3] = out_size(inputs[0].d[3], inputs[1].d[3], pad_l_ + pad_r_, dil_w_, stride_w_);
    for (int i = 0; i < 4; ++i)
      if (outputs[0].d[i] == nullptr) {
        report("getOutputShapes: the expression builder returned no expression");
        return 1;
      }
    return 0;
  } catch (...) {
    report("getOutputShapes failed", nvinfer1::ErrorCode::kINTERNAL_ERROR);
    return 1;
  }
}

bool MdcnPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                           int32_t nbInputs, int32_t nbOutputs) noexcept {
  trace("supportsFormatCombination");
  if (inOut == nullptr || nbOutputs != 1 || pos < 0 || pos >= nbInputs + nbOutputs) return false;
  Roles r;
  if (!roles(nbInputs, nbInputs > 3 ? inOut[3].desc.dims.nbDims : 0, &r)) return false;
  const nvinfer1::PluginTensorDesc& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  const DataType t = inOut[0].desc.type;  // decided at pos 0; later positions may look back at it
  if (pos == 0) return is_float_or_half(d.type);
  if (pos == sp::kInputW) return d.type == t;
  if (pos == sp::kInputOffset) return is_float_or_half(d.type);  // independent of X (FP16 X, FP32 offsets is fine)
  if (pos == nbInputs) return d.type == t;                      // Y has X's type
  if (pos == r.b) return d.type == t;
  if (pos == r.mask) return d.type == inOut[sp::kInputOffset].desc.type;  // mask shares offset's type
  return false;
}

int32_t MdcnPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                  nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  trace("onShapeChange");
  return check_and_record("onShapeChange", in, nbInputs, out, nbOutputs, [&](const std::vector<Dims>& dims) {
    Dims y{};
    std::string err = check_shapes(dims.data(), nbInputs, &y);
    if (err.empty() && !matches(out[0].dims, std::vector<int64_t>(y.d, y.d + y.nbDims)))
      err = "output 'Y' has shape " + dims_str(out[0].dims) + ", expected " + dims_str(y);
    if (err.empty()) record_inputs(dims);
    return err;
  });
}

void MdcnPlugin::record_inputs(const std::vector<Dims>& dims) {
  // enqueue is not told the number of inputs (nor which optional one a 4th input is): remember them here
  nb_inputs_ = static_cast<int32_t>(dims.size());
  rank3_ = nb_inputs_ > 3 ? dims[3].nbDims : 0;
}

mdcn::Shape MdcnPlugin::kernel_shape(const Dims& x, const Dims& w, const Dims& y) const {
  mdcn::Shape s{};
  s.n = x.d[0];
  s.c = x.d[1];
  s.h = x.d[2];
  s.w = x.d[3];
  s.c_out = w.d[0];
  s.kh = w.d[2];
  s.kw = w.d[3];
  s.h_out = y.d[2];
  s.w_out = y.d[3];
  s.stride_h = stride_h_;
  s.stride_w = stride_w_;
  s.pad_top = pad_t_;
  s.pad_left = pad_l_;
  s.dil_h = dil_h_;
  s.dil_w = dil_w_;
  s.group = group_;
  s.offset_group = offset_group_;
  return s;
}

size_t MdcnPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                    nvinfer1::DynamicPluginTensorDesc const* outputs,
                                    int32_t nbOutputs) const noexcept {
  trace("getWorkspaceSize");
  try {
    if (inputs == nullptr || outputs == nullptr || nbInputs < 3 || nbOutputs != 1) return 0;
    for (const int i : {0, 1}) {
      if (inputs[i].min.nbDims != 4 || inputs[i].max.nbDims != 4) return 0;
    }
    if (outputs[0].min.nbDims != 4 || outputs[0].max.nbDims != 4) return 0;
    const mdcn::Shape lo = kernel_shape(inputs[0].min, inputs[1].min, outputs[0].min);
    const mdcn::Shape hi = kernel_shape(inputs[0].max, inputs[1].max, outputs[0].max);
    if (mdcn::check_shape(lo) != kOk || mdcn::check_shape(hi) != kOk) return 0;
    DType t, t_off;
    if (!to_dtype(inputs[0].desc.type, &t) || !to_dtype(inputs[2].desc.type, &t_off)) return 0;
    // the column slab too when its tactic is offered (variants_for: as configurePlugin), so it runs every shape
    const std::vector<int32_t> offered = variants_for(inputs, outputs);
    const bool slab = std::find(offered.begin(), offered.end(), static_cast<int32_t>(mdcn::Variant::kColumnSlab)) !=
                      offered.end();
    const mdcn::Variant v = slab ? mdcn::Variant::kColumnSlab : mdcn::Variant::kDefault;
    return mdcn::cuda_workspace_bytes(lo, hi, t, t_off, Algo::kAuto, v);
  } catch (...) {
    return 0;
  }
}

int32_t MdcnPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                            void const* const* inputs, void* const* outputs, void* workspace,
                            cudaStream_t stream) noexcept {
  trace("enqueue");
  try {
    if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr) {
      report("enqueue: null descriptors or pointers");
      return 1;
    }
    // enqueue is not told the number of inputs: configurePlugin (build) and onShapeChange (build and run, before
    // the first enqueue of a context) record it together with the rank of input 3 (B rank 1, mask rank 4).
    if (nb_inputs_ < 3) {
      report("enqueue: called before configurePlugin/onShapeChange told the inputs", nvinfer1::ErrorCode::kINTERNAL_ERROR);
      return 1;
    }
    const Dims& x = inputDesc[0].dims;
    const Dims& w = inputDesc[1].dims;
    const Dims& y = outputDesc[0].dims;
    if (x.nbDims != 4 || w.nbDims != 4 || y.nbDims != 4) {
      report("enqueue: X, W and Y must have rank 4");
      return 1;
    }
    const mdcn::Shape s = kernel_shape(x, w, y);
    if (s.n == 0) return 0;
    if (mdcn::check_shape(s) != kOk) {
      report("enqueue: invalid shapes X " + dims_str(x) + ", W " + dims_str(w) + ", Y " + dims_str(y));
      return 1;
    }
    DType t, t_off;
    if (!to_dtype(inputDesc[0].type, &t) || !to_dtype(inputDesc[2].type, &t_off)) {
      report("enqueue: unsupported data type");
      return 1;
    }
    const void* bias = nullptr;
    const void* mask = nullptr;
    if (nb_inputs_ >= 4) {
      if (rank3_ == 1) bias = inputs[3];
      else mask = inputs[3];
    }
    if (nb_inputs_ == 5) mask = inputs[4];
    // getWorkspaceSize gave at least this for every shape of the profile (with the slab when its tactic was
    // offered, so whenever it can have been chosen)
    const size_t bytes = mdcn::cuda_workspace_bytes(s, t, t_off, Algo::kAuto, variant_);
    mdcn::TileChoice choice;
    choice.variant = variant_;
    const int code = mdcn::forward_cuda(s, t, t_off, inputs[0], inputs[1], inputs[2], bias, mask, outputs[0],
                                        workspace, bytes, static_cast<void*>(stream), Algo::kAuto,
                                        variant_ == mdcn::Variant::kDefault ? nullptr : &choice);
    return launch_result(code, "modulated deformable convolution");
  } catch (...) {
    report("enqueue failed", nvinfer1::ErrorCode::kINTERNAL_ERROR);
    return 1;
  }
}

}  // namespace trt
}  // namespace rrsr
