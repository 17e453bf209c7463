#!/usr/bin/env bash
# One TensorRT check, in one of two modes:
#   TensorRT (default; a machine with TensorRT >= 10.3 and an NVIDIA GPU):
#     export (FP32 + FP16-policy ONNX) -> FP32 and FP16 engines -> parity vs PyTorch FP32 -> bench -> one report.
#   TensorRT-RTX (--rtx; tensorrt_rtx installed, GPU optional):
#     export -> FP32 and FP16 engines for COMPUTE_CAPABILITY with the plugin trace -> census and plugin methods from
#     the sidecars -> parity + bench only where a GPU of those compute capabilities is visible; otherwise the report
#     lists what could not run and why.
# usage: scripts/verify_tensorrt.sh [--rtx] CKPT [OUT_DIR]     (env: PYTHON, RRSR_TRT_PLUGINS_LIB, SIZES, MAX_LR,
#        MDCN_TACTICS = verified|all|none: rrsr-build-engine --mdcn-tactics, default verified;
#        COMPUTE_CAPABILITY (--rtx): rrsr-build-engine --compute-capability, default 89,120)
# Exit code: 0 all passed, 1 a step or a parity failed, 2 TensorRT(-RTX) / GPU / plugin library missing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=trt
if [ "${1:-}" = "--rtx" ]; then mode=rtx; shift; fi
ckpt=${1:?usage: scripts/verify_tensorrt.sh [--rtx] CKPT [OUT_DIR]}
default_out=outputs/verify_tensorrt
[ "$mode" = rtx ] && default_out=outputs/verify_tensorrt_rtx
out=${2:-$default_out}
py=${PYTHON:-python3}
plugins=${RRSR_TRT_PLUGINS_LIB:-build/plugins-trt/librrsr_trt_plugins_dynamic.so}
sizes=${SIZES:-40x40,83x125}
max_lr=${MAX_LR:-128x128}
tactics=${MDCN_TACTICS:-verified}
ccs=${COMPUTE_CAPABILITY:-89,120}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
log() { echo "[verify_tensorrt] $*" >&2; }

if [ "$mode" = rtx ]; then
  "$py" -c "import tensorrt_rtx" 2>/dev/null || { log "TensorRT-RTX is not importable with $py (pip install -e .[rtx])"; exit 2; }
