"""The NumPy kernels and the float interpreter's kernel table against ONNX's references.

Every kernel is compared with `onnx.reference` on one-node models. onnx.reference bugs
(onnx 1.23) send some checks to onnxruntime instead: ConvTranspose fails for group > 1;
pooling shifts the windows when ceil_mode's last window needs two or more extra pad
cells (stride >= 3); GlobalMaxPool reduces the wrong axes of non-4-D tensors; Pad
rejects negative pads. The exact-integer mode is compared with plain int64 NumPy, bit
for bit.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from xdsl.dialects.builtin import f32
from xdsl.ir import Block

from aipuc.dialects import axq
from aipuc.dialects.tensors import tensor_type
from aipuc.runtime import kernels
from aipuc.runtime.float_interpreter import FLOAT_KERNELS

RNG_SEED = 1234
FLOAT_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
GEOMETRY_SETTINGS = settings(max_examples=100, deadline=None)


def _random(shape, seed=RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _node(op_type: str, count: int, **attributes) -> onnx.NodeProto:
    return helper.make_node(op_type, [f"i{k}" for k in range(count)], ["y"], **attributes)


def onnx_reference(op_type: str, inputs, **attributes) -> np.ndarray:
    """The output of `op_type` under onnx.reference (latest opset)."""
    evaluator = ReferenceEvaluator(_node(op_type, len(inputs), **attributes))
    return evaluator.run(None, {f"i{k}": x for k, x in enumerate(inputs)})[0]


def onnxruntime_reference(op_type: str, inputs, **attributes) -> np.ndarray:
    """The output of `op_type` under onnxruntime (opset 21), for float32 inputs."""
    graph = helper.make_graph(
        [_node(op_type, len(inputs), **attributes)],
        op_type,
        [
            helper.make_tensor_value_info(f"i{k}", TensorProto.FLOAT, x.shape)
            for k, x in enumerate(inputs)
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # ceil_mode shape-inference warnings are expected
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {f"i{k}": x for k, x in enumerate(inputs)})[0]


# --------------------------------------------------------------------------- conv


@st.composite
def conv_geometries(draw, max_stride=3):
    """Conv/ConvTranspose geometry incl. grouped and depthwise (channel multiplier)."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    group = 1 if kind == "dense" else draw(st.integers(2, 4))
    in_per_group = 1 if kind == "depthwise" else draw(st.integers(1, 3))
    out_per_group = draw(st.integers(1, 3))
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    strides = draw(st.tuples(st.integers(1, max_stride), st.integers(1, max_stride)))
    dilations = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    pads = draw(st.tuples(*[st.integers(0, 2)] * 4))
    size = draw(st.tuples(st.integers(1, 9), st.integers(1, 9)))
    batch = draw(st.integers(1, 2))
    return {
        "group": group,
        "in_per_group": in_per_group,
        "out_per_group": out_per_group,
        "kernel": kernel,
        "strides": strides,
        "dilations": dilations,
        "pads": pads,
        "size": size,
        "batch": batch,
    }


def _conv_operands(geometry, transpose=False, seed=RNG_SEED):
    g = geometry
    channels = g["group"] * g["in_per_group"]
    x = _random((g["batch"], channels, *g["size"]), seed)
    if transpose:
        w = _random((channels, g["out_per_group"], *g["kernel"]), seed + 1)
    else:
        w = _random((g["group"] * g["out_per_group"], g["in_per_group"], *g["kernel"]), seed + 1)
    bias = _random((g["group"] * g["out_per_group"],), seed + 2)
    return x, w, bias


def _conv_output_fits(g) -> bool:
    return all(
        g["size"][a] + g["pads"][a] + g["pads"][a + 2]
        >= g["dilations"][a] * (g["kernel"][a] - 1) + 1
        for a in range(2)
    )


@GEOMETRY_SETTINGS
@given(conv_geometries())
def test_conv2d_matches_onnx_reference(geometry):
    assume(_conv_output_fits(geometry))
    x, w, bias = _conv_operands(geometry)
    g = geometry
    y = kernels.conv2d(x, w, g["strides"], g["pads"], g["dilations"], g["group"], bias=bias)
    expected = onnx_reference(
        "Conv",
        [x, w, bias],
        strides=list(g["strides"]),
        pads=list(g["pads"]),
        dilations=list(g["dilations"]),
        group=g["group"],
        kernel_shape=list(g["kernel"]),
    )
    np.testing.assert_allclose(y, expected, **FLOAT_TOLERANCE)


