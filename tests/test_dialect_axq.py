"""The axq dialect: Python-built graphs round-trip through text, and every verifier rule fires.

The importer, the quantizer and the integer reference rely on these rules, so each one is
checked here with the message a compiler engineer reads (filecheck/dialects/axq_verify.mlir
shows a representative set as xdsl-opt prints them).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    Builtin,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    VectorType,
    f16,
    f32,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from aipuc.dialects import axq
from aipuc.dialects.axq import QuantizedType
from aipuc.dialects.resources import ResourceAttr
from aipuc.dialects.tensors import dense_from_numpy, numpy_from_dense


def make_context() -> Context:
    ctx = Context()
    for dialect in (Builtin, func.Func, axq.Axq):
        ctx.load_dialect(dialect)
    return ctx


CONTEXT = make_context()


def parse(text: str) -> ModuleOp:
    return Parser(CONTEXT, text).parse_module()


def parse_attribute(text: str) -> Attribute:
    return Parser(CONTEXT, text).parse_attribute()


def generic(op: Operation) -> str:
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=True).print_op(op)
    return stream.getvalue()


def tensor(shape, element: Attribute = f32) -> TensorType:
    return TensorType(element, list(shape))


def q(scale: float = 0.1, zero_point: int = 0, storage: IntegerType = i8) -> QuantizedType:
    return QuantizedType.per_tensor(storage, scale, zero_point)


def qa(scales, axis: int, zero_points=None, storage: IntegerType = i8) -> QuantizedType:
    zero_points = [0] * len(scales) if zero_points is None else zero_points
    return QuantizedType(storage, scales, zero_points, axis)


def values(*types: Attribute) -> list[SSAValue]:
    """Free SSA values of the given types (arguments of a detached block)."""
    return list(Block(arg_types=types).args)


# ---------------------------------------------------------------------------- round trips

X = (1, 4, 8, 8)
QX = q(0.02, -3)
QC = qa([0.01, 0.02, 0.03, 0.04], 1, [0, 1, -1, 5])
W_SCALES = np.array([0.1, 0.2, 0.3, 0.4])


class GraphBuilder:
    """Appends ops to one block; `add` returns the op's result (or results)."""

    def __init__(self, arg_types: list[Attribute]):
        self.block = Block(arg_types=arg_types)

    def add(self, op: Operation):
        self.block.add_op(op)
        return op.results[0] if len(op.results) == 1 else op.results

    def constant(self, array: np.ndarray, element: Attribute | None = None) -> SSAValue:
        """A constant of `array`; with a quantized `element`, `array` holds its codes."""
        if isinstance(element, QuantizedType):
            return self.add(
                axq.ConstantOp(
                    dense_from_numpy(array, element.storage), tensor(array.shape, element)
                )
            )
        return self.add(axq.ConstantOp(dense_from_numpy(array)))


def weighted_constants(
    graph: GraphBuilder, weight_shape, weight_type: QuantizedType, bias_scales
) -> tuple[SSAValue, SSAValue]:
    """Random i8 weights of `weight_type` and an i32 bias (zero point 0) at `bias_scales`."""
    rng = np.random.default_rng(sum(weight_shape))
    weight = graph.constant(rng.integers(-127, 128, weight_shape).astype(np.int8), weight_type)
    bias_type = qa(bias_scales, 0, storage=i32)
    bias = graph.constant(rng.integers(-500, 500, len(bias_scales)).astype(np.int32), bias_type)
    return weight, bias


def build_float_ops(graph: GraphBuilder, x: SSAValue, y: SSAValue) -> list[SSAValue]:
    """Every compute op on f32 tensors, plus host ops reading i64 and i1 constants."""
    add = graph.add
    w = graph.constant(np.arange(16, dtype=np.float32).reshape(4, 4, 1, 1) / 8)
    b = graph.constant(np.array([0.5, -0.25, 0.0, 1e-20], np.float32))
    conv = add(axq.Conv2dOp(x, w, b, tensor(X)))
    wt = graph.constant(np.full((4, 2, 2, 2), 0.125, np.float32))
    bt = graph.constant(np.zeros(2, np.float32))
    up = add(axq.ConvTranspose2dOp(conv, wt, bt, tensor((1, 2, 16, 16)), strides=(2, 2)))
    flat = add(axq.ReshapeOp(conv, tensor((1, 256))))
    wd = graph.constant(np.linspace(-1, 1, 2560, dtype=np.float32).reshape(10, 256))
    bd = graph.constant(np.full(10, 0.1, np.float32))
    logits = add(axq.DenseOp(flat, wd, bd, tensor((1, 10))))
    gap = add(axq.GlobalPoolOp(x, tensor((1, 4, 1, 1)), axq.PoolKind.AVG))
    results = [
        up,
        logits,
        add(axq.AddOp(x, y, tensor(X))),
        add(axq.SubOp(x, gap, tensor(X))),
        add(axq.MulOp(x, y, tensor(X))),
        add(axq.PReluOp(x, gap, tensor(X))),
        add(axq.MaxOp(x, gap, tensor(X))),
        add(axq.MinOp(x, y, tensor(X))),
        add(axq.MatMulOp(x, y, tensor(X))),
        add(
            axq.LayerNormOp(
                x,
                graph.constant(np.ones(8, np.float32)),
                graph.constant(np.zeros(8, np.float32)),
                tensor(X),
                3,
                1e-5,
            )
        ),
        add(axq.LutOp(x, tensor(X), axq.UnaryFunction.HARDSIGMOID, {"alpha": 0.2, "beta": 0.5})),
        add(axq.ClipOp(x, tensor(X), 0.0, float("inf"))),
        add(axq.SoftmaxOp(x, tensor(X), -1)),
        add(axq.TransposeOp(x, tensor((1, 8, 8, 4)), (0, 2, 3, 1))),
        add(
            axq.PadOp(x, tensor((1, 4, 10, 9)), (0, 0, 1, 0, 0, 0, 1, 1), 0.5, axq.PadMode.REFLECT)
        ),
        add(axq.SliceOp(x, tensor((1, 4, 4, 8)), (0, 7), (8, -9), (2, 3), (2, -1))),
        add(axq.MaxPoolOp(x, tensor((1, 4, 4, 4)), (2, 2), (2, 2), ceil_mode=True)),
        add(axq.AvgPoolOp(x, tensor(X), (3, 3), (1, 1), (1, 1, 1, 1), count_include_pad=True)),
        add(
            axq.ResizeOp(
                x,
                tensor((1, 4, 16, 16)),
                axq.ResizeMode.LINEAR,
                (1.0, 1.0, 2.0, 2.0),
                axq.CoordinateTransform.ALIGN_CORNERS,
            )
        ),
        add(axq.ConcatOp([x, y], tensor((1, 8, 8, 8)), 1)),
        *add(axq.SplitOp(x, [tensor((1, 1, 8, 8)), tensor((1, 3, 8, 8))], 1)),
    ]
    shape = graph.constant(np.array([1, -1], np.int64))
    results.append(add(axq.HostOp("Reshape", [x, shape], [tensor((1, 256))], {}, 18)))
    condition = graph.constant(np.array([True, False, False, True]).reshape(1, 4, 1, 1))
    results.append(
        add(
            axq.HostOp(
                "Where", [condition, x, y], [tensor(X)], {"note": StringAttr("i1 constant")}, 18, ""
            )
        )
    )
    return results


