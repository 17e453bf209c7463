#!/usr/bin/env bash
# Build the RRSR TensorRT plugin libraries (IPluginV3) into build/plugins-trt.
#
#   bash scripts/build_tensorrt_plugins.sh <TensorRT_ROOT>
#
# <TensorRT_ROOT> is a TensorRT install or a checkout of the NVIDIA/TensorRT open-source repository: its include/
# must hold NvInferRuntime.h. Keep it outside this repository (the headers are never committed). Needs nvcc (the
# plugins call the CUDA kernels; cudart is linked statically) and cmake; libnvinfer is not needed to build.
# Prints the two library paths, self-registering first:
#   build/plugins-trt/librrsr_trt_plugins.so          trtexec --staticPlugins, Polygraphy --plugins, ctypes.CDLL
#   build/plugins-trt/librrsr_trt_plugins_dynamic.so  trtexec --dynamicPlugins, registry.load_library
# and builds next to them (not printed) the test programs rrsr_trt_plugin_check (host-side check) and
# rrsr_trt_enqueue_check (GPU enqueue harness, tests/gpu/test_gpu_tensorrt_enqueue.py).
#
# Environment:
#   RRSR_TRT_BUILD_DIR        build folder (default: <repo>/build/plugins-trt)
#   RRSR_CUDA_ARCHITECTURES   CUDA architectures (default: 87;90 = Jetson Orin, H100/H200)
#   RRSR_BUILD_JOBS           parallel jobs (default: 2)
#   PYTHON                    interpreter for the op-header generator (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[build_tensorrt_plugins] $*" >&2; }
die() { echo "[build_tensorrt_plugins] error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 <TensorRT_ROOT>   (a folder whose include/ holds NvInferRuntime.h)"
TRT_ROOT="$(cd "$1" 2>/dev/null && pwd)" || die "TensorRT_ROOT '$1' is not a directory"
[ -f "$TRT_ROOT/include/NvInferRuntime.h" ] || die "$TRT_ROOT/include/NvInferRuntime.h not found"
BUILD_DIR="${RRSR_TRT_BUILD_DIR:-$ROOT/build/plugins-trt}"
PYTHON="${PYTHON:-python3}"
JOBS="${RRSR_BUILD_JOBS:-2}"
ARCHS="${RRSR_CUDA_ARCHITECTURES:-87;90}"
command -v cmake >/dev/null || die "cmake not found"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed to generate the op header)"
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || die "nvcc not found (the TensorRT plugins need the CUDA kernels)"

VERSION="$(grep -E '#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(_ENTERPRISE)? ' "$TRT_ROOT/include/NvInferVersion.h" \
           | awk '{print $3}' | grep -E '^[0-9]+$' | head -n3 | paste -sd. - || true)"
log "TensorRT headers: $TRT_ROOT/include (version ${VERSION:-unknown})"
log "configuring $BUILD_DIR (CUDA architectures: $ARCHS)"
cmake -S "$ROOT/plugins" -B "$BUILD_DIR" \
  -DCMAKE_BUILD_TYPE=Release \
  -DRRSR_WITH_CUDA=ON \
  -DRRSR_CUDA_ARCHITECTURES="$ARCHS" \
  -DTensorRT_ROOT="$TRT_ROOT" \
  -DPython3_EXECUTABLE="$(command -v "$PYTHON")" >&2
cmake --build "$BUILD_DIR" --parallel "$JOBS" --target rrsr_trt_plugins rrsr_trt_plugins_dynamic rrsr_trt_plugin_check rrsr_trt_enqueue_check >&2

for lib in librrsr_trt_plugins.so librrsr_trt_plugins_dynamic.so rrsr_trt_plugin_check rrsr_trt_enqueue_check; do
  [ -f "$BUILD_DIR/$lib" ] || die "build finished but $BUILD_DIR/$lib is missing"
done
log "self-registering library: $BUILD_DIR/librrsr_trt_plugins.so"
log "getCreators library:      $BUILD_DIR/librrsr_trt_plugins_dynamic.so"
log "GPU enqueue harness:      $BUILD_DIR/rrsr_trt_enqueue_check"
echo "$BUILD_DIR/librrsr_trt_plugins.so"
echo "$BUILD_DIR/librrsr_trt_plugins_dynamic.so"
