"""TensorRT backend: a serialized engine (rrsr-build-engine) plus its sidecar JSON, for both targets: TensorRT
(``tensorrt``) and TensorRT-RTX (``tensorrt_rtx``, the sidecar's ``target``). TensorRT is imported only when an
engine is loaded, so everything else works without it; I/O buffers are torch CUDA tensors.

Load order (cheap checks first, so the reason given is the real one): engine file -> sidecar -> engine bytes
match the sidecar -> plugin library matches (unless the engine carries it) -> the target's TensorRT importable ->
GPU present -> TensorRT version and GPU match (TensorRT-RTX: the GPU's compute capability is one the engine was
built for) -> deserialize. A TensorRT-RTX engine's runtime cache (its kernels compiled at load time) is read from
and written back to the file the sidecar names."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from .. import sidecar as sc
from .. import targets as tg
from .base import BackendError, BackendUnavailable, Feeds, Loader, Runner, to_feeds

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLUGINS = REPO / "build" / "plugins-trt" / "librrsr_trt_plugins_dynamic.so"
PLUGINS_ENV = "RRSR_TRT_PLUGINS_LIB"


def import_tensorrt(target: str = "trt"):
    """The module of ``target`` (tensorrt, or tensorrt_rtx for "rtx"), or BackendUnavailable saying it is not
    installed."""
    try:
        return tg.import_target(tg.TARGETS[target])
    except BackendUnavailable as e:
        raise BackendUnavailable(f"{e}; {tg.TARGETS[target].title} engines need it and an NVIDIA GPU — use "
                                 f"--backend ort or torch here") from None


def tensorrt_available(target: str = "trt") -> Optional[str]:
    """None when the target's TensorRT and a CUDA GPU are usable, else the reason they are not."""
    try:
        import_tensorrt(target)
        gpu_info()
    except BackendUnavailable as e:
        return str(e)
    return None


def gpu_info(device: str = "cuda:0") -> dict:
    import torch
    if not torch.cuda.is_available():
        raise BackendUnavailable("no CUDA GPU is visible (torch.cuda.is_available() is False); TensorRT engines "
                                 "run only on an NVIDIA GPU")
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu_name": torch.cuda.get_device_name(device), "gpu_sm": f"{major}.{minor}"}


def default_plugin_library() -> Optional[Path]:
    env = os.environ.get(PLUGINS_ENV)
    if env:
        return Path(env)
    return DEFAULT_PLUGINS


def load_plugin_library(trt, path) -> None:
    """Register the (dynamic, getCreators-exporting) plugin library with TensorRT's registry."""
    handle = trt.get_plugin_registry().load_library(str(path))
    if handle is None:
        raise BackendError(f"TensorRT could not load plugin library {path} (registry.load_library returned None: "
                           f"it must export getCreators and setLoggerFinder — the *_dynamic.so build)")


