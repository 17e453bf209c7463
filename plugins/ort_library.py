"""Locate (and describe) ``librrsr_ort_ops.so``, the ONNX Runtime custom-op library of the ``rrsr`` domain.

Build it with ``bash scripts/build_plugins.sh``. Then::

    so = onnxruntime.SessionOptions()
    so.register_custom_ops_library(plugins.ort_library.require_library())
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Optional

__all__ = ["ENV_VAR", "LIBRARY_NAME", "find_library", "require_library", "describe"]

ENV_VAR = "RRSR_ORT_OPS_LIB"
LIBRARY_NAME = {"win32": "rrsr_ort_ops.dll", "darwin": "librrsr_ort_ops.dylib"}.get(sys.platform, "librrsr_ort_ops.so")
_REPO = Path(__file__).resolve().parent.parent
_CANDIDATES = (
    _REPO / "build" / "plugins" / LIBRARY_NAME,  # scripts/build_plugins.sh
    Path(__file__).resolve().parent / LIBRARY_NAME,  # a copy shipped next to this module
)


def find_library() -> Optional[str]:
    """Path of the built library, or None when it is not built.

    ``$RRSR_ORT_OPS_LIB`` overrides the search; when it is set but names no file, that is an error
    (FileNotFoundError) rather than a silent fallback to another build.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"{ENV_VAR}={env} does not name a file")
        return str(Path(env).resolve())
    for cand in _CANDIDATES:
        if cand.is_file():
            return str(cand)
    return None


def require_library() -> str:
    """Like :func:`find_library`, but raises FileNotFoundError with the build command when absent."""
    lib = find_library()
    if lib is None:
        raise FileNotFoundError(
            f"{LIBRARY_NAME} is not built: run `bash scripts/build_plugins.sh` (or set {ENV_VAR}); "
            f"looked in {', '.join(str(c) for c in _CANDIDATES)}")
    return lib


def describe(path: Optional[str] = None) -> dict:
    """The op contract compiled into the library (``RrsrOrtOpsDescribe``): domain, ops, inputs with types,
    attributes with defaults and minimums, and the registered kernels (provider, input types)."""
    lib = ctypes.CDLL(path or require_library())
    fn = lib.RrsrOrtOpsDescribe
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    return json.loads(fn().decode("utf-8"))
