"""The one interface every backend has, Polygraphy style: a *loader* holds what to load (cheap, no I/O) and
``load()`` returns a *runner*; a runner has ``run(inputs) -> SR`` and ``describe() -> dict``. Parity, bench,
infer and the demo are written once against it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np
import torch

from rrsr_model.inference import PreparedInputs, prepare_inputs

INPUT_NAMES = ("lr", "lr_up", "ref", "valid_size")   # the exported graph's inputs (export.onnx_export)


class BackendError(RuntimeError):
    """A backend cannot be loaded or run; the message names the file / library / device and why."""


class BackendUnavailable(BackendError):
    """The backend's runtime (package, GPU) is not present on this machine; the message says what is missing."""


Feeds = Union[PreparedInputs, Mapping[str, np.ndarray]]


def to_feeds(x: Feeds) -> dict[str, np.ndarray]:
    """PreparedInputs (or a feed dict) -> the graph's numpy feeds. The graph always takes ``valid_size``; when
    nothing was padded it is the full SR size, which the model treats exactly like None."""
    if isinstance(x, PreparedInputs):
        vs = x.valid_size if x.valid_size is not None else torch.tensor(x.lr_up.shape[-2:], dtype=torch.int64)
        feeds = {"lr": x.lr, "lr_up": x.lr_up, "ref": x.ref, "valid_size": vs}
    else:
        feeds = dict(x)
        if feeds.get("valid_size") is None:
            feeds["valid_size"] = np.asarray(np.shape(feeds["lr_up"])[-2:], dtype=np.int64)
    out = {}
    for name in INPUT_NAMES:
        v = feeds[name]
        v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        out[name] = np.ascontiguousarray(v, dtype=np.int64 if name == "valid_size" else np.float32)
    return out


def to_prepared(x: Feeds) -> PreparedInputs:
    if isinstance(x, PreparedInputs):
        return x
    f = to_feeds(x)
    t = {k: torch.from_numpy(v) for k, v in f.items()}
    hw = tuple(int(v) for v in f["valid_size"])
    full = tuple(f["lr_up"].shape[-2:])
    return PreparedInputs(t["lr"], t["lr_up"], t["ref"], None if hw == full else t["valid_size"], hw)


class Runner(ABC):
    """A loaded model. ``run`` takes the pre-processed inputs and returns the SR as float32 (N, 3, H, W) numpy,
    unclamped, at the padded size (crop with ``out_hw``)."""

    name: str = "?"

    @abstractmethod
    def run(self, inputs: Feeds) -> np.ndarray: ...

    @abstractmethod
    def describe(self) -> dict:
        """backend, precision, device, model file and versions: what a report needs to say what ran."""

    def synchronize(self) -> None:
        """Wait for queued device work (timing); CPU backends return at once."""

    def close(self) -> None:
        """Free the model and its buffers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Loader(ABC):
    """What to load; ``load()`` does the work (and raises BackendError / BackendUnavailable)."""

    name: str = "?"

    @abstractmethod
    def load(self) -> Runner: ...

    def __call__(self) -> Runner:
        return self.load()


@dataclass
class SRResult:
    sr: np.ndarray          # float32 (3, H, W), unclamped, cropped to 4x the LR
    seconds: float          # time of runner.run only


def super_resolve(runner: Runner, lr: np.ndarray, ref: np.ndarray, check_memory: bool = True) -> SRResult:
    """rrsr_model.super_resolve for any runner: the same pre-processing, then the crop back to 4x the LR.
    With ``check_memory`` an input too large for the backend raises MemoryError with the estimate first."""
    import time

    from ..memory import check_fits
    x = prepare_inputs(lr, ref)
    if check_memory:
        d = runner.describe()
        check_fits(d.get("backend", "?"), d.get("precision", "fp32"), d.get("device", "cpu"),
                   tuple(x.lr.shape[-2:]), matching=d.get("matching", "dense"), kernels=d.get("kernels", "reference"))
    t = time.perf_counter()
    sr = runner.run(x)
    runner.synchronize()
    dt = time.perf_counter() - t
    return SRResult(np.ascontiguousarray(sr[0, :, : x.out_hw[0], : x.out_hw[1]], dtype=np.float32), dt)
