// Library for explicit loading (librrsr_trt_plugins_dynamic.so): trtexec --dynamicPlugins,
// IPluginRegistry::loadLibrary / Python registry.load_library, config.plugins_to_serialize. TensorRT calls
// setLoggerFinder() first, then getCreators(); these two are the only exported symbols, and nothing from the
// TensorRT library is needed.
#include <NvInferRuntime.h>

#include "common/trt_common.h"
#include "mdcn/mdcn_plugin.h"
#include "patch_match/patch_match_plugin.h"
#include "ras/ras_plugin.h"

// Our own export attribute: TENSORRTAPI is empty in some header versions/configurations, and this project builds
// with hidden visibility by default. The version map (dynamic.map) then keeps exactly these two.
#define RRSR_TRT_EXPORT __attribute__((visibility("default")))

extern "C" RRSR_TRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  rrsr::trt::set_logger_finder(finder);
}

extern "C" RRSR_TRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  static rrsr::trt::MdcnCreator mdcn;
  static rrsr::trt::PatchMatchCreator patch_match;
  static rrsr::trt::RasCreator ras;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&mdcn, &ras, &patch_match};
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}
