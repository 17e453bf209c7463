"""Restoration training (rrsr_model.train): RTRR warp, losses, discriminator, data, trainer, resume, CLI.

Everything runs on CPU at gt_size 32 (LR 8x8) with batch 1-2 so the file takes well under a minute."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rrsr_model import build_model, load_model
from rrsr_model.checkpoint import read_state_file
from rrsr_model.images import pil_bicubic
from rrsr_model.train.__main__ import main
from rrsr_model.train.data import DataError, RefSRTrainSet, check_gt_size
from rrsr_model.train.discriminator import ImageDiscriminator
from rrsr_model.train.losses import (PerceptualLoss, VGG19Relu5, discriminator_loss, gradient_penalty,
                                     load_perceptual_vgg)
from rrsr_model.train.rtrr import warp_reference
from rrsr_model.train.trainer import Trainer, TrainConfig, param_groups

GT = 32


def _skimage_images():
    data = pytest.importorskip("skimage.data")
    return {"astronaut": data.astronaut()[100:164, 150:214], "chelsea": data.chelsea()[50:98, 100:160],
            "coffee": data.coffee()[100:140, 200:260]}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_images")
    for name, img in _skimage_images().items():
        Image.fromarray(np.ascontiguousarray(img)).save(d / f"{name}.png")
    return d


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A stand-in torchvision VGG19 state dict (random weights; ImageNet ones are not available here)."""
    torch.manual_seed(0)
    state = VGG19Relu5().state_dict()
    state["features.34.weight"] = torch.zeros(512, 512, 3, 3)
    state["features.34.bias"] = torch.zeros(512)
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return path


def _batch(dataset, ks):
    samples = [dataset[k] for k in ks]
    return {name: torch.stack([s[name] for s in samples]) for name in samples[0]}


# ---------------------------------------------------------------------------------------------- RTRR warp

def test_rtrr_corner_perturbations_stay_in_range():
    rng = np.random.default_rng(0)
    ref = np.full((160, 160, 3), 200, np.uint8)
    seen, uncovered_total = set(), 0
    ys, xs = np.mgrid[0:160, 0:160]
    dst = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    for _ in range(300):
        w = warp_reference(ref, rng)
        assert w.image.shape == (160, 160, 3) and w.image.dtype == np.uint8
        mag = np.abs(w.deltas)
        assert ((mag >= 5) & (mag <= 19)).all(), w.deltas
        assert 20 <= w.corners[0, 0] < 160 and 20 <= w.corners[0, 1] < 160
        seen.update(w.deltas.ravel().tolist())
        # H maps the window corners onto the perturbed ones
        moved = w.homography @ np.vstack([w.corners.T, np.ones(4)])
        np.testing.assert_allclose((moved[:2] / moved[2]).T, w.corners + w.deltas, atol=1e-3)
        # output pixel x samples the reference at H x: far outside -> exactly 0, well inside -> the content
        src = w.homography @ dst
        sx, sy = (src[0] / src[2]).reshape(160, 160), (src[1] / src[2]).reshape(160, 160)
        outside = (sx < -3) | (sx > 162) | (sy < -3) | (sy > 162)
        inside = (sx > 3) & (sx < 156) & (sy > 3) & (sy < 156)
        assert (w.image[outside] == 0).all()
        assert (np.abs(w.image[inside].astype(int) - 200) <= 1).all()
        uncovered_total += int(outside.sum())
    assert seen == set(range(-19, -4)) | set(range(5, 20))
    assert uncovered_total > 0


