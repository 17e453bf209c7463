"""python -m runtime.bench: latency of every available backend against PyTorch eager FP32 and FP16.

    python -m runtime.bench --ckpt rrsr.pth --onnx rrsr.onnx --engine rrsr_fp16.engine --sizes 40x40,64x48

Per backend and LR size: warm-up runs, then N timed runs of ``Runner.run`` (device synchronised), median and
p90 latency, images/s, and peak memory. Memory is measured as the table's last column says:
  * torch on CUDA: torch.cuda.max_memory_allocated (includes the weights);
  * ORT-CUDA / TensorRT: growth of used device memory (cudaMemGetInfo, sampled every 2 ms) over the loaded model;
  * CPU: growth of the process RSS (sampled every 2 ms from /proc/self/statm) over the loaded model
    (a sampled approximation, no tracemalloc: it misses allocations shorter than the interval).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import click
import numpy as np

from export.onnx_export import INPUT_NAMES, sample_inputs

from .backends import BackendUnavailable, Loader, OrtLoader, TorchLoader, TrtLoader
from .backends.torch_backend import resolve_device
from .cli_common import click_errors, sizes_option
from .memory import check_fits

MiB = 2 ** 20


class _Sampler:
    """Peak of ``read()`` minus its value at start, sampled in a thread (the runs hold the GIL only briefly)."""

    def __init__(self, read: Callable[[], int], interval: float = 0.002):
        self.read, self.interval = read, interval

    def __enter__(self):
        self.base = self.peak = self.read()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.read())

    @property
    def delta(self) -> int:
        return self.peak - self.base


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cuda_used() -> int:
    import torch
    free, total = torch.cuda.mem_get_info()
    return total - free


@dataclass
class BenchRow:
    backend: str
    precision: str
    device: str
    lr: str
    median_ms: Optional[float] = None
    p90_ms: Optional[float] = None
    images_per_s: Optional[float] = None
    peak_mem_mib: Optional[float] = None
    mem_method: str = ""
    runs: int = 0
    first_call_s: Optional[float] = None     # compiled paths: the untimed first call (compile and/or graph capture)
    note: str = ""


def bench_runner(runner, sizes, warmup: int, runs: int) -> list[BenchRow]:
    d = runner.describe()
    label = d["backend"] + ("-" + d["device"] if d["backend"] != "trt" else "") + ("+compile" if "compile" in d else "")
    rows = []
    for i, (h, w) in enumerate(sizes):
        row = BenchRow(label, d["precision"], d["device"], f"{h}x{w}")
        try:
            check_fits(d["backend"], d["precision"], d["device"], (h, w), matching=d.get("matching", "dense"),
                       kernels=d.get("kernels", "reference"))
        except MemoryError as e:
            row.note = f"skipped: {e}"
            rows.append(row)
            continue
        feeds = dict(zip(INPUT_NAMES, [a.numpy() for a in sample_inputs(1, (h, w), seed=200 + i)]))
        compiled = "compile" in d
        if compiled:          # the first call of a shape compiles and/or captures: timed apart, never a warm-up run
            t = time.perf_counter()
            runner.run(feeds)
            runner.synchronize()
            row.first_call_s = time.perf_counter() - t
        for _ in range(warmup):
            runner.run(feeds)
        runner.synchronize()
        cuda = d["device"].startswith("cuda")
        if cuda and d["backend"] == "torch":
            import torch
            torch.cuda.reset_peak_memory_stats()
            meter, row.mem_method = None, "torch.cuda.max_memory_allocated"
        else:
            meter = _Sampler(_cuda_used if cuda else _rss)
            row.mem_method = "device used delta (cudaMemGetInfo, sampled)" if cuda else "RSS delta (sampled)"
        times = []
        with (meter or _Null()):
            for _ in range(runs):
                t = time.perf_counter()
                runner.run(feeds)
                runner.synchronize()
                times.append(time.perf_counter() - t)
        if meter is None:
            import torch
            row.peak_mem_mib = torch.cuda.max_memory_allocated() / MiB
        else:
            row.peak_mem_mib = meter.delta / MiB
        ms = np.array(times) * 1e3
        row.median_ms, row.p90_ms = float(np.median(ms)), float(np.percentile(ms, 90))
        row.images_per_s, row.runs = 1e3 / row.median_ms, runs
        rows.append(row)
    return rows


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def candidates(ckpt, onnx, engines, plugins, device: str, cpu_fp16: bool,
               threads: Optional[int] = None, compile_: bool = False) -> list[tuple[str, Optional[Loader], str]]:
    """(label, loader or None, why skipped)."""
    dev = resolve_device(device)
    fp16 = dev.startswith("cuda") or cpu_fp16
    out = []
    for suffix, compiled in (("", False), (" compiled", True)) if compile_ else (("", False),):
        out.append((f"torch fp32{suffix}", TorchLoader(ckpt, precision="fp32", device=dev, compile=compiled), ""))
        if fp16:
            out.append((f"torch fp16{suffix}", TorchLoader(ckpt, precision="fp16", device=dev, compile=compiled), ""))
        else:
            out.append((f"torch fp16{suffix}", None,
                        "PyTorch FP16 on the CPU is emulated and slow: not timed (--cpu-fp16 to time it)"))
    for p in onnx:
        # CUDA provider when onnxruntime-gpu has it, else the CPU provider (the row says which)
        ort_device = "auto" if dev.startswith("cuda") else "cpu"
        out.append((f"ort {p}", OrtLoader(p, device=ort_device, threads=threads), ""))
    for e in engines:
        out.append((f"trt {e}", TrtLoader(e, plugins, device=dev if dev.startswith("cuda") else "cuda:0"), ""))
    return out


def format_table(rows: list[BenchRow]) -> str:
    base = {r.lr: r.median_ms for r in rows if r.backend in ("torch-cpu", "torch-cuda") and r.precision == "fp32"
            and r.median_ms}
    lines = [f"{'backend':<20}{'prec':<6}{'LR':>8}{'median ms':>11}{'p90 ms':>10}{'img/s':>8}{'vs torch32':>11}"
             f"{'peak MiB':>10}{'1st call s':>11}  memory measured as"]
    for r in rows:
        if r.median_ms is None:
            lines.append(f"{r.backend:<20}{r.precision:<6}{r.lr:>8}  {r.note}")
            continue
        sp = f"{base[r.lr] / r.median_ms:.2f}x" if r.lr in base else "-"
        first = f"{r.first_call_s:.1f}" if r.first_call_s is not None else "-"
        lines.append(f"{r.backend:<20}{r.precision:<6}{r.lr:>8}{r.median_ms:>11.1f}{r.p90_ms:>10.1f}"
                     f"{r.images_per_s:>8.2f}{sp:>11}{r.peak_mem_mib:>10.1f}{first:>11}  {r.mem_method}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--ckpt", required=True, type=click.Path(dir_okay=False), help="rrsr bundle: the PyTorch eager FP32/FP16 baselines.")
@click.option("--onnx", "onnx", multiple=True, type=click.Path(dir_okay=False), help="ONNX graph to time in ONNX Runtime (repeatable).")
@click.option("--engine", "engines", multiple=True, type=click.Path(dir_okay=False), help="TensorRT engine to time (repeatable).")
@click.option("--plugins", type=click.Path(dir_okay=False), help="TensorRT plugin library (default: from the engine's sidecar).")
@click.option("--sizes", default="40x40", show_default=True, callback=sizes_option, help="LR sizes HxW, comma-separated.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed runs per size.")
@click.option("--runs", type=click.IntRange(min=1), default=10, show_default=True, help="Timed runs per size.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of PyTorch (torch.set_num_threads) and ONNX Runtime (intra-op threads, also used by "
                   "the custom ops' CPU kernels) [default: each library's own]; on a CPU shared with other jobs, "
                   "fewer threads than cores avoids spin-waiting.")
@click.option("--cpu-fp16", is_flag=True, help="Also time PyTorch FP16 on the CPU (slow; off by default).")
@click.option("--compile", "compile_", is_flag=True,
              help="Also time the PyTorch fast path (torch.compile per stage, CUDA graphs on CUDA: see runtime.infer "
                   "--compile); its first call per size, which compiles and/or captures, is timed apart.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the rows as JSON here.")
@click_errors
def main(ckpt, onnx, engines, plugins, sizes, warmup, runs, device, threads, cpu_fp16, compile_, json_path):
    """Time each available backend against PyTorch eager FP32 and FP16 on synthetic inputs of the given LR
    sizes. Backends whose runtime is missing here are listed as skipped with the reason."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    rows, skipped, described = [], [], []
    for label, loader, why in candidates(ckpt, onnx, engines, plugins, device, cpu_fp16, threads, compile_):
        if loader is None:
            skipped.append(f"{label}: {why}")
            continue
        try:
            runner = loader.load()
        except BackendUnavailable as e:
            skipped.append(f"{label}: {e}")
            continue
        with runner:
            click.echo(f"timing {label} ...", err=True)
            described.append(runner.describe())
            rows += bench_runner(runner, sizes, warmup, runs)
    click.echo(format_table(rows))
    for s in skipped:
        click.echo(f"skipped {s}")
    if json_path:
        Path(json_path).write_text(json.dumps({"rows": [asdict(r) for r in rows], "skipped": skipped,
                                               "backends": described, "warmup": warmup, "runs": runs,
                                               "torch_threads": torch.get_num_threads()}, indent=2) + "\n")
        click.echo(f"wrote {json_path}", err=True)


if __name__ == "__main__":
    main()
