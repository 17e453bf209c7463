// TensorRT IPluginV3 of RrsrPatchMatch (RRSR's dense top-1 patch matching). Inputs F_in [N, C, H, W] and
// F_ref [N, C, Hr, Wr] (FLOAT or HALF, same type); outputs index (INT32) and score (FLOAT), both
// [N, H - k + 1, W - k + 1]. Attribute (kINT32 field): patch_size (k). The kernel is kernels/patch_match
// (forward_cuda, which needs patch_match::cuda_workspace_bytes of scratch); this file only translates TensorRT types.
#pragma once

#include <string>

#include "../../kernels/patch_match/launch.h"
#include "../common/plugin_base.h"

namespace rrsr {
namespace trt {

const OpInfo& patch_match_op_info();

class PatchMatchPlugin final : public PluginBase {
 public:
  PatchMatchPlugin(std::string layer, AttrValues values);

  // Creator-time checks beyond the per-field ones: patch_size is present (parse_fields checked its minimum).
  static bool check_attrs(const AttrValues& values, std::string* why);

  // IPluginV3OneBuild: two outputs (index INT32, score FLOAT) instead of PluginBase's one of X's type.
  int32_t getNbOutputs() const noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;

 protected:
  PluginBase* clone_impl() const override { return new PatchMatchPlugin(*this); }

 private:
  // Checks the input shapes against patch_size (dims of -1 are unknown and skipped); fills `s` (when not null).
  std::string check_shapes(const nvinfer1::Dims* in, int32_t nb_inputs, patch_match::Shape* s) const;

  int64_t k_ = 0;  // patch_size
};

class PatchMatchCreator final : public Creator<PatchMatchPlugin> {
 public:
  PatchMatchCreator() : Creator<PatchMatchPlugin>(patch_match_op_info()) {}
};

}  // namespace trt
}  // namespace rrsr