else
  "$py" -c "import tensorrt" 2>/dev/null || { log "TensorRT is not importable with $py"; exit 2; }
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { log "no CUDA GPU visible to torch"; exit 2; }
fi
[ -f "$plugins" ] || { log "TensorRT plugin library $plugins is missing (build it, or set RRSR_TRT_PLUGINS_LIB)"; exit 2; }
[ -f "$ckpt" ] || { log "checkpoint $ckpt not found"; exit 2; }
rm -f "$out"/*.status "$out"/not_run.txt

failed=0
step() {  # step NAME CMD...: run, keep its log, remember a failure but go on so the report is complete
  local name=$1; shift
  log "$name: $*"
  if "$@" > >(tee "$out/$name.log") 2>&1; then echo ok > "$out/$name.status"; else echo FAIL > "$out/$name.status"; failed=1; fi
}

# Why an engine cannot run here (empty when it can): the trt backend's own refusal, without loading anything big.
why_not_run() {
  "$py" - "$1" <<'PY'
import sys
from runtime.backends import BackendError, ModelFiles, load_runner
try:
    load_runner("trt", ModelFiles(engine=sys.argv[1])).close()
except BackendError as e:
    print(str(e).splitlines()[0])
PY
}

if [ "$mode" = rtx ]; then
  engine_args=(--target rtx --compute-capability "$ccs" --trace-plugins --runtime-cache "$out/rtx_runtime.cache")
else
  engine_args=(--target trt --timing-cache "$out/trt.cache")
fi
runnable=()
for p in fp32 fp16; do
  step "export_$p" "$py" -m export --ckpt "$ckpt" --out "$out/rrsr_$p.onnx" --precision "$p" --no-check --force \
       --lr-size 40x40 --min-lr 8 --max-lr 256
  flag=--fp32; [ "$p" = fp16 ] && flag=--fp16
  rm -f "$out/rrsr_$p.engine" "$out/rrsr_$p.engine.json"     # no stale engine is reported on
  step "engine_$p" "$py" -m runtime.build_engine --onnx "$out/rrsr_$p.onnx" --out "$out/rrsr_$p.engine" $flag \
       --plugins "$plugins" --min-lr 16x16 --opt-lr 64x64 --max-lr "$max_lr" "${engine_args[@]}" \
       --mdcn-tactics "$tactics" --force
  [ -f "$out/rrsr_$p.engine" ] || continue
  why=$(why_not_run "$out/rrsr_$p.engine")
  if [ -n "$why" ]; then
    log "not running rrsr_$p.engine: $why"
    echo "rrsr_$p.engine: parity and bench not run: $why" >> "$out/not_run.txt"
    continue
  fi
  runnable+=(--engine "$out/rrsr_$p.engine")
  step "parity_$p" "$py" -m runtime.parity --ckpt "$ckpt" --engine "$out/rrsr_$p.engine" --plugins "$plugins" \
       --backend trt --ref-device cuda --json "$out/parity_$p.json"
done
if [ ${#runnable[@]} -gt 0 ]; then
  step bench "$py" -m runtime.bench --ckpt "$ckpt" --onnx "$out/rrsr_fp32.onnx" "${runnable[@]}" \
       --plugins "$plugins" --sizes "$sizes" --device cuda --json "$out/bench.json"
fi

"$py" - "$out" "$mode" <<'PY'
import json, pathlib, platform, sys
out, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
rep = {"machine": platform.node(), "mode": mode, "steps": {}, "parity": {}, "bench": None, "sidecars": {},
       "not_run": (out / "not_run.txt").read_text().splitlines() if (out / "not_run.txt").is_file() else []}
for s in sorted(out.glob("*.status")):
    rep["steps"][s.stem] = s.read_text().strip()
for p in ("fp32", "fp16"):
    f = out / f"parity_{p}.json"
    if f.is_file():
        rep["parity"][p] = json.loads(f.read_text())
    sc = out / f"rrsr_{p}.engine.json"
    if sc.is_file():
        rep["sidecars"][p] = json.loads(sc.read_text())
if (out / "bench.json").is_file():
    rep["bench"] = json.loads((out / "bench.json").read_text())
(out / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
lines = [f"# {'TensorRT-RTX' if mode == 'rtx' else 'TensorRT'} verification", "", "| step | status |", "|---|---|"]
lines += [f"| {k} | {v} |" for k, v in rep["steps"].items()]
if rep["sidecars"]:
    lines += ["", "## engines", "", "| engine | target, version | runs on | profile (LR) | layers / plugin layers | "
              "engine MiB | build s |", "|---|---|---|---|---|---|---|"]
    for p, m in rep["sidecars"].items():
        c, pr = m.get("census", {}), m["profiles"][0]
        plug = ", ".join(f"{n} {op}" for op, n in c.get("plugin_layers_by_type", {}).items())
        size = (out / f"rrsr_{p}.engine").stat().st_size / 2 ** 20 if (out / f"rrsr_{p}.engine").is_file() else 0
        lines.append(f"| rrsr_{p} | {m.get('target', 'trt')} {m['tensorrt_version']} | {m['gpu_name']} | "
                     f"{'x'.join(map(str, pr['min']))}..{'x'.join(map(str, pr['max']))} | "
                     f"{c.get('layers', '?')} / {c.get('plugin_layers', '?')} ({plug}) | {size:.1f} | {m['build_seconds']} |")
    for p, m in rep["sidecars"].items():
        for op, calls in (m.get("plugin_calls") or {}).items():
            lines.append(f"- rrsr_{p} {op}: builder called " + ", ".join(f"{k} x{n}" for k, n in calls.items()))
if rep["not_run"]:
    lines += ["", "## not run here", ""] + [f"- {x}" for x in rep["not_run"]]
for p, r in rep["parity"].items():
    lines += ["", f"## parity {p} ({r['criterion']}): {'PASS' if r['pass'] else 'FAIL'}", "",
              "| image | max abs | mean abs | PSNR dB |", "|---|---|---|---|"]
    lines += [f"| {i['image']} | {i['max_abs']:.3e} | {i['mean_abs']:.3e} | "
              f"{i['psnr_db'] if isinstance(i['psnr_db'], str) else round(i['psnr_db'], 2)} |" for i in r["images"]]
if rep["bench"]:
    lines += ["", "## bench", "", "| backend | precision | LR | median ms | p90 ms | img/s | peak MiB | memory |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rep["bench"]["rows"]:
        if r["median_ms"] is not None:
            lines.append(f"| {r['backend']} | {r['precision']} | {r['lr']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | "
                         f"{r['images_per_s']:.1f} | {r['peak_mem_mib']:.0f} | {r['mem_method']} |")
(out / "report.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "report: $out/report.md and $out/report.json"
exit $failed