def build_quantized_ops(
    graph: GraphBuilder, x: SSAValue, xq: SSAValue, xc: SSAValue
) -> list[SSAValue]:
    """Every compute op on i8-quantized tensors, per tensor and per channel."""
    add = graph.add
    qy = q(0.05, 2)
    w, b = weighted_constants(graph, (4, 4, 3, 3), qa(W_SCALES, 0), 0.02 * W_SCALES)
    conv = add(axq.Conv2dOp(xq, w, b, tensor((1, 4, 6, 6), qy)))
    dw, db = weighted_constants(graph, (4, 1, 3, 3), q(0.5), QC.scale_array() * 0.5)
    depthwise = add(
        axq.Conv2dOp(xc, dw, db, tensor(X, qa([0.1, 0.2, 0.3, 0.4], 1)), pads=(1, 1, 1, 1), group=4)
    )
    wt, bt = weighted_constants(graph, (4, 2, 2, 2), qa([0.1, 0.2], 1), 0.02 * np.array([0.1, 0.2]))
    up = add(axq.ConvTranspose2dOp(xq, wt, bt, tensor((1, 2, 16, 16), qy), strides=(2, 2)))
    flat = add(axq.ReshapeOp(xq, tensor((1, 256), QX)))
    wd, bd = weighted_constants(
        graph, (10, 256), qa(np.full(10, 0.01), 0), np.full(10, 0.02 * 0.01)
    )
    logits = add(axq.DenseOp(flat, wd, bd, tensor((1, 10), qa(np.linspace(0.1, 1, 10), 1))))
    table = dense_from_numpy(np.arange(-128, 128).astype(np.int8)[::-1].copy())
    quantized = add(axq.QuantizeOp(x, tensor(X, QX)))
    return [
        conv,
        depthwise,
        up,
        logits,
        add(axq.AddOp(xq, quantized, tensor(X, qa(W_SCALES, 1)))),
        add(axq.SubOp(xq, quantized, tensor(X, qy))),
        add(axq.MulOp(xq, quantized, tensor(X, qy))),
        add(axq.PReluOp(xq, quantized, tensor(X, qy))),
        add(axq.MaxOp(xq, quantized, tensor(X, QX))),
        add(axq.MinOp(xq, xq, tensor(X, QX))),
        add(axq.MatMulOp(xq, quantized, tensor(X, qy))),
        add(
            axq.LayerNormOp(
                xq,
                graph.constant(np.linspace(0.5, 1.5, 256, dtype=np.float32).reshape(4, 8, 8)),
                graph.constant(np.zeros((4, 8, 8), np.float32)),
                tensor(X, qy),
                1,
                1e-6,
            )
        ),
        add(axq.LutOp(xq, tensor(X, q(1 / 256, -128)), axq.UnaryFunction.SIGMOID, table=table)),
        add(axq.ClipOp(xc, tensor(X, QC), 0.0, 6.0)),
        add(axq.SoftmaxOp(xq, tensor(X, q(1 / 256, -128)), 1)),
        add(axq.DequantizeOp(xc, tensor(X))),
        add(axq.RequantizeOp(xc, tensor(X, QX))),
        add(axq.TransposeOp(xq, tensor((1, 8, 4, 8), QX), (0, 2, 1, 3))),
        add(axq.PadOp(xc, tensor((1, 4, 9, 9), QC), (0, 0, 1, 1, 0, 0, 0, 0))),
        add(axq.SliceOp(xc, tensor((1, 4, 2, 8), QC), (1,), (7,), (2,), (3,))),
        add(axq.MaxPoolOp(xc, tensor((1, 4, 4, 4), QC), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1))),
        add(axq.AvgPoolOp(xc, tensor((1, 4, 4, 4), qy), (2, 2), (2, 2))),
        add(axq.GlobalPoolOp(xq, tensor((1, 4, 1, 1), qy), axq.PoolKind.AVG)),
        add(axq.GlobalPoolOp(xc, tensor((1, 4, 1, 1), QC), axq.PoolKind.MAX)),
        add(
            axq.ResizeOp(
                xc,
                tensor((1, 4, 16, 16), QC),
                axq.ResizeMode.NEAREST,
                (1.0, 1.0, 2.0, 2.0),
                axq.CoordinateTransform.ASYMMETRIC,
                axq.NearestRounding.FLOOR,
            )
        ),
        add(
            axq.ResizeOp(
                xq, tensor((1, 4, 16, 16), qy), axq.ResizeMode.LINEAR, (1.0, 1.0, 2.0, 2.0)
            )
        ),
        add(axq.ConcatOp([xq, quantized], tensor((1, 4, 16, 8), QX), 2)),
        *add(axq.SplitOp(xc, [tensor((1, 4, 8, 3), QC), tensor((1, 4, 8, 5), QC)], 3)),
    ]


def build_graph() -> ModuleOp:
    """A @main that uses every axq op, on f32 and on i8-quantized tensors."""
    graph = GraphBuilder([tensor(X), tensor(X), tensor(X, QX), tensor(X, QC)])
    x, y, xq, xc = graph.block.args
    for arg, name in zip(graph.block.args, ("x", "y", "xq", "xc"), strict=True):
        arg.name_hint = name
    results = [*build_float_ops(graph, x, y), *build_quantized_ops(graph, x, xq, xc)]
    graph.add(func.ReturnOp(*results))
    names = [DictionaryAttr({axq.NAME_ATTR: StringAttr(name)}) for name in ("x", "y", "xq", "xc")]
    main = func.FuncOp(
        "main",
        ([a.type for a in graph.block.args], [r.type for r in results]),
        Region(graph.block),
        arg_attrs=ArrayAttr(names),
    )
    return ModuleOp([main])


def test_round_trip_every_op_on_float_and_quantized_tensors():
    module = build_graph()
    module.verify()
    used = {type(op) for op in module.walk()}
    assert set(axq.Axq.operations) <= used
    quantized_users = {
        type(op)
        for op in module.walk()
        if any(axq.is_quantized(v) for v in (*op.operands, *op.results))
    }
    assert set(axq.Axq.operations) - quantized_users == {axq.HostOp}

    text = str(module)
    parsed = parse(text)
    parsed.verify()
    assert str(parsed) == text
    assert parsed.is_structurally_equivalent(module)

    generic_text = generic(module)
    from_generic = parse(generic_text)
    from_generic.verify()
    assert str(from_generic) == text
    assert generic(from_generic) == generic_text
    assert from_generic.is_structurally_equivalent(module)


def test_printed_forms():
    text = str(build_graph())
    for line in (
        'tensor<1x4x8x8x!axq.q<i8, 0.02:-3>> {axq.name = "xq"}',
        "tensor<4x!axq.q<i32, axis 0, [0.005:0, 0.01:0, 0.015:0, 0.02:0]>>",
        "axq.global_pool %x {kind = #axq<pool_kind avg>} : tensor<1x4x8x8xf32> -> "
        "tensor<1x4x1x1xf32>",
        "axq.dequantize %xc : tensor<1x4x8x8x!axq.q<i8, axis 1, [0.01:0, 0.02:1, 0.03:-1, "
        "0.04:5]>> -> tensor<1x4x8x8xf32>",
        "mode = #axq<pad_mode reflect>",
        "dense<[[[[true]], [[false]], [[false]], [[true]]]]> : tensor<1x4x1x1xi1>",
        'axq.host "Reshape"(%x, %',
    ):
        assert line in text, line


# Positive finite float64 scales, tiny to huge, with the reprs that need care: exponents
# without a decimal point (1e-05, 1e+20), subnormals, and the extremes.
SPECIAL_SCALES = [
    1e-05,
    1e20,
    5e-324,
    1e-310,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    0.1,
    1 / 3,
    0.0187,
    2.0**-40,
    1.0,
    123456789.0,
    1e16,
]
scales = st.one_of(
    st.sampled_from(SPECIAL_SCALES),
    st.floats(
        min_value=5e-324, max_value=1.7976931348623157e308, allow_nan=False, allow_infinity=False
    ),
)


@st.composite
def quantized_types(draw) -> QuantizedType:
    storage = draw(st.sampled_from([i8, i32]))
    low, high = -(2 ** (storage.width.data - 1)), 2 ** (storage.width.data - 1) - 1
    if draw(st.booleans()):
        return QuantizedType.per_tensor(storage, draw(scales), draw(st.integers(low, high)))
    count = draw(st.integers(1, 5))
    return QuantizedType(
        storage,
        draw(st.lists(scales, min_size=count, max_size=count)),
        draw(st.lists(st.integers(low, high), min_size=count, max_size=count)),
        draw(st.integers(0, 6)),
    )


def float_bits(values) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


