"""The Triton Python-backend model behind ``rrsr-serve``, run by each instance's stub process.

Each instance loads one runner with ``runtime.backends.load_runner`` (the backend and device that rrsr-serve
resolved at start) and answers every request on its own with ``runtime.backends.super_resolve``
(``rrsr_model.prepare_inputs``, the memory check of runtime.infer, the runner, the crop back to 4x the LR). A bad
request gets its own one-line error naming the input (INVALID_ARG, HTTP 400); the others in the same call are
unaffected. The generated ``model.py`` only imports this class (see ``runtime.serve``)."""
from __future__ import annotations

import json


def _pb():
    import triton_python_backend_utils as pb       # provided by the stub, importable only there
    return pb


def load_spec(args: dict) -> dict:
    """rrsr-serve's JSON spec from the model config's ``rrsr_serve`` parameter."""
    params = json.loads(args["model_config"]).get("parameters", {})
    return json.loads(params["rrsr_serve"]["string_value"])


class TritonPythonModel:
    def initialize(self, args):
        import torch

        from .backends import ModelFiles, load_runner
        spec = load_spec(args)
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        device = spec["device"]
        if args.get("model_instance_kind") == "GPU" and device.startswith("cuda"):
            device = f"cuda:{args['model_instance_device_id']}"
        self.runner = load_runner(spec["backend"], ModelFiles(**spec["files"]), device).runner
        self.check_memory = bool(spec.get("check_memory", True))
        d = self.runner.describe()
        _pb().Logger.log_info(f"rrsr instance {args.get('model_instance_name')}: {d['backend']} {d['precision']} "
                              f"on {d['device']}, {d['model']}")

    def execute(self, requests):
        return [self._one(r) for r in requests]

    def _one(self, request):
        import numpy as np

        from rrsr_model.images import to_uint8

        from .backends import BackendError, super_resolve
        pb = _pb()
        try:
            lr = pb.get_input_tensor_by_name(request, "lr").as_numpy()
            ref = pb.get_input_tensor_by_name(request, "ref").as_numpy()
            res = super_resolve(self.runner, lr, ref, check_memory=self.check_memory)
        except (ValueError, TypeError) as e:              # prepare_inputs names the input ("lr: ...", "ref: ...")
            return _error(pb, str(e), pb.TritonError.INVALID_ARG)
        except MemoryError as e:                          # check_fits: the estimate against the free memory
            return _error(pb, f"lr: {e}", pb.TritonError.INVALID_ARG)
        except BackendError as e:
            return _error(pb, str(e), pb.TritonError.INTERNAL)
        except Exception as e:  # noqa: BLE001 - any other failure answers this request, never the server's end
            pb.Logger.log_error(f"rrsr: {type(e).__name__}: {e}")
            return _error(pb, f"internal error: {type(e).__name__}: {e}", pb.TritonError.INTERNAL)
        sr = np.ascontiguousarray(res.sr, dtype=np.float32)
        return pb.InferenceResponse([pb.Tensor("sr", np.ascontiguousarray(to_uint8(sr))), pb.Tensor("sr_float", sr)])

    def finalize(self):
        if getattr(self, "runner", None) is not None:
            self.runner.close()


def _error(pb, message: str, code):
    line = " ".join(str(message).split())               # one line, whatever the exception carried
    return pb.InferenceResponse(error=pb.TritonError(line, code))
