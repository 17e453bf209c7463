"""One optimisation step of restoration training (spec §5.3-5.4) and the resumable training state."""
from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Optional

import torch
from torch import Tensor, nn

from ..checkpoint import bundle_state, load_bundle
from ..network import RRSR
from .discriminator import ImageDiscriminator
from .losses import PerceptualLoss, VGG19Relu5, discriminator_loss, generator_adversarial_loss, l1_loss

STATE_FORMAT = "rrsr-train-state"
STATE_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; defaults are the authors' stage-3 configs. Iterations count from 1."""
    variant: str = "rrsr"
    iters: int = 255_000
    batch_size: int = 9
    gt_size: int = 160
    seed: int = 10
    lr_g: float = 1e-4
    lr_offset: float = 1e-4            # names with "offset", large scale
    lr_relu2_offset: float = 1e-5      # names with "offset" and "medium"
    lr_relu3_offset: float = 1e-6      # names with "offset" and "small"
    lr_d: float = 1e-4
    milestones: tuple[int, ...] = (72_545, 211_040)
    gamma: float = 0.1
    pixel_weight: float = 1.0
    rtrr_weight: float = 0.6
    gan: bool = False
    gan_start: int = 10_000            # GAN model: iterations 1..gan_start are L1 + RTRR only
    perceptual_weight: float = 1e-4
    gan_weight: float = 1e-6
    gp_weight: float = 10.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {sorted(unknown)}")
        return cls(**{**d, "milestones": tuple(d.get("milestones", cls.milestones))})


