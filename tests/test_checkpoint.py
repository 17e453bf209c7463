"""Official files (strict) -> bundle -> identical outputs; checkpoint errors name the problem."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import rrsr_model
from rrsr_model.checkpoint import CheckpointError, load_official
from rrsr_model.checkpoint_cli import main as convert_main

VGG19_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
               (14, 256, 256), (16, 256, 256), (19, 256, 512), (21, 512, 512), (23, 512, 512), (25, 512, 512),
               (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512)]


def torchvision_like_vgg19(model):
    """A full torchvision-layout VGG19 features state dict whose first five convs are the model's."""
    sd = {}
    own = model.net_map.vgg.state_dict()
    for i, cin, cout in VGG19_CONVS:
        w = own.get(f"features.{i}.weight", torch.zeros(cout, cin, 3, 3))
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w, own.get(f"features.{i}.bias", torch.zeros(cout))
    sd["classifier.0.weight"] = torch.zeros(4, 4)
    return sd


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("official")
    model = rrsr_model.build_model("rrsr").eval()
    for p in model.net_map.vgg.parameters():
        torch.nn.init.normal_(p, 0, 0.05)
    for p in model.net_extractor.parameters():
        torch.nn.init.normal_(p, 0, 0.05)
    torch.save(model.net_g.state_dict(), d / "network_mse.pth")
    torch.save(model.net_extractor.state_dict(), d / "feature_extraction.pth")
    torch.save(torchvision_like_vgg19(model), d / "vgg19.pth")
    return d, model


def _images(seed=0, h=10, w=12, ref_hw=(40, 48)):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (*ref_hw, 3), dtype=np.uint8))


def test_official_to_bundle_same_output(official_files, tmp_path):
    d, original = official_files
    lr, ref = _images()
    expected = rrsr_model.super_resolve(original, lr, ref)
    loaded = rrsr_model.load_model(d / "network_mse.pth", feature_ckpt=d / "feature_extraction.pth",
                                   vgg_ckpt=d / "vgg19.pth")
    np.testing.assert_array_equal(rrsr_model.super_resolve(loaded, lr, ref), expected)
    out = tmp_path / "rrsr.pth"
    res = CliRunner().invoke(convert_main, ["--net-g", str(d / "network_mse.pth"), "--feature-ckpt",
                                            str(d / "feature_extraction.pth"), "--vgg-ckpt", str(d / "vgg19.pth"),
                                            "--out", str(out)])
    assert res.exit_code == 0, res.output
    bundle = rrsr_model.load_model(out)
    assert bundle.cfg.variant == "rrsr"
    np.testing.assert_array_equal(rrsr_model.super_resolve(bundle, lr, ref), expected)
    # never overwrite without --force
    again = CliRunner().invoke(convert_main, ["--net-g", str(d / "network_mse.pth"), "--feature-ckpt",
                                              str(d / "feature_extraction.pth"), "--vgg-ckpt", str(d / "vgg19.pth"),
                                              "--out", str(out)])
    assert again.exit_code != 0 and "--force" in again.output


def test_fp16_bundle_loads_close(official_files, tmp_path):
    _, model = official_files
    rrsr_model.save_bundle(model, tmp_path / "half.pth", fp16=True)
    half = rrsr_model.load_model(tmp_path / "half.pth")
    assert next(half.parameters()).dtype == torch.float32
    lr, ref = _images(1)
    diff = np.abs(rrsr_model.super_resolve(half, lr, ref) - rrsr_model.super_resolve(model, lr, ref)).max()
    assert diff < 1e-2


def test_wrong_keys_are_listed(official_files, tmp_path):
    d, model = official_files
    sd = dict(model.net_g.state_dict())
    sd.pop("dyn_agg_restore.tail_large.2.bias")
    sd["dyn_agg_restore.extra.weight"] = torch.zeros(1)
    sd["dyn_agg_restore.tail_small.0.weight"] = torch.zeros(3, 3)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as e:
        load_official(tmp_path / "bad.pth", d / "feature_extraction.pth", d / "vgg19.pth")
    msg = str(e.value)
    assert "missing keys (1): dyn_agg_restore.tail_large.2.bias" in msg
    assert "unexpected keys (1): dyn_agg_restore.extra.weight" in msg
    assert "dyn_agg_restore.tail_small.0.weight: checkpoint (3, 3) vs model (256, 64, 3, 3)" in msg


def test_variant_detection_and_mismatch(official_files):
    d, _ = official_files
    with pytest.raises(CheckpointError, match="is a 'rrsr' network, but variant 'rrsr-s'"):
        load_official(d / "network_mse.pth", d / "feature_extraction.pth", d / "vgg19.pth", variant="rrsr-s")


def test_missing_corrupt_and_incomplete_files(official_files, tmp_path):
    d, _ = official_files
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        rrsr_model.load_model(tmp_path / "nope.pth")
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth: not a PyTorch checkpoint or corrupt"):
        rrsr_model.load_model(tmp_path / "corrupt.pth")
    with pytest.raises(ValueError, match="also needs feature_ckpt and vgg_ckpt"):
        rrsr_model.load_model(d / "network_mse.pth")
    vgg16 = {f"features.{i}.weight": torch.zeros(1) for i in (0, 2, 5, 7, 10, 28)}
    torch.save(vgg16, tmp_path / "vgg16.pth")
    with pytest.raises(CheckpointError, match="looks like a VGG16"):
        load_official(d / "network_mse.pth", d / "feature_extraction.pth", tmp_path / "vgg16.pth")
