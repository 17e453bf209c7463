// Helpers shared by the host-side plugin check (trt_plugin_check.cpp) and the GPU enqueue harness
// (trt_enqueue_check.cpp): a capturing logger and logger finder, an error recorder and plugin resource context,
// a stand-in IExprBuilder that evaluates constant shape expressions, tensor descriptors, PluginFieldCollection
// builders, and loading a getCreators library with dlopen. No TensorRT library is needed (headers only).
#pragma once

#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rrsr_trt_test {

using namespace nvinfer1;

// ---- logger / finder / error recorder
// Keeps every message; with `echo` set also prints warnings and errors to stderr as they come.
struct CaptureLogger : ILogger {
  std::vector<std::pair<Severity, std::string>> msgs;
  bool echo = false;
  void log(Severity s, AsciiChar const* m) noexcept override {
    msgs.emplace_back(s, m ? m : "");
    if (echo && s <= Severity::kWARNING)
      std::fprintf(stderr, "[trt %s] %s\n", s <= Severity::kERROR ? "error" : "warning", m ? m : "");
  }
  std::string last_error() const {
    for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
      if (it->first <= Severity::kERROR) return it->second;
    return "";
  }
  bool has(Severity s, const std::string& sub) const {
    for (auto& m : msgs)
      if (m.first == s && m.second.find(sub) != std::string::npos) return true;
    return false;
  }
};

struct Finder : ILoggerFinder {
  ILogger* logger;
  explicit Finder(ILogger* l) : logger(l) {}
  ILogger* findLogger() override { return logger; }
};

struct Recorder : IErrorRecorder {
  std::vector<std::pair<ErrorCode, std::string>> errs;
  int32_t getNbErrors() const noexcept override { return static_cast<int32_t>(errs.size()); }
  ErrorCode getErrorCode(int32_t i) const noexcept override { return errs[static_cast<size_t>(i)].first; }
  ErrorDesc getErrorDesc(int32_t i) const noexcept override { return errs[static_cast<size_t>(i)].second.c_str(); }
  bool hasOverflowed() const noexcept override { return false; }
  void clear() noexcept override { errs.clear(); }
  bool reportError(ErrorCode c, ErrorDesc d) noexcept override {
    errs.emplace_back(c, d ? d : "");
    return true;
  }
  RefCount incRefCount() noexcept override { return 1; }
  RefCount decRefCount() noexcept override { return 0; }
};

struct ResourceContext : IPluginResourceContext {
  Recorder* rec;
  explicit ResourceContext(Recorder* r) : rec(r) {}
  IGpuAllocator* getGpuAllocator() const noexcept override { return nullptr; }
  IErrorRecorder* getErrorRecorder() const noexcept override { return rec; }
};

// ---- a stand-in IExprBuilder that evaluates constant expressions (enough to check output-shape formulas)
struct ConstExprImpl : apiv::VDimensionExpr {
  int64_t v;
  explicit ConstExprImpl(int64_t x) : v(x) {}
  bool isConstant() const override { return true; }
  int64_t getConstantValue() const override { return v; }
  bool isSizeTensor() const override { return false; }
};
struct ConstExpr : IDimensionExpr {
  ConstExprImpl impl;
  explicit ConstExpr(int64_t x) : impl(x) { mImpl = &impl; }
};
struct BuilderImpl : apiv::VExprBuilder {
  std::vector<std::unique_ptr<ConstExpr>> pool;
  IDimensionExpr const* constant(int64_t v) override {
    pool.emplace_back(new ConstExpr(v));
    return pool.back().get();
  }
  IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override {
    const int64_t x = a.getConstantValue(), y = b.getConstantValue();
    int64_t r = 0;
    switch (op) {
      case DimensionOperation::kSUM: r = x + y; break;
      case DimensionOperation::kPROD: r = x * y; break;
      case DimensionOperation::kMAX: r = x > y ? x : y; break;
      case DimensionOperation::kMIN: r = x < y ? x : y; break;
      case DimensionOperation::kSUB: r = x - y; break;
      case DimensionOperation::kEQUAL: r = x == y; break;
      case DimensionOperation::kLESS: r = x < y; break;
      case DimensionOperation::kFLOOR_DIV: r = x / y - ((x % y != 0) && ((x < 0) != (y < 0))); break;
      case DimensionOperation::kCEIL_DIV: r = x / y + ((x % y != 0) && ((x < 0) == (y < 0))); break;
      default: return nullptr;
    }
    return constant(r);
  }
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
    return nullptr;
  }
};
struct Builder : IExprBuilder {
  BuilderImpl impl;
  Builder() { mImpl = &impl; }
};

