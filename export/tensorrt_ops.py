"""Which ONNX operators TensorRT's ONNX parser (TensorRT 10.3+, the Jetson Orin floor) takes, and the
restrictions that matter for this graph.

From onnx-tensorrt ``docs/operators.md`` (support matrix) and its Changelog ("Added support for DeformConv",
10.1). Only the operators a super-resolution graph may plausibly contain are listed; anything else in an
exported graph is reported as unsupported, so the list errs on the side of caution.
"""
from __future__ import annotations

SUPPORTED = frozenset("""
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant ConstantOfShape Conv
ConvTranspose CumSum DeformConv DepthToSpace Div Einsum Equal Erf Exp Expand Flatten Floor Gather GatherElements
GatherND Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual GridSample Identity If InstanceNormalization
LayerNormalization LeakyRelu Less LessOrEqual Log LpNormalization MatMul Max MaxPool Mean Min Mul Neg Not Or Pad
Pow PRelu Range Reciprocal ReduceL1 ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare
Relu Reshape Resize Round ScatterElements ScatterND Shape Sigmoid Sign Size Slice Softmax Softplus SpaceToDepth
Split Sqrt Squeeze Sub Sum Tanh Tile TopK Transpose Unsqueeze Where
""".split())

# Supported, but to be avoided in this project's graphs (slow or fragile in TensorRT).
DISCOURAGED = {"ScatterND": "slice assignment; use Pad + Slice", "Loop": "data-dependent loops"}
RESIZE_MODES = {"nearest", "linear"}
RESIZE_COORDINATE_MODES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
