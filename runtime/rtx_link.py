"""The ``libtensorrt_rtx.so`` link TensorRT-RTX's ONNX parser needs, kept in a folder of this project's own.

TensorRT-RTX's parser ``dlopen``s ``libtensorrt_rtx.so`` right after a plugin creator returns a plugin, but the
``tensorrt-rtx`` wheels ship only ``libtensorrt_rtx.so.1``: without a link named ``libtensorrt_rtx.so`` the
process aborts (``terminate called without an active exception``). The parser searches its own folder (RPATH
``$ORIGIN``), then ``LD_LIBRARY_PATH``. Rather than writing into site-packages, the project keeps the link in
``build/tensorrt-rtx/`` (``RRSR_TRT_RTX_LINK_DIR`` overrides) and rrsr-build-engine runs the parser in a child
process with that folder on ``LD_LIBRARY_PATH``. A link that ONNX Runtime's RTX execution-provider wheel (or a
user) put beside the library is used as it is.

    python -m runtime.rtx_link          # create (or check) the link; prints where it is and what it points to
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
LINK_NAME = "libtensorrt_rtx.so"
LIB_NAME = LINK_NAME + ".1"
LINK_DIR_ENV = "RRSR_TRT_RTX_LINK_DIR"
MAKE_COMMAND = "python -m runtime.rtx_link"


class LinkError(RuntimeError):
    """The link is missing, wrong, or TensorRT-RTX's library cannot be found; the message says which and the fix."""


def link_dir() -> Path:
    """The project's folder for the link."""
    env = os.environ.get(LINK_DIR_ENV)
    return Path(env) if env else REPO / "build" / "tensorrt-rtx"


def rtx_library() -> Path:
    """TensorRT-RTX's ``libtensorrt_rtx.so.1`` as installed by the ``tensorrt-rtx-cu13`` wheels (found without
    importing, and so without loading, TensorRT-RTX)."""
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    if spec is None or not spec.submodule_search_locations:
        raise LinkError("TensorRT-RTX is not installed (no tensorrt_rtx_libs package): pip install "
                        "tensorrt-rtx-cu13==1.7.1.116, or the project's extra: pip install -e .[rtx]")
    for folder in spec.submodule_search_locations:
        lib = Path(folder) / LIB_NAME
        if lib.is_file():
            return lib
    raise LinkError(f"TensorRT-RTX's {LIB_NAME} is not in {', '.join(spec.submodule_search_locations)}")


def _points_to(link: Path, lib: Path) -> bool:
    try:
        return link.resolve(strict=True) == lib.resolve(strict=True)
    except OSError:
        return False


def find_link() -> tuple[Optional[Path], Path]:
    """(folder holding a correct ``libtensorrt_rtx.so`` the parser will find, or None; the library it must point
    to). A link beside the library needs no ``LD_LIBRARY_PATH``; the folder returned is then the library's own."""
    lib = rtx_library()
    for folder in (lib.parent, link_dir()):
        if _points_to(folder / LINK_NAME, lib):
            return folder, lib
    return None, lib


def check_link() -> Path:
    """The folder to put on the parser's ``LD_LIBRARY_PATH``; LinkError naming the link and the fix otherwise."""
    folder, lib = find_link()
    if folder is not None:
        return folder
    link = link_dir() / LINK_NAME
    state = ("points elsewhere" if link.is_symlink() or link.exists() else "does not exist")
    raise LinkError(f"TensorRT-RTX's ONNX parser needs {LINK_NAME} (it loads it by that name after creating a plugin, "
                    f"and the wheel ships only {lib}): the link {link} {state}, and without it the parser aborts the "
                    f"process. Create it with `{MAKE_COMMAND}` (scripts/setup_env.sh does), or set {LINK_DIR_ENV} to "
                    f"a folder holding {LINK_NAME} -> {lib}")


def make_link(log=print) -> Path:
    """Create (or repair) the project's link to the installed ``libtensorrt_rtx.so.1``; says what it did."""
    folder, lib = find_link()
    if folder is not None:
        log(f"{folder / LINK_NAME} -> {lib} (already there)")
        return folder / LINK_NAME
    d = link_dir()
    d.mkdir(parents=True, exist_ok=True)
    link = d / LINK_NAME
    if link.is_symlink() or link.exists():
        if not link.is_symlink():
            raise LinkError(f"{link} exists and is not a symbolic link; remove it (this command only replaces its "
                            f"own links)")
        link.unlink()
    tmp = d / (LINK_NAME + ".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(lib)
    tmp.replace(link)
    log(f"linked {link} -> {lib} (TensorRT-RTX's ONNX parser loads {LINK_NAME} by that name)")
    return link


def main() -> int:
    try:
        make_link()
    except (LinkError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
