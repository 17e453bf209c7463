"""RAS: the batched (grouped-conv) implementation equals a per-sample loop; valid-region means."""
import torch
import torch.nn.functional as F

from rrsr_model.blocks.ras import RefAwareBlock


def _per_sample(block, x, ref, valid=None):
    outs = []
    for b in range(x.shape[0]):
        z = torch.cat([x[b:b + 1], ref[b:b + 1]], 1)
        zz = z if valid is None else z[:, :, :valid[0], :valid[1]]
        mu = zz.mean((2, 3))
        r = torch.sigmoid(block.routing_func[0](mu))[0]
        k = (r.view(-1, 1, 1, 1, 1) * block.weight).sum(0)
        beta = (r.view(-1, 1) * block.bias).sum(0)
        y = F.conv2d(z, k, beta, padding=1)
        g = block.se(mu[:, :, None, None])
        outs.append(y * g)
    return torch.cat(outs)


def test_batched_equals_loop():
    torch.manual_seed(0)
    block = RefAwareBlock(64, 64, 64, 16)
    for m in block.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.normal_(m.weight, 0, 0.1)
            torch.nn.init.normal_(m.bias, 0, 0.1)
    torch.nn.init.normal_(block.bias, 0, 0.1)
    x, ref = torch.randn(3, 64, 7, 9), torch.randn(3, 64, 7, 9)
    assert torch.allclose(block(x, ref), _per_sample(block, x, ref), atol=1e-5)
    valid = torch.tensor([5, 6])
    out = block(x, ref, valid)
    assert torch.allclose(out, _per_sample(block, x, ref, (5, 6)), atol=1e-5)
    assert not torch.allclose(out, block(x, ref), atol=1e-4)   # the region matters


def test_gradients_flow():
    torch.manual_seed(0)
    block = RefAwareBlock(8, 8, 8, 4)
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    block(x, torch.randn(2, 8, 5, 5)).square().sum().backward()
    assert x.grad.abs().sum() > 0 and block.weight.grad.abs().sum() > 0 and block.se[0].weight.grad is not None
