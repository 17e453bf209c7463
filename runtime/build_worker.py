"""The TensorRT side of rrsr-build-engine, run in a child process: load the plugin library, parse the ONNX graph,
count what the parser made (the census), build, write the engine. The same code for TensorRT and TensorRT-RTX
(the module is named in the request).

Why a child process: native code can end the process (TensorRT-RTX's parser aborts when the
``libtensorrt_rtx.so`` link is missing, see ``runtime.rtx_link``), and only a parent that survives can say what
happened; the child also gets the ``LD_LIBRARY_PATH`` the parser needs, which a running process cannot change.

    python -m runtime.build_worker REQUEST.json RESULT.json     (written and read by runtime.build_engine)

The request and result are JSON (``build_engine.build`` documents the fields). Progress lines on stderr start
with ``STAGE_PREFIX``; TensorRT's log follows its severity threshold. Exit 0 with ``ok`` in the result, 1 with
``error`` (a message naming node / field / file).
"""
from __future__ import annotations

import collections
import importlib
import json
import sys
import time
from pathlib import Path

STAGE_PREFIX = "[rrsr-build-engine] stage: "
TRACE_PREFIX = "rrsr-trace: "


class BuildFailed(Exception):
    """A step failed; the message is the one-line-per-item reason for the user."""


def stage(name: str) -> None:
    print(STAGE_PREFIX + name, file=sys.stderr, flush=True)


def make_logger(trt, title: str, verbose: bool):
    """An ILogger that prints TensorRT's messages at or above the threshold, keeps the errors (our plugins report
    bad fields and shapes there) and counts the plugins' trace lines (``RRSR_TRT_TRACE``) per op and method."""
    sev = trt.ILogger.Severity
    threshold = sev.VERBOSE if verbose else sev.WARNING
    names = {sev.INTERNAL_ERROR: "INTERNAL_ERROR", sev.ERROR: "ERROR", sev.WARNING: "WARNING", sev.INFO: "INFO",
             sev.VERBOSE: "VERBOSE"}

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.calls: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

        def log(self, severity, msg):
            if msg.startswith(TRACE_PREFIX):
                who, _, method = msg[len(TRACE_PREFIX):].rpartition(": ")
                self.calls[who.split(" ")[0]][method] += 1
                if not verbose:
                    return
            if severity in (sev.ERROR, sev.INTERNAL_ERROR):
                self.errors.append(msg)
            if severity <= threshold:
                print(f"[{title}] {names.get(severity, severity)}: {msg}", file=sys.stderr, flush=True)

    return Logger()


def missing_creators(nodes, has_creator_for) -> list[str]:
    """Messages for custom nodes ((name, op, plugin_version, plugin_namespace)) the registry has no creator for."""
    return [f"node {name!r} (op {op}, plugin_version {ver!r}, namespace {ns!r}) has no plugin creator in the "
            f"loaded plugin library" for name, op, ver, ns in nodes if not has_creator_for(op, ver, ns)]


def has_creator(registry, op: str, version: str, namespace: str) -> bool:
    try:
        if hasattr(registry, "get_creator"):      # IPluginV3 creators (10.x+)
            return registry.get_creator(op, version, namespace) is not None
        return registry.get_plugin_creator(op, version, namespace) is not None
    except Exception:
        return False


def parser_errors(parser) -> list[str]:
    out = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        node = getattr(e, "node_name", lambda: "")() or str(e.node())
        op = getattr(e, "node_operator", lambda: "")()
        out.append(f"node {node!r}{' (op ' + op + ')' if op else ''}: {e.desc()}")
    return out


def census(trt, network) -> dict:
    """Layers of the parsed network by type, and plugin layers by plugin name."""
    by_type, plugins = collections.Counter(), collections.Counter()
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        kind = str(layer.type).split(".")[-1]
        by_type[kind] += 1
        if kind == "PLUGIN_V3":
            layer.__class__ = trt.IPluginV3Layer         # the bindings hand out the ILayer base
            plugins[layer.plugin.get_capability_interface(trt.PluginCapabilityType.CORE).plugin_name] += 1
        elif kind == "PLUGIN_V2":
            layer.__class__ = trt.IPluginV2Layer
            plugins[layer.plugin.plugin_type] += 1
    return {"layers": network.num_layers, "plugin_layers": sum(plugins.values()),
            "plugin_layers_by_type": dict(sorted(plugins.items())), "layers_by_type": dict(by_type.most_common())}


