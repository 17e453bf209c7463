"""RRSR (ECCV 2022) in PyTorch: the numerical source of truth for export, plugins and runtime.

Public API: ``build_model``, ``load_model``, ``super_resolve`` (and ``save_bundle``, ``RRSRConfig``)."""
from __future__ import annotations

from .checkpoint import CheckpointError, load_model, save_bundle
from .config import VARIANTS, RRSRConfig, get_config
from .inference import prepare_inputs, super_resolve
from .network import RRSR

__all__ = ["build_model", "load_model", "super_resolve", "save_bundle", "prepare_inputs", "RRSR", "RRSRConfig",
           "VARIANTS", "get_config", "CheckpointError"]


def build_model(variant: str = "rrsr") -> RRSR:
    """A freshly initialised network of ``variant`` ("rrsr", "rrsr-s", "c2-matching"); the generator part
    (``.net_g``) has exactly the official generator keys."""
    return RRSR(get_config(variant))
