"""rrsr-serve on the real tritonserver (nvidia-pytriton's), CPU, loopback only, ports picked free at run time.

Two servers, each started once as a user would (``python -m runtime.serve``): ONNX Runtime + the project's
custom-op library on the demo checkpoint's graph, and PyTorch on the demo checkpoint. Parity on the bundled
samples, 8 concurrent clients x 4 mixed-size requests, a battery of bad requests, clients that disconnect mid-
request, and a clean shutdown (SIGTERM / SIGINT) that leaves no process and no bound port. Bounded: every request
has a timeout, the whole file takes a few minutes on two CPU cores."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (pip install -e '.[serve]')")

import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from export.matching import compare_matching, fixed_index_kernel, matching_kernel  # noqa: E402
from rrsr_model.demo import DEMO_CKPT, SAMPLES, sample_pairs  # noqa: E402
from rrsr_model.images import load_rgb, to_uint8  # noqa: E402
from rrsr_model.inference import prepare_inputs  # noqa: E402
from runtime.backends import OrtLoader, TorchLoader, super_resolve  # noqa: E402
from runtime.parity import SharedCorrespondence  # noqa: E402
from runtime.serve_client import make_inputs, super_resolve_remote  # noqa: E402
from runtime.triton_server import (TritonError, check_libpython, find_install, free_ports, own_libpython,  # noqa: E402
                                   port_free, prepare_backend, stub_libpython)

HOST = "127.0.0.1"
TIMEOUT_S = 120                   # any single request
FP32_TOL = 1e-4


def _triton_reason():
    try:
        find_install()
    except TritonError as e:
        return str(e)
    return None


pytestmark = pytest.mark.skipif(_triton_reason() is not None, reason=str(_triton_reason()))


def _rand(h, w, seed, c=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below ``pid`` (from /proc), so a reused pid is not mistaken later."""
    children: dict[int, list[int]] = {}
    start = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(d.name))
        start[int(d.name)] = fields[19]
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append((c, start[c]))
            todo.append(c)
    return out


def _listening(port: int) -> bool:
    """A socket in LISTEN state on ``port`` (any address), from /proc/net/tcp and tcp6."""
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(f).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _alive(pid: int, started: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] == started and fields[0] != "Z"