def build(req: dict) -> dict:
    trt = importlib.import_module(req["module"])
    title = req["title"]
    logger = make_logger(trt, title, req["verbose"])
    builder = trt.Builder(logger)
    registry = builder.get_plugin_registry() if hasattr(builder, "get_plugin_registry") else trt.get_plugin_registry()
    nodes = req["nodes"]
    if nodes:
        stage(f"loading plugin library {req['plugins']}")
        if registry.load_library(req["plugins"]) is None:
            raise BuildFailed(f"{title} could not load plugin library {req['plugins']} (registry.load_library returned "
                              f"None: it must be the project's librrsr_trt_plugins_dynamic.so, built against headers of "
                              f"the TensorRT major {title} implements, exporting getCreators and setLoggerFinder)"
                              + _more(logger.errors))
        missing = missing_creators(nodes, lambda op, ver, ns: has_creator(registry, op, ver, ns))
        if missing:
            raise BuildFailed(f"plugin library {req['plugins']} lacks creators:\n  " + "\n  ".join(missing))
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    elif req["precision"] == "fp16":
        raise BuildFailed(f"{title} {trt.__version__} has no STRONGLY_TYPED network flag; FP16 engines need "
                          f"TensorRT >= 10.3")
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    stage(f"parsing {req['onnx']}")
    if not parser.parse_from_file(req["onnx"]):
        errors = parser_errors(parser)
        hints = [req["op_hints"][op] for op in sorted({op for op in req["op_hints"] if f"(op {op})" in " ".join(errors)})]
        raise BuildFailed(f"{title}'s ONNX parser rejected {req['onnx']}:\n  " + "\n  ".join(errors + hints)
                          + _more(logger.errors, {n[1] for n in nodes}))
    counted = census(trt, network)
    stage("parsed: {layers} layers, {plugin_layers} plugin layers {plugin_layers_by_type}".format(**counted))
    config = builder.create_builder_config()
    if req["workspace_mib"]:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, req["workspace_mib"] * 2 ** 20)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        if t.name in req["profiles"]:
            profile.set_shape(t.name, *(tuple(s) for s in req["profiles"][t.name]))
        elif t.is_shape_tensor:
            set_values = getattr(profile, "set_shape_input", None) or profile.set_shape_values
            set_values(t.name, *req["shape_values"])
    config.add_optimization_profile(profile)
    ccs = req.get("compute_capabilities")
    if ccs:
        config.num_compute_capabilities = len(ccs)
        for i, cc in enumerate(ccs):
            if not config.set_compute_capability(getattr(trt.ComputeCapability, "SM" + cc.replace(".", "")), i):
                raise BuildFailed(f"{title} refused compute capability {cc}" + _more(logger.errors))
    if req["serialize_plugins"] and nodes:
        config.plugins_to_serialize = [req["plugins"]]
    cache = None
    if req.get("timing_cache"):
        tc = Path(req["timing_cache"])
        cache = config.create_timing_cache(tc.read_bytes() if tc.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    stage("building")
    t0 = time.perf_counter()
    blob = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if blob is None:
        raise BuildFailed(f"{title} failed to build the engine" + (_more(logger.errors) or
                          " (see the log above; --verbose for more)"))
    out = Path(req["out"])
    out.write_bytes(bytes(blob))
    if cache is not None:
        Path(req["timing_cache"]).write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"ok": True, "version": trt.__version__, "census": counted, "build_seconds": round(seconds, 2),
            "strongly_typed": bool(flags),
            "plugin_calls": {op: dict(sorted(c.items())) for op, c in sorted(logger.calls.items())}}


def _more(errors: list[str], ops=None) -> str:
    """The distinct errors TensorRT logged: with ``ops`` (the parser's own are already in its error list), only our
    plugins' (they start with the op type and name layer and field), else the last few."""
    seen = list(dict.fromkeys(errors))
    if ops is not None:
        seen = [e for e in seen if e.split(" ")[0].rstrip(":") in ops]
        return "".join(f"\n  plugin: {e}" for e in seen)
    return "".join(f"\n  logged: {e}" for e in seen[-8:])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m runtime.build_worker REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    req = json.loads(Path(argv[0]).read_text())
    try:
        result = build(req)
        rc = 0
    except BuildFailed as e:
        result, rc = {"ok": False, "error": str(e)}, 1
    except Exception as e:            # a TensorRT binding error: report it, the parent turns it into one message
        result, rc = {"ok": False, "error": f"{type(e).__name__}: {e}"}, 1
    Path(argv[1]).write_text(json.dumps(result, indent=1) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
