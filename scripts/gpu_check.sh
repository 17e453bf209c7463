#!/usr/bin/env bash
# The one command for the GPU machine (H100/H200, torch+cu130, nvcc, ninja; no network):
#   bash scripts/gpu_check.sh
# 1. builds the PyTorch CUDA extension (plugins/torch),
# 2. runs tests/gpu (kernel parity FP32/FP16 for both CUDA algorithms, PatchMatch identity, the whole model; the
#    TensorRT enqueue harness too when RRSR_TRT_BUILD_DIR holds a prebuilt one, see plugins/tensorrt/README.md),
# 3. benchmarks the kernels (scripts/bench_kernels.py) and 4. the whole model stage by stage, four paths (authors'
#    eager, its torch.compile, FP16 + our kernels eager, the --compile fast path) at LR 40x40, 83x125 and 270x480
#    (scripts/bench_model.py),
# teeing everything into ${OUT:-build}/gpu_check.log (JSON: bench.json, bench_model.json beside it).
# Every step runs under a timeout cut to a global deadline (GPU_CHECK_DEADLINE_S, default 540 s) so the whole run
# ends in time; a failing step is reported and the next one still runs. Exit status: non-zero if any step failed.
# The sanitizer step stops starting cases after GPU_CHECK_SANITIZER_S (default 90 s).
# A shorter run (device time is scarce): GPU_CHECK_STEPS=tests,bench (any of tests, sanitizer, bench, model; the
# build always runs), GPU_CHECK_PYTEST="tests/gpu/test_gpu_kernels.py -k mdcn", GPU_CHECK_BENCH="--only mdcn --tiles".
set -u -o pipefail
cd "$(dirname "$0")/.."
OUTDIR="${OUT:-build}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export MAX_JOBS="${MAX_JOBS:-16}"          # ninja: compile the sources in parallel
export TORCH_CUDA_ARCH_LIST="9.0"           # -arch=sm_90 is passed explicitly; this only silences torch
DEADLINE="${GPU_CHECK_DEADLINE_S:-540}"
status=0
STEPS=",${GPU_CHECK_STEPS:-tests,sanitizer,bench,model},"
want() { case "$STEPS" in *",$1,"*) return 0;; *) return 1;; esac; }
step() { echo; echo "=== $1 ($(date -u +%H:%M:%S), ${SECONDS}s elapsed)"; }
# seconds a step may take: its own cap, cut to what is left before the deadline minus a reserve for later steps
allow() { local cap=$1 reserve=$2 left=$((DEADLINE - SECONDS - $2)); [ "$left" -lt "$cap" ] && cap=$left; [ "$cap" -lt 5 ] && cap=5; echo "$cap"; }
# the reserve a step leaves for the wanted steps after it (tests 60 s, sanitizer 40 s, bench 120 s, model 150 s)
later() {
  local r=0 after=0 s
  [ "$1" = build ] && after=1
  for s in tests sanitizer bench model; do
    if [ "$after" = 1 ] && want "$s"; then
      case $s in tests) r=$((r + 60));; sanitizer) r=$((r + 40));; bench) r=$((r + 120));; model) r=$((r + 70));; esac
    fi
    [ "$s" = "$1" ] && after=1
  done
  echo "$r"
}

step "versions"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
nvcc --version | tail -n 2 || true
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
"$PY" -c "import torchvision; print('torchvision', torchvision.__version__)" || echo "torchvision missing"

# everything after needs the build: it gets at least 150 s whatever the later steps' reserves
t=$(allow 240 "$(later build)"); [ "$t" -lt 150 ] && t=150; step "build plugins/torch (timeout $t s)"
t0=$SECONDS
if timeout "$t" "$PY" -c "import plugins.torch as pt; m = pt.build(verbose=True); print('built', m.__file__)"; then
  echo "build: OK in $((SECONDS - t0)) s"
else
  echo "build: FAILED (rc=$?) after $((SECONDS - t0)) s"; exit 1   # nothing below can run without it
fi

export RRSR_TRT_KEEP_CASES="${RRSR_TRT_KEEP_CASES:-$PWD/build/trt-cases}"   # kept for the sanitizer step
if want tests; then
  t=$(allow 300 "$(later tests)"); step "pytest ${GPU_CHECK_PYTEST:-tests/gpu} (timeout $t s)"
  # shellcheck disable=SC2086 # the selection is words on purpose
  timeout "$t" "$PY" -m pytest -q -s -rs ${GPU_CHECK_PYTEST:-tests/gpu} -p no:warnings -p no:cacheprovider \
    || { echo "tests: FAILED (rc=$?)"; status=1; }
