"""The main job on the embedded defaults: super-resolve the bundled sample pairs with the demo checkpoint,
print PSNR/SSIM (Y, 4-px border) of bicubic and of the SR against the ground truth, and write the SR images
and side-by-side PNGs (bicubic | SR | reference | ground truth).

    python -m rrsr_model.demo [--ckpt rrsr.pth] [--out outputs/demo] [--device cpu]
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import torch

from .checkpoint import CheckpointError, load_model
from .images import load_rgb, pil_bicubic, save_rgb, to_uint8
from .inference import super_resolve
from .metrics import psnr_y, ssim_y

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_CKPT = ASSETS / "demo_rrsr.pth"
SAMPLES = ASSETS / "samples"


def sample_pairs(folder: Path = SAMPLES) -> list[tuple[str, Path, Path, Path | None]]:
    """(name, lr, ref, hr-or-None) for every ``<name>_lr.png`` with a ``<name>_ref.png`` beside it."""
    pairs = []
    for lr in sorted(folder.glob("*_lr.png")):
        name = lr.name[: -len("_lr.png")]
        ref, hr = folder / f"{name}_ref.png", folder / f"{name}_hr.png"
        if ref.is_file():
            pairs.append((name, lr, ref, hr if hr.is_file() else None))
    return pairs


def side_by_side(*images: np.ndarray) -> np.ndarray:
    h = max(i.shape[0] for i in images)
    gap = np.full((h, 4, 3), 255, np.uint8)
    cols = []
    for i in images:
        pad = np.zeros((h, i.shape[1], 3), np.uint8)
        pad[: i.shape[0]] = i
        cols += [pad, gap]
    return np.concatenate(cols[:-1], axis=1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--ckpt", type=click.Path(dir_okay=False), default=str(DEMO_CKPT), show_default="the bundled demo",
              help="An rrsr bundle (rrsr.pth).")
@click.option("--samples", type=click.Path(file_okay=False), default=str(SAMPLES), show_default="bundled",
              help="Folder of <name>_lr.png / <name>_ref.png [/ <name>_hr.png] triples.")
@click.option("--out", type=click.Path(file_okay=False), default="outputs/demo", show_default=True,
              help="Where the SR and side-by-side PNGs go (files of the same name are replaced).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
def main(ckpt, samples, out, device):
    """Super-resolve the sample pairs with RRSR (PyTorch FP32) and report quality against bicubic."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if Path(ckpt) == DEMO_CKPT and not DEMO_CKPT.is_file():
        raise click.ClickException(f"the demo checkpoint {DEMO_CKPT} is missing; recreate it with "
                                   f"`python scripts/train_demo.py`")
    try:
        model = load_model(ckpt, device=device)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    pairs = sample_pairs(Path(samples))
    if not pairs:
        raise click.ClickException(f"no <name>_lr.png + <name>_ref.png pairs in {samples}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    click.echo(f"model {ckpt} (variant {model.cfg.variant}) on {device}; {len(pairs)} sample pair(s)")
    click.echo(f"{'image':<12} {'LR':>9} {'bicubic PSNR/SSIM':>19} {'RRSR PSNR/SSIM':>17} {'time':>8}")
    for name, lr_p, ref_p, hr_p in pairs:
        try:
            lr, ref = load_rgb(lr_p), load_rgb(ref_p)
            hr = load_rgb(hr_p) if hr_p else None
        except (ValueError, FileNotFoundError) as e:
            raise click.ClickException(str(e)) from None
        t = time.perf_counter()
        sr = to_uint8(super_resolve(model, lr, ref))
        dt = time.perf_counter() - t
        bic = pil_bicubic(lr, sr.shape[:2])
        save_rgb(sr, out / f"{name}_sr.png")
        panels = [bic, sr, ref] + ([hr] if hr is not None else [])
        save_rgb(side_by_side(*panels), out / f"{name}_side_by_side.png")
        if hr is not None and hr.shape == sr.shape:
            q = f"{psnr_y(bic, hr):7.2f}/{ssim_y(bic, hr):.4f}  {psnr_y(sr, hr):7.2f}/{ssim_y(sr, hr):.4f}"
        else:
            q = f"{'(no ground truth)':>37}"
        click.echo(f"{name:<12} {lr.shape[1]:>4}x{lr.shape[0]:<4} {q} {dt:7.2f}s")
    click.echo(f"wrote SR and side-by-side PNGs to {out}/  (panels: bicubic | RRSR | reference | ground truth)")


if __name__ == "__main__":
    main()
