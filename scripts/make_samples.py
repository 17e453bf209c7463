"""Write the bundled sample pairs (rrsr_model/assets/samples/) from scikit-image's CC0 photos.

Each pair: ``<name>_hr.png`` (ground truth), ``<name>_lr.png`` (PIL bicubic /4, as the authors make LR) and
``<name>_ref.png``, a reference showing the same scene from an overlapping, shifted and slightly rotated crop.
Reproducible: `python scripts/make_samples.py` (needs scikit-image, the `train` extra).
"""
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "rrsr_model" / "assets" / "samples"

# name, image, HR crop (top, left, h, w), reference crop offset (dy, dx), rotation (deg)
PAIRS = [
    ("coffee", data.coffee, (100, 180, 192, 256), (28, -40), 4.0),
    ("chelsea", data.chelsea, (40, 120, 192, 256), (-24, 36), -3.0),
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, load, (t, l, h, w), (dy, dx), rot in PAIRS:
        img = Image.fromarray(load())
        hr = img.crop((l, t, l + w, t + h))
        ref = img.rotate(rot, resample=Image.BICUBIC, center=(l + w / 2, t + h / 2))
        ref = ref.crop((l + dx, t + dy, l + dx + w, t + dy + h))
        lr = hr.resize((w // 4, h // 4), Image.BICUBIC)
        for suffix, im in (("hr", hr), ("lr", lr), ("ref", ref)):
            im.save(OUT / f"{name}_{suffix}.png", optimize=True)
        print(f"{name}: HR {hr.size}, LR {lr.size}, ref {ref.size}")
    (OUT / "LICENSE.txt").write_text(
        "Sample images derived (cropped, rotated, resized) from scikit-image's bundled photos 'coffee'\n"
        "(CC0, Rachel Michetti) and 'chelsea' (CC0, Stefan van der Walt). No copyright restrictions.\n")


if __name__ == "__main__":
    main()
