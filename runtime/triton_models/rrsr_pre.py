"""rrsr_pre (Triton Python backend; numpy + Pillow): the wire inputs ``lr``, ``ref`` (UINT8 [h, w, 3] RGB) -> the
network's ``lr``, ``lr_up``, ``ref`` (FP32 [1, 3, ., .] in [0, 1]) and ``valid_size`` (INT64 [2]), exactly as
``rrsr_model.prepare_inputs`` (the same code: ``rrsr_preprocess.py`` beside this file is rrsr_model/preprocess.py).
Written by rrsr-triton-repo. Parameters: ``min_lr`` / ``max_lr`` ("HxW", optional), the padded LR range the network
accepts (a TensorRT engine's profiles). A request it cannot use gets its own one-line error naming the input."""
import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrsr_preprocess as pp  # noqa: E402


def _hw(params, key):
    v = params.get(key, {}).get("string_value", "")
    return tuple(int(x) for x in v.lower().split("x")) if v else None


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.min_lr, self.max_lr = _hw(params, "min_lr"), _hw(params, "max_lr")

    def execute(self, requests):
        return [self._one(r) for r in requests]

    def _one(self, request):
        try:
            lr = pb.get_input_tensor_by_name(request, "lr").as_numpy()
            ref = pb.get_input_tensor_by_name(request, "ref").as_numpy()
            p = pp.prepare_arrays(lr, ref)
            self._check_range(p.lr.shape[:2])
        except (ValueError, TypeError) as e:
            return pb.InferenceResponse(error=pb.TritonError(" ".join(str(e).split()), pb.TritonError.INVALID_ARG))
        return pb.InferenceResponse([
            pb.Tensor("lr", pp.to_nchw_float(p.lr)), pb.Tensor("lr_up", pp.to_nchw_float(p.lr_up)),
            pb.Tensor("ref", pp.to_nchw_float(p.ref)), pb.Tensor("valid_size", np.asarray(p.out_hw, dtype=np.int64))])

    def _check_range(self, hw):
        lo, hi = self.min_lr, self.max_lr
        if (lo and (hw[0] < lo[0] or hw[1] < lo[1])) or (hi and (hw[0] > hi[0] or hw[1] > hi[1])):
            rng = f"{lo[0] if lo else 1}x{lo[1] if lo else 1}..{hi[0] if hi else 'any'}x{hi[1] if hi else 'any'}"
            raise ValueError(f"lr: {hw[0]}x{hw[1]} (after padding to the reference) is outside the LR range "
                             f"the network was built for ({rng})")
