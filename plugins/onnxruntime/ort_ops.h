// The ORT custom ops of the rrsr domain: one kernel class per op, and one generic OrtCustomOp that registers a
// kernel for a concrete (execution provider, input element types) combination.
//
// Why one registration per type combination: ORT infers a custom op's output type from the kernel whose input type
// constraints match the node. With "any type" inputs it insists on exactly one such input, and these ops have
// several (X/W/B share T, offset/mask share T1, ...). So every combination of the spec's type parameters becomes
// its own registration with fixed types; ORT then picks the matching one, and a node whose types match none (e.g.
// FP16 X with FP32 W) is rejected by ORT at session creation, naming the op.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "ort_util.h"

namespace rrsr {
namespace ort {

// Runs a kernel's Compute so that no exception reaches ORT (allocation failures become an error status).
template <class F>
OrtStatus* guard_compute(const OrtApi& api, const NodeId& node, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    try {
      return make_error(api, node, std::string("unexpected error: ") + e.what(), ORT_FAIL);
    } catch (...) {
    }
  } catch (...) {
  }
  return api.CreateStatus(ORT_FAIL, "rrsr custom op: unexpected error");
}

class MdcnKernel {
 public:
  static OrtStatus* Create(const OrtApi& api, const OrtKernelInfo* info, Device device, void** out);
  OrtStatus* ComputeV2(OrtKernelContext* ctx) noexcept { return guard_compute(api_, node_, [&] { return Compute(ctx); }); }

 private:
  OrtStatus* Compute(OrtKernelContext* ctx);
  MdcnKernel(const OrtApi& api, Device device);
  const OrtApi& api_;
  Device device_;
  NodeId node_;
  int64_t stride_h_ = 1, stride_w_ = 1, dil_h_ = 1, dil_w_ = 1;
  int64_t pads_[4] = {0, 0, 0, 0};  // top, left, bottom, right
  int64_t group_ = 1, offset_group_ = 1;
};

class PatchMatchKernel {
 public:
  static OrtStatus* Create(const OrtApi& api, const OrtKernelInfo* info, Device device, void** out);
  OrtStatus* ComputeV2(OrtKernelContext* ctx) noexcept { return guard_compute(api_, node_, [&] { return Compute(ctx); }); }

 private:
  OrtStatus* Compute(OrtKernelContext* ctx);
  PatchMatchKernel(const OrtApi& api, Device device);
  const OrtApi& api_;
  Device device_;
  NodeId node_;
  int64_t patch_size_ = 3;
};

class RasKernel {
 public:
  static OrtStatus* Create(const OrtApi& api, const OrtKernelInfo* info, Device device, void** out);
  OrtStatus* ComputeV2(OrtKernelContext* ctx) noexcept { return guard_compute(api_, node_, [&] { return Compute(ctx); }); }

 private:
  OrtStatus* Compute(OrtKernelContext* ctx);
  RasKernel(const OrtApi& api, Device device);
  const OrtApi& api_;
  Device device_;
  NodeId node_;
};

// One registration of op `Kernel` for one device and one set of input/output element types. The names, input
// count, optionality and since-version come from the generated spec header.
template <class Kernel>
struct RrsrCustomOp : Ort::CustomOpBase<RrsrCustomOp<Kernel>, Kernel, /*WithStatus=*/true> {
  RrsrCustomOp(const char* op_type, int since_version, const spec::IoSpec* inputs, size_t num_inputs, Device device,
               std::vector<ONNXTensorElementDataType> input_types,
               std::vector<ONNXTensorElementDataType> output_types)
      : op_type_(op_type),
        inputs_(inputs),
        num_inputs_(num_inputs),
        device_(device),
        input_types_(std::move(input_types)),
        output_types_(std::move(output_types)) {
    this->start_ver_ = since_version;
  }

  OrtStatus* CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
    try {
      return Kernel::Create(api, info, device_, kernel);
    } catch (...) {  // nothing may escape into ORT's C callbacks
      return api.CreateStatus(ORT_FAIL, (std::string(op_type_) + ": unexpected error creating the kernel").c_str());
    }
  }
  const char* GetName() const { return op_type_; }
  const char* GetExecutionProviderType() const { return provider_name(device_); }
  size_t GetInputTypeCount() const { return num_inputs_; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return input_types_[i]; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const {
    return inputs_[i].optional ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
  }
  size_t GetOutputTypeCount() const { return output_types_.size(); }
  ONNXTensorElementDataType GetOutputType(size_t i) const { return output_types_[i]; }

  Device device() const { return device_; }
  const std::vector<ONNXTensorElementDataType>& input_types() const { return input_types_; }

 private:
  const char* op_type_;
  const spec::IoSpec* inputs_;
  size_t num_inputs_;
  Device device_;
  std::vector<ONNXTensorElementDataType> input_types_;
  std::vector<ONNXTensorElementDataType> output_types_;
};

}  // namespace ort
}  // namespace rrsr
