"""Shared-correspondence parity (export.matching): the graph's RrsrPatchMatch index fed to the PyTorch model,
and the correspondence compared with PyTorch's own."""
import numpy as np
import pytest
import torch

import rrsr_model
from export.matching import compare_matching, fixed_index_kernel, index_output, matching_kernel, with_index_output
from export.onnx_export import ExportOptions, export_model, sample_inputs
from rrsr_model.ops import patch_match as pm_ops


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(4)
    return rrsr_model.build_model("c2-matching").eval()


def test_index_output_only_for_patch_match_graphs(model):
    plugin = export_model(model, ExportOptions(flavour="plugin", lr_size=(8, 8), dynamic=False))
    aug = with_index_output(plugin)
    assert aug is not None and aug.graph.output[-1].name == index_output(plugin)
    assert len(aug.graph.output) == len(plugin.graph.output) + 1
    standard = export_model(model, ExportOptions(flavour="standard", lr_size=(8, 8), dynamic=False))
    assert index_output(standard) is None and with_index_output(standard) is None


def test_fixed_correspondence_drives_the_model_and_differences_are_measured(model):
    lr, lr_up, ref, _ = sample_inputs(1, (8, 8))
    with torch.no_grad():
        f_in, f_ref = model.net_extractor(lr_up, ref)
        own, _ = pm_ops.patch_match_reference(f_in, f_ref, 3)
        base = model(lr, lr_up, ref)
        with matching_kernel(fixed_index_kernel(own.numpy())):
            same = model(lr, lr_up, ref)
        other = own.clone()
        other[0, 2, 3] = (int(other[0, 2, 3]) + 7) % 36          # a different, worse patch at one position
        with matching_kernel(fixed_index_kernel(other.numpy())):
            moved = model(lr, lr_up, ref)
    assert torch.equal(base, same) and not torch.equal(base, moved)
    assert pm_ops._KERNELS.get("cpu") is None                     # the context restores the reference kernel
    m = compare_matching(model, lr_up, ref, own.numpy())
    assert m == {"patches": 36, "differ": 0, "max_gap": 0.0, "near_ties_only": True}
    m = compare_matching(model, lr_up, ref, other.numpy())
    assert m["differ"] == 1 and m["max_gap"] > 0
    with pytest.raises(ValueError, match="shared correspondence has shape"):
        with matching_kernel(fixed_index_kernel(np.zeros((1, 2, 2), np.int32))), torch.no_grad():
            model(lr, lr_up, ref)
