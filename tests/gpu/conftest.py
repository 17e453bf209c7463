"""GPU checks of the plugins' CUDA kernels through the PyTorch extension (plugins/torch).

Every test here needs CUDA and the built extension; without them they skip with the reason. Run on the GPU
machine through scripts/gpu_check.sh (which builds the extension first and fails loudly if that fails).
"""
import pytest
import torch


@pytest.fixture(scope="session")
def ext():
    if not torch.cuda.is_available():
        pytest.skip(f"CUDA not available (torch {torch.__version__}); run scripts/gpu_check.sh on a GPU machine")
    import plugins.torch as pt
    try:
        mod = pt.build()
    except Exception as e:  # noqa: BLE001 - the reason is what matters here
        pytest.skip(f"plugins/torch extension did not build: {type(e).__name__}: {str(e)[-2000:]}")
    return mod


@pytest.fixture(autouse=True)
def _strict_fp32():
    # The references run through cuDNN / cuBLAS: TF32 would make *them* the inaccurate side of a 1e-4 check.
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