class Served:
    """``python -m runtime.serve`` in a subprocess on free loopback ports."""

    def __init__(self, tmp: Path, *args: str):
        self.ports = free_ports(3, HOST)
        self.log_path = tmp / "serve.log"
        cmd = [sys.executable, "-m", "runtime.serve", *args, "--host", HOST, "--http-port", str(self.ports[0]),
               "--grpc-port", str(self.ports[1]), "--metrics-port", str(self.ports[2]), "--quiet"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=str(Path(__file__).resolve().parents[1]))
        self.url = f"{HOST}:{self.ports[0]}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"rrsr-serve exited ({self.proc.returncode}):\n{self.output()}")
            if self.get("/v2/health/ready")[0] == 200:
                break
            time.sleep(0.5)
        else:
            self.proc.kill()
            raise AssertionError(f"rrsr-serve not ready in 240 s:\n{self.output()}")
        self.client = httpclient.InferenceServerClient(self.url, connection_timeout=TIMEOUT_S,
                                                       network_timeout=TIMEOUT_S, concurrency=8)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()[-4000:]

    def get(self, path: str, port=None) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port or self.ports[0]}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, ""

    def stop(self, sig) -> dict:
        """Stop as a user would; the test's own clients disconnect first (Triton waits for open HTTP
        connections, keep-alive ones too, up to its exit timeout)."""
        self.client.close()
        tree = _descendants(self.proc.pid)
        t = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - t
        time.sleep(0.5)
        left = [p for p, s in tree if _alive(p, s)]
        self.log.close()
        return {"code": code, "seconds": seconds, "tree": tree, "left": left,
                "listening": [p for p in self.ports if _listening(p)],
                "bindable": [p for p in self.ports if port_free(HOST, p)]}

    def kill(self):
        if self.proc.poll() is None:
            for p, _ in _descendants(self.proc.pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def ort_server(demo_onnx, tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve-ort"), "--onnx", str(demo_onnx), "--backend", "ort",
               "--device", "cpu")
    yield s
    s.kill()


@pytest.fixture(scope="module")
def torch_server(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve-torch"), "--ckpt", str(DEMO_CKPT), "--backend", "torch",
               "--device", "cpu", "--instances", "2", "--threads", "1", "--max-queue-size", "1")
    yield s
    s.kill()


@pytest.fixture(scope="module")
def samples():
    return [(name, load_rgb(lr), load_rgb(ref)) for name, lr, ref, _ in sample_pairs(SAMPLES)]


@pytest.fixture(scope="module")
def reference():
    with TorchLoader(str(DEMO_CKPT), precision="fp32", device="cpu", kernels="reference").load() as r:
        yield r


@pytest.fixture(scope="module")
def ort_direct(demo_onnx):
    with OrtLoader(demo_onnx, device="cpu").load() as r:
        yield r


def test_libpython_check_on_this_machine():
    """The stub gets this interpreter's libpython; without that, on a machine whose system libpython is another
    build of the same X.Y (here: a pyenv venv, Debian's libpython3.11), the mismatch is refused by name."""
    inst = find_install()
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        _, env = prepare_backend(inst, Path(d))
        check_libpython(inst, env)                                   # passes with the private libpython link
        plain = dict(os.environ)
        system = stub_libpython(inst.stub, plain)
        own = own_libpython()
        if not system or own is None or Path(system).resolve() == own:
            pytest.skip(f"no second libpython build here (stub resolves {system!r}, this Python's {own})")
        import platform
        plain["PATH"] = env["PATH"]
        with pytest.raises(TritonError, match=f"would load {system}.*this interpreter is Python "
                                              f"{platform.python_version()}"):
            check_libpython(inst, plain)


def test_health_metadata_metrics(ort_server):
    s = ort_server
    assert s.get("/v2/health/live")[0] == 200
    assert s.get("/v2/health/ready")[0] == 200
    assert s.get("/v2/models/rrsr/versions/1/ready")[0] == 200
    meta = s.client.get_model_metadata("rrsr")
    got = {(t["name"], t["datatype"], tuple(t["shape"])) for t in meta["inputs"] + meta["outputs"]}
    assert got == {("lr", "UINT8", (-1, -1, 3)), ("ref", "UINT8", (-1, -1, 3)),
                   ("sr", "UINT8", (-1, -1, 3)), ("sr_float", "FP32", (3, -1, -1))}
    assert meta["versions"] == ["1"]
    super_resolve_remote(s.client, _rand(12, 12, 1), _rand(48, 48, 2), timeout_s=TIMEOUT_S)
    code, text = s.get("/metrics", port=s.ports[2])
    assert code == 200
    ok = [ln for ln in text.splitlines() if ln.startswith("nv_inference_request_success") and 'model="rrsr"' in ln]
    assert ok and float(ok[0].split()[-1]) >= 1, text[:2000]


def test_parity_ort_samples(ort_server, ort_direct, samples, reference):
    """The served SR of the bundled samples against PyTorch FP32 <= 1e-4 max abs. Matching is an argmax: as in
    runtime.parity the reference uses the graph's correspondence (from the same graph, in process), and patches
    whose choice differs from PyTorch's own must all be near-ties."""
    shared = SharedCorrespondence.for_backend(ort_direct.describe(), reference)
    assert shared is not None, "the demo graph matches with RrsrPatchMatch"
    figures = []
    for name, lr, ref in samples:
        sr, sr_float = super_resolve_remote(ort_server.client, lr, ref, timeout_s=TIMEOUT_S)
        index = shared.index(lr, ref)
        with matching_kernel(fixed_index_kernel(index)):
            want = super_resolve(reference, lr, ref).sr
        x = prepare_inputs(lr, ref)
        m = compare_matching(reference.model, x.lr_up, x.ref, index)
        err = float(np.abs(sr_float - want).max())
        figures.append(f"{name} LR {lr.shape[0]}x{lr.shape[1]}: max abs {err:.2e}, {m['differ']} of "
                       f"{m['patches']} patches near-ties (gap {m['max_gap']:.1e})")
        assert sr_float.shape == (3, 4 * lr.shape[0], 4 * lr.shape[1]) and sr_float.dtype == np.float32
        assert err <= FP32_TOL, figures[-1]
        assert m["near_ties_only"], figures[-1]
        np.testing.assert_array_equal(sr, to_uint8(sr_float))
    print("\nserved ort parity vs PyTorch FP32:", "; ".join(figures))


def test_parity_torch_samples(torch_server, samples, reference):
    """Both samples at once: the server's two instances (one thread each) answer them in parallel."""
    def served(item):
        name, lr, ref = item
        cl = httpclient.InferenceServerClient(torch_server.url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
        try:
            return super_resolve_remote(cl, lr, ref, timeout_s=TIMEOUT_S)
        finally:
            cl.close()

    with ThreadPoolExecutor(len(samples)) as pool:
        answers = list(pool.map(served, samples))
    figures = []
    for (name, lr, ref), (sr, sr_float) in zip(samples, answers):
        want = super_resolve(reference, lr, ref).sr
        err = float(np.abs(sr_float - want).max())
        figures.append(f"{name}: max abs {err:.2e}")
        assert err <= FP32_TOL, figures[-1]
        np.testing.assert_array_equal(sr, to_uint8(sr_float))
    print("\nserved torch parity vs PyTorch FP32:", "; ".join(figures))


def test_queue_limit_rejects_the_overflow(torch_server):
    """--instances 2 --max-queue-size 1: of 6 requests sent at once, at most 3 are taken (2 running, 1 waiting);
    the rest are refused at once by Triton's queue policy, and the taken ones are answered."""
    lr, ref = _rand(12, 12, 41), _rand(48, 48, 42)

    def one(_):
        cl = httpclient.InferenceServerClient(torch_server.url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
        try:
            return super_resolve_remote(cl, lr, ref, timeout_s=TIMEOUT_S)[0].shape
        except InferenceServerException as e:
            return e.message()
        finally:
            cl.close()

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(one, range(6)))
    done = [g for g in got if g == (48, 48, 3)]
    refused = [g for g in got if g != (48, 48, 3)]
    assert 1 <= len(done) <= 3 and len(done) + len(refused) == 6, got
    assert all("Exceeds maximum queue size" in m for m in refused), refused


# LR sizes and reference sizes: exact 4x, a larger reference (padding, valid_size), one not a multiple of 4
MIXED = [((8, 8), (32, 32)), ((8, 12), (32, 48)), ((12, 8), (50, 38)), ((10, 10), (40, 40))]


def test_concurrent_clients_mixed_sizes(ort_server, ort_direct):
    """8 clients x 4 requests of mixed sizes at once (each client all four sizes, in its own order; 8 distinct
    image pairs, two per size); every answer equals the same graph run in process."""
    pairs = [(_rand(*MIXED[i % 4][0], 100 + i), _rand(*MIXED[i % 4][1], 200 + i)) for i in range(8)]
    want_of = [super_resolve(ort_direct, lr, ref).sr for lr, ref in pairs]
    jobs = [(c, k, *pairs[(c + k) % 4 + 4 * (c % 2)]) for c in range(8) for k in range(4)]
    expected = {(c, k): want_of[(c + k) % 4 + 4 * (c % 2)] for c, k, _, _ in jobs}

    def client(c):
        cl = httpclient.InferenceServerClient(ort_server.url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
        try:
            return [(c, k, super_resolve_remote(cl, lr, ref, timeout_s=TIMEOUT_S)) for cc, k, lr, ref in jobs if cc == c]
        finally:
            cl.close()

    t = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        results = [r for rs in pool.map(client, range(8)) for r in rs]
    seconds = time.perf_counter() - t
    assert len(results) == 32
    worst = 0.0
    for c, k, (sr, sr_float) in results:
        want = expected[(c, k)]
        assert sr_float.shape == want.shape, (c, k)
        worst = max(worst, float(np.abs(sr_float - want).max()))
        np.testing.assert_array_equal(sr, to_uint8(sr_float))
    assert worst <= 1e-6, worst
    print(f"\n8 clients x 4 mixed-size requests: 32/32 correct (max abs vs in-process {worst:.1e}) in {seconds:.1f} s")


def _expect_error(client, match, **arrays):
    """The request is refused with a message containing ``match``; returns the message."""
    with pytest.raises(InferenceServerException) as e:
        client.infer("rrsr", make_inputs(**arrays), timeout=TIMEOUT_S * 1_000_000)
    msg = e.value.message()
    assert match in msg, msg
    assert "Traceback" not in msg and "\n" not in msg.strip(), msg
    return msg


def _raw_post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    req = urllib.request.Request(f"http://{url}/v2/models/rrsr/infer", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_bad_requests_named_errors_server_keeps_answering(ort_server):
    c = ort_server.client
    lr, ref = _rand(12, 12, 1), _rand(48, 48, 2)
    cases = [
        ("lr dtype", "inference input 'lr' data-type is 'FP32', but model 'rrsr' expects 'UINT8'",
         dict(lr=lr.astype(np.float32), ref=ref)),
        ("ref dtype", "inference input 'ref' data-type is 'INT16'", dict(lr=lr, ref=ref.astype(np.int16))),
        ("lr rank", "unexpected shape for input 'lr'", dict(lr=lr[..., 0], ref=ref)),
        ("lr channels", "unexpected shape for input 'lr'", dict(lr=_rand(12, 12, 3, c=4), ref=ref)),
        ("ref channels", "unexpected shape for input 'ref'", dict(lr=lr, ref=_rand(48, 48, 4, c=1))),
        ("lr under 3x3", "lr: 2x5 is too small; RRSR needs at least 3x3", dict(lr=_rand(2, 5, 5), ref=ref)),
        ("lr empty", "lr: empty image of shape (0, 12, 3)", dict(lr=np.zeros((0, 12, 3), np.uint8), ref=ref)),
        ("ref too small", "ref: 8x8 is too small; a reference needs at least 12x12", dict(lr=lr, ref=_rand(8, 8, 6))),
        ("missing ref", "missing required input(s) ['ref']", dict(lr=lr)),
        ("unknown input", "expected 2 inputs but got 3 inputs for model 'rrsr'", dict(lr=lr, ref=ref, mask=lr)),
        ("memory limit", "lr: LR 1024x1024 (padded to the reference) is too large for ort on cpu",
         dict(lr=np.zeros((1024, 1024, 3), np.uint8), ref=ref)),
    ]
    seen = []
    for what, match, arrays in cases:
        seen.append((what, _expect_error(c, match, **arrays)))
    with pytest.raises(InferenceServerException, match="unknown model"):
        c.infer("rrsr2", make_inputs(lr=lr, ref=ref))
    # raw HTTP: a body that is not JSON, and a binary tensor shorter than its shape says
    code, text = _raw_post(ort_server.url, b"{not json", {"Content-Type": "application/json"})
    assert code in (400, 500) and "failed to parse the request JSON" in text, (code, text)   # Triton's own status
    header = json.dumps({"inputs": [{"name": "lr", "shape": [12, 12, 3], "datatype": "UINT8",
                                     "parameters": {"binary_data_size": 100}},
                                    {"name": "ref", "shape": [48, 48, 3], "datatype": "UINT8",
                                     "parameters": {"binary_data_size": ref.nbytes}}]}).encode()
    code, text = _raw_post(ort_server.url, header + bytes(100) + ref.tobytes(),
                           {"Inference-Header-Content-Length": str(len(header))})
    assert code == 400 and "'lr'" in text, (code, text)
    assert len(seen) + 3 >= 10
    # still up and answering correctly
    assert ort_server.get("/v2/health/ready")[0] == 200
    sr, sr_float = super_resolve_remote(c, lr, ref, timeout_s=TIMEOUT_S)
    assert sr.shape == (48, 48, 3)
    print("\nbad requests:\n  " + "\n  ".join(f"{w}: {m}" for w, m in seen) + f"\n  raw: {text}")


def _infer_bytes(lr, ref) -> tuple[bytes, int]:
    header = json.dumps({"inputs": [
        {"name": "lr", "shape": list(lr.shape), "datatype": "UINT8", "parameters": {"binary_data_size": lr.nbytes}},
        {"name": "ref", "shape": list(ref.shape), "datatype": "UINT8", "parameters": {"binary_data_size": ref.nbytes}}],
        "outputs": [{"name": "sr", "parameters": {"binary_data": True}}]}).encode()
    return header + lr.tobytes() + ref.tobytes(), len(header)


def test_client_disconnecting_mid_request(ort_server, ort_direct):
    """A client that sends half a request body and leaves, and one that sends a whole request and leaves before
    the answer: later requests are answered, correctly."""
    lr, ref = _rand(16, 16, 31), _rand(64, 64, 32)
    body, hlen = _infer_bytes(lr, ref)
    head = (f"POST /v2/models/rrsr/infer HTTP/1.1\r\nHost: {ort_server.url}\r\nContent-Length: {len(body)}\r\n"
            f"Inference-Header-Content-Length: {hlen}\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    for part in (len(body) // 2, len(body)):
        with socket.create_connection((HOST, ort_server.ports[0]), timeout=10) as s:
            s.sendall(head + body[:part])
            time.sleep(0.2)
        # the socket is closed here, with the server reading or computing
    time.sleep(1.0)
    want = super_resolve(ort_direct, lr, ref).sr
    for _ in range(2):
        sr, sr_float = super_resolve_remote(ort_server.client, lr, ref, timeout_s=TIMEOUT_S)
        assert float(np.abs(sr_float - want).max()) <= 1e-6
    assert ort_server.get("/v2/health/ready")[0] == 200


@pytest.mark.parametrize("server,sig", [("ort_server", signal.SIGTERM), ("torch_server", signal.SIGINT)])
def test_shutdown_leaves_no_process_or_port(server, sig, request):
    s = request.getfixturevalue(server)
    r = s.stop(sig)
    out = s.output() if not s.log.closed else s.log_path.read_text()
    assert r["code"] == 0, out[-3000:]
    assert len(r["tree"]) >= 2, r            # tritonserver and at least one stub were running
    assert r["left"] == [], r
    assert r["listening"] == [], r
    assert r["bindable"] == s.ports, r       # a new server can listen on them at once
    assert "stopped (tritonserver exit code 0)" in out
    print(f"\n{server} {signal.Signals(sig).name}: stopped in {r['seconds']:.1f} s, {len(r['tree'])} processes gone, "
          f"ports {s.ports} free")


def test_cli_refusals_before_triton_starts():
    from click.testing import CliRunner

    from runtime.serve import main
    r = CliRunner().invoke(main, ["--http-port", "1234"])
    assert r.exit_code == 2 and "no model given" in r.output
    r = CliRunner().invoke(main, ["--onnx", "/nonexistent/rrsr.onnx", "--backend", "ort"])
    assert r.exit_code == 1 and "ONNX file not found: /nonexistent/rrsr.onnx" in r.output
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        grpc, metrics = free_ports(2)
        r = CliRunner().invoke(main, ["--ckpt", str(DEMO_CKPT), "--backend", "torch", "--device", "cpu", "--quiet",
                                      "--http-port", str(port), "--grpc-port", str(grpc), "--metrics-port",
                                      str(metrics)])
    assert r.exit_code == 1, r.output
    assert f"port {port} on {HOST} (--http-port) is in use" in r.output
    assert "Traceback" not in r.output
