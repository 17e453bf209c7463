"""python -m runtime.demo: the deployment path end to end on the bundled samples, CPU-only friendly, no download.

1. export the demo checkpoint to ONNX in --out (reused when already exported from the same checkpoint: the
   checkpoint's SHA-256 is recorded next to the graph);
2. super-resolve the sample pairs with the best available backend (TensorRT is not used here: it needs an
   engine built on the target GPU with rrsr-build-engine), or with ``--compile`` the PyTorch fast path (no export);
3. print parity against PyTorch FP32 and the speed of both, and quality against the ground truth;
4. write ``<name>_sr.png`` and ``<name>_side_by_side.png`` (bicubic | SR | reference).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from rrsr_model.demo import DEMO_CKPT, SAMPLES, sample_pairs, side_by_side
from rrsr_model.images import load_rgb, pil_bicubic, save_rgb, to_uint8

from .backends import ModelFiles, TorchLoader, load_runner, super_resolve
from .backends.torch_backend import strict_fp32
from .cli_common import click_errors
from .parity import format_report, parity_report
from .sidecar import sha256_file


def export_once(ckpt: Path, out_dir: Path, log=click.echo) -> tuple[Path, dict]:
    """out_dir/rrsr.onnx exported from ``ckpt`` (plugin flavour when the ORT custom-op library is built, else the
    standard flavour that stock ONNX Runtime runs); reused when its record names the same checkpoint hash."""
    from plugins.ort_library import find_library
    onnx_path, record_path = out_dir / "rrsr.onnx", out_dir / "rrsr.onnx.export.json"
    digest = sha256_file(ckpt)
    flavour = "plugin" if find_library() else "standard"
    if onnx_path.is_file() and record_path.is_file():
        try:
            rec = json.loads(record_path.read_text())
        except ValueError:
            rec = {}
        if rec.get("ckpt_sha256") == digest and rec.get("flavour") == flavour:
            log(f"reusing {onnx_path} (exported from this checkpoint, {flavour} flavour)")
            return onnx_path, rec
    import onnx

    from export.onnx_export import ExportOptions, export_model
    from rrsr_model.checkpoint import load_model
    log(f"exporting {ckpt} to {onnx_path} ({flavour} flavour{'' if flavour == 'plugin' else ': the ORT custom-op library is not built'}; about a minute on a CPU)")
    opts = ExportOptions(flavour=flavour, lr_size=(16, 16), min_lr=8, max_lr=1024)
    t = time.perf_counter()
    proto = export_model(load_model(ckpt), opts)
    tmp = onnx_path.with_name(onnx_path.name + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(onnx_path)
    rec = {"ckpt": str(ckpt), "ckpt_sha256": digest, "flavour": flavour, "precision": "fp32",
           "min_lr": opts.min_lr, "max_lr": opts.max_lr, "export_seconds": round(time.perf_counter() - t, 1)}
    record_path.write_text(json.dumps(rec, indent=2) + "\n")
    return onnx_path, rec


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--ckpt", type=click.Path(dir_okay=False), default=str(DEMO_CKPT), show_default="the bundled demo checkpoint",
              help="rrsr bundle to deploy.")
@click.option("--samples", type=click.Path(file_okay=False), default=str(SAMPLES), show_default="bundled",
              help="Folder of <name>_lr.png / _ref.png [/ _hr.png].")
@click.option("--out", type=click.Path(file_okay=False), default="outputs/runtime-demo", show_default=True,
              help="Folder for the ONNX graph, SR and side-by-side PNGs (files of the same name are replaced).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto (for ONNX Runtime and PyTorch).")
@click.option("--compile", "compile_", is_flag=True,
              help="Run the PyTorch fast path (FP32, torch.compile per stage, CUDA graphs on CUDA; see runtime.infer "
                   "--compile) instead of the best available backend for the exported graph.")
@click_errors
def main(ckpt, samples, out, device, compile_):
    """Export the demo checkpoint to ONNX, super-resolve the samples with the best available backend, and
    report parity and speed against PyTorch FP32."""
    ckpt, out = Path(ckpt), Path(out)
    if not ckpt.is_file():
        extra = (" (it is made by `python scripts/train_demo.py`; pass --ckpt to use another bundle)"
                 if ckpt == DEMO_CKPT else "")
        raise click.ClickException(f"checkpoint not found: {ckpt}{extra}")
    pairs = sample_pairs(Path(samples))
    if not pairs:
        raise click.ClickException(f"no <name>_lr.png + <name>_ref.png pairs in {samples}")
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = None if compile_ else export_once(ckpt, out)[0]       # the fast path runs the checkpoint itself
    images = [(n, load_rgb(lr), load_rgb(ref), load_rgb(hr) if hr else None) for n, lr, ref, hr in pairs]
    if device != "cpu":
        strict_fp32()          # the PyTorch FP32 reference of the parity check must not run in TF32
    if compile_:
        choice = load_runner("torch", ModelFiles(ckpt=str(ckpt), compile=True), device)
    else:
        choice = load_runner("auto", ModelFiles(onnx=str(onnx_path), ckpt=str(ckpt)), device)
    click.echo(f"backend: {choice.reason}")
    reference_loader = TorchLoader(str(ckpt), precision="fp32", device=device, kernels="reference")
    with choice.runner as runner, reference_loader.load() as reference:
        rep = parity_report(runner, reference, images)     # first runs: also the warm-up of each shape
        click.echo(format_report(rep))
        b, r = runner.describe(), reference.describe()
        label = b["backend"] + "-" + b["device"] + ("+compile" if "compile" in b else "")
        click.echo(f"\n{'image':<14}{label + ' s':>20}{'torch-' + r['device'] + ' s':>14}{'speed-up':>10}")
        for name, lr, ref, _ in images:
            tb = super_resolve(runner, lr, ref)
            tr = super_resolve(reference, lr, ref)
            click.echo(f"{name:<14}{tb.seconds:>20.3f}{tr.seconds:>14.3f}{tr.seconds / tb.seconds:>9.2f}x")
            sr = to_uint8(tb.sr)
            save_rgb(sr, out / f"{name}_sr.png")
            save_rgb(side_by_side(pil_bicubic(lr, sr.shape[:2]), sr, ref), out / f"{name}_side_by_side.png")
    click.echo(f"wrote {out}/<name>_sr.png and <name>_side_by_side.png (bicubic | SR | reference)"
               + (f", and {onnx_path}" if onnx_path else ""))
    if not rep["pass"]:
        raise click.ClickException(f"parity against PyTorch FP32 failed ({rep['criterion']})")


if __name__ == "__main__":
    main()
