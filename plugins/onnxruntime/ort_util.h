// Helpers of the ONNX Runtime host: status creation, spec-driven attribute reading with validation, tensor access
// and shape formatting. Everything returns an OrtStatus* (nullptr = success) instead of throwing, because these run
// inside ORT's C callbacks where an escaping exception would take the process down.
#pragma once

#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../kernels/common/launch_common.h"
#include "rrsr_op_spec.h"

namespace rrsr {
namespace ort {

enum class Device { kCpu, kCuda };

inline const char* provider_name(Device d) {
  return d == Device::kCuda ? "CUDAExecutionProvider" : "CPUExecutionProvider";
}

// "[2, 16, 9, 11]"
inline std::string dims_str(const std::vector<int64_t>& d) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < d.size(); ++i) os << (i ? ", " : "") << d[i];
  os << "]";
  return os.str();
}

// The identity of a node for error messages: "RrsrModulatedDeformConv (node 'mdcn_0')".
struct NodeId {
  std::string op_type;
  std::string name;
  std::string str() const { return op_type + " (node '" + name + "')"; }
};

inline OrtStatus* make_error(const OrtApi& api, const NodeId& node, const std::string& msg,
                             OrtErrorCode code = ORT_INVALID_ARGUMENT) {
  return api.CreateStatus(code, (node.str() + ": " + msg).c_str());
}

inline std::string status_message(const OrtApi& api, OrtStatus* st) {
  std::string m = api.GetErrorMessage(st);
  api.ReleaseStatus(st);
  return m;
}

inline std::string node_name(const OrtApi& api, const OrtKernelInfo* info) {
  size_t size = 0;
  OrtStatus* st = api.KernelInfo_GetNodeName(info, nullptr, &size);
  if (st != nullptr || size == 0) {
    if (st) api.ReleaseStatus(st);
    return "";
  }
  std::string name(size, '\0');
  st = api.KernelInfo_GetNodeName(info, &name[0], &size);
  if (st != nullptr) {
    api.ReleaseStatus(st);
    return "";
  }
  name.resize(size > 0 ? size - 1 : 0);  // size counts the terminating NUL
  return name;
}

// Whether the node carries attribute `name` with some type other than the one just tried. ORT's getters fail the
// same way for "absent" and "wrong type", so probe the other types: absent means every getter fails.
inline bool attr_present_as_other_type(const OrtApi& api, const OrtKernelInfo* info, const char* name) {
  size_t size = 0;
  float f = 0.0f;
  int64_t i = 0;
  OrtStatus* probes[] = {
      api.KernelInfoGetAttribute_int64(info, name, &i),
      api.KernelInfoGetAttribute_float(info, name, &f),
      api.KernelInfoGetAttributeArray_int64(info, name, nullptr, &size),
      api.KernelInfoGetAttributeArray_float(info, name, nullptr, &size),
      api.KernelInfoGetAttribute_string(info, name, nullptr, &size),
  };
  bool present = false;
  for (OrtStatus* st : probes) {
    if (st == nullptr)
      present = true;
    else
      api.ReleaseStatus(st);
  }
  return present;
}

inline const char* attr_type_name(spec::AttrType t) {
  switch (t) {
    case spec::AttrType::kInt: return "INT";
    case spec::AttrType::kInts: return "INTS";
    case spec::AttrType::kString: return "STRING";
  }
  return "?";
}

