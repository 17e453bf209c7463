"""Options and helpers shared by the runtime commands (model files, backend choice, sizes, error mapping)."""
from __future__ import annotations

import functools
import re

import click

from .backends import BACKENDS, BackendError, ModelFiles
from .sidecar import SidecarError

_SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_size(text: str) -> tuple[int, int]:
    m = _SIZE.match(text.strip().lower())
    if not m:
        raise click.BadParameter(f"expected HxW (e.g. 40x40), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def size_option(ctx, param, value):
    return None if value is None else parse_size(value)


def sizes_option(ctx, param, value):
    return None if value is None else [parse_size(s) for s in value.split(",") if s.strip()]


def model_options(f):
    """--engine/--onnx/--ckpt (+ --feature-ckpt/--vgg-ckpt, --plugins), --backend, --precision, --device,
    --torch-kernels, --compile."""
    opts = [
        click.option("--engine", type=click.Path(dir_okay=False), help="TensorRT engine (rrsr-build-engine; needs its .json sidecar)."),
        click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="ONNX graph (rrsr-export), run in ONNX Runtime."),
        click.option("--ckpt", type=click.Path(dir_okay=False), help="rrsr bundle, or the official generator file (with --feature-ckpt, --vgg-ckpt), run in PyTorch."),
        click.option("--feature-ckpt", type=click.Path(dir_okay=False), help="Official feature_extraction.pth (with an official --ckpt)."),
        click.option("--vgg-ckpt", type=click.Path(dir_okay=False), help="torchvision VGG19 state dict (with an official --ckpt)."),
        click.option("--plugins", type=click.Path(dir_okay=False), help="TensorRT plugin library [default: the one recorded in the engine's sidecar, else build/plugins-trt/librrsr_trt_plugins_dynamic.so]."),
        click.option("--backend", type=click.Choice(BACKENDS + ("auto",)), default="auto", show_default=True,
                     help="auto: the fastest available for the given files (trt > ort-cuda > torch-cuda > ort-cpu > torch-cpu)."),
        click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
                     help="PyTorch only (FP16 policy of rrsr_model.precision); ONNX graphs and engines carry their own."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--torch-kernels", type=click.Choice(["auto", "compiled", "reference"]), default="auto",
                     show_default=True,
                     help="PyTorch on CUDA: the project's compiled CUDA kernels (plugins/torch, built on first use) or "
                          "PyTorch's reference ops; auto = compiled for --precision fp16, reference for fp32."),
        click.option("--compile", "compile_", is_flag=True,
                     help="PyTorch only, the fast path: torch.compile of the model's stages (the custom ops stay "
                          "opaque) and, on CUDA, one CUDA graph per input shape (a new shape compiles and/or captures "
                          "once, and says so); falls back with the reason where compiling or capturing is unavailable."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def model_files(engine, onnx_path, ckpt, feature_ckpt, vgg_ckpt, plugins, precision,
                torch_kernels: str = "auto", compile_: bool = False) -> ModelFiles:
    return ModelFiles(engine=engine, onnx=onnx_path, ckpt=ckpt, feature_ckpt=feature_ckpt, vgg_ckpt=vgg_ckpt,
                      plugins=plugins, precision=precision, torch_kernels=torch_kernels, compile=compile_)


def click_errors(fn):
    """Turn the runtime's own errors (which name the file and the reason) into click errors, without traces."""
    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except (BackendError, SidecarError, FileNotFoundError, MemoryError, ValueError) as e:
            raise click.ClickException(str(e)) from None
    return wrapper
