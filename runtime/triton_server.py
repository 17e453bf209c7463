"""Run the Triton Inference Server that the ``nvidia-pytriton`` wheel bundles (``tritonserver`` with its Python
backend) on a model repository: find it, prepare the Python backend for this interpreter, start, wait until ready,
stop cleanly.

The Python backend runs each model instance in a *stub* process that embeds libpython. The wheel ships one stub
per Python minor version, linked against ``libpythonX.Y.so.1.0`` as the dynamic linker finds it, while the stub's
standard library and site-packages come from the first ``python3`` on PATH (this venv). When the two are different
builds -- a venv made from a pyenv Python with the system's (Debian's) libpython loaded -- the stub fails at model
load with ``'_thread.RLock' object has no attribute '_recursion_count'``. So the stub is given this interpreter's
own libpython (a private folder holding only a link to it, first on LD_LIBRARY_PATH), and ``check_libpython``
refuses, before Triton starts, a stub that would still load another build.
"""
from __future__ import annotations

import collections
import ctypes
import importlib.util
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

SERVE_EXTRA = "pip install -e '.[serve]' (or bash scripts/setup_env.sh)"


class TritonError(RuntimeError):
    """Triton cannot be found, prepared, started or stopped here; the message says why and what to do."""


@dataclass(frozen=True)
class TritonInstall:
    """The files of the bundled server (paths inside the installed ``pytriton`` package)."""
    server: Path            # bin/tritonserver
    python_backend: Path    # backends/python (libtriton_python.so, triton_python_backend_utils.py)
    stub: Path              # the Python backend stub built for this interpreter's X.Y
    libs: Path              # the wheel's bundled shared libraries (nvidia_pytriton.libs)


def find_install() -> TritonInstall:
    """Locate tritonserver in the installed nvidia-pytriton (without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonError(f"Triton Inference Server is not installed: it comes with nvidia-pytriton; {SERVE_EXTRA}")
    pkg = Path(list(spec.submodule_search_locations)[0])
    root = pkg / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    inst = TritonInstall(root / "bin" / "tritonserver", root / "backends" / "python",
                         root / "python_backend_stubs" / version / "triton_python_backend_stub",
                         pkg.parent / "nvidia_pytriton.libs")
    for p, what in ((inst.server, "the tritonserver binary"), (inst.python_backend / "libtriton_python.so",
                                                               "the Python backend")):
        if not p.is_file():
            raise TritonError(f"{what} is missing from nvidia-pytriton ({p}); reinstall it: {SERVE_EXTRA}")
    if not inst.stub.is_file():
        have = sorted(p.name for p in (root / "python_backend_stubs").glob("*"))
        raise TritonError(f"nvidia-pytriton has no Python backend stub for Python {version} (it has "
                          f"{', '.join(have) or 'none'}); make the venv from one of those versions")
    return inst


def own_libpython() -> Optional[Path]:
    """This interpreter's shared libpython (LIBDIR/INSTSONAME), when its build installed one."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if not libdir or not soname:
        return None
    p = Path(libdir) / soname
    return p.resolve() if p.is_file() else None


def prepare_backend(inst: TritonInstall, workdir: Path) -> tuple[Path, dict]:
    """A backend directory for ``--backend-directory`` (links to the wheel's Python backend plus the stub for this
    Python) and the server's environment; both under ``workdir``."""
    backends = workdir / "backends"
    py = backends / "python"
    py.mkdir(parents=True, exist_ok=True)
    for src in (inst.python_backend / "libtriton_python.so", inst.python_backend / "triton_python_backend_utils.py",
                inst.stub):
        link = py / src.name
        if not link.exists():
            link.symlink_to(src)
    env = dict(os.environ)
    lib_path = [str(inst.libs)]
    lib = own_libpython()
    if lib is not None:
        private = workdir / "libpython"       # only the link: nothing else of LIBDIR shadows the system's libraries
        private.mkdir(exist_ok=True)
        link = private / sysconfig.get_config_var("INSTSONAME")
        if not link.exists():
            link.symlink_to(lib)
        lib_path.insert(0, str(private))
    if env.get("LD_LIBRARY_PATH"):
        lib_path.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(lib_path)
    # the stub takes its standard library and site-packages from the first python3 on PATH: this interpreter's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return backends, env


