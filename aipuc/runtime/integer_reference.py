"""Level 2 of the numerics contract: the quantized axq graph run in integers.

`INTEGER_KERNELS` maps every quantized axq op class to a kernel for the generic walker
(`aipuc.runtime.interpreter.run_function`). Every kernel reads scales and zero points off
the op's quantized types and follows the per-op semantics documented in
`aipuc.transforms.quantize`: accumulations are exact (the `exact_integer` mode of
`aipuc.runtime.kernels`), every rescaling goes through `numerics.requantize` with
multipliers from `fixed_point_multiplier`, tables through `numerics.apply_lut`, softmax
through `numerics.softmax_int8`. Nothing depends on state or on evaluation order, so the
same inputs give the same bits on every run; the instruction-stream simulator (level 3)
must reproduce these results exactly and can call the same helpers.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from xdsl.ir import Attribute, Operation, SSAValue

from aipuc import numerics
from aipuc.dialects import axq
from aipuc.dialects.axq import QuantizedType, element_type, shape_of
from aipuc.dialects.tensors import numpy_from_dense
from aipuc.runtime import kernels
from aipuc.runtime.float_interpreter import FLOAT_KERNELS, flag, window_parameters
from aipuc.runtime.interpreter import Kernel

T = TypeVar("T")

ADD_LEFT_SHIFT = 20
"""add/sub rescale both centred inputs, shifted left by this, to a common scale (TFLite)."""
RESIZE_WEIGHT_BITS = 10
"""Linear resize weights are fixed point with this many fractional bits per axis."""
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_SMALLEST_MULTIPLIER = 2.0**-32
SATURATING_MULTIPLIER = 2.0**8
"""int8 requantization by a real multiplier of at least 2**8 sends every nonzero integer
accumulator beyond [-128, 127] from any zero point, so larger multipliers are capped here."""


# --------------------------------------------------------------------------- helpers


def qtype(value: SSAValue) -> QuantizedType:
    element = element_type(value)
    if not isinstance(element, QuantizedType):
        raise TypeError(f"integer kernels need quantized tensors, got {element}")
    return element


def scales_of(type_: QuantizedType, ndim: int) -> np.ndarray | float:
    """The scale(s) of a type, broadcastable against a tensor of rank `ndim`."""
    if type_.is_per_axis:
        return numerics.along_axis(type_.scale_array(), ndim, type_.axis_index)
    return type_.scale


def zero_points_of(type_: QuantizedType, ndim: int) -> np.ndarray | int:
    if type_.is_per_axis:
        return numerics.along_axis(type_.zero_point_array(), ndim, type_.axis_index)
    return type_.zero_point


def channel_scales(type_: QuantizedType, count: int) -> np.ndarray:
    """One scale per channel of a per-axis type, or the per-tensor scale repeated."""
    if type_.is_per_axis:
        return type_.scale_array()
    return np.full(count, type_.scale)


def centred(codes: np.ndarray, type_: QuantizedType) -> np.ndarray:
    """q - zero_point as int64 (the real value in units of the scale)."""
    return np.asarray(codes, np.int64) - zero_points_of(type_, np.ndim(codes))


def centred_operand(codes: np.ndarray, type_: QuantizedType) -> np.ndarray:
    """`centred` for a GEMM or conv operand: int16 when the codes are bytes and the zero
    points byte-sized (|q - zp| <= 255), so the kernel pads, scans and converts a quarter
    of int64's bytes; the same values either way."""
    zero_points = zero_points_of(type_, np.ndim(codes))
    codes = np.asarray(codes)
    if codes.dtype.itemsize == 1 and np.all(np.abs(zero_points) <= 255):
        return np.subtract(codes, zero_points, dtype=np.int16)
    return centred(codes, type_)


def fixed_point_multiplier(real) -> tuple[np.ndarray, np.ndarray]:
    """`numerics.quantize_multiplier`, with multipliers below 2**-32 mapped to (0, 1).

    A real multiplier that small turns any int32 accumulator into less than half a step,
    which rounds to 0 whatever the multiplier, so multiplier 0 gives the exact result.
    """
    real = np.asarray(real, np.float64)
    negligible = real < _SMALLEST_MULTIPLIER
    multiplier, shift = numerics.quantize_multiplier(np.where(negligible, 1.0, real))
    return np.where(negligible, 0, multiplier), np.where(negligible, 1, shift)