// Reads an INT or INTS attribute described by the spec: the spec default when absent; an error naming the op,
// attribute and expectation when present with another type, another length, or a value below the spec minimum.
inline OrtStatus* read_int_attr(const OrtApi& api, const OrtKernelInfo* info, const NodeId& node,
                                const spec::AttrSpec& a, std::vector<int64_t>* out) {
  out->clear();
  OrtStatus* st = nullptr;
  if (a.type == spec::AttrType::kInt) {
    int64_t v = 0;
    st = api.KernelInfoGetAttribute_int64(info, a.name, &v);
    if (st == nullptr) out->push_back(v);
  } else {
    size_t size = 0;
    st = api.KernelInfoGetAttributeArray_int64(info, a.name, nullptr, &size);
    if (st == nullptr) {
      out->resize(size);
      if (size > 0) st = api.KernelInfoGetAttributeArray_int64(info, a.name, out->data(), &size);
    }
    if (st == nullptr && size == 0) {
      // ORT's size query does not check the attribute type: a FLOATS (or scalar) attribute reads as an empty INTS.
      size_t fsize = 0;
      float f = 0.0f;
      int64_t i = 0;
      OrtStatus* probes[] = {api.KernelInfoGetAttributeArray_float(info, a.name, nullptr, &fsize),
                             api.KernelInfoGetAttribute_float(info, a.name, &f),
                             api.KernelInfoGetAttribute_int64(info, a.name, &i)};
      const bool other = (probes[0] == nullptr && fsize > 0) || probes[1] == nullptr || probes[2] == nullptr;
      for (OrtStatus* p : probes)
        if (p) api.ReleaseStatus(p);
      if (other)
        return make_error(api, node, std::string("attribute '") + a.name + "' must be of type INTS but the node has "
                                                                         "another type");
    }
  }
  if (st != nullptr) {
    api.ReleaseStatus(st);
    if (attr_present_as_other_type(api, info, a.name))
      return make_error(api, node, std::string("attribute '") + a.name + "' must be of type " +
                                       attr_type_name(a.type) + " but the node has another type");
    out->assign(a.int_defaults, a.int_defaults + a.num_int_defaults);
    return nullptr;
  }
  if (a.type == spec::AttrType::kInts && a.length >= 0 && static_cast<int>(out->size()) != a.length) {
    std::ostringstream os;
    os << "attribute '" << a.name << "' must have " << a.length << " values, got " << out->size() << " "
       << dims_str(*out);
    return make_error(api, node, os.str());
  }
  if (a.has_min) {
    for (int64_t v : *out) {
      if (v < a.min_value) {
        std::ostringstream os;
        os << "attribute '" << a.name << "' values must be >= " << a.min_value << ", got "
           << (a.type == spec::AttrType::kInt ? std::to_string(v) : dims_str(*out));
        return make_error(api, node, os.str());
      }
    }
  }
  return nullptr;
}

// Reads a STRING attribute (spec default when absent).
inline OrtStatus* read_string_attr(const OrtApi& api, const OrtKernelInfo* info, const NodeId& node,
                                   const spec::AttrSpec& a, std::string* out) {
  size_t size = 0;
  OrtStatus* st = api.KernelInfoGetAttribute_string(info, a.name, nullptr, &size);
  if (st == nullptr && size > 0) {
    std::string v(size, '\0');
    st = api.KernelInfoGetAttribute_string(info, a.name, &v[0], &size);
    if (st == nullptr) {
      v.resize(size - 1);
      *out = v;
      return nullptr;
    }
  }
  if (st != nullptr) api.ReleaseStatus(st);
  if (attr_present_as_other_type(api, info, a.name))
    return make_error(api, node, std::string("attribute '") + a.name + "' must be of type STRING");
  *out = a.string_default;
  return nullptr;
}

// plugin_version / plugin_namespace are TensorRT registry keys, unused here; read them so a wrong type is
// reported the same way by every op.
inline OrtStatus* check_plugin_attrs(const OrtApi& api, const OrtKernelInfo* info, const NodeId& node,
                                     const spec::AttrSpec& version, const spec::AttrSpec& ns) {
  std::string ignored;
  OrtStatus* st = read_string_attr(api, info, node, version, &ignored);
  return st ? st : read_string_attr(api, info, node, ns, &ignored);
}

// One input (or output) tensor as the kernels see it.
struct Tensor {
  bool present = false;
  const OrtValue* value = nullptr;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> dims;
  const void* data = nullptr;
};

