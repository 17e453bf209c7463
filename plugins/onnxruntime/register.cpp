// Entry points of librrsr_ort_ops.so:
//   RegisterCustomOps(OrtSessionOptions*, const OrtApiBase*)  -- what SessionOptions.register_custom_ops_library calls
//   RrsrOrtOpsDescribe()                                      -- the compiled-in op contract as JSON (for tests)
// The registrations are generated from the spec header: every combination of each op's type parameters, for the CPU
// execution provider and, when built with CUDA, the CUDA execution provider.
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "ort_ops.h"

#if defined(_WIN32)
#define RRSR_EXPORT __declspec(dllexport)
#else
#define RRSR_EXPORT __attribute__((visibility("default")))
#endif

namespace rrsr {
namespace ort {
namespace {

// Element types per registration for an op whose inputs/outputs are typed by the spec's type parameters
// (T, T1, ...): the cartesian product of each parameter's allowed types.
struct Signature {
  std::vector<ONNXTensorElementDataType> inputs;
  std::vector<ONNXTensorElementDataType> outputs;
};

std::vector<Signature> signatures(const spec::IoSpec* inputs, size_t num_inputs, const spec::IoSpec* outputs,
                                  size_t num_outputs) {
  std::vector<const spec::IoSpec*> params;  // first input (or output) naming each type parameter
  auto param_index = [&](const spec::IoSpec& io) -> size_t {
    for (size_t i = 0; i < params.size(); ++i)
      if (std::string(params[i]->type_param) == io.type_param) return i;
    params.push_back(&io);
    return params.size() - 1;
  };
  std::vector<size_t> in_param(num_inputs);
  for (size_t i = 0; i < num_inputs; ++i) in_param[i] = param_index(inputs[i]);
  std::vector<size_t> out_param(num_outputs);
  for (size_t i = 0; i < num_outputs; ++i) out_param[i] = param_index(outputs[i]);

  std::vector<Signature> out;
  std::vector<int> choice(params.size(), 0);
  while (true) {
    Signature sig;
    for (size_t i = 0; i < num_inputs; ++i)
      sig.inputs.push_back(to_onnx(params[in_param[i]]->types[choice[in_param[i]]]));
    for (size_t i = 0; i < num_outputs; ++i)
      sig.outputs.push_back(to_onnx(params[out_param[i]]->types[choice[out_param[i]]]));
    out.push_back(sig);
    size_t p = 0;  // odometer over the parameters
    for (; p < params.size(); ++p) {
      if (++choice[p] < params[p]->num_types) break;
      choice[p] = 0;
    }
    if (p == params.size()) break;
  }
  return out;
}

std::vector<Device> devices() {
#ifdef RRSR_WITH_CUDA
  return {Device::kCpu, Device::kCuda};
#else
  return {Device::kCpu};
#endif
}

struct Registry {
  std::vector<std::unique_ptr<RrsrCustomOp<MdcnKernel>>> mdcn;
  std::vector<std::unique_ptr<RrsrCustomOp<RasKernel>>> ras;
  std::vector<std::unique_ptr<RrsrCustomOp<PatchMatchKernel>>> patch_match;
  std::vector<OrtCustomOp*> all;
};

template <class Kernel>
void add_op(std::vector<std::unique_ptr<RrsrCustomOp<Kernel>>>* dst, std::vector<OrtCustomOp*>* all,
            const char* op_type, int since, const spec::IoSpec* inputs, size_t num_inputs,
            const spec::IoSpec* outputs, size_t num_outputs) {
  for (Device d : devices()) {
    for (const Signature& sig : signatures(inputs, num_inputs, outputs, num_outputs)) {
      dst->emplace_back(new RrsrCustomOp<Kernel>(op_type, since, inputs, num_inputs, d, sig.inputs, sig.outputs));
      all->push_back(dst->back().get());
    }
  }
}

// Built once and never destroyed: ORT keeps pointers to the ops for as long as any session lives, possibly past
// static destruction at exit.
const Registry& registry() {
  static const Registry* reg = [] {
    auto* r = new Registry;
    namespace m = spec::modulated_deform_conv;
    namespace s = spec::ref_aware_selection;
    namespace p = spec::patch_match;
    add_op<MdcnKernel>(&r->mdcn, &r->all, m::kOpType, m::kSinceVersion, m::kInputs, m::kNumInputs, m::kOutputs,
                       m::kNumOutputs);
    add_op<RasKernel>(&r->ras, &r->all, s::kOpType, s::kSinceVersion, s::kInputs, s::kNumInputs, s::kOutputs,
                      s::kNumOutputs);
    add_op<PatchMatchKernel>(&r->patch_match, &r->all, p::kOpType, p::kSinceVersion, p::kInputs, p::kNumInputs,
                             p::kOutputs, p::kNumOutputs);
    return r;
  }();
  return *reg;
}

// ----- RrsrOrtOpsDescribe: the compiled-in contract, serialised from the same constants the kernels use.

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o + "\"";
}

const char* spec_type_name(spec::DType t) {
  switch (t) {
    case spec::DType::kFloat32: return "float";
    case spec::DType::kFloat16: return "float16";
    case spec::DType::kInt32: return "int32";
    case spec::DType::kInt64: return "int64";
  }
  return "?";
}

const char* onnx_type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    default: return "?";
  }
}

void describe_io(std::ostringstream& os, const spec::IoSpec* ios, size_t n) {
  os << "[";
  for (size_t i = 0; i < n; ++i) {
    const spec::IoSpec& io = ios[i];
    os << (i ? ", " : "") << "{\"name\": " << jstr(io.name) << ", \"type_param\": " << jstr(io.type_param)
       << ", \"optional\": " << (io.optional ? "true" : "false") << ", \"shape\": " << jstr(io.shape)
       << ", \"types\": [";
    for (int k = 0; k < io.num_types; ++k) os << (k ? ", " : "") << jstr(spec_type_name(io.types[k]));
    os << "]}";
  }
  os << "]";
}

