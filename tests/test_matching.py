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
    assert pm_ops.registered_kernel("cpu") is None                # the context restores the reference kernel
    m = compare_matching(model, lr_up, ref, own.numpy())
    assert m == {"patches": 36, "differ": 0, "max_gap": 0.0, "near_ties_only": True}
    m = compare_matching(model, lr_up, ref, other.numpy())
    assert m["differ"] == 1 and m["max_gap"] > 0
    with pytest.raises(ValueError, match="shared correspondence has shape"):
        with matching_kernel(fixed_index_kernel(np.zeros((1, 2, 2), np.int32))), torch.no_grad():
            model(lr, lr_up, ref)


def test_ort_patch_match_on_real_images_matches_pytorch_except_near_ties():
    """The custom-op library's RrsrPatchMatch vs the PyTorch reference on the demo model's CCN features of the
    bundled sample pairs (real images): identical indices except near-ties, which are counted."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from plugins.ort_library import find_library
    from rrsr_model.demo import DEMO_CKPT, SAMPLES, sample_pairs
    from rrsr_model.images import load_rgb
    from rrsr_model.inference import prepare_inputs
    lib = find_library()
    if lib is None:
        pytest.skip("ORT custom-op library not built (bash scripts/build_plugins.sh)")
    node = helper.make_node("RrsrPatchMatch", ["F_in", "F_ref"], ["index", "score"], domain="rrsr", patch_size=3)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("F_in", "F_ref")]
    outs = [helper.make_tensor_value_info("index", TensorProto.INT32, None),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, None)]
    graph = helper.make_model(helper.make_graph([node], "pm", vi, outs),
                              opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("rrsr", 1)])
    so = ort.SessionOptions()
    so.register_custom_ops_library(lib)
    sess = ort.InferenceSession(graph.SerializeToString(), so, providers=["CPUExecutionProvider"])
    model = rrsr_model.load_model(DEMO_CKPT)
    total = differ = 0
    for name, lr_p, ref_p, _ in sample_pairs(SAMPLES):
        x = prepare_inputs(load_rgb(lr_p), load_rgb(ref_p))
        with torch.no_grad():
            f_in, f_ref = model.net_extractor(x.lr_up, x.ref)
        idx, score = sess.run(None, {"F_in": f_in.numpy(), "F_ref": f_ref.numpy()})
        ref_idx, ref_score = pm_ops.patch_match_reference(f_in, f_ref, 3)
        assert np.abs(score - ref_score.numpy()).max() < 1e-5
        m = compare_matching(model, x.lr_up, x.ref, idx)
        print(f"{name}: {m['differ']} of {m['patches']} patches differ, max score gap {m['max_gap']:.1e}")
        assert m["near_ties_only"]
        total, differ = total + m["patches"], differ + m["differ"]
    assert differ <= 0.005 * total
