"""python -m runtime.serve_bench: the overhead of serving. The same model, in the same run, called directly
(``runtime.backends.super_resolve`` + the uint8 conversion, one request at a time: what one server instance does
per request) and through rrsr-serve's Triton server over loopback HTTP by 1, 4 and 8 concurrent clients.

    python -m runtime.serve_bench --onnx rrsr.onnx --sizes 16x16,32x32 --concurrency 1,4,8

Per LR size (reference 4x its size, random pixels) and concurrency: median and p90 request latency, images/s, and
the ratios to the direct runner (latency: served median / direct median; throughput: direct img/s / served img/s,
1.00 = no overhead). Ratios mean more than absolute times on a CPU shared with other jobs.
"""
from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import numpy as np

from rrsr_model.images import to_uint8

from .backends import load_runner, super_resolve
from .cli_common import click_errors, model_files, model_options, sizes_option
from .serve import resolve, serve_config, write_repository
from .triton_server import Ports, TritonError, TritonProcess, free_ports


def _pairs(hw, n, seed=0):
    rng = np.random.default_rng(seed)
    h, w = hw
    return [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (4 * h, 4 * w, 3), dtype=np.uint8))
            for _ in range(n)]


def _stats(latencies, wall, n):
    ms = np.asarray(latencies) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "images_per_s": n / wall,
            "requests": n}


def bench_direct(runner, hw, warmup: int, runs: int) -> dict:
    pairs = _pairs(hw, runs + warmup)
    for lr, ref in pairs[:warmup]:
        to_uint8(super_resolve(runner, lr, ref).sr)
    lat, t0 = [], time.perf_counter()
    for lr, ref in pairs[warmup:]:
        t = time.perf_counter()
        to_uint8(super_resolve(runner, lr, ref).sr)
        lat.append(time.perf_counter() - t)
    return _stats(lat, time.perf_counter() - t0, runs)


def bench_served(url: str, hw, clients: int, per_client: int, warmup: int) -> dict:
    import tritonclient.http as httpclient

    from .serve_client import super_resolve_remote
    pairs = _pairs(hw, clients * per_client, seed=1)

    def one_client(c):
        cl = httpclient.InferenceServerClient(url, connection_timeout=600, network_timeout=600)
        try:
            out = []
            for lr, ref in pairs[c * per_client:(c + 1) * per_client]:
                t = time.perf_counter()
                super_resolve_remote(cl, lr, ref)
                out.append(time.perf_counter() - t)
            return out
        finally:
            cl.close()

    cl = httpclient.InferenceServerClient(url, connection_timeout=600, network_timeout=600)
    for lr, ref in _pairs(hw, warmup, seed=2):
        super_resolve_remote(cl, lr, ref)
    cl.close()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = [x for xs in pool.map(one_client, range(clients)) for x in xs]
    return _stats(lat, time.perf_counter() - t0, len(lat))


def format_table(rows: list[dict]) -> str:
    lines = [f"{'LR':>8}{'clients':>8}{'served ms':>11}{'p90 ms':>9}{'img/s':>8}{'direct ms':>11}{'img/s':>8}"
             f"{'latency x':>11}{'throughput x':>14}"]
    for r in rows:
        s, d = r["served"], r["direct"]
        lines.append(f"{r['lr']:>8}{r['clients']:>8}{s['median_ms']:>11.1f}{s['p90_ms']:>9.1f}{s['images_per_s']:>8.2f}"
                     f"{d['median_ms']:>11.1f}{d['images_per_s']:>8.2f}{s['median_ms'] / d['median_ms']:>11.2f}"
                     f"{d['images_per_s'] / s['images_per_s']:>14.2f}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@model_options
@click.option("--sizes", default="16x16", show_default=True, callback=sizes_option, help="LR sizes HxW, comma-separated.")
@click.option("--concurrency", default="1,4,8", show_default=True, help="Concurrent clients, comma-separated.")
@click.option("--requests", "per_client", type=click.IntRange(min=1), default=4, show_default=True,
              help="Requests per client at each concurrency.")
@click.option("--runs", type=click.IntRange(min=1), default=8, show_default=True, help="Timed direct runs per size.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed runs per size, each way.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True, help="Server model instances.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads per instance and of the direct runner [default: each library's own].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the rows as JSON here.")
@click_errors
def main(sizes, concurrency, per_client, runs, warmup, instances, threads, json_path, backend, device, **model):
    """Latency and throughput through rrsr-serve's Triton server at several client concurrencies, against the
    direct runner in the same run."""
    try:
        levels = [int(c) for c in concurrency.split(",") if c.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {concurrency!r}",
                                 param_hint="--concurrency") from None
    files = model_files(**model)
    if not files.given():
        raise click.UsageError("no model given: pass --engine, --onnx or --ckpt")
    files.threads = threads
    spec, line = resolve(backend, files, device)
    spec["threads"] = threads
    click.echo(line, err=True)
    if threads:
        import torch
        torch.set_num_threads(threads)
    direct = {}
    with load_runner(spec["backend"], files, spec["device"]).runner as runner:
        described = runner.describe()
        for hw in sizes:
            click.echo(f"direct {hw[0]}x{hw[1]} ...", err=True)
            direct[hw] = bench_direct(runner, hw, warmup, runs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rrsr-serve-bench-") as tmp:
        repo = write_repository(Path(tmp) / "models", serve_config(spec, instances, 0, 0))
        try:
            server = TritonProcess(repo, Path(tmp), Ports(*free_ports(3))).start(timeout=300)
        except TritonError as e:
            raise click.ClickException(str(e)) from None
        with server:
            for hw in sizes:
                for c in levels:
                    click.echo(f"served {hw[0]}x{hw[1]}, {c} client(s) ...", err=True)
                    rows.append({"lr": f"{hw[0]}x{hw[1]}", "clients": c, "direct": direct[hw],
                                 "served": bench_served(server.url, hw, c, per_client, warmup)})
    click.echo(f"{described['backend']} {described['precision']} on {described['device']}, {instances} instance(s); "
               f"latency x = served median / direct median, throughput x = direct img/s / served img/s")
    click.echo(format_table(rows))
    if json_path:
        Path(json_path).write_text(json.dumps({"backend": described, "instances": instances, "threads": threads,
                                               "rows": rows}, indent=2) + "\n")
        click.echo(f"wrote {json_path}", err=True)


if __name__ == "__main__":
    main()
