"""RRSR custom-op kernels and their hosts (ONNX Runtime library today; TensorRT plugins next).

Python side: :mod:`plugins.ort_library` locates the built ONNX Runtime custom-op library.
"""
from .ort_library import describe, find_library, require_library

__all__ = ["find_library", "require_library", "describe"]
