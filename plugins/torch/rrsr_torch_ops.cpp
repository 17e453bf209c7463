// PyTorch host of the RRSR CUDA kernels: validates torch tensors, translates them into the launcher boundary
// (plugins/kernels/*/launch.h: plain pointers, POD Shape, DType, void* stream) and launches on the current CUDA
// stream. Workspace comes from torch's caching allocator. Compiled by plugins/torch/__init__.py:build().
//
// No iostreams and no TORCH_CHECK here: each entry point returns (outputs, error message) and the Python wrapper
// (plugins/torch/__init__.py) raises the RuntimeError; messages are built with std::to_string. On the GPU image the
// extension compiler links libstdc++ statically into the module, and any std::ostringstream in it (TORCH_CHECK's
// message formatting included) crashed the process, while plain std::string and exceptions worked.
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "mdcn/launch.h"
#include "patch_match/launch.h"
#include "ras/launch.h"

namespace {

using at::Tensor;
using Result = std::tuple<std::vector<Tensor>, std::string>;  // outputs, or an error message

// Stream-free text of the values messages mention.
std::string text(const char* v) { return v; }
std::string text(const std::string& v) { return v; }
std::string text(int v) { return std::to_string(v); }
std::string text(long v) { return std::to_string(v); }
std::string text(long long v) { return std::to_string(v); }
std::string text(unsigned long v) { return std::to_string(v); }
std::string text(c10::ScalarType v) { return c10::toString(v); }
std::string text(const c10::Device& d) {
  return d.is_cuda() ? "cuda:" + std::to_string(static_cast<int>(d.index())) : (d.is_cpu() ? "cpu" : "non-CUDA device");
}
std::string text(at::IntArrayRef v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

template <class... A>
std::string cat(const A&... a) {
  std::string out;
  ((out += text(a)), ...);
  return out;
}

// A launcher's device scratch from torch's caching allocator, on `like`'s device (at least 1 byte, so data_ptr is
// never null).
Tensor scratch(size_t bytes, const Tensor& like) {
  return at::empty({static_cast<int64_t>(bytes > 0 ? bytes : 1)}, like.options().dtype(at::kByte));
}

Result fail(std::string msg) { return Result(std::vector<Tensor>(), std::move(msg)); }

// Each check returns "" or the message naming the op, argument and problem.
std::string check_tensor(const Tensor& t, const Tensor& x, const char* op, const char* name) {
  if (!t.is_cuda()) return cat(op, ": '", name, "' must be a CUDA tensor, got device ", t.device());
  if (t.device() != x.device()) return cat(op, ": '", name, "' is on ", t.device(), " but the input is on ", x.device());
  if (!t.is_contiguous()) return cat(op, ": '", name, "' must be contiguous (NCHW), got strides ", t.strides());
  return {};
}

std::string check_float(const Tensor& t, const char* op, const char* name) {
  if (t.scalar_type() == at::kFloat || t.scalar_type() == at::kHalf) return {};
  return cat(op, ": '", name, "' must be float32 or float16, got ", t.scalar_type());
}

std::string check_shape(const Tensor& t, std::vector<int64_t> want, const char* op, const char* name) {
  if (t.sizes().vec() == want) return {};
  return cat(op, ": '", name, "' must have shape ", at::IntArrayRef(want), ", got ", t.sizes());
}

std::string status_message(int s, const char* op) {
  if (s == rrsr::kOk) return {};
  return cat(op, ": launcher failed: ", rrsr::status_string(s), " (", s, ")",
             s > 0 ? std::string(" ") + cudaGetErrorString(static_cast<cudaError_t>(s)) : std::string());
}

// Returns early from the calling entry point with the first non-empty message.
#define RRSR_TRY(expr)                      \
  do {                                      \
    std::string rrsr_msg_ = (expr);         \
    if (!rrsr_msg_.empty()) return fail(std::move(rrsr_msg_)); \
  } while (0)
#define RRSR_REQUIRE(cond, ...) \
  do {                          \
    if (!(cond)) return fail(cat(__VA_ARGS__)); \
  } while (0)

rrsr::DType to_dtype(const Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf: return rrsr::DType::kFloat16;
    case at::kInt: return rrsr::DType::kInt32;
    case at::kLong: return rrsr::DType::kInt64;
    default: return rrsr::DType::kFloat32;  // callers have checked the dtype
  }
}

void* current_stream() { return static_cast<void*>(c10::cuda::getCurrentCUDAStream().stream()); }

// 0 = auto, 1 = simt, 2 = tensor core, 3 = FP32 diagonal, 4 = tensor core with 64 x 128 tiles (3 and 4: PatchMatch
// only; rrsr::Algo); benchmarks and tests pick one explicitly.
std::string check_algo(int64_t a, const char* op, bool patch_match = false) {
  if (a >= 0 && a <= (patch_match ? 4 : 2)) return {};
  return cat(op, ": algo must be 0 (auto), 1 (simt), 2 (tensor core)",
             patch_match ? ", 3 (FP32 diagonal) or 4 (tensor core, wide tiles)" : "", ", got ", a);
}

Result mdcn_forward(const Tensor& x, const Tensor& weight, const Tensor& offset, const std::optional<Tensor>& bias,
                    const std::optional<Tensor>& mask, std::vector<int64_t> strides, std::vector<int64_t> pads,
                    std::vector<int64_t> dilations, int64_t group, int64_t offset_group, int64_t algo,
                    std::vector<int64_t> tile, int64_t variant) {
  const char* op = "rrsr_torch.mdcn_forward";
  RRSR_TRY(check_algo(algo, op));
  RRSR_REQUIRE(tile.empty() || (tile.size() >= 3 && tile.size() <= 7), op,
               ": tile must be [] or [bm, bn, splits, regb, stages, min_blocks, band] (the last four optional; 0 = "
               "the kernel's choice; regb 1 = the register-B variant; stages 3 = the three-stage K pipeline; "
               "min_blocks 2 = registers capped for two blocks per SM (the two-stage 256x64 tile); band = the "
               "column slab's pixels per band, a multiple of 256)");
  rrsr::mdcn::TileChoice choice;
  if (tile.size() >= 3) {
    choice.bm = static_cast<int>(tile[0]);
    choice.bn = static_cast<int>(tile[1]);
    choice.splits = static_cast<int>(tile[2]);
    choice.regb = tile.size() >= 4 ? static_cast<int>(tile[3]) : 0;
    choice.stages = tile.size() >= 5 ? static_cast<int>(tile[4]) : 0;
    choice.min_blocks = tile.size() >= 6 ? static_cast<int>(tile[5]) : 0;
    choice.band = tile.size() == 7 ? tile[6] : 0;
  }
  RRSR_REQUIRE(variant >= 0 && variant <= static_cast<int64_t>(rrsr::mdcn::Variant::kColumnSlab), op,
               ": variant must be 0 (default), 1 (three-stage), 2 (register-B), 3 (two blocks per SM) or 4 (column "
               "slab), got ", variant);
  choice.variant = static_cast<rrsr::mdcn::Variant>(variant);
  const bool tuned = !tile.empty() || variant != 0;
  const rrsr::Algo alg = static_cast<rrsr::Algo>(algo);
  RRSR_TRY(check_tensor(x, x, op, "x"));
  RRSR_TRY(check_tensor(weight, x, op, "weight"));
  RRSR_TRY(check_tensor(offset, x, op, "offset"));
  RRSR_TRY(check_float(x, op, "x"));
  RRSR_TRY(check_float(offset, op, "offset"));
  RRSR_REQUIRE(weight.scalar_type() == x.scalar_type(), op, ": weight dtype ", weight.scalar_type(),
               " must equal x dtype ", x.scalar_type());
  RRSR_REQUIRE(x.dim() == 4 && weight.dim() == 4, op, ": x and weight must be 4-D, got ", x.sizes(), " and ",
               weight.sizes());
  RRSR_REQUIRE(strides.size() == 2 && dilations.size() == 2 && pads.size() == 4, op,
               ": strides/dilations need 2 values and pads 4 (top, left, bottom, right)");
  RRSR_REQUIRE(strides[0] >= 1 && strides[1] >= 1 && dilations[0] >= 1 && dilations[1] >= 1 && pads[0] >= 0 &&
                   pads[1] >= 0 && pads[2] >= 0 && pads[3] >= 0,
               op, ": strides/dilations must be >= 1 and pads >= 0");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t c_out = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  RRSR_REQUIRE(group >= 1 && c % group == 0 && c_out % group == 0 && weight.size(1) * group == c, op, ": group=",
               group, " does not fit x channels ", c, " and weight ", weight.sizes());
  RRSR_REQUIRE(offset_group >= 1 && c % offset_group == 0, op, ": offset_group=", offset_group,
               " must divide channels ", c);
  const int64_t h_out = (h + pads[0] + pads[2] - (dilations[0] * (kh - 1) + 1)) / strides[0] + 1;
  const int64_t w_out = (w + pads[1] + pads[3] - (dilations[1] * (kw - 1) + 1)) / strides[1] + 1;
  RRSR_REQUIRE(h_out >= 1 && w_out >= 1, op, ": empty output for input ", x.sizes(), " and kernel ", kh, "x", kw);
  RRSR_TRY(check_shape(offset, {n, 2 * offset_group * kh * kw, h_out, w_out}, op, "offset"));
  const void* bias_ptr = nullptr;
  const void* mask_ptr = nullptr;
  if (bias.has_value()) {
    RRSR_TRY(check_tensor(*bias, x, op, "bias"));
    RRSR_REQUIRE(bias->scalar_type() == x.scalar_type(), op, ": bias dtype must equal x dtype");
    RRSR_TRY(check_shape(*bias, {c_out}, op, "bias"));
    bias_ptr = bias->data_ptr();
  }
  if (mask.has_value()) {
    RRSR_TRY(check_tensor(*mask, x, op, "mask"));
    RRSR_REQUIRE(mask->scalar_type() == offset.scalar_type(), op, ": mask dtype must equal offset dtype");
    RRSR_TRY(check_shape(*mask, {n, offset_group * kh * kw, h_out, w_out}, op, "mask"));
    mask_ptr = mask->data_ptr();
  }
  const c10::cuda::CUDAGuard guard(x.device());
  Tensor y = at::empty({n, c_out, h_out, w_out}, x.options());
  if (n == 0) return Result(std::vector<Tensor>{y}, std::string());
  rrsr::mdcn::Shape s{n, c, h, w, c_out, kh, kw, h_out, w_out, strides[0], strides[1], pads[0], pads[1],
                      dilations[0], dilations[1], group, offset_group};
  const size_t ws_bytes = rrsr::mdcn::cuda_workspace_bytes(s, to_dtype(x), to_dtype(offset), alg, choice.variant);
  const Tensor ws = scratch(ws_bytes, x);
  RRSR_TRY(status_message(rrsr::mdcn::forward_cuda(s, to_dtype(x), to_dtype(offset), x.data_ptr(), weight.data_ptr(),
                                                   offset.data_ptr(), bias_ptr, mask_ptr, y.data_ptr(), ws.data_ptr(),
                                                   ws_bytes, current_stream(), alg, tuned ? &choice : nullptr),
                          op));
  return Result(std::vector<Tensor>{y}, std::string());
}

// Accepts a 1x1 conv weight [a, b, 1, 1] or a matrix [a, b].
std::string check_matrix(const Tensor& t, int64_t a, int64_t b, const char* op, const char* name) {
  const bool ok = (t.dim() == 2 && t.size(0) == a && t.size(1) == b) ||
                  (t.dim() == 4 && t.size(0) == a && t.size(1) == b && t.size(2) == 1 && t.size(3) == 1);
  if (ok) return {};
  return cat(op, ": '", name, "' must have shape [", a, ", ", b, "] or [", a, ", ", b, ", 1, 1], got ", t.sizes());
}

Result ras_forward(const Tensor& x, const Tensor& r, const Tensor& weight, const Tensor& bias,
                   const Tensor& routing_weight, const Tensor& routing_bias, const Tensor& se1_weight,
                   const Tensor& se1_bias, const Tensor& se2_weight, const Tensor& se2_bias,
                   const std::optional<Tensor>& valid_size) {
  const char* op = "rrsr_torch.ras_forward";
  const std::pair<const Tensor*, const char*> feats[] = {{&x, "x"}, {&r, "ref"}, {&weight, "weight"}, {&bias, "bias"}};
  const std::pair<const Tensor*, const char*> gates[] = {{&routing_weight, "routing_weight"},
                                                         {&routing_bias, "routing_bias"},
                                                         {&se1_weight, "se1_weight"},
                                                         {&se1_bias, "se1_bias"},
                                                         {&se2_weight, "se2_weight"},
                                                         {&se2_bias, "se2_bias"}};
  RRSR_TRY(check_float(x, op, "x"));
  RRSR_TRY(check_float(routing_weight, op, "routing_weight"));
  for (auto& p : feats) {
    RRSR_TRY(check_tensor(*p.first, x, op, p.second));
    RRSR_REQUIRE(p.first->scalar_type() == x.scalar_type(), op, ": '", p.second, "' dtype must equal x dtype ",
                 x.scalar_type(), ", got ", p.first->scalar_type());
  }
  for (auto& p : gates) {
    RRSR_TRY(check_tensor(*p.first, x, op, p.second));
    RRSR_REQUIRE(p.first->scalar_type() == routing_weight.scalar_type(), op, ": '", p.second,
                 "' dtype must equal routing_weight dtype ", routing_weight.scalar_type());
  }
  RRSR_REQUIRE(x.dim() == 4 && r.dim() == 4 && x.size(0) == r.size(0) && x.size(2) == r.size(2) &&
                  x.size(3) == r.size(3),
              op, ": x and ref must be (N, C, H, W) with equal N, H, W; got ", x.sizes(), " and ", r.sizes());
  const int64_t n = x.size(0), cx = x.size(1), cr = r.size(1), h = x.size(2), w = x.size(3), c = cx + cr;
  RRSR_REQUIRE(weight.dim() == 5 && weight.size(2) == c && weight.size(3) == 3 && weight.size(4) == 3, op,
              ": 'weight' must be [experts, c_out, ", c, ", 3, 3], got ", weight.sizes());
  const int64_t e = weight.size(0), c_out = weight.size(1);
  RRSR_TRY(check_shape(bias, {e, c_out}, op, "bias"));
  RRSR_TRY(check_shape(routing_weight, {e, c}, op, "routing_weight"));
  RRSR_TRY(check_shape(routing_bias, {e}, op, "routing_bias"));
  RRSR_TRY(check_matrix(se1_weight, c, c, op, "se1_weight"));
  RRSR_TRY(check_shape(se1_bias, {c}, op, "se1_bias"));
  RRSR_TRY(check_matrix(se2_weight, c_out, c, op, "se2_weight"));
  RRSR_TRY(check_shape(se2_bias, {c_out}, op, "se2_bias"));
  const void* valid_ptr = nullptr;
  rrsr::DType t_valid = rrsr::DType::kInt64;
  if (valid_size.has_value()) {
    RRSR_TRY(check_tensor(*valid_size, x, op, "valid_size"));
    RRSR_REQUIRE(valid_size->scalar_type() == at::kInt || valid_size->scalar_type() == at::kLong, op,
                 ": 'valid_size' must be int32 or int64, got ", valid_size->scalar_type());
    RRSR_TRY(check_shape(*valid_size, {2}, op, "valid_size"));
    valid_ptr = valid_size->data_ptr();
    t_valid = to_dtype(*valid_size);
  }
  const c10::cuda::CUDAGuard guard(x.device());
  Tensor y = at::empty({n, c_out, h, w}, x.options());
  if (n == 0) return Result(std::vector<Tensor>{y}, std::string());
  rrsr::ras::Shape s{n, cx, cr, h, w, e, c_out};
  const size_t ws_bytes = rrsr::ras::cuda_workspace_bytes(s);
  const Tensor ws = scratch(ws_bytes, x);
  RRSR_TRY(status_message(
      rrsr::ras::forward_cuda(s, to_dtype(x), to_dtype(routing_weight), t_valid, x.data_ptr(), r.data_ptr(),
                              weight.data_ptr(), bias.data_ptr(), routing_weight.data_ptr(), routing_bias.data_ptr(),
                              se1_weight.data_ptr(), se1_bias.data_ptr(), se2_weight.data_ptr(), se2_bias.data_ptr(),
                              valid_ptr, y.data_ptr(), ws.data_ptr(), ws_bytes, current_stream()),
      op));
  return Result(std::vector<Tensor>{y}, std::string());
}

Result patch_match_forward(const Tensor& f_in, const Tensor& f_ref, int64_t patch_size, int64_t algo) {
  const char* op = "rrsr_torch.patch_match_forward";
  RRSR_TRY(check_algo(algo, op, true));
  const rrsr::Algo alg = static_cast<rrsr::Algo>(algo);
  RRSR_TRY(check_tensor(f_in, f_in, op, "f_in"));
  RRSR_TRY(check_tensor(f_ref, f_in, op, "f_ref"));
  RRSR_TRY(check_float(f_in, op, "f_in"));
  RRSR_REQUIRE(f_ref.scalar_type() == f_in.scalar_type(), op, ": f_ref dtype must equal f_in dtype");
  RRSR_REQUIRE(f_in.dim() == 4 && f_ref.dim() == 4 && f_in.size(0) == f_ref.size(0) && f_in.size(1) == f_ref.size(1),
              op, ": f_in and f_ref must be (N, C, H, W) with equal N and C, got ", f_in.sizes(), " and ",
              f_ref.sizes());
  rrsr::patch_match::Shape s{f_in.size(0), f_in.size(1), f_in.size(2), f_in.size(3), f_ref.size(2), f_ref.size(3),
                             patch_size};
  RRSR_REQUIRE(patch_size >= 1 && patch_size <= std::min({s.h, s.w, s.hr, s.wr}), op, ": patch_size ", patch_size,
              " must be in [1, smallest side]");
  RRSR_REQUIRE(rrsr::patch_match::check_shape(s) == rrsr::kOk, op, ": sizes out of the kernel's range");
  const c10::cuda::CUDAGuard guard(f_in.device());
  Tensor index = at::empty({s.n, s.hp(), s.wp()}, f_in.options().dtype(at::kInt));
  Tensor score = at::empty({s.n, s.hp(), s.wp()}, f_in.options().dtype(at::kFloat));
  if (s.n == 0) return Result(std::vector<Tensor>{index, score}, std::string());
  // the scratch of the algorithm that runs (the tensor-core path needs about half of the SIMT one)
  const size_t ws_bytes = rrsr::patch_match::cuda_workspace_bytes(s, to_dtype(f_in), alg);
  const Tensor ws = scratch(ws_bytes, f_in);
  RRSR_TRY(status_message(rrsr::patch_match::forward_cuda(s, to_dtype(f_in), f_in.data_ptr(), f_ref.data_ptr(),
                                                         index.data_ptr<int32_t>(), score.data_ptr<float>(),
                                                         ws.data_ptr(), ws_bytes, current_stream(), alg),
                          op));
  return Result(std::vector<Tensor>{index, score}, std::string());
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "RRSR CUDA kernels (MDCN, RAS, PatchMatch) for PyTorch; each returns (outputs, error message)";
  m.def("mdcn_forward", &mdcn_forward, "DCNv2 / ONNX DeformConv forward", py::arg("x"), py::arg("weight"),
        py::arg("offset"), py::arg("bias").none(true), py::arg("mask").none(true), py::arg("strides"),
        py::arg("pads"), py::arg("dilations"), py::arg("group"), py::arg("offset_group"), py::arg("algo") = 0,
        py::arg("tile") = std::vector<int64_t>(), py::arg("variant") = 0);
  m.def("ras_forward", &ras_forward, "reference-aware selection forward", py::arg("x"), py::arg("ref"),
        py::arg("weight"), py::arg("bias"), py::arg("routing_weight"), py::arg("routing_bias"),
        py::arg("se1_weight"), py::arg("se1_bias"), py::arg("se2_weight"), py::arg("se2_bias"),
        py::arg("valid_size") = py::none());
  m.def("patch_match_forward", &patch_match_forward, "dense top-1 patch matching -> (index int32, score fp32)",
        py::arg("f_in"), py::arg("f_ref"), py::arg("patch_size"), py::arg("algo") = 0);
}