@GEOMETRY_SETTINGS
@given(conv_geometries(), st.data())
def test_conv_transpose2d_matches_onnxruntime(geometry, data):
    g = geometry
    output_padding = tuple(data.draw(st.integers(0, g["strides"][a] - 1)) for a in range(2))
    full = [
        g["strides"][a] * (g["size"][a] - 1)
        + output_padding[a]
        + g["dilations"][a] * (g["kernel"][a] - 1)
        + 1
        for a in range(2)
    ]
    assume(all(full[a] > g["pads"][a] + g["pads"][a + 2] for a in range(2)))
    x, w, bias = _conv_operands(g, transpose=True)
    y = kernels.conv_transpose2d(
        x, w, g["strides"], g["pads"], g["dilations"], output_padding, g["group"], bias=bias
    )
    expected = onnxruntime_reference(
        "ConvTranspose",
        [x, w, bias],
        strides=list(g["strides"]),
        pads=list(g["pads"]),
        dilations=list(g["dilations"]),
        output_padding=list(output_padding),
        group=g["group"],
        kernel_shape=list(g["kernel"]),
    )
    np.testing.assert_allclose(y, expected, **FLOAT_TOLERANCE)


def test_conv_transpose2d_matches_onnx_reference_ungrouped():
    x, w = _random((2, 3, 5, 4)), _random((3, 2, 3, 2), 7)
    y = kernels.conv_transpose2d(x, w, (2, 3), (1, 0, 0, 2), (1, 2), (1, 2))
    expected = onnx_reference(
        "ConvTranspose",
        [x, w],
        strides=[2, 3],
        pads=[1, 0, 0, 2],
        dilations=[1, 2],
        output_padding=[1, 2],
    )
    np.testing.assert_allclose(y, expected, **FLOAT_TOLERANCE)


def test_conv2d_float64_accumulation_is_closer_to_exact():
    x, w = _random((1, 32, 10, 10)), _random((16, 32, 3, 3), 5)
    exact = kernels.conv2d(x.astype(np.float64), w.astype(np.float64), accumulate_dtype=np.float64)
    single = kernels.conv2d(x, w)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, exact, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- exact integer


def _int8(shape, seed, low=-128):
    return np.random.default_rng(seed).integers(low, 128, shape).astype(np.int8)


