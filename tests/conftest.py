"""Fixtures shared by the serving tests (test_serve.py, test_triton_repo.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory):
    """The demo checkpoint exported once per session as a plugin-flavour graph (run by ONNX Runtime with the
    project's custom-op library); skips when the library is not built."""
    import onnx

    from export.onnx_export import ExportOptions, export_model
    from plugins.ort_library import find_library
    from rrsr_model.checkpoint import load_model
    from rrsr_model.demo import DEMO_CKPT
    if find_library() is None:
        pytest.skip("the ONNX Runtime custom-op library is not built (bash scripts/build_plugins.sh)")
    path = tmp_path_factory.mktemp("demo-onnx") / "rrsr.onnx"
    onnx.save(export_model(load_model(DEMO_CKPT), ExportOptions(flavour="plugin", lr_size=(16, 16), min_lr=8,
                                                                  max_lr=256)), str(path))
    return path