class TrtRunner(Runner):
    name = "trt"

    def __init__(self, trt, runtime, engine, meta: dict, info: dict, device: str, runtime_cache: Optional[Path] = None):
        import torch
        self._trt, self._torch = trt, torch
        self._runtime = runtime                     # must outlive the engine
        self.engine, self.meta, self.info, self.device = engine, meta, info, device
        self._cache_file, self._cache = runtime_cache, None
        if runtime_cache is not None:               # TensorRT-RTX: kernels it JIT-compiles, kept across runs
            config = engine.create_runtime_config()
            self._cache = config.create_runtime_cache()
            if runtime_cache.is_file() and not self._cache.deserialize(runtime_cache.read_bytes()):
                raise BackendError(f"runtime cache {runtime_cache} is not a TensorRT-RTX runtime cache; remove it "
                                   f"(it is rebuilt when the engine runs)")
            config.set_runtime_cache(self._cache)
            self.context = engine.create_execution_context(config)
        else:
            self.context = engine.create_execution_context()
        self.stream = torch.cuda.Stream(device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(outputs) != 1:
            raise BackendError(f"engine {info['model']} has outputs {outputs}; an RRSR engine has one (sr)")
        self.output = outputs[0]

    def _dtype(self, name):
        t, trt = self._torch, self._trt
        m = {trt.float32: t.float32, trt.float16: t.float16, trt.int32: t.int32, trt.int64: t.int64}
        return m[self.engine.get_tensor_dtype(name)]

    def run(self, inputs: Feeds) -> np.ndarray:
        torch = self._torch
        feeds = to_feeds(inputs)
        h, w = feeds["lr"].shape[-2:]
        try:
            profile = sc.profile_for(self.meta, (h, w))
        except sc.SidecarError as e:
            raise BackendError(str(e)) from None
        ctx = self.context
        if ctx.active_optimization_profile != profile:
            ctx.set_optimization_profile_async(profile, self.stream.cuda_stream)
        keep = []                                   # the buffers must live until the run is done
        for name in self.inputs:                    # the builder may drop an unused input (valid_size in C2)
            arr = feeds[name]
            host = self.engine.is_shape_inference_io(name)   # valid_size may be a shape tensor (host memory)
            t = torch.from_numpy(arr).to(self._dtype(name)).contiguous()
            if not host:
                with torch.cuda.stream(self.stream):    # copy on the stream TensorRT runs on: ordered
                    t = t.to(self.device, non_blocking=False)
            ctx.set_input_shape(name, tuple(arr.shape))
            ctx.set_tensor_address(name, t.data_ptr())
            keep.append(t)
        with torch.cuda.stream(self.stream):
            out = torch.empty(tuple(ctx.get_tensor_shape(self.output)), dtype=self._dtype(self.output), device=self.device)
        ctx.set_tensor_address(self.output, out.data_ptr())
        if not ctx.execute_async_v3(self.stream.cuda_stream):
            raise BackendError(f"TensorRT execution failed for engine {self.info['model']} at LR {h}x{w}")
        self.stream.synchronize()
        return out.float().cpu().numpy()

    def synchronize(self) -> None:
        self.stream.synchronize()

    def describe(self) -> dict:
        return dict(self.info)

    def close(self) -> None:
        if self._cache is not None and self._cache_file is not None:
            tmp = self._cache_file.with_name(self._cache_file.name + ".tmp")
            tmp.write_bytes(bytes(self._cache.serialize()))
            tmp.replace(self._cache_file)
            self._cache = None
        self.context = self.engine = self._runtime = None


class TrtLoader(Loader):
    name = "trt"

    def __init__(self, engine_path, plugins=None, device: str = "cuda:0"):
        self.engine_path, self.plugins, self.device = engine_path, plugins, device

    def check_files(self) -> tuple[dict, Optional[Path]]:
        """Everything checkable without TensorRT: engine, sidecar, engine hash, plugin library hash."""
        path = Path(self.engine_path)
        if not path.is_file():
            raise BackendError(f"TensorRT engine not found: {path}")
        try:
            meta = sc.read_sidecar(path)
            sc.check_engine_file(path, meta)
            lib = None
            if meta.get("plugin_sha256") and not meta.get("plugins_serialized"):
                # explicit --plugins, else the library recorded at build time, else the project's build
                recorded = Path(meta["plugin_library"]) if meta.get("plugin_library") else None
                lib = (Path(self.plugins) if self.plugins else
                       recorded if recorded is not None and recorded.is_file() else default_plugin_library())
            sc.check_plugin_library(meta, lib)
        except sc.SidecarError as e:
            raise BackendError(str(e)) from None
        return meta, lib

    def load(self) -> TrtRunner:
        meta, lib = self.check_files()
        target = sc.target_of(meta)
        rtx = target == "rtx"
        trt = import_tensorrt(target)
        device = "cuda:0" if self.device in (None, "auto", "cuda") else self.device
        try:
            gpu = gpu_info(device)
        except BackendUnavailable as e:
            if rtx:   # say which GPUs it needs
                raise BackendUnavailable(f"{e}; engine {self.engine_path} runs on a GPU of {meta['gpu_name']}") from None
            raise
        env = {"tensorrt_version": trt.__version__, **gpu}
        why = sc.environment_mismatches(meta, **env)
        if why:
            fix = (" — rebuild it with rrsr-build-engine --target rtx --compute-capability for this GPU, or use "
                   "--target trt here" if rtx else " — rebuild it on this machine with rrsr-build-engine")
            raise BackendError(f"engine {self.engine_path} cannot run here: " + "; ".join(why) + fix)
        if lib is not None and not meta.get("plugins_serialized"):
            load_plugin_library(trt, lib)
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        if meta.get("plugins_serialized"):
            # the engine carries the plugin library (config.plugins_to_serialize at build); TensorRT loads it only
            # when allowed to run host code from engines
            runtime.engine_host_code_allowed = True
        engine = runtime.deserialize_cuda_engine(Path(self.engine_path).read_bytes())
        if engine is None:
            raise BackendError(f"TensorRT could not deserialize {self.engine_path} (see its log above)")
        info = {"backend": "trt", "precision": meta["precision"], "device": device, "model": str(self.engine_path),
                "tensorrt": trt.__version__, "gpu": env["gpu_name"], "sm": env["gpu_sm"],
                "plugin_library": ("in the engine" if meta.get("plugins_serialized") else str(lib) if lib else None),
                "profiles": meta["profiles"], "matching": meta.get("matching", "dense"), "target": target}
        cache = Path(meta["runtime_cache"]) if rtx and meta.get("runtime_cache") else None
        return TrtRunner(trt, runtime, engine, meta, info, device, runtime_cache=cache)
