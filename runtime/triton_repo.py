"""rrsr-triton-repo (python -m runtime.triton_repo): a Triton model repository for a stock Triton container (its
TensorRT and ONNX Runtime backends), serving the same wire contract as rrsr-serve.

    rrsr-triton-repo --engine rrsr.engine --onnx rrsr.onnx --out model_repository

Models written (each with its config.pbtxt, built through Triton's model-config protobuf):
  rrsr_trt   tensorrt_plan: the engine (plugins: --backend-config=tensorrt,plugins=<librrsr_trt_plugins.so>)
  rrsr_ort   onnxruntime: the graph, model_operations.op_library_filename = the rrsr custom-op library
  rrsr_pre   python: lr, ref (UINT8) -> lr, lr_up, ref (FP32), valid_size (rrsr_model.preprocess, PIL bicubic)
  rrsr_post  python: the network's SR + valid_size -> sr (UINT8, cropped, clamped, rounded), sr_float (FP32)
  rrsr       ensemble: rrsr_pre -> rrsr_trt or rrsr_ort -> rrsr_post, exposing exactly the wire contract
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import click

from .triton_config import (MODEL_NAME, MODEL_VERSION, WIRE_INPUTS, WIRE_OUTPUTS, ConfigError, instance_group,
                            queue_policy, to_pbtxt)

PRE, POST, TRT, ORT = "rrsr_pre", "rrsr_post", "rrsr_trt", "rrsr_ort"
NET_INPUTS = ("lr", "lr_up", "ref", "valid_size")       # export.onnx_export.INPUT_NAMES
NET_OUTPUT = "sr"
_PREPROCESS = Path(__file__).resolve().parent.parent / "rrsr_model" / "preprocess.py"
_TEMPLATES = Path(__file__).resolve().parent / "triton_models"
TRT_PLUGIN_LIB = "librrsr_trt_plugins.so"               # the self-registering build (dlopen'ed by the backend)
_ONNX_TYPES = {1: "TYPE_FP32", 7: "TYPE_INT64", 10: "TYPE_FP16"}


def net_io(batch: int = 1) -> tuple[list[dict], list[dict]]:
    """The network's tensors as rrsr-export writes them (batch static, h and w dynamic)."""
    img = [batch, 3, -1, -1]
    ins = [{"name": n, "data_type": "TYPE_FP32", "dims": img} for n in NET_INPUTS[:3]]
    ins.append({"name": "valid_size", "data_type": "TYPE_INT64", "dims": [2]})
    return ins, [{"name": NET_OUTPUT, "data_type": "TYPE_FP32", "dims": img}]


def onnx_io(onnx_path: Path) -> tuple[list[dict], list[dict]]:
    """Inputs and the SR output of a graph, as config entries (symbolic dims -> -1); ConfigError when the graph is
    not an rrsr-export graph."""
    import onnx
    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise ConfigError(f"cannot read ONNX file {onnx_path}: {type(e).__name__}") from None

    def entry(v):
        t = v.type.tensor_type
        if t.elem_type not in _ONNX_TYPES:
            raise ConfigError(f"{onnx_path}: tensor {v.name!r} has ONNX element type {t.elem_type}, not one of "
                              f"float32/int64/float16")
        return {"name": v.name, "data_type": _ONNX_TYPES[t.elem_type],
                "dims": [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]}
    ins = {v.name: entry(v) for v in proto.graph.input}
    outs = {v.name: entry(v) for v in proto.graph.output}
    if set(ins) != set(NET_INPUTS) or NET_OUTPUT not in outs:
        raise ConfigError(f"{onnx_path}: inputs {sorted(ins)} and outputs {sorted(outs)} are not rrsr-export's "
                          f"({', '.join(NET_INPUTS)} -> {NET_OUTPUT})")
    return [ins[n] for n in NET_INPUTS], [outs[NET_OUTPUT]]


def net_config(name: str, kind: str, io, instances: int, device_kind: str, gpus, queue,
               op_library: Optional[str] = None) -> dict:
    ins, outs = io
    cfg = {"name": name, "max_batch_size": 0, "input": ins, "output": outs,
           "instance_group": instance_group(instances, device_kind, gpus)}
    if kind == "trt":
        cfg.update(platform="tensorrt_plan", default_model_filename="model.plan")
    else:
        cfg.update(backend="onnxruntime", default_model_filename="model.onnx")
        if op_library:
            cfg["model_operations"] = {"op_library_filename": [op_library]}
    if queue:
        cfg["dynamic_batching"] = queue
    return cfg


