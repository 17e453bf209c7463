"""rrsr_post (Triton Python backend; numpy only): the network's ``sr_padded`` (FP32 [1, 3, H', W']) and
``valid_size`` (INT64 [2]) -> the wire outputs ``sr`` (UINT8 [4h, 4w, 3], clamped and rounded) and ``sr_float``
(FP32 [3, 4h, 4w], unclamped): the crop back to 4x the LR, as ``runtime.backends.super_resolve`` does. Written by
rrsr-triton-repo; ``rrsr_preprocess.py`` beside this file is rrsr_model/preprocess.py."""
import os
import sys

import numpy as np
import triton_python_backend_utils as pb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrsr_preprocess as pp  # noqa: E402


class TritonPythonModel:
    def execute(self, requests):
        return [self._one(r) for r in requests]

    def _one(self, request):
        sr = pb.get_input_tensor_by_name(request, "sr_padded").as_numpy()
        vs = pb.get_input_tensor_by_name(request, "valid_size").as_numpy()
        if sr.ndim != 4 or sr.shape[:2] != (1, 3) or vs.shape != (2,) or not (
                0 < vs[0] <= sr.shape[2] and 0 < vs[1] <= sr.shape[3]):
            msg = f"sr_padded {sr.shape} and valid_size {vs.tolist()} do not fit (expected (1, 3, H, W), H >= h, W >= w)"
            return pb.InferenceResponse(error=pb.TritonError(msg, pb.TritonError.INVALID_ARG))
        out = np.ascontiguousarray(sr[0, :, : int(vs[0]), : int(vs[1])], dtype=np.float32)
        return pb.InferenceResponse([pb.Tensor("sr", np.ascontiguousarray(pp.sr_to_uint8(out))),
                                     pb.Tensor("sr_float", out)])
