"""scripts/profile_memory.py: the meta-device count of RRSR's activation memory, and the budget it guards."""
import importlib.util
from pathlib import Path

import pytest

import rrsr_model

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "profile_memory.py"
MiB = 2 ** 20


@pytest.fixture(scope="module")
def prof():
    spec = importlib.util.spec_from_file_location("profile_memory", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_count_scales_with_the_image_and_halves_in_fp16(prof):
    small = prof.profile(rrsr_model.build_model("rrsr"), (24, 32), "fp32").peak
    large = prof.profile(rrsr_model.build_model("rrsr"), (48, 64), "fp32").peak
    half = prof.profile(rrsr_model.build_model("rrsr"), (48, 64), "fp16").peak
    weights = sum(p.numel() * 4 for p in rrsr_model.build_model("rrsr").parameters())
    # activations are ~linear in the pixel count (matching is streamed): 4x the pixels, about 4x the activations
    assert 3.0 < (large - weights) / (small - weights) < 4.5
    assert half < 0.7 * large


def test_fp16_1080p_stays_within_4_gib(prof):
    """The issue-6 budget for the FP16 path at 1080p output (H200 measurement: 3,571 MiB with the compiled kernels,
    this count: ~3,390 MiB). Guards the 4x stage against materialising extra full-resolution FP32 offset maps."""
    tracker = prof.profile(rrsr_model.build_model("rrsr"), (270, 480), "fp16")
    print(f"fp16 1080p: {tracker.peak / MiB:.0f} MiB at {tracker.where}")
    assert tracker.peak < 3.6 * 2 ** 30
