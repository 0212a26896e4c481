"""Integer reference kernels against the float kernels on dequantized inputs.

Each case builds one quantized op and its float twin. The integer result must be within
one output quantization step of the float result (on dequantized inputs and weights)
quantized with the output type; most ops are exact up to the final rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerType, f32
from xdsl.ir import Block, Operation

from aipuc import numerics
from aipuc.dialects import axq
from aipuc.dialects.axq import QuantizedType
from aipuc.dialects.tensors import dense_from_numpy, tensor_type
from aipuc.runtime.float_interpreter import FLOAT_KERNELS
from aipuc.runtime.integer_reference import (
    INTEGER_KERNELS,
    _add_codes,
    _mul_codes,
    _prelu_codes,
    _requantize_codes,
    _sub_codes,
    centred_operand,
    fixed_point_multiplier,
    linear_resize_weights,
)
from aipuc.runtime.interpreter import constant_array

INT8, INT32 = IntegerType(8), IntegerType(32)


def per_tensor(scale: float, zero_point: int = 0, storage=INT8) -> QuantizedType:
    return QuantizedType.per_tensor(storage, scale, zero_point)


def per_axis(scales, zero_points=None, axis: int = 0, storage=INT8) -> QuantizedType:
    scales = np.asarray(scales, np.float64)
    zero_points = np.zeros(len(scales), np.int64) if zero_points is None else zero_points
    return QuantizedType(storage, scales, zero_points, axis)


def dequantize(codes: np.ndarray, type_: QuantizedType) -> np.ndarray:
    axis = type_.quantized_axis
    return numerics.dequantize(codes, type_.scale_array(), type_.zero_point_array(), axis)


def quantize(values: np.ndarray, type_: QuantizedType) -> np.ndarray:
    axis = type_.quantized_axis
    return numerics.quantize(values, type_.scale_array(), type_.zero_point_array(), axis)


def range_type(values: np.ndarray, shrink: float = 0.9) -> QuantizedType:
    """An output type covering most of `values` (the edges saturate, as in real graphs)."""
    scale, zero_point = numerics.choose_qparams_asymmetric(
        shrink * values.min(), shrink * values.max()
    )
    return per_tensor(scale, zero_point)


Make = Callable[[list, object], Operation]


def run_both(
    make: Make,
    codes: list[np.ndarray],
    types: list[QuantizedType],
    out_type: QuantizedType | None = None,
    shrink: float = 0.9,
):
    """(integer codes, float result, output type) of `make` on `codes`.

    Without `out_type` the output type is chosen from the float result's range.
    """
    float_block = Block(arg_types=[tensor_type(c.shape, f32) for c in codes])
    floats = [dequantize(c, t) for c, t in zip(codes, types, strict=True)]
    probe = make(list(float_block.args), tensor_type((1,), f32))
    shape = _result_shape(probe, floats)
    float_op = make(list(float_block.args), tensor_type(shape, f32))
    expected = FLOAT_KERNELS[type(float_op)](float_op, floats)[0]
    out_type = out_type or range_type(expected, shrink)
    quant_block = Block(
        arg_types=[tensor_type(c.shape, t) for c, t in zip(codes, types, strict=True)]
    )
    quant_op = make(list(quant_block.args), tensor_type(shape, out_type))
    quant_op.verify()
    got = INTEGER_KERNELS[type(quant_op)](quant_op, codes)[0]
    assert got.dtype == np.int8 and got.shape == expected.shape
    return got, expected, out_type


def _result_shape(op, floats) -> tuple[int, ...]:
    """The float kernel's own result shape (it does not read the result type's shape)."""
    return FLOAT_KERNELS[type(op)](op, floats)[0].shape


def assert_within_one_step(
    got: np.ndarray, expected: np.ndarray, out_type: QuantizedType, exact: bool = False
) -> None:
    difference = np.abs(got.astype(np.int64) - quantize(expected, out_type).astype(np.int64))
    assert difference.max() <= (0 if exact else 1), f"max code difference {difference.max()}"


def activations(rng, shape, low=-128, high=128) -> np.ndarray:
    return rng.integers(low, high, shape).astype(np.int8)


def weights(rng, shape) -> np.ndarray:
    return rng.integers(-127, 128, shape).astype(np.int8)


def bias_for(rng, count: int, scales: np.ndarray) -> tuple[np.ndarray, QuantizedType]:
    codes = rng.integers(-3000, 3000, count).astype(np.int32)
    return codes, per_axis(scales, storage=INT32)


# --------------------------------------------------------------------------- weighted ops


@pytest.mark.parametrize("seed", range(3))
def test_conv2d(seed):
    rng = np.random.default_rng(seed)
    x_type = per_tensor(0.05, -7)
    w_scales = rng.uniform(0.005, 0.02, 6)
    bias, b_type = bias_for(rng, 6, 0.05 * w_scales)

    def make(args, result):
        return axq.Conv2dOp(*args, result, strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2))

    got, expected, out_type = run_both(
        make,
        [activations(rng, (2, 8, 9, 9)), weights(rng, (6, 8, 3, 3)), bias],
        [x_type, per_axis(w_scales), b_type],
    )
    assert_within_one_step(got, expected, out_type)


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_conv_with_per_channel_input(multiplier):
    rng = np.random.default_rng(multiplier)
    channels = 5
    in_scales, in_zps = rng.uniform(0.01, 0.1, channels), rng.integers(-20, 20, channels)
    x_type = per_axis(in_scales, in_zps, axis=1)
    w_type = per_tensor(0.02)
    out_channels = channels * multiplier
    bias, b_type = bias_for(
        rng, out_channels, in_scales[np.arange(out_channels) // multiplier] * 0.02
    )

    def make(args, result):
        return axq.Conv2dOp(*args, result, pads=(1, 1, 1, 1), group=channels)

    got, expected, out_type = run_both(
        make,
        [activations(rng, (1, channels, 7, 7)), weights(rng, (out_channels, 1, 3, 3)), bias],
        [x_type, w_type, b_type],
    )
    assert_within_one_step(got, expected, out_type)


def test_conv_transpose2d_per_output_channel_axis_1():
    rng = np.random.default_rng(3)
    x_type = per_tensor(0.04, 5)
    w_scales = rng.uniform(0.005, 0.02, 3)
    bias, b_type = bias_for(rng, 3, 0.04 * w_scales)

    def make(args, result):
        return axq.ConvTranspose2dOp(
            *args, result, strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1)
        )

    got, expected, out_type = run_both(
        make,
        [activations(rng, (1, 4, 5, 5)), weights(rng, (4, 3, 3, 3)), bias],
        [x_type, per_axis(w_scales, axis=1), b_type],
    )
    assert_within_one_step(got, expected, out_type)


@pytest.mark.parametrize("rows", [(3,), (2, 3)], ids=["2-D", "3-D"])
def test_dense(rows):
    """Per-output-channel weights: the channel axis is the result's last (a 3-D input is a
    transformer's [batch, tokens, features])."""
    rng = np.random.default_rng(4)
    w_scales = rng.uniform(0.005, 0.02, 7)
    bias, b_type = bias_for(rng, 7, 0.1 * w_scales)
    got, expected, out_type = run_both(
        lambda args, result: axq.DenseOp(*args, result),
        [activations(rng, (*rows, 40)), weights(rng, (7, 40)), bias],
        [per_tensor(0.1, 12), per_axis(w_scales), b_type],
    )
    assert_within_one_step(got, expected, out_type)


