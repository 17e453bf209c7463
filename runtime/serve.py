"""rrsr-serve (python -m runtime.serve): RRSR on Triton Inference Server, with the same model files, backend choice
and flags as runtime.infer.

    rrsr-serve --onnx rrsr.onnx                       # http :8000, grpc :8001, metrics :8002 on 127.0.0.1
    rrsr-serve --engine rrsr.engine --host 0.0.0.0 --instances 2 --max-queue-size 16

The server is the ``tritonserver`` that nvidia-pytriton bundles (``runtime.triton_server``); the model ``rrsr`` is a
Triton Python-backend model whose instances each run one ``runtime.backends`` runner (``runtime.serve_model``), so
a bad request gets its own one-line error. The wire contract is ``runtime.triton_config.WIRE_INPUTS/OUTPUTS``.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import click

from .backends import load_runner
from .cli_common import click_errors, model_files, model_options
from .triton_config import (MODEL_NAME, MODEL_VERSION, WIRE_INPUTS, WIRE_OUTPUTS, ConfigError, instance_group,
                            queue_policy, to_pbtxt)
from .triton_server import Ports, TritonError, TritonProcess

_REPO_ROOT = Path(__file__).resolve().parent.parent

MODEL_PY = '''# Written by rrsr-serve: the model is runtime.serve_model.TritonPythonModel.
import sys
if {root!r} not in sys.path:
    sys.path.append({root!r})
from runtime.serve_model import TritonPythonModel  # noqa: E402,F401
'''


def serve_config(spec: dict, instances: int, max_queue_size: int, queue_timeout_ms: int) -> dict:
    cfg = {"name": MODEL_NAME, "backend": "python", "max_batch_size": 0,
           "input": WIRE_INPUTS, "output": WIRE_OUTPUTS, "instance_group": instance_group(instances),
           "parameters": {"rrsr_serve": {"string_value": json.dumps(spec)}}}
    queue = queue_policy(max_queue_size, queue_timeout_ms)
    if queue:
        cfg["dynamic_batching"] = queue
    return cfg


def write_repository(repo: Path, config: dict) -> Path:
    model = repo / MODEL_NAME
    (model / MODEL_VERSION).mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(to_pbtxt(config))
    (model / MODEL_VERSION / "model.py").write_text(MODEL_PY.format(root=str(_REPO_ROOT)))
    return repo


def resolve(backend: str, files, device: str) -> tuple[dict, str]:
    """Load the runner once here (so a bad file or a missing runtime fails now, with runtime.infer's message) and
    return the spec the instances load (the backend and device this picked) and the line saying what was chosen."""
    for f in ("engine", "onnx", "ckpt", "feature_ckpt", "vgg_ckpt", "plugins"):
        v = getattr(files, f, None)
        if v is not None:
            setattr(files, f, str(Path(v).resolve()))   # the stubs need not share this working directory
    choice = load_runner(backend, files, device)
    with choice.runner as runner:
        d = runner.describe()
    line = f"backend: {choice.reason} — {d['backend']} {d['precision']} on {d['device']}, {d['model']}"
    line += "".join(f"\n  skipped {s}" for s in choice.skipped)
    return {"backend": d["backend"], "device": d["device"], "files": dataclasses.asdict(files)}, line


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop(signal.Signals(signum).name)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@model_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the HTTP, gRPC and metrics endpoints listen on (0.0.0.0: every interface).")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=8002, show_default=True,
              help="Prometheus metrics at /metrics.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model instances (Triton instance_group count): each loads its own runner and serves one "
                   "request at a time.")
@click.option("--max-queue-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="Requests that may wait for a free instance; more are rejected at once (0: unbounded).")
@click.option("--queue-timeout-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="A request that waited this long for an instance is rejected (0: no limit; a client may ask "
                   "for its own timeout).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads per instance (PyTorch and ONNX Runtime intra-op) [default: each library's own].")
@click.option("--startup-timeout", type=click.IntRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the server and the model instances to be ready.")
@click.option("--exit-timeout", type=click.IntRange(min=0), default=10, show_default=True,
              help="On SIGINT/SIGTERM, seconds Triton waits for in-flight requests and open client connections "
                   "(idle keep-alive ones too) before it exits without unloading.")
@click.option("--quiet", is_flag=True, help="Do not echo Triton's log (its error lines are still reported).")
@click_errors
def main(host, http_port, grpc_port, metrics_port, instances, max_queue_size, queue_timeout_ms, threads,
         startup_timeout, exit_timeout, quiet, backend, device, **model):
    """Serve RRSR on Triton Inference Server: model "rrsr", inputs lr and ref (UINT8 [h, w, 3] RGB), outputs sr
    (UINT8 [4h, 4w, 3]) and sr_float (FP32 [3, 4h, 4w], unclamped); health, readiness and metrics on Triton's
    standard endpoints. SIGINT or SIGTERM stops it cleanly."""
    files = model_files(**model)
    if not files.given():
        raise click.UsageError("no model given: pass --engine, --onnx or --ckpt")
    files.threads = threads
    spec, line = resolve(backend, files, device)
    spec["threads"] = threads
    click.echo(line, err=True)
    ports = Ports(http_port, grpc_port, metrics_port)
    if len({http_port, grpc_port, metrics_port}) < 3:
        raise click.UsageError(f"--http-port, --grpc-port and --metrics-port must differ (got {http_port}, "
                               f"{grpc_port}, {metrics_port})")
    workdir = Path(tempfile.mkdtemp(prefix="rrsr-serve-"))
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    server = None
    try:
        try:
            repo = write_repository(workdir / "models", serve_config(spec, instances, max_queue_size,
                                                                     queue_timeout_ms))
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        server = TritonProcess(repo, workdir, ports, host, exit_timeout=exit_timeout,
                               echo=None if quiet else (lambda ln: click.echo(ln, err=True)))
        try:
            server.start(timeout=startup_timeout)
        except TritonError as e:
            raise click.ClickException(str(e)) from None
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        click.echo(f"rrsr-serve: model {MODEL_NAME!r} ready ({instances} instance(s)); HTTP http://{shown}:{http_port}"
                   f", gRPC {shown}:{grpc_port}, metrics http://{shown}:{metrics_port}/metrics; "
                   f"SIGINT (Ctrl-C) or SIGTERM stops", err=True)
        while server.alive():
            time.sleep(0.5)
        raise click.ClickException(f"tritonserver stopped by itself (exit code {server.proc.returncode}):\n  "
                                   + "\n  ".join(server.error_lines() or list(server.log)[-15:]))
    except _Stop as s:
        for sig in old:
            signal.signal(sig, signal.SIG_IGN)       # a second signal must not interrupt the clean-up
        click.echo(f"rrsr-serve: {s} received, stopping", err=True)
        code = server.stop() if server else 0
        why = "" if code == 0 else f": {(server.error_lines() or ['killed after the exit timeout'])[-1]}"
        click.echo(f"rrsr-serve: stopped (tritonserver exit code {code}{why})", err=True)
    finally:
        for sig in old:
            signal.signal(sig, signal.SIG_IGN)
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        for s, h in old.items():
            signal.signal(s, h)
    sys.exit(0)


if __name__ == "__main__":
    main()
