// TensorRT IPluginV3 of RrsrModulatedDeformConv (modulated deformable convolution, = ONNX DeformConv opset 19).
// Inputs X, W, offset, [B], [mask]; output Y. Attributes (kINT32 fields): strides[2], pads[4], dilations[2], group,
// offset_group. The kernel is kernels/mdcn (forward_cuda); this file only translates TensorRT types.
#pragma once

#include <string>
#include <vector>

#include "../common/plugin_base.h"
#include "../../kernels/mdcn/launch.h"

namespace rrsr {
namespace trt {

const OpInfo& mdcn_op_info();

class MdcnPlugin final : public PluginBase {
 public:
  MdcnPlugin(std::string layer, AttrValues values);

  // Creator-time checks beyond the per-field ones (none for this op: every field is independent).
  static bool check_attrs(const AttrValues& values, std::string* why);

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
  // Custom tactics: the kernel variants (mdcn::Variant) that can differ from the default for the configured
  // channels and types, so the builder times them on the target GPU and the engine keeps the fastest. Which are
  // offered: RRSR_TRT_MDCN_TACTICS = verified (default: those mdcn::variant_verified says passed the GPU tests),
  // all (the unverified ones too), none.
  int32_t getNbTactics() noexcept override {
    trace("getNbTactics");
    return static_cast<int32_t>(tactics_.size());
  }
  int32_t getValidTactics(int32_t* tactics, int32_t nbTactics) noexcept override;
  // The attributes: layers that share them (and I/O shapes and formats, which TensorRT adds) share timings.
  char const* getTimingCacheID() noexcept override {
    trace("getTimingCacheID");
    return timing_id_.c_str();
  }

  // IPluginV3OneRuntime
  int32_t setTactic(int32_t tactic) noexcept override;
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;

 protected:
  PluginBase* clone_impl() const override { return new MdcnPlugin(*this); }

 private:
  // Which plugin input holds B and mask (-1: absent). The ONNX parser drops absent optional inputs, so with four
  // inputs the fourth is told apart by rank: B is [C_out] (rank 1), mask is rank 4.
  struct Roles {
    int b = -1, mask = -1;
  };
  static bool roles(int32_t nb_inputs, int32_t rank3, Roles* r);
  enum class TacticPolicy { kVerified, kAll, kNone };
  static TacticPolicy tactic_policy();  // RRSR_TRT_MDCN_TACTICS
  std::vector<int32_t> variants_for(nvinfer1::DynamicPluginTensorDesc const* in,
                                    nvinfer1::DynamicPluginTensorDesc const* out) const;
  // Checks the input shapes (dims of -1 are unknown and skipped) against each other and the attributes; fills
  // `out` (when not null) with Y's shape. Returns "" or a message.
  std::string check_shapes(const nvinfer1::Dims* in, int32_t nb_inputs, nvinfer1::Dims* out) const;
  void record_inputs(const std::vector<nvinfer1::Dims>& dims);
  // The launcher's Shape from X, W and Y dims and the attributes.
  mdcn::Shape kernel_shape(const nvinfer1::Dims& x, const nvinfer1::Dims& w, const nvinfer1::Dims& y) const;

  int32_t nb_inputs_ = 0, rank3_ = 0;  // recorded by configurePlugin / onShapeChange for enqueue
  int64_t stride_h_, stride_w_, pad_t_, pad_l_, pad_b_, pad_r_, dil_h_, dil_w_, group_, offset_group_;
  std::vector<int32_t> tactics_;          // offered by the last configurePlugin
  mdcn::Variant variant_ = mdcn::Variant::kDefault;  // setTactic's (0: the kernel's own choice)
  std::string timing_id_;
};

class MdcnCreator final : public Creator<MdcnPlugin> {
 public:
  MdcnCreator() : Creator<MdcnPlugin>(mdcn_op_info()) {}
};

}  // namespace trt
}  // namespace rrsr
