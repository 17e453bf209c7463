"""The training loop and the files of a run in its output folder:

* ``models/rrsr_iterNNNNNNN.pth``: bundles (``rrsr_model.save_bundle``), loadable with ``load_model``;
* ``states/iterNNNNNNN.state``: training states for ``--resume``;
* ``train.log``: one line per logged iteration; ``options.json``: the run's options.

A fresh run refuses an output folder that already holds run files unless ``force``; periodic files of the
run are rotated (the newest ``keep`` of each kind stay).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoint import save_bundle
from .data import RefSRTrainSet, SampleStream
from .trainer import Trainer

RUN_FILES = ("models", "states", "train.log", "options.json")


class RunFiles:
    def __init__(self, out_dir, keep: int = 5, force: bool = False):
        self.out = Path(out_dir)
        self.keep = keep
        self.force = force
        self.models = self.out / "models"
        self.states = self.out / "states"
        self.log_path = self.out / "train.log"

    def existing(self) -> list[str]:
        return [n for n in RUN_FILES if (self.out / n).exists()]

    def prepare(self, resuming: bool, options: dict) -> None:
        found = self.existing()
        if found and not resuming and not self.force:
            raise FileExistsError(f"output folder {self.out} already holds a training run ({', '.join(found)}); "
                                  f"continue it with --resume {self.states}/<latest>.state, choose another "
                                  f"--out, or pass --force to overwrite its files")
        self.models.mkdir(parents=True, exist_ok=True)
        self.states.mkdir(parents=True, exist_ok=True)
        (self.out / "options.json").write_text(json.dumps(options, indent=2, default=str) + "\n")

    def log(self, line: str) -> None:
        with self.log_path.open("a") as f:
            f.write(line + "\n")

    def save(self, trainer: Trainer) -> Path:
        it = trainer.iteration
        bundle = self.models / f"rrsr_iter{it:07d}.pth"
        state = self.states / f"iter{it:07d}.state"
        if state.exists() and not self.force:
            raise FileExistsError(f"{state} exists (from an earlier run in this folder); pass --force to replace it")
        save_bundle(trainer.model, bundle, {"iteration": it, "trained_with": "rrsr-train",
                                            "gan": trainer.cfg.gan}, overwrite=self.force)
        tmp = state.with_name(state.name + ".tmp")
        torch.save(trainer.state_dict(), tmp)
        tmp.replace(state)
        self._rotate()
        return bundle

    def _rotate(self) -> None:
        if self.keep <= 0:
            return
        for folder, pattern in ((self.models, "rrsr_iter*.pth"), (self.states, "iter*.state")):
            for old in sorted(folder.glob(pattern))[:-self.keep]:
                old.unlink()


def _fmt(logs: dict) -> dict:
    return {k: f"{v:.4g}" for k, v in logs.items()}


def train(trainer: Trainer, dataset: RefSRTrainSet, files: RunFiles, *, workers: int = 0,
          save_every: int = 5000, log_every: int = 100) -> Path:
    """Run from ``trainer.iteration + 1`` to ``trainer.cfg.iters``; returns the final bundle's path."""
    cfg = trainer.cfg
    start = trainer.iteration
    if start >= cfg.iters:
        raise ValueError(f"the run is already at iteration {start}; ask for more iterations (--iters) to continue")
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=SampleStream(start * cfg.batch_size),
                        num_workers=workers, pin_memory=trainer.device.type == "cuda")
    bar = tqdm(total=cfg.iters, initial=start, desc="rrsr-train", dynamic_ncols=True)
    batches = iter(loader)
    try:
        for _ in range(start, cfg.iters):
            logs = trainer.step(next(batches))
            it = trainer.iteration
            if not all(math.isfinite(v) for v in logs.values()):
                raise FloatingPointError(f"non-finite loss at iteration {it}: {_fmt(logs)}")
            bar.set_postfix(_fmt(logs), refresh=False)
            bar.update(1)
            if it % log_every == 0 or it == cfg.iters:
                files.log(f"iter {it} lr {trainer.lr:.3g} " + " ".join(f"{k} {v:.6g}" for k, v in logs.items()))
            if it % save_every == 0 or it == cfg.iters:
                last_saved = files.save(trainer)
                bar.write(f"saved {last_saved}")
    finally:
        bar.close()
        del batches   # shuts the worker processes down
    return last_saved
