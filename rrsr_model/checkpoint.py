"""Checkpoints: strict loading of the authors' files and the project's one-file bundle.

Official files (flat state dicts, as the authors save them):
  * generator ``network_mse.pth`` / ``network_gan.pth`` -> ``RRSR.net_g``
  * ``feature_extraction.pth`` (CCN)                   -> ``RRSR.net_extractor``
  * a torchvision VGG19 state dict supplied by the user -> ``RRSR.net_map.vgg`` (convs features.0..10)

Bundle ``rrsr.pth``: ``{"format": "rrsr-bundle", "format_version", "variant", "config", "net_g",
"net_extractor", "vgg", "storage_dtype", "metadata"}``; FP16 storage is cast back to FP32 on load.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .blocks.vgg import VGG19_CONV_INDICES
from .config import RRSRConfig, get_config
from .network import RRSR

BUNDLE_FORMAT = "rrsr-bundle"
BUNDLE_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the offending keys."""


def read_state_file(path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read {what} checkpoint {path}: not a PyTorch checkpoint or corrupt "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} checkpoint {path} holds a {type(obj).__name__}, expected a state dict")
    return obj


def plain_state(obj: dict) -> dict:
    """Unwrap common wrappers ({'params': sd}, {'state_dict': sd}) and strip DataParallel's 'module.'."""
    for key in ("params", "state_dict", "params_ema"):
        if key in obj and isinstance(obj[key], dict) and not any(torch.is_tensor(v) for v in obj.values()):
            obj = obj[key]
            break
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _fmt(keys, limit=12) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def strict_load(module: nn.Module, state: dict, what: str, source) -> None:
    """load_state_dict(strict=True) with one error that lists missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and torch.is_tensor(state[k]) and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{what} checkpoint {source} does not match the model"]
        if missing:
            parts.append(f"  missing keys ({len(missing)}): {_fmt(missing)}")
        if unexpected:
            parts.append(f"  unexpected keys ({len(unexpected)}): {_fmt(unexpected)}")
        if shapes:
            parts.append(f"  wrongly shaped ({len(shapes)}): " + "; ".join(shapes[:8]) + (" ..." if len(shapes) > 8 else ""))
        raise CheckpointError("\n".join(parts))
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)


def detect_variant(net_g_state: dict) -> str:
    """Guess the variant from generator keys (the official files carry no config)."""
    p = "dyn_agg_restore."
    if p + "medium_dyn_agg.weight" in net_g_state:
        return "c2-matching"
    if p + "medium_dyn_agg_third.weight" in net_g_state:
        return "rrsr"
    if p + "medium_dyn_agg_second.weight" in net_g_state:
        return "rrsr-s"
    raise CheckpointError("cannot tell the variant from the generator keys: none of "
                          "dyn_agg_restore.medium_dyn_agg{,_second,_third}.weight is present — is this an "
                          "RRSR / C2-Matching generator (network_mse.pth / network_gan.pth)?")


def vgg19_from_torchvision(state: dict, source) -> dict:
    """Pick VGG19 ``features.{0,2,5,7,10}`` from a torchvision VGG19 state dict (classifier etc. ignored)."""
    state = plain_state(state)
    if "features.28.weight" in state and "features.34.weight" not in state:
        raise CheckpointError(f"VGG19 checkpoint {source} looks like a VGG16 (features.28 is its last conv, no "
                              f"features.34): RRSR's reference features come from VGG19")
    out, missing = {}, []
    for i in VGG19_CONV_INDICES:
        for s in ("weight", "bias"):
            k = f"features.{i}.{s}"
            if k in state:
                out[k] = state[k]
            else:
                missing.append(k)
    if missing:
        raise CheckpointError(f"VGG19 checkpoint {source} lacks {_fmt(missing)}; expected a torchvision VGG19 "
                              f"state dict (keys features.N.weight / .bias)")
    return out


def is_bundle(obj: dict) -> bool:
    return obj.get("format") == BUNDLE_FORMAT


def load_official(net_g, feature_ckpt, vgg_ckpt, variant: Optional[str] = None) -> RRSR:
    """Build the model from the authors' files. Each path may also be an already loaded state dict."""
    def state(x, what):
        return plain_state(x if isinstance(x, dict) else read_state_file(x, what)), (x if not isinstance(x, dict) else "<dict>")

    g, g_src = state(net_g, "generator")
    if is_bundle(g):
        raise CheckpointError(f"{g_src} is an rrsr bundle, not an official generator file; load it with load_model()")
    found = detect_variant(g)
    if variant is not None and variant != found:
        raise CheckpointError(f"generator checkpoint {g_src} is a {found!r} network, but variant {variant!r} "
                              f"was asked for")
    model = RRSR(get_config(found))
    strict_load(model.net_g, g, "generator", g_src)
    f, f_src = state(feature_ckpt, "feature extractor")
    strict_load(model.net_extractor, f, "feature extractor (CCN)", f_src)
    v, v_src = state(vgg_ckpt, "VGG19")
    strict_load(model.net_map.vgg, vgg19_from_torchvision(v, v_src), "VGG19", v_src)
    return model


