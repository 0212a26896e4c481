"""The integer reference kernels against the oracle, op by op, bit for bit.

Hypothesis builds one quantized axq op at a time (shapes, pads, strides, dilations, groups,
scales over the whole legal range, zero points, per-channel types, bias codes up to the
documented accumulator bound) and both `INTEGER_KERNELS` and `oracle.graph.evaluate` run it
on the same codes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle import graph, ops
from oracle.cases import (
    INT8,
    INT32,
    arguments,
    bias_bound,
    calibrated_type,
    codes,
    mantissas,
    oracle_settings,
    qtypes,
    scales,
    tensor,
    zero_points,
)
from oracle.quant import QType, build_lut, dequantize
from xdsl.dialects.builtin import IntegerType, TensorType, f32
from xdsl.ir import Operation

from aipuc import numerics
from aipuc.dialects import axq
from aipuc.dialects.tensors import dense_from_numpy, tensor_type
from aipuc.runtime.float_interpreter import FLOAT_KERNELS
from aipuc.runtime.integer_reference import INTEGER_KERNELS


def assert_same(op, inputs):
    """Product and oracle give the same arrays (dtype, shape and bits)."""
    op.verify()
    got = INTEGER_KERNELS[type(op)](op, inputs)
    expected = graph.evaluate(op, inputs)
    assert len(got) == len(expected)
    for product, oracle in zip(got, expected, strict=True):
        product = np.asarray(product)
        assert product.dtype == oracle.dtype and product.shape == oracle.shape
        assert product.tobytes() == oracle.tobytes()


def dequantized(codes: np.ndarray, type_: QType) -> np.ndarray:
    out = np.empty(codes.shape, np.float32)
    for index in np.ndindex(codes.shape):
        out[index] = dequantize(int(codes[index]), type_.scale(index), type_.zero_point(index))
    return out


Make = Callable[[list, TensorType], Operation]


def check(make: Make, operands, out_type, draw, per_channel_axis: int | None = 1) -> None:
    """Build the quantized op of `make` on `operands` ((codes, QType, storage) triples) and
    compare product and oracle. The result shape comes from the op's float twin on the
    dequantized operands, and so does the output type when `out_type` is None (its range,
    as calibration would see it)."""
    floats = [dequantized(codes, type_) for codes, type_, _ in operands]
    float_args = arguments(*[tensor_type(f.shape, f32) for f in floats])
    probe = make(float_args, tensor_type((1,), f32))
    expected = FLOAT_KERNELS[type(probe)](probe, floats)[0]
    if out_type is None:
        out_type = calibrated_type(draw, expected, per_channel_axis)
    args = arguments(*[tensor(codes.shape, type_, storage) for codes, type_, storage in operands])
    assert_same(make(args, tensor(expected.shape, out_type)), [codes for codes, _, _ in operands])


def output_type(data, channels: int | None = None):
    """None (calibrated from the result) most of the time, else any type."""
    return data.draw(st.one_of(st.none(), st.none(), st.none(), qtypes(channels)))


def weight_type(draw, channels: int, axis: int = 0) -> QType:
    """Symmetric weights: zero point 0, per tensor or per output channel."""
    if draw(st.booleans()):
        return QType((draw(scales(-20, 2)),), (0,))
    channel_scales = draw(st.lists(scales(-20, 2), min_size=channels, max_size=channels))
    return QType(tuple(channel_scales), (0,) * channels, axis)


def bias_of(draw, out_channels, input_scale_of, w_type: QType, products: int, x_type: QType):
    """int32 bias codes within the accumulator bound, at scale s_in * s_w per channel."""
    weight_channels = len(w_type.scales)
    bias_scales = tuple(
        input_scale_of(o) * w_type.scales[o % weight_channels] for o in range(out_channels)
    )
    bound = bias_bound(products, x_type)
    magnitude = draw(st.sampled_from([bound, min(bound, 5000)]))
    bias = draw(codes((out_channels,), -magnitude, magnitude, np.int32))
    return bias, QType(bias_scales, (0,) * out_channels, 0)


def out_size(sizes, kernel, strides, pads, dilations, ceil_mode=False) -> list[int]:
    return [
        ops.window_output_size(n, k, s, pads[i], pads[i + 2], d, ceil_mode)
        for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dilations, strict=True))
    ]


# --------------------------------------------------------------------------- convolutions


@st.composite
def windows(draw, max_pad: int | None = 2, dilated: bool = True, ceil_mode: bool = False):
    """2-D window geometry that fits: (height, width), kernel, strides, pads, dilations.

    max_pad None keeps every pad below its kernel size (ONNX pooling)."""
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    strides = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilations = draw(st.tuples(st.integers(1, 2), st.integers(1, 2))) if dilated else (1, 1)
    limits = [k - 1 for k in kernel * 2] if max_pad is None else [max_pad] * 4
    pads = [draw(st.integers(0, limit)) for limit in limits]
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    height = draw(st.integers(max(1, extent[0] - pads[0] - pads[2]), 6))
    width = draw(st.integers(max(1, extent[1] - pads[1] - pads[3]), 6))
    assume(min(out_size((height, width), kernel, strides, pads, dilations, ceil_mode)) >= 1)
    return (height, width), kernel, strides, pads, dilations


@oracle_settings(ci=60, long=400)
@given(st.sampled_from(["dense", "grouped", "depthwise"]), windows(), st.data())
def test_conv2d(kind, window, data):
    (height, width), kernel, strides, pads, dilations = window
    group_channels = data.draw(st.integers(1, 3)) if kind != "depthwise" else 1
    group = {"dense": 1, "grouped": data.draw(st.integers(2, 3))}.get(kind) or data.draw(
        st.integers(2, 4)
    )
    per_group = data.draw(st.integers(1, 4 if kind == "dense" else 2))
    channels, out_channels = group * group_channels, group * per_group
    x_type = data.draw(qtypes(channels if kind == "depthwise" else None))
    w_type = weight_type(data.draw, out_channels)
    bias, b_type = bias_of(
        data.draw,
        out_channels,
        lambda o: x_type.scale((0, o // per_group)),
        w_type,
        group_channels * kernel[0] * kernel[1],
        x_type,
    )
    x = data.draw(codes((data.draw(st.integers(1, 2)), channels, height, width)))
    w = data.draw(codes((out_channels, group_channels, *kernel), -127, 127))
    check(
        lambda args, result: axq.Conv2dOp(*args, result, strides, pads, dilations, group),
        [(x, x_type, INT8), (w, w_type, INT8), (bias, b_type, INT32)],
        output_type(data, out_channels),
        data.draw,
    )


@oracle_settings(ci=40, long=300)
@given(st.data())
def test_conv_transpose2d(data):
    group = data.draw(st.integers(1, 2))
    group_channels, per_group = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kernel = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    strides = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilations = data.draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    output_padding = tuple(data.draw(st.integers(0, s - 1)) for s in strides)
    height, width = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    full = [
        s * (n - 1) + p + d * (k - 1) + 1
        for s, n, p, d, k in zip(
            strides, (height, width), output_padding, dilations, kernel, strict=True
        )
    ]
    pads = [data.draw(st.integers(0, min(2, (f - 1) // 2))) for f in full * 2]
    x_type = data.draw(qtypes())
    w_type = weight_type(data.draw, per_group, axis=1)
    # An output pixel sums at most every kernel tap of every input channel of its group.
    products = group_channels * kernel[0] * kernel[1]
    bias, b_type = bias_of(
        data.draw, group * per_group, lambda o: x_type.only_scale, w_type, products, x_type
    )
    x = data.draw(codes((data.draw(st.integers(1, 2)), group * group_channels, height, width)))
    w = data.draw(codes((group * group_channels, per_group, *kernel), -127, 127))
    check(
        lambda args, result: axq.ConvTranspose2dOp(
            *args, result, strides, pads, dilations, output_padding, group
        ),
        [(x, x_type, INT8), (w, w_type, INT8), (bias, b_type, INT32)],
        output_type(data, group * per_group),
        data.draw,
    )


@oracle_settings(ci=40, long=300)
@given(st.data())
def test_dense(data):
    batch, depth, outputs = (data.draw(st.integers(1, n)) for n in (3, 40, 5))
    x_type = data.draw(qtypes())
    w_type = weight_type(data.draw, outputs)
    bias, b_type = bias_of(data.draw, outputs, lambda o: x_type.only_scale, w_type, depth, x_type)
    x, w = data.draw(codes((batch, depth))), data.draw(codes((outputs, depth), -127, 127))
    check(
        lambda args, result: axq.DenseOp(*args, result),
        [(x, x_type, INT8), (w, w_type, INT8), (bias, b_type, INT32)],
        output_type(data, outputs),
        data.draw,
    )


@oracle_settings(ci=40, long=300)
@given(st.sampled_from([(), (2,), (2, 1)]), st.data())
def test_matmul(batch, data):
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    a = data.draw(codes((*batch, m, k)))
    b = data.draw(codes((*batch[:1], k, n)))
    check(
        lambda args, result: axq.MatMulOp(*args, result),
        [(a, data.draw(qtypes()), INT8), (b, data.draw(qtypes()), INT8)],
        output_type(data, (*np.broadcast_shapes(batch, batch[:1]), m, n)[1]),
        data.draw,
    )


# --------------------------------------------------------------------------- elementwise

SHAPE_PAIRS = [
    ((2, 3, 4, 4), (2, 3, 4, 4)),
    ((2, 3, 2, 2), (1, 3, 1, 1)),
    ((1, 2, 3, 1), (1, 1, 1, 1)),
]


@st.composite
def binary_operands(draw, shapes):
    """Operands whose scales are near each other or far apart (add/sub's common scale at
    both ends), or nearly cancelling: b = +-a in another scale, plus a small delta, so the
    result's range (and a calibrated output scale) is far below the inputs' scales."""
    a_shape, b_shape = shapes
    a_type, a = draw(qtypes()), draw(codes(a_shape))
    kind = draw(st.sampled_from(["cancelling", "related", "any"]))
    if kind == "any":
        return (a, a_type, INT8), (draw(codes(b_shape)), draw(qtypes()), INT8)
    if kind == "related" or a_shape != b_shape:
        ratio = draw(st.sampled_from([1.0, 2.0, 0.5, 2.0**-17, 2.0**17, 1 / 3]) | mantissas)
        b_type = QType.per_tensor(a_type.only_scale * ratio, draw(zero_points))
        return (a, a_type, INT8), (draw(codes(b_shape)), b_type, INT8)
    ratio = draw(st.sampled_from([1.0, 2.0]) | mantissas.map(lambda m: 2 * m - 1))  # in [1, 3)
    b_type = QType.per_tensor(a_type.only_scale * ratio, draw(zero_points))
    sign = draw(st.sampled_from([1, -1]))
    centred = sign * (a.astype(np.int64) - a_type.zero_points[0]) / ratio
    delta = draw(codes(a_shape, -2, 2)).astype(np.int64)
    b = np.clip(np.rint(centred) + b_type.zero_points[0] + delta, -128, 127).astype(np.int8)
    return (a, a_type, INT8), (b, b_type, INT8)


@oracle_settings(ci=100, long=800)
@given(
    st.sampled_from([axq.AddOp, axq.SubOp, axq.MulOp, axq.PReluOp]),
    st.sampled_from(SHAPE_PAIRS).flatmap(binary_operands),
    st.data(),
)
def test_binary_ops(op_class, operands, data):
    check(
        lambda args, result: op_class(*args, result),
        list(operands),
        output_type(data, operands[0][0].shape[1]),
        data.draw,
    )


@oracle_settings(ci=40, long=300)
@given(st.sampled_from(["sigmoid", "tanh", "silu", "gelu", "exp", "sqrt", "hardswish"]), st.data())
def test_lut(function, data):
    in_type = data.draw(qtypes(scale=scales(-12, 2)))
    x = data.draw(codes((2, 5)))

    def make(args, result):
        table = None
        out = result.element_type
        if isinstance(out, axq.QuantizedType):
            fn = numerics.UNARY_FUNCTIONS[function]()
            codes_ = build_lut(
                fn, in_type.only_scale, in_type.zero_points[0], out.scale, out.zero_point
            )
            table = dense_from_numpy(np.array(codes_, np.int8), IntegerType(8))
        return axq.LutOp(args[0], result, axq.UnaryFunction(function), {}, table)

    check(make, [(x, in_type, INT8)], output_type(data), data.draw, per_channel_axis=None)


@oracle_settings(ci=40, long=300)
@given(st.data())
def test_clip(data):
    x, type_ = data.draw(codes((1, 3, 2, 2))), data.draw(qtypes(3))
    special = st.sampled_from([0.0, float("inf"), float("-inf")])
    low, high = sorted(
        data.draw(st.lists(st.one_of(st.floats(-50, 50), special), min_size=2, max_size=2))
    )
    check(
        lambda args, result: axq.ClipOp(args[0], result, low, high),
        [(x, type_, INT8)],
        type_,
        data.draw,
    )


@oracle_settings(ci=25, long=200)
@given(st.sampled_from([-1, 0, 1]), st.data())
def test_softmax(axis, data):
    length = data.draw(st.integers(1, 70))
    x = data.draw(codes((2, length) if axis != 0 else (length, 2)))
    in_type = data.draw(qtypes(scale=st.floats(0.001, 0.5)))
    out_scale = data.draw(st.sampled_from([1 / 256, 1 / 255, 0.01]))
    out_type = QType.per_tensor(out_scale, data.draw(zero_points))
    # lanes from valid_length on are PWORD padding holding the neutral value
    valid = data.draw(st.one_of(st.none(), st.integers(1, length)))
    neutral = None if valid is None else -1e9
    check(
        lambda args, result: axq.SoftmaxOp(args[0], result, axis, valid, neutral),
        [(x, in_type, INT8)],
        out_type,
        data.draw,
    )


@oracle_settings(ci=25, long=200)
@given(st.sampled_from([1, 2]), st.data())
def test_layer_norm(axis, data):
    """gamma and beta are float tensors of the normalised shape (the axes from `axis` on)."""
    shape = (2, data.draw(st.integers(1, 4)), data.draw(st.integers(1, 70)))
    x = data.draw(codes(shape))
    in_type = data.draw(qtypes())
    normalised = shape[axis:]
    weights = hnp.arrays(np.float32, normalised, elements=st.floats(-3, 3, width=32))
    gamma, beta = data.draw(weights), data.draw(weights)
    epsilon = data.draw(st.sampled_from([1e-5, 1e-3, 0.5]))
    affine = [tensor_type(normalised, f32)] * 2
    probe = axq.LayerNormOp(
        *arguments(tensor_type(shape, f32), *affine), tensor_type(shape, f32), axis, epsilon
    )
    expected = FLOAT_KERNELS[axq.LayerNormOp](probe, [dequantized(x, in_type), gamma, beta])[0]
    out_type = calibrated_type(data.draw, expected, None)
    args = arguments(tensor(shape, in_type), *affine)
    op = axq.LayerNormOp(*args, tensor(shape, out_type), axis, epsilon)
    assert_same(op, [x, gamma, beta])


# --------------------------------------------------------------------------- pooling


@oracle_settings(ci=60, long=400)
@given(st.booleans(), st.booleans(), st.data())
def test_avg_pool(ceil_mode, include_pad, data):
    (height, width), kernel, strides, pads, _ = data.draw(windows(None, False, ceil_mode))
    channels = data.draw(st.integers(1, 3))
    x = data.draw(codes((data.draw(st.integers(1, 2)), channels, height, width)))
    check(
        lambda args, result: axq.AvgPoolOp(
            args[0], result, kernel, strides, pads, ceil_mode, include_pad
        ),
        [(x, data.draw(qtypes(channels)), INT8)],
        output_type(data, channels),
        data.draw,
    )


@oracle_settings(ci=40, long=300)
@given(st.booleans(), st.data())
def test_max_pool(ceil_mode, data):
    (height, width), kernel, strides, pads, dilations = data.draw(windows(None, True, ceil_mode))
    type_ = data.draw(qtypes(2))
    x = data.draw(codes((1, 2, height, width)))
    check(
        lambda args, result: axq.MaxPoolOp(
            args[0], result, kernel, strides, pads, dilations, ceil_mode
        ),
        [(x, type_, INT8)],
        type_,
        data.draw,
    )


@oracle_settings(ci=40, long=300)
@given(st.sampled_from(list(axq.PoolKind)), st.data())
def test_global_pool(kind, data):
    channels = data.draw(st.integers(1, 3))
    shape = (
        data.draw(st.integers(1, 2)),
        channels,
        data.draw(st.integers(1, 6)),
        data.draw(st.integers(1, 6)),
    )
    in_type = data.draw(qtypes(channels))
    out_type = in_type if kind == axq.PoolKind.MAX else output_type(data, channels)
    check(
        lambda args, result: axq.GlobalPoolOp(args[0], result, kind),
        [(data.draw(codes(shape)), in_type, INT8)],
        out_type,
        data.draw,
    )


# --------------------------------------------------------------------------- data movement


@oracle_settings(ci=60, long=400)
@given(
    st.sampled_from(list(axq.ResizeMode)),
    st.sampled_from(list(axq.CoordinateTransform)),
    st.sampled_from(list(axq.NearestRounding)),
    st.data(),
)
def test_resize(mode, transform, rounding, data):
    shape = (
        1,
        data.draw(st.integers(1, 2)),
        data.draw(st.integers(1, 4)),
        data.draw(st.integers(1, 4)),
    )
    factors = st.sampled_from([1.0, 2.0, 3.0, 0.5, 1.5, 2.5])
    scales_ = [1.0, 1.0, data.draw(factors), data.draw(factors)]
    assume(all(np.floor(n * s) >= 1 for n, s in zip(shape, scales_, strict=True)))
    in_type = data.draw(qtypes(shape[1]))
    out_type = in_type if mode == axq.ResizeMode.NEAREST else output_type(data, shape[1])
    check(
        lambda args, result: axq.ResizeOp(args[0], result, mode, scales_, transform, rounding),
        [(data.draw(codes(shape)), in_type, INT8)],
        out_type,
        data.draw,
    )


@oracle_settings(ci=60, long=400)
@given(st.sampled_from(list(axq.PadMode)), st.data())
def test_pad(mode, data):
    shape = (1, 2, data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4)))
    limit = 1 if mode == axq.PadMode.REFLECT else 2
    top, left, bottom, right = (data.draw(st.integers(0, limit)) for _ in range(4))
    pads = [0, 0, top, left, 0, 0, bottom, right]
    type_ = data.draw(qtypes(2))
    value = data.draw(st.one_of(st.floats(-100, 100), st.just(0.0)))
    check(
        lambda args, result: axq.PadOp(args[0], result, pads, value, mode),
        [(data.draw(codes(shape)), type_, INT8)],
        type_,
        data.draw,
    )


@st.composite
def floats_near_codes(draw, type_: QType, shape):
    """Real values around the type's codes: ties (k + 1/2) steps, their neighbours, any."""
    values = np.empty(shape, np.float32)
    for index in np.ndindex(shape):
        steps = draw(st.integers(-140, 140)) + draw(st.sampled_from([0.5, 0.0, 0.25, -0.5]))
        value = (steps - type_.zero_point(index)) * type_.scale(index)
        values[index] = np.float32(value if draw(st.booleans()) else draw(st.floats(-1e5, 1e5)))
    return values


