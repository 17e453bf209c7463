"""How many 128-byte lines a warp's 16-byte corner load touches in the MDCN octet kernel (plugins/kernels/mdcn/
mdcn_vec8.cuh), for two ways of giving a warp its 32 gather items -- a CPU-only model of its L1 traffic, the
kernel's limit at random offsets (plugins/README.md):

  row      32 neighbouring pixels of one K' octet, K' tap-major (the kernel before 2026-11-26)
  quad     8 neighbouring pixels x a chunk's 4 K' octets, K' octet-major (mostly one octet at 4 taps; the kernel now)

The features are the kernel's octet copy (NC/8HW8: 16 bytes per pixel and octet); offsets as bench_kernels.py
makes them: random per pixel (normal, std 2 px) or smooth (one flow per offset group, 0.1 px noise).

    python scripts/sim_gather_lines.py [--channels 64] [--offset-groups 8] [--size 512] [--warps 2000]
"""
from __future__ import annotations

import argparse

import numpy as np

TAPS = [(i, j) for i in range(3) for j in range(3)]
LINE, VEC = 128, 16  # bytes per cache line, per octet of one pixel


def warp_items(mapping: str, rng, octets: int, size: int):
    """One warp's (x, y, tap, octet) items for a random chunk and a random 32-pixel-aligned position."""
    y = int(rng.integers(2, size - 3))
    x0 = int(rng.integers(0, size // 32 - 1)) * 32
    chunk = int(rng.integers(0, octets * len(TAPS) // 4))
    if mapping == "row":
        tap, octet = divmod(chunk * 4 + int(rng.integers(0, 4)), octets)
        return [(x0 + i, y, tap, octet) for i in range(32)]
    g0 = x0 + int(rng.integers(0, 4)) * 8
    items = []
    for t in range(4):
        octet, tap = divmod(chunk * 4 + t, len(TAPS))
        items += [(g0 + g, y, tap, octet) for g in range(8)]
    return items


def lines_per_load(mapping: str, smooth: bool, octets: int, groups: int, size: int, warps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    total = 0
    for _ in range(warps):
        items = warp_items(mapping, rng, octets, size)
        flow = rng.normal(0, 2, size=(groups, 2))
        per_group = octets // groups
        offs = [flow[oc // per_group] + rng.normal(0, 0.1, 2) if smooth else rng.normal(0, 2, 2)
                for (_, _, _, oc) in items]
        for corner in range(4):
            seen = set()
            for (x, y, tap, octet), (dy, dx) in zip(items, offs):
                yy = int(np.floor(y - 1 + TAPS[tap][0] + dy)) + corner // 2
                xx = int(np.floor(x - 1 + TAPS[tap][1] + dx)) + corner % 2
                yy, xx = min(max(yy, 0), size - 1), min(max(xx, 0), size - 1)
                seen.add((octet, yy, xx * VEC // LINE))
            total += len(seen)
    return total / (4 * warps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=64, help="input channels (multiple of 8)")
    ap.add_argument("--offset-groups", type=int, default=8)
    ap.add_argument("--size", type=int, default=512, help="square feature map side, pixels")
    ap.add_argument("--warps", type=int, default=2000, help="warp loads sampled per case")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.channels % 8 or a.channels % a.offset_groups or (a.channels // a.offset_groups) % 8:
        ap.error("channels must be a multiple of 8 with a multiple of 8 channels per offset group")
    octets = a.channels // 8
    for smooth in (False, True):
        r = lines_per_load("row", smooth, octets, a.offset_groups, a.size, a.warps, a.seed)
        q = lines_per_load("quad", smooth, octets, a.offset_groups, a.size, a.warps, a.seed)
        print(f"{'smooth' if smooth else 'random':>6} offsets: 128-byte lines per 32-lane corner load: "
              f"row {r:.1f}, quad {q:.1f} ({q / r:.2f}x)")


if __name__ == "__main__":
    main()
