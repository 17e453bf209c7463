"""python -m runtime.infer: super-resolve one LR + reference pair (or two folders of them) with any backend.

    python -m runtime.infer --lr lr.png --ref ref.png --out sr.png --onnx rrsr.onnx
    python -m runtime.infer --lr lr_dir/ --ref ref_dir/ --out sr_dir/ --engine rrsr.engine --format npy
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np

from rrsr_model.images import load_rgb, save_rgb, to_uint8

from .backends import load_runner, super_resolve
from .cli_common import click_errors, model_files, model_options

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OUT_FORMATS = ("png", "npy")


def out_format(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    if ext not in OUT_FORMATS:
        raise click.BadParameter(f"{path}: output must end in .png (uint8, clamped and rounded) or .npy "
                                 f"(float32 (3, H, W), unclamped)", param_hint="--out")
    return ext


def folder_pairs(lr_dir: Path, ref_dir: Path) -> list[tuple[str, Path, Path]]:
    """(stem, lr, ref) for every image in ``lr_dir``; the reference is the file of the same name in ``ref_dir``
    (or of the same stem with another image extension)."""
    pairs, missing = [], []
    for lr in sorted(p for p in lr_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file()):
        cands = [ref_dir / lr.name] + [ref_dir / (lr.stem + e) for e in IMAGE_EXTS]
        ref = next((c for c in cands if c.is_file()), None)
        if ref is None:
            missing.append(lr.name)
        else:
            pairs.append((lr.stem, lr, ref))
    if missing:
        raise click.ClickException(f"no reference in {ref_dir} for {len(missing)} LR image(s): "
                                   f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if not pairs:
        raise click.ClickException(f"no images ({', '.join(IMAGE_EXTS)}) in {lr_dir}")
    return pairs


def write_sr(sr: np.ndarray, path: Path) -> None:
    """Write atomically (temporary file + rename): a failure never leaves a half-written or clobbered output."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        if path.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(sr, dtype=np.float32))
        else:
            save_rgb(to_uint8(sr), tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read(path: Path):
    try:
        return load_rgb(path)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lr", "lr_path", required=True, type=click.Path(), help="LR image, or a folder of LR images.")
@click.option("--ref", "ref_path", required=True, type=click.Path(),
              help="Reference image, or a folder with a reference of the same file name per LR.")
@click.option("--out", "out_path", required=True, type=click.Path(),
              help="SR file (.png: uint8, clamped and rounded; .npy: float32 (3,H,W), unclamped), or a folder.")
@model_options
@click.option("--format", "fmt", type=click.Choice(OUT_FORMATS), default="png", show_default=True,
              help="Folder mode: output format (files named <LR stem>.<format>).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (otherwise they are an error, checked before any work).")
@click.option("--quiet", is_flag=True, help="No progress bar or backend line.")
@click_errors
def main(lr_path, ref_path, out_path, engine, onnx_path, ckpt, feature_ckpt, vgg_ckpt, plugins, backend, precision,
         device, torch_kernels, compile_, fmt, force, quiet):
    """Super-resolve LR images x4 with a reference, pre-processed exactly as rrsr_model.super_resolve
    (PIL-bicubic LR-up, reference mod-4 cropped and zero-padded, SR cropped back to 4x the LR)."""
    lr_path, ref_path, out_path = Path(lr_path), Path(ref_path), Path(out_path)
    if lr_path.is_dir():
        if not ref_path.is_dir():
            raise click.BadParameter(f"--lr is a folder, so --ref must be one too ({ref_path} is not)", param_hint="--ref")
        if out_path.exists() and not out_path.is_dir():
            raise click.BadParameter(f"--lr is a folder, so --out must be a folder ({out_path} is a file)", param_hint="--out")
        jobs = [(lr, ref, out_path / f"{stem}.{fmt}") for stem, lr, ref in folder_pairs(lr_path, ref_path)]
    else:
        for p, what in ((lr_path, "LR"), (ref_path, "reference")):
            if not p.is_file():
                raise click.ClickException(f"{what} image not found: {p}")
        out_format(out_path)
        parent = out_path.parent if str(out_path.parent) else Path(".")
        if not parent.is_dir():
            raise click.ClickException(f"output folder {parent} does not exist")
        jobs = [(lr_path, ref_path, out_path)]
    existing = [str(o) for _, _, o in jobs if o.exists()]
    if existing and not force:
        raise click.ClickException(f"{len(existing)} output(s) exist ({', '.join(existing[:4])}"
                                   f"{' ...' if len(existing) > 4 else ''}); pass --force to overwrite")
    files = model_files(engine, onnx_path, ckpt, feature_ckpt, vgg_ckpt, plugins, precision, torch_kernels, compile_)
    if not files.given():
        raise click.UsageError("no model given: pass --engine, --onnx or --ckpt")
    choice = load_runner(backend, files, device)
    runner = choice.runner
    if not quiet:
        d = runner.describe()
        click.echo(f"backend: {choice.reason} — {d['backend']} {d['precision']} on {d['device']}, {d['model']}", err=True)
        for s in choice.skipped:
            click.echo(f"  skipped {s}", err=True)
        if precision != "fp32" and d["backend"] != "torch":
            click.echo(f"  note: --precision applies to the torch backend; {d['backend']} runs the "
                       f"{d['precision']} {'graph' if d['backend'] == 'ort' else 'engine'} as given", err=True)
        if compile_ and d["backend"] != "torch":
            click.echo(f"  note: --compile applies to the torch backend; {d['backend']} was picked "
                       f"(pass --backend torch for the PyTorch fast path)", err=True)
        if "compile" in d:
            click.echo(f"  fast path: {d['compile']}", err=True)
    if lr_path.is_dir():
        out_path.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm
    with runner:
        bar = tqdm(jobs, desc="super-resolving", unit="img", disable=quiet or len(jobs) == 1, file=sys.stderr)
        for lr_p, ref_p, out_p in bar:
            lr, ref = _read(lr_p), _read(ref_p)
            try:
                res = super_resolve(runner, lr, ref)
            except (ValueError, MemoryError) as e:
                raise click.ClickException(f"{lr_p} + {ref_p}: {e}") from None
            write_sr(res.sr, out_p)
            if not quiet and len(jobs) == 1:
                click.echo(f"wrote {out_p} ({res.sr.shape[2]}x{res.sr.shape[1]}, {res.seconds:.2f} s)", err=True)
    if not quiet and len(jobs) > 1:
        click.echo(f"wrote {len(jobs)} SR image(s) to {out_path}/", err=True)


if __name__ == "__main__":
    main()
