#!/usr/bin/env bash
# The README's main job: set up .venv, build the ONNX Runtime custom-op library when this machine can, then export
# the demo checkpoint and super-resolve the bundled samples with the best available backend (runtime.demo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RRSR_EXTRAS= bash scripts/setup_env.sh
mkdir -p build
if ! bash scripts/build_plugins.sh > build/build_plugins.log 2>&1; then
  echo "[demo] the custom-op library could not be built (log: build/build_plugins.log);" \
       "the demo falls back to the standard ONNX flavour"
fi
exec .venv/bin/python -m runtime.demo "$@"