@settings(max_examples=300, deadline=None)
@given(quantized_types())
def test_quantized_type_round_trips_bit_for_bit(type_: QuantizedType):
    parsed = parse_attribute(str(type_))
    assert parsed == type_
    assert isinstance(parsed, QuantizedType)
    assert float_bits(parsed.scales.get_values()) == float_bits(type_.scales.get_values())
    assert parsed.zero_points.get_values() == type_.zero_points.get_values()
    assert str(parsed) == str(type_)


@pytest.mark.parametrize(
    "type_, text",
    [
        (q(1e-05, -3), "!axq.q<i8, 1.0e-05:-3>"),
        (q(1e20, 127), "!axq.q<i8, 1.0e+20:127>"),
        (q(5e-324, -128), "!axq.q<i8, 5.0e-324:-128>"),
        (q(0.5, 2**31 - 1, i32), "!axq.q<i32, 0.5:2147483647>"),
        (qa([0.1, 1 / 3], 2, [1, -1]), "!axq.q<i8, axis 2, [0.1:1, 0.3333333333333333:-1]>"),
    ],
)
def test_quantized_type_prints_shortest_exact_decimals(type_: QuantizedType, text: str):
    assert str(type_) == text
    assert parse_attribute(text) == type_


ENUM_ATTRS = [
    (axq.PoolKindAttr, axq.PoolKind),
    (axq.ResizeModeAttr, axq.ResizeMode),
    (axq.CoordinateTransformAttr, axq.CoordinateTransform),
    (axq.NearestRoundingAttr, axq.NearestRounding),
    (axq.PadModeAttr, axq.PadMode),
    (axq.UnaryFunctionAttr, axq.UnaryFunction),
]


@pytest.mark.parametrize(
    "attr", [attr_class(member) for attr_class, enum in ENUM_ATTRS for member in enum], ids=str
)
def test_enum_attribute_round_trip(attr: Attribute):
    assert parse_attribute(str(attr)) == attr


def test_every_enum_attribute_is_registered():
    others = {QuantizedType, ResourceAttr}
    assert {attr_class for attr_class, _ in ENUM_ATTRS} | others == set(axq.Axq.attributes)
    assert str(axq.UnaryFunctionAttr(axq.UnaryFunction.HARDSWISH)) == (
        "#axq<unary_function hardswish>"
    )


# ---------------------------------------------------------------------------- dense data

DTYPES = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.bool_,
    np.float16,
    np.float32,
    np.float64,
]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(dtype, shapes)))
def test_dense_round_trips_every_dtype_bit_for_bit(array: np.ndarray):
    attr = dense_from_numpy(array)
    back = numpy_from_dense(attr)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()  # NaN payloads and -0.0 included


def constant_text_round_trip(attr: DenseIntOrFPElementsAttr) -> DenseIntOrFPElementsAttr:
    """The value of an axq.constant holding `attr`, printed and parsed back."""
    module = ModuleOp([axq.ConstantOp(attr)])
    parsed = parse(str(module))
    constant = parsed.body.block.first_op
    assert isinstance(constant, axq.ConstantOp)
    assert str(parsed) == str(module)
    return constant.value


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(dtype, shapes)))
def test_constants_round_trip_through_text_bit_for_bit(array: np.ndarray):
    attr = dense_from_numpy(array)
    parsed = constant_text_round_trip(attr)
    assert parsed == attr
    assert numpy_from_dense(parsed).tobytes() == array.tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_constants_xdsl_would_print_inexactly_print_as_hex(dtype):
    """xDSL 0.74 prints inf, NaN and 1234567.0 as hex bits and reads them back as integers."""
    large = [1234567.0] if dtype != np.float16 else []  # beyond f16's range
    array = np.array([*large, np.inf, -np.inf, np.nan, 0.1, -0.0], dtype)
    attr = dense_from_numpy(array)
    assert 'dense<"0x' in str(axq.ConstantOp(attr))
    assert numpy_from_dense(constant_text_round_trip(attr)).tobytes() == array.tobytes()
    readable = dense_from_numpy(np.array([0.5, 1e4, -3.0], dtype))
    assert "dense<[5.000000e-01, " in str(axq.ConstantOp(readable))


def test_constant_without_value_is_a_parse_error():
    with pytest.raises(ParseError, match="axq.constant needs a dense `value`"):
        parse("%c = axq.constant {val = dense<1.0> : tensor<f32>} : tensor<f32>")


def test_dense_splat_and_zero_dimensional_values():
    splat = parse_attribute("dense<7> : tensor<3x2xi32>")
    np.testing.assert_array_equal(numpy_from_dense(splat), np.full((3, 2), 7, np.int32))
    one_element = DenseIntOrFPElementsAttr(
        tensor((2, 3), f32), BytesAttr(np.float32(2.5).tobytes())
    )
    np.testing.assert_array_equal(numpy_from_dense(one_element), np.full((2, 3), 2.5))
    scalar = dense_from_numpy(np.array(-1.5, np.float64))
    assert str(scalar) == "dense<-1.500000e+00> : tensor<f64>"
    assert numpy_from_dense(scalar).shape == ()


def test_dense_storage_and_byte_order():
    big_endian = np.array([1, -2, 300], dtype=">i4")
    np.testing.assert_array_equal(numpy_from_dense(dense_from_numpy(big_endian)), [1, -2, 300])
    as_f32 = dense_from_numpy(np.array([0.1, 2.0]), f32)
    assert as_f32.get_element_type() == f32
    np.testing.assert_array_equal(numpy_from_dense(as_f32), np.array([0.1, 2.0], np.float32))
    unsigned = dense_from_numpy(np.array([200, 255], np.uint8))
    assert str(unsigned) == "dense<[200, 255]> : tensor<2xui8>"
    booleans = dense_from_numpy(np.array([True, False]))
    assert booleans == DenseIntOrFPElementsAttr.from_list(
        tensor((2,), IntegerType(1)), [True, False]
    )


# ---------------------------------------------------------------------------- verifier rules


def weighted_operands(x, w, b, types) -> list[SSAValue]:
    """Input, weight and bias values of the given shapes and (first three) element types."""
    return values(tensor(x, types[0]), tensor(w, types[1]), tensor(b, types[2]))


def conv2d(
    x=X, w=(4, 4, 3, 3), b=(4,), out=(1, 4, 6, 6), types=(f32, f32, f32, f32), **properties
) -> axq.Conv2dOp:
    return axq.Conv2dOp(*weighted_operands(x, w, b, types), tensor(out, types[3]), **properties)


HALF = q(0.5)
FLOAT_X, QUANTIZED_X, SIGMOID_OUT = tensor(X), tensor(X, QX), tensor(X, q(1 / 256, -128))
ZERO_TABLE = np.zeros(256)

Q_CONV = (QX, qa(W_SCALES, 0), qa(0.02 * W_SCALES, 0, storage=i32), q(0.05, 2))
"""A valid quantized conv2d: per-channel weights, bias at s_in * s_w, per-tensor output."""


def q_conv(
    input_type=QX, weight_type=Q_CONV[1], bias_type=Q_CONV[2], out_type=Q_CONV[3], **shapes
) -> axq.Conv2dOp:
    return conv2d(types=(input_type, weight_type, bias_type, out_type), **shapes)


def depthwise(input_type=QC, weight_type=HALF, bias_scales=None, multiplier=1):
    """A depthwise conv on a per-channel input; output o reads channel o // multiplier."""
    channels = np.arange(4 * multiplier) // multiplier
    bias_scales = QC.scale_array()[channels] * 0.5 if bias_scales is None else bias_scales
    return conv2d(
        w=(4 * multiplier, 1, 3, 3),
        b=(4 * multiplier,),
        out=(1, 4 * multiplier, 6, 6),
        types=(input_type, weight_type, qa(bias_scales, 0, storage=i32), q()),
        group=4,
    )


def conv_transpose(
    x=(1, 4, 4, 4),
    w=(4, 2, 3, 3),
    b=(2,),
    out=(1, 2, 9, 9),
    types=(f32, f32, f32, f32),
    strides=(2, 2),
    **properties,
):
    return axq.ConvTranspose2dOp(
        *weighted_operands(x, w, b, types), tensor(out, types[3]), strides=strides, **properties
    )


Q_CONV_T = (QX, qa([0.1, 0.2], 1), qa([0.002, 0.004], 0, storage=i32), q(0.05))