def pre_config(net_in: list[dict], instances: int, lr_range: Optional[tuple] = None) -> dict:
    cfg = {"name": PRE, "backend": "python", "max_batch_size": 0, "input": WIRE_INPUTS,
           "output": [dict(e) for e in net_in], "instance_group": instance_group(instances)}
    if lr_range:
        cfg["parameters"] = {"min_lr": {"string_value": "{}x{}".format(*lr_range[0])},
                             "max_lr": {"string_value": "{}x{}".format(*lr_range[1])}}
    return cfg


def post_config(net_out: dict, instances: int) -> dict:
    return {"name": POST, "backend": "python", "max_batch_size": 0,
            "input": [dict(net_out, name="sr_padded"), {"name": "valid_size", "data_type": "TYPE_INT64", "dims": [2]}],
            "output": WIRE_OUTPUTS, "instance_group": instance_group(instances)}


def ensemble_config(net: str) -> dict:
    step = lambda model, i, o: {"model_name": model, "model_version": -1, "input_map": i, "output_map": o}  # noqa: E731
    feeds = {n: f"_{n}" for n in NET_INPUTS}
    return {"name": MODEL_NAME, "platform": "ensemble", "max_batch_size": 0,
            "input": WIRE_INPUTS, "output": WIRE_OUTPUTS,
            "ensemble_scheduling": {"step": [
                step(PRE, {"lr": "lr", "ref": "ref"}, feeds),
                step(net, feeds, {NET_OUTPUT: "_sr_padded"}),
                step(POST, {"sr_padded": "_sr_padded", "valid_size": "_valid_size"},
                     {"sr": "sr", "sr_float": "sr_float"})]}}


def check_ensemble(configs: dict[str, dict]) -> None:
    """Every ensemble step names a model of the repository and only tensors that model has, with the dtypes of
    the tensors they are wired to (what Triton checks at load; here at write time)."""
    ens = configs[MODEL_NAME]
    types = {e["name"]: e["data_type"] for e in ens["input"]}
    for s in ens["ensemble_scheduling"]["step"]:
        m = configs.get(s["model_name"])
        if m is None:
            raise ConfigError(f"ensemble {MODEL_NAME!r}: step model {s['model_name']!r} is not in the repository")
        m_in = {e["name"]: e["data_type"] for e in m["input"]}
        m_out = {e["name"]: e["data_type"] for e in m["output"]}
        if set(s["input_map"]) != set(m_in):
            raise ConfigError(f"ensemble step {s['model_name']!r} maps inputs {sorted(s['input_map'])}; the model "
                              f"has {sorted(m_in)}")
        for k, src in s["input_map"].items():
            if src not in types:
                raise ConfigError(f"ensemble step {s['model_name']!r}: input {k!r} reads {src!r}, which no earlier "
                                  f"step writes")
            if types[src] != m_in[k]:
                raise ConfigError(f"ensemble step {s['model_name']!r}: input {k!r} is {m_in[k]}, {src!r} is "
                                  f"{types[src]}")
        for k, dst in s["output_map"].items():
            if k not in m_out:
                raise ConfigError(f"ensemble step {s['model_name']!r}: model has no output {k!r} ({sorted(m_out)})")
            types[dst] = m_out[k]
    for e in ens["output"]:
        if types.get(e["name"]) != e["data_type"]:
            raise ConfigError(f"ensemble output {e['name']!r} ({e['data_type']}) is written as "
                              f"{types.get(e['name'])}")


def write_model(out: Path, config: dict, files: dict[str, Path]) -> None:
    """out/<name>/config.pbtxt and out/<name>/<relative path> for each (relative path -> source) in ``files``."""
    d = out / config["name"]
    (d / MODEL_VERSION).mkdir(parents=True, exist_ok=True)
    (d / "config.pbtxt").write_text(to_pbtxt(config))
    for rel, src in files.items():
        shutil.copyfile(src, d / rel)


def python_files(template: str) -> dict[str, Path]:
    return {f"{MODEL_VERSION}/model.py": _TEMPLATES / template, f"{MODEL_VERSION}/rrsr_preprocess.py": _PREPROCESS}


def server_command(model_root: str, trt_plugin: Optional[str]) -> str:
    args = [f"tritonserver --model-repository={model_root}"]
    if trt_plugin:
        args.append(f"--backend-config=tensorrt,plugins={trt_plugin}")
    return " ".join(args)