def bundle_state(model: RRSR, metadata: Optional[dict] = None, fp16: bool = False) -> dict:
    def sd(m):
        return {k: (v.half() if fp16 and v.is_floating_point() else v.float() if v.is_floating_point() else v)
                .detach().cpu().clone() for k, v in m.state_dict().items()}

    meta = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": str(torch.__version__)}
    meta.update(metadata or {})
    return {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "variant": model.cfg.variant,
            "config": model.cfg.to_dict(), "storage_dtype": "float16" if fp16 else "float32",
            "net_g": sd(model.net_g), "net_extractor": sd(model.net_extractor), "vgg": sd(model.net_map.vgg),
            "metadata": meta}


def save_bundle(model: RRSR, path, metadata: Optional[dict] = None, fp16: bool = False, overwrite: bool = False) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(bundle_state(model, metadata, fp16), tmp)
    tmp.replace(path)
    return path


def load_bundle(obj: dict, source, variant: Optional[str] = None) -> RRSR:
    version = obj.get("format_version")
    if version != BUNDLE_VERSION:
        raise CheckpointError(f"bundle {source} has format_version {version!r}; this code reads {BUNDLE_VERSION}")
    for key in ("config", "net_g", "net_extractor", "vgg"):
        if key not in obj:
            raise CheckpointError(f"bundle {source} lacks its {key!r} entry")
    cfg = RRSRConfig.from_dict(obj["config"])
    if variant is not None and variant != cfg.variant:
        raise CheckpointError(f"bundle {source} holds variant {cfg.variant!r}, but {variant!r} was asked for")
    model = RRSR(cfg)
    strict_load(model.net_g, obj["net_g"], "generator", source)
    strict_load(model.net_extractor, obj["net_extractor"], "feature extractor (CCN)", source)
    strict_load(model.net_map.vgg, obj["vgg"], "VGG19", source)
    return model


def load_model(ckpt, *, feature_ckpt=None, vgg_ckpt=None, variant: Optional[str] = None, device="cpu") -> RRSR:
    """Load a bundle (``rrsr.pth``) or the official generator file plus ``feature_ckpt`` and ``vgg_ckpt``.
    Returns the model in eval mode on ``device``."""
    obj = read_state_file(ckpt, "model")
    if is_bundle(obj):
        extra = [n for n, v in (("feature_ckpt", feature_ckpt), ("vgg_ckpt", vgg_ckpt)) if v is not None]
        if extra:
            raise ValueError(f"{ckpt} is a bundle that already contains every part; drop {', '.join(extra)}")
        model = load_bundle(obj, ckpt, variant)
    else:
        missing = [n for n, v in (("feature_ckpt", feature_ckpt), ("vgg_ckpt", vgg_ckpt)) if v is None]
        if missing:
            raise ValueError(f"{ckpt} is an official generator file; it also needs {' and '.join(missing)} "
                             f"(feature_extraction.pth and a torchvision VGG19 state dict), or convert the three "
                             f"files to one bundle with rrsr-convert-checkpoint")
        model = load_official(obj, feature_ckpt, vgg_ckpt, variant)
    return model.to(device).eval()