def _int64_conv_reference(x, w, strides, pads, dilations, group, pad_value):
    """Direct-form convolution in int64, one vectorised multiply-add per tap and group."""
    x = np.pad(
        x.astype(np.int64),
        ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
        constant_values=pad_value,
    )
    w = w.astype(np.int64)
    out_channels, group_channels, kh, kw = w.shape
    out_h = (x.shape[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    out_w = (x.shape[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((x.shape[0], out_channels, out_h, out_w), np.int64)
    group_out = out_channels // group
    for g in range(group):
        xg = x[:, g * group_channels : (g + 1) * group_channels]
        wg = w[g * group_out : (g + 1) * group_out]
        for i in range(kh):
            for j in range(kw):
                top, left = i * dilations[0], j * dilations[1]
                patch = xg[
                    :,
                    :,
                    top : top + strides[0] * (out_h - 1) + 1 : strides[0],
                    left : left + strides[1] * (out_w - 1) + 1 : strides[1],
                ]
                out[:, g * group_out : (g + 1) * group_out] += np.einsum(
                    "nchw,oc->nohw", patch, wg[:, :, i, j]
                )
    return out


@settings(max_examples=60, deadline=None)
@given(conv_geometries(), st.integers(-128, 127), st.integers(0, 2**16))
def test_conv2d_exact_integer_is_bit_exact(geometry, zero_point, seed):
    assume(_conv_output_fits(geometry))
    g = geometry
    channels = g["group"] * g["in_per_group"]
    x = _int8((g["batch"], channels, *g["size"]), seed)
    w = _int8((g["group"] * g["out_per_group"], g["in_per_group"], *g["kernel"]), seed + 1, -127)
    bias = np.random.default_rng(seed).integers(-(2**20), 2**20, w.shape[0]).astype(np.int32)
    y = kernels.conv2d(
        x,
        w,
        g["strides"],
        g["pads"],
        g["dilations"],
        g["group"],
        bias=bias,
        exact_integer=True,
        pad_value=zero_point,
    )
    expected = _int64_conv_reference(
        x, w, g["strides"], g["pads"], g["dilations"], g["group"], zero_point
    ) + bias.reshape(1, -1, 1, 1)
    assert y.dtype == np.int32  # int8 operands and a 2**20 bias bound every sum below 2**31
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("group", [1, 2])
def test_conv2d_exact_integer_beyond_int32_stays_int64(group):
    """A bias near 2**31 lets the sums pass int32: the result must widen, not wrap."""
    x = np.full((1, 2, 4, 4), 127, np.int16)
    w = np.full((2, 2 // group, 3, 3), 127, np.int8)
    bias = np.array([2**31 - 1000, -(2**31) + 1000], np.int64)
    y = kernels.conv2d(x, w, pads=(1, 1, 1, 1), group=group, bias=bias, exact_integer=True)
    expected = _int64_conv_reference(x, w, (1, 1), (1, 1, 1, 1), (1, 1), group, 0)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, expected + bias.reshape(1, -1, 1, 1))


def test_conv2d_exact_integer_at_int8_extremes_and_deep_k():
    """K = 4608 taps of (-128) * (-127): far beyond float32's exact range, exact in float64."""
    x = np.full((1, 512, 3, 3), -128, np.int8)
    w = np.full((2, 512, 3, 3), -127, np.int8)
    y = kernels.conv2d(x, w, exact_integer=True)
    np.testing.assert_array_equal(y, np.full((1, 2, 1, 1), 512 * 9 * 128 * 127, np.int64))


def _int64_conv_transpose_reference(x, w, strides, pads, dilations, output_padding, group):
    """ConvTranspose as the convolution of the zero-upsampled input with the flipped kernel."""
    n, channels, height, width = x.shape
    _, group_out, kh, kw = w.shape
    upsampled = np.zeros(
        (n, channels, strides[0] * (height - 1) + 1, strides[1] * (width - 1) + 1), np.int64
    )
    upsampled[:, :, :: strides[0], :: strides[1]] = x
    flipped = (
        w[:, :, ::-1, ::-1]
        .reshape(group, channels // group, group_out, kh, kw)
        .transpose(0, 2, 1, 3, 4)
        .reshape(group * group_out, channels // group, kh, kw)
    )
    reach = (dilations[0] * (kh - 1), dilations[1] * (kw - 1))
    conv_pads = (
        reach[0] - pads[0],
        reach[1] - pads[1],
        reach[0] - pads[2] + output_padding[0],
        reach[1] - pads[3] + output_padding[1],
    )
    assert min(conv_pads) >= 0, "pick pads within the kernel reach"
    return _int64_conv_reference(upsampled, flipped, (1, 1), conv_pads, dilations, group, 0)


@pytest.mark.parametrize(
    "strides, pads, dilations, output_padding, group",
    [
        ((2, 2), (1, 1, 0, 0), (1, 1), (1, 0), 2),
        ((1, 3), (0, 2, 1, 0), (2, 1), (0, 2), 1),
        ((3, 1), (2, 0, 2, 1), (1, 2), (1, 0), 4),
    ],
)
def test_conv_transpose2d_exact_integer_is_bit_exact(
    strides, pads, dilations, output_padding, group
):
    x, w = _int8((2, 4, 5, 6), 11), _int8((4, 3, 3, 3), 12, -127)
    bias = np.arange(3 * group, dtype=np.int32) * 1000
    y = kernels.conv_transpose2d(
        x, w, strides, pads, dilations, output_padding, group, bias=bias, exact_integer=True
    )
    expected = _int64_conv_transpose_reference(
        x, w, strides, pads, dilations, output_padding, group
    ) + bias.reshape(1, -1, 1, 1)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, expected)


def test_exact_int_matmul_and_dense_equal_int64_numpy():
    a, b = _int8((3, 7, 300), 21), _int8((3, 300, 5), 22, -127)
    np.testing.assert_array_equal(
        kernels.exact_int_matmul(a, b), np.matmul(a.astype(np.int64), b.astype(np.int64))
    )
    x, w = _int8((4, 300), 23), _int8((9, 300), 24, -127)
    bias = np.arange(9, dtype=np.int32) - 4
    expected = x.astype(np.int64) @ w.astype(np.int64).T + bias
    np.testing.assert_array_equal(kernels.dense(x, w, bias, exact_integer=True), expected)
    np.testing.assert_array_equal(kernels.matmul(x, w.T, exact_integer=True), expected - bias)


@pytest.mark.parametrize(
    "magnitude, depth",
    [
        (127, 1),  # one float32 chunk
        (255, 4608),  # several float32 chunks of ~516 terms, summed in int64
        (2**11 + 1, 3),  # one term per chunk: 2**22 * 3 > 2**24
        (2**12 + 1, 5),  # a single term exceeds 2**24: float64
    ],
)
def test_exact_int_matmul_is_exact_at_every_chunking(magnitude, depth):
    """Worst-case sums (every term the largest product, one sign) at each chunking regime."""
    rng = np.random.default_rng(depth)
    a = np.full((3, depth), magnitude, np.int32)
    a[1] = -magnitude
    a[2] = rng.integers(-magnitude, magnitude + 1, depth)
    b = np.full((depth, 2), magnitude, np.int32)
    b[:, 1] = rng.integers(-magnitude, magnitude + 1, depth)
    np.testing.assert_array_equal(
        kernels.exact_int_matmul(a, b), a.astype(np.int64) @ b.astype(np.int64)
    )


@pytest.mark.parametrize(
    "magnitude, depth, dtype",
    [(255, 4608, np.int32), (2**12 + 1, 5, np.int32), (2**12 + 1, 200, np.int64)],
)
def test_exact_bounded_matmul_of_float32_operands(magnitude, depth, dtype):
    """The simulator's GEMM: float32 operands holding integers and the caller's bound give
    the exact product at every chunking (float32 chunks; float64 for a too-large term), in
    int32 when the bound keeps it there (255**2 * 4608 < 2**31 < 4097**2 * 200)."""
    rng = np.random.default_rng(depth)
    a = rng.integers(-magnitude, magnitude + 1, (4, depth))
    a[0] = magnitude
    b = rng.integers(-magnitude, magnitude + 1, (depth, 3))
    b[:, 0] = magnitude
    product = kernels.exact_bounded_matmul(
        a.astype(np.float32), b.astype(np.float32), magnitude * magnitude
    )
    assert product.dtype == dtype
    np.testing.assert_array_equal(product, a @ b)
    offset = np.array([2**31 - 1, 0, -(2**31)], np.int64)  # the bias: int64 whatever the bound
    with_offset = kernels.exact_bounded_matmul(
        a.astype(np.float32), b.astype(np.float32), magnitude * magnitude, offset
    )
    assert with_offset.dtype == np.int64
    np.testing.assert_array_equal(with_offset, a @ b + offset)
    with pytest.raises(ValueError, match="2\\*\\*53"):
        kernels.exact_bounded_matmul(a[:, :1], b[:1], 2**53)


def test_exact_integer_refuses_inexact_inputs():
    big = np.full((1, 4096), 2**21, np.int32)  # 2**12 * 2**21 * 2**21 = 2**54
    with pytest.raises(ValueError, match="2\\*\\*53"):
        kernels.exact_int_matmul(big, big.T)
    with pytest.raises(TypeError, match="integer operands"):
        kernels.exact_int_matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.int8))
    with pytest.raises(TypeError, match="integer bias"):
        kernels.dense(
            _int8((2, 3), 1), _int8((4, 3), 2), np.zeros(4, np.float32), exact_integer=True
        )


def test_exact_bound_is_depth_times_largest_product_plus_bias():
    """The exactness bound at its edge: depth * max|a| * max|b| + max|bias| below 2**53
    passes, 2**53 itself is refused (it is representable, but the next sum may round)."""
    big = np.array([[2**26]], np.int64)  # one product: 2**52
    assert kernels.check_exact_integer_depth(big, big, 1) == 2**52
    assert kernels.check_exact_integer_depth(big, big, 1, np.array([2**52 - 1])) == 2**52
    with pytest.raises(ValueError, match="could reach 9007199254740992 >= 2\\*\\*53"):
        kernels.check_exact_integer_depth(big, big, 1, np.array([2**52]))
    with pytest.raises(ValueError, match="float64 accumulation would round$"):
        kernels.check_exact_integer_depth(big, big, 2)
    one = np.ones((1, 1), np.int64)
    assert kernels.check_exact_integer_depth(np.array([[2**53 - 1]]), one, 1) == 2**53 - 1
    # an empty operand has no products: its magnitude is 0, not 1
    empty = np.zeros((0, 2), np.int64)
    assert kernels.check_exact_integer_depth(empty, np.full((2, 1), 2**52), 2) == 0


def test_exact_conv_bound_counts_channels_kernel_taps_and_bias():
    """The exact conv's depth is C * kh * kw of the weight (each axis once) and its bias
    counts: at one product of 2**50, 1x2 taps of 2 channels (depth 4) reach 2**52 and
    compute; 8 channels of 1x1 (depth 8) reach 2**53 and are refused, as is depth 4 plus a
    bias of 2**52."""
    big = 2**25
    x = np.full((1, 2, 1, 2), big, np.int64)
    w = np.full((1, 2, 1, 2), big, np.int64)
    assert kernels.conv2d(x, w, exact_integer=True).tolist() == [[[[2**52]]]]
    with pytest.raises(ValueError, match="2\\*\\*53"):
        kernels.conv2d(x, w, exact_integer=True, bias=np.array([2**52]))
    x8 = np.full((1, 8, 1, 1), big, np.int64)
    with pytest.raises(ValueError, match="2\\*\\*53"):
        kernels.conv2d(x8, np.full((1, 8, 1, 1), big, np.int64), exact_integer=True)
    with pytest.raises(TypeError, match="^exact integer kernels need an integer bias, got f"):
        kernels.conv2d(x, w, exact_integer=True, bias=np.zeros(1, np.float32))


def test_exact_gemm_names_the_operand_that_is_not_integer():
    ints = np.ones((2, 2), np.int8)
    with pytest.raises(TypeError, match="integer operands, lhs is float32$"):
        kernels.check_exact_integer_depth(np.ones((2, 2), np.float32), ints, 2)
    with pytest.raises(TypeError, match="integer operands, rhs is float64$"):
        kernels.check_exact_integer_depth(ints, np.ones((2, 2)), 2)


def test_exact_matmul_depth_is_the_last_axis_of_a_batched_lhs():
    """A [1, 8, 4] lhs has depth 4: 4 * 2**50 = 2**52 is exact (the 8 rows do not count)."""
    a = np.full((1, 8, 4), 2**25, np.int64)
    b = np.full((4, 1), 2**25, np.int64)
    np.testing.assert_array_equal(kernels.exact_int_matmul(a, b), np.full((1, 8, 1), 2**52))
    bounded = kernels.exact_bounded_matmul(a.astype(np.float64), b.astype(np.float64), 2**50)
    np.testing.assert_array_equal(bounded, np.full((1, 8, 1), 2**52))


def test_exact_matmul_splits_float32_sums_before_2_to_the_24():
    """2**24 + 1 unit products: float32 cannot hold the sum (it is odd and above 2**24), so
    the reduction is split into chunks of at most 2**24 - 1 terms added in integers (int32
    here: the bound, 2**24 + 1, is below 2**31)."""
    depth = 2**24 + 1
    a = np.ones((1, depth), np.float32)
    product = kernels.exact_bounded_matmul(a, a.T, 1)
    assert product.dtype == np.int32 and product.tolist() == [[depth]]


def test_exact_conv_splits_float32_sums_before_2_to_the_24():
    """65 channels x 3x3 taps of 255 * 127 = 32385 (odd): the sum, 585 * 32385 = 18945225,
    is odd and above 2**24, so one float32 GEMM cannot hold it; chunks of 518 terms can."""
    x = np.full((1, 65, 3, 3), 255, np.int16)
    w = np.full((1, 65, 3, 3), 127, np.int8)
    y = kernels.conv2d(x, w, exact_integer=True)
    assert y.dtype == np.int32 and y.tolist() == [[[[18945225]]]]


def test_exact_gemm_result_is_int32_exactly_while_the_bound_is_below_2_to_the_31():
    """Without a bias the bound is depth x largest product alone: 2**31 - 1 gives int32,
    2**31 int64; and 2**53 - 1 is still exact (float64), 2**53 refused."""
    one = np.ones((1, 1))
    top = kernels.exact_bounded_matmul(np.array([[2.0**31 - 1]]), one, 2**31 - 1)
    assert top.dtype == np.int32 and top.tolist() == [[2**31 - 1]]
    beyond = kernels.exact_bounded_matmul(np.array([[2.0**31]]), one, 2**31)
    assert beyond.dtype == np.int64 and beyond.tolist() == [[2**31]]
    assert kernels.exact_bounded_matmul(one, one, 2**53 - 1).tolist() == [[1]]
    with pytest.raises(ValueError, match="could reach 9007199254740992 >= 2\\*\\*53"):
        kernels.exact_bounded_matmul(one, one, 2**53)
    conv = kernels.conv2d(
        np.full((1, 1, 1, 1), 2**31 - 1), np.ones((1, 1, 1, 1), np.int64), exact_integer=True
    )
    assert conv.dtype == np.int32 and conv.tolist() == [[[[2**31 - 1]]]]


def test_exact_depthwise_conv_sums_in_float64_past_float32_integers():
    """Depthwise taps of (2**11 + 1)**2 = 4198401: nine of them sum to 37785609 > 2**24, odd,
    which float32 would round; the exact conv picks float64 for them (and int32 for the
    result: the bound, 9 * 4198401 + 1, is below 2**31)."""
    x = np.full((1, 2, 3, 3), 2**11 + 1, np.int32)
    w = np.full((2, 1, 3, 3), 2**11 + 1, np.int32)
    w[1] = -w[1]
    y = kernels.conv2d(x, w, group=2, exact_integer=True, bias=np.array([0, 1]))
    assert y.dtype == np.int32 and y.reshape(-1).tolist() == [37785609, -37785608]


@pytest.mark.parametrize(
    "largest, terms",
    [(1, 2**24 - 1), (2, 2**23 - 1), (3, 5592405), (127 * 128, 1032), (2**14, 1023),
     (2**24 - 1, 1), (2**24, 0), (2**30, 0)],
)  # fmt: skip
def test_exact_gemm_uses_float32_for_every_sum_it_holds_and_only_those(largest, terms):
    """The speed side of the exactness rule: float32 chunks are as long as float32 holds
    every partial sum below 2**24 (`terms` x `largest` < 2**24 <= one more term), and the
    dtypes switch to float64 exactly where float32 would round. Hand-worked counts: int8 x
    int8 products of at most 127 x 128 run 1032 terms per float32 GEMM; a product of 2**24
    fits no float32 sum."""
    assert kernels._float32_exact_terms(largest) == terms
    assert terms * largest < kernels.FLOAT32_EXACT_LIMIT <= (terms + 1) * largest
    assert kernels._exact_gemm_dtype(terms) == (np.float32 if terms else np.float64)
    if terms:
        assert kernels.elementwise_exact_dtype(largest, terms) == np.float32
    assert kernels.elementwise_exact_dtype(largest, terms + 1) == np.float64


# --------------------------------------------------------------------------- pooling


@st.composite
def pool_geometries(draw):
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    pads = draw(st.tuples(*[st.integers(0, kernel[a % 2] - 1) for a in range(4)]))
    return {
        "kernel": kernel,
        "pads": pads,
        "strides": draw(st.tuples(st.integers(1, 3), st.integers(1, 3))),
        "dilations": draw(st.tuples(st.integers(1, 2), st.integers(1, 2))),
        "ceil_mode": draw(st.booleans()),
        "size": draw(st.tuples(st.integers(1, 8), st.integers(1, 8))),
    }


def _pool_attributes(g, dilations=True):
    attributes = {
        "kernel_shape": list(g["kernel"]),
        "strides": list(g["strides"]),
        "pads": list(g["pads"]),
        "ceil_mode": int(g["ceil_mode"]),
    }
    if dilations:
        attributes["dilations"] = list(g["dilations"])
    return attributes


def _pool_fits(g, dilations) -> bool:
    """The window fits the padded input (in ceil mode it may reach `stride - 1` further)."""
    reach = [g["strides"][a] - 1 if g["ceil_mode"] else 0 for a in range(2)]
    return all(
        g["size"][a] + g["pads"][a] + g["pads"][a + 2] + reach[a]
        >= dilations[a] * (g["kernel"][a] - 1) + 1
        for a in range(2)
    )


@GEOMETRY_SETTINGS
@given(pool_geometries())
def test_max_pool2d_matches_onnxruntime(geometry):
    g = geometry
    assume(_pool_fits(g, g["dilations"]))
    x = _random((1, 3, *g["size"]))
    y = kernels.max_pool2d(x, g["kernel"], g["strides"], g["pads"], g["dilations"], g["ceil_mode"])
    np.testing.assert_array_equal(y, onnxruntime_reference("MaxPool", [x], **_pool_attributes(g)))


@GEOMETRY_SETTINGS
@given(pool_geometries(), st.booleans())
def test_avg_pool2d_matches_onnxruntime(geometry, count_include_pad):
    g = geometry
    assume(_pool_fits(g, (1, 1)))
    x = _random((1, 3, *g["size"]))
    y = kernels.avg_pool2d(
        x, g["kernel"], g["strides"], g["pads"], (1, 1), g["ceil_mode"], count_include_pad
    )
    expected = onnxruntime_reference(
        "AveragePool",
        [x],
        **_pool_attributes(g, dilations=False),
        count_include_pad=int(count_include_pad),
    )
    np.testing.assert_allclose(y, expected, **FLOAT_TOLERANCE)


POOL_REFERENCE_CASES = [
    # kernel, strides, pads, dilations, ceil_mode
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False),
    ((3, 2), (2, 2), (1, 0, 1, 1), (1, 1), True),
    ((2, 2), (1, 2), (0, 0, 1, 0), (2, 1), True),
    ((1, 3), (2, 1), (0, 1, 0, 1), (1, 2), False),
]


@pytest.mark.parametrize("kernel, strides, pads, dilations, ceil_mode", POOL_REFERENCE_CASES)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_pools_match_onnx_reference(kernel, strides, pads, dilations, ceil_mode, count_include_pad):
    x = _random((2, 2, 7, 6))
    attributes = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "ceil_mode": int(ceil_mode),
    }
    np.testing.assert_array_equal(
        kernels.max_pool2d(x, kernel, strides, pads, dilations, ceil_mode),
        onnx_reference("MaxPool", [x], **attributes),
    )
    np.testing.assert_allclose(
        kernels.avg_pool2d(x, kernel, strides, pads, dilations, ceil_mode, count_include_pad),
        onnx_reference("AveragePool", [x], **attributes, count_include_pad=int(count_include_pad)),
        **FLOAT_TOLERANCE,
    )


def test_max_pool2d_keeps_integer_dtype():
    x = _int8((1, 2, 5, 5), 3)
    y = kernels.max_pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1))
    assert y.dtype == np.int8
    np.testing.assert_array_equal(
        y, kernels.max_pool2d(x.astype(np.float32), (3, 3), (2, 2), (1, 1, 1, 1))
    )


