"""rrsr-build-engine: ONNX (rrsr-export) -> TensorRT or TensorRT-RTX engine + sidecar JSON.

    rrsr-build-engine --onnx rrsr_fp16.onnx --out rrsr_fp16.engine --fp16 \\
        --min-lr 16x16 --opt-lr 64x64 --max-lr 256x256 --timing-cache trt.cache       # TensorRT, on the target GPU
    rrsr-build-engine --target rtx --compute-capability 89,120 --onnx rrsr.onnx      # TensorRT-RTX, GPU optional

One build flow for both targets (``runtime.targets`` holds what differs): the quick checks here (graph, precision,
plugin library, its device code against the GPUs built for, the RTX parser's link), then the TensorRT part
(plugin library, parse, census, build) in a child process (``runtime.build_worker``) so that native code ending the
process is reported instead of taking the command with it, then the sidecar. TensorRT is imported here only to
learn what is installed; the module imports (and its error paths and sidecar logic are tested) without it.

FP16: TensorRT 11 and TensorRT-RTX have no FP16 builder flag (networks are strongly typed), so an FP16 engine is
built from the FP16-policy graph (``rrsr-export --precision fp16``) with the STRONGLY_TYPED network flag, on 10.x
as well: the types are the policy's, not the builder's choice.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import click

from . import targets as tg
from .build_worker import STAGE_PREFIX, missing_creators  # noqa: F401  (missing_creators: part of this module's API)
from .cli_common import click_errors, size_option
from .sidecar import make_sidecar, sha256_file, write_sidecar
from .backends.base import BackendError
from .backends.trt_backend import default_plugin_library, gpu_info

REPO = Path(__file__).resolve().parents[1]
SCALE = 4
MIN_LR_SIDE = 3            # rrsr_model.inference.MIN_LR_SIDE
# Parser errors on these ops get an explanation (TensorRT-RTX ships no TensorRT plugin library)
RTX_OP_HINTS = {"DeformConv": "DeformConv (ONNX's standard op) is unsupported by TensorRT-RTX: TensorRT's parser maps it "
                              "to TensorRT's ModulatedDeformConv2d plugin, which TensorRT-RTX does not ship; export the "
                              "plugin flavour (rrsr-export --flavor plugin) and build with the project's plugins"}


def profile_shapes(min_lr, opt_lr, max_lr, batch: int = 1) -> dict[str, tuple[tuple, tuple, tuple]]:
    """Input shapes (min, opt, max) of the one optimisation profile, from LR sizes; checks their order."""
    for i in range(2):
        if not min_lr[i] <= opt_lr[i] <= max_lr[i]:
            raise click.BadParameter(f"LR sizes must satisfy min <= opt <= max in each dimension, got "
                                     f"{min_lr} / {opt_lr} / {max_lr}")
    lr = tuple((batch, 3, h, w) for h, w in (min_lr, opt_lr, max_lr))
    hr = tuple((batch, 3, SCALE * h, SCALE * w) for h, w in (min_lr, opt_lr, max_lr))
    return {"lr": lr, "lr_up": hr, "ref": hr}


def profile_outside_graph(meta: dict, min_lr, opt_lr, max_lr) -> Optional[str]:
    """Why the profile's LR sizes are outside what the graph was exported for (its rrsr.* metadata: the dynamic
    range, or the one static size), or None. Graphs without that metadata are not checked."""
    sizes = (min_lr, opt_lr, max_lr)
    if meta.get("dynamic") == "0" and "lr_size" in meta:
        fixed = tuple(int(v) for v in meta["lr_size"].split("x"))
        if any(tuple(s) != fixed for s in sizes):
            return (f"the graph is static at LR {meta['lr_size']}, so the profile must be --min-lr = --opt-lr = "
                    f"--max-lr = {meta['lr_size']}")
    elif "min_lr" in meta and "max_lr" in meta:
        lo, hi = int(meta["min_lr"]), int(meta["max_lr"])
        if min(min_lr) < lo or max(max_lr) > hi:
            return (f"the profile's LR {min_lr[0]}x{min_lr[1]}..{max_lr[0]}x{max_lr[1]} is outside the graph's dynamic "
                    f"range {lo}..{hi} per side (rrsr-export --min-lr/--max-lr)")
    return None


def custom_nodes(proto) -> list[tuple[str, str, str, str]]:
    """(node name, op_type, plugin_version, plugin_namespace) of every rrsr custom node: what the parser will
    look up in the plugin registry (by op_type; attributes default "1" and "")."""
    from onnx import helper

    from plugins.opspec import load_specs
    domains = {s.domain for s in load_specs().values()}
    out = []
    for n in proto.graph.node:
        if n.domain in domains:
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            dec = (lambda v, d: v.decode() if isinstance(v, bytes) else d)
            out.append((n.name, n.op_type, dec(a.get("plugin_version"), "1"), dec(a.get("plugin_namespace"), "")))
    return out



def fp16_graph_for(onnx_path: Path, log=click.echo, export: bool = True) -> Path:
    """The FP16-policy graph to build an FP16 engine from. An FP16 graph is used as it is. For the FP32 graph of a
    default ``rrsr-export`` (TensorRT 11 has no FP16 flag: FP16 means a strongly typed build of an FP16 graph),
    its checkpoint — recorded in the graph's metadata — is exported again with ``--precision fp16`` and the same
    options to ``<name>_fp16.onnx`` beside it (reused while it comes from the same checkpoint). With
    ``export=False`` only the quick checks run (and the path that would be written is returned)."""
    import onnx

    from export.metadata import read_metadata, sha256_file, write_metadata
    from .backends.ort_backend import graph_precision
    proto = onnx.load(str(onnx_path), load_external_data=False)
    if graph_precision(proto) == "fp16":
        return onnx_path
    meta = read_metadata(proto)
    del proto
    ckpt = Path(meta["ckpt"]) if "ckpt" in meta else None
    why = ("it records no checkpoint (not written by rrsr-export)" if ckpt is None else
           f"its checkpoint {ckpt} is gone" if not ckpt.is_file() else
           f"its checkpoint {ckpt} changed since the export" if sha256_file(ckpt) != meta.get("ckpt_sha256") else None)
    if why:
        raise click.ClickException(f"{onnx_path} is an FP32 graph and {why}; export the FP16-policy graph with "
                                   f"`rrsr-export --precision fp16` and pass it with --onnx")
    target = onnx_path.with_name(onnx_path.stem + "_fp16.onnx")
    if target.is_file():
        tmeta = read_metadata(target)
        if tmeta.get("precision") == "fp16" and tmeta.get("ckpt_sha256") == meta["ckpt_sha256"]:
            log(f"using {target}: the FP16-policy graph of the same checkpoint")
            return target
        raise click.ClickException(f"{target} exists but is not the FP16-policy export of {ckpt}; remove it or pass "
                                   f"an FP16 graph with --onnx")
    if not export:
        return target
    from export.check import run_checker
    from export.onnx_export import export_model, options_from_metadata
    from rrsr_model.checkpoint import load_model
    log(f"{onnx_path} is FP32: exporting the FP16-policy graph of {ckpt} to {target} (about a minute)")
    model = load_model(ckpt, feature_ckpt=meta.get("feature_ckpt"), vgg_ckpt=meta.get("vgg_ckpt"))
    fp16 = export_model(model, options_from_metadata(meta, precision="fp16"))
    run_checker(fp16)
    write_metadata(fp16, {k: meta[k] for k in ("ckpt", "ckpt_sha256", "feature_ckpt", "vgg_ckpt") if k in meta})
    tmp = target.with_name(target.name + ".tmp")
    onnx.save(fp16, str(tmp))
    tmp.replace(target)
    return target


def _target_options(t: tg.Target, *, timing_cache, runtime_cache, compute_capability, serialize_plugins) -> bool:
    """Refuse the options the target does not have (with the reason); the plugin serialization to use."""
    if timing_cache and not t.timing_cache:
        raise click.ClickException(f"--timing-cache: {t.title} has no timing cache (its timing-cache calls are no-ops "
                                   f"since TensorRT-RTX 1.2; it compiles kernels when the engine is loaded): use "
                                   f"--runtime-cache for those")
    if runtime_cache and not t.runtime_cache:
        raise click.ClickException(f"--runtime-cache is for --target rtx (TensorRT-RTX's cache of the kernels it "
                                   f"compiles at load time); {t.title} tunes at build time: use --timing-cache")
    if compute_capability and t.name != "rtx":
        raise click.ClickException(f"--compute-capability is for --target rtx; {t.title} builds for the GPU of the "
                                   f"machine it runs on")
    if serialize_plugins and not t.serializes_plugins:
        raise click.ClickException(f"--serialize-plugins is for --target rtx ({t.title} embeds plugin libraries only in "
                                   f"version-compatible engines, which this command does not build)")
    return t.serializes_plugins if serialize_plugins is None else serialize_plugins


def _compute_capabilities(t: tg.Target, compute_capability: Optional[str]) -> tuple[list[str], Optional[str], Optional[str]]:
    """(compute capabilities to build for, build GPU name, build GPU SM) of target ``t``. TensorRT: the build GPU
    (BackendUnavailable without one). TensorRT-RTX: the --compute-capability list, 'current' meaning the build
    GPU; without a GPU the list must be given."""
    if t.name != "rtx":
        env = gpu_info()
        return [env["gpu_sm"]], env["gpu_name"], env["gpu_sm"]
    gpu = tg.current_sm()
    choices = ", ".join(c.replace(".", "") for c in tg.RTX_COMPUTE_CAPABILITIES)
    if compute_capability is None:
        if gpu is None:
            raise click.ClickException(f"no GPU is visible, so TensorRT-RTX needs the GPUs to build for: pass "
                                       f"--compute-capability with one or more of {choices} (e.g. 89,120)")
        compute_capability = "current"
    try:
        ccs = tg.parse_compute_capabilities(compute_capability)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if ccs == ["current"]:
        if gpu is None:
            raise click.ClickException(f"--compute-capability current means this machine's GPU, and none is visible; "
                                       f"name the targets instead (one or more of {choices})")
        if gpu[1] not in tg.RTX_COMPUTE_CAPABILITIES:
            raise click.ClickException(f"this GPU ({gpu[0]}, SM {gpu[1]}) is not a TensorRT-RTX target (it builds for "
                                       f"{choices}); use --target trt on this GPU, or name RTX targets with "
                                       f"--compute-capability")
        ccs = [gpu[1]]
    return ccs, (gpu[0] if gpu else None), (gpu[1] if gpu else None)


def _plugin_device_code(plugins: Path, ccs: list[str], log) -> dict:
    """The plugin library's SASS / PTX and how each compute capability runs it; refuses an engine whose plugins
    would have no kernel on a GPU it is built for."""
    from .fatbin import device_code
    try:
        code = device_code(plugins)
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot read the device code of plugin library {plugins}: {e}") from None
    how = {cc: code.covers(cc) for cc in ccs}
    bad = [cc for cc, h in how.items() if h is None]
    if bad:
        archs = ";".join(sorted({c.replace(".", "") for c in ccs} | {c.replace(".", "") for c in code.sass},
                                key=int))
        raise click.ClickException(f"plugin library {plugins} has device code for {code.describe()}: none of it runs on "
                                   f"compute capability {', '.join(bad)}, so the engine's plugins would fail there; "
                                   f"rebuild it with RRSR_CUDA_ARCHITECTURES='{archs}' bash "
                                   f"scripts/build_tensorrt_plugins.sh <TensorRT headers>")
    jit = [cc for cc, h in how.items() if h == "ptx"]
    if jit:
        log(f"plugin kernels for compute capability {', '.join(jit)}: compiled from PTX by the driver when first "
            f"loaded ({plugins.name} has {code.describe()})")
    return {"sass": code.sass, "ptx": code.ptx, "runs_as": how}


def run_worker(request: dict, *, title: str, env_extra: dict, abort_hint: str = "", log=click.echo) -> dict:
    """Run ``runtime.build_worker`` on ``request`` in a child process, echo its output, and return its result; a
    failure it reports, or the child ending without one (a signal, an abort in native code), is a ClickException
    that says what the child was doing and its last output."""
    env = dict(os.environ)
    for k, v in env_extra.items():
        env[k] = v + (os.pathsep + env[k] if k in ("LD_LIBRARY_PATH", "PYTHONPATH") and env.get(k) else "")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="rrsr-build-") as d:
        req, res = Path(d) / "request.json", Path(d) / "result.json"
        req.write_text(json.dumps(request))
        tail, stage = collections.deque(maxlen=12), "starting"
        proc = subprocess.Popen([sys.executable, "-m", "runtime.build_worker", str(req), str(res)], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith(STAGE_PREFIX):
                    stage = line[len(STAGE_PREFIX):]
                    log(stage)
                else:
                    log(line)
                    tail.append(line)
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        result = json.loads(res.read_text()) if res.is_file() else None
    if result is not None and not result.get("ok"):
        raise click.ClickException(result.get("error") or f"the {title} build failed (exit {rc})")
    if result is None or rc != 0:
        how = f"exited with status {rc}"
        if rc < 0:
            try:
                how = f"was killed by {signal.Signals(-rc).name}"
            except ValueError:
                how = f"was killed by signal {-rc}"
        last = "\n  ".join(tail) or "(no output)"
        raise click.ClickException(f"the {title} build process {how} while {stage}, without a result (native code ended "
                                   f"it; this command survived){abort_hint}. Its last output:\n  {last}")
    return result


def build(onnx_path: Path, out: Path, *, precision: str, plugins: Optional[Path], min_lr, opt_lr, max_lr,
          timing_cache: Optional[Path], workspace_mib: Optional[int], verbose: bool, mdcn_tactics: str = "verified",
          target: str = "auto", compute_capability: Optional[str] = None, runtime_cache: Optional[Path] = None,
          serialize_plugins: Optional[bool] = None, trace_plugins: bool = False, log=click.echo) -> dict:
    import onnx

    from .backends.ort_backend import graph_precision
    profiles = profile_shapes(min_lr, opt_lr, max_lr)
    if precision == "fp16":
        fp16_graph_for(onnx_path, log, export=False)     # quick checks first, before TensorRT's
    t, trt, why = tg.resolve(target)                     # BackendUnavailable with the reason
    log(f"target: {why}")
    serialize = _target_options(t, timing_cache=timing_cache, runtime_cache=runtime_cache,
                                compute_capability=compute_capability, serialize_plugins=serialize_plugins)
    if precision == "fp16":
        onnx_path = fp16_graph_for(onnx_path, log)      # after the target: not a minute of re-export for nothing
    proto = onnx.load(str(onnx_path), load_external_data=False)
    got = graph_precision(proto)
    if got != precision:
        hint = ("export the FP16-policy graph with `rrsr-export --precision fp16` (TensorRT 11 has no FP16 flag: "
                "an FP16 engine is a strongly typed build of an FP16 graph)" if precision == "fp16" else
                "pass --fp16 for an FP16-policy graph")
        raise click.ClickException(f"{onnx_path} is an {got} graph but --{precision} was asked for; {hint}")
    nodes = custom_nodes(proto)
    from export.metadata import read_metadata
    bad_profile = profile_outside_graph(read_metadata(proto), min_lr, opt_lr, max_lr)
    del proto
    if bad_profile:
        raise click.ClickException(f"{onnx_path}: {bad_profile}")
    if nodes and (plugins is None or not plugins.is_file()):
        raise click.ClickException(f"{onnx_path} has {len(nodes)} rrsr custom node(s) ({', '.join(sorted({n[1] for n in nodes}))}) "
                                   f"but the TensorRT plugin library {plugins} does not exist; build it "
                                   f"(build/plugins-trt/) or pass --plugins")
    env_extra = {"RRSR_TRT_MDCN_TACTICS": mdcn_tactics}    # read by the MDCN plugin when the builder configures it
    if trace_plugins:
        env_extra["RRSR_TRT_TRACE"] = "1"
    if t.parser_link and nodes:
        from . import rtx_link
        try:
            folder = rtx_link.check_link()                 # before parsing: a missing link aborts the parser
        except rtx_link.LinkError as e:
            raise click.ClickException(str(e)) from None
        if folder != rtx_link.rtx_library().parent:
            env_extra["LD_LIBRARY_PATH"] = str(folder)
            log(f"TensorRT-RTX's parser finds libtensorrt_rtx.so in {folder} (LD_LIBRARY_PATH of the build process)")
    ccs, build_gpu, build_sm = _compute_capabilities(t, compute_capability)
    device = _plugin_device_code(plugins, ccs, log) if nodes else None
    # valid_size, where it feeds shape computations: the range of its values, the unpadded SR (H, W); the valid
    # part of a padded input can be as small as the smallest LR prepare_inputs accepts
    shape_values = [[SCALE * MIN_LR_SIDE] * 2, [SCALE * x for x in opt_lr], [SCALE * x for x in max_lr]]
    tmp = out.with_name(out.name + ".tmp")
    request = {"module": trt.__name__, "title": t.title, "onnx": str(onnx_path), "out": str(tmp),
               "precision": precision, "plugins": str(plugins) if nodes else None, "nodes": nodes,
               "serialize_plugins": bool(serialize and nodes), "profiles": profiles, "shape_values": shape_values,
               "workspace_mib": workspace_mib, "timing_cache": str(timing_cache) if timing_cache else None,
               "compute_capabilities": ccs if t.name == "rtx" else None, "verbose": verbose,
               "op_hints": RTX_OP_HINTS if t.name == "rtx" else {}}
    where = (f"for {tg.gpus_of(ccs)}" if t.name == "rtx" else f"on {build_gpu} (SM {build_sm})")
    log(f"building {precision} engine for LR {min_lr[0]}x{min_lr[1]}..{max_lr[0]}x{max_lr[1]} {where}, "
        f"{t.title} {trt.__version__}")
    try:
        hint = ("; TensorRT-RTX's parser ends the process like this when it cannot load libtensorrt_rtx.so after "
                "creating a plugin: check the link with `python -m runtime.rtx_link`" if t.parser_link and nodes else "")
        result = run_worker(request, title=t.title, env_extra=env_extra, abort_hint=hint, log=log)
        tmp.replace(out)
    finally:
        if tmp.exists():
            tmp.unlink()
    counted = result["census"]
    extra = {"build_seconds": result["build_seconds"], "strongly_typed": result["strongly_typed"],
             "workspace_mib": workspace_mib, "mdcn_tactics": mdcn_tactics,
             "matching": "streaming" if any(n[1] == "RrsrPatchMatch" for n in nodes) else "dense",
             "compute_capabilities": ccs, "build_gpu": build_gpu, "census": counted,
             "plugins_serialized": bool(serialize and nodes), "plugin_device_code": device,
             "runtime_cache": str(runtime_cache.resolve()) if runtime_cache else None}
    if trace_plugins:
        extra["plugin_calls"] = result["plugin_calls"]
    if t.name == "rtx":
        gpu = {"gpu_name": tg.gpus_of(ccs), "gpu_sm": ",".join(ccs)}
    else:
        gpu = {"gpu_name": build_gpu, "gpu_sm": build_sm}
    meta = make_sidecar(tensorrt_version=result["version"], precision=precision,
                        profiles=[{"min": list(min_lr), "opt": list(opt_lr), "max": list(max_lr)}],
                        engine_sha256=sha256_file(out), onnx_path=onnx_path, onnx_sha256=sha256_file(onnx_path),
                        plugin_library=plugins if nodes else None,
                        plugin_sha256=sha256_file(plugins) if nodes else None, target=t.name, extra=extra, **gpu)
    write_sidecar(out, meta)
    by_type = ", ".join(f"{n} {op}" for op, n in counted["plugin_layers_by_type"].items()) or "none"
    log(f"census: {counted['layers']} layers, {counted['plugin_layers']} plugin layers ({by_type})")
    if trace_plugins:
        for op, calls in result["plugin_calls"].items():
            log(f"plugin methods called on {op}: " + ", ".join(f"{m} x{n}" for m, n in calls.items()))
    return meta


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), default="rrsr.onnx", show_default=True,
              help="Graph from rrsr-export. With --fp16 an FP32 graph's checkpoint is exported again as the "
                   "FP16-policy graph <name>_fp16.onnx (or pass that graph: rrsr-export --precision fp16).")
@click.option("--out", type=click.Path(dir_okay=False), default="rrsr.engine", show_default=True,
              help="Engine file; the sidecar <out>.json is written next to it.")
@click.option("--target", type=click.Choice(["auto", "trt", "rtx"]), default="auto", show_default=True,
              help="trt: TensorRT (>= 10.3), built on and for this machine's GPU. rtx: TensorRT-RTX (pip "
                   "tensorrt-rtx-cu13), built ahead of time, GPU optional, for --compute-capability. auto: trt when "
                   "tensorrt imports, else rtx (says which).")
@click.option("--fp16/--fp32", "fp16", default=False, show_default=True,
              help="FP16: a strongly typed build of the FP16-policy graph (the graph's types decide; TensorRT 11 and "
                   "TensorRT-RTX have no FP16 flag).")
@click.option("--plugins", type=click.Path(dir_okay=False), default=None,
              show_default="$RRSR_TRT_PLUGINS_LIB, else build/plugins-trt/librrsr_trt_plugins_dynamic.so",
              help="The project's TensorRT plugin library (the *_dynamic.so, loaded with registry.load_library).")
@click.option("--compute-capability", default=None,
              help="rtx: GPUs to build for, comma-separated, of 75, 80, 86, 89, 120, 121 (no 90), or 'current' "
                   "(this machine's GPU; the default when one is visible, else required).")
@click.option("--min-lr", default="16x16", show_default=True, callback=size_option, help="Smallest LR HxW of the profile.")
@click.option("--opt-lr", default="64x64", show_default=True, callback=size_option, help="LR HxW TensorRT tunes for.")
@click.option("--max-lr", default="128x128", show_default=True, callback=size_option,
              help="Largest LR HxW (the graph's dense matching needs (h*w)^2*4 bytes: 128x128 is 1 GiB, 256x256 16 GiB).")
@click.option("--timing-cache", type=click.Path(dir_okay=False),
              help="trt: timing cache file, read if present, written after the build (TensorRT-RTX has none).")
@click.option("--runtime-cache", type=click.Path(dir_okay=False),
              help="rtx: file where the trt backend keeps the kernels TensorRT-RTX compiles when loading the engine "
                   "(read if present, written when the runner closes); recorded in the sidecar.")
@click.option("--serialize-plugins/--no-serialize-plugins", default=None,
              show_default="on for rtx (the engine carries the plugin library), off for trt (the sidecar names it)",
              help="Put the plugin library into the engine.")
@click.option("--workspace", type=click.IntRange(min=1), help="Workspace limit in MiB (default: TensorRT's).")
@click.option("--mdcn-tactics", type=click.Choice(["verified", "all", "none"]), default="verified", show_default=True,
              help="MDCN kernel variants the builder may time and pick per layer: those verified on a GPU, also the "
                   "unverified ones (check the engine with runtime.parity), or none.")
@click.option("--trace-plugins", is_flag=True,
              help="Count the plugin methods the builder calls (RRSR_TRT_TRACE in the plugins); printed and stored "
                   "in the sidecar as plugin_calls.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--verbose", is_flag=True, help="TensorRT's verbose log.")
@click_errors
def main(onnx_path, out, target, fp16, plugins, compute_capability, min_lr, opt_lr, max_lr, timing_cache, runtime_cache,
         serialize_plugins, workspace, mdcn_tactics, trace_plugins, force, verbose):
    """Build a TensorRT or TensorRT-RTX engine from an RRSR ONNX graph, with the project's plugins, and write its
    sidecar JSON (target, TensorRT version, GPUs it runs on, plugin and ONNX SHA-256, profile, precision, the
    parsed network's census) that runners check."""
    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise click.ClickException(f"ONNX file not found: {onnx_path}")
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to overwrite it")
    try:
        meta = build(onnx_path, out, precision="fp16" if fp16 else "fp32",
                     plugins=Path(plugins) if plugins else default_plugin_library(),
                     min_lr=min_lr, opt_lr=opt_lr, max_lr=max_lr,
                     timing_cache=Path(timing_cache) if timing_cache else None, workspace_mib=workspace, verbose=verbose,
                     mdcn_tactics=mdcn_tactics, target=target, compute_capability=compute_capability,
                     runtime_cache=Path(runtime_cache) if runtime_cache else None, serialize_plugins=serialize_plugins,
                     trace_plugins=trace_plugins)
    except BackendError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {meta['build_seconds']} s) and {out}.json")


if __name__ == "__main__":
    main()
