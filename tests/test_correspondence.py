"""Matching and pre-offsets: known shifts are recovered; chunking does not change the result."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rrsr_model
from rrsr_model.blocks.correspondence import CorrespondenceGeneration, index_to_flow, shifted_pre_offsets
from rrsr_model.ops.patch_match import feature_match_index, patch_match, sample_patches


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(rng.random((1, 3, h, w), dtype=np.float32))
    return F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, 1)  # mild blur, still distinctive


def test_recovers_known_integer_shift():
    torch.manual_seed(0)
    model = rrsr_model.build_model().eval()
    ccn = model.net_extractor
    ccn.feature_extraction_image2.load_state_dict(ccn.feature_extraction_image1.state_dict())
    big = _texture(96, 112)
    dy, dx = 8, 12                                      # HR pixels -> (2, 3) feature pixels
    img, ref = big[..., 16:80, 16:96], big[..., 16 + dy:80 + dy, 16 + dx:96 + dx]
    with torch.no_grad():
        pre, _ = model.correspond(img, ref)
    flow = pre["relu3_1"][0, 0]                           # tap (0, 0): the unshifted 1x flow, 16x20 cells
    inner = flow[3:13, 4:16]        # patches whose content exists in ref, away from zero-padding effects
    expected = torch.tensor([-dx / 4, -dy / 4])          # content at p in img is at p - d in ref
    frac = (inner == expected).all(-1).float().mean().item()
    assert frac == 1.0, f"only {frac:.2%} of interior cells recovered the shift"
    assert (flow[:, 18:] == 0).all() and (flow[14:] == 0).all()          # zero padding of the patch grid


def test_chunking_and_ties_give_global_first_max():
    torch.manual_seed(1)
    fi = F.normalize(torch.randn(8, 9, 10), dim=0)
    fr = F.normalize(torch.randn(8, 9, 10), dim=0)
    fr[:, 0:3, 5:8] = fr[:, 4:7, 0:3]                    # duplicate patch -> exact ties
    idx_one, val_one = feature_match_index(fi, fr, chunk_elements=1 << 30)
    idx_small, val_small = feature_match_index(fi, fr, chunk_elements=7 * 8 * 5)
    assert torch.equal(idx_one, idx_small) and torch.allclose(val_one, val_small, atol=1e-6)
    # patch 32 (row 4, col 0) duplicates patch 5 (row 0, col 5): the first one must win every tie
    assert (idx_one == 5).any() and not (idx_one == 32).any()
    # brute force: unfolded patches, first maximum wins
    p = sample_patches(fr, 3, 1).reshape(-1, 7 * 8)
    p = p / (p.norm(dim=0) + 1e-5)
    q = F.unfold(fi.unsqueeze(0), 3)[0]
    scores = p.t() @ q
    best = scores.max(0).values
    assert torch.allclose(val_one.flatten(), best, atol=1e-5)


def test_index_to_flow_and_shifts():
    idx = torch.tensor([[[0, 1], [2, 3]]])               # identity on a 2x2 patch grid
    flow = index_to_flow(idx, 3)
    assert flow.shape == (1, 4, 4, 2) and flow.abs().max() == 0
    idx = torch.tensor([[[3, 3], [3, 3]]])               # everything matches patch (1, 1)
    flow = index_to_flow(idx, 3)[0]
    assert flow[0, 0].tolist() == [1.0, 1.0] and flow[1, 1].tolist() == [0.0, 0.0] and flow[3, 3].tolist() == [0, 0]
    pre = shifted_pre_offsets(index_to_flow(idx, 3), 2)[0]   # (9, 8, 8, 2)
    assert pre.shape == (9, 8, 8, 2)
    base = pre[0]
    assert torch.equal(pre[4][2:, 2:], base[:-2, :-2]) and pre[4][:2].abs().max() == 0   # tap (1,1): shift 2
    assert base[0, 0].tolist() == [2.0, 2.0] and torch.equal(base[:2, :2], base[:1, :1].expand(2, 2, 2))


def test_index_to_flow_large_indices_exact():
    idx = torch.arange(997 * 997 - 100, 997 * 997).reshape(1, 1, 100)   # width 100 grid, big indices
    flow = index_to_flow(idx, 3)[0, 0, :100]
    gx = torch.arange(100)
    assert torch.equal(flow[:, 0], ((idx[0, 0] % 100) - gx).float())
    assert torch.equal(flow[:, 1], (idx[0, 0] // 100).float())


def test_dense_matcher_equals_the_op():
    torch.manual_seed(2)
    corr = CorrespondenceGeneration()
    fi, fr = torch.randn(2, 16, 9, 11), torch.randn(2, 16, 9, 11)
    by_op = corr.match_index(fi, fr)
    corr.matcher = "dense"
    dense = corr.match_index(fi, fr)
    assert dense.shape == (2, 7, 9) and torch.equal(dense.long(), by_op.long())


def _brute_force(fi, fr, k):
    """The op's definition, in float64: normalise per pixel, unfold, score matrix, first argmax."""
    fi = F.normalize(fi.double(), dim=1)
    fr = F.normalize(fr.double(), dim=1)
    p_in = F.unfold(fi, k)                                   # (N, C*k*k, Nq)
    p_ref = F.unfold(fr, k)
    p_ref = p_ref / (p_ref.norm(dim=1, keepdim=True) + 1e-5)
    scores = torch.bmm(p_ref.transpose(1, 2), p_in)          # (N, Nr, Nq)
    top2 = scores.topk(2, dim=1).values
    return scores.argmax(1), scores.max(1).values, (top2[:, 0] - top2[:, 1])


def test_patch_match_op_unequal_sizes_and_near_ties():
    torch.manual_seed(3)
    fi, fr = torch.randn(2, 16, 9, 11), torch.randn(2, 16, 7, 13)
    for k in (1, 3):
        idx, score = patch_match(fi, fr, k)
        assert idx.dtype == torch.int32 and score.dtype == torch.float32
        assert idx.shape == (2, 9 - k + 1, 11 - k + 1)
        want_idx, want_score, gap = _brute_force(fi, fr, k)
        near = gap.reshape(idx.shape) < 1e-5
        same = idx.long() == want_idx.reshape(idx.shape)
        assert bool((same | near).all()), f"k={k}: {int((~same & ~near).sum())} wrong indices"
        print(f"k={k}: {int(near.sum())} near-tie positions of {near.numel()}")
        assert torch.allclose(score.double(), want_score.reshape(idx.shape), atol=1e-5)


def test_patch_match_op_ties_and_errors():
    fi = torch.randn(1, 4, 6, 6)
    fr = torch.randn(1, 4, 6, 6)
    fr[:, :, 3:6, 3:6] = fr[:, :, 0:3, 0:3]                  # patch 15 (row 3, col 3) duplicates patch 0
    idx, _ = patch_match(fr, fr, 3)
    assert idx[0, 3, 3] == 0 and idx[0, 0, 0] == 0          # the lower index wins the exact tie
    with pytest.raises(ValueError, match="equal N and C"):
        patch_match(fi, torch.randn(1, 5, 6, 6))
    with pytest.raises(ValueError, match="patch_size 7"):
        patch_match(fi, fr, 7)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        patch_match(fi[0], fr)
