"""A client of the wire contract (rrsr-serve, or the ``rrsr`` ensemble of rrsr-triton-repo in a Triton container)
over HTTP with tritonclient: the README's example, used by the serving benchmark and the tests.

    import tritonclient.http as httpclient
    from runtime.serve_client import super_resolve_remote
    client = httpclient.InferenceServerClient("127.0.0.1:8000")
    sr, sr_float = super_resolve_remote(client, lr, ref)   # uint8 (4h, 4w, 3), float32 (3, 4h, 4w)
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .triton_config import MODEL_NAME

def make_inputs(**arrays: np.ndarray):
    """tritonclient HTTP inputs, binary-encoded, with the Triton type of each array's dtype."""
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype
    out = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        i = httpclient.InferInput(name, list(a.shape), np_to_triton_dtype(a.dtype))
        i.set_data_from_numpy(a, binary_data=True)
        out.append(i)
    return out


def super_resolve_remote(client, lr: np.ndarray, ref: np.ndarray, model: str = MODEL_NAME,
                         timeout_s: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """(sr uint8 (4h, 4w, 3), sr_float float32 (3, 4h, 4w)) for one uint8 RGB LR and reference;
    tritonclient's InferenceServerException (with the server's one-line message) on a refused request."""
    import tritonclient.http as httpclient
    outputs = [httpclient.InferRequestedOutput("sr", binary_data=True),
               httpclient.InferRequestedOutput("sr_float", binary_data=True)]
    kw = {"timeout": int(timeout_s * 1e6)} if timeout_s else {}
    r = client.infer(model, make_inputs(lr=lr, ref=ref), outputs=outputs, **kw)
    return r.as_numpy("sr"), r.as_numpy("sr_float")