def lr_range(sidecar: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    ps = sidecar["profiles"]
    return ((min(p["min"][0] for p in ps), min(p["min"][1] for p in ps)),
            (max(p["max"][0] for p in ps), max(p["max"][1] for p in ps)))


def external_data(onnx_path: Path) -> list[Path]:
    """The external weight files a graph references (copied beside it: Triton loads model.onnx from 1/)."""
    import onnx
    from onnx.external_data_helper import uses_external_data
    proto = onnx.load(str(onnx_path), load_external_data=False)
    locs = {e.value for t in proto.graph.initializer if uses_external_data(t)
            for e in t.external_data if e.key == "location"}
    missing = [x for x in sorted(locs) if not (onnx_path.parent / x).is_file()]
    if missing:
        raise ConfigError(f"{onnx_path} references external data {', '.join(missing)}, not found beside it")
    return [onnx_path.parent / x for x in sorted(locs)]


def plan_repository(*, engine=None, onnx=None, trt_plugins=None, ort_library=None, net="auto", instances=1,
                    device_kind="gpu", gpus=None, prepost_instances=2, max_queue_size=0, queue_timeout_ms=0,
                    model_root="/models") -> dict:
    """Check the inputs and make every config (validated against Triton's schema) and the list of files to copy;
    nothing is written. {"models": {name: config}, "files": {name: {relative path: source}}, "command", "net",
    "sidecar"}."""
    from export.check import uses_custom_ops
    from .sidecar import check_engine_file, read_sidecar
    if engine is None and onnx is None:
        raise ConfigError("give --engine (a TensorRT engine) and/or --onnx (an ONNX graph)")
    if net == "auto":
        net = "trt" if engine is not None else "ort"
    if (net == "trt" and engine is None) or (net == "ort" and onnx is None):
        raise ConfigError(f"--net {net} needs --{'engine' if net == 'trt' else 'onnx'}")
    queue = queue_policy(max_queue_size, queue_timeout_ms)
    configs, files, trt_plugin_in_repo, batch = {}, {}, None, 1
    if onnx is not None:
        import onnx as onnx_mod
        onnx = Path(onnx)
        if not onnx.is_file():
            raise ConfigError(f"ONNX file not found: {onnx}")
        io = onnx_io(onnx)
        batch = io[0][0]["dims"][0]
        files[ORT] = {f"{MODEL_VERSION}/model.onnx": onnx}
        files[ORT].update({f"{MODEL_VERSION}/{p.name}": p for p in external_data(onnx)})
        lib = None
        if uses_custom_ops(onnx_mod.load(str(onnx), load_external_data=False)):
            from plugins.ort_library import LIBRARY_NAME, find_library
            ort_library = ort_library or find_library()
            if ort_library is None or not Path(ort_library).is_file():
                raise ConfigError(f"{onnx} has rrsr custom nodes: the ONNX Runtime custom-op library is needed "
                                  f"(bash scripts/build_plugins.sh, or --ort-library)")
            lib = f"{model_root}/{ORT}/{LIBRARY_NAME}"
            files[ORT][LIBRARY_NAME] = Path(ort_library)
        configs[ORT] = net_config(ORT, "ort", io, instances, device_kind, gpus, queue, lib)
    sidecar = None
    if engine is not None:
        engine = Path(engine)
        if not engine.is_file():
            raise ConfigError(f"engine file not found: {engine}")
        sidecar = read_sidecar(engine)
        check_engine_file(engine, sidecar)
        files[TRT] = {f"{MODEL_VERSION}/model.plan": engine}
        if sidecar.get("plugin_sha256"):
            plugin = Path(trt_plugins) if trt_plugins else (
                Path(sidecar["plugin_library"]).with_name(TRT_PLUGIN_LIB) if sidecar.get("plugin_library") else None)
            if plugin is None or not plugin.is_file():
                raise ConfigError(f"the engine uses the rrsr TensorRT plugins: give --trt-plugins (the "
                                  f"self-registering {TRT_PLUGIN_LIB} built against the container's TensorRT "
                                  f"{sidecar['tensorrt_version']}; looked for {plugin})")
            files[TRT][TRT_PLUGIN_LIB] = plugin
            trt_plugin_in_repo = f"{model_root}/{TRT}/{TRT_PLUGIN_LIB}"
        configs[TRT] = net_config(TRT, "trt", net_io(batch), instances, "gpu", gpus, queue)   # TensorRT: GPUs only
    net_name = TRT if net == "trt" else ORT
    net_in, net_out = configs[net_name]["input"], configs[net_name]["output"][0]
    configs[PRE] = pre_config(net_in, prepost_instances, lr_range(sidecar) if net == "trt" else None)
    configs[POST] = post_config(net_out, prepost_instances)
    configs[MODEL_NAME] = ensemble_config(net_name)
    check_ensemble(configs)
    for cfg in configs.values():
        to_pbtxt(cfg)                                   # Triton's schema, before anything is written
    files[PRE], files[POST] = python_files("rrsr_pre.py"), python_files("rrsr_post.py")
    return {"models": configs, "files": files, "command": server_command(model_root, trt_plugin_in_repo),
            "net": net_name, "sidecar": sidecar, "model_root": model_root}


def write_repository(out: Path, plan: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, cfg in plan["models"].items():
        write_model(out, cfg, plan["files"].get(name, {}))
    (out / "README.txt").write_text(
        f"Triton model repository written by rrsr-triton-repo (model {MODEL_NAME!r}: the ensemble "
        f"{PRE} -> {plan['net']} -> {POST}).\nMounted at {plan['model_root']} in a Triton container, start it "
        f"with:\n\n  {plan['command']}\n")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Repository folder to write.")
@click.option("--engine", type=click.Path(dir_okay=False), help="TensorRT engine (rrsr-build-engine; with its .json sidecar).")
@click.option("--onnx", type=click.Path(dir_okay=False), help="ONNX graph (rrsr-export) for the onnxruntime backend.")
@click.option("--trt-plugins", type=click.Path(dir_okay=False),
              help=f"The self-registering TensorRT plugin library ({TRT_PLUGIN_LIB}) built for the container's "
                   f"TensorRT [default: next to the library the engine's sidecar names].")
@click.option("--ort-library", type=click.Path(dir_okay=False),
              help="The ONNX Runtime custom-op library [default: build/plugins/librrsr_ort_ops.so].")
@click.option("--net", type=click.Choice(["auto", "trt", "ort"]), default="auto", show_default=True,
              help="The network model the ensemble 'rrsr' runs (auto: trt when --engine is given).")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Instances of each network model (per listed GPU with --gpus).")
@click.option("--kind", "device_kind", type=click.Choice(["gpu", "cpu"]), default="gpu", show_default=True,
              help="Where the onnxruntime model's instances run (the TensorRT model's always run on GPUs).")
@click.option("--gpus", default=None, help="Comma-separated GPU ids for the network models [default: all].")
@click.option("--prepost-instances", type=click.IntRange(min=1), default=2, show_default=True,
              help="Instances of the Python pre- and post-processing models (CPU).")
@click.option("--max-queue-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="Requests that may wait for a network instance; more are rejected (0: unbounded).")
@click.option("--queue-timeout-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="A request that waited this long for a network instance is rejected (0: no limit).")
@click.option("--model-root", default="/models", show_default=True,
              help="Where the repository is mounted in the container (library paths in the configs are absolute).")
@click.option("--force", is_flag=True, help="Write into an existing non-empty --out (replacing these models).")
def main(out, engine, onnx, trt_plugins, ort_library, net, instances, device_kind, gpus, prepost_instances,
         max_queue_size, queue_timeout_ms, model_root, force):
    """Write a Triton model repository serving RRSR's wire contract (model "rrsr": inputs lr, ref UINT8 [h, w, 3];
    outputs sr UINT8 [4h, 4w, 3], sr_float FP32 [3, 4h, 4w]) from an engine and/or an ONNX graph."""
    from .sidecar import SidecarError
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise click.ClickException(f"{out} exists and is not empty; pass --force to write into it")
    try:
        gpu_ids = [int(g) for g in gpus.split(",") if g.strip()] if gpus else None
    except ValueError:
        raise click.BadParameter(f"expected comma-separated GPU ids (e.g. 0,1), got {gpus!r}",
                                 param_hint="--gpus") from None
    try:
        rep = plan_repository(engine=engine, onnx=onnx, trt_plugins=trt_plugins, ort_library=ort_library, net=net,
                              instances=instances, device_kind=device_kind, gpus=gpu_ids,
                              prepost_instances=prepost_instances, max_queue_size=max_queue_size,
                              queue_timeout_ms=queue_timeout_ms, model_root=model_root.rstrip("/") or "/")
    except (ConfigError, SidecarError) as e:
        raise click.ClickException(str(e)) from None
    if force:                                           # only the models this writes, once all checks passed
        for name in (PRE, POST, TRT, ORT, MODEL_NAME):
            shutil.rmtree(out / name, ignore_errors=True)
    write_repository(out, rep)
    click.echo(f"wrote {out}/: {', '.join(sorted(rep['models']))} (ensemble {MODEL_NAME!r} runs {rep['net']})")
    if rep["sidecar"]:
        click.echo(f"the engine runs only on TensorRT {rep['sidecar']['tensorrt_version']} and a "
                   f"{rep['sidecar']['gpu_name']}: use the Triton release with that TensorRT")
    click.echo(f"in the container (repository mounted at {model_root}):\n  {rep['command']}")


if __name__ == "__main__":
    main()