def dense(x=(2, 16), w=(8, 16), b=(8,), out=(2, 8), types=(f32, f32, f32, f32)):
    return axq.DenseOp(*weighted_operands(x, w, b, types), tensor(out, types[3]))


Q_DENSE = (QX, qa(np.full(8, 0.5), 0), q(0.01, 0, i32), q())


def binary(op_class=axq.AddOp, lhs=X, rhs=(1, 4, 1, 1), out=X, types=(f32, f32, f32)):
    return op_class(*values(tensor(lhs, types[0]), tensor(rhs, types[1])), tensor(out, types[2]))


def matmul(lhs=(2, 3, 4), rhs=(2, 4, 5), out=(2, 3, 5), types=(f32, f32, f32)):
    return axq.MatMulOp(
        *values(tensor(lhs, types[0]), tensor(rhs, types[1])), tensor(out, types[2])
    )


def unary(op_class, in_type=FLOAT_X, out_type=FLOAT_X, *args, **kwargs) -> Operation:
    return op_class(values(in_type)[0], out_type, *args, **kwargs)


def lut(in_type=QUANTIZED_X, out_type=SIGMOID_OUT, table=ZERO_TABLE, table_element=i8, params=None):
    table_attr = None if table is None else dense_from_numpy(table, table_element)
    return unary(axq.LutOp, in_type, out_type, axq.UnaryFunction.SIGMOID, params, table_attr)


def lut_with_int_param():
    op = lut(tensor(X), tensor(X), table=None)
    op.params = DictionaryAttr({"alpha": IntegerAttr(1, i64)})
    return op


def pool(
    op_class=axq.MaxPoolOp,
    in_shape=X,
    out_shape=(1, 4, 4, 4),
    kernel=(2, 2),
    strides=(2, 2),
    pads=(0, 0, 0, 0),
    types=(f32, f32),
    **kwargs,
) -> Operation:
    return op_class(
        values(tensor(in_shape, types[0]))[0],
        tensor(out_shape, types[1]),
        kernel,
        strides,
        pads,
        **kwargs,
    )


def constant(data: np.ndarray, result_type: Attribute) -> axq.ConstantOp:
    return axq.ConstantOp(dense_from_numpy(data), result_type)


def constant_of_vector() -> axq.ConstantOp:
    data = DenseIntOrFPElementsAttr(VectorType(f32, [2]), BytesAttr(bytes(8)))
    return axq.ConstantOp(data, tensor((2,)))


def concat(
    shapes=((1, 2, 8, 8), (1, 3, 8, 8)), out=(1, 5, 8, 8), axis=1, types=None, out_element=f32
):
    types = types or [f32] * len(shapes)
    inputs = values(*(tensor(s, t) for s, t in zip(shapes, types, strict=True)))
    return axq.ConcatOp(inputs, tensor(out, out_element), axis)


def split(in_shape=X, outs=((1, 1, 8, 8), (1, 3, 8, 8)), axis=1, in_element=f32, out_element=f32):
    return axq.SplitOp(
        values(tensor(in_shape, in_element))[0], [tensor(s, out_element) for s in outs], axis
    )


def host_op(result_type: Attribute) -> axq.HostOp:
    return axq.HostOp("Identity", values(tensor(X)), [result_type], {}, 18)


VALID: dict[str, Callable[[], Operation]] = {
    "conv2d": conv2d,
    "conv2d quantized": q_conv,
    "conv2d per-tensor weights and bias": lambda: q_conv(
        weight_type=q(0.25), bias_type=q(0.005, 0, i32)
    ),
    "conv2d per-channel output": lambda: q_conv(out_type=qa(W_SCALES, 1)),
    "depthwise per-channel input": depthwise,
    "depthwise channel multiplier": lambda: depthwise(multiplier=2),
    "conv_transpose2d": conv_transpose,
    "conv_transpose2d quantized": lambda: conv_transpose(types=Q_CONV_T),
    "conv_transpose2d group": lambda: conv_transpose(w=(4, 1, 3, 3), group=2),
    "dense": dense,
    "dense quantized": lambda: dense(types=Q_DENSE),
    "dense per-channel output": lambda: dense(types=(*Q_DENSE[:3], qa(np.ones(8), 1))),
    "dense 3-D input": lambda: dense(x=(2, 5, 16), out=(2, 5, 8)),
    "matmul": matmul,
    "matmul vector": lambda: matmul(lhs=(4,), out=(2, 5)),
    "prelu quantized": lambda: binary(axq.PReluOp, types=(QX, q(0.01), qa(W_SCALES, 1))),
    "lut": lut,
    "clip per-channel": lambda: unary(axq.ClipOp, tensor(X, QC), tensor(X, QC), 0.0, 6.0),
    "requantize per-channel": lambda: unary(axq.RequantizeOp, tensor(X, QC), tensor(X, QX)),
    "avg_pool rescales": lambda: pool(axq.AvgPoolOp, types=(QC, q())),
    "max_pool ceil_mode": lambda: pool(
        in_shape=(1, 4, 7, 7), kernel=(3, 3), ceil_mode=True, out_shape=(1, 4, 3, 3)
    ),
    "max_pool ceil_mode window past a small map": lambda: pool(
        in_shape=(1, 4, 2, 2), kernel=(3, 3), ceil_mode=True, out_shape=(1, 4, 1, 1)
    ),
    "linear resize rescales": lambda: unary(
        axq.ResizeOp,
        tensor(X, QC),
        tensor((1, 4, 16, 16), q()),
        axq.ResizeMode.LINEAR,
        (1.0, 1.0, 2.0, 2.0),
    ),
    "constant quantized": lambda: constant(np.zeros(4, np.int8), tensor((4,), qa(W_SCALES, 0))),
    "constant i64": lambda: constant(np.zeros(2, np.int64), tensor((2,), i64)),
    "host": lambda: host_op(tensor(X)),
}


@pytest.mark.parametrize("build", VALID.values(), ids=VALID.keys())
def test_valid_ops_verify(build):
    build().verify()


DYNAMIC = tensor((DYNAMIC_INDEX, 4))
UI8 = IntegerType(8, Signedness.UNSIGNED)