@pytest.mark.parametrize("kind, op_type", [("avg", "GlobalAveragePool"), ("max", "GlobalMaxPool")])
@pytest.mark.parametrize(
    "shape, reference",
    [
        ((2, 3, 5, 4), onnx_reference),
        ((1, 4, 7), onnxruntime_reference),
        ((1, 2, 3, 4, 5), onnxruntime_reference),
    ],
)
def test_global_pool_matches_onnx(kind, op_type, shape, reference):
    x = _random(shape)
    np.testing.assert_allclose(
        kernels.global_pool(x, kind), reference(op_type, [x]), **FLOAT_TOLERANCE
    )


# --------------------------------------------------------------------------- resize

RESIZE_SCALES = [
    (1.0, 1.0, 2.0, 3.0),
    (1.0, 1.0, 0.5, 0.75),
    (1.0, 1.0, 1.7, 0.6),
    (1.0, 2.0, 1.0, 1.0),
]
TRANSFORMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
ROUNDINGS = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def _onnx_resize(x, scales, **attributes):
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], **attributes)
    evaluator = ReferenceEvaluator(node)
    return evaluator.run(None, {"x": x, "scales": np.asarray(scales, np.float32)})[0]


@pytest.mark.parametrize("scales", RESIZE_SCALES)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_resize_nearest_matches_onnx_reference(scales, transform, rounding):
    x = _random((1, 2, 5, 4))
    scales = np.asarray(scales, np.float32).astype(np.float64).tolist()  # as ONNX stores them
    y = kernels.resize(x, "nearest", scales, transform, rounding)
    expected = _onnx_resize(
        x, scales, mode="nearest", coordinate_transformation_mode=transform, nearest_mode=rounding
    )
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("scales", RESIZE_SCALES)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_resize_linear_matches_onnx_reference(scales, transform):
    x = _random((1, 2, 5, 4))
    scales = np.asarray(scales, np.float32).astype(np.float64).tolist()
    y = kernels.resize(x, "linear", scales, transform)
    expected = _onnx_resize(x, scales, mode="linear", coordinate_transformation_mode=transform)
    np.testing.assert_allclose(y, expected, **FLOAT_TOLERANCE)