fi

# the FP16 tensor-core kernels (MDCN, PatchMatch v2: cp.async double buffering) under compute-sanitizer, through the
# TensorRT enqueue harness (a plain C++ program: fast to instrument); needs the harness and its kept cases
HARNESS="${RRSR_TRT_BUILD_DIR:-build/plugins-trt}/rrsr_trt_enqueue_check"
LIB="${RRSR_TRT_BUILD_DIR:-build/plugins-trt}/librrsr_trt_plugins_dynamic.so"
if ! want sanitizer; then
  :
elif command -v compute-sanitizer >/dev/null && [ -x "$HARNESS" ] && [ -d "$RRSR_TRT_KEEP_CASES" ]; then
  step "compute-sanitizer memcheck + racecheck on the FP16 enqueue cases (each under the deadline)"
  # mdcn_tactic*: the MDCN kernel variants (TensorRT custom tactics; RRSR_TRT_MDCN_TACTICS=all also offers any not
  # yet marked GPU-verified) -- races are what the CPU replays cannot see. A case that would start past the step's
  # time is listed as skipped.
  san0=$SECONDS
  for c in "$RRSR_TRT_KEEP_CASES"/mdcn_tactic* "$RRSR_TRT_KEEP_CASES"/mdcn_fp16* "$RRSR_TRT_KEEP_CASES"/pm_float16* \
           "$RRSR_TRT_KEEP_CASES"/ras_fp16*; do
    [ -d "$c" ] || continue
    for tool in memcheck racecheck; do
      if [ $((DEADLINE - SECONDS - $(later sanitizer))) -lt 15 ] || [ $((SECONDS - san0)) -gt "${GPU_CHECK_SANITIZER_S:-90}" ]; then
        echo "$tool $(basename "$c"): skipped (the step's time is spent)"; continue
      fi
      t=$(allow 60 "$(later sanitizer)")
      RRSR_TRT_MDCN_TACTICS=all timeout "$t" compute-sanitizer --tool "$tool" --error-exitcode 3 "$HARNESS" "$LIB" "$c" \
        > "build/sanitizer.txt" 2>&1
      rc=$?; echo "$tool $(basename "$c"): rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' build/sanitizer.txt | tail -n 1)"
      [ $rc -eq 0 ] || { tail -n 30 build/sanitizer.txt; status=1; }
    done
  done
else
  echo "(compute-sanitizer step on the TensorRT enqueue cases skipped: no compute-sanitizer, harness or kept cases)"
fi
# the PatchMatch tensor-core kernels not yet chosen by kAuto (v3), straight through plugins/torch
if want sanitizer && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    if [ $((DEADLINE - SECONDS - $(later sanitizer))) -lt 30 ]; then echo "$tool patch_match v2/v3: skipped (time)"; continue; fi
    t=$(allow 90 "$(later sanitizer)")
    timeout "$t" compute-sanitizer --tool "$tool" --error-exitcode 3 "$PY" scripts/sanitize_patch_match.py \
      > build/sanitizer_pm.txt 2>&1
    rc=$?; echo "$tool patch_match v2/v3: rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|indices' build/sanitizer_pm.txt | tail -n 2 | tr '\n' ' ')"
    [ $rc -eq 0 ] || { tail -n 30 build/sanitizer_pm.txt; status=1; }
  done
fi

if want bench; then
  t=$(allow 170 "$(later bench)"); step "bench kernels (timeout $t s)"
  # both offset kinds: random (the scattered worst case) and a smooth flow (closer to RRSR's correspondence offsets)
  # shellcheck disable=SC2086
  timeout "$t" "$PY" scripts/bench_kernels.py --json "$OUTDIR/bench.json" --budget-s $((t - 30)) --cap-s 20 \
    --offsets both ${GPU_CHECK_BENCH:-} || { echo "bench: FAILED (rc=$?)"; status=1; }
fi

if want model; then
  t=$(allow 360 "$(later model)"); step "bench whole model, stage by stage (timeout $t s)"
  # paths that would start past the budget are listed as skipped; compiles are tens of seconds each
  # shellcheck disable=SC2086
  timeout "$t" "$PY" scripts/bench_model.py --json "$OUTDIR/bench_model.json" --budget-s $((t - 60)) \
    ${GPU_CHECK_MODEL:-} || { echo "bench_model: FAILED (rc=$?)"; status=1; }
fi

step "done: status $status"
exit $status
