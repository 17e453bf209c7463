"""The PyTorch fast path (``--compile``): RRSR's four stages ``torch.compile``'d, and on CUDA one CUDA graph per input
shape.

* **Compile.** Each stage of ``RRSR.stage_modules`` (CCN, matching, VGG19, trunk) is compiled by inductor on its
  own: the custom ops (MDCN, RAS, PatchMatch) stay opaque ``torch.library`` ops whose fake kernels give inductor
  their shapes, so whichever kernel the op is routed to (the compiled CUDA kernels of ``plugins/torch``, the
  references) runs inside the compiled code. Stages, not the whole model, so that a benchmark can time each one
  from the very code the fast path runs; nothing fuses across their boundaries anyway (the matching is one opaque
  op). Shapes follow torch's default: the first shape compiles static, a second one recompiles with dynamic sizes,
  which then serve every later shape without compiling again.
* **CUDA graphs.** On CUDA the whole forward is captured once per input shape and replayed: no launch overhead,
  no Python between kernels. The graphs are a bounded cache (least recently used shape evicted) sharing one memory
  pool, so memory is that of the largest shape, not the sum; the output is copied out of the pool before returning,
  as the next shape's replay may reuse its memory.
* **Fallbacks.** Where compiling or capturing fails (no C++ compiler or Triton, an op that cannot be captured) the
  path says why once and falls back (compiled without graphs, or eager) instead of failing the user's run.
"""
from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor

DEFAULT_MAX_GRAPHS = 4


def compile_unavailable(device: str) -> Optional[str]:
    """Why torch.compile cannot run on ``device`` here (None: it can)."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if device.startswith("cuda"):
        from torch.utils._triton import has_triton
        if not has_triton():
            return "inductor needs Triton for CUDA and it does not import"
    else:
        import shutil
        if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            return "inductor's CPU backend needs a C++ compiler (g++, c++ or clang++) and none is on the PATH"
    return None


@contextlib.contextmanager
def strict_fp32_math() -> Iterator[None]:
    """FP32 convolutions and matrix products without TF32 within the block (restored after): the FP32 fast path
    is held to 1e-4 of the FP32 model, which TF32 (PyTorch's default for cuDNN convolutions) would miss."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class GraphCache:
    """Entries (CUDA graphs) by key, the least recently used evicted past ``max_entries``."""

    def __init__(self, max_entries: int):
        if max_entries < 1:
            raise ValueError(f"a graph cache needs at least one entry, got max_entries={max_entries}")
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple, object] = OrderedDict()
        self.evicted = 0

    def get(self, key: tuple, make: Callable[[], object]) -> tuple[object, bool]:
        """(entry, whether ``make()`` made it now)."""
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key], False
        while len(self.entries) >= self.max_entries:
            self.entries.popitem(last=False)
            self.evicted += 1
        entry = self.entries[key] = make()
        return entry, True

    def clear(self) -> None:
        self.entries.clear()


class _Graph:
    """One captured forward: static input buffers, the graph, its static output."""

    def __init__(self, forward: Callable, example: tuple, pool, stream: torch.cuda.Stream):
        self.inputs = tuple(None if t is None else t.clone() for t in example)
        # warm-up on a side stream (compiles, autotunes, lets lazy initialisations happen outside the capture)
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                forward(*self.inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool, stream=stream):
            self.output = forward(*self.inputs)

    def __call__(self, *inputs: Optional[Tensor]) -> Tensor:
        for dst, src in zip(self.inputs, inputs):
            if dst is not None:
                dst.copy_(src)
        self.graph.replay()
        return self.output.clone()


