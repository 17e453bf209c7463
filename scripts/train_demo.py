"""Recreate the demo checkpoint rrsr_model/assets/demo_rrsr.pth (a demo, not the paper's model).

Trains RRSR briefly with `rrsr-train` (L1 + 0.6*RTRR) on scikit-image's public-domain / CC0 photos, with
references synthesised from the same photos. ImageNet VGG weights cannot be downloaded here, so VGG19 and the
correspondence network keep a seeded random init; both CCN branches start from the same weights (as the
authors' both start from one ImageNet VGG16) so that matching compares like with like. The photos the bundled
samples come from (coffee, chelsea) are held out. The result is stored as an FP16 bundle.

    python scripts/train_demo.py [--iters 200] [--device auto] [--out rrsr_model/assets/demo_rrsr.pth]

Needs the `train` extra (scikit-image, opencv-python-headless).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rrsr_model  # noqa: E402
from rrsr_model.demo import DEMO_CKPT  # noqa: E402

TRAIN_PHOTOS = ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
SEED = 0


def write_photos(folder: Path) -> None:
    from skimage import data
    for name in TRAIN_PHOTOS:
        Image.fromarray(np.asarray(getattr(data, name)())).save(folder / f"{name}.png")


def initial_bundle(path: Path, variant: str) -> None:
    torch.manual_seed(SEED)
    model = rrsr_model.build_model(variant)
    ccn = model.net_extractor
    ccn.feature_extraction_image2.load_state_dict(ccn.feature_extraction_image1.state_dict())
    rrsr_model.save_bundle(model, path, metadata={"note": "seeded random init, tied CCN branches"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--gt-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr-g", type=float, default=2e-4)
    ap.add_argument("--variant", default="rrsr")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=DEMO_CKPT)
    ap.add_argument("--force", action="store_true", help="replace --out if it exists")
    ap.add_argument("--run-dir", type=Path, help="keep the training run (periodic bundles, log) here")
    args = ap.parse_args()
    if args.out.exists() and not args.force:
        sys.exit(f"{args.out} exists; pass --force to replace it")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = args.run_dir or tmp / "run"
        (tmp / "photos").mkdir()
        write_photos(tmp / "photos")
        initial_bundle(tmp / "init.pth", args.variant)
        cmd = [sys.executable, "-m", "rrsr_model.train", "--data", str(tmp / "photos"), "--out", str(run),
               "--init", str(tmp / "init.pth"), "--iters", str(args.iters), "--gt-size", str(args.gt_size),
               "--batch-size", str(args.batch_size), "--lr-g", str(args.lr_g), "--seed", str(SEED),
               "--device", args.device, "--workers", "1", "--save-every", str(max(1, args.iters // 4)),
               "--log-every", "10", "--keep", "0"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
        final = sorted((run / "models").glob("*.pth"))[-1]
        model = rrsr_model.load_model(final)
        meta = {"demo": True, "recipe": "scripts/train_demo.py", "iters": args.iters, "gt_size": args.gt_size,
                "batch_size": args.batch_size, "lr_g": args.lr_g, "train_photos": list(TRAIN_PHOTOS),
                "note": "demo checkpoint: random (not ImageNet) VGG19/CCN, brief CPU training; not the paper's quality"}
        rrsr_model.save_bundle(model, args.out, metadata=meta, fp16=True, overwrite=True)
        print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
