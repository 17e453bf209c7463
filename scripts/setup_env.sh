#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the project into it.
# CPU torch 2.13.0 is installed first so that nothing pulls a multi-GB CUDA build. The default extras are test, train,
# serve (Triton, see the README) and rtx:
# TensorRT for RTX (~95 MB of wheels), which builds engines without a GPU; its ONNX parser needs a link
# libtensorrt_rtx.so -> libtensorrt_rtx.so.1, created (and printed) in build/tensorrt-rtx/, never in site-packages.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${RRSR_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$py" -m venv "$venv"
fi
extras="${RRSR_EXTRAS-test,train,rtx,serve}"   # empty = core dependencies only
stamp="$venv/.rrsr-installed-${extras//,/_}"
if [ ! -f "$stamp" ] || [ "$root/setup.cfg" -nt "$stamp" ]; then
  echo "[setup] installing torch 2.13.0 (CPU) and the project${extras:+ with extras $extras}"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root${extras:+[$extras]}"
  touch "$stamp"
fi
case ",$extras," in
  *,rtx,*) (cd "$root" && "$venv/bin/python" -m runtime.rtx_link | sed 's/^/[setup] /') ;;
esac
