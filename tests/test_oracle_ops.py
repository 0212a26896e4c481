"""The integer reference kernels against the oracle, op by op, bit for bit.

Hypothesis builds one quantized axq op at a time (shapes, pads, strides, dilations, groups,
scales over the whole legal range, zero points, per-channel types, bias codes up to the
documented accumulator bound) and both `INTEGER_KERNELS` and `oracle.graph.evaluate` run it
on the same codes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from oracle import graph, ops
from oracle.cases import (
    INT32,
    arguments,
    bias_bound,
    codes,
    oracle_settings,
    qtypes,
    scales,
    tensor,
    zero_points,
)
from oracle.quant import QType, build_lut
from xdsl.dialects.builtin import IntegerType, f32

from aipuc import numerics
from aipuc.dialects import axq
from aipuc.dialects.tensors import dense_from_numpy, tensor_type
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


def weight_type(draw, channels: int, axis: int = 0) -> QType:
    """Symmetric weights: zero point 0, per tensor or per output channel."""
    if draw(st.booleans()):
        return QType((draw(scales(-20, 2)),), (0,))
    return QType(
        tuple(draw(st.lists(scales(-20, 2), min_size=channels, max_size=channels))),
        (0,) * channels,
        axis,
    )


def bias_of(draw, out_channels, input_scale_of, w_type: QType, products: int, x_type: QType):
    """int32 bias codes within the accumulator bound, at scale s_in * s_w per channel."""
    weight_channels = len(w_type.scales)
    bias_scales = tuple(
        input_scale_of(o) * w_type.scales[o % weight_channels] for o in range(out_channels)
    )
    bound = bias_bound(products, x_type)
    bias = draw(codes((out_channels,), -bound, bound, np.int32))
    return bias, QType(bias_scales, (0,) * out_channels, 0)


# --------------------------------------------------------------------------- convolutions


@st.composite
def conv_cases(draw):
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    group_channels = draw(st.integers(1, 3)) if kind != "depthwise" else 1
    group = {"dense": 1, "grouped": draw(st.integers(2, 3)), "depthwise": draw(st.integers(2, 4))}[
        kind
    ]
    channels = group * group_channels
    per_group = draw(st.integers(1, 2)) if kind != "dense" else draw(st.integers(1, 4))
    out_channels = group * per_group
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    strides = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilations = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    pads = draw(st.tuples(*[st.integers(0, 2)] * 4))
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    height = draw(st.integers(max(1, extent[0] - pads[0] - pads[2]), 6))
    width = draw(st.integers(max(1, extent[1] - pads[1] - pads[3]), 6))
    batch = draw(st.integers(1, 2))
    x_type = draw(qtypes(channels if kind == "depthwise" else None))
    w_type = weight_type(draw, out_channels)
    products = group_channels * kernel[0] * kernel[1]
    bias, b_type = bias_of(
        draw, out_channels, lambda o: x_type.scale((0, o // per_group)), w_type, products, x_type
    )
    out_type = draw(qtypes(out_channels))
    x = draw(codes((batch, channels, height, width)))
    w = draw(codes((out_channels, group_channels, *kernel), -127, 127))
    out_hw = [
        ops.window_output_size(size, k, s, pads[i], pads[i + 2], d, False)
        for i, (size, k, s, d) in enumerate(
            zip((height, width), kernel, strides, dilations, strict=True)
        )
    ]
    return x, x_type, w, w_type, bias, b_type, out_type, strides, pads, dilations, group, out_hw


@oracle_settings(ci=60, long=1500)
@given(conv_cases())
def test_conv2d(case):
    x, x_type, w, w_type, bias, b_type, out_type, strides, pads, dilations, group, out_hw = case
    args = arguments(
        tensor(x.shape, x_type), tensor(w.shape, w_type), tensor(bias.shape, b_type, INT32)
    )
    result = tensor((x.shape[0], w.shape[0], *out_hw), out_type)
    op = axq.Conv2dOp(*args, result, strides, pads, dilations, group)
    assert_same(op, [x, w, bias])


@st.composite
def conv_transpose_cases(draw):
    group = draw(st.integers(1, 2))
    group_channels, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    channels = group * group_channels
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    strides = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilations = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    output_padding = tuple(draw(st.integers(0, max(0, s - 1))) for s in strides)
    height, width = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    full = [
        s * (n - 1) + p + d * (k - 1) + 1
        for s, n, p, d, k in zip(
            strides, (height, width), output_padding, dilations, kernel, strict=True
        )
    ]
    pads = [draw(st.integers(0, min(2, (f - 1) // 2))) for f in full * 2]
    pads = [pads[0], pads[1], pads[2], pads[3]]
    out_hw = [full[0] - pads[0] - pads[2], full[1] - pads[1] - pads[3]]
    x_type = draw(qtypes())
    w_type = weight_type(draw, per_group, axis=1)
    # Each output pixel sums at most kernel taps of every input channel of its group.
    products = group_channels * kernel[0] * kernel[1]
    bias, b_type = bias_of(
        draw, group * per_group, lambda o: x_type.only_scale, w_type, products, x_type
    )
    out_type = draw(qtypes(group * per_group))
    x = draw(codes((draw(st.integers(1, 2)), channels, height, width)))
    w = draw(codes((channels, per_group, *kernel), -127, 127))
    return (
        x,
        x_type,
        w,
        w_type,
        bias,
        b_type,
        out_type,
        strides,
        pads,
        dilations,
        output_padding,
        group,
        out_hw,
    )


@oracle_settings(ci=40, long=1000)
@given(conv_transpose_cases())
def test_conv_transpose2d(case):
    (
        x,
        x_type,
        w,
        w_type,
        bias,
        b_type,
        out_type,
        strides,
        pads,
        dilations,
        padding,
        group,
        out_hw,
    ) = case
    args = arguments(
        tensor(x.shape, x_type), tensor(w.shape, w_type), tensor(bias.shape, b_type, INT32)
    )
    result = tensor((x.shape[0], group * w.shape[1], *out_hw), out_type)
    op = axq.ConvTranspose2dOp(*args, result, strides, pads, dilations, padding, group)
    assert_same(op, [x, w, bias])


@oracle_settings(ci=40, long=1000)
@given(st.data())
def test_dense(data):
    batch, depth, outputs = (data.draw(st.integers(1, n)) for n in (3, 40, 5))
    x_type = data.draw(qtypes())
    w_type = weight_type(data.draw, outputs)
    bias, b_type = bias_of(data.draw, outputs, lambda o: x_type.only_scale, w_type, depth, x_type)
    out_type = data.draw(qtypes())
    x, w = data.draw(codes((batch, depth))), data.draw(codes((outputs, depth), -127, 127))
    args = arguments(
        tensor(x.shape, x_type), tensor(w.shape, w_type), tensor(bias.shape, b_type, INT32)
    )
    assert_same(axq.DenseOp(*args, tensor((batch, outputs), out_type)), [x, w, bias])


@oracle_settings(ci=40, long=1000)
@given(st.data())
def test_matmul(data):
    batch = data.draw(st.sampled_from([(), (2,), (2, 1)]))
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    a_type, b_type, out_type = (data.draw(qtypes()) for _ in range(3))
    a = data.draw(codes((*batch, m, k)))
    b = data.draw(codes((*batch[:1], k, n)))
    out_shape = (*np.broadcast_shapes(batch, batch[:1]), m, n)
    args = arguments(tensor(a.shape, a_type), tensor(b.shape, b_type))
    assert_same(axq.MatMulOp(*args, tensor(out_shape, out_type)), [a, b])


# --------------------------------------------------------------------------- elementwise

BINARY_OPS = [axq.AddOp, axq.SubOp, axq.MulOp, axq.PReluOp]
SHAPE_PAIRS = [
    ((1, 3, 2, 2), (1, 3, 2, 2)),
    ((2, 3, 2, 2), (1, 3, 1, 1)),
    ((1, 2, 3, 1), (1, 1, 1, 1)),
]


@st.composite
def binary_types(draw):
    """Input scales near each other or far apart (add/sub's common scale at both ends)."""
    a_type = draw(qtypes())
    if draw(st.booleans()):
        ratio = draw(st.sampled_from([1.0, 2.0, 0.5, 2.0**-17, 2.0**17, 1 / 3, 3.0]))
        b_type = QType.per_tensor(a_type.only_scale * ratio, draw(zero_points))
    else:
        b_type = draw(qtypes())
    return a_type, b_type


@oracle_settings(ci=80, long=2000)
@given(st.sampled_from(BINARY_OPS), st.sampled_from(SHAPE_PAIRS), binary_types(), st.data())
def test_binary_ops(op_class, shapes, types, data):
    a_shape, b_shape = shapes
    a_type, b_type = types
    out_type = data.draw(qtypes(a_shape[1]))
    a, b = data.draw(codes(a_shape)), data.draw(codes(b_shape))
    args = arguments(tensor(a_shape, a_type), tensor(b_shape, b_type))
    assert_same(op_class(*args, tensor(a_shape, out_type)), [a, b])


@oracle_settings(ci=40, long=1000)
@given(st.sampled_from(["sigmoid", "tanh", "silu", "gelu", "exp", "sqrt", "hardswish"]), st.data())
def test_lut(function, data):
    in_type, out_type = (
        data.draw(qtypes(scale=scales(-12, 2))),
        data.draw(qtypes(scale=scales(-12, 2))),
    )
    fn = numerics.UNARY_FUNCTIONS[function]()
    table = build_lut(
        fn, in_type.only_scale, in_type.zero_points[0], out_type.only_scale, out_type.zero_points[0]
    )
    x = data.draw(codes((2, 5)))
    (arg,) = arguments(tensor(x.shape, in_type))
    table_attr = dense_from_numpy(np.array(table, np.int8), IntegerType(8))
    op = axq.LutOp(arg, tensor(x.shape, out_type), axq.UnaryFunction(function), {}, table_attr)
    assert_same(op, [x])


@oracle_settings(ci=40, long=1000)
@given(st.data())
def test_clip(data):
    x = data.draw(codes((1, 3, 2, 2)))
    type_ = data.draw(qtypes(3))
    bounds = sorted(
        data.draw(
            st.lists(
                st.one_of(st.floats(-50, 50), st.sampled_from([0.0, float("inf"), float("-inf")])),
                min_size=2,
                max_size=2,
            )
        )
    )
    (arg,) = arguments(tensor(x.shape, type_))
    assert_same(axq.ClipOp(arg, tensor(x.shape, type_), *bounds), [x])


@oracle_settings(ci=25, long=600)
@given(st.data())
def test_softmax(data):
    length = data.draw(st.integers(1, 70))
    axis = data.draw(st.sampled_from([-1, 0, 1]))
    x = data.draw(codes((2, length) if axis != 0 else (length, 2)))
    in_type = data.draw(qtypes(scale=st.floats(0.001, 0.5)))
    out_type = QType.per_tensor(
        data.draw(st.sampled_from([1 / 256, 1 / 255, 0.01])), data.draw(zero_points)
    )
    (arg,) = arguments(tensor(x.shape, in_type))
    assert_same(axq.SoftmaxOp(arg, tensor(x.shape, out_type), axis), [x])


# --------------------------------------------------------------------------- pooling


@st.composite
def window_cases(draw, dilated: bool):
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    strides = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilations = draw(st.tuples(st.integers(1, 2), st.integers(1, 2))) if dilated else (1, 1)
    pads = [draw(st.integers(0, k - 1)) for k in (*kernel, *kernel)]  # ONNX: pad < kernel
    ceil_mode = draw(st.booleans())
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    height = draw(st.integers(max(1, extent[0] - pads[0] - pads[2]), 7))
    width = draw(st.integers(max(1, extent[1] - pads[1] - pads[3]), 7))
    out_hw = [
        ops.window_output_size(n, k, s, pads[i], pads[i + 2], d, ceil_mode)
        for i, (n, k, s, d) in enumerate(
            zip((height, width), kernel, strides, dilations, strict=True)
        )
    ]
    assume(min(out_hw) >= 1)
    return (height, width), kernel, strides, pads, dilations, ceil_mode, out_hw


@oracle_settings(ci=60, long=1500)
@given(window_cases(dilated=False), st.booleans(), st.data())
def test_avg_pool(window, include_pad, data):
    (height, width), kernel, strides, pads, _, ceil_mode, out_hw = window
    channels = data.draw(st.integers(1, 3))
    in_type, out_type = data.draw(qtypes(channels)), data.draw(qtypes(channels))
    x = data.draw(codes((data.draw(st.integers(1, 2)), channels, height, width)))
    (arg,) = arguments(tensor(x.shape, in_type))
    result = tensor((*x.shape[:2], *out_hw), out_type)
    assert_same(axq.AvgPoolOp(arg, result, kernel, strides, pads, ceil_mode, include_pad), [x])


@oracle_settings(ci=40, long=1000)
@given(window_cases(dilated=True), st.data())
def test_max_pool(window, data):
    (height, width), kernel, strides, pads, dilations, ceil_mode, out_hw = window
    type_ = data.draw(qtypes(2))
    x = data.draw(codes((1, 2, height, width)))
    (arg,) = arguments(tensor(x.shape, type_))
    result = tensor((1, 2, *out_hw), type_)
    assert_same(axq.MaxPoolOp(arg, result, kernel, strides, pads, dilations, ceil_mode), [x])


@oracle_settings(ci=40, long=1000)
@given(st.sampled_from(list(axq.PoolKind)), st.data())
def test_global_pool(kind, data):
    channels = data.draw(st.integers(1, 3))
    x = data.draw(
        codes(
            (
                data.draw(st.integers(1, 2)),
                channels,
                data.draw(st.integers(1, 6)),
                data.draw(st.integers(1, 6)),
            )
        )
    )
    in_type = data.draw(qtypes(channels))
    out_type = in_type if kind == axq.PoolKind.MAX else data.draw(qtypes(channels))
    (arg,) = arguments(tensor(x.shape, in_type))
    assert_same(axq.GlobalPoolOp(arg, tensor((*x.shape[:2], 1, 1), out_type), kind), [x])


# --------------------------------------------------------------------------- data movement


@oracle_settings(ci=60, long=1500)
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
    out_shape = tuple(int(np.floor(n * s)) for n, s in zip(shape, scales_, strict=True))
    assume(min(out_shape) >= 1)
    in_type = data.draw(qtypes(shape[1]))
    out_type = in_type if mode == axq.ResizeMode.NEAREST else data.draw(qtypes(shape[1]))
    x = data.draw(codes(shape))
    (arg,) = arguments(tensor(shape, in_type))
    op = axq.ResizeOp(arg, tensor(out_shape, out_type), mode, scales_, transform, rounding)
    assert_same(op, [x])


@oracle_settings(ci=60, long=1500)
@given(st.sampled_from(list(axq.PadMode)), st.data())
def test_pad(mode, data):
    shape = (1, 2, data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4)))
    limit = 2 if mode != axq.PadMode.REFLECT else 1
    spatial = [data.draw(st.integers(0, limit)) for _ in range(4)]
    pads = [0, 0, spatial[0], spatial[1], 0, 0, spatial[2], spatial[3]]
    type_ = data.draw(qtypes(2))
    value = data.draw(st.one_of(st.floats(-100, 100), st.just(0.0)))
    x = data.draw(codes(shape))
    out_shape = tuple(n + b + e for n, b, e in zip(shape, pads[:4], pads[4:], strict=True))
    (arg,) = arguments(tensor(shape, type_))
    assert_same(axq.PadOp(arg, tensor(out_shape, type_), pads, value, mode), [x])


@oracle_settings(ci=60, long=1500)
@given(st.data())
def test_quantize_dequantize_requantize(data):
    shape = (2, 3, 2)
    in_type, out_type = data.draw(qtypes(3)), data.draw(qtypes(3))
    values = data.draw(st.lists(st.floats(-1e5, 1e5, width=32), min_size=12, max_size=12))
    floats = np.float32(values).reshape(shape)
    (arg,) = arguments(tensor_type(shape, f32))
    assert_same(axq.QuantizeOp(arg, tensor(shape, in_type)), [floats])
    x = data.draw(codes(shape))
    (arg,) = arguments(tensor(shape, in_type))
    assert_same(axq.DequantizeOp(arg, tensor_type(shape, f32)), [x])
    (arg,) = arguments(tensor(shape, in_type))
    assert_same(axq.RequantizeOp(arg, tensor(shape, out_type)), [x])
