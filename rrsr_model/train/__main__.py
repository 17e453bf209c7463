"""``rrsr-train``: restoration training of RRSR / C2-Matching (spec §5.3), L1 + RTRR, optionally GAN."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

import click
import torch
from click.core import ParameterSource

from .. import VARIANTS, build_model
from ..checkpoint import (CheckpointError, plain_state, is_bundle, load_bundle, load_official, read_state_file,
                          strict_load, vgg19_from_torchvision)
from ..network import RRSR
from .data import DataError, RefSRTrainSet, check_gt_size
from .losses import load_perceptual_vgg
from .run import RunFiles, train
from .trainer import Trainer, TrainConfig

# CLI options that define the run (TrainConfig fields); a resumed run takes them from its state file.
CONFIG_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "pixel_weight")
_Existing = click.Path(exists=True, dir_okay=False, path_type=Path)
_Folder = click.Path(exists=True, file_okay=False, path_type=Path)


def _note(msg: str) -> None:
    click.secho(f"NOTE: {msg}", fg="yellow", bold=True, err=True)


def _gt_size(ctx, param, value: int) -> int:
    try:
        return check_gt_size(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _milestones(ctx, param, value: str) -> tuple[int, ...]:
    try:
        steps = tuple(sorted(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated iteration numbers, got {value!r}") from None
    if any(s < 1 for s in steps):
        raise click.BadParameter(f"milestones must be positive iteration numbers, got {value!r}")
    return steps


def _device(value: str) -> torch.device:
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(value)
    except RuntimeError:
        raise click.BadParameter(f"not a torch device: {value!r}", param_hint="'--device'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA was asked for but is not available", param_hint="'--device'")
    return dev


def make_model(init: Optional[Path], feature_ckpt: Optional[Path], vgg_ckpt: Optional[Path],
               variant: Optional[str], default_variant: str) -> RRSR:
    """The network to start from: ``init`` (bundle or official generator file), else a fresh ``variant``
    whose CCN / VGG19 come from the given files or stay at their (seeded) random init."""
    if init is None:
        model = build_model(variant or default_variant)
        if feature_ckpt is not None:
            state = plain_state(read_state_file(feature_ckpt, "feature extractor"))
            strict_load(model.net_extractor, state, "feature extractor (CCN)", feature_ckpt)
        else:
            _note("no --feature-ckpt: the CCN is RANDOM, so matching is meaningless and the references barely "
                  "help. Pass C2-Matching's feature_extraction.pth for real training.")
        if vgg_ckpt is not None:
            vgg = vgg19_from_torchvision(read_state_file(vgg_ckpt, "VGG19"), vgg_ckpt)
            strict_load(model.net_map.vgg, vgg, "VGG19", vgg_ckpt)
        else:
            _note("no --vgg-ckpt: the reference-feature VGG19 is RANDOM (ImageNet weights cannot be downloaded "
                  "here). Pass a torchvision VGG19 state dict (vgg19-dcbb9e9d.pth) for real training.")
        return model
    obj = read_state_file(init, "model")
    if is_bundle(obj):
        if feature_ckpt is not None:
            raise click.UsageError(f"--init {init} is a bundle that already holds the CCN; drop --feature-ckpt")
        if vgg_ckpt is not None:
            _note(f"--init {init} is a bundle: its own VGG19 is kept for the reference features; --vgg-ckpt "
                  f"is used only by the perceptual loss (--gan)")
        return load_bundle(obj, init, variant)
    missing = [o for o, v in (("--feature-ckpt", feature_ckpt), ("--vgg-ckpt", vgg_ckpt)) if v is None]
    if missing:
        raise click.UsageError(f"--init {init} is an official generator file; it also needs "
                               f"{' and '.join(missing)} (feature_extraction.pth and a torchvision VGG19 state dict)")
    return load_official(obj, feature_ckpt, vgg_ckpt, variant)


def _resume_config(ctx: click.Context, state: dict, source: Path, values: dict) -> TrainConfig:
    stored = TrainConfig.from_dict(state["config"])
    for name in CONFIG_OPTIONS:
        if name == "iters" or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        if values[name] != getattr(stored, name):
            opt = "--" + name.replace("_", "-")
            raise click.UsageError(f"{opt} {values[name]} differs from the resumed run's {getattr(stored, name)} "
                                   f"({source}); drop {opt} or start a new run")
    if ctx.get_parameter_source("iters") == ParameterSource.COMMANDLINE:
        stored = dataclasses.replace(stored, iters=values["iters"])
    return stored


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--data", type=_Folder, required=True, help="Folder of training images (PNG/JPG), e.g. CUFED/input.")
@click.option("--ref-data", type=_Folder, help="Folder of references with the same file names, e.g. CUFED/ref. "
              "Without it, references are synthesised from the training images (warped overlapping crops).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: models/ (bundles), states/ (for --resume), train.log, options.json.")
@click.option("--init", type=_Existing, help="Start from a bundle or an official generator file (the latter with "
              "--feature-ckpt and --vgg-ckpt). Default: a fresh network of --variant.")
@click.option("--feature-ckpt", type=_Existing, help="CCN weights (C2-Matching's feature_extraction.pth).")
@click.option("--vgg-ckpt", type=_Existing, help="torchvision VGG19 state dict (vgg19-dcbb9e9d.pth): the "
              "reference features and, with --gan, the perceptual loss.")
@click.option("--resume", type=_Existing, help="Continue a run from its states/iterNNNNNNN.state.")
@click.option("--variant", type=click.Choice(sorted(VARIANTS)), default="rrsr")
@click.option("--iters", type=click.IntRange(min=1), default=TrainConfig.iters, help="Total iterations.")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size)
@click.option("--gt-size", type=int, default=TrainConfig.gt_size, callback=_gt_size,
              help="HR patch size (a multiple of 4, at least 24).")
@click.option("--seed", type=click.IntRange(min=0), default=TrainConfig.seed)
@click.option("--lr-g", type=float, default=TrainConfig.lr_g, help="Generator learning rate.")
@click.option("--lr-offset", type=float, default=TrainConfig.lr_offset, help="Offset convs at 4x.")
@click.option("--lr-relu2-offset", type=float, default=TrainConfig.lr_relu2_offset, help="Offset convs at 2x.")
@click.option("--lr-relu3-offset", type=float, default=TrainConfig.lr_relu3_offset, help="Offset convs at 1x.")
@click.option("--lr-d", type=float, default=TrainConfig.lr_d, help="Discriminator learning rate (--gan).")
@click.option("--milestones", default=",".join(map(str, TrainConfig.milestones)), callback=_milestones,
              help="Iterations after which the learning rates are multiplied by --gamma.")
@click.option("--gamma", type=float, default=TrainConfig.gamma)
@click.option("--rtrr-weight", type=float, default=TrainConfig.rtrr_weight, help="Weight of the RTRR L1 term.")
@click.option("--gan/--no-gan", default=False, help="Train the GAN model (perceptual + WGAN-GP; needs --vgg-ckpt).")
@click.option("--gan-start", type=click.IntRange(min=0), default=TrainConfig.gan_start,
              help="With --gan: iterations of L1 + RTRR only before the GAN losses start.")
@click.option("--perceptual-weight", type=float, default=TrainConfig.perceptual_weight)
@click.option("--gan-weight", type=float, default=TrainConfig.gan_weight)
@click.option("--gp-weight", type=float, default=TrainConfig.gp_weight)
@click.option("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N.")
@click.option("--workers", type=click.IntRange(min=0), default=min(6, os.cpu_count() or 1),
              help="Data-loading processes.")
@click.option("--save-every", type=click.IntRange(min=1), default=5000, help="Checkpoint period (iterations).")
@click.option("--log-every", type=click.IntRange(min=1), default=100, help="train.log period (iterations).")
@click.option("--keep", type=click.IntRange(min=0), default=5, help="Periodic checkpoints kept (0: all).")
@click.option("--force", is_flag=True, help="Allow overwriting files of an earlier run in --out.")
@click.pass_context
def main(ctx: click.Context, data, ref_data, out, init, feature_ckpt, vgg_ckpt, resume, device, workers,
         save_every, log_every, keep, force, **config):
    """Train RRSR on reference-SR pairs (the authors' stage-3 recipe: L1 + 0.6 * RTRR, Adam, 255k
    iterations; --gan adds the perceptual and WGAN-GP losses after --gan-start iterations)."""
    dev = _device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True   # fixed patch size, as the authors' train.py
    try:
        if resume is not None:
            clash = [o for o, v in (("--init", init), ("--feature-ckpt", feature_ckpt)) if v is not None]
            if clash:
                raise click.UsageError(f"--resume takes the model from its state file; drop {', '.join(clash)}")
            state = read_state_file(resume, "training state")
            cfg = _resume_config(ctx, state, resume, config)
        else:
            cfg = TrainConfig(**config)
        dataset = RefSRTrainSet(data, ref_data, cfg.gt_size, cfg.seed)
        vgg = load_perceptual_vgg(vgg_ckpt) if cfg.gan else None
        if resume is not None:
            trainer = Trainer.from_state(state, dev, vgg, source=resume)
            trainer.cfg = cfg
            if trainer.iteration >= cfg.iters:
                raise click.UsageError(f"{resume} is at iteration {trainer.iteration}; pass --iters above that "
                                       f"to continue")
        else:
            torch.manual_seed(cfg.seed)
            variant = config["variant"] if ctx.get_parameter_source("variant") == ParameterSource.COMMANDLINE else None
            model = make_model(init, feature_ckpt, vgg_ckpt, variant, cfg.variant)
            cfg = dataclasses.replace(cfg, variant=model.cfg.variant)
            trainer = Trainer(model, cfg, dev, vgg)
        files = RunFiles(out, keep=keep, force=force)
        files.prepare(resuming=resume is not None,
                      options={"config": cfg.to_dict(), "data": str(data), "ref_data": ref_data and str(ref_data),
                               "init": init and str(init), "feature_ckpt": feature_ckpt and str(feature_ckpt),
                               "vgg_ckpt": vgg_ckpt and str(vgg_ckpt), "resume": resume and str(resume),
                               "device": str(dev)})
    except (DataError, CheckpointError, FileNotFoundError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"training {cfg.variant} on {len(dataset)} image(s) from {data}, device {dev}, "
               f"iterations {trainer.iteration + 1}..{cfg.iters}, batch {cfg.batch_size}, gt {cfg.gt_size}"
               f"{', GAN after ' + str(cfg.gan_start) if cfg.gan else ''}", err=True)
    try:
        final = train(trainer, dataset, files, workers=workers, save_every=save_every, log_every=log_every)
    except (FileExistsError, FloatingPointError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"final bundle: {final}")


if __name__ == "__main__":
    main()
