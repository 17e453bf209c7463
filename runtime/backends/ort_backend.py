"""ONNX Runtime backend: an exported graph (``rrsr-export``) with the project's custom-op library registered when
the graph has rrsr nodes (``export.check.ort_session``); the CUDA provider when onnxruntime-gpu offers it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .base import BackendError, BackendUnavailable, Feeds, Loader, Runner, to_feeds

CUDA_EP, CPU_EP = "CUDAExecutionProvider", "CPUExecutionProvider"


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def graph_precision(proto) -> str:
    """The precision rrsr-export recorded; for graphs without that record, fp16 when the graph carries FP16
    weights (the FP16-policy export), else fp32."""
    from onnx import TensorProto

    from export.metadata import read_metadata
    recorded = read_metadata(proto).get("precision")
    if recorded in ("fp32", "fp16"):
        return recorded
    return "fp16" if any(i.data_type == TensorProto.FLOAT16 for i in proto.graph.initializer) else "fp32"


def graph_matching(proto) -> str:
    """"streaming" when the graph matches with the RrsrPatchMatch op (bounded memory), else "dense"."""
    return "streaming" if any(n.op_type == "RrsrPatchMatch" for n in proto.graph.node) else "dense"


class OrtRunner(Runner):
    name = "ort"

    def __init__(self, session, info: dict):
        self.session, self.info = session, info
        self._out = self.session.get_outputs()[0].name

    def run(self, inputs: Feeds) -> np.ndarray:
        feeds = to_feeds(inputs)
        names = {i.name for i in self.session.get_inputs()}
        try:
            out = self.session.run([self._out], {k: v for k, v in feeds.items() if k in names})[0]
        except Exception as e:    # onnxruntime raises its own exception types per status code
            raise BackendError(f"ONNX Runtime failed on {self.info['model']} with inputs "
                               f"{ {k: v.shape for k, v in feeds.items()} }: {str(e).splitlines()[0]}") from None
        return np.asarray(out, dtype=np.float32)

    def describe(self) -> dict:
        return dict(self.info)

    def close(self) -> None:
        self.session = None


class OrtLoader(Loader):
    """``device``: 'cpu', 'cuda' (needs onnxruntime-gpu) or 'auto' (CUDA when available); ``threads``: ORT's
    intra-op threads (default: ORT's own, one per core)."""
    name = "ort"

    def __init__(self, onnx_path, device: str = "auto", library: Optional[str] = None,
                 threads: Optional[int] = None):
        self.onnx_path, self.device, self.library, self.threads = onnx_path, device, library, threads

    def providers(self) -> list[str]:
        have = available_providers()
        if not have:
            raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime, or onnxruntime-gpu)")
        if self.device == "cpu":
            return [CPU_EP]
        if self.device.startswith("cuda"):
            if CUDA_EP not in have:
                raise BackendUnavailable(f"device {self.device!r} asked for, but this onnxruntime offers only "
                                         f"{', '.join(have)} (install onnxruntime-gpu)")
            return [CUDA_EP, CPU_EP]
        if self.device != "auto":
            raise BackendError(f"unknown device {self.device!r}; use cpu, cuda or auto")
        return [CUDA_EP, CPU_EP] if CUDA_EP in have else [CPU_EP]

    def load(self) -> OrtRunner:
        import onnx
        import onnxruntime as ort

        from export.check import ort_session, uses_custom_ops
        path = Path(self.onnx_path)
        if not path.is_file():
            raise BackendError(f"ONNX file not found: {path}")
        providers = self.providers()
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:     # protobuf DecodeError and friends
            raise BackendError(f"cannot read ONNX file {path}: not an ONNX model or corrupt "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        custom = uses_custom_ops(proto)
        try:
            # ort_session registers the custom-op library only when the graph needs it; the path (not the
            # proto) so that external data next to the file is found
            session = ort_session(path, providers=providers, library=self.library, threads=self.threads)
        except FileNotFoundError as e:            # the custom-op library (require_library / RRSR_ORT_OPS_LIB)
            raise BackendError(f"{path} has rrsr custom nodes, but the ONNX Runtime custom-op library is "
                               f"missing: {e}") from None
        except Exception as e:
            raise BackendError(f"ONNX Runtime cannot load {path}: {str(e).splitlines()[0]}") from None
        used = session.get_providers()
        info = {"backend": "ort", "precision": graph_precision(proto),
                "device": "cuda" if CUDA_EP in used else "cpu", "providers": used, "model": str(path),
                "custom_ops": custom, "onnxruntime": ort.__version__, "matching": graph_matching(proto),
                "intra_op_threads": self.threads or "onnxruntime default"}
        if custom:
            from plugins.ort_library import find_library
            info["custom_op_library"] = self.library or find_library()
        del proto
        return OrtRunner(session, info)
