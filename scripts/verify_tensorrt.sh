#!/usr/bin/env bash
# One TensorRT check on a machine with TensorRT (>= 10.3) and an NVIDIA GPU:
#   export (FP32 + FP16-policy ONNX) -> FP32 and FP16 engines -> parity vs PyTorch FP32 -> bench -> one report.
# usage: scripts/verify_tensorrt.sh CKPT [OUT_DIR]     (env: PYTHON, RRSR_TRT_PLUGINS_LIB, SIZES, MAX_LR,
#        MDCN_TACTICS = verified|all|none: rrsr-build-engine --mdcn-tactics, default verified)
# Exit code: 0 all passed, 1 a step or a parity failed, 2 TensorRT / GPU / plugin library missing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ckpt=${1:?usage: scripts/verify_tensorrt.sh CKPT [OUT_DIR]}
out=${2:-outputs/verify_tensorrt}
py=${PYTHON:-python3}
plugins=${RRSR_TRT_PLUGINS_LIB:-build/plugins-trt/librrsr_trt_plugins_dynamic.so}
sizes=${SIZES:-40x40,83x125}
max_lr=${MAX_LR:-128x128}
tactics=${MDCN_TACTICS:-verified}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
log() { echo "[verify_tensorrt] $*" >&2; }

"$py" -c "import tensorrt" 2>/dev/null || { log "TensorRT is not importable with $py"; exit 2; }
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { log "no CUDA GPU visible to torch"; exit 2; }
[ -f "$plugins" ] || { log "TensorRT plugin library $plugins is missing (build it, or set RRSR_TRT_PLUGINS_LIB)"; exit 2; }
[ -f "$ckpt" ] || { log "checkpoint $ckpt not found"; exit 2; }

failed=0
step() {  # step NAME CMD...: run, keep its log, remember a failure but go on so the report is complete
  local name=$1; shift
  log "$name: $*"
  if "$@" > >(tee "$out/$name.log") 2>&1; then echo ok > "$out/$name.status"; else echo FAIL > "$out/$name.status"; failed=1; fi
}

for p in fp32 fp16; do
  step "export_$p" "$py" -m export --ckpt "$ckpt" --out "$out/rrsr_$p.onnx" --precision "$p" --no-check --force \
       --lr-size 40x40 --min-lr 8 --max-lr 256
  flag=--fp32; [ "$p" = fp16 ] && flag=--fp16
  step "engine_$p" "$py" -m runtime.build_engine --onnx "$out/rrsr_$p.onnx" --out "$out/rrsr_$p.engine" $flag \
       --plugins "$plugins" --min-lr 16x16 --opt-lr 64x64 --max-lr "$max_lr" --timing-cache "$out/trt.cache" \
       --mdcn-tactics "$tactics" --force
  step "parity_$p" "$py" -m runtime.parity --ckpt "$ckpt" --engine "$out/rrsr_$p.engine" --plugins "$plugins" \
       --backend trt --ref-device cuda --json "$out/parity_$p.json"
done
step bench "$py" -m runtime.bench --ckpt "$ckpt" --onnx "$out/rrsr_fp32.onnx" --engine "$out/rrsr_fp32.engine" \
     --engine "$out/rrsr_fp16.engine" --plugins "$plugins" --sizes "$sizes" --device cuda --json "$out/bench.json"

"$py" - "$out" <<'PY'
import json, pathlib, platform, sys
out = pathlib.Path(sys.argv[1])
rep = {"machine": platform.node(), "steps": {}, "parity": {}, "bench": None, "sidecars": {}}
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
lines = ["# TensorRT verification", "", "| step | status |", "|---|---|"]
lines += [f"| {k} | {v} |" for k, v in rep["steps"].items()]
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
