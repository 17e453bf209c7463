"""super_resolve: the authors' pre-processing, padding for other reference sizes, input errors."""
import numpy as np
import pytest
import torch
from PIL import Image

import rrsr_model
from rrsr_model.images import load_rgb, pil_bicubic
from rrsr_model.inference import prepare_inputs


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return rrsr_model.build_model("c2-matching").eval()


def _rand(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_prepare_matches_authors_when_sizes_agree():
    lr, ref = _rand(10, 12), _rand(40, 48, 1)
    x = prepare_inputs(lr, ref)
    assert x.valid_size is None and x.out_hw == (40, 48)
    up = np.asarray(Image.fromarray(lr).resize((48, 40), Image.BICUBIC))
    assert torch.equal(x.lr_up, torch.from_numpy(up.copy()).permute(2, 0, 1)[None].float() / 255)


def test_padding_for_other_reference_sizes(model):
    lr = _rand(10, 12)
    x = prepare_inputs(lr, _rand(61, 30, 1))                         # taller, narrower, not mod 4
    assert x.ref.shape[-2:] == (60, 48) and x.lr.shape[-2:] == (15, 12)
    assert x.valid_size.tolist() == [40, 48]
    assert x.ref[..., 60 - 1, 30:].abs().max() == 0 and x.lr[..., 10:, :].abs().max() == 0
    sr = rrsr_model.super_resolve(model, lr, _rand(61, 30, 1))
    assert sr.shape == (3, 40, 48) and sr.dtype == np.float32


def test_output_is_float_unclamped(model):
    sr = rrsr_model.super_resolve(model, _rand(8, 8), _rand(32, 32, 2))
    assert sr.shape == (3, 32, 32) and np.isfinite(sr).all()


@pytest.mark.parametrize("lr,ref,msg", [
    (np.zeros((8, 8), np.uint8), _rand(32, 32), "grayscale"),
    (np.zeros((8, 8, 4), np.uint8), _rand(32, 32), "RGBA"),
    (np.zeros((8, 8, 3), np.float32), _rand(32, 32), "uint8"),
    (_rand(2, 8), _rand(32, 32), "too small"),
    (_rand(8, 8), _rand(8, 40), "ref: 8x40 is too small"),
])
def test_bad_images(model, lr, ref, msg):
    with pytest.raises(ValueError, match=msg):
        rrsr_model.super_resolve(model, lr, ref)


def test_tensor_sizes_must_be_4x(model):
    with pytest.raises(ValueError, match=r"lr_up must be \(B, 3, 32, 32\)"):
        model(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 30, 32), torch.rand(1, 3, 32, 32))


def test_load_rgb_refuses_non_rgb(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "c.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="mode is 'L'"):
        load_rgb(tmp_path / "g.png")
    with pytest.raises(ValueError, match="mode is 'RGBA'"):
        load_rgb(tmp_path / "a.png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_rgb(tmp_path / "c.png")
    with pytest.raises(FileNotFoundError):
        load_rgb(tmp_path / "missing.png")
    assert pil_bicubic(_rand(4, 4), (16, 8)).shape == (16, 8, 3)