inline OrtStatus* get_input(const OrtApi& api, OrtKernelContext* ctx, size_t index, Tensor* t) {
  *t = Tensor{};
  size_t count = 0;
  if (OrtStatus* st = api.KernelContext_GetInputCount(ctx, &count)) return st;
  if (index >= count) return nullptr;  // trailing optional input omitted
  const OrtValue* v = nullptr;
  if (OrtStatus* st = api.KernelContext_GetInput(ctx, index, &v)) return st;
  if (v == nullptr) return nullptr;  // optional input given as ""
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if (OrtStatus* st = api.GetTensorTypeAndShape(v, &info)) return st;
  size_t rank = 0;
  OrtStatus* st = api.GetTensorElementType(info, &t->type);
  if (st == nullptr) st = api.GetDimensionsCount(info, &rank);
  if (st == nullptr) {
    t->dims.resize(rank);
    if (rank > 0) st = api.GetDimensions(info, t->dims.data(), rank);
  }
  api.ReleaseTensorTypeAndShapeInfo(info);
  if (st != nullptr) return st;
  void* data = nullptr;
  if ((st = api.GetTensorMutableData(const_cast<OrtValue*>(v), &data))) return st;
  t->present = true;
  t->value = v;
  t->data = data;
  return nullptr;
}

// Device scratch for a CUDA launch, from the EP's own allocator for the memory `like` lives in, freed when this goes
// out of scope (right after the launch): ORT's CUDA allocator hands memory out on the same compute stream, so later
// users are ordered after the kernel. acquire(0 bytes) allocates nothing (data() stays null).
class Scratch {
 public:
  explicit Scratch(const OrtApi& api) : api_(api) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (alloc_ == nullptr) return;
    if (data_ != nullptr) alloc_->Free(alloc_, data_);
    api_.ReleaseAllocator(alloc_);
  }

  OrtStatus* acquire(OrtKernelContext* ctx, const Tensor& like, size_t bytes, const NodeId& node) {
    if (bytes == 0) return nullptr;
    const OrtMemoryInfo* mem = nullptr;
    if (OrtStatus* st = api_.GetTensorMemoryInfo(like.value, &mem)) return st;
    if (OrtStatus* st = api_.KernelContext_GetAllocator(ctx, mem, &alloc_)) return st;
    data_ = alloc_->Alloc(alloc_, bytes);
    if (data_ == nullptr)
      return make_error(api_, node, "could not allocate " + std::to_string(bytes) + " bytes of CUDA workspace",
                        ORT_FAIL);
    bytes_ = bytes;
    return nullptr;
  }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  const OrtApi& api_;
  OrtAllocator* alloc_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

inline OrtStatus* make_output(const OrtApi& api, OrtKernelContext* ctx, size_t index,
                              const std::vector<int64_t>& dims, void** data) {
  OrtValue* out = nullptr;
  if (OrtStatus* st = api.KernelContext_GetOutput(ctx, index, dims.data(), dims.size(), &out)) return st;
  return api.GetTensorMutableData(out, data);
}

inline bool to_dtype(ONNXTensorElementDataType t, DType* out) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: *out = DType::kFloat32; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: *out = DType::kFloat16; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: *out = DType::kInt32; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: *out = DType::kInt64; return true;
    default: return false;
  }
}

inline ONNXTensorElementDataType to_onnx(spec::DType t) {
  switch (t) {
    case spec::DType::kFloat32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case spec::DType::kFloat16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case spec::DType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case spec::DType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

// Runs CPU kernel tasks on ORT's intra-op thread pool (the session's threading settings apply). If the pool call
// fails, the tasks run here; they are idempotent (disjoint outputs), so a partial first run does no harm.
struct OrtParallel {
  const OrtApi* api;
  const OrtKernelContext* ctx;

  static void run(void* self, size_t n, void (*task)(void*, size_t), void* arg) {
    auto* p = static_cast<OrtParallel*>(self);
    OrtStatus* st = p->api->KernelContext_ParallelFor(p->ctx, task, n, 0, arg);
    if (st != nullptr) {
      p->api->ReleaseStatus(st);
      for (size_t i = 0; i < n; ++i) task(arg, i);
    }
  }
  CpuParallelFor as_cpu_parallel() { return CpuParallelFor{&OrtParallel::run, this}; }
};

// Launcher status -> ORT status.
inline OrtStatus* launcher_status(const OrtApi& api, const NodeId& node, int code, const char* what) {
  if (code == kOk) return nullptr;
  std::ostringstream os;
  os << what << " failed: " << status_string(code) << " (code " << code << ")";
  return make_error(api, node, os.str(), code == kErrInvalidArgument ? ORT_INVALID_ARGUMENT : ORT_FAIL);
}

}  // namespace ort
}  // namespace rrsr
