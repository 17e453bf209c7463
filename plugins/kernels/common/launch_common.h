// Types shared by every launcher (launch.h of each op). Plain C++: no CUDA, TensorRT, ORT or torch types, so any
// host can include it. Hosts translate their own tensor types and streams into these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rrsr {

// Element types a launcher understands. FP16 is IEEE binary16 passed as raw 16-bit storage.
enum class DType : int { kFloat32 = 0, kFloat16 = 1, kInt32 = 2, kInt64 = 3 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
  }
  return "unknown";
}

// Which CUDA kernel a launcher runs. kAuto is each op's documented default (launch.h); kSimt is the FP32-FMA
// kernel (exact FP32 arithmetic for every type); kTensorCore takes FP16 operands into tensor cores with FP32
// accumulation; kSimtDiagonal (PatchMatch only) is FP32 FMA arithmetic over per-pixel correlation tiles summed
// along patch diagonals; kTensorCoreWide (PatchMatch only) is kTensorCore with 64 x 128 correlation tiles (mma.sync).
// A launcher returns kErrUnsupportedDType for an algorithm it lacks for the given types/sizes (kErrInvalidArgument
// for one it does not know).
enum class Algo : int { kAuto = 0, kSimt = 1, kTensorCore = 2, kSimtDiagonal = 3, kTensorCoreWide = 4 };

// Launcher return codes. 0 is success; negative values are argument errors found before any work; positive
// values are CUDA runtime error codes (cudaError_t) from a CUDA launcher.
enum Status : int {
  kOk = 0,
  kErrUnsupportedDType = -1,  // a dtype (combination) the kernel is not built for
  kErrInvalidArgument = -2,   // a size/attribute the host should have rejected (null pointer, zero size, ...)
  kErrWorkspaceTooSmall = -3, // CUDA launcher got less scratch than *_cuda_workspace_bytes() asked for
  kErrOutOfMemory = -4,       // CPU scratch allocation failed
};

inline const char* status_string(int s) {
  switch (s) {
    case kOk: return "ok";
    case kErrUnsupportedDType: return "unsupported data type combination";
    case kErrInvalidArgument: return "invalid argument";
    case kErrWorkspaceTooSmall: return "workspace too small";
    case kErrOutOfMemory: return "out of memory";
    default: return s > 0 ? "CUDA error" : "unknown error";
  }
}

// How a CPU launcher runs independent tasks 0..n-1. A host with its own thread pool (ONNX Runtime's intra-op
// pool) passes one; nullptr means "use std::thread" (see cpu_parallel.h). Tasks write disjoint outputs in a fixed
// order, so the result does not depend on the number of threads.
struct CpuParallelFor {
  void (*run)(void* ctx, size_t n, void (*task)(void* arg, size_t i), void* arg);
  void* ctx;
};

}  // namespace rrsr