INVALID: dict[str, tuple[Callable[[], Operation | Attribute], str]] = {
    # QuantizedType
    "storage unsigned": (
        lambda: q(storage=UI8),
        "quantized storage must be a signless integer of 8 or 32 bits",
    ),
    "storage i16": (lambda: q(storage=i16), "signless integer of 8 or 32 bits (i8, i32), got i16"),
    "axis": (lambda: qa([0.1], -2), "quantization axis must be -1 (per tensor) or a tensor axis"),
    "zero point count": (
        lambda: QuantizedType(i8, [0.1, 0.2], [0], 0),
        "as many zero points as scales, got 1 for 2",
    ),
    "per-tensor scales": (
        lambda: QuantizedType(i8, [0.1, 0.2], [0, 0], -1),
        "a per-tensor quantized type has exactly one scale, got 2",
    ),
    "no scales": (lambda: QuantizedType(i8, [], [], 0), "needs at least one scale"),
    "zero scale": (lambda: q(0.0), "scales must be positive and finite, got 0.0"),
    "negative scale": (lambda: qa([0.1, -0.5], 0), "positive and finite, got -0.5"),
    "infinite scale": (lambda: q(float("inf")), "positive and finite, got inf"),
    "nan scale": (lambda: q(float("nan")), "positive and finite, got nan"),
    "zero point high": (
        lambda: q(0.1, 128),
        "zero point 128 out of range: i8 zero points lie in [-128, 127]",
    ),
    "zero point low": (lambda: qa([0.1, 0.1], 0, [0, -129]), "zero point -129 out of range"),
    "i32 zero point": (lambda: q(0.1, 2**31, i32), "i32 zero points lie in [-2147483648, "),
    # every op: static shapes, per-axis types that fit
    "dynamic shape": (
        lambda: unary(axq.ReshapeOp, DYNAMIC, tensor((4,))),
        "axq.reshape needs static shapes, got tensor<?x4xf32>",
    ),
    "per-axis axis rank": (
        lambda: unary(axq.RequantizeOp, tensor((4,), qa(W_SCALES, 1)), tensor((4,), QX)),
        "quantization axis 1 is out of range for a rank-1 tensor",
    ),
    "per-axis count": (
        lambda: unary(axq.RequantizeOp, tensor(X, qa([0.1] * 3, 1)), tensor(X, QX)),
        "a per-axis type along axis 1 needs 4 scales (the size of that axis), got 3",
    ),
    "host per-axis count": (lambda: host_op(tensor(X, qa([0.1] * 8, 1))), "axq.host: a per-axis"),
    "host dynamic": (lambda: host_op(DYNAMIC), "axq.host needs static shapes"),
    # compute ops: f32 or i8 codes, not mixed, per-axis activations per channel
    "f16": (
        lambda: binary(types=(f16, f16, f16)),
        "axq.add computes on f32 or i8-quantized tensors, got f16",
    ),
    "plain integers": (
        lambda: binary(types=(i8, i8, i8)),
        "computes on f32 or i8-quantized tensors, got i8",
    ),
    "i32 activation": (lambda: binary(types=(QX, QX, q(0.1, 0, i32))), "got !axq.q<i32, 0.1:0>"),
    "mixing": (
        lambda: binary(types=(f32, QX, QX)),
        "axq.add mixes float and quantized tensors; convert with axq.quantize",
    ),
    "activation axis": (
        lambda: unary(axq.RequantizeOp, tensor(X, qa([0.1] * 8, 2)), tensor(X, QX)),
        "axq.requantize: a per-axis activation is quantized per channel (axis 1), got axis 2",
    ),
    # axq.constant
    "constant shape": (
        lambda: constant(np.zeros(2, np.float32), tensor((3,))),
        "axq.constant value shape (2,) differs from result shape (3,)",
    ),
    "constant float data": (
        lambda: constant(np.zeros(4, np.float32), tensor((4,), QX)),
        "axq.constant data of type f32 cannot hold !axq.q<i8, 0.02:-3> (it needs i8 data)",
    ),
    "constant storage": (
        lambda: constant(np.zeros(4, np.int32), tensor((4,), QX)),
        "data of type i32 cannot hold",
    ),
    "constant vector": (constant_of_vector, "axq.constant value must be a tensor, got vector"),
    # axq.conv2d
    "conv rank": (
        lambda: conv2d(x=(4, 8, 8)),
        "axq.conv2d works on 4-D NCHW tensors and OIHW weights, got ranks 3 (input)",
    ),
    "conv strides": (lambda: conv2d(strides=(1,)), "axq.conv2d needs 2 strides >= 1, got [1]"),
    "conv stride zero": (lambda: conv2d(strides=(0, 1)), "needs 2 strides >= 1, got [0, 1]"),
    "conv dilation": (lambda: conv2d(dilations=(1, 0)), "needs 2 dilations >= 1, got [1, 0]"),
    "conv pads": (lambda: conv2d(pads=(1, 1)), "needs 4 pads >= 0 (top, left, bottom, right)"),
    "conv negative pad": (lambda: conv2d(pads=(0, -1, 0, 0)), "needs 4 pads >= 0"),
    "conv group": (lambda: conv2d(group=0), "axq.conv2d group must be >= 1, got 0"),
    "conv channels": (
        lambda: conv2d(w=(4, 2, 3, 3)),
        "axq.conv2d: 4 input channels do not match weight (4, 2, 3, 3) with group 1",
    ),
    "conv group divides": (
        lambda: conv2d(w=(3, 2, 3, 3), b=(3,), out=(1, 3, 6, 6), group=2),
        "weight dim 0 divisible by group",
    ),
    "conv window": (
        lambda: conv2d(x=(1, 4, 2, 8), out=(1, 4, 0, 6)),
        "axq.conv2d window of extent 3 does not fit the padded input extent 2 along axis 2",
    ),
    "conv dilated window": (
        lambda: conv2d(dilations=(4, 1)),
        "window of extent 9 does not fit the padded input extent 8",
    ),
    "conv result": (
        lambda: conv2d(out=X),
        "axq.conv2d result shape (1, 4, 8, 8) should be (1, 4, 6, 6)",
    ),
    "conv bias shape": (lambda: conv2d(b=(3,)), "axq.conv2d bias must have shape (4,), got (3,)"),
    "conv float bias": (
        lambda: conv2d(types=(f32, f32, f16, f32)),
        "axq.conv2d float bias must be f32, got f16",
    ),
    "conv quantized bias on float": (
        lambda: conv2d(types=(f32, f32, Q_CONV[2], f32)),
        "axq.conv2d mixes float and quantized tensors",
    ),
    "conv float weight on quantized": (lambda: q_conv(weight_type=f32), "mixes float"),
    "conv i8 weight on quantized": (
        lambda: q_conv(weight_type=i8),
        "computes on f32 or i8-quantized tensors, got i8",
    ),
    "conv bias storage": (
        lambda: q_conv(bias_type=qa(0.02 * W_SCALES, 0)),
        "axq.conv2d quantized bias must have i32 storage, got !axq.q<i8, ",
    ),
    "conv float bias on quantized": (lambda: q_conv(bias_type=f32), "mixes float"),
    "conv weight zero point": (
        lambda: q_conv(weight_type=qa(W_SCALES, 0, [0, 1, 0, 0])),
        "axq.conv2d weights are symmetric: their zero points must be 0",
    ),
    "conv bias zero point": (
        lambda: q_conv(bias_type=q(0.002, 3, i32)),
        "axq.conv2d bias zero points must be 0",
    ),
    "conv weight axis": (
        lambda: q_conv(weight_type=qa(W_SCALES, 1)),
        "axq.conv2d weights are quantized per output channel (axis 0), got axis 1",
    ),
    "conv bias scale": (
        lambda: q_conv(bias_type=qa(0.02 * W_SCALES[::-1], 0, storage=i32)),
        "axq.conv2d bias scale 0.008 of output channel 0 should be input scale "
        "x weight scale = 0.002",
    ),
    "conv per-tensor bias scale": (
        lambda: q_conv(bias_type=q(0.002, 0, i32)),
        "bias scale 0.002 of output channel 1 should be",
    ),
    "conv per-channel input": (
        lambda: q_conv(input_type=QC),
        "axq.conv2d needs a per-tensor quantized input; only a depthwise "
        "axq.conv2d reads per-channel inputs",
    ),
    "depthwise bias scale": (
        lambda: depthwise(bias_scales=np.full(4, 0.01)),
        "bias scale 0.01 of output channel 0 should be input scale x weight scale = 0.005",
    ),
    "conv output axis": (
        lambda: q_conv(out_type=qa([0.1] * 6, 2)),
        "axq.conv2d: a per-axis activation is quantized per channel (axis 1), got axis 2",
    ),
    # axq.conv_transpose2d
    "convT rank": (
        lambda: conv_transpose(w=(4, 2, 3)),
        "axq.conv_transpose2d works on 4-D NCHW tensors and IOHW weights, got ranks "
        "4 (input), 3 (weight)",
    ),
    "convT strides": (
        lambda: conv_transpose(strides=(2, 0)),
        "axq.conv_transpose2d needs 2 strides >= 1",
    ),
    "convT pads": (lambda: conv_transpose(pads=(0, 0, 0)), "axq.conv_transpose2d needs 4 pads"),
    "convT output_padding": (
        lambda: conv_transpose(output_padding=(0, -1)),
        "needs 2 output_padding values >= 0, got [0, -1]",
    ),
    "convT group": (
        lambda: conv_transpose(group=3),
        "axq.conv_transpose2d group 3 must be >= 1 and divide the 4 input channels",
    ),
    "convT channels": (
        lambda: conv_transpose(w=(3, 2, 3, 3)),
        "axq.conv_transpose2d: 4 input channels do not match weight dim 0 of (3, 2, 3, 3) (IOHW)",
    ),
    "convT crop": (
        lambda: conv_transpose(pads=(5, 0, 5, 0)),
        "pads [5, 0, 5, 0] crop the whole output",
    ),
    "convT result": (
        lambda: conv_transpose(out=(1, 2, 8, 8)),
        "axq.conv_transpose2d result shape (1, 2, 8, 8) should be (1, 2, 9, 9)",
    ),
    "convT bias shape": (
        lambda: conv_transpose(w=(4, 1, 3, 3), out=(1, 2, 9, 9), group=2, b=(1,)),
        "axq.conv_transpose2d bias must have shape (2,), got (1,)",
    ),
    "convT weight axis": (
        lambda: conv_transpose(types=(QX, qa(W_SCALES, 0), *Q_CONV_T[2:])),
        "weights are quantized per output channel (axis 1), got axis 0",
    ),
    "convT per-channel input": (
        lambda: conv_transpose(types=(QC, *Q_CONV_T[1:])),
        "axq.conv_transpose2d needs a per-tensor quantized input",
    ),
    "convT bias scale": (
        lambda: conv_transpose(types=(*Q_CONV_T[:2], q(0.002, 0, i32), Q_CONV_T[3])),
        "bias scale 0.002 of output channel 1 should be input scale x weight scale = 0.004",
    ),
    # axq.dense
    "dense contraction": (
        lambda: dense(w=(8, 15)),
        "axq.dense input (2, 16) does not match weight (8, 15)",
    ),
    "dense weight rank": (lambda: dense(w=(8, 16, 1)), "it needs a 2-D [N, K] weight"),
    "dense result": (lambda: dense(out=(2, 7)), "axq.dense result shape (2, 7) should be (2, 8)"),
    "dense bias shape": (
        lambda: dense(b=(1, 8)),
        "axq.dense bias must have shape (8,), got (1, 8)",
    ),
    "dense per-channel input": (
        lambda: dense(types=(qa([0.1] * 16, 1), *Q_DENSE[1:])),
        "axq.dense needs a per-tensor quantized input",
    ),
    "dense output axis": (
        lambda: dense(types=(*Q_DENSE[:3], qa([0.1, 0.1], 0))),
        "axq.dense: a per-axis activation is quantized per channel (axis 1), got axis 0",
    ),
    "dense bias scale": (
        lambda: dense(types=(*Q_DENSE[:2], q(0.02, 0, i32), Q_DENSE[3])),
        "axq.dense bias scale 0.02 of output channel 0 should be input scale x weight scale = 0.01",
    ),
    # axq.add, axq.sub, axq.mul, axq.prelu
    **{
        f"{op_class.name} broadcast": (
            lambda op_class=op_class: binary(op_class, rhs=(1, 3, 1, 1)),
            f"{op_class.name} operands do not broadcast",
        )
        for op_class in (axq.AddOp, axq.SubOp, axq.MulOp, axq.PReluOp)
    },
    "binary result": (
        lambda: binary(axq.MulOp, out=(1, 4, 1, 1)),
        "axq.mul result shape (1, 4, 1, 1) should be (1, 4, 8, 8)",
    ),
    "binary per-channel operand": (
        lambda: binary(axq.SubOp, types=(QC, QX, QX)),
        "axq.sub needs per-tensor quantization (one scale per "
        "operand), got the per-axis !axq.q<i8, axis 1",
    ),
    # axq.matmul
    "matmul scalar": (lambda: matmul(lhs=()), "axq.matmul needs operands of rank >= 1"),
    "matmul contraction": (
        lambda: matmul(rhs=(2, 3, 5)),
        "axq.matmul shapes (2, 3, 4) and (2, 3, 5) do not match: contraction sizes 4 and 3 differ",
    ),
    "matmul batch": (
        lambda: matmul(rhs=(3, 4, 5)),
        "axq.matmul batch dimensions of (2, 3, 4) and (3, 4, 5) do not broadcast",
    ),
    "matmul result": (
        lambda: matmul(out=(2, 5, 3)),
        "axq.matmul result shape (2, 5, 3) should be (2, 3, 5)",
    ),
    "matmul per-channel operand": (
        lambda: matmul(lhs=(2, 4, 4), out=(2, 4, 5), types=(QX, qa([0.1] * 4, 1), QX)),
        "axq.matmul needs per-tensor quantization",
    ),
    # axq.lut
    "lut shape": (
        lambda: lut(out_type=tensor((1, 4, 8, 1), q())),
        "axq.lut keeps the shape: (1, 4, 8, 8) != (1, 4, 8, 1)",
    ),
    "lut param": (lut_with_int_param, "axq.lut parameter 'alpha' must be a float"),
    "lut unknown param": (
        lambda: lut(tensor(X), tensor(X), table=None, params={"alpha": 0.1}),
        "axq.lut sigmoid takes parameters none (required none), got ['alpha']",
    ),
    "lut missing param": (
        lambda: axq.LutOp(
            values(tensor(X))[0], tensor(X), axq.UnaryFunction.CLIP, {"min_value": 0.0}
        ),
        "axq.lut clip takes parameters ['max_value', 'min_value'] (required "
        "['max_value', 'min_value']), got ['min_value']",
    ),
    "lut float with table": (lambda: lut(tensor(X), tensor(X)), "a float axq.lut has no table"),
    "lut without table": (lambda: lut(table=None), "a quantized axq.lut needs its 256-entry table"),
    "lut table size": (
        lambda: lut(table=np.zeros(128)),
        "axq.lut table must be a tensor<256xi8> (one i8 code per input code), got tensor<128xi8>",
    ),
    "lut table type": (lambda: lut(table_element=i32), "got tensor<256xi32>"),
    "lut per-channel": (
        lambda: lut(tensor(X, QC)),
        "axq.lut needs per-tensor quantization (one table maps every code)",
    ),
    "lut float to quantized": (
        lambda: lut(tensor(X), table=None),
        "axq.lut mixes float and quantized",
    ),
    # axq.clip, axq.softmax
    "clip bounds": (
        lambda: unary(axq.ClipOp, tensor(X), tensor(X), 6.0, 0.0),
        "axq.clip needs min <= max, got min 6.0 and max 0.0",
    ),
    "clip shape": (
        lambda: unary(axq.ClipOp, tensor(X), tensor((4, 8, 8)), 0.0, 6.0),
        "axq.clip keeps the shape",
    ),
    "clip rescales": (
        lambda: unary(axq.ClipOp, tensor(X, QX), tensor(X, q()), 0.0, 6.0),
        "axq.clip moves codes without rescaling, so its result has the input's "
        "element type: got !axq.q<i8, 0.1:0> for !axq.q<i8, 0.02:-3>",
    ),
    "softmax axis": (
        lambda: unary(axq.SoftmaxOp, tensor(X), tensor(X), 4),
        "axq.softmax axis 4 out of range for a rank-4 tensor",
    ),
    "softmax negative axis": (
        lambda: unary(axq.SoftmaxOp, tensor(X), tensor(X), -5),
        "axq.softmax axis -5 out of range",
    ),
    "softmax per-channel": (
        lambda: unary(axq.SoftmaxOp, tensor(X, QC), tensor(X, QX), 1),
        "axq.softmax needs per-tensor quantization (the DPU softmax has one scale)",
    ),
    # axq.quantize, axq.dequantize, axq.requantize
    "quantize from quantized": (
        lambda: unary(axq.QuantizeOp, tensor(X, QX), tensor(X, QX)),
        "axq.quantize maps a float tensor to a quantized one, got "
        "!axq.q<i8, 0.02:-3> -> !axq.q<i8, 0.02:-3>",
    ),
    "quantize to float": (
        lambda: unary(axq.QuantizeOp, tensor(X), tensor(X)),
        "axq.quantize maps a float tensor to a quantized one, got f32 -> f32",
    ),
    "quantize shape": (
        lambda: unary(axq.QuantizeOp, tensor(X), tensor((4, 8, 8), QX)),
        "axq.quantize keeps the shape",
    ),
    "quantize to i32": (
        lambda: unary(axq.QuantizeOp, tensor(X), tensor(X, q(0.1, 0, i32))),
        "axq.quantize computes on f32 or i8-quantized tensors",
    ),
    "dequantize from float": (
        lambda: unary(axq.DequantizeOp, tensor(X), tensor(X)),
        "axq.dequantize maps a quantized tensor to a float one, got f32 -> f32",
    ),
    "dequantize to quantized": (
        lambda: unary(axq.DequantizeOp, tensor(X, QX), tensor(X, QX)),
        "axq.dequantize maps a quantized tensor to a float one",
    ),
    "requantize from float": (
        lambda: unary(axq.RequantizeOp, tensor(X), tensor(X)),
        "axq.requantize maps a quantized tensor to a quantized one, got f32; use axq.quantize",
    ),
    "requantize to float": (
        lambda: unary(axq.RequantizeOp, tensor(X, QX), tensor(X)),
        "axq.requantize mixes float and quantized tensors",
    ),
    # axq.reshape, axq.transpose
    "reshape count": (
        lambda: unary(axq.ReshapeOp, tensor(X), tensor((1, 255))),
        "axq.reshape cannot change the element count: (1, 4, 8, 8) -> (1, 255)",
    ),
    "reshape rescales": (
        lambda: unary(axq.ReshapeOp, tensor(X, QX), tensor((1, 256), q())),
        "axq.reshape moves codes without rescaling",
    ),
    "transpose perm": (
        lambda: unary(axq.TransposeOp, tensor(X), tensor(X), (0, 1, 1, 3)),
        "axq.transpose perm [0, 1, 1, 3] is not a permutation of the 4 input axes",
    ),
    "transpose rank": (
        lambda: unary(axq.TransposeOp, tensor(X), tensor(X), (0, 1, 2)),
        "is not a permutation of the 4 input axes",
    ),
    "transpose result": (
        lambda: unary(axq.TransposeOp, tensor(X), tensor(X), (0, 2, 3, 1)),
        "axq.transpose result shape (1, 4, 8, 8) should be (1, 8, 8, 4)",
    ),
    "transpose rescales": (
        lambda: unary(axq.TransposeOp, tensor(X, QX), tensor(X, q()), (0, 1, 2, 3)),
        "axq.transpose moves codes without rescaling",
    ),
    # axq.pad
    "pad count": (
        lambda: unary(axq.PadOp, tensor(X), tensor(X), (0, 0, 0, 0)),
        "axq.pad needs 8 pads (begins, then ends), got 4",
    ),
    "pad negative": (
        lambda: unary(axq.PadOp, tensor(X), tensor((1, 4, 7, 8)), (0, 0, -1, 0, 0, 0, 0, 0)),
        "axq.pad pads must be >= 0 (it does not crop)",
    ),
    "pad result": (
        lambda: unary(axq.PadOp, tensor(X), tensor(X), (0, 0, 1, 1, 0, 0, 1, 1)),
        "axq.pad result shape (1, 4, 8, 8) should be (1, 4, 10, 10)",
    ),
    "pad rescales": (
        lambda: unary(axq.PadOp, tensor(X, QC), tensor(X, QX), (0,) * 8),
        "axq.pad moves codes without rescaling",
    ),
    # axq.slice
    "slice lengths": (
        lambda: unary(axq.SliceOp, tensor(X), tensor(X), (0,), (8, 8), (2,), (1,)),
        "axq.slice needs equally many starts, ends, axes and steps",
    ),
    "slice axis": (
        lambda: unary(axq.SliceOp, tensor(X), tensor(X), (0,), (8,), (-1,), (1,)),
        "axq.slice axes [-1] out of range 0..3 (normalise negative axes)",
    ),
    "slice repeated axis": (
        lambda: unary(axq.SliceOp, tensor(X), tensor(X), (0, 0), (8, 8), (2, 2), (1, 1)),
        "axq.slice axes [2, 2] repeat an axis",
    ),
    "slice step": (
        lambda: unary(axq.SliceOp, tensor(X), tensor(X), (0,), (8,), (2,), (0,)),
        "axq.slice step must not be 0",
    ),
    "slice result": (
        lambda: unary(axq.SliceOp, tensor(X), tensor(X), (0,), (8,), (2,), (2,)),
        "axq.slice result shape (1, 4, 8, 8) should be (1, 4, 4, 8)",
    ),
    "slice rescales": (
        lambda: unary(axq.SliceOp, tensor(X, QX), tensor(X, q()), (0,), (8,), (2,), (1,)),
        "axq.slice moves codes without rescaling",
    ),
    # axq.max_pool, axq.avg_pool
    "pool rank": (
        lambda: pool(in_shape=(4, 8, 8)),
        "axq.max_pool works on 4-D NCHW tensors, got rank 3",
    ),
    "pool kernel": (
        lambda: pool(axq.AvgPoolOp, kernel=(2,)),
        "axq.avg_pool needs 2 kernel sizes >= 1, got [2]",
    ),
    "pool kernel zero": (lambda: pool(kernel=(2, 0)), "needs 2 kernel sizes >= 1, got [2, 0]"),
    "pool strides": (lambda: pool(strides=(0, 2)), "axq.max_pool needs 2 strides >= 1"),
    "pool dilations": (lambda: pool(dilations=(1, 1, 1)), "axq.max_pool needs 2 dilations >= 1"),
    "pool pads": (lambda: pool(pads=(0, 0, -1, 0)), "axq.max_pool needs 4 pads >= 0"),
    "pool pads vs kernel": (
        lambda: pool(axq.AvgPoolOp, pads=(0, 2, 0, 0), out_shape=(1, 4, 4, 5)),
        "axq.avg_pool pads [0, 2, 0, 0] must be smaller than the kernel [2, 2]",
    ),
    "pool window": (
        lambda: pool(in_shape=(1, 4, 1, 8), out_shape=(1, 4, 0, 4)),
        "axq.max_pool window of extent 2 does not fit the padded input extent 1 along axis 2",
    ),
    "pool ceil window": (
        lambda: pool(in_shape=(1, 4, 1, 8), kernel=(3, 2), ceil_mode=True, out_shape=(1, 4, 1, 4)),
        "axq.max_pool window of extent 3 does not fit the padded input extent 1 (+ 1 in ceil "
        "mode) along axis 2",
    ),
    "pool result": (
        lambda: pool(axq.AvgPoolOp, out_shape=(1, 4, 3, 4)),
        "axq.avg_pool result shape (1, 4, 3, 4) should be (1, 4, 4, 4)",
    ),
    "max_pool rescales": (
        lambda: pool(types=(QC, QX)),
        "axq.max_pool moves codes without rescaling",
    ),
    "avg_pool mixing": (lambda: pool(axq.AvgPoolOp, types=(QX, f32)), "axq.avg_pool mixes"),
    # axq.global_pool
    "global_pool rank": (
        lambda: unary(axq.GlobalPoolOp, tensor((1, 4)), tensor((1, 4)), axq.PoolKind.AVG),
        "axq.global_pool needs spatial axes (rank >= 3), got rank 2",
    ),
    "global_pool result": (
        lambda: unary(axq.GlobalPoolOp, tensor(X), tensor((1, 4, 1)), axq.PoolKind.AVG),
        "axq.global_pool result shape (1, 4, 1) should be (1, 4, 1, 1)",
    ),
    "global max rescales": (
        lambda: unary(axq.GlobalPoolOp, tensor(X, QX), tensor((1, 4, 1, 1), q()), axq.PoolKind.MAX),
        "axq.global_pool moves codes without rescaling",
    ),
    # axq.resize
    "resize scales": (
        lambda: unary(axq.ResizeOp, tensor(X), tensor(X), axq.ResizeMode.NEAREST, (2.0, 2.0)),
        "axq.resize needs one scale per axis (4), got 2",
    ),
    "resize scale sign": (
        lambda: unary(
            axq.ResizeOp, tensor(X), tensor(X), axq.ResizeMode.NEAREST, (1.0, 1.0, -1.0, 1.0)
        ),
        "axq.resize scales must be positive and finite",
    ),
    "resize result": (
        lambda: unary(
            axq.ResizeOp, tensor(X), tensor(X), axq.ResizeMode.LINEAR, (1.0, 1.0, 1.5, 1.5)
        ),
        "axq.resize result shape (1, 4, 8, 8) should be (1, 4, 12, 12)",
    ),
    "nearest resize rescales": (
        lambda: unary(
            axq.ResizeOp, tensor(X, QX), tensor(X, q()), axq.ResizeMode.NEAREST, (1.0,) * 4
        ),
        "axq.resize moves codes without rescaling",
    ),
    # axq.concat
    "concat empty": (lambda: concat(shapes=(), out=X), "axq.concat needs at least one input"),
    "concat axis": (
        lambda: concat(axis=4),
        "axq.concat axis 4 out of range 0..3 (normalise negative axes)",
    ),
    "concat inputs": (
        lambda: concat(shapes=((1, 2, 8, 8), (1, 3, 8, 7))),
        "axq.concat inputs [(1, 2, 8, 8), (1, 3, 8, 7)] differ outside the concatenation axis 1",
    ),
    "concat rank": (
        lambda: concat(shapes=((1, 2, 8, 8), (3, 8, 8))),
        "differ outside the concatenation axis",
    ),
    "concat result": (
        lambda: concat(out=(1, 6, 8, 8)),
        "axq.concat result shape (1, 6, 8, 8) should be (1, 5, 8, 8)",
    ),
    "concat types": (
        lambda: concat(types=[QX, q()], out_element=QX),
        "axq.concat moves codes without rescaling, so its result has the input's "
        "element type: got !axq.q<i8, 0.02:-3> for !axq.q<i8, 0.1:0>",
    ),
    # axq.split
    "split axis": (
        lambda: split(axis=-1),
        "axq.split axis -1 out of range 0..3 (normalise negative axes)",
    ),
    "split rank": (
        lambda: split(outs=((1, 1, 8, 8), (3, 8, 8))),
        "axq.split result (3, 8, 8) differs from the input (1, 4, 8, 8) outside the split axis 1",
    ),
    "split sizes": (
        lambda: split(outs=((1, 1, 8, 8), (1, 2, 8, 8))),
        "axq.split sizes [1, 2] do not add up to 4",
    ),
    "split rescales": (
        lambda: split(in_element=QX, out_element=q()),
        "axq.split moves codes without rescaling",
    ),
}


