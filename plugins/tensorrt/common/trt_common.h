// Shared helpers of the TensorRT plugins (IPluginV3, TensorRT 10.3 API subset; also builds on 11.x headers):
// error reporting through the TensorRT logger and the context's error recorder, spec-driven plugin-field
// validation and serialisation, dtype translation. Nothing here throws; callers catch everything at the API
// boundary (every TensorRT entry point is noexcept).
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../../kernels/common/launch_common.h"
#include "rrsr_op_spec.h"

namespace rrsr {
namespace trt {

// ---- logging
// Where messages go: the logger of the ILoggerFinder given to setLoggerFinder() (dynamic library), else the logger
// source installed by the static library (TensorRT's getLogger()), else stderr.
using LoggerSource = nvinfer1::ILogger* (*)();
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;
void set_logger_source(LoggerSource source) noexcept;
nvinfer1::ILogger* current_logger() noexcept;

// Logs `msg` with `severity`; when `recorder` is given and severity is an error, also reports it there.
void log(nvinfer1::ILogger::Severity severity, const std::string& msg,
         nvinfer1::IErrorRecorder* recorder = nullptr,
         nvinfer1::ErrorCode code = nvinfer1::ErrorCode::kINVALID_ARGUMENT) noexcept;
inline void log_error(const std::string& msg, nvinfer1::IErrorRecorder* recorder = nullptr,
                      nvinfer1::ErrorCode code = nvinfer1::ErrorCode::kINVALID_ARGUMENT) noexcept {
  log(nvinfer1::ILogger::Severity::kERROR, msg, recorder, code);
}

// Method trace, for telling which plugin methods a TensorRT build or run called: with RRSR_TRT_TRACE set (to
// anything but "" or "0", read once) every plugin API call logs one kINFO line
// "rrsr-trace: <op> (layer '<name>'): <method>" (rrsr-build-engine --trace-plugins counts them). Off, a call costs
// one test of a cached flag.
bool trace_enabled() noexcept;
void trace_call(const char* op_type, const std::string& layer, const char* method) noexcept;

// "RrsrModulatedDeformConv (layer 'mdcn_0')" or just the op type when the layer has no name.
std::string who(const char* op_type, const std::string& layer);

// ---- plugin fields
// The creator's advertised fields: every INT / INTS attribute of the spec as kINT32 with its length (string
// attributes are TensorRT registry keys, plugin_version / plugin_namespace, not fields).
class FieldNames {
 public:
  FieldNames(const spec::AttrSpec* attrs, int num_attrs);
  const nvinfer1::PluginFieldCollection* collection() const noexcept { return &fc_; }

 private:
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection fc_{};
};

// Values of the INT / INTS attributes, indexed like the spec's kAttrs (string attributes stay empty).
struct AttrValues {
  std::vector<std::vector<int64_t>> v;
};

// Reads a PluginFieldCollection against the spec: every field named like an INT / INTS attribute must be kINT32
// (kINT64 is accepted too), have the spec's length (1 for INT) and non-null data, and every value must be >= the
// spec minimum and fit in int32. Absent attributes take the spec default. A repeated field is an error; fields of
// unknown names are ignored with a warning. Returns "" on success, else a message naming the op and field.
std::string parse_fields(const char* op_type, const std::string& layer, const spec::AttrSpec* attrs, int num_attrs,
                         const nvinfer1::PluginFieldCollection* fc, AttrValues* out);

// The fields to serialise (kINT32, spec order); rebuilt from `values`, stays valid until the next call.
class SerializedFields {
 public:
  const nvinfer1::PluginFieldCollection* build(const spec::AttrSpec* attrs, int num_attrs, const AttrValues& values);

 private:
  std::vector<std::vector<int32_t>> data_;
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection fc_{};
};

// ---- types
bool is_float_or_half(nvinfer1::DataType t) noexcept;
bool to_dtype(nvinfer1::DataType t, DType* out) noexcept;
const char* trt_type_name(nvinfer1::DataType t) noexcept;
std::string dims_str(const nvinfer1::Dims& d);

}  // namespace trt
}  // namespace rrsr