class FastRRSR:
    """Call like the model: ``fast(lr, lr_up, ref, valid_size)`` -> SR. ``kernels_context`` is entered around every
    call that runs Python (compile, warm-up, capture, graph-less calls): the ops' kernel routing in force then is what
    the graphs replay. ``log`` gets one line per new shape and per fallback."""

    def __init__(self, model, device: str, *, cuda_graphs: bool = True, max_graphs: int = DEFAULT_MAX_GRAPHS,
                 kernels_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 fp32_math: bool = False, log: Callable[[str], None] = print):
        self.model, self.device, self.log = model, device, log
        self.kernels_context = kernels_context
        self.math_context = strict_fp32_math if fp32_math else contextlib.nullcontext
        self.status: list[str] = []          # what the path is doing, and every fallback with its reason
        why = compile_unavailable(device)
        self.compiled = why is None
        if why:
            self._fallback(f"not compiled ({why}): eager PyTorch")
            self.stages = model.stage_modules()
        else:
            self.stages = {name: torch.compile(fn) for name, fn in model.stage_modules().items()}
            self.status.append("torch.compile (inductor) per stage")
        self.graphs = None
        if cuda_graphs and device.startswith("cuda"):
            self.pool = torch.cuda.graph_pool_handle()
            self.stream = torch.cuda.Stream(device=device)
            self.graphs = GraphCache(max_graphs)
            self.status.append(f"CUDA graphs per input shape (up to {max_graphs})")
        elif cuda_graphs:
            self.status.append(f"no CUDA graphs (the device is {device})")
        self.seen: set[tuple] = set()
        self.first_call_s: dict[tuple, float] = {}

    def _fallback(self, what: str) -> None:
        self.status.append(what)
        self.log(f"fast path: {what}")

    def describe(self) -> str:
        return "; ".join(self.status)

    def forward(self, lr: Tensor, lr_up: Tensor, ref: Tensor, valid_size: Optional[Tensor] = None) -> Tensor:
        """The model's forward through the (compiled) stages, without graphs."""
        return self.model.run_stages(self.stages, lr, lr_up, ref, valid_size)

    @torch.inference_mode()
    def match_index(self, lr_up: Tensor, ref: Tensor) -> Tensor:
        """The matching index (N, H_p, W_p) this path's own (compiled) CCN stage leads to: the same compiled code
        the forward runs, so the same features, bit for bit."""
        from rrsr_model.ops.patch_match import patch_match
        dtype = self.model._ccn_dtype()
        with self.math_context():
            feat_in, feat_ref = self.stages["ccn"](lr_up.to(dtype), ref.to(dtype))
        return patch_match(feat_in, feat_ref, self.model.net_map.patch_size)[0]

    @staticmethod
    def key(lr: Tensor, lr_up: Tensor, ref: Tensor, valid_size: Optional[Tensor]) -> tuple:
        return tuple(lr.shape), tuple(ref.shape), lr.dtype, valid_size is None

    @torch.inference_mode()
    def __call__(self, lr: Tensor, lr_up: Tensor, ref: Tensor, valid_size: Optional[Tensor] = None) -> Tensor:
        self.model.check_inputs(lr, lr_up, ref)
        key = self.key(lr, lr_up, ref, valid_size)
        t0 = time.perf_counter()
        with self.kernels_context(), self.math_context():
            out, captured = self._run(key, (lr, lr_up, ref, valid_size))
        if captured or key not in self.seen:
            # a new shape compiles (the first two shapes; later ones reuse the dynamic-shape code) and/or captures
            what = "CUDA-graph capture" if captured and key in self.seen else (
                "compile and CUDA-graph capture" if captured else "compile")
            self.seen.add(key)
            self.first_call_s[key] = dt = time.perf_counter() - t0
            self.log(f"fast path: new shape, LR {lr.shape[-2]}x{lr.shape[-1]}: {what} took {dt:.1f} s")
        return out

    def _run(self, key: tuple, inputs: tuple) -> tuple[Tensor, bool]:
        try:
            return self._replay_or_call(key, inputs)
        except torch._dynamo.exc.BackendCompilerFailed as e:
            # inductor or its toolchain failed (Triton, the C++ compiler): report it and run eager from now on
            if not self.compiled:
                raise
            self.compiled = False
            self.stages = self.model.stage_modules()
            self._fallback(f"compile failed ({_first_line(e)}): eager PyTorch")
            return self._replay_or_call(key, inputs)

    def _replay_or_call(self, key: tuple, inputs: tuple) -> tuple[Tensor, bool]:
        """(SR, whether a CUDA graph was captured for it)."""
        if self.graphs is not None:
            try:
                graph, captured = self.graphs.get(key, lambda: _Graph(self.forward, inputs, self.pool, self.stream))
                return graph(*inputs), captured
            except torch._dynamo.exc.BackendCompilerFailed:
                raise
            except RuntimeError as e:
                # an op that cannot be captured (a host sync, a pageable copy): say so, run without graphs
                self.graphs.clear()
                self.graphs = None
                torch.cuda.synchronize(self.device)
                self._fallback(f"CUDA graphs off ({_first_line(e)})")
        return self.forward(*inputs), False


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200] if text else ''}"