@pytest.mark.parametrize("build, message", INVALID.values(), ids=INVALID.keys())
def test_verifier_rejects(build, message: str):
    with pytest.raises(VerifyException, match=re.escape(message)):
        build().verify()


@pytest.mark.parametrize(
    "text, message",
    [
        ("!axq.q<f32, 0.1:0>", "quantized storage must be an integer type"),
        ("!axq.q<i8, axis 0, []>", "a quantized type needs at least one scale:zero_point pair"),
        ("!axq.q<i8, 0.0:0>", "quantization scales must be positive and finite, got 0.0"),
        ("!axq.q<i8, axis 0, [0.1:0, 0.2:300]>", "zero point 300 out of range"),
        ("!axq.q<i8, axis -1, [0.1:0]>", "Expected integer literal"),
    ],
)
def test_quantized_type_parse_errors_point_at_the_type(text: str, message: str):
    """Invalid parameters are parse diagnostics with a location, not a traceback."""
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_attribute(text)


# ---------------------------------------------------------------------------- op facts (traits)


def _fact_ops() -> dict[str, Operation]:
    """One op per case whose facts differ, on a 1x4x8x8 input."""
    x, w, b = values(tensor(X), tensor((4, 1, 3, 3)), tensor((4,)))
    dense_w, dense_b = values(tensor((6, 8)), tensor((6,)))
    t = tensor
    return {
        "conv": axq.Conv2dOp(x, w, b, t((1, 4, 6, 6)), group=4),
        "conv_transpose": axq.ConvTranspose2dOp(
            x, *values(t((4, 2, 1, 1)), t((2,))), t((1, 2, 8, 8))
        ),
        "dense": axq.DenseOp(x, dense_w, dense_b, t((1, 4, 8, 6))),
        "add": axq.AddOp(x, x, t(X)),
        "matmul": axq.MatMulOp(x, x, t(X)),
        "clip": axq.ClipOp(x, t(X), 0.0, 6.0),
        "lut": axq.LutOp(x, t(X), axq.UnaryFunction.SIGMOID),
        "reshape": axq.ReshapeOp(x, t((1, 256))),
        "transpose": axq.TransposeOp(x, t((1, 8, 8, 4)), (0, 2, 3, 1)),
        "pad_spatial": axq.PadOp(x, t((1, 4, 10, 10)), (0, 0, 1, 1, 0, 0, 1, 1)),
        "pad_channels": axq.PadOp(x, t((1, 6, 8, 8)), (0, 1, 0, 0, 0, 1, 0, 0)),
        "slice_spatial": axq.SliceOp(x, t((1, 4, 4, 8)), [0], [4], [2], [1]),
        "slice_channels": axq.SliceOp(x, t((1, 2, 8, 8)), [0], [2], [1], [1]),
        "split_spatial": axq.SplitOp(x, [t((1, 4, 4, 8))] * 2, 2),
        "split_channels": axq.SplitOp(x, [t((1, 2, 8, 8))] * 2, 1),
        "resize_nearest": axq.ResizeOp(x, t((1, 4, 16, 16)), axq.ResizeMode.NEAREST, (1, 1, 2, 2)),
        "resize_linear": axq.ResizeOp(x, t((1, 4, 16, 16)), axq.ResizeMode.LINEAR, (1, 1, 2, 2)),
        "resize_channels": axq.ResizeOp(x, t((1, 8, 8, 8)), axq.ResizeMode.NEAREST, (1, 2, 1, 1)),
        "max_pool": axq.MaxPoolOp(x, t((1, 4, 4, 4)), (2, 2), (2, 2)),
        "avg_pool": axq.AvgPoolOp(x, t((1, 4, 4, 4)), (2, 2), (2, 2)),
        "global_max": axq.GlobalPoolOp(x, t((1, 4, 1, 1)), axq.PoolKind.MAX),
        "global_avg": axq.GlobalPoolOp(x, t((1, 4, 1, 1)), axq.PoolKind.AVG),
        "concat": axq.ConcatOp([x, x], t((1, 8, 8, 8)), 1),
        "softmax": axq.SoftmaxOp(x, t(X), 1),
        "quantize": axq.QuantizeOp(x, t(X, QX)),
        "constant": axq.ConstantOp(dense_from_numpy(np.zeros(X, np.float32))),
    }


