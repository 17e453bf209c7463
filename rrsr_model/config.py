"""Model variants as one config type."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RRSRConfig:
    """Hyper-parameters of the generator (``RestorationNet``) and the matching stage.

    ``fas_per_scale`` is the number of FAS units at 2x and 4x (RRSR 3, RRSR-S 2). ``use_ras=False`` selects the
    C2-Matching baseline: one alignment per scale, conv + LeakyReLU head, ``n_blocks`` residual blocks per scale.
    """
    variant: str = "rrsr"
    ngf: int = 64
    n_blocks: int = 16          # content extractor and the 1x body
    n_blocks_fas: int = 5       # body of each 2x / 4x FAS (RRSR)
    fas_per_scale: int = 3
    groups: int = 8             # deformable groups of every MDCN
    num_experts: int = 16       # RAS experts
    use_ras: bool = True
    patch_size: int = 3         # matching patch size
    match_stride: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RRSRConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config field(s): {sorted(unknown)}")
        return cls(**d)


VARIANTS: dict[str, RRSRConfig] = {
    "rrsr": RRSRConfig(variant="rrsr"),
    "rrsr-s": RRSRConfig(variant="rrsr-s", fas_per_scale=2),
    "c2-matching": RRSRConfig(variant="c2-matching", fas_per_scale=1, use_ras=False, n_blocks_fas=16),
}


def get_config(variant: str) -> RRSRConfig:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}") from None
