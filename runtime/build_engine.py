"""rrsr-build-engine: ONNX (rrsr-export) -> TensorRT engine + sidecar JSON, on the GPU that will run it.

    python -m runtime.build_engine --onnx rrsr_fp16.onnx --out rrsr_fp16.engine --fp16 \\
        --min-lr 16x16 --opt-lr 64x64 --max-lr 256x256 --timing-cache trt.cache

FP16: TensorRT 11 has no FP16 builder flag (networks are strongly typed), so an FP16 engine is built from the
FP16-policy graph (``rrsr-export --precision fp16``) with the STRONGLY_TYPED network flag, on 10.x as well: the
types are the policy's, not the builder's choice. TensorRT is imported only inside ``main``'s build step, so the
module imports (and its error paths and sidecar logic are tested) without TensorRT.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Optional

import click

from .cli_common import click_errors, size_option
from .sidecar import make_sidecar, sha256_file, write_sidecar
from .backends.base import BackendError
from .backends.trt_backend import default_plugin_library, gpu_info, import_tensorrt, load_plugin_library

SCALE = 4
MIN_LR_SIDE = 3            # rrsr_model.inference.MIN_LR_SIDE


def profile_shapes(min_lr, opt_lr, max_lr, batch: int = 1) -> dict[str, tuple[tuple, tuple, tuple]]:
    """Input shapes (min, opt, max) of the one optimisation profile, from LR sizes; checks their order."""
    for i in range(2):
        if not min_lr[i] <= opt_lr[i] <= max_lr[i]:
            raise click.BadParameter(f"LR sizes must satisfy min <= opt <= max in each dimension, got "
                                     f"{min_lr} / {opt_lr} / {max_lr}")
    lr = tuple((batch, 3, h, w) for h, w in (min_lr, opt_lr, max_lr))
    hr = tuple((batch, 3, SCALE * h, SCALE * w) for h, w in (min_lr, opt_lr, max_lr))
    return {"lr": lr, "lr_up": hr, "ref": hr}


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


def missing_creators(nodes, has_creator: Callable[[str, str, str], bool]) -> list[str]:
    """Messages for custom nodes the registry has no creator for (each names the node and its op)."""
    return [f"node {name!r} (op {op}, plugin_version {ver!r}, namespace {ns!r}) has no plugin creator in the "
            f"loaded plugin library" for name, op, ver, ns in nodes if not has_creator(op, ver, ns)]


def _has_creator(trt, registry) -> Callable[[str, str, str], bool]:
    def has(op, ver, ns):
        try:
            if hasattr(registry, "get_creator"):      # IPluginV3 creators (10.x+)
                return registry.get_creator(op, ver, ns) is not None
            return registry.get_plugin_creator(op, ver, ns) is not None
        except Exception:
            return False
    return has


def parser_errors(parser) -> list[str]:
    out = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        node = getattr(e, "node_name", lambda: "")() or str(e.node())
        op = getattr(e, "node_operator", lambda: "")()
        out.append(f"node {node!r}{' (op ' + op + ')' if op else ''}: {e.desc()}")
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


def build(onnx_path: Path, out: Path, *, precision: str, plugins: Optional[Path], min_lr, opt_lr, max_lr,
          timing_cache: Optional[Path], workspace_mib: Optional[int], verbose: bool, mdcn_tactics: str = "verified",
          log=click.echo) -> dict:
    import onnx

    from .backends.ort_backend import graph_precision
    if precision == "fp16":
        fp16_graph_for(onnx_path, log, export=False)     # quick checks first, before TensorRT's
        import_tensorrt()                                 # and before a minute of re-export
        onnx_path = fp16_graph_for(onnx_path, log)
    proto = onnx.load(str(onnx_path), load_external_data=False)
    got = graph_precision(proto)
    if got != precision:
        hint = ("export the FP16-policy graph with `rrsr-export --precision fp16` (TensorRT 11 has no FP16 flag: "
                "an FP16 engine is a strongly typed build of an FP16 graph)" if precision == "fp16" else
                "pass --fp16 for an FP16-policy graph")
        raise click.ClickException(f"{onnx_path} is an {got} graph but --{precision} was asked for; {hint}")
    nodes = custom_nodes(proto)
    del proto
    if nodes and (plugins is None or not plugins.is_file()):
        raise click.ClickException(f"{onnx_path} has {len(nodes)} rrsr custom node(s) ({', '.join(sorted({n[1] for n in nodes}))}) "
                                   f"but the TensorRT plugin library {plugins} does not exist; build it "
                                   f"(build/plugins-trt/) or pass --plugins")
    profiles = profile_shapes(min_lr, opt_lr, max_lr)
    trt = import_tensorrt()          # BackendUnavailable with the reason
    env = gpu_info()
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    registry = builder.get_plugin_registry() if hasattr(builder, "get_plugin_registry") else trt.get_plugin_registry()
    if nodes:
        load_plugin_library(trt, plugins)
        missing = missing_creators(nodes, _has_creator(trt, registry))
        if missing:
            raise click.ClickException(f"plugin library {plugins} lacks creators:\n  " + "\n  ".join(missing))
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    elif precision == "fp16":
        raise click.ClickException(f"TensorRT {trt.__version__} has no STRONGLY_TYPED network flag; FP16 engines "
                                   f"need TensorRT >= 10.3")
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise click.ClickException(f"TensorRT's ONNX parser rejected {onnx_path}:\n  " + "\n  ".join(parser_errors(parser)))
    config = builder.create_builder_config()
    if workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib * 2 ** 20)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        if t.name in profiles:
            profile.set_shape(t.name, *profiles[t.name])
        elif t.is_shape_tensor:
            # valid_size feeding shape computations: the range of its values, the unpadded SR (H, W); the valid
            # part of a padded input can be as small as the smallest LR prepare_inputs accepts
            lo = [SCALE * MIN_LR_SIDE] * 2
            mid, hi = ([SCALE * x for x in s] for s in (opt_lr, max_lr))
            set_values = getattr(profile, "set_shape_input", None) or profile.set_shape_values
            set_values(t.name, lo, mid, hi)
    config.add_optimization_profile(profile)
    # which MDCN kernel variants the plugin offers the builder as custom tactics (plugins/tensorrt/README.md);
    # the plugin reads this when the builder configures it
    os.environ["RRSR_TRT_MDCN_TACTICS"] = mdcn_tactics
    cache = None
    if timing_cache:
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    log(f"building {precision} engine for LR {min_lr[0]}x{min_lr[1]}..{max_lr[0]}x{max_lr[1]} on {env['gpu_name']} "
        f"(SM {env['gpu_sm']}), TensorRT {trt.__version__}")
    t0 = time.perf_counter()
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise click.ClickException("TensorRT failed to build the engine (see the log above; --verbose for more)")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(bytes(blob))
    tmp.replace(out)
    if cache is not None:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    meta = make_sidecar(tensorrt_version=trt.__version__, precision=precision,
                        profiles=[{"min": list(min_lr), "opt": list(opt_lr), "max": list(max_lr)}],
                        engine_sha256=sha256_file(out), onnx_path=onnx_path, onnx_sha256=sha256_file(onnx_path),
                        plugin_library=plugins if nodes else None,
                        plugin_sha256=sha256_file(plugins) if nodes else None,
                        extra={"build_seconds": round(time.perf_counter() - t0, 1), "strongly_typed": bool(flags),
                               "workspace_mib": workspace_mib, "mdcn_tactics": mdcn_tactics,
                               "matching": "streaming" if any(n[1] == "RrsrPatchMatch" for n in nodes) else "dense"},
                        **env)
    write_sidecar(out, meta)
    return meta


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), default="rrsr.onnx", show_default=True,
              help="Graph from rrsr-export. With --fp16 an FP32 graph's checkpoint is exported again as the "
                   "FP16-policy graph <name>_fp16.onnx (or pass that graph: rrsr-export --precision fp16).")
@click.option("--out", type=click.Path(dir_okay=False), default="rrsr.engine", show_default=True,
              help="Engine file; the sidecar <out>.json is written next to it.")
@click.option("--fp16/--fp32", "fp16", default=False, show_default=True,
              help="FP16: a strongly typed build of the FP16-policy graph (the graph's types decide; TensorRT 11 has no "
                   "FP16 flag).")
@click.option("--plugins", type=click.Path(dir_okay=False), default=None,
              show_default="$RRSR_TRT_PLUGINS_LIB, else build/plugins-trt/librrsr_trt_plugins_dynamic.so",
              help="The project's TensorRT plugin library (the *_dynamic.so, loaded with registry.load_library).")
@click.option("--min-lr", default="16x16", show_default=True, callback=size_option, help="Smallest LR HxW of the profile.")
@click.option("--opt-lr", default="64x64", show_default=True, callback=size_option, help="LR HxW TensorRT tunes for.")
@click.option("--max-lr", default="128x128", show_default=True, callback=size_option,
              help="Largest LR HxW (the graph's dense matching needs (h*w)^2*4 bytes: 128x128 is 1 GiB, 256x256 16 GiB).")
@click.option("--timing-cache", type=click.Path(dir_okay=False), help="Timing cache file: read if present, written after the build.")
@click.option("--workspace", type=click.IntRange(min=1), help="Workspace limit in MiB (default: TensorRT's).")
@click.option("--mdcn-tactics", type=click.Choice(["verified", "all", "none"]), default="verified", show_default=True,
              help="MDCN kernel variants the builder may time and pick per layer: those verified on a GPU, also the "
                   "unverified ones (check the engine with runtime.parity), or none.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--verbose", is_flag=True, help="TensorRT's verbose log.")
@click_errors
def main(onnx_path, out, fp16, plugins, min_lr, opt_lr, max_lr, timing_cache, workspace, mdcn_tactics, force, verbose):
    """Build a TensorRT engine from an RRSR ONNX graph, with the project's plugins, and write its sidecar JSON
    (TensorRT version, GPU name and SM, plugin and ONNX SHA-256, profile, precision) that runners check."""
    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise click.ClickException(f"ONNX file not found: {onnx_path}")
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to overwrite it")
    try:
        meta = build(onnx_path, out, precision="fp16" if fp16 else "fp32", plugins=Path(plugins) if plugins else default_plugin_library(),
                     min_lr=min_lr, opt_lr=opt_lr, max_lr=max_lr,
                     timing_cache=Path(timing_cache) if timing_cache else None, workspace_mib=workspace, verbose=verbose,
                     mdcn_tactics=mdcn_tactics)
    except BackendError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {meta['build_seconds']} s) and {out}.json")


if __name__ == "__main__":
    main()