# The facts quantization relies on, written out per case (what the isinstance lists of
# transforms/quantize.py said before the facts became traits).
FACTS = {
    axq.shares_input_quantization: {
        "clip", "reshape", "transpose", "pad_spatial", "pad_channels", "slice_spatial",
        "slice_channels", "split_spatial", "split_channels", "resize_nearest", "resize_linear",
        "resize_channels", "max_pool", "global_max",
    },
    axq.preserves_channel_axis: {
        "clip", "pad_spatial", "slice_spatial", "split_spatial", "resize_nearest",
        "resize_linear", "max_pool", "global_max", "global_avg",
    },
    axq.commutes_with_clamp: {
        "clip", "reshape", "transpose", "pad_spatial", "pad_channels", "slice_spatial",
        "slice_channels", "split_spatial", "split_channels", "resize_nearest",
        "resize_channels", "max_pool", "global_max", "concat",
    },
    axq.requantizes_per_channel: {"conv", "conv_transpose", "add", "avg_pool", "global_avg"},
    axq.is_weighted: {"conv", "conv_transpose", "dense"},
    axq.is_quantization_conversion: {"quantize"},
}  # fmt: skip


@pytest.mark.parametrize("fact", FACTS, ids=lambda fact: fact.__name__)
def test_op_facts(fact):
    ops = _fact_ops()
    for op in ops.values():
        op.verify()
    assert {name for name, op in ops.items() if fact(op)} == FACTS[fact]


def test_is_depthwise():
    ops = _fact_ops()
    x, w, b = values(tensor(X), tensor((4, 2, 3, 3)), tensor((4,)))
    grouped = axq.Conv2dOp(x, w, b, tensor((1, 4, 6, 6)), group=2)
    assert axq.is_depthwise(ops["conv"])
    assert not axq.is_depthwise(grouped)
    assert not axq.is_depthwise(ops["dense"])
