"""The engine sidecar (``<engine>.json``): what a TensorRT engine was built with and for, so a runner can refuse
an engine that would not run here (TensorRT version, GPU, plugin library) with the reason instead of crashing.
Pure Python: written by rrsr-build-engine, checked by the trt backend, testable without TensorRT."""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Optional

from export.metadata import sha256_file  # noqa: F401  (re-exported: runtime code hashes files through here)

FORMAT = "rrsr-engine-sidecar"
VERSION = 1
REQUIRED = ("format", "format_version", "tensorrt_version", "gpu_name", "gpu_sm", "precision", "profiles",
            "plugin_sha256", "engine_sha256")


class SidecarError(ValueError):
    """The sidecar is missing, unreadable, or says the engine does not fit this machine."""


def sidecar_path(engine) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def make_sidecar(*, tensorrt_version: str, gpu_name: str, gpu_sm: str, precision: str, profiles: list[dict],
                 engine_sha256: str, onnx_path=None, onnx_sha256: Optional[str] = None, plugin_library=None,
                 plugin_sha256: Optional[str] = None, target: str = "trt", extra: Optional[dict] = None) -> dict:
    """``profiles``: [{"min": [h, w], "opt": [h, w], "max": [h, w]}] as LR sizes. ``plugin_sha256`` None means
    the engine needs no plugin library. ``target`` "rtx": ``tensorrt_version`` is TensorRT-RTX's, ``gpu_name`` /
    ``gpu_sm`` describe the GPUs of the engine's ``compute_capabilities`` (in ``extra``)."""
    d = {"format": FORMAT, "format_version": VERSION,
         "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "target": target,
         "tensorrt_version": tensorrt_version, "gpu_name": gpu_name, "gpu_sm": gpu_sm, "precision": precision,
         "profiles": profiles, "engine_sha256": engine_sha256,
         "onnx": str(onnx_path) if onnx_path else None, "onnx_sha256": onnx_sha256,
         "plugin_library": str(plugin_library) if plugin_library else None, "plugin_sha256": plugin_sha256}
    d.update(extra or {})
    return d


def write_sidecar(engine, data: dict) -> Path:
    path = sidecar_path(engine)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_sidecar(engine) -> dict:
    path = sidecar_path(engine)
    if not path.is_file():
        raise SidecarError(f"engine sidecar {path} is missing; rrsr-build-engine writes it next to the engine "
                           f"(an engine runs only on the TensorRT version, GPU and plugin library it was built with, "
                           f"and the sidecar is how that is checked)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SidecarError(f"engine sidecar {path} is not readable JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SidecarError(f"{path} is not an rrsr engine sidecar (format {data.get('format') if isinstance(data, dict) else None!r})")
    if data.get("format_version") != VERSION:
        raise SidecarError(f"engine sidecar {path} has format_version {data.get('format_version')!r}; this code reads {VERSION}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise SidecarError(f"engine sidecar {path} lacks {', '.join(missing)}")
    return data


def check_engine_file(engine, data: dict) -> None:
    """The engine's bytes are those the sidecar was written for (a truncated or swapped engine is refused here,
    before TensorRT sees it)."""
    got = sha256_file(engine)
    if got != data["engine_sha256"]:
        raise SidecarError(f"engine {engine} does not match its sidecar (SHA-256 {got[:12]}… vs "
                           f"{data['engine_sha256'][:12]}… recorded at build): the file is corrupt or was replaced; "
                           f"rebuild it with rrsr-build-engine")


def check_plugin_library(data: dict, library) -> None:
    """The plugin library is the exact build the engine was made with (plugins are serialized by name only, so
    another build could silently compute something else). An engine that carries its plugin library
    (``plugins_serialized``) needs none."""
    want = data.get("plugin_sha256")
    if want is None or data.get("plugins_serialized"):
        return
    if library is None or not Path(library).is_file():
        raise SidecarError(f"the engine needs the TensorRT plugin library it was built with "
                           f"({data.get('plugin_library')}, SHA-256 {want[:12]}…), but "
                           f"{'none was given' if library is None else str(library) + ' does not exist'}")
    got = sha256_file(library)
    if got != want:
        raise SidecarError(f"plugin library {library} (SHA-256 {got[:12]}…) is not the one the engine was built "
                           f"with ({data.get('plugin_library')}, SHA-256 {want[:12]}…); rebuild the engine or use "
                           f"that library")


def target_of(data: dict) -> str:
    """The engine's target: "trt" (TensorRT) or "rtx" (TensorRT-RTX); sidecars from before the RTX target are trt."""
    return data.get("target", "trt")


def environment_mismatches(data: dict, *, tensorrt_version: str, gpu_name: str, gpu_sm: str) -> list[str]:
    """Reasons the engine cannot run with this TensorRT (or TensorRT-RTX) and GPU (empty when it can). A TensorRT
    engine runs on the GPU model it was built on; a TensorRT-RTX engine on any GPU of one of the compute
    capabilities it was built for (``compute_capabilities``; it JIT-compiles its kernels there)."""
    out = []
    rtx = target_of(data) == "rtx"
    lib = "TensorRT-RTX" if rtx else "TensorRT"
    if data["tensorrt_version"] != tensorrt_version:
        out.append(f"built with {lib} {data['tensorrt_version']}, this is {lib} {tensorrt_version}")
    if rtx:
        ccs = data.get("compute_capabilities") or []
        if gpu_sm not in ccs:
            out.append(f"built for GPUs of compute capability {', '.join(ccs) or 'none'} ({data['gpu_name']}), "
                       f"this GPU is {gpu_name} (SM {gpu_sm}), not among them")
        return out
    if data["gpu_sm"] != gpu_sm:
        out.append(f"built for SM {data['gpu_sm']} ({data['gpu_name']}), this GPU is SM {gpu_sm} ({gpu_name})")
    elif data["gpu_name"] != gpu_name:
        out.append(f"built on {data['gpu_name']}, this GPU is {gpu_name} (same SM {gpu_sm}, but TensorRT "
                   f"tactics are chosen per GPU model)")
    return out


def profile_for(data: dict, lr_hw: tuple[int, int]) -> int:
    """Index of the first optimisation profile that admits an LR of ``lr_hw``; SidecarError naming the
    profiles when none does."""
    h, w = lr_hw
    for i, p in enumerate(data["profiles"]):
        if p["min"][0] <= h <= p["max"][0] and p["min"][1] <= w <= p["max"][1]:
            return i
    ranges = "; ".join(f"{p['min'][0]}x{p['min'][1]}..{p['max'][0]}x{p['max'][1]}" for p in data["profiles"])
    raise SidecarError(f"LR {h}x{w} (after padding to the reference) is outside the engine's profiles ({ranges}); "
                       f"rebuild with rrsr-build-engine --min-lr/--max-lr covering it")
