"""Generator structure against the spec (rrsr_model.md §4): parameter counts, key names and shapes."""
import pytest
import torch

import rrsr_model

RB = {"conv1.weight": (64, 64, 3, 3), "conv1.bias": (64,), "conv2.weight": (64, 64, 3, 3), "conv2.bias": (64,)}


def _conv(prefix, cout, cin, k=3):
    return {f"{prefix}.weight": (cout, cin, k, k), f"{prefix}.bias": (cout,)}


def _body(prefix, n):
    return {f"{prefix}.{i}.{k}": s for i in range(n) for k, s in RB.items()}


def _ras(prefix, c):
    return {f"{prefix}.weight": (16, 64, c, 3, 3), f"{prefix}.bias": (16, 64),
            f"{prefix}.routing_func.0.weight": (16, c), f"{prefix}.routing_func.0.bias": (16,),
            **_conv(f"{prefix}.se.0", c, c, 1), **_conv(f"{prefix}.se.2", 64, c, 1)}


def expected_keys(variant):
    """The key table of spec §4.3, written out independently of the model code."""
    fas = {"rrsr": ["_first", "_second", "_third"], "rrsr-s": ["_first", "_second"], "c2-matching": [""]}[variant]
    n_body = 16 if variant == "c2-matching" else 5
    d = {"content_extractor.conv_first.weight": (64, 3, 3, 3), "content_extractor.conv_first.bias": (64,),
         **_body("content_extractor.body", 16)}
    p = "dyn_agg_restore."
    for scale, c, sfxs in (("small", 256, [""]), ("medium", 128, fas), ("large", 64, fas)):
        for s in sfxs:
            d.update(_conv(f"{p}{scale}_offset_conv1{s}", c, 64 + c))
            d.update(_conv(f"{p}{scale}_offset_conv2{s}", c, c))
            d.update(_conv(f"{p}{scale}_dyn_agg{s}", c, c))
            d.update(_conv(f"{p}{scale}_dyn_agg{s}.conv_offset_mask", 216, c))
            if variant == "c2-matching":
                d.update(_conv(f"{p}head_{scale}{s}.0", 64, 64 + c))
            else:
                d.update(_ras(f"{p}head_{scale}{s}", 64 + c))
            d.update(_body(f"{p}body_{scale}{s}", 16 if scale == "small" else n_body))
    d.update(_conv(f"{p}tail_small.0", 256, 64))
    d.update(_conv(f"{p}tail_medium.0", 256, 64))
    d.update(_conv(f"{p}tail_large.0", 32, 64))
    d.update(_conv(f"{p}tail_large.2", 3, 32))
    return d


@pytest.mark.parametrize("variant,count,n_keys", [("rrsr", 22_594_651, 370), ("rrsr-s", 17_787_787, None),
                                                   ("c2-matching", 8_865_547, None)])
def test_generator_parameter_count_and_keys(variant, count, n_keys):
    model = rrsr_model.build_model(variant)
    assert sum(p.numel() for p in model.net_g.parameters()) == count
    got = {k: tuple(v.shape) for k, v in model.net_g.state_dict().items()}
    assert got == expected_keys(variant)
    if n_keys is not None:
        assert len(got) == n_keys
    assert len(list(model.net_g.buffers())) == 0


def test_ccn_and_vgg_keys():
    model = rrsr_model.build_model()
    ccn = model.net_extractor.state_dict()
    assert len(ccn) == 24
    assert ccn["feature_extraction_image2.model.conv3_1.weight"].shape == (256, 128, 3, 3)
    assert ccn["feature_extraction_image1.mean"].shape == (1, 3, 1, 1)
    assert sum(p.numel() for p in model.net_extractor.parameters()) == 1_110_656
    vgg = model.net_map.vgg.state_dict()
    assert sorted(vgg) == sorted(f"features.{i}.{s}" for i in (0, 2, 5, 7, 10) for s in ("weight", "bias"))
    assert sum(v.numel() for v in vgg.values()) == 555_328


def test_initialisation_as_authors():
    net_g = rrsr_model.build_model().net_g
    r = net_g.dyn_agg_restore
    # offset predictors start at zero; RB convs N(0, 0.02); DCN main kernel keeps uniform(+-1/sqrt(C*9))
    assert r.large_dyn_agg_third.conv_offset_mask.weight.abs().max() == 0
    assert abs(r.body_small[0].conv1.weight.std().item() - 0.02) < 0.002
    bound = 1 / (256 * 9) ** 0.5
    w = r.small_dyn_agg.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert abs(r.head_small.weight.std().item() - 0.02) < 0.002 and r.head_small.bias.abs().max() == 0


def test_forward_shapes_all_variants():
    torch.manual_seed(0)
    for variant in rrsr_model.VARIANTS:
        model = rrsr_model.build_model(variant).eval()
        lr = torch.rand(2, 3, 8, 12)
        with torch.no_grad():
            sr = model(lr, torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48))
        assert sr.shape == (2, 3, 32, 48) and torch.isfinite(sr).all()
