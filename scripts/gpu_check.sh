#!/usr/bin/env bash
# The one command for the GPU machine (H100/H200, torch+cu130, nvcc, ninja; no network):
#   bash scripts/gpu_check.sh
# builds the PyTorch CUDA extension (plugins/torch), runs tests/gpu and scripts/bench_kernels.py, and tees everything
# into ${OUT:-build}/gpu_check.log (bench JSON: ${OUT:-build}/bench.json). Exits non-zero if the build, the tests or
# the benchmark fail. Per-step timeouts keep the whole run under 8 minutes (build 210 s + tests 120 s + bench 130 s).
set -u -o pipefail
cd "$(dirname "$0")/.."
OUTDIR="${OUT:-build}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export MAX_JOBS="${MAX_JOBS:-16}"          # ninja: compile the 4 sources in parallel
export TORCH_CUDA_ARCH_LIST="9.0"           # -arch=sm_90 is passed explicitly; this only silences torch
status=0
step() { echo; echo "=== $1 ($(date -u +%H:%M:%S), ${SECONDS}s elapsed)"; }

step "versions"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
nvcc --version | tail -n 2 || true
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
"$PY" -c "import torchvision; print('torchvision', torchvision.__version__)" || echo "torchvision missing"

step "build plugins/torch (timeout 210 s)"
t0=$SECONDS
if timeout 210 "$PY" -c "import plugins.torch as pt; m = pt.build(verbose=True); print('built', m.__file__)"; then
  echo "build: OK in $((SECONDS - t0)) s"
else
  echo "build: FAILED (rc=$?) after $((SECONDS - t0)) s"; exit 1   # nothing below can run without it
fi

step "pytest tests/gpu (timeout 120 s)"
timeout 120 "$PY" -m pytest -q -s -rs tests/gpu -p no:warnings -p no:cacheprovider || { echo "tests: FAILED (rc=$?)"; status=1; }

step "bench (timeout 130 s; measurements stop after 95 s)"
timeout 130 "$PY" scripts/bench_kernels.py --json "$OUTDIR/bench.json" --budget-s 95 --cap-s 20 \
  || { echo "bench: FAILED (rc=$?)"; status=1; }

step "done: status $status"
exit $status