def param_groups(net_g: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The authors' four Adam groups, chosen by parameter name: the offset predictors of the coarse scales
    learn 10x / 100x slower than everything else."""
    base, offset, small, medium = [], [], [], []
    for name, p in net_g.named_parameters():
        if not p.requires_grad:
            continue
        if "offset" in name:
            (small if "small" in name else medium if "medium" in name else offset).append(p)
        else:
            base.append(p)
    return [{"params": base, "lr": cfg.lr_g}, {"params": offset, "lr": cfg.lr_offset},
            {"params": small, "lr": cfg.lr_relu3_offset}, {"params": medium, "lr": cfg.lr_relu2_offset}]


class Trainer:
    """Holds the model, the discriminator (GAN mode), optimisers and schedulers.

    Only ``net_g`` and D are optimised: the CCN (``net_extractor``) and VGG19 are frozen. Both schedulers step
    once per iteration, so the learning rate drops after iteration 72,545 and 211,040 as the authors'.
    """

    def __init__(self, model: RRSR, cfg: TrainConfig, device="cpu", perceptual_vgg: Optional[VGG19Relu5] = None):
        if model.cfg.variant != cfg.variant:
            raise ValueError(f"model is a {model.cfg.variant!r} network but the config says {cfg.variant!r}")
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.model.net_extractor.requires_grad_(False)
        self.model.net_map.requires_grad_(False)
        self.iteration = 0
        self.opt_g = torch.optim.Adam(param_groups(model.net_g, cfg), lr=cfg.lr_g, betas=(0.9, 0.999),
                                      weight_decay=0.0)
        self.sched_g = torch.optim.lr_scheduler.MultiStepLR(self.opt_g, list(cfg.milestones), cfg.gamma)
        self.net_d = self.opt_d = self.sched_d = self.perceptual = None
        if cfg.gan:
            d_side = -(-cfg.gt_size // 32)   # the discriminator's last feature map (five stride-2 convs)
            if cfg.batch_size * d_side ** 2 < 2:
                raise ValueError(f"GAN training needs batch_size >= 2 at gt_size {cfg.gt_size}: the "
                                 f"discriminator's BatchNorm would see a single value per channel")
            if perceptual_vgg is None:
                raise ValueError("GAN training needs the perceptual loss's ImageNet VGG19 (see load_perceptual_vgg)")
            self.net_d = ImageDiscriminator(ndf=32).to(self.device)
            self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=cfg.lr_d, betas=(0.9, 0.999), weight_decay=0.0)
            self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, list(cfg.milestones), cfg.gamma)
            self.perceptual = PerceptualLoss(perceptual_vgg.to(self.device), cfg.perceptual_weight)
        self.set_train_mode()

    def set_train_mode(self) -> None:
        self.model.train()
        self.model.net_extractor.eval()
        self.model.net_map.eval()
        if self.net_d is not None:
            self.net_d.train()

    def step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One iteration on a batch from :class:`~.data.RefSRTrainSet`; returns the loss values."""
        cfg, it = self.cfg, self.iteration + 1
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        sr = self.model(b["lr"], b["lr_up"], b["ref"])
        # RTRR: rebuild the warped reference from its LR with the SR as reference; SR is not detached, so
        # this loss also trains pass 1 through the CCN and VGG19 features of the SR.
        sr_rtrr = self.model(b["ref_w_lq"], b["ref_w_up"], sr)
        logs = {}
        use_gan = cfg.gan and it > cfg.gan_start
        if use_gan:
            self.net_d.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            d = discriminator_loss(self.net_d, b["hr"], sr, cfg.gp_weight)
            d["l_d"].backward()
            self.opt_d.step()
            self.net_d.requires_grad_(False)
            logs.update({k: v.item() for k, v in d.items()})

        l_pix = cfg.pixel_weight * l1_loss(sr, b["hr"])
        l_rtrr = l1_loss(sr_rtrr, b["ref_w"])
        total = l_pix + cfg.rtrr_weight * l_rtrr
        logs.update(l_pix=l_pix.item(), l_rtrr=l_rtrr.item())
        if use_gan:
            l_percep = self.perceptual(sr, b["hr"])
            l_gan = generator_adversarial_loss(self.net_d, sr, cfg.gan_weight)
            total = total + l_percep + l_gan
            logs.update(l_percep=l_percep.item(), l_gan=l_gan.item())
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        self.sched_g.step()
        if self.sched_d is not None:
            # the authors step every scheduler each iteration, also before D first trains; torch warns
            # about that order, but MultiStepLR's rate depends only on the count
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
                self.sched_d.step()
        self.iteration = it
        logs["l_total"] = total.item()
        return logs

    @property
    def lr(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        """Everything to continue the run: model (as a bundle), D, optimisers, schedulers, iteration, RNG."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        state = {"format": STATE_FORMAT, "format_version": STATE_VERSION, "iteration": self.iteration,
                 "config": self.cfg.to_dict(), "model": bundle_state(self.model, {"iteration": self.iteration}),
                 "optimizer_g": self.opt_g.state_dict(), "scheduler_g": self.sched_g.state_dict(), "rng": rng}
        if self.net_d is not None:
            state.update(net_d=self.net_d.state_dict(), optimizer_d=self.opt_d.state_dict(),
                         scheduler_d=self.sched_d.state_dict())
        return state

    @classmethod
    def from_state(cls, state: dict, device="cpu", perceptual_vgg: Optional[VGG19Relu5] = None,
                   source="<state>") -> "Trainer":
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{source} is not an rrsr-train state file (its 'format' is {state.get('format')!r})")
        if state.get("format_version") != STATE_VERSION:
            raise ValueError(f"{source} has training-state version {state.get('format_version')!r}; "
                             f"this code reads {STATE_VERSION}")
        cfg = TrainConfig.from_dict(state["config"])
        trainer = cls(load_bundle(state["model"], source), cfg, device, perceptual_vgg)
        trainer.opt_g.load_state_dict(state["optimizer_g"])
        trainer.sched_g.load_state_dict(state["scheduler_g"])
        if cfg.gan:
            trainer.net_d.load_state_dict(state["net_d"])
            trainer.opt_d.load_state_dict(state["optimizer_d"])
            trainer.sched_d.load_state_dict(state["scheduler_d"])
        trainer.iteration = int(state["iteration"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], trainer.device)
        return trainer
