#include "trt_common.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace rrsr {
namespace trt {

namespace {
std::atomic<nvinfer1::ILoggerFinder*> g_finder{nullptr};
std::atomic<LoggerSource> g_source{nullptr};

const char* severity_name(nvinfer1::ILogger::Severity s) {
  switch (s) {
    case nvinfer1::ILogger::Severity::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case nvinfer1::ILogger::Severity::kERROR: return "ERROR";
    case nvinfer1::ILogger::Severity::kWARNING: return "WARNING";
    case nvinfer1::ILogger::Severity::kINFO: return "INFO";
    case nvinfer1::ILogger::Severity::kVERBOSE: return "VERBOSE";
  }
  return "?";
}
}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_finder.store(finder); }
void set_logger_source(LoggerSource source) noexcept { g_source.store(source); }

nvinfer1::ILogger* current_logger() noexcept {
  try {
    if (nvinfer1::ILoggerFinder* f = g_finder.load()) {
      if (nvinfer1::ILogger* l = f->findLogger()) return l;
    }
    if (LoggerSource s = g_source.load()) return s();
  } catch (...) {
  }
  return nullptr;
}

void log(nvinfer1::ILogger::Severity severity, const std::string& msg, nvinfer1::IErrorRecorder* recorder,
         nvinfer1::ErrorCode code) noexcept {
  try {
    const bool is_error = severity == nvinfer1::ILogger::Severity::kERROR ||
                          severity == nvinfer1::ILogger::Severity::kINTERNAL_ERROR;
    if (recorder != nullptr && is_error) recorder->reportError(code, msg.c_str());
    if (nvinfer1::ILogger* l = current_logger()) {
      l->log(severity, msg.c_str());
    } else if (severity <= nvinfer1::ILogger::Severity::kWARNING) {
      std::fprintf(stderr, "[rrsr_trt_plugins] %s: %s\n", severity_name(severity), msg.c_str());
    }
  } catch (...) {
  }
}