@oracle_settings(ci=60, long=400)
@given(st.data())
def test_quantize_dequantize_requantize(data):
    shape = (2, 3, 2)
    in_type = data.draw(qtypes(3))
    floats = data.draw(floats_near_codes(in_type, shape))
    (arg,) = arguments(tensor_type(shape, f32))
    assert_same(axq.QuantizeOp(arg, tensor(shape, in_type)), [floats])
    x = data.draw(codes(shape))
    (arg,) = arguments(tensor(shape, in_type))
    assert_same(axq.DequantizeOp(arg, tensor_type(shape, f32)), [x])
    out_type = output_type(data, 3) or calibrated_type(data.draw, dequantized(x, in_type))
    (arg,) = arguments(tensor(shape, in_type))
    assert_same(axq.RequantizeOp(arg, tensor(shape, out_type)), [x])


def test_avg_pool_window_sums_stay_exact_beyond_float32():
    """300 x 300 taps of x_c = 255 sum to 22,950,000 > 2**24: float32 could not hold the
    partial sums exactly; the integer reference must still equal the oracle."""
    x = np.full((1, 1, 300, 300), 127, np.int8)
    in_type, out_type = QType.per_tensor(0.02, -128), QType.per_tensor(0.01, -128)
    (arg,) = arguments(tensor(x.shape, in_type))
    op = axq.AvgPoolOp(arg, tensor((1, 1, 1, 1), out_type), (300, 300), (1, 1), (0, 0, 0, 0))
    assert_same(op, [x])