def test_matmul():
    rng = np.random.default_rng(5)
    got, expected, out_type = run_both(
        lambda args, result: axq.MatMulOp(*args, result),
        [activations(rng, (2, 3, 16)), activations(rng, (2, 16, 4))],
        [per_tensor(0.03, -4), per_tensor(0.07, 9)],
    )
    assert_within_one_step(got, expected, out_type)


# --------------------------------------------------------------------------- elementwise


@pytest.mark.parametrize("op_class", [axq.AddOp, axq.SubOp, axq.MulOp, axq.PReluOp])
def test_binary_ops_with_broadcasting(op_class):
    rng = np.random.default_rng(6)
    got, expected, out_type = run_both(
        lambda args, result: op_class(*args, result),
        [activations(rng, (1, 4, 5, 5)), activations(rng, (1, 4, 1, 1))],
        [per_tensor(0.05, -3), per_tensor(0.011, 20)],
    )
    assert_within_one_step(got, expected, out_type)


def test_add_of_very_different_scales():
    rng = np.random.default_rng(7)
    got, expected, out_type = run_both(
        lambda args, result: axq.AddOp(*args, result),
        [activations(rng, (2, 50)), activations(rng, (2, 50))],
        [per_tensor(2.0, 0), per_tensor(0.001, -100)],
        shrink=1.0,
    )
    assert_within_one_step(got, expected, out_type)


