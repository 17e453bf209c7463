// The parts of an RRSR IPluginV3 that do not depend on the op: names, capability interfaces, field serialisation,
// attachToContext, and a creator template that validates fields against the op spec. Each op (mdcn/, ras/,
// patch_match/) derives its plugin from PluginBase and instantiates Creator<> with its traits.
//
// Only API present in TensorRT 10.3 is used (IPluginV3, IPluginV3OneCore/Build/Runtime, IPluginCreatorV3One);
// the same code builds on TensorRT 11 headers.
#pragma once

#include <NvInferRuntime.h>

#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "trt_common.h"

namespace rrsr {
namespace trt {

// What the generic parts need to know about an op; every value comes from the generated rrsr_op_spec.h.
struct OpInfo {
  const char* op_type;
  const char* plugin_version;
  const char* plugin_namespace;
  const spec::AttrSpec* attrs;
  int num_attrs;
};

class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  PluginBase(const OpInfo& op, std::string layer, AttrValues values)
      : op_(op), layer_(std::move(layer)), values_(std::move(values)) {}
  ~PluginBase() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
    switch (type) {
      case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
      case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
      case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }

  // IPluginV3OneCore
  nvinfer1::AsciiChar const* getPluginName() const noexcept override { return op_.op_type; }
  nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return op_.plugin_version; }
  nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return op_.plugin_namespace; }

  // IPluginV3OneBuild (common parts). One output of input 0's type; an op with other outputs overrides both.
  int32_t getNbOutputs() const noexcept override { return 1; }
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    trace("getOutputDataTypes");
    if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1 || nbInputs < 1) {
      report("getOutputDataTypes: expected 1 output and at least 1 input, got " + std::to_string(nbOutputs) +
             " and " + std::to_string(nbInputs));
      return 1;
    }
    if (!is_float_or_half(inputTypes[0])) {
      report(std::string("input 0 must be FLOAT or HALF, got ") + trt_type_name(inputTypes[0]));
      return 1;
    }
    outputTypes[0] = inputTypes[0];  // Y has X's type
    return 0;
  }

  // IPluginV3: clones carry the attributes and the attached error recorder.
  nvinfer1::IPluginV3* clone() noexcept override {
    trace("clone");
    try {
      PluginBase* c = clone_impl();
      c->recorder_ = recorder_;
      return c;
    } catch (...) {
      report("clone failed (out of memory)", nvinfer1::ErrorCode::kINTERNAL_ERROR);
      return nullptr;
    }
  }

  // IPluginV3OneRuntime (common parts)
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override {
    trace("attachToContext");
    try {
      PluginBase* c = clone_impl();
      c->recorder_ = context != nullptr ? context->getErrorRecorder() : recorder_;
      return c;
    } catch (...) {
      report("attachToContext: clone failed (out of memory)", nvinfer1::ErrorCode::kINTERNAL_ERROR);
      return nullptr;
    }
  }
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    trace("getFieldsToSerialize");
    try {
      return serialized_.build(op_.attrs, op_.num_attrs, values_);
    } catch (...) {
      report("getFieldsToSerialize: out of memory");
      return nullptr;
    }
  }

  const AttrValues& values() const { return values_; }
  const std::string& layer() const { return layer_; }

 protected:
  // Error with the op and layer name in front, to the logger and (after attachToContext) the context's recorder.
  void report(const std::string& msg, nvinfer1::ErrorCode code = nvinfer1::ErrorCode::kINVALID_ARGUMENT) const noexcept {
    try {
      log_error(who(op_.op_type, layer_) + ": " + msg, recorder_, code);
    } catch (...) {
    }
  }
  // One trace line for a call of `method` when RRSR_TRT_TRACE is set (trt_common.h).
  void trace(const char* method) const noexcept {
    if (trace_enabled()) trace_call(op_.op_type, layer_, method);
  }
  // A copy of this plugin (same attributes); may throw.
  virtual PluginBase* clone_impl() const = 0;

  // The shared frame of configurePlugin and onShapeChange: argument checks, the input dims gathered, the op's own
  // check (returns an error message, empty when fine; it records what enqueue needs), exceptions reported.
  template <typename Desc, typename Check>
  int32_t check_and_record(const char* what, Desc const* in, int32_t nbInputs, void const* out, int32_t nbOutputs,
                           Check&& check) noexcept {
    try {
      const int32_t want_outputs = getNbOutputs();  // 1 unless the op overrides it
      if (in == nullptr || out == nullptr || nbOutputs != want_outputs) {
        report(std::string(what) + ": expected " + std::to_string(want_outputs) + " output" +
               (want_outputs == 1 ? "" : "s") + ", got " + std::to_string(nbOutputs));
        return 1;
      }
      std::vector<nvinfer1::Dims> dims(static_cast<size_t>(nbInputs));
      for (int32_t i = 0; i < nbInputs; ++i) dims[static_cast<size_t>(i)] = dims_of(in[i]);
      const std::string err = check(dims);
      if (!err.empty()) {
        report(err);
        return 1;
      }
      return 0;
    } catch (...) {
      report(std::string(what) + " failed (out of memory)", nvinfer1::ErrorCode::kINTERNAL_ERROR);
      return 1;
    }
  }
  // enqueue's return value from a launcher status; a failure is reported with the kernel's name and status.
  int32_t launch_result(int code, const char* kernel) const noexcept {
    if (code == kOk) return 0;
    report(std::string("enqueue: ") + kernel + " kernel failed: " + status_string(code) + " (" +
               std::to_string(code) + ")",
           nvinfer1::ErrorCode::kFAILED_EXECUTION);
    return 1;
  }
  static nvinfer1::Dims dims_of(nvinfer1::DynamicPluginTensorDesc const& d) { return d.desc.dims; }
  static nvinfer1::Dims dims_of(nvinfer1::PluginTensorDesc const& d) { return d.dims; }
  // getWorkspaceSize's shapes: the profile's upper bounds of each input.
  static std::vector<nvinfer1::Dims> max_dims(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs) {
    std::vector<nvinfer1::Dims> dims(static_cast<size_t>(nb_inputs));
    for (int32_t i = 0; i < nb_inputs; ++i) dims[static_cast<size_t>(i)] = in[i].max;
    return dims;
  }

  OpInfo op_;
  std::string layer_;
  AttrValues values_;
  nvinfer1::IErrorRecorder* recorder_ = nullptr;
  SerializedFields serialized_;
};

