"""rrsr-export: checkpoint -> ONNX with the rrsr custom ops (or standard ops), checked and validated."""
from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import click
import onnx

from rrsr_model import VARIANTS
from rrsr_model.checkpoint import CheckpointError, load_model

from .check import (custom_node_problems, format_census, fp16_policy_problems, op_census, run_checker,
                    tensorrt_problems)
from .matching import format_matching
from .metadata import sha256_file, write_metadata
from .onnx_export import DEFAULT_OPSET, FLAVOURS, ExportError, ExportOptions, export_model

_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _size(ctx, param, value):
    if value is None:
        return None
    m = _SIZE.match(value.strip().lower())
    if not m:
        raise click.BadParameter(f"expected HxW (e.g. 40x40), got {value!r}")
    return int(m.group(1)), int(m.group(2))


def _step(i: int, n: int, msg: str) -> None:
    click.echo(f"[{i}/{n}] {msg}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--ckpt", required=True, type=click.Path(dir_okay=False),
              help="rrsr bundle (rrsr.pth), or the official generator file with --feature-ckpt and --vgg-ckpt.")
@click.option("--feature-ckpt", type=click.Path(dir_okay=False), help="Official feature_extraction.pth.")
@click.option("--vgg-ckpt", type=click.Path(dir_okay=False), help="torchvision VGG19 state dict.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--variant", type=click.Choice(sorted(VARIANTS)), default=None,
              help="Expected variant (checked against the checkpoint).")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32",
              help="fp16 writes the mixed-precision graph of the FP16 policy (explicit casts).")
@click.option("--flavor", "flavour", type=click.Choice(FLAVOURS), default="plugin",
              help="plugin: MDCN and RAS as rrsr custom ops; standard: ONNX DeformConv + standard ops.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (18-22; standard needs >= 19).")
@click.option("--dynamic/--static", default=True, help="Dynamic LR height/width, or fixed to --lr-size.")
@click.option("--lr-size", default="40x40", callback=_size, help="LR size HxW traced with (fixed size with --static).")
@click.option("--min-lr", type=int, default=8, help="Smallest dynamic LR side.")
@click.option("--max-lr", type=int, default=1024, help="Largest dynamic LR side.")
@click.option("--batch", type=click.IntRange(min=1), default=1, help="Batch size (static).")
@click.option("--check/--no-check", default=True,
              help="Validate in ONNX Runtime against the PyTorch FP32 model at two sample sizes.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--verbose", is_flag=True, help="Show the exporter's own output.")
def main(ckpt, feature_ckpt, vgg_ckpt, out, variant, precision, flavour, opset, dynamic, lr_size, min_lr, max_lr,
         batch, check, force, verbose):
    """Export RRSR to ONNX (LR + LR-up + reference + valid size -> SR), with MDCN and RAS as custom ops."""
    out = Path(out)
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to overwrite it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise click.ClickException(f"output folder {parent} does not exist (or is not a folder)")
    if not os.access(parent, os.W_OK):
        raise click.ClickException(f"output folder {parent} is not writable")
    opts = ExportOptions(flavour=flavour, precision=precision, opset=opset, batch=batch, lr_size=lr_size, dynamic=dynamic,
                         min_lr=min_lr, max_lr=max_lr)
    try:
        opts.validate()
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if not verbose:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    n = 4 if check else 3
    _step(1, n, f"loading {ckpt}")
    try:
        model = load_model(ckpt, feature_ckpt=feature_ckpt, vgg_ckpt=vgg_ckpt, variant=variant)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    _step(2, n, f"tracing {model.cfg.variant} ({flavour} flavour, {precision}, opset {opset}, batch {batch}, "
                f"{'dynamic LR ' + str(min_lr) + '..' + str(max_lr) if dynamic else 'static LR %dx%d' % lr_size}); "
                f"this takes a minute")
    t = time.perf_counter()
    try:
        proto = export_model(model, opts, verbose=verbose)
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    t_export = time.perf_counter() - t
    _step(3, n, "checking the graph (onnx.checker full check, TensorRT operator census, op spec)")
    try:
        run_checker(proto)
    except onnx.checker.ValidationError as e:
        raise click.ClickException(f"the exported graph fails onnx.checker: {str(e).splitlines()[0]}") from None
    write_metadata(proto, {"ckpt": Path(ckpt).resolve(), "ckpt_sha256": sha256_file(ckpt),
                           **({"feature_ckpt": Path(feature_ckpt).resolve()} if feature_ckpt else {}),
                           **({"vgg_ckpt": Path(vgg_ckpt).resolve()} if vgg_ckpt else {})})
    problems = tensorrt_problems(proto) + custom_node_problems(proto)
    if precision == "fp16":
        problems += fp16_policy_problems(proto)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    click.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {len(proto.graph.node)} nodes, "
               f"export {t_export:.1f} s)")
    click.echo(f"op census: {format_census(op_census(proto))}")
    if problems:
        click.echo("TensorRT / op-spec / precision problems:\n  " + "\n  ".join(problems), err=True)
    if check:
        from .validate import criterion, validate
        sizes = [lr_size] if not dynamic else [lr_size, (max(min_lr, lr_size[0] // 2 + 3), max(min_lr, lr_size[1] - 5))]
        _step(4, n, f"validating against PyTorch FP32 at LR {', '.join('%dx%d' % s for s in sizes)}")
        results = validate(model, proto, sizes, batch)
        for r in results:
            verdict = "ok" if r.passes(precision) else f"FAIL ({criterion(precision)})"
            click.echo(f"  LR {r.lr_size[0]}x{r.lr_size[1]}: {r.parity}  [{r.runner}, {r.seconds:.2f} s] {verdict}")
            if r.matching is not None:
                click.echo(f"    (reference fed the graph's correspondence; {format_matching(r.matching)})")
        if precision == "fp16":
            click.echo("  note: ONNX Runtime's CPU provider runs FP16 operators it lacks in FP32, so these figures "
                       "bound the policy's casts, not GPU FP16 arithmetic; TensorRT FP16 engines are checked by "
                       "the runtime's parity command on a GPU")
        if not all(r.passes(precision) for r in results):
            raise click.ClickException(f"the exported graph does not match the PyTorch FP32 model "
                                       f"({criterion(precision)})")
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in the graph (listed above)")


if __name__ == "__main__":
    main()