# --------------------------------------------------------------------------- pad, gemm


def _onnxruntime_pad(x, pads, mode, value):
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode=mode)],
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            helper.make_tensor("pads", TensorProto.INT64, [len(pads)], pads),
            helper.make_tensor("value", TensorProto.FLOAT, [], [value]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_matches_onnx_reference(mode):
    x, pads = _random((2, 3, 4, 5)), (0, 1, 2, 0, 0, 2, 1, 1)
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode=mode)
    expected = ReferenceEvaluator(node).run(
        None, {"x": x, "pads": np.asarray(pads, np.int64), "value": np.float32(1.5)}
    )[0]
    np.testing.assert_array_equal(kernels.pad(x, pads, mode, 1.5), expected)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_negative_pads_crop_like_onnxruntime(mode):
    x, pads = _random((2, 3, 4, 5)), (1, 0, -1, 2, 0, 1, 2, -2)
    np.testing.assert_array_equal(
        kernels.pad(x, pads, mode, 1.5), _onnxruntime_pad(x, pads, mode, 1.5)
    )


@pytest.mark.parametrize(
    "shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 6)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 3))]
)
def test_matmul_matches_onnx_reference(shapes):
    a, b = _random(shapes[0]), _random(shapes[1], 9)
    np.testing.assert_allclose(
        kernels.matmul(a, b), onnx_reference("MatMul", [a, b]), **FLOAT_TOLERANCE
    )