def stub_libpython(stub: Path, env: dict) -> Optional[str]:
    """The libpython path the dynamic linker gives ``stub`` under ``env`` (ldd), "" when not found, None when ldd
    cannot tell."""
    try:
        out = subprocess.run(["ldd", str(stub)], env=env, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        m = re.match(r"\s*(libpython\S+)\s+=>\s+(\S+)", line)
        if m:
            return "" if m.group(2) == "not" else m.group(2)
    return None


def library_python_version(lib: str) -> Optional[str]:
    """X.Y.Z of a libpython file, read by a child interpreter (loading a second libpython here is not safe)."""
    code = ("import ctypes,sys; f=ctypes.CDLL(sys.argv[1]).Py_GetVersion; f.restype=ctypes.c_char_p; "
            "print(f().decode().split()[0])")
    try:
        r = subprocess.run([sys.executable, "-I", "-c", code, lib], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    v = r.stdout.strip()
    return v if r.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*", v) else None


def check_libpython(inst: TritonInstall, env: dict) -> None:
    """TritonError, with what to do, when the stub would load a libpython other than this interpreter's build."""
    resolved = stub_libpython(inst.stub, env)
    if resolved is None:
        return                                   # no ldd here: Triton's own model-load error will have to do
    here = platform.python_version()
    fix = (f"make the venv from a Python whose libpython the stub can load: one built with --enable-shared "
           f"(pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install {here}) or the system's Python of the "
           f"same X.Y (rm -r .venv && PYTHON=/usr/bin/python{sys.version_info.major}.{sys.version_info.minor} "
           f"bash scripts/setup_env.sh)")
    if resolved == "":
        raise TritonError(f"Triton's Python backend stub ({inst.stub}) needs libpython{sys.version_info.major}."
                          f"{sys.version_info.minor}.so.1.0 and none is found (this Python, {sys.executable}, "
                          f"has no shared libpython); {fix}")
    own = own_libpython()
    if own is not None and Path(resolved).resolve() == own:
        return
    theirs = library_python_version(resolved)
    if theirs == here:
        return                                   # a static interpreter and the system library of its version
    raise TritonError(f"Triton's Python backend stub would load {resolved} (Python {theirs or 'of unknown version'}) "
                      f"but this interpreter is Python {here} ({sys.executable}"
                      f"{', no shared libpython' if own is None else ', libpython ' + str(own)}): the stub would run "
                      f"{here}'s standard library on another build's core and fail at model load; {fix}")


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (SO_REUSEADDR, as servers bind: connections of an
    earlier server still in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host`` now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent():
    """preexec_fn: the server gets SIGTERM if the process that started it dies (Linux), so none is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002

    def named(self) -> dict[str, int]:
        return {"--http-port": self.http, "--grpc-port": self.grpc, "--metrics-port": self.metrics}


class TritonProcess:
    """A running tritonserver. ``start`` returns once the server is ready (or raises TritonError with the server's
    error lines); ``stop`` sends SIGTERM (Triton finishes in-flight requests, unloads the models, stops the stubs)
    and, past ``exit_timeout`` + 10 s, kills the whole process group."""

    def __init__(self, repository: Path, workdir: Path, ports: Ports, host: str = "127.0.0.1",
                 extra_args: Sequence[str] = (), echo=None, exit_timeout: int = 10):
        self.repository, self.workdir, self.ports, self.host = Path(repository), Path(workdir), ports, host
        self.extra_args, self.echo, self.exit_timeout = list(extra_args), echo, exit_timeout
        self.proc: Optional[subprocess.Popen] = None
        self.log = collections.deque(maxlen=400)
        self._reader: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'127.0.0.1' if self.host in ('0.0.0.0', '') else host}:{self.ports.http}"

    def command(self, inst: TritonInstall, backends: Path) -> list[str]:
        a = self.host
        return [str(inst.server), f"--model-repository={self.repository}", f"--backend-directory={backends}",
                *[f"{k}={v}" for k, v in self.ports.named().items()],
                f"--http-address={a}", f"--grpc-address={a}", f"--metrics-address={a}",
                "--allow-gpu-metrics=false" if not _has_gpu() else "--allow-gpu-metrics=true",
                f"--exit-timeout-secs={self.exit_timeout}", *self.extra_args]

    def start(self, timeout: float = 120.0) -> "TritonProcess":
        inst = find_install()
        for flag, port in self.ports.named().items():
            if not port_free(self.host, port):
                raise TritonError(f"port {port} on {self.host} ({flag}) is in use; pick another with {flag}")
        backends, env = prepare_backend(inst, self.workdir)
        check_libpython(inst, env)
        self.proc = subprocess.Popen(self.command(inst, backends), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent, text=True, errors="replace", bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))
            if self.echo:
                self.echo(line.rstrip("\n"))

    def _wait_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                raise TritonError(f"tritonserver exited during start-up (exit code {self.proc.returncode}):\n  "
                                  + "\n  ".join(self.error_lines() or list(self.log)[-15:]))
            if self.ready():
                return
            time.sleep(0.25)
        raise TritonError(f"tritonserver was not ready after {timeout:.0f} s:\n  "
                          + "\n  ".join(self.error_lines() or list(self.log)[-15:]))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def error_lines(self) -> list[str]:
        """The server's error lines (Triton's log marks them with a leading E), model-load failures first."""
        return [ln for ln in self.log if ln[:1] == "E" or "UNAVAILABLE" in ln or "Error" in ln][-15:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> Optional[int]:
        """Stop the server and every process it started; the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=self.exit_timeout + 10)
            except subprocess.TimeoutExpired:
                pass
        else:
            code = self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # stubs left behind by a server that had to be killed
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _has_gpu() -> bool:
    return Path("/dev/nvidiactl").exists()