def requantize_to(acc: np.ndarray, real, out_type: QuantizedType) -> np.ndarray:
    """int8 codes of `acc * real` in `out_type` (`real` broadcasts against `acc`).

    Multipliers above `SATURATING_MULTIPLIER` (an output scale far below the input's, e.g.
    a tensor that was constant at calibration) give the same codes as that cap, which
    `numerics.quantize_multiplier` can represent.
    """
    multiplier, shift = requant_parameters(real)
    return numerics.requantize(acc, multiplier, shift, zero_points_of(out_type, acc.ndim))


def requant_parameters(real) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-point multiplier and shift that `requantize_to` applies for `real`.

    The lowering encodes exactly these into the instruction stream."""
    return fixed_point_multiplier(np.minimum(real, SATURATING_MULTIPLIER))


def rescale_int32(acc: np.ndarray, real) -> np.ndarray:
    """`acc * real` rounded as requantize does, kept in int32 (add/sub's common scale)."""
    multiplier, shift = fixed_point_multiplier(real)
    return numerics.requantize(acc, multiplier, shift, 0, qmin=_INT32_MIN, qmax=_INT32_MAX)


# --------------------------------------------------------------------------- weighted ops


def _accumulator_rescale(op, acc_ndim: int, channel_axis: int) -> np.ndarray:
    """s_bias / s_out per output channel, shaped along the output's channel axis."""
    out_type = qtype(op.result)
    out_channels = shape_of(op.bias)[0]
    real = channel_scales(qtype(op.bias), out_channels) / channel_scales(out_type, out_channels)
    return numerics.along_axis(real, acc_ndim, channel_axis)


_PREPARED: weakref.WeakKeyDictionary[Operation, tuple[tuple[Attribute, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def prepared(op: Operation, build: Callable[[Operation], T]) -> T:
    """`build(op)`, computed on the first run of `op` and reused while its operand and
    result types and its properties are the same attribute objects (attributes are
    immutable: a rewrite that changes one replaces it), so that every run does not
    redo the fixed-point multipliers and the geometry of an op."""
    key = (
        *(value.type for value in op.operands),
        *(value.type for value in op.results),
        *op.properties.values(),
    )
    hit = _PREPARED.get(op)
    if (
        hit is None
        or len(hit[0]) != len(key)
        or any(a is not b for a, b in zip(hit[0], key, strict=True))
    ):
        hit = _PREPARED[op] = (key, build(op))
    return hit[1]


def _weighted_requantization(op: Operation, channel_axis: int) -> tuple[np.ndarray, ...]:
    """multiplier, shift and output zero point(s) of a weighted op, shaped against its
    accumulator (the result's rank)."""
    ndim = len(shape_of(op.results[0]))
    multiplier, shift = requant_parameters(_accumulator_rescale(op, ndim, channel_axis % ndim))
    return multiplier, shift, np.asarray(zero_points_of(qtype(op.results[0]), ndim))


def _conv_parameters(op: axq.Conv2dOp) -> tuple[tuple, tuple[np.ndarray, ...]]:
    geometry = (
        op.strides.get_values(),
        op.pads.get_values(),
        op.dilations.get_values(),
        op.group.value.data,
    )
    return geometry, _weighted_requantization(op, 1)


def _conv2d(op: axq.Conv2dOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, w, bias = inputs
    geometry, requantization = prepared(op, _conv_parameters)
    x = centred_operand(x, qtype(op.input))
    acc = kernels.conv2d(x, w, *geometry, bias=bias, exact_integer=True)
    return [numerics.requantize(acc, *requantization)]


def _conv_transpose2d(op: axq.ConvTranspose2dOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, w, bias = inputs
    acc = kernels.conv_transpose2d(
        centred_operand(x, qtype(op.input)),
        w,
        op.strides.get_values(),
        op.pads.get_values(),
        op.dilations.get_values(),
        op.output_padding.get_values(),
        op.group.value.data,
        bias=bias,
        exact_integer=True,
    )
    return [requantize_to(acc, _accumulator_rescale(op, acc.ndim, 1), qtype(op.result))]


def _dense(op: axq.DenseOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, w, bias = inputs
    acc = kernels.dense(centred_operand(x, qtype(op.input)), w, bias, exact_integer=True)
    requantization = prepared(op, lambda op: _weighted_requantization(op, -1))
    return [numerics.requantize(acc, *requantization)]


def _matmul(op: axq.MatMulOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    a_type, b_type, out_type = qtype(op.lhs), qtype(op.rhs), qtype(op.result)
    acc = kernels.matmul(centred(inputs[0], a_type), centred(inputs[1], b_type), exact_integer=True)
    real = a_type.scale * b_type.scale / scales_of(out_type, acc.ndim)
    return [requantize_to(acc, real, out_type)]


# --------------------------------------------------------------------------- elementwise


def _add_or_sub(
    a: np.ndarray,
    b: np.ndarray,
    a_type: QuantizedType,
    b_type: QuantizedType,
    out_type: QuantizedType,
    sign: int,
) -> np.ndarray:
    lhs_real, rhs_real, out_real = add_rescales(
        a_type, b_type, out_type, max(np.ndim(a), np.ndim(b))
    )
    a = rescale_int32(centred(a, a_type) << ADD_LEFT_SHIFT, lhs_real)
    b = rescale_int32(centred(b, b_type) << ADD_LEFT_SHIFT, rhs_real)
    total = a.astype(np.int64) + sign * b.astype(np.int64)
    return requantize_to(total, out_real, out_type)


def add_rescales(
    a_type: QuantizedType, b_type: QuantizedType, out_type: QuantizedType, ndim: int
) -> tuple[float, float, np.ndarray | float]:
    """add/sub's real multipliers: each operand to the common scale, the sum to the output.

    The lowering encodes exactly these (through `requant_parameters`) into DPU programs."""
    twice_max = 2 * max(a_type.scale, b_type.scale)
    out_real = twice_max / (2**ADD_LEFT_SHIFT * scales_of(out_type, ndim))
    return a_type.scale / twice_max, b_type.scale / twice_max, out_real


def _add_codes(a, b, a_type, b_type, out_type) -> np.ndarray:
    return _add_or_sub(a, b, a_type, b_type, out_type, 1)


def _sub_codes(a, b, a_type, b_type, out_type) -> np.ndarray:
    return _add_or_sub(a, b, a_type, b_type, out_type, -1)


def _mul_codes(a, b, a_type, b_type, out_type) -> np.ndarray:
    acc = centred(a, a_type) * centred(b, b_type)
    real = a_type.scale * b_type.scale / scales_of(out_type, acc.ndim)
    return requantize_to(acc, real, out_type)


def _prelu_codes(x, slope, x_type, slope_type, out_type) -> np.ndarray:
    x = centred(x, x_type)
    negative_part = x * centred(slope, slope_type)
    x = np.broadcast_to(x, negative_part.shape)
    out_scales = scales_of(out_type, x.ndim)
    positive = requantize_to(x, x_type.scale / out_scales, out_type)
    negative = requantize_to(negative_part, x_type.scale * slope_type.scale / out_scales, out_type)
    return np.where(x >= 0, positive, negative)


BinaryCodes = Callable[
    [np.ndarray, np.ndarray, QuantizedType, QuantizedType, QuantizedType], np.ndarray
]
_ALL_CODES = np.arange(256, dtype=np.uint8).view(np.int8)
"""Every int8 code, at the index of its byte (0..127, then -128..-1)."""


@functools.lru_cache(maxsize=256)
def _pair_table(
    codes: BinaryCodes, a_type: QuantizedType, b_type: QuantizedType, out_type: QuantizedType
) -> np.ndarray | None:
    """`codes` on every pair of int8 codes, flat at index (byte of a) * 256 + byte of b;
    None when some pair would raise (then only the inputs themselves are computed)."""
    try:
        return codes(_ALL_CODES[:, None], _ALL_CODES[None, :], a_type, b_type, out_type).ravel()
    except ValueError:
        return None


def _binary(codes: BinaryCodes, op: Operation, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """An elementwise op on two per-tensor operands. With a per-tensor result, its int8 result
    depends on the two codes alone, so it is looked up in the table of all 65536 pairs that
    `codes` itself computed: the same bits as computing every element, at one gather."""
    a_type, b_type, out_type = (qtype(v) for v in (*op.operands, op.results[0]))
    a, b = inputs
    table = None
    if not out_type.is_per_axis and a.dtype == b.dtype == np.int8:
        table = _pair_table(codes, a_type, b_type, out_type)
    if table is None:
        return [codes(a, b, a_type, b_type, out_type)]
    index = np.left_shift(a.view(np.uint8), 8, dtype=np.uint16) | b.view(np.uint8)
    return [table[index]]


def _add(op: axq.AddOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _binary(_add_codes, op, inputs)


def _sub(op: axq.SubOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _binary(_sub_codes, op, inputs)


def _mul(op: axq.MulOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _binary(_mul_codes, op, inputs)


def _prelu(op: axq.PReluOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return _binary(_prelu_codes, op, inputs)


def _lut(op: axq.LutOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    if op.table is None:
        raise ValueError("a quantized axq.lut needs its 256-entry table (run axq-quantize)")
    return [numerics.apply_lut(inputs[0], numpy_from_dense(op.table)).astype(np.int8)]


def code_of(real: float, type_: QuantizedType, ndim: int) -> np.ndarray:
    """The code(s) of one real value in `type_`, broadcastable against rank `ndim`."""
    scales = type_.scale_array()
    codes = numerics.quantize(np.full(scales.shape, real), scales, type_.zero_point_array())
    if type_.is_per_axis:
        return numerics.along_axis(codes, ndim, type_.axis_index)
    return codes.reshape(())


def _clip(op: axq.ClipOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    type_, x = qtype(op.input), inputs[0]
    low = code_of(op.min.value.data, type_, x.ndim)
    high = code_of(op.max.value.data, type_, x.ndim)
    return [np.clip(x, low, high).astype(np.int8)]


def _softmax(op: axq.SoftmaxOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    in_type, out_type = qtype(op.input), qtype(op.result)
    padding = {}
    if op.valid_length is not None and op.neutral_value is not None:
        padding = {
            "valid_length": op.valid_length.value.data,
            "neutral_value": op.neutral_value.value.data,
        }
    return [
        numerics.softmax_int8(
            inputs[0],
            in_type.scale,
            in_type.zero_point,
            out_type.scale,
            out_type.zero_point,
            axis=op.axis.value.data,
            **padding,
        )
    ]


def _layer_norm(op: axq.LayerNormOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, scale, bias = inputs
    in_type, out_type = qtype(op.input), qtype(op.result)
    return [
        numerics.layer_norm_int8(
            x,
            in_type.scale,
            in_type.zero_point,
            scale,
            bias,
            op.epsilon.value.data,
            out_type.scale,
            out_type.zero_point,
            axis=op.axis.value.data,
        )
    ]


# --------------------------------------------------------------------------- pooling


def window_sums(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer window sums of `x` and the ONNX AveragePool divisor per position.

    Pads hold 0; taps that only ceil_mode's last window reaches are summed as 0 and never
    counted, like kernels.avg_pool2d. The sums are a depthwise conv with an all-ones
    window (faster than summing the window view in int64).
    """
    channels = x.shape[1]
    out_hw, extra = kernels.window_geometry(
        x.shape[2:], kernel, strides, pads, dilations, ceil_mode
    )
    window = np.ones((channels, 1, *kernel), np.int64)
    sums = kernels.conv2d(
        x,
        window,
        strides,
        (pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1]),
        dilations,
        channels,
        exact_integer=True,
    )
    divisor = kernels.avg_pool_divisor(
        x.shape[2:], kernel, strides, pads, dilations, ceil_mode, count_include_pad, np.int64
    )
    return sums[:, :, : out_hw[0], : out_hw[1]], divisor


def _avg_pool(op: axq.AvgPoolOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    in_type, out_type = qtype(op.input), qtype(op.result)
    sums, divisor = window_sums(
        centred(inputs[0], in_type),
        **window_parameters(op),
        count_include_pad=flag(op.count_include_pad),
    )
    real = scales_of(in_type, 4) / (scales_of(out_type, 4) * divisor)
    return [requantize_to(sums, real, out_type)]


def _global_pool(op: axq.GlobalPoolOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x = inputs[0]
    axes = tuple(range(2, x.ndim))
    if op.kind.data == axq.PoolKind.MAX:
        return [x.max(axis=axes, keepdims=True)]
    in_type, out_type = qtype(op.input), qtype(op.result)
    sums = centred(x, in_type).sum(axis=axes, keepdims=True)
    count = int(np.prod([x.shape[a] for a in axes]))
    real = scales_of(in_type, x.ndim) / (scales_of(out_type, x.ndim) * count)
    return [requantize_to(sums, real, out_type)]


# --------------------------------------------------------------------------- data movement


def linear_resize_weights(in_len: int, scale: float, transform: str) -> np.ndarray:
    """Fixed-point linear interpolation matrix [out_len, in_len]; each row sums to 2**10.

    The float weights are those of kernels.resize (its result on the identity); rounding
    leftovers go to each row's largest weight.
    """
    real = kernels.resize(np.eye(in_len), "linear", [scale, 1.0], transform)
    one = 1 << RESIZE_WEIGHT_BITS
    weights = np.rint(real * one).astype(np.int64)
    rows = np.arange(len(weights))
    weights[rows, np.argmax(real, axis=1)] += one - weights.sum(axis=1)
    return weights


def _resize(op: axq.ResizeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    if op.mode.data == axq.ResizeMode.NEAREST:
        return FLOAT_KERNELS[axq.ResizeOp](op, inputs)
    in_type, out_type = qtype(op.input), qtype(op.result)
    acc = centred(inputs[0], in_type)
    fraction_bits = 0
    for axis, scale in enumerate(op.scales.get_values()):
        if scale == 1.0:
            continue
        weights = linear_resize_weights(acc.shape[axis], scale, op.coordinate_transform.data.value)
        moved = np.moveaxis(acc, axis, -1)
        acc = np.moveaxis(kernels.exact_int_matmul(moved, weights.T), -1, axis)
        fraction_bits += RESIZE_WEIGHT_BITS
    real = scales_of(in_type, acc.ndim) / (scales_of(out_type, acc.ndim) * 2.0**fraction_bits)
    return [requantize_to(acc, real, out_type)]


def _pad(op: axq.PadOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    x, type_ = inputs[0], qtype(op.input)
    pads, mode = op.pads.get_values(), op.mode.data.value
    code = code_of(op.value.value.data, type_, x.ndim)
    if mode != "constant" or code.ndim == 0:
        return [kernels.pad(x, pads, mode, int(code) if code.ndim == 0 else 0).astype(np.int8)]
    padded = kernels.pad(x, pads, mode, 0)
    border = kernels.pad(np.zeros(x.shape, bool), pads, "constant", True)
    return [np.where(border, code, padded).astype(np.int8)]


# --------------------------------------------------------------------------- conversions


def dequantize_codes(codes, type_: QuantizedType) -> np.ndarray:
    """`numerics.dequantize` with the scale(s), zero point(s) and axis of `type_`."""
    return numerics.dequantize(
        codes, type_.scale_array(), type_.zero_point_array(), type_.quantized_axis
    )


def _quantize(op: axq.QuantizeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    type_ = qtype(op.result)
    return [
        numerics.quantize(
            inputs[0], type_.scale_array(), type_.zero_point_array(), type_.quantized_axis
        )
    ]


def _dequantize(op: axq.DequantizeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [dequantize_codes(inputs[0], qtype(op.input))]


def _requantize_codes(codes: np.ndarray, in_type: QuantizedType, out_type: QuantizedType):
    x = centred(codes, in_type)
    real = scales_of(in_type, x.ndim) / scales_of(out_type, x.ndim)
    return requantize_to(x, real, out_type)


@functools.lru_cache(maxsize=256)
def _requantize_table(in_type: QuantizedType, out_type: QuantizedType) -> np.ndarray:
    """The requantized code of every int8 code, at the index of its byte."""
    return _requantize_codes(_ALL_CODES, in_type, out_type)


def _requantize(op: axq.RequantizeOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    in_type, out_type = qtype(op.input), qtype(op.result)
    x = inputs[0]
    if in_type.is_per_axis or out_type.is_per_axis or x.dtype != np.int8:
        return [_requantize_codes(x, in_type, out_type)]
    return [_requantize_table(in_type, out_type)[x.view(np.uint8)]]  # one code in, one out


_CODE_MOVEMENT = (
    axq.ReshapeOp,
    axq.TransposeOp,
    axq.SliceOp,
    axq.SplitOp,
    axq.ConcatOp,
    axq.MaxPoolOp,
    axq.MaxOp,
    axq.MinOp,
)

INTEGER_KERNELS: dict[type[Operation], Kernel] = {
    axq.Conv2dOp: _conv2d,
    axq.ConvTranspose2dOp: _conv_transpose2d,
    axq.DenseOp: _dense,
    axq.MatMulOp: _matmul,
    axq.AddOp: _add,
    axq.SubOp: _sub,
    axq.MulOp: _mul,
    axq.PReluOp: _prelu,
    axq.LutOp: _lut,
    axq.ClipOp: _clip,
    axq.SoftmaxOp: _softmax,
    axq.LayerNormOp: _layer_norm,
    axq.AvgPoolOp: _avg_pool,
    axq.GlobalPoolOp: _global_pool,
    axq.ResizeOp: _resize,
    axq.PadOp: _pad,
    axq.QuantizeOp: _quantize,
    axq.DequantizeOp: _dequantize,
    axq.RequantizeOp: _requantize,
    # Moving codes is the same at every level: the float table's kernels keep int8.
    **{op_type: FLOAT_KERNELS[op_type] for op_type in _CODE_MOVEMENT},
}