void describe_attrs(std::ostringstream& os, const spec::AttrSpec* attrs, size_t n) {
  os << "[";
  for (size_t i = 0; i < n; ++i) {
    const spec::AttrSpec& a = attrs[i];
    os << (i ? ", " : "") << "{\"name\": " << jstr(a.name) << ", \"type\": ";
    if (a.type == spec::AttrType::kInt) {
      os << "\"int\", \"default\": " << a.int_defaults[0];
    } else if (a.type == spec::AttrType::kInts) {
      os << "\"ints\", \"default\": [";
      for (int k = 0; k < a.num_int_defaults; ++k) os << (k ? ", " : "") << a.int_defaults[k];
      os << "]";
      if (a.length >= 0) os << ", \"length\": " << a.length;
    } else {
      os << "\"string\", \"default\": " << jstr(a.string_default);
    }
    if (a.has_min) os << ", \"min\": " << a.min_value;
    os << "}";
  }
  os << "]";
}

template <class Op>
void describe_kernels(std::ostringstream& os, const std::vector<std::unique_ptr<Op>>& ops) {
  os << "[";
  for (size_t i = 0; i < ops.size(); ++i) {
    os << (i ? ", " : "") << "{\"provider\": " << jstr(provider_name(ops[i]->device())) << ", \"input_types\": [";
    const auto& types = ops[i]->input_types();
    for (size_t k = 0; k < types.size(); ++k) os << (k ? ", " : "") << jstr(onnx_type_name(types[k]));
    os << "]}";
  }
  os << "]";
}

template <class Op>
void describe_op(std::ostringstream& os, const char* op_type, const char* domain, int since, const char* pv,
                 const char* pns, const spec::IoSpec* in, size_t nin, const spec::IoSpec* out, size_t nout,
                 const spec::AttrSpec* attrs, size_t nattrs, const std::vector<std::unique_ptr<Op>>& ops) {
  os << "{\"op_type\": " << jstr(op_type) << ", \"domain\": " << jstr(domain) << ", \"since_version\": " << since
     << ", \"plugin_version\": " << jstr(pv) << ", \"plugin_namespace\": " << jstr(pns) << ", \"inputs\": ";
  describe_io(os, in, nin);
  os << ", \"outputs\": ";
  describe_io(os, out, nout);
  os << ", \"attributes\": ";
  describe_attrs(os, attrs, nattrs);
  os << ", \"kernels\": ";
  describe_kernels(os, ops);
  os << "}";
}

std::string describe() {
  namespace m = spec::modulated_deform_conv;
  namespace s = spec::ref_aware_selection;
  namespace p = spec::patch_match;
  const Registry& r = registry();
  std::ostringstream os;
  os << "{\"domain\": " << jstr(spec::kDomain) << ", \"cuda\": "
#ifdef RRSR_WITH_CUDA
     << "true"
#else
     << "false"
#endif
     << ", \"ops\": [";
  describe_op(os, m::kOpType, m::kDomain, m::kSinceVersion, m::kPluginVersion, m::kPluginNamespace, m::kInputs,
              m::kNumInputs, m::kOutputs, m::kNumOutputs, m::kAttrs, m::kNumAttrs, r.mdcn);
  os << ", ";
  describe_op(os, s::kOpType, s::kDomain, s::kSinceVersion, s::kPluginVersion, s::kPluginNamespace, s::kInputs,
              s::kNumInputs, s::kOutputs, s::kNumOutputs, s::kAttrs, s::kNumAttrs, r.ras);
  os << ", ";
  describe_op(os, p::kOpType, p::kDomain, p::kSinceVersion, p::kPluginVersion, p::kPluginNamespace, p::kInputs,
              p::kNumInputs, p::kOutputs, p::kNumOutputs, p::kAttrs, p::kNumAttrs, r.patch_match);
  os << "]}";
  return os.str();
}

OrtStatus* register_ops(OrtSessionOptions* options, const OrtApiBase* api_base) {
  if (api_base == nullptr) return nullptr;  // nothing to report through
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) return nullptr;  // runtime older than the headers (1.21): it cannot use these ops
  Ort::InitApi(api);
  try {
    const Registry& r = registry();
    // A domain per call: each SessionOptions owns its registration. ORT needs the domain for as long as sessions
    // made from these options live, which outlasts this call, so it is deliberately never released.
    OrtCustomOpDomain* domain = nullptr;
    if (OrtStatus* st = api->CreateCustomOpDomain(spec::kDomain, &domain)) return st;
    for (OrtCustomOp* op : r.all)
      if (OrtStatus* st = api->CustomOpDomain_Add(domain, op)) return st;
    return api->AddCustomOpDomain(options, domain);
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, (std::string("rrsr custom ops: registration failed: ") + e.what()).c_str());
  } catch (...) {
    return api->CreateStatus(ORT_FAIL, "rrsr custom ops: registration failed");
  }
}

}  // namespace
}  // namespace ort
}  // namespace rrsr

extern "C" {

RRSR_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  return rrsr::ort::register_ops(options, api_base);
}

// The op contract compiled into this library, as JSON (static storage; valid for the life of the process).
RRSR_EXPORT const char* RrsrOrtOpsDescribe(void) {
  static std::once_flag once;
  static std::string* text = nullptr;
  std::call_once(once, [] {
    try {
      text = new std::string(rrsr::ort::describe());
    } catch (...) {
      text = nullptr;
    }
  });
  return text ? text->c_str() : "{}";
}

}  // extern "C"