def test_concat_of_same_type_inputs_is_exact():
    rng = np.random.default_rng(8)
    type_ = per_tensor(0.02, 3)
    got, expected, out_type = run_both(
        lambda args, result: axq.ConcatOp(args, result, axis=1),
        [activations(rng, (1, 2, 3, 3)), activations(rng, (1, 5, 3, 3))],
        [type_, type_],
        out_type=type_,
    )
    assert_within_one_step(got, expected, out_type, exact=True)


_TABLE_FUNCTIONS = [
    (axq.UnaryFunction.SIGMOID, {}),
    (axq.UnaryFunction.TANH, {}),
    (axq.UnaryFunction.HARDSWISH, {}),
    (axq.UnaryFunction.SILU, {}),
    (axq.UnaryFunction.GELU, {}),
    (axq.UnaryFunction.LEAKYRELU, {"alpha": 0.1}),
    (axq.UnaryFunction.ELU, {"alpha": 1.0}),
    (axq.UnaryFunction.EXP, {}),
    (axq.UnaryFunction.CLIP, {"min_value": -1.0, "max_value": 2.0}),
]


@pytest.mark.parametrize(
    ("function", "params"), _TABLE_FUNCTIONS, ids=[f.value for f, _ in _TABLE_FUNCTIONS]
)
def test_lut_functions(function, params):
    in_type = per_tensor(0.04, 10)
    codes = np.arange(-128, 128, dtype=np.int8).reshape(4, 64)

    def make(args, result):
        table = None
        if isinstance(result.element_type, QuantizedType):
            out = result.element_type
            fn = numerics.UNARY_FUNCTIONS[function.value](**params)
            table = dense_from_numpy(
                numerics.build_lut(
                    fn, in_type.scale, in_type.zero_point, out.scale, out.zero_point
                ),
                INT8,
            )
        return axq.LutOp(args[0], result, function, params, table)

    got, expected, out_type = run_both(make, [codes], [in_type], shrink=1.0)
    assert_within_one_step(got, expected, out_type)


def test_softmax_in_float18_is_within_one_step():
    rng = np.random.default_rng(9)
    out_type = per_tensor(1 / 255, -128)
    got, expected, _ = run_both(
        lambda args, result: axq.SoftmaxOp(args[0], result, -1),
        [activations(rng, (3, 40))],
        [per_tensor(0.06, 4)],
        out_type=out_type,
    )
    assert_within_one_step(got, expected, out_type)