def test_dense_matches_onnx_gemm():
    x, w, bias = _random((3, 10)), _random((7, 10), 2), _random((7,), 3)
    np.testing.assert_allclose(
        kernels.dense(x, w, bias), onnx_reference("Gemm", [x, w, bias], transB=1), **FLOAT_TOLERANCE
    )


# --------------------------------------------------------------------------- kernel table

_NOT_FLOAT_COMPUTE = {
    axq.ConstantOp,
    axq.HostOp,
    axq.QuantizeOp,
    axq.DequantizeOp,
    axq.RequantizeOp,
}


def test_every_float_compute_op_has_a_kernel():
    assert set(FLOAT_KERNELS) == set(axq.Axq.operations) - _NOT_FLOAT_COMPUTE


def _arguments(*shapes):
    return Block(arg_types=[tensor_type(shape, f32) for shape in shapes]).args


def _run(op, *inputs):
    return FLOAT_KERNELS[type(op)](op, inputs)


def test_lut_kernel_evaluates_parameterised_functions():
    (x_value,) = _arguments((2, 5))
    x = np.linspace(-3, 3, 10, dtype=np.float32).reshape(2, 5)
    leaky = axq.LutOp(x_value, x_value.type, axq.UnaryFunction.LEAKYRELU, {"alpha": 0.25})
    (y,) = _run(leaky, x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, onnx_reference("LeakyRelu", [x], alpha=0.25), rtol=1e-6)
    hard = axq.LutOp(
        x_value, x_value.type, axq.UnaryFunction.HARDSIGMOID, {"alpha": 0.3, "beta": 0.4}
    )
    np.testing.assert_allclose(
        _run(hard, x)[0], onnx_reference("HardSigmoid", [x], alpha=0.3, beta=0.4), rtol=1e-6
    )


