// TensorRT IPluginV3 of RrsrRefAwareSelection (RRSR's reference-aware selection block). Inputs X, R, W, B,
// routing_weight, routing_bias, se1_weight, se1_bias, se2_weight, se2_bias, [valid_size]; output Y. No attributes
// beyond the registry keys, so the creator lists no fields. The kernel is kernels/ras (forward_cuda, which needs
// ras::cuda_workspace_bytes of scratch); this file only translates TensorRT types.
#pragma once

#include <string>

#include "../../kernels/ras/launch.h"
#include "../common/plugin_base.h"

namespace rrsr {
namespace trt {

const OpInfo& ras_op_info();

class RasPlugin final : public PluginBase {
 public:
  RasPlugin(std::string layer, AttrValues values);

  static bool check_attrs(const AttrValues& /*values*/, std::string* /*why*/) { return true; }

  // IPluginV3OneBuild
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
  PluginBase* clone_impl() const override { return new RasPlugin(*this); }

 private:
  // Checks the input shapes (dims of -1 are unknown and skipped); fills `s` (when not null) from them.
  static std::string check_shapes(const nvinfer1::Dims* in, int32_t nb_inputs, ras::Shape* s);

  int32_t nb_inputs_ = 0;  // 10 or 11 (with valid_size); recorded by configurePlugin / onShapeChange for enqueue
};

class RasCreator final : public Creator<RasPlugin> {
 public:
  RasCreator() : Creator<RasPlugin>(ras_op_info()) {}
};

}  // namespace trt
}  // namespace rrsr