def test_rtrr_warp_is_reproducible_and_needs_a_big_enough_patch():
    ref = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a = warp_reference(ref, np.random.default_rng(5))
    b = warp_reference(ref, np.random.default_rng(5))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.deltas, b.deltas)
    with pytest.raises(ValueError, match="larger than 20x20"):
        warp_reference(ref[:20, :20], np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------- losses, D

def test_discriminator_matches_the_authors():
    d = ImageDiscriminator(ndf=32)
    assert sum(p.numel() for p in d.parameters()) == 5_242_529
    out = d(torch.rand(2, 3, GT, GT))
    assert out.shape == (2, 1, 1, 1) and ((out > 0) & (out < 1)).all()


class _LinearCritic(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_wgan_gp_values():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4)
    critic = _LinearCritic(w)
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    # the gradient of a linear critic is w everywhere
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    d = discriminator_loss(critic, real, fake, gp_weight=10.0)
    expected = critic(fake).mean() - critic(real).mean() + 10 * gp
    assert d["l_d"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_perceptual_loss(vgg_file, tmp_path):
    vgg = VGG19Relu5.from_torchvision(vgg_file)
    sr, hr = torch.rand(2, 3, GT, GT, requires_grad=True), torch.rand(2, 3, GT, GT)
    loss = PerceptualLoss(vgg, 1e-4)(sr, hr)
    expected = 1e-4 * torch.sqrt(((vgg(sr) - vgg(hr)) ** 2).sum())   # Frobenius over the whole batch
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert sr.grad is not None and all(p.grad is None for p in vgg.parameters())
    with pytest.raises(ValueError, match="--vgg-ckpt"):
        load_perceptual_vgg(None)
    vgg16_like = {k: v for k, v in torch.load(vgg_file).items() if not k.startswith("features.34")}
    torch.save(vgg16_like, tmp_path / "vgg16.pth")
    with pytest.raises(ValueError, match="features.34"):
        VGG19Relu5.from_torchvision(tmp_path / "vgg16.pth")


def test_param_groups_follow_the_authors_names():
    cfg = TrainConfig(variant="c2-matching")
    net_g = build_model("c2-matching").net_g
    groups = param_groups(net_g, cfg)
    assert [g["lr"] for g in groups] == [1e-4, 1e-4, 1e-6, 1e-5]
    names = {id(p): n for n, p in net_g.named_parameters()}
    by_group = [[names[id(p)] for p in g["params"]] for g in groups]
    assert all("offset" not in n for n in by_group[0])
    assert "dyn_agg_restore.large_dyn_agg.conv_offset_mask.weight" in by_group[1]
    assert "dyn_agg_restore.small_offset_conv1.weight" in by_group[2]
    assert "dyn_agg_restore.medium_dyn_agg.conv_offset_mask.bias" in by_group[3]
    assert "dyn_agg_restore.small_dyn_agg.weight" in by_group[0]     # DCN main kernel: the 1e-4 group
    assert sum(map(len, by_group)) == len(list(net_g.parameters()))


# ---------------------------------------------------------------------------------------------- data

def test_dataset_samples(image_dir):
    ds = RefSRTrainSet(image_dir, gt_size=GT, seed=3)
    assert len(ds) == 3
    s = ds[7]
    shapes = {k: tuple(v.shape) for k, v in s.items()}
    assert shapes == {"hr": (3, 32, 32), "lr": (3, 8, 8), "lr_up": (3, 32, 32), "ref": (3, 32, 32),
                      "ref_w": (3, 32, 32), "ref_w_lq": (3, 8, 8), "ref_w_up": (3, 32, 32)}
    assert all(v.dtype == torch.float32 and 0 <= v.min() and v.max() <= 1 for v in s.values())
    hr = (s["hr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(s["lr"].permute(1, 2, 0).numpy() * 255, pil_bicubic(hr, (8, 8)))
    again = ds[7]
    assert all(torch.equal(s[k], again[k]) for k in s)
    assert not torch.equal(ds[8]["hr"], s["hr"])


def test_dataset_reference_folder_and_bad_files(image_dir, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for p in image_dir.iterdir():
        Image.open(p).convert("L").save(refs / (p.stem + ".jpg"))   # other extension, grayscale
    with pytest.warns(UserWarning, match="not RGB"):
        ds = RefSRTrainSet(image_dir, refs, gt_size=GT)
    assert ds[0]["ref"].shape == (3, GT, GT)
    (refs / "coffee.jpg").unlink()
    with pytest.raises(DataError, match="coffee.png"):
        RefSRTrainSet(image_dir, refs, gt_size=GT)
    with pytest.warns(UserWarning, match=r"smaller than gt_size 48: coffee.png \(60x40\)"):
        assert len(RefSRTrainSet(image_dir, gt_size=48)) == 2
    with pytest.raises(ValueError, match="multiple of 4"):
        check_gt_size(30)


# ---------------------------------------------------------------------------------------------- trainer

def test_a_few_steps_lower_the_loss_and_follow_the_schedule(image_dir):
    torch.manual_seed(0)
    cfg = TrainConfig(variant="c2-matching", gt_size=GT, batch_size=1, milestones=(2,))
    trainer = Trainer(build_model("c2-matching"), cfg)
    batch = _batch(RefSRTrainSet(image_dir, gt_size=GT, seed=0), [0])
    frozen = {k: v.clone() for k, v in trainer.model.net_extractor.state_dict().items()}
    losses, lrs = [], []
    for _ in range(4):
        lrs.append([g["lr"] for g in trainer.opt_g.param_groups])
        losses.append(trainer.step(batch)["l_total"])
    assert losses[-1] < losses[0], losses
    # the learning rates drop after iteration 2 (the scheduler steps once per iteration)
    assert lrs[1] == [1e-4, 1e-4, 1e-6, 1e-5]
    assert lrs[2] == pytest.approx([1e-5, 1e-5, 1e-7, 1e-6])
    assert trainer.iteration == 4
    assert all(torch.equal(v, trainer.model.net_extractor.state_dict()[k]) for k, v in frozen.items())


def test_resume_restores_the_run(image_dir, vgg_file, tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(variant="c2-matching", gt_size=GT, batch_size=2, gan=True, gan_start=0)
    vgg = VGG19Relu5.from_torchvision(vgg_file)
    trainer = Trainer(build_model("c2-matching"), cfg, perceptual_vgg=vgg)
    ds = RefSRTrainSet(image_dir, gt_size=GT, seed=0)
    logs = trainer.step(_batch(ds, [0, 1]))
    assert {"l_d", "gp", "l_percep", "l_gan"} <= set(logs)
    torch.save(trainer.state_dict(), tmp_path / "run.state")

    state = read_state_file(tmp_path / "run.state", "state")
    resumed = Trainer.from_state(state, perceptual_vgg=vgg)
    assert resumed.iteration == 1 and resumed.cfg == cfg
    for a, b in ((trainer.opt_g, resumed.opt_g), (trainer.opt_d, resumed.opt_d)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        assert all(torch.equal(sa["state"][i]["exp_avg"], sb["state"][i]["exp_avg"]) for i in sa["state"])
    assert resumed.sched_g.last_epoch == 1
    # the next step is the same in both: same weights, optimiser moments and RNG (GP's alpha; both
    # trainers share this process's global RNG, so it is reset to the saved state before each)
    batch = _batch(ds, [2, 3])
    torch.set_rng_state(state["rng"]["torch"])
    la = trainer.step(batch)
    torch.set_rng_state(state["rng"]["torch"])
    lb = resumed.step(batch)
    assert la == pytest.approx(lb, rel=1e-5)
    for (name, p), q in zip(trainer.model.net_g.named_parameters(), resumed.model.net_g.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)


# ---------------------------------------------------------------------------------------------- CLI

def test_cli_help():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "--rtrr-weight" in result.output and "--resume" in result.output


def test_cli_trains_writes_a_loadable_bundle_and_resumes(image_dir, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(image_dir), "--out", str(out), "--variant", "c2-matching", "--gt-size", str(GT),
            "--batch-size", "1", "--workers", "0", "--device", "cpu", "--save-every", "1", "--keep", "1"]
    result = CliRunner().invoke(main, args + ["--iters", "2"])
    assert result.exit_code == 0, result.output
    assert "CCN is RANDOM" in result.output
    bundle = out / "models" / "rrsr_iter0000002.pth"
    assert bundle.is_file() and not (out / "models" / "rrsr_iter0000001.pth").exists()   # rotated
    model = load_model(bundle)
    assert model.cfg.variant == "c2-matching"
    assert "iter 2 " in (out / "train.log").read_text()

    again = CliRunner().invoke(main, args + ["--iters", "2"])
    assert again.exit_code == 1 and "already holds a training run" in again.output

    state = out / "states" / "iter0000002.state"
    clash = CliRunner().invoke(main, args + ["--iters", "3", "--resume", str(state), "--batch-size", "2"])
    assert clash.exit_code == 2 and "--batch-size 2 differs" in clash.output
    resumed = CliRunner().invoke(main, args + ["--iters", "3", "--resume", str(state)])
    assert resumed.exit_code == 0, resumed.output
    assert read_state_file(out / "states" / "iter0000003.state", "state")["iteration"] == 3


@pytest.mark.parametrize("extra, code, message", [
    (["--data", "/nonexistent/folder"], 2, "does not exist"),
    (["--gt-size", "30"], 2, "multiple of 4"),
    (["--data", "EMPTY"], 1, "holds no PNG/JPG images"),
    (["--gan"], 1, "--vgg-ckpt"),
])
def test_cli_bad_inputs(image_dir, tmp_path, extra, code, message):
    (tmp_path / "empty").mkdir()
    extra = [str(tmp_path / "empty") if v == "EMPTY" else v for v in extra]
    args = ["--data", str(image_dir), "--out", str(tmp_path / "out"), "--gt-size", str(GT), "--workers", "0"]
    result = CliRunner().invoke(main, args + extra)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_rtrr_gradient_reaches_the_first_pass(image_dir):
    """SR is used undetached as the reference of pass 2, so the RTRR term alone trains pass 1 too."""
    torch.manual_seed(0)
    cfg = TrainConfig(variant="c2-matching", gt_size=GT, batch_size=1, pixel_weight=0.0)
    trainer = Trainer(build_model("c2-matching"), cfg)
    outputs = []

    def keep_grad(module, inputs, out):
        out.retain_grad()
        outputs.append(out)

    trainer.model.net_g.register_forward_hook(keep_grad)
    trainer.step(_batch(RefSRTrainSet(image_dir, gt_size=GT, seed=0), [0]))
    first_pass_sr = outputs[0]
    assert first_pass_sr.grad is not None and first_pass_sr.grad.abs().sum() > 0