bool trace_enabled() noexcept {
  static const bool on = [] {
    const char* v = std::getenv("RRSR_TRT_TRACE");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  return on;
}

void trace_call(const char* op_type, const std::string& layer, const char* method) noexcept {
  try {
    log(nvinfer1::ILogger::Severity::kINFO, "rrsr-trace: " + who(op_type, layer) + ": " + method);
  } catch (...) {
  }
}

std::string who(const char* op_type, const std::string& layer) {
  return layer.empty() ? std::string(op_type) : std::string(op_type) + " (layer '" + layer + "')";
}

// ---- fields

static bool is_int_attr(const spec::AttrSpec& a) {
  return a.type == spec::AttrType::kInt || a.type == spec::AttrType::kInts;
}

static int32_t attr_length(const spec::AttrSpec& a) {
  return a.type == spec::AttrType::kInt ? 1 : (a.length >= 0 ? a.length : a.num_int_defaults);
}

FieldNames::FieldNames(const spec::AttrSpec* attrs, int num_attrs) {
  for (int i = 0; i < num_attrs; ++i) {
    if (!is_int_attr(attrs[i])) continue;
    fields_.emplace_back(attrs[i].name, nullptr, nvinfer1::PluginFieldType::kINT32, attr_length(attrs[i]));
  }
  fc_.nbFields = static_cast<int32_t>(fields_.size());
  fc_.fields = fields_.empty() ? nullptr : fields_.data();
}

static const char* field_type_name(nvinfer1::PluginFieldType t) {
  switch (t) {
    case nvinfer1::PluginFieldType::kFLOAT16: return "kFLOAT16";
    case nvinfer1::PluginFieldType::kFLOAT32: return "kFLOAT32";
    case nvinfer1::PluginFieldType::kFLOAT64: return "kFLOAT64";
    case nvinfer1::PluginFieldType::kINT8: return "kINT8";
    case nvinfer1::PluginFieldType::kINT16: return "kINT16";
    case nvinfer1::PluginFieldType::kINT32: return "kINT32";
    case nvinfer1::PluginFieldType::kCHAR: return "kCHAR";
    case nvinfer1::PluginFieldType::kDIMS: return "kDIMS";
    case nvinfer1::PluginFieldType::kUNKNOWN: return "kUNKNOWN";
    case nvinfer1::PluginFieldType::kINT64: return "kINT64";
    default: return "another type";
  }
}

std::string parse_fields(const char* op_type, const std::string& layer, const spec::AttrSpec* attrs, int num_attrs,
                         const nvinfer1::PluginFieldCollection* fc, AttrValues* out) {
  out->v.assign(static_cast<size_t>(num_attrs), {});
  std::vector<bool> seen(static_cast<size_t>(num_attrs), false);
  const std::string prefix = who(op_type, layer) + ": ";
  if (fc != nullptr && fc->nbFields > 0 && fc->fields == nullptr)
    return prefix + "the field collection has " + std::to_string(fc->nbFields) + " fields but no field array";
  const int32_t nb = fc == nullptr ? 0 : fc->nbFields;
  for (int32_t f = 0; f < nb; ++f) {
    const nvinfer1::PluginField& pf = fc->fields[f];
    if (pf.name == nullptr) return prefix + "field " + std::to_string(f) + " has no name";
    const std::string name(pf.name);
    int idx = -1;
    for (int i = 0; i < num_attrs; ++i)
      if (name == attrs[i].name) idx = i;
    if (idx < 0 || !is_int_attr(attrs[idx])) {
      // plugin_version / plugin_namespace are registry keys, not fields; anything else is unknown.
      if (idx < 0)
        log(nvinfer1::ILogger::Severity::kWARNING, prefix + "ignoring unknown field '" + name + "'");
      continue;
    }
    const spec::AttrSpec& a = attrs[idx];
    const std::string fpre = prefix + "field '" + name + "'";
    if (seen[static_cast<size_t>(idx)]) return fpre + " is given more than once";
    seen[static_cast<size_t>(idx)] = true;
    if (pf.type != nvinfer1::PluginFieldType::kINT32 && pf.type != nvinfer1::PluginFieldType::kINT64)
      return fpre + " must be of type kINT32 (ONNX " + (a.type == spec::AttrType::kInt ? "INT" : "INTS") +
             "), got " + field_type_name(pf.type);
    const int32_t want = attr_length(a);
    if (pf.length != want)
      return fpre + " must have " + std::to_string(want) + " value" + (want == 1 ? "" : "s") + ", got " +
             std::to_string(pf.length);
    if (pf.data == nullptr) return fpre + " has no data";
    std::vector<int64_t>& v = out->v[static_cast<size_t>(idx)];
    v.resize(static_cast<size_t>(want));
    for (int32_t k = 0; k < want; ++k)
      v[static_cast<size_t>(k)] = pf.type == nvinfer1::PluginFieldType::kINT32
                                      ? static_cast<const int32_t*>(pf.data)[k]
                                      : static_cast<const int64_t*>(pf.data)[k];
    for (int64_t x : v) {
      if ((a.has_min && x < a.min_value) || x > std::numeric_limits<int32_t>::max() ||
          x < std::numeric_limits<int32_t>::min()) {
        std::ostringstream os;
        os << fpre << " values must be ";
        if (a.has_min) os << ">= " << a.min_value << " and ";
        os << "fit in int32, got [";
        for (size_t k = 0; k < v.size(); ++k) os << (k ? ", " : "") << v[k];
        os << "]";
        return os.str();
      }
    }
  }
  for (int i = 0; i < num_attrs; ++i)
    if (!seen[static_cast<size_t>(i)] && is_int_attr(attrs[i]))
      out->v[static_cast<size_t>(i)].assign(attrs[i].int_defaults, attrs[i].int_defaults + attrs[i].num_int_defaults);
  return "";
}

const nvinfer1::PluginFieldCollection* SerializedFields::build(const spec::AttrSpec* attrs, int num_attrs,
                                                               const AttrValues& values) {
  data_.clear();
  fields_.clear();
  data_.reserve(static_cast<size_t>(num_attrs));
  for (int i = 0; i < num_attrs; ++i) {
    if (!is_int_attr(attrs[i])) continue;
    const std::vector<int64_t>& v = values.v[static_cast<size_t>(i)];
    data_.emplace_back(v.begin(), v.end());  // validated to fit in int32 at creation
  }
  size_t k = 0;
  for (int i = 0; i < num_attrs; ++i) {
    if (!is_int_attr(attrs[i])) continue;
    fields_.emplace_back(attrs[i].name, data_[k].data(), nvinfer1::PluginFieldType::kINT32,
                         static_cast<int32_t>(data_[k].size()));
    ++k;
  }
  fc_.nbFields = static_cast<int32_t>(fields_.size());
  fc_.fields = fields_.empty() ? nullptr : fields_.data();
  return &fc_;
}

// ---- types

bool is_float_or_half(nvinfer1::DataType t) noexcept {
  return t == nvinfer1::DataType::kFLOAT || t == nvinfer1::DataType::kHALF;
}

bool to_dtype(nvinfer1::DataType t, DType* out) noexcept {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: *out = DType::kFloat32; return true;
    case nvinfer1::DataType::kHALF: *out = DType::kFloat16; return true;
    case nvinfer1::DataType::kINT32: *out = DType::kInt32; return true;
    case nvinfer1::DataType::kINT64: *out = DType::kInt64; return true;
    default: return false;
  }
}

const char* trt_type_name(nvinfer1::DataType t) noexcept {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return "FLOAT";
    case nvinfer1::DataType::kHALF: return "HALF";
    case nvinfer1::DataType::kINT32: return "INT32";
    case nvinfer1::DataType::kINT64: return "INT64";
    case nvinfer1::DataType::kINT8: return "INT8";
    case nvinfer1::DataType::kBOOL: return "BOOL";
    case nvinfer1::DataType::kUINT8: return "UINT8";
    case nvinfer1::DataType::kBF16: return "BF16";
    default: return "another type";
  }
}

std::string dims_str(const nvinfer1::Dims& d) {
  std::ostringstream os;
  os << "[";
  for (int32_t i = 0; i < d.nbDims; ++i) os << (i ? ", " : "") << d.d[i];
  os << "]";
  return os.str();
}

}  // namespace trt
}  // namespace rrsr
