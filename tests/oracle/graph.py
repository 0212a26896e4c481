"""Evaluate a quantized axq function op by op with the oracle's own implementations.

Only the IR is read here (op classes, attributes, quantized types, constant payloads); every
quantized value is computed by `oracle.ops`, `oracle.quant` and `oracle.softmax`. Host ops
(float ONNX ops on the host, outside the integer contract) run on onnx.reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from aipuc.dialects import axq
from aipuc.dialects.tensors import numpy_from_dense
from aipuc.numerics import UNARY_FUNCTIONS
from aipuc.runtime.interpreter import run_host_op
from oracle import layernorm, ops, quant, softmax

OracleOp = Callable[[Operation, Sequence[np.ndarray]], list[np.ndarray]]


def qtype_of(value: SSAValue) -> quant.QType:
    """The oracle's view of a value's quantized element type."""
    assert isinstance(value.type, TensorType)
    element = value.type.element_type
    if not isinstance(element, axq.QuantizedType):
        raise TypeError(f"the oracle evaluates quantized tensors only, got {element}")
    axis = element.axis.value.data
    return quant.QType(
        tuple(float(s) for s in element.scales.get_values()),
        tuple(int(z) for z in element.zero_points.get_values()),
        None if axis < 0 else axis,
    )


def _ints(attr) -> list[int]:
    return [int(v) for v in attr.get_values()]


def _flag(attr) -> bool:
    return attr.value.data != 0


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


# --------------------------------------------------------------------------- per op


def _conv2d(op, inputs):
    x, w, bias = inputs
    return ops.conv2d(
        x,
        qtype_of(op.input),
        w,
        bias,
        qtype_of(op.bias),
        qtype_of(op.result),
        _ints(op.strides),
        _ints(op.pads),
        _ints(op.dilations),
        op.group.value.data,
    )


def _conv_transpose2d(op, inputs):
    x, w, bias = inputs
    return ops.conv_transpose2d(
        x,
        qtype_of(op.input),
        w,
        bias,
        qtype_of(op.bias),
        qtype_of(op.result),
        _ints(op.strides),
        _ints(op.pads),
        _ints(op.dilations),
        _ints(op.output_padding),
        op.group.value.data,
    )


def _dense(op, inputs):
    x, w, bias = inputs
    return ops.dense(x, qtype_of(op.input), w, bias, qtype_of(op.bias), qtype_of(op.result))


def _binary(function, **options) -> OracleOp:
    """An elementwise-binary or matmul op: (a, a's type, b, b's type, the result's type)."""

    def evaluate(op, inputs):
        types = qtype_of(op.lhs), qtype_of(op.rhs), qtype_of(op.result)
        return [function(inputs[0], types[0], inputs[1], types[1], types[2], **options)]

    return evaluate


def _lut(op, inputs):
    """The op's table must be the oracle's own build_lut of the op's function."""
    in_type, out_type = qtype_of(op.input), qtype_of(op.result)
    fn = UNARY_FUNCTIONS[op.function.data.value](**op.param_values())
    table = quant.build_lut(
        fn, in_type.only_scale, in_type.zero_points[0], out_type.only_scale, out_type.zero_points[0]
    )
    stored = [int(v) for v in numpy_from_dense(op.table)]
    if stored != table:
        raise AssertionError(f"{op.name} table differs from the oracle's build_lut")
    return np.vectorize(lambda q: quant.apply_lut(int(q), table), otypes=[np.int8])(inputs[0])


def _clip(op, inputs):
    return ops.clip(inputs[0], qtype_of(op.input), op.min.value.data, op.max.value.data)


def _layer_norm(op, inputs):
    """Rows are the leading axes, each normalised over the axes from `axis` on."""
    x, gamma, beta = inputs
    in_type, out_type = qtype_of(op.input), qtype_of(op.result)
    rows = x.reshape(-1, np.asarray(gamma).size)
    out = [
        layernorm.layer_norm_row(
            [int(q) for q in row],
            in_type.only_scale,
            in_type.zero_points[0],
            np.asarray(gamma, np.float64).reshape(-1).tolist(),
            np.asarray(beta, np.float64).reshape(-1).tolist(),
            op.epsilon.value.data,
            out_type.only_scale,
            out_type.zero_points[0],
        )
        for row in rows
    ]
    return np.array(out, np.int8).reshape(x.shape)


def _softmax(op, inputs):
    in_type, out_type = qtype_of(op.input), qtype_of(op.result)
    moved = np.moveaxis(inputs[0], op.axis.value.data, -1)
    out = np.empty(moved.shape, np.int8)
    padding = {}
    if op.valid_length is not None and op.neutral_value is not None:
        padding = {
            "valid_length": op.valid_length.value.data,
            "neutral_value": op.neutral_value.value.data,
        }
    for index in np.ndindex(moved.shape[:-1]):
        out[index] = softmax.softmax_row(
            [int(q) for q in moved[index]],
            in_type.only_scale,
            in_type.zero_points[0],
            out_type.only_scale,
            out_type.zero_points[0],
            **padding,
        )
    return np.moveaxis(out, -1, op.axis.value.data)


def _window(op) -> dict:
    return {
        "kernel": _ints(op.kernel),
        "strides": _ints(op.strides),
        "pads": _ints(op.pads),
        "dilations": _ints(op.dilations),
        "ceil_mode": _flag(op.ceil_mode),
    }


def _avg_pool(op, inputs):
    return ops.avg_pool(
        inputs[0],
        qtype_of(op.input),
        qtype_of(op.result),
        include_pad=_flag(op.count_include_pad),
        **_window(op),
    )


def _max_pool(op, inputs):
    return ops.max_pool(inputs[0], **_window(op))


def _global_pool(op, inputs):
    return ops.global_pool(inputs[0], qtype_of(op.input), qtype_of(op.result), op.kind.data.value)


def _resize(op, inputs):
    return ops.resize(
        inputs[0],
        qtype_of(op.input),
        qtype_of(op.result),
        op.mode.data.value,
        [float(s) for s in op.scales.get_values()],
        op.coordinate_transform.data.value,
        op.nearest_rounding.data.value,
    )


def _pad(op, inputs):
    return ops.pad(
        inputs[0], qtype_of(op.input), _ints(op.pads), op.mode.data.value, op.value.value.data
    )


def _elementwise(function, x: np.ndarray, otype) -> np.ndarray:
    out = np.empty(x.shape, otype)
    for index in np.ndindex(x.shape):
        out[index] = function(index, x[index])
    return out


def _quantize(op, inputs):
    type_ = qtype_of(op.result)
    return _elementwise(
        lambda i, v: quant.quantize(float(v), type_.scale(i), type_.zero_point(i)),
        inputs[0],
        np.int8,
    )


def _dequantize(op, inputs):
    type_ = qtype_of(op.input)
    return _elementwise(
        lambda i, q: quant.dequantize(int(q), type_.scale(i), type_.zero_point(i)),
        inputs[0],
        np.float32,
    )


def _requantize(op, inputs):
    """requant(x_c, s_in / s_out), per-channel scales broadcast."""
    in_type, out_type = qtype_of(op.input), qtype_of(op.result)
    return ops.requant_array(
        ops.centred(inputs[0], in_type),
        lambda i: in_type.scale(i) / out_type.scale(i),
        out_type,
    )


def _onnx_slice(op, inputs):
    """ONNX Slice: negative starts/ends count from the end, then clamp to the axis."""
    x = inputs[0]
    for start, end, axis, step in zip(
        _ints(op.starts), _ints(op.ends), _ints(op.axes), _ints(op.steps), strict=True
    ):
        size = x.shape[axis]
        start, end = (v + size if v < 0 else v for v in (start, end))
        if step > 0:
            start, end = quant.clamp(start, 0, size), quant.clamp(end, 0, size)
        else:
            start, end = quant.clamp(start, 0, size - 1), quant.clamp(end, -1, size - 1)
        x = np.take(x, list(range(start, end, step)), axis=axis)
    return x


def _split(op, inputs):
    axis = op.axis.value.data
    sizes = [_shape(result)[axis] for result in op.outputs]
    edges = np.cumsum(sizes)[:-1]
    return np.split(inputs[0], edges, axis=axis)


ORACLE_OPS: dict[type[Operation], OracleOp] = {
    axq.Conv2dOp: lambda op, i: [_conv2d(op, i)],
    axq.ConvTranspose2dOp: lambda op, i: [_conv_transpose2d(op, i)],
    axq.DenseOp: lambda op, i: [_dense(op, i)],
    axq.MatMulOp: _binary(ops.matmul),
    axq.AddOp: _binary(ops.add_sub, sign=1),
    axq.SubOp: _binary(ops.add_sub, sign=-1),
    axq.MulOp: _binary(ops.mul),
    axq.PReluOp: _binary(ops.prelu),
    axq.LutOp: lambda op, i: [_lut(op, i)],
    axq.ClipOp: lambda op, i: [_clip(op, i)],
    axq.SoftmaxOp: lambda op, i: [_softmax(op, i)],
    axq.LayerNormOp: lambda op, i: [_layer_norm(op, i)],
    axq.AvgPoolOp: lambda op, i: [_avg_pool(op, i)],
    axq.MaxPoolOp: lambda op, i: [_max_pool(op, i)],
    axq.GlobalPoolOp: lambda op, i: [_global_pool(op, i)],
    axq.ResizeOp: lambda op, i: [_resize(op, i)],
    axq.PadOp: lambda op, i: [_pad(op, i)],
    axq.QuantizeOp: lambda op, i: [_quantize(op, i)],
    axq.DequantizeOp: lambda op, i: [_dequantize(op, i)],
    axq.RequantizeOp: lambda op, i: [_requantize(op, i)],
    axq.ReshapeOp: lambda op, i: [np.reshape(i[0], _shape(op.result))],
    axq.TransposeOp: lambda op, i: [np.transpose(i[0], _ints(op.perm))],
    axq.SliceOp: lambda op, i: [_onnx_slice(op, i)],
    axq.SplitOp: _split,
    axq.ConcatOp: lambda op, i: [np.concatenate(i, axis=op.axis.value.data)],
}


def evaluate(op: Operation, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The oracle's results of one quantized op.

    Host ops are float ONNX ops run on the host, outside the integer contract: like the
    product, they run on the host engine (onnxruntime, else onnx's reference)."""
    if isinstance(op, axq.HostOp):
        return run_host_op(op, inputs)
    return ORACLE_OPS[type(op)](op, inputs)


def run(
    main: func.FuncOp, arguments: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], dict[SSAValue, np.ndarray]]:
    """(results, every value) of a quantized function, one op at a time."""
    values: dict[SSAValue, np.ndarray] = dict(zip(main.args, arguments, strict=True))
    for op in main.body.block.ops:
        if isinstance(op, func.ReturnOp):
            return [values[v] for v in op.operands], values
        if isinstance(op, axq.ConstantOp):
            values[op.result] = numpy_from_dense(op.value)
            continue
        results = evaluate(op, [values[v] for v in op.operands])
        values.update(zip(op.results, results, strict=True))
    raise ValueError("function without a return")
