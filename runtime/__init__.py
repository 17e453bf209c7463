"""Run an exported RRSR: backends (PyTorch, ONNX Runtime, TensorRT) behind one small interface, and the
commands built on it: ``python -m runtime.infer``, ``runtime.parity``, ``runtime.bench``, ``runtime.demo``,
``runtime.build_engine`` (rrsr-build-engine)."""