@pytest.mark.parametrize(
    "in_type",
    [per_tensor(0.05, -30), per_axis([0.02, 0.05, 0.1], [-128, 0, 17], axis=1)],
    ids=["per_tensor", "per_channel"],
)
@pytest.mark.parametrize("bounds", [(0.0, 6.0), (0.0, float("inf")), (-0.5, 0.5)])
def test_clip_keeps_the_type_and_clamps_codes(in_type, bounds):
    rng = np.random.default_rng(10)
    got, expected, _ = run_both(
        lambda args, result: axq.ClipOp(args[0], result, *bounds),
        [activations(rng, (1, 3, 4, 4))],
        [in_type],
        out_type=in_type,
    )
    assert_within_one_step(got, expected, in_type, exact=True)


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    ("pads", "ceil_mode", "count_include_pad"),
    [
        ((0, 0, 0, 0), False, False),
        ((1, 1, 1, 1), False, False),
        ((1, 1, 1, 1), False, True),
        ((0, 1, 1, 0), True, False),
    ],
)
def test_avg_pool(pads, ceil_mode, count_include_pad):
    rng = np.random.default_rng(11)

    def make(args, result):
        return axq.AvgPoolOp(args[0], result, (3, 3), (2, 2), pads, ceil_mode, count_include_pad)

    got, expected, out_type = run_both(
        make, [activations(rng, (2, 3, 8, 7))], [per_axis([0.02, 0.05, 0.1], [-5, 0, 30], axis=1)]
    )
    assert_within_one_step(got, expected, out_type)


@pytest.mark.parametrize("kind", [axq.PoolKind.AVG, axq.PoolKind.MAX])
def test_global_pool(kind):
    rng = np.random.default_rng(12)
    in_type = per_tensor(0.03, -10)
    out_type = None if kind == axq.PoolKind.AVG else in_type
    got, expected, out_type = run_both(
        lambda args, result: axq.GlobalPoolOp(args[0], result, kind),
        [activations(rng, (2, 4, 6, 6))],
        [in_type],
        out_type=out_type,
    )
    assert_within_one_step(got, expected, out_type, exact=kind == axq.PoolKind.MAX)