// ---- helpers
inline Dims dims(std::initializer_list<int64_t> d) {
  Dims r{};
  r.nbDims = static_cast<int32_t>(d.size());
  int i = 0;
  for (int64_t x : d) r.d[i++] = x;
  return r;
}

inline DynamicPluginTensorDesc dyn(const Dims& d, DataType t, TensorFormat f = TensorFormat::kLINEAR) {
  DynamicPluginTensorDesc x{};
  x.desc.dims = d;
  x.desc.type = t;
  x.desc.format = f;
  x.desc.scale = 1.0f;
  x.min = d;
  x.opt = d;
  x.max = d;
  return x;
}

struct Field {
  std::string name;
  PluginFieldType type;
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  std::vector<float> f32;
  int32_t length = -1;  // -1: from the data
  bool null_data = false;
};

// Owns the storage of a PluginFieldCollection built from Fields.
struct Fc {
  std::vector<Field> src;
  std::vector<PluginField> pf;
  PluginFieldCollection fc{};
  explicit Fc(std::vector<Field> f) : src(std::move(f)) {
    for (auto& x : src) {
      const void* data = x.type == PluginFieldType::kINT64   ? static_cast<const void*>(x.i64.data())
                         : x.type == PluginFieldType::kFLOAT32 ? static_cast<const void*>(x.f32.data())
                                                               : static_cast<const void*>(x.i32.data());
      const int32_t n = x.length >= 0 ? x.length
                        : x.type == PluginFieldType::kINT64   ? static_cast<int32_t>(x.i64.size())
                        : x.type == PluginFieldType::kFLOAT32 ? static_cast<int32_t>(x.f32.size())
                                                              : static_cast<int32_t>(x.i32.size());
      pf.emplace_back(x.name.c_str(), x.null_data ? nullptr : data, x.type, n);
    }
    fc.nbFields = static_cast<int32_t>(pf.size());
    fc.fields = pf.empty() ? nullptr : pf.data();
  }
};
inline Field i32(const std::string& n, std::vector<int32_t> v) { return Field{n, PluginFieldType::kINT32, std::move(v), {}, {}}; }

// name -> int values of a collection (kINT32 only; anything else is reported as a failure)
inline std::vector<std::pair<std::string, std::vector<int64_t>>> read_fc(const PluginFieldCollection* fc, bool* ok) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> r;
  *ok = fc != nullptr;
  if (!fc) return r;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    const PluginField& f = fc->fields[i];
    if (f.type != PluginFieldType::kINT32 || f.data == nullptr) *ok = false;
    std::vector<int64_t> v;
    for (int32_t k = 0; f.data && k < f.length; ++k) v.push_back(static_cast<const int32_t*>(f.data)[k]);
    r.emplace_back(f.name ? f.name : "", v);
  }
  return r;
}

inline std::string fc_str(const std::vector<std::pair<std::string, std::vector<int64_t>>>& v) {
  std::string s;
  for (auto& p : v) {
    s += p.first + "=[";
    for (size_t i = 0; i < p.second.size(); ++i) s += (i ? "," : "") + std::to_string(p.second[i]);
    s += "] ";
  }
  return s;
}

template <typename T>
T* cap(IPluginV3* p, PluginCapabilityType t) {
  return static_cast<T*>(p->getCapabilityInterface(t));
}

inline void destroy(IPluginV3* p) { delete p; }

// ---- the plugin library: dlopen, hand it a logger finder, take its creators (what
// IPluginRegistry::loadLibrary does for a getCreators library).
struct PluginLibrary {
  void* handle = nullptr;
  IPluginCreatorInterface* const* creators = nullptr;
  int32_t nb_creators = 0;
  std::string error;  // why open() failed

  bool open(const char* path, ILoggerFinder* finder) {
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* e = dlerror();
      error = std::string("dlopen failed: ") + (e ? e : "unknown error");
      return false;
    }
    using SetFinder = void (*)(ILoggerFinder*);
    using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
    auto set_finder = reinterpret_cast<SetFinder>(dlsym(handle, "setLoggerFinder"));
    auto get_creators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
    if (!set_finder || !get_creators) {
      error = "library lacks setLoggerFinder/getCreators";
      return false;
    }
    set_finder(finder);
    creators = get_creators(nb_creators);
    if (creators == nullptr) nb_creators = 0;
    return true;
  }
  // The IPluginCreatorV3One named `name`, or nullptr.
  IPluginCreatorV3One* find_v3one(const std::string& name) const {
    for (int32_t i = 0; i < nb_creators; ++i) {
      if (creators[i] == nullptr) continue;
      if (std::string(creators[i]->getInterfaceInfo().kind) != "PLUGIN CREATOR_V3ONE") continue;
      auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
      if (name == c->getPluginName()) return c;
    }
    return nullptr;
  }
};

}  // namespace rrsr_trt_test
