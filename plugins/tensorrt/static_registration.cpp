// Self-registering library (librrsr_trt_plugins.so): loading it registers every creator (mdcn, ras, patch_match)
// with TensorRT's plugin registry (static registrars, as REGISTER_TENSORRT_PLUGIN does). For trtexec --staticPlugins,
// Polygraphy --plugins and Python ctypes.CDLL(path) once TensorRT itself is loaded. It exports no symbols.
//
// The registry comes from getPluginRegistry(), a function of the TensorRT library. This library is not linked
// against libnvinfer (no build-time dependency, and it must also work with the lean/dispatch runtimes), so it looks
// the function up in the TensorRT library already in the process: first the runtime libraries of the TensorRT major
// these headers belong to (found even when they were loaded RTLD_LOCAL, as Python's tensorrt packages do) and, with
// TensorRT 11 headers, TensorRT for RTX 1.x (libtensorrt_rtx.so.1, whose plugin interfaces are TensorRT 11's), then
// any global definition (trtexec, a statically linked application). getLogger() is found the same way.
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/trt_common.h"
#include "mdcn/mdcn_plugin.h"
#include "patch_match/patch_match_plugin.h"
#include "ras/ras_plugin.h"

namespace {

// TensorRT for RTX 1.x implements TensorRT 11's plugin interfaces (IPluginV3 with the v_1_0 capabilities,
// ILoggerFinder 1.0), so a library built against 11.x headers registers there too; no other pairing is known.
constexpr bool kHeadersMatchRtx = NV_TENSORRT_MAJOR == 11;

void* find_tensorrt_symbol(const char* name) {
  const std::string major = std::to_string(NV_TENSORRT_MAJOR);
  std::vector<std::string> sonames;
  for (const char* stem : {"libnvinfer.so.", "libnvinfer_lean.so.", "libnvinfer_dispatch.so."})
    sonames.push_back(stem + major);
  if (kHeadersMatchRtx) sonames.emplace_back("libtensorrt_rtx.so.1");
  for (const std::string& soname : sonames) {
    // RTLD_NOLOAD: only a library that is already loaded; the handle keeps it loaded for our lifetime.
    if (void* h = dlopen(soname.c_str(), RTLD_LAZY | RTLD_NOLOAD)) {
      if (void* sym = dlsym(h, name)) return sym;
      dlclose(h);
    }
  }
  return dlsym(RTLD_DEFAULT, name);
}

using RegistryFn = nvinfer1::IPluginRegistry* (*)();
using LoggerFn = nvinfer1::ILogger* (*)();

nvinfer1::ILogger* tensorrt_logger() {
  static const LoggerFn fn = reinterpret_cast<LoggerFn>(find_tensorrt_symbol("getLogger"));
  return fn != nullptr ? fn() : nullptr;
}

// Runs before the registrars below (same translation unit, declaration order), so a creator's first message
// already reaches TensorRT's logger.
struct InstallLoggerSource {
  InstallLoggerSource() { rrsr::trt::set_logger_source(&tensorrt_logger); }
} const g_install_logger_source;

// Our own registrar instead of REGISTER_TENSORRT_PLUGIN: TensorRT's dereferences the registry unchecked, which would
// crash a process that loads this library before TensorRT. Here that case prints the reason and registers nothing.
template <typename Creator>
struct Registrar {
  Registrar() {
    static const RegistryFn fn = reinterpret_cast<RegistryFn>(find_tensorrt_symbol("getPluginRegistry"));
    nvinfer1::IPluginRegistry* registry = fn != nullptr ? fn() : nullptr;
    if (registry == nullptr) {
      std::fprintf(stderr,
                   "[rrsr_trt_plugins] error: no TensorRT %d.x library (libnvinfer / libnvinfer_lean / "
                   "libnvinfer_dispatch%s) is loaded in this process, so %s was not registered; load TensorRT before "
                   "librrsr_trt_plugins.so, or use librrsr_trt_plugins_dynamic.so with the registry's loadLibrary\n",
                   NV_TENSORRT_MAJOR, kHeadersMatchRtx ? ", or TensorRT-RTX 1.x libtensorrt_rtx" : "",
                   instance.getPluginName());
      return;
    }
    registry->registerCreator(instance, "");
  }
  Creator instance{};
};

}  // namespace

Registrar<rrsr::trt::MdcnCreator> const g_mdcn_registrar;
Registrar<rrsr::trt::PatchMatchCreator> const g_patch_match_registrar;
Registrar<rrsr::trt::RasCreator> const g_ras_registrar;