def test_max_pool_with_padding_and_ceil_mode_is_exact():
    rng = np.random.default_rng(13)
    in_type = per_tensor(0.03, 100)
    got, expected, _ = run_both(
        lambda args, result: axq.MaxPoolOp(
            args[0], result, (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True
        ),
        [activations(rng, (1, 3, 8, 8))],
        [in_type],
        out_type=in_type,
    )
    assert_within_one_step(got, expected, in_type, exact=True)


# --------------------------------------------------------------------------- data movement


@pytest.mark.parametrize(
    ("mode", "transform", "scale"),
    [
        ("nearest", "asymmetric", 2.0),
        ("linear", "half_pixel", 2.0),
        ("linear", "align_corners", 3.0),
        ("linear", "pytorch_half_pixel", 2.0),
    ],
)
def test_resize_keeps_the_input_type(mode, transform, scale):
    rng = np.random.default_rng(14)
    in_type = per_axis([0.02, 0.07], [3, -40], axis=1)

    def make(args, result):
        return axq.ResizeOp(
            args[0],
            result,
            axq.ResizeMode(mode),
            [1.0, 1.0, scale, scale],
            axq.CoordinateTransform(transform),
        )

    got, expected, _ = run_both(make, [activations(rng, (1, 2, 4, 5))], [in_type], out_type=in_type)
    assert_within_one_step(got, expected, in_type, exact=mode == "nearest")


def test_linear_resize_weights_rows_sum_to_one():
    weights = linear_resize_weights(5, 3.0, "half_pixel")
    assert weights.shape == (15, 5)
    assert np.all(weights.sum(axis=1) == 1024) and weights.min() >= 0


@pytest.mark.parametrize(
    "in_type",
    [per_tensor(0.05, -30), per_axis([0.02, 0.05, 0.1], [-128, 0, 17], axis=1)],
    ids=["per_tensor", "per_channel"],
)
@pytest.mark.parametrize(
    ("mode", "value"), [("constant", 0.0), ("constant", 0.5), ("reflect", 0.0), ("edge", 0.0)]
)
def test_pad(in_type, mode, value):
    rng = np.random.default_rng(15)
    got, expected, _ = run_both(
        lambda args, result: axq.PadOp(
            args[0], result, (0, 0, 1, 2, 0, 0, 2, 1), value, axq.PadMode(mode)
        ),
        [activations(rng, (1, 3, 4, 4))],
        [in_type],
        out_type=in_type,
    )
    assert_within_one_step(got, expected, in_type, exact=True)


def test_requantize_per_channel_to_per_tensor():
    rng = np.random.default_rng(16)
    in_type = per_axis([0.02, 0.05, 0.1], [-128, 0, 17], axis=1)
    out_type = per_tensor(0.08, -2)
    codes = activations(rng, (2, 3, 4))
    block = Block(arg_types=[tensor_type(codes.shape, in_type)])
    op = axq.RequantizeOp(block.args[0], tensor_type(codes.shape, out_type))
    got = INTEGER_KERNELS[axq.RequantizeOp](op, [codes])[0]
    assert_within_one_step(got, dequantize(codes, in_type), out_type)


def test_quantize_and_dequantize_follow_numerics():
    values = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    type_ = per_axis([0.01, 0.02, 0.03], [0, 5, -5], axis=1)
    block = Block(arg_types=[tensor_type(values.shape, f32)])
    quantize_op = axq.QuantizeOp(block.args[0], tensor_type(values.shape, type_))
    codes = INTEGER_KERNELS[axq.QuantizeOp](quantize_op, [values])[0]
    np.testing.assert_array_equal(codes, quantize(values, type_))
    dequantize_op = axq.DequantizeOp(quantize_op.result, tensor_type(values.shape, f32))
    restored = INTEGER_KERNELS[axq.DequantizeOp](dequantize_op, [codes])[0]
    np.testing.assert_array_equal(restored, dequantize(codes, type_))


def test_negligible_multipliers_round_to_zero():
    multiplier, shift = fixed_point_multiplier(np.array([2.0**-40, 0.5]))
    assert multiplier.tolist() == [0, 2**30] and shift.tolist() == [1, 31]
    out = numerics.requantize(np.array([2**31 - 1, -(2**31)]), multiplier[0], shift[0], 7)
    assert out.tolist() == [7, 7]


def test_every_quantized_op_has_an_integer_kernel():
    compute_ops = {op for op in axq.Axq.operations if op not in (axq.ConstantOp, axq.HostOp)}
    assert compute_ops <= set(INTEGER_KERNELS)


# --------------------------------------------------------------------------- lookup tables


def _binary_op(op_class, codes, types, out_type) -> Operation:
    block = Block(arg_types=[tensor_type(c.shape, t) for c, t in zip(codes, types, strict=True)])
    shape = np.broadcast_shapes(*(c.shape for c in codes))
    return op_class(*block.args, tensor_type(shape, out_type))


@pytest.mark.parametrize(
    ("op_class", "codes_of"),
    [
        (axq.AddOp, _add_codes),
        (axq.SubOp, _sub_codes),
        (axq.MulOp, _mul_codes),
        (axq.PReluOp, _prelu_codes),
    ],
)
@pytest.mark.parametrize("seed", range(4))
def test_binary_tables_give_the_bits_of_the_elementwise_formula(op_class, codes_of, seed):
    """A per-tensor binary op looks its result up in a table of all code pairs; the table
    is the formula itself on every pair, so any inputs give the formula's bits."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(-7, 1, 3))
    a_type, b_type = per_tensor(scales[0], rng.integers(-128, 128)), per_tensor(scales[1], 5)
    out_type = per_tensor(scales[2], rng.integers(-128, 128))
    codes = [activations(rng, (2, 3, 4, 5)), activations(rng, (1, 3, 1, 5))]
    op = _binary_op(op_class, codes, [a_type, b_type], out_type)
    got = INTEGER_KERNELS[op_class](op, codes)[0]
    expected = codes_of(*codes, a_type, b_type, out_type)
    assert got.dtype == expected.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
    # per-channel results are computed element by element (no table of every channel)
    channel_type = per_axis(scales[2] * np.array([1.0, 2.0, 0.5]), axis=1)
    per_channel = _binary_op(op_class, codes, [a_type, b_type], channel_type)
    np.testing.assert_array_equal(
        INTEGER_KERNELS[op_class](per_channel, codes)[0],
        codes_of(*codes, a_type, b_type, channel_type),
    )


def test_requantize_table_gives_the_bits_of_the_formula():
    rng = np.random.default_rng(17)
    in_type, out_type = per_tensor(0.031, -7), per_tensor(0.0123, 100)
    codes = activations(rng, (3, 4, 5))
    block = Block(arg_types=[tensor_type(codes.shape, in_type)])
    op = axq.RequantizeOp(block.args[0], tensor_type(codes.shape, out_type))
    got = INTEGER_KERNELS[axq.RequantizeOp](op, [codes])[0]
    np.testing.assert_array_equal(got, _requantize_codes(codes, in_type, out_type))


def test_prepared_parameters_follow_a_rewritten_property():
    """A conv's multipliers and geometry are prepared once per op; replacing one of its
    properties (as a rewrite does) must give the new op's results, not the cached ones."""
    rng = np.random.default_rng(11)
    x_type, w_scales = per_tensor(0.05, 3), rng.uniform(0.005, 0.02, 4)
    bias, b_type = bias_for(rng, 4, 0.05 * w_scales)
    codes = [activations(rng, (1, 3, 8, 8)), weights(rng, (4, 3, 3, 3)), bias]
    block = Block(
        arg_types=[
            tensor_type(c.shape, t)
            for c, t in zip(codes, [x_type, per_axis(w_scales), b_type], strict=True)
        ]
    )
    out_type = per_tensor(0.3, -2)

    def conv(strides):
        shape = (1, 4, 6, 6) if strides == (1, 1) else (1, 4, 3, 3)
        return axq.Conv2dOp(*block.args, tensor_type(shape, out_type), strides=strides)

    op = conv((1, 1))
    first = INTEGER_KERNELS[axq.Conv2dOp](op, codes)[0]
    assert first.shape == (1, 4, 6, 6)
    op.properties["strides"] = conv((2, 2)).properties["strides"]
    again = INTEGER_KERNELS[axq.Conv2dOp](op, codes)[0]
    np.testing.assert_array_equal(again, INTEGER_KERNELS[axq.Conv2dOp](conv((2, 2)), codes)[0])


def test_constant_arrays_are_read_only_and_follow_a_new_value():
    op = axq.ConstantOp(dense_from_numpy(np.arange(6, dtype=np.int8).reshape(2, 3)))
    array = constant_array(op)
    assert constant_array(op) is array and not array.flags.writeable
    np.testing.assert_array_equal(array, np.arange(6).reshape(2, 3))
    op.properties["value"] = dense_from_numpy(np.full((2, 3), -5, np.int8))
    np.testing.assert_array_equal(constant_array(op), np.full((2, 3), -5))


def test_centred_operands_are_int16_only_when_every_value_fits():
    """GEMM and conv operands: q - zp in int16 for int8 codes, else int64; wider codes keep
    every value (hand-worked)."""
    low = centred_operand(np.int8([-128, 127]), per_tensor(0.5, -128))
    assert (low.dtype, low.tolist()) == (np.int16, [0, 255])
    wide = centred_operand(np.int32([40_000, -7]), per_tensor(0.5, 3, storage=INT32))
    assert (wide.dtype, wide.tolist()) == (np.int64, [39_997, -10])
