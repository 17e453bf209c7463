"""Triton model configurations: the wire contract of the served model ``rrsr``, and ``to_pbtxt`` that turns a
config dict into ``config.pbtxt`` through Triton's own model-config protobuf (``inference.ModelConfig``, as
generated in ``tritonclient.grpc.model_config_pb2``), so an unknown field, a wrong enum or a wrong type is an error
when the file is written, not when a server reads it."""
from __future__ import annotations

from typing import Optional, Sequence

MODEL_NAME = "rrsr"
MODEL_VERSION = "1"

# The wire contract (README "Serving"): no batch dimension, sizes vary per request.
WIRE_INPUTS = [
    {"name": "lr", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]},     # RGB LR (h, w, 3)
    {"name": "ref", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]},    # RGB reference (H, W, 3), any usable size
]
WIRE_OUTPUTS = [
    {"name": "sr", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]},     # (4h, 4w, 3), clamped and rounded
    {"name": "sr_float", "data_type": "TYPE_FP32", "dims": [3, -1, -1]},  # (3, 4h, 4w), unclamped
]


class ConfigError(ValueError):
    """A model configuration Triton's schema (or our own consistency check) rejects."""


def model_config_pb2():
    try:
        from tritonclient.grpc import model_config_pb2 as pb
    except ImportError as e:
        raise ConfigError(f"Triton's model-config schema comes with tritonclient[grpc] ({e}); "
                          f"pip install -e '.[serve]'") from None
    return pb


def parse_dict(config: dict):
    """dict (protobuf JSON field names) -> ``inference.ModelConfig``; ConfigError naming the model and field."""
    from google.protobuf import json_format
    pb = model_config_pb2()
    try:
        return json_format.ParseDict(config, pb.ModelConfig())
    except json_format.ParseError as e:
        raise ConfigError(f"model {config.get('name', '?')!r}: {str(e).splitlines()[0]}") from None


def to_pbtxt(config: dict) -> str:
    from google.protobuf import text_format
    return text_format.MessageToString(parse_dict(config))


def parse_pbtxt(text: str, where: str = "config.pbtxt"):
    """config.pbtxt text -> ``inference.ModelConfig`` (ConfigError naming ``where`` on a schema error)."""
    from google.protobuf import text_format
    pb = model_config_pb2()
    try:
        return text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as e:
        raise ConfigError(f"{where}: {e}") from None


def instance_group(count: int, kind: str = "cpu", gpus: Optional[Sequence[int]] = None) -> list[dict]:
    g = {"count": int(count), "kind": "KIND_GPU" if kind == "gpu" else "KIND_CPU"}
    if kind == "gpu" and gpus:
        g["gpus"] = [int(x) for x in gpus]
    return [g]


def queue_policy(max_queue_size: int = 0, timeout_ms: int = 0) -> Optional[dict]:
    """Triton's scheduling queue for requests waiting for a free instance (dynamic_batching's default queue
    policy; with max_batch_size 0 nothing is batched). None when neither limit is set (Triton's defaults:
    unbounded, no timeout)."""
    if not max_queue_size and not timeout_ms:
        return None
    policy = {"timeout_action": "REJECT", "allow_timeout_override": True}
    if max_queue_size:
        policy["max_queue_size"] = int(max_queue_size)
    if timeout_ms:
        policy["default_timeout_microseconds"] = int(timeout_ms) * 1000
    return {"default_queue_policy": policy}
