"""rrsr-convert-checkpoint: the authors' three files -> one ``rrsr.pth`` bundle."""
from __future__ import annotations

import click

from .checkpoint import CheckpointError, load_official, save_bundle
from .config import VARIANTS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--net-g", "net_g", required=True, type=click.Path(dir_okay=False),
              help="Official generator file (network_mse.pth or network_gan.pth).")
@click.option("--feature-ckpt", required=True, type=click.Path(dir_okay=False),
              help="Official correspondence network file (feature_extraction.pth).")
@click.option("--vgg-ckpt", required=True, type=click.Path(dir_okay=False),
              help="torchvision VGG19 ImageNet state dict (e.g. vgg19-dcbb9e9d.pth); only features.0-10 are used.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Bundle to write (e.g. rrsr.pth).")
@click.option("--variant", type=click.Choice(sorted(VARIANTS)), default=None,
              help="Expected variant; detected from the generator keys when omitted.")
@click.option("--fp16", is_flag=True, help="Store weights as FP16 (half the size; loaded back as FP32).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def main(net_g, feature_ckpt, vgg_ckpt, out, variant, fp16, force):
    """Convert the official RRSR / C2-Matching checkpoint files into one rrsr bundle."""
    try:
        model = load_official(net_g, feature_ckpt, vgg_ckpt, variant)
        meta = {"source": {"net_g": str(net_g), "feature_ckpt": str(feature_ckpt), "vgg_ckpt": str(vgg_ckpt)},
                "converted_by": "rrsr-convert-checkpoint"}
        path = save_bundle(model, out, metadata=meta, fp16=fp16, overwrite=force)
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    n = sum(p.numel() for p in model.net_g.parameters())
    click.echo(f"wrote {path} (variant {model.cfg.variant}, generator {n:,} parameters, "
               f"{'fp16' if fp16 else 'fp32'} storage)")


if __name__ == "__main__":
    main()