// Creator of plugin `P` (constructible as P(std::string layer, AttrValues values)) for the op described by `op`.
template <typename P>
class Creator : public nvinfer1::IPluginCreatorV3One {
 public:
  explicit Creator(const OpInfo& op) : op_(op), names_(op.attrs, op.num_attrs) {}

  nvinfer1::IPluginV3* createPlugin(nvinfer1::AsciiChar const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override {
    try {
      const std::string layer = name == nullptr ? "" : name;
      if (trace_enabled())
        trace_call(op_.op_type, layer,
                   phase == nvinfer1::TensorRTPhase::kBUILD ? "createPlugin(kBUILD)" : "createPlugin(kRUNTIME)");
      AttrValues values;
      const std::string err = parse_fields(op_.op_type, layer, op_.attrs, op_.num_attrs, fc, &values);
      if (!err.empty()) {
        log_error(err);
        return nullptr;
      }
      std::string why;
      if (!P::check_attrs(values, &why)) {
        log_error(who(op_.op_type, layer) + ": " + why);
        return nullptr;
      }
      return new P(layer, std::move(values));
    } catch (const std::bad_alloc&) {
      log_error(std::string(op_.op_type) + ": out of memory creating the plugin");
    } catch (const std::exception& e) {
      log_error(std::string(op_.op_type) + ": cannot create the plugin: " + e.what());
    } catch (...) {
      log_error(std::string(op_.op_type) + ": cannot create the plugin (unknown error)");
    }
    return nullptr;
  }
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return names_.collection(); }
  nvinfer1::AsciiChar const* getPluginName() const noexcept override { return op_.op_type; }
  nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return op_.plugin_version; }
  nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return op_.plugin_namespace; }

 private:
  OpInfo op_;
  FieldNames names_;
};

}  // namespace trt
}  // namespace rrsr
