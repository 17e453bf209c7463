"""python -m runtime.parity: a backend's SR against the PyTorch FP32 model's, on given images or the bundled
samples. Pass: FP32 max abs <= 1e-4; FP16 PSNR >= 45 dB (export.validate's criteria). Exit code 1 on failure.

    python -m runtime.parity --ckpt rrsr.pth --onnx rrsr.onnx --backend ort --json parity.json
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import click
import numpy as np

from export.check import compare
from export.matching import (compare_matching, fixed_index_kernel, format_matching, index_output, matching_kernel,
                             with_index_output)
from export.validate import FP16_MIN_PSNR, FP32_TOLERANCE, criterion
from rrsr_model.demo import SAMPLES, sample_pairs
from rrsr_model.images import load_rgb, to_uint8
from rrsr_model.inference import prepare_inputs
from rrsr_model.metrics import psnr_y, ssim_y

from .backends import Runner, TorchLoader, load_runner, super_resolve
from .backends.base import to_feeds
from .backends.torch_backend import strict_fp32
from .cli_common import click_errors, model_files, model_options


def passes(precision: str, max_abs: float, psnr: float) -> bool:
    return max_abs <= FP32_TOLERANCE if precision == "fp32" else psnr >= FP16_MIN_PSNR


def _num(x: float):
    """JSON has no inf; an exact match (PSNR inf) is written as the string "inf"."""
    return x if math.isfinite(x) else "inf"


def parity_report(runner: Runner, reference: Runner, pairs: list[tuple[str, np.ndarray, np.ndarray, Optional[np.ndarray]]]) -> dict:
    """Run both on every (name, lr, ref, hr-or-None) and compare; quality against the HR when there is one."""
    desc = runner.describe()
    precision = desc.get("precision", "fp32")
    shared = SharedCorrespondence.for_backend(desc, reference, runner)
    rows = []
    for name, lr, ref, hr in pairs:
        index = shared.index(lr, ref) if shared else None
        with matching_kernel(fixed_index_kernel(index) if shared else None):
            want = super_resolve(reference, lr, ref)
        got = super_resolve(runner, lr, ref)
        p = compare(got.sr, want.sr)
        row = {"image": name, "lr": f"{lr.shape[0]}x{lr.shape[1]}", "max_abs": p.max_abs, "mean_abs": p.mean_abs,
               "psnr_db": _num(p.psnr), "pass": passes(precision, p.max_abs, p.psnr),
               "seconds": got.seconds, "reference_seconds": want.seconds}
        if shared:
            x = prepare_inputs(lr, ref)
            row["matching"] = compare_matching(reference.model, x.lr_up, x.ref, index)
            row["pass"] = row["pass"] and row["matching"]["near_ties_only"]   # a real mismatch is a failure
        if hr is not None:
            a, b = to_uint8(got.sr), to_uint8(want.sr)
            if hr.shape == a.shape:
                row.update(psnr_y=psnr_y(a, hr), ssim_y=ssim_y(a, hr),
                           reference_psnr_y=psnr_y(b, hr), reference_ssim_y=ssim_y(b, hr))
            else:
                row["hr_note"] = f"HR {hr.shape[0]}x{hr.shape[1]} is not the SR's {a.shape[0]}x{a.shape[1]}: no quality"
        rows.append(row)
    ref_desc = dict(reference.describe())
    if shared:
        ref_desc["correspondence"] = "the backend's own (its matching index), compared separately"
    return {"backend": desc, "reference": ref_desc, "criterion": criterion(precision),
            "images": rows, "pass": all(r["pass"] for r in rows)}


class SharedCorrespondence:
    """The correspondence a backend computed, for the PyTorch reference to use (see export.matching for why):
    an ONNX Runtime graph's RrsrPatchMatch index (an extra output of a second session), or the PyTorch fast path's
    (its compiled CCN sums in another order than eager, so near-ties may flip)."""

    def __init__(self, index_fn):
        self._index_fn = index_fn

    @classmethod
    def for_backend(cls, desc: dict, reference: Runner, runner: Optional[Runner] = None
                    ) -> Optional["SharedCorrespondence"]:
        if not hasattr(reference, "model"):
            return None
        if desc.get("backend") == "torch" and "compile" in desc and desc.get("precision") == "fp32" and runner:
            return cls(lambda lr, ref: runner.match_index(prepare_inputs(lr, ref)))
        if desc.get("backend") != "ort" or desc.get("matching") != "streaming":
            return None
        import onnx

        from export.check import ort_session
        proto = with_index_output(onnx.load(desc["model"]))
        if proto is None:
            return None
        session = ort_session(proto, providers=desc.get("providers"), library=desc.get("custom_op_library"))
        name = index_output(proto)
        return cls(lambda lr, ref: session.run([name], to_feeds(prepare_inputs(lr, ref)))[0])

    def index(self, lr: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return self._index_fn(lr, ref)


def format_report(rep: dict) -> str:
    b = rep["backend"]
    lines = [f"{b['backend']} {b['precision']} on {b['device']} ({b['model']}) vs PyTorch FP32 on "
             f"{rep['reference']['device']}; pass if {rep['criterion']}",
             f"{'image':<14}{'LR':>9}{'max abs':>11}{'mean abs':>11}{'PSNR dB':>9}{'PSNR_Y/SSIM_Y backend':>24}"
             f"{'PSNR_Y/SSIM_Y torch':>22}{'time s':>8}  verdict"]
    for r in rep["images"]:
        q = (f"{r['psnr_y']:>15.2f}/{r['ssim_y']:.4f}{r['reference_psnr_y']:>15.2f}/{r['reference_ssim_y']:.4f}"
             if "psnr_y" in r else f"{'-':>24}{'-':>22}")
        psnr = r["psnr_db"] if isinstance(r["psnr_db"], str) else f"{r['psnr_db']:.2f}"
        lines.append(f"{r['image']:<14}{r['lr']:>9}{r['max_abs']:>11.3e}{r['mean_abs']:>11.3e}{psnr:>9}{q}"
                     f"{r['seconds']:>8.2f}  {'ok' if r['pass'] else 'FAIL'}")
    if "correspondence" in rep["reference"]:
        lines.append("the PyTorch reference used the backend's correspondence; that correspondence vs PyTorch's own:")
        lines += [f"  {r['image']}: {format_matching(r['matching'])}" for r in rep["images"] if "matching" in r]
    lines.append("PASS" if rep["pass"] else f"FAIL ({rep['criterion']} not met)")
    return "\n".join(lines)


def _pairs(lr, ref, hr, samples):
    if lr or ref:
        if len(lr) != len(ref):
            raise click.UsageError(f"give one --ref per --lr ({len(lr)} --lr, {len(ref)} --ref)")
        if hr and len(hr) != len(lr):
            raise click.UsageError(f"give one --hr per --lr, or none ({len(lr)} --lr, {len(hr)} --hr)")
        hr = hr or [None] * len(lr)
        return [(Path(l).stem, load_rgb(l), load_rgb(r), load_rgb(h) if h else None) for l, r, h in zip(lr, ref, hr)]
    found = sample_pairs(Path(samples))
    if not found:
        raise click.ClickException(f"no <name>_lr.png + <name>_ref.png pairs in {samples}")
    return [(n, load_rgb(l), load_rgb(r), load_rgb(h) if h else None) for n, l, r, h in found]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@model_options
@click.option("--lr", multiple=True, type=click.Path(dir_okay=False), help="LR image (repeatable). Default: the bundled samples.")
@click.option("--ref", multiple=True, type=click.Path(dir_okay=False), help="Reference image, one per --lr.")
@click.option("--hr", multiple=True, type=click.Path(dir_okay=False), help="Ground truth, one per --lr (optional): adds PSNR_Y/SSIM_Y.")
@click.option("--samples", type=click.Path(file_okay=False), default=str(SAMPLES), show_default="bundled",
              help="Folder of <name>_lr.png / _ref.png [/ _hr.png] used when no --lr is given.")
@click.option("--ref-device", default="cpu", show_default=True,
              help="Device of the PyTorch FP32 reference (on CUDA, TF32 is switched off for it).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON here.")
@click_errors
def main(engine, onnx_path, ckpt, feature_ckpt, vgg_ckpt, plugins, backend, precision, device, torch_kernels, compile_,
         lr, ref, hr, samples, ref_device, json_path):
    """Compare a backend's SR with PyTorch FP32's (from --ckpt): max/mean abs error and PSNR, plus PSNR_Y/SSIM_Y
    of both against the HR when given. Exit code 1 when the criterion is not met."""
    if ckpt is None:
        raise click.UsageError("--ckpt is required: the PyTorch FP32 model is the reference")
    pairs = _pairs(list(lr), list(ref), list(hr), samples)
    if ref_device != "cpu":
        strict_fp32()
    files = model_files(engine, onnx_path, ckpt, feature_ckpt, vgg_ckpt, plugins, precision, torch_kernels, compile_)
    with TorchLoader(ckpt, feature_ckpt, vgg_ckpt, "fp32", ref_device, kernels="reference").load() as reference:
        choice = load_runner(backend, files, device)
        click.echo(f"backend: {choice.reason}", err=True)
        with choice.runner as runner:
            rep = parity_report(runner, reference, pairs)
    click.echo(format_report(rep))
    if json_path:
        Path(json_path).write_text(json.dumps(rep, indent=2) + "\n")
        click.echo(f"wrote {json_path}", err=True)
    if not rep["pass"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
