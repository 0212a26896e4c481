"""Level 1 of the numerics contract: the float axq graph run in NumPy.

`FLOAT_KERNELS` maps every axq compute op class to a kernel for the generic walker
(`aipuc.runtime.interpreter.run_function`), which itself evaluates constants, host ops
and the return. Kernels read their parameters off the op and return arrays of the
result element types (float32 for imported models). GEMMs run in float32 BLAS like
onnxruntime; reductions (pooling, softmax) and unary functions accumulate in float64,
where that costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.ir import Operation

from aipuc.dialects import axq
from aipuc.dialects.tensors import dtype_of
from aipuc.numerics import layer_norm_float_reference, softmax_float_reference
from aipuc.runtime import kernels
from aipuc.runtime.interpreter import Kernel

GEMM_DTYPE = np.float32
REDUCTION_DTYPE = np.float64


def _as_result(op: Operation, *arrays: np.ndarray) -> list[np.ndarray]:
    """Casts each array to the element dtype of the matching result of `op`."""
    return [
        np.asarray(array).astype(dtype_of(axq.element_type(result)), copy=False)
        for array, result in zip(arrays, op.results, strict=True)
    ]


def flag(attr) -> bool:
    """A BoolAttr's value (xDSL stores i1 true as -1)."""
    return attr.value.data != 0


def _conv2d(op: axq.Conv2dOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, w, bias = inputs
    y = kernels.conv2d(
        x,
        w,
        op.strides.get_values(),
        op.pads.get_values(),
        op.dilations.get_values(),
        op.group.value.data,
        GEMM_DTYPE,
        bias=bias,
    )
    return _as_result(op, y)


def _conv_transpose2d(op: axq.ConvTranspose2dOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, w, bias = inputs
    y = kernels.conv_transpose2d(
        x,
        w,
        op.strides.get_values(),
        op.pads.get_values(),
        op.dilations.get_values(),
        op.output_padding.get_values(),
        op.group.value.data,
        GEMM_DTYPE,
        bias=bias,
    )
    return _as_result(op, y)


def _dense(op: axq.DenseOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, w, bias = inputs
    return _as_result(op, kernels.dense(x, w, bias, accumulate_dtype=GEMM_DTYPE))


def _matmul(op: axq.MatMulOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, kernels.matmul(*inputs, accumulate_dtype=GEMM_DTYPE))


def _add(op: axq.AddOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.add(*inputs))


def _sub(op: axq.SubOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.subtract(*inputs))


def _mul(op: axq.MulOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.multiply(*inputs))


def _max(op: axq.MaxOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.maximum(*inputs))


def _min(op: axq.MinOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.minimum(*inputs))


def _layer_norm(op: axq.LayerNormOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, scale, bias = inputs
    y = layer_norm_float_reference(x, scale, bias, op.epsilon.value.data, op.axis.value.data)
    return _as_result(op, y)


def _prelu(op: axq.PReluOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, slope = inputs
    return _as_result(op, np.where(x < 0, x * slope, x))


def _lut(op: axq.LutOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    function = op.float_function()
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _as_result(op, function(inputs[0].astype(np.float64)))


def _clip(op: axq.ClipOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.clip(inputs[0], op.min.value.data, op.max.value.data))


def _softmax(op: axq.SoftmaxOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, softmax_float_reference(inputs[0], axis=op.axis.value.data))


def _reshape(op: axq.ReshapeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, inputs[0].reshape(axq.shape_of(op.result)))


def _transpose(op: axq.TransposeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.transpose(inputs[0], op.perm.get_values()))


def _pad(op: axq.PadOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    y = kernels.pad(inputs[0], op.pads.get_values(), op.mode.data.value, op.value.value.data)
    return _as_result(op, y)


def _slice(op: axq.SliceOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, inputs[0][op.index()])


def window_parameters(op: axq.MaxPoolOp | axq.AvgPoolOp) -> dict:
    """A pool's window attributes as keyword arguments of the kernels' pooling functions."""
    return {
        "kernel": op.kernel.get_values(),
        "strides": op.strides.get_values(),
        "pads": op.pads.get_values(),
        "dilations": op.dilations.get_values(),
        "ceil_mode": flag(op.ceil_mode),
    }


def _max_pool(op: axq.MaxPoolOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, kernels.max_pool2d(inputs[0], **window_parameters(op)))


def _avg_pool(op: axq.AvgPoolOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    y = kernels.avg_pool2d(
        inputs[0],
        **window_parameters(op),
        count_include_pad=flag(op.count_include_pad),
        accumulate_dtype=REDUCTION_DTYPE,
    )
    return _as_result(op, y)


def _global_pool(op: axq.GlobalPoolOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    y = kernels.global_pool(inputs[0], op.kind.data.value, accumulate_dtype=REDUCTION_DTYPE)
    return _as_result(op, y)


def _resize(op: axq.ResizeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    y = kernels.resize(
        inputs[0],
        op.mode.data.value,
        op.scales.get_values(),
        op.coordinate_transform.data.value,
        op.nearest_rounding.data.value,
    )
    return _as_result(op, y)


def _concat(op: axq.ConcatOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _as_result(op, np.concatenate(inputs, axis=op.axis.value.data))


def _split(op: axq.SplitOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    boundaries = np.cumsum(op.split_sizes())[:-1]
    return _as_result(op, *np.split(inputs[0], boundaries, axis=op.axis.value.data))


FLOAT_KERNELS: dict[type[Operation], Kernel] = {
    axq.Conv2dOp: _conv2d,
    axq.ConvTranspose2dOp: _conv_transpose2d,
    axq.DenseOp: _dense,
    axq.MatMulOp: _matmul,
    axq.AddOp: _add,
    axq.SubOp: _sub,
    axq.MulOp: _mul,
    axq.PReluOp: _prelu,
    axq.MaxOp: _max,
    axq.MinOp: _min,
    axq.LutOp: _lut,
    axq.ClipOp: _clip,
    axq.SoftmaxOp: _softmax,
    axq.LayerNormOp: _layer_norm,
    axq.ReshapeOp: _reshape,
    axq.TransposeOp: _transpose,
    axq.PadOp: _pad,
    axq.SliceOp: _slice,
    axq.MaxPoolOp: _max_pool,
    axq.AvgPoolOp: _avg_pool,
    axq.GlobalPoolOp: _global_pool,
    axq.ResizeOp: _resize,
    axq.ConcatOp: _concat,
    axq.SplitOp: _split,
}