def test_window_kernels_read_ceil_mode_and_count_include_pad():
    (x_value,) = _arguments((1, 1, 5, 5))
    x = _random((1, 1, 5, 5))
    result_type = tensor_type((1, 1, 3, 3), f32)
    pool = axq.AvgPoolOp(
        x_value, result_type, (2, 2), (2, 2), (0, 0, 0, 0), ceil_mode=True, count_include_pad=True
    )
    (y,) = _run(pool, x)
    np.testing.assert_allclose(
        y,
        onnx_reference(
            "AveragePool",
            [x],
            kernel_shape=[2, 2],
            strides=[2, 2],
            ceil_mode=1,
            count_include_pad=1,
        ),
        **FLOAT_TOLERANCE,
    )


def test_split_and_conv_kernels_follow_the_op():
    x_value, w_value, b_value = _arguments((1, 4, 6, 6), (6, 2, 3, 3), (6,))
    conv = axq.Conv2dOp(
        x_value,
        w_value,
        b_value,
        tensor_type((1, 6, 3, 3), f32),
        strides=(2, 2),
        pads=(1, 1, 0, 0),
        group=2,
    )
    x, w, bias = _random((1, 4, 6, 6)), _random((6, 2, 3, 3), 2), _random((6,), 3)
    (y,) = _run(conv, x, w, bias)
    np.testing.assert_allclose(
        y,
        onnx_reference("Conv", [x, w, bias], strides=[2, 2], pads=[1, 1, 0, 0], group=2),
        **FLOAT_TOLERANCE,
    )
    split = axq.SplitOp(
        conv.result, [tensor_type((1, 2, 3, 3), f32), tensor_type((1, 4, 3, 3), f32)], axis=1
    )
    first, second = _run(split, y)
    np.testing.assert_array_equal(first, y[:, :2])
    np.testing.assert_array_equal(second, y[:, 2:])
