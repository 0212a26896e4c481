"""The `axq` dialect: the quantized graph.

Ops work on ranked tensors in ONNX's NCHW layout until legalization. Before quantization
the element type is `f32`; after it, `!axq.q<...>` carries the scale and zero point of
every int8 (or int32 bias) tensor, per tensor or per axis, like MLIR's `!quant.uniform`:

    %w = axq.constant {value = dense<"0x..."> : tensor<64x3x7x7xi8>}
        : tensor<64x3x7x7x!axq.q<i8, axis 0, [0.0123:0, 0.0098:0, ...]>>
    %y = axq.conv2d %x, %w, %b {strides = array<i64: 2, 2>, ...}
        : (tensor<1x3x224x224x!axq.q<i8, 0.0187:-14>>, ...) -> tensor<...>

Host-side ONNX operators that the accelerator never runs stay `axq.host` ops that carry
the ONNX op type and attributes; the interpreters run them with onnx's reference
implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import auto

import numpy as np
from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.dialects.utils.enum_attribute import EnumAttribute
from xdsl.ir import (
    Attribute,
    Dialect,
    ParametrizedAttribute,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

NAME_ATTR = "axq.name"
"""Argument/result attribute of the graph function holding the ONNX tensor name."""


# --------------------------------------------------------------------------- types


def _format_float(value: float) -> str:
    """Shortest exact decimal of a float64, in a form xDSL's lexer reads as a float."""
    text = repr(float(value))
    if "e" in text and "." not in text:
        text = text.replace("e", ".0e")
    return text


@irdl_attr_definition
class QuantizedType(ParametrizedAttribute, TypeAttribute):
    """An integer storage type with a real value `scale * (q - zero_point)`.

    `axis == -1` means per tensor (one scale and zero point); otherwise one scale and
    zero point per index of that tensor axis. Scales are float64 and print exactly.
    """

    name = "axq.q"

    storage: IntegerType
    scales: DenseArrayBase
    zero_points: DenseArrayBase
    axis: IntegerAttr

    def __init__(
        self,
        storage: IntegerType,
        scales: Sequence[float] | np.ndarray,
        zero_points: Sequence[int] | np.ndarray,
        axis: int = -1,
    ):
        super().__init__(
            storage,
            DenseArrayBase.from_list(f64, [float(s) for s in np.ravel(scales)]),
            DenseArrayBase.from_list(i64, [int(z) for z in np.ravel(zero_points)]),
            IntegerAttr(axis, i64),
        )

    @staticmethod
    def per_tensor(storage: IntegerType, scale: float, zero_point: int) -> QuantizedType:
        return QuantizedType(storage, [scale], [zero_point], -1)

    @property
    def is_per_axis(self) -> bool:
        return self.axis.value.data >= 0

    @property
    def axis_index(self) -> int:
        return self.axis.value.data

    def scale_array(self) -> np.ndarray:
        return np.asarray(self.scales.get_values(), dtype=np.float64)

    def zero_point_array(self) -> np.ndarray:
        return np.asarray(self.zero_points.get_values(), dtype=np.int64)

    @property
    def scale(self) -> float:
        """The scale of a per-tensor type."""
        if self.is_per_axis:
            raise ValueError("a per-axis quantized type has no single scale")
        return self.scales.get_values()[0]

    @property
    def zero_point(self) -> int:
        if self.is_per_axis:
            raise ValueError("a per-axis quantized type has no single zero point")
        return self.zero_points.get_values()[0]

    @property
    def bounds(self) -> tuple[int, int]:
        """Representable codes; int8 weights use the symmetric [-127, 127] by convention."""
        width = self.storage.width.data
        return -(1 << (width - 1)), (1 << (width - 1)) - 1

    def verify(self) -> None:
        n_scales = len(self.scales.get_values())
        if n_scales != len(self.zero_points.get_values()):
            raise VerifyException("quantized type needs as many zero points as scales")
        if not self.is_per_axis and n_scales != 1:
            raise VerifyException("a per-tensor quantized type has exactly one scale")
        if n_scales == 0:
            raise VerifyException("a quantized type needs at least one scale")
        if not all(s > 0 and np.isfinite(s) for s in self.scales.get_values()):
            raise VerifyException("quantization scales must be positive and finite")
        low, high = self.bounds
        if not all(low <= z <= high for z in self.zero_points.get_values()):
            raise VerifyException(f"zero points must lie in [{low}, {high}]")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        def parse_pair() -> tuple[float, int]:
            scale = parser.parse_float()
            parser.parse_punctuation(":")
            return scale, parser.parse_integer()

        parser.parse_punctuation("<")
        storage = parser.parse_type()
        if not isinstance(storage, IntegerType):
            parser.raise_error("quantized storage must be an integer type")
        parser.parse_punctuation(",")
        axis = -1
        if parser.parse_optional_keyword("axis"):
            axis = parser.parse_integer(allow_negative=False)
            parser.parse_punctuation(",")
            pairs = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parse_pair)
        else:
            pairs = [parse_pair()]
        parser.parse_punctuation(">")
        scales, zero_points = zip(*pairs, strict=True)
        return QuantizedType(storage, scales, zero_points, axis).parameters

    def print_parameters(self, printer: Printer) -> None:
        pairs = ", ".join(
            f"{_format_float(s)}:{z}"
            for s, z in zip(self.scales.get_values(), self.zero_points.get_values(), strict=True)
        )
        printer.print_string("<")
        printer.print_attribute(self.storage)
        if self.is_per_axis:
            printer.print_string(f", axis {self.axis_index}, [{pairs}]>")
        else:
            printer.print_string(f", {pairs}>")


def element_type(value: SSAValue | Attribute) -> Attribute:
    type_ = value.type if isinstance(value, SSAValue) else value
    assert isinstance(type_, TensorType)
    return type_.element_type


def shape_of(value: SSAValue | Attribute) -> tuple[int, ...]:
    type_ = value.type if isinstance(value, SSAValue) else value
    assert isinstance(type_, TensorType)
    return tuple(type_.get_shape())


def is_quantized(value: SSAValue | Attribute) -> bool:
    return isinstance(element_type(value), QuantizedType)


# --------------------------------------------------------------------------- enums


class PoolKind(StrEnum):
    AVG = auto()
    MAX = auto()


class ResizeMode(StrEnum):
    NEAREST = auto()
    LINEAR = auto()


class CoordinateTransform(StrEnum):
    HALF_PIXEL = auto()
    PYTORCH_HALF_PIXEL = auto()
    ALIGN_CORNERS = auto()
    ASYMMETRIC = auto()


class NearestRounding(StrEnum):
    ROUND_PREFER_FLOOR = auto()
    ROUND_PREFER_CEIL = auto()
    FLOOR = auto()
    CEIL = auto()


class PadMode(StrEnum):
    CONSTANT = auto()
    REFLECT = auto()
    EDGE = auto()


class UnaryFunction(StrEnum):
    """Elementwise functions that become 256-entry tables once quantized.

    Parameters (alpha, beta, min, max) travel in the op's `params` dictionary.
    """

    IDENTITY = auto()
    RELU = auto()
    SIGMOID = auto()
    TANH = auto()
    HARDSWISH = auto()
    HARDSIGMOID = auto()
    LEAKYRELU = auto()
    SILU = auto()
    GELU = auto()
    ELU = auto()
    SOFTPLUS = auto()
    EXP = auto()
    ERF = auto()
    SQRT = auto()
    RECIPROCAL = auto()
    ABS = auto()
    NEG = auto()
    CLIP = auto()


@irdl_attr_definition
class PoolKindAttr(EnumAttribute[PoolKind], SpacedOpaqueSyntaxAttribute):
    name = "axq.pool_kind"


@irdl_attr_definition
class ResizeModeAttr(EnumAttribute[ResizeMode], SpacedOpaqueSyntaxAttribute):
    name = "axq.resize_mode"


@irdl_attr_definition
class CoordinateTransformAttr(EnumAttribute[CoordinateTransform], SpacedOpaqueSyntaxAttribute):
    name = "axq.coordinate_transform"


@irdl_attr_definition
class NearestRoundingAttr(EnumAttribute[NearestRounding], SpacedOpaqueSyntaxAttribute):
    name = "axq.nearest_rounding"


@irdl_attr_definition
class PadModeAttr(EnumAttribute[PadMode], SpacedOpaqueSyntaxAttribute):
    name = "axq.pad_mode"


@irdl_attr_definition
class UnaryFunctionAttr(EnumAttribute[UnaryFunction], SpacedOpaqueSyntaxAttribute):
    name = "axq.unary_function"


# --------------------------------------------------------------------------- helpers


def ints(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def floats(values: Sequence[float]) -> DenseArrayBase:
    return DenseArrayBase.from_list(f64, [float(v) for v in values])


def int_attr(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


def float_attr(value: float) -> FloatAttr:
    return FloatAttr(float(value), f64)


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output extent of a sliding window, as ONNX defines it for Conv and pooling."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window must start inside the input or its leading pad
    return out


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerifyException(message)


class _AxqOp(IRDLOperation):
    """Shared checks: float and quantized tensors are not mixed.

    Properties print in the attribute dictionary, as MLIR prints them.
    """

    irdl_options = (ParsePropInAttrDict(),)

    def _check_same_numeric_kind(self, values: Sequence[SSAValue]) -> None:
        kinds = {is_quantized(v) for v in values if not _is_integer_tensor(v)}
        _require(len(kinds) <= 1, f"{self.name} mixes float and quantized tensors")


def _is_integer_tensor(value: SSAValue) -> bool:
    return isinstance(element_type(value), IntegerType)


# --------------------------------------------------------------------------- ops


@irdl_op_definition
class ConstantOp(_AxqOp):
    """A weight or other constant tensor; the data is a bytes-backed dense attribute."""

    name = "axq.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(ConstantLike(), Pure())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, value: DenseIntOrFPElementsAttr, result_type: TensorType | None = None):
        super().__init__(
            properties={"value": value},
            result_types=[value.type if result_type is None else result_type],
        )

    def verify_(self) -> None:
        value_type = self.value.type
        _require(
            tuple(value_type.get_shape()) == shape_of(self.result),
            f"constant value shape {tuple(value_type.get_shape())} differs from result "
            f"shape {shape_of(self.result)}",
        )
        result_element = element_type(self.result)
        expected = (
            result_element.storage if isinstance(result_element, QuantizedType) else result_element
        )
        _require(
            value_type.get_element_type() == expected,
            f"constant data of type {value_type.get_element_type()} cannot hold {result_element}",
        )

    def to_numpy(self) -> np.ndarray:
        from aipuc.dialects.tensors import numpy_from_dense

        return numpy_from_dense(self.value)


class _WeightedOp(_AxqOp):
    """Conv-like op: input, weight and bias operands, one result."""

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)"
    )

    def _check_bias(self, out_channels: int) -> None:
        _require(shape_of(self.bias) == (out_channels,),
                 f"{self.name} bias must have shape ({out_channels},), got {shape_of(self.bias)}")
        self._check_same_numeric_kind([self.input, self.weight, self.result])
        if is_quantized(self.input):
            bias_type = element_type(self.bias)
            _require(isinstance(bias_type, QuantizedType) and bias_type.storage.width.data == 32,
                     f"{self.name} quantized bias must be int32 quantized")


@irdl_op_definition
class Conv2dOp(_WeightedOp):
    """2-D convolution (grouped and depthwise included), ONNX Conv semantics, NCHW/OIHW.

    pads are [top, left, bottom, right].
    """

    name = "axq.conv2d"
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr)

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue, result_type: Attribute,
                 strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group: int = 1):
        super().__init__(
            operands=[input, weight, bias], result_types=[result_type],
            properties={"strides": ints(strides), "pads": ints(pads),
                        "dilations": ints(dilations), "group": int_attr(group)},
        )

    def verify_(self) -> None:
        in_shape, w_shape, out_shape = shape_of(self.input), shape_of(self.weight), shape_of(
            self.result)
        _require(len(in_shape) == 4 and len(w_shape) == 4 and len(out_shape) == 4,
                 "axq.conv2d works on 4-D NCHW tensors and OIHW weights")
        strides, pads = self.strides.get_values(), self.pads.get_values()
        dilations, group = self.dilations.get_values(), self.group.value.data
        _require(len(strides) == 2 and len(dilations) == 2 and len(pads) == 4,
                 "axq.conv2d needs 2 strides, 2 dilations and 4 pads")
        _require(min(strides) >= 1 and min(dilations) >= 1 and min(pads) >= 0,
                 "axq.conv2d strides and dilations must be >= 1, pads >= 0")
        _require(group >= 1 and in_shape[1] == w_shape[1] * group and w_shape[0] % group == 0,
                 f"axq.conv2d: {in_shape[1]} input channels do not match weight {w_shape} "
                 f"with group {group}")
        expected = (in_shape[0], w_shape[0],
                    conv_output_size(in_shape[2], w_shape[2], strides[0], pads[0], pads[2],
                                     dilations[0]),
                    conv_output_size(in_shape[3], w_shape[3], strides[1], pads[1], pads[3],
                                     dilations[1]))
        _require(out_shape == expected,
                 f"axq.conv2d result shape {out_shape} should be {expected}")
        self._check_bias(w_shape[0])


@irdl_op_definition
class ConvTranspose2dOp(_WeightedOp):
    """2-D transposed convolution, ONNX ConvTranspose semantics (weight is IOHW)."""

    name = "axq.conv_transpose2d"
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    output_padding = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr)

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue, result_type: Attribute,
                 strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), output_padding=(0, 0),
                 group: int = 1):
        super().__init__(
            operands=[input, weight, bias], result_types=[result_type],
            properties={"strides": ints(strides), "pads": ints(pads),
                        "dilations": ints(dilations), "output_padding": ints(output_padding),
                        "group": int_attr(group)},
        )

    def verify_(self) -> None:
        in_shape, w_shape, out_shape = shape_of(self.input), shape_of(self.weight), shape_of(
            self.result)
        _require(len(in_shape) == 4 and len(w_shape) == 4,
                 "axq.conv_transpose2d works on 4-D tensors")
        group = self.group.value.data
        _require(in_shape[1] == w_shape[0], "axq.conv_transpose2d input channels != weight dim 0")
        s, p = self.strides.get_values(), self.pads.get_values()
        d, op = self.dilations.get_values(), self.output_padding.get_values()
        expected = (in_shape[0], w_shape[1] * group) + tuple(
            s[i] * (in_shape[2 + i] - 1) + op[i] + d[i] * (w_shape[2 + i] - 1) + 1 - p[i]
            - p[i + 2] for i in range(2))
        _require(out_shape == expected,
                 f"axq.conv_transpose2d result shape {out_shape} should be {expected}")
        self._check_bias(w_shape[1] * group)


@irdl_op_definition
class DenseOp(_WeightedOp):
    """Fully connected layer: y = x @ W^T + b with W of shape [N, K] (ONNX Gemm, transA=0)."""

    name = "axq.dense"

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue, result_type: Attribute):
        super().__init__(operands=[input, weight, bias], result_types=[result_type])

    def verify_(self) -> None:
        in_shape, w_shape = shape_of(self.input), shape_of(self.weight)
        _require(len(w_shape) == 2 and len(in_shape) >= 1 and in_shape[-1] == w_shape[1],
                 f"axq.dense input {in_shape} does not match weight {w_shape}")
        _require(shape_of(self.result) == in_shape[:-1] + (w_shape[0],),
                 f"axq.dense result shape should be {in_shape[:-1] + (w_shape[0],)}")
        self._check_bias(w_shape[0])


class _BinaryOp(_AxqOp):
    """Elementwise op with NumPy (ONNX multidirectional) broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self) -> None:
        try:
            expected = np.broadcast_shapes(shape_of(self.lhs), shape_of(self.rhs))
        except ValueError as error:
            raise VerifyException(f"{self.name} operands do not broadcast: {error}") from None
        _require(shape_of(self.result) == tuple(expected),
                 f"{self.name} result shape {shape_of(self.result)} should be {expected}")
        self._check_same_numeric_kind([self.lhs, self.rhs, self.result])


@irdl_op_definition
class AddOp(_BinaryOp):
    name = "axq.add"


@irdl_op_definition
class SubOp(_BinaryOp):
    name = "axq.sub"


@irdl_op_definition
class MulOp(_BinaryOp):
    name = "axq.mul"


@irdl_op_definition
class PReluOp(_BinaryOp):
    """x if x >= 0 else slope * x; slope broadcasts (scalar or per channel)."""

    name = "axq.prelu"


@irdl_op_definition
class MatMulOp(_AxqOp):
    """Batched matrix product with NumPy matmul semantics (attention blocks)."""

    name = "axq.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self) -> None:
        a, b = shape_of(self.lhs), shape_of(self.rhs)
        try:
            expected = np.matmul(np.empty(a, np.int8), np.empty(b, np.int8)).shape
        except ValueError as error:
            raise VerifyException(f"axq.matmul shapes {a} and {b} do not match: {error}") from None
        _require(shape_of(self.result) == expected,
                 f"axq.matmul result shape {shape_of(self.result)} should be {expected}")
        self._check_same_numeric_kind([self.lhs, self.rhs, self.result])


class _UnaryOp(_AxqOp):
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"


class _ShapePreservingOp(_UnaryOp):
    def verify_(self) -> None:
        _require(shape_of(self.input) == shape_of(self.result),
                 f"{self.name} keeps the shape: {shape_of(self.input)} != {shape_of(self.result)}")


@irdl_op_definition
class LutOp(_ShapePreservingOp):
    """A unary elementwise function; quantized, it is a 256-entry table indexed by q + 128."""

    name = "axq.lut"
    function = prop_def(UnaryFunctionAttr)
    params = prop_def(DictionaryAttr)
    table = opt_prop_def(DenseIntOrFPElementsAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, function: UnaryFunction,
                 params: Mapping[str, float] | None = None,
                 table: DenseIntOrFPElementsAttr | None = None):
        properties: dict[str, Attribute] = {
            "function": UnaryFunctionAttr(function),
            "params": DictionaryAttr({k: float_attr(v) for k, v in (params or {}).items()}),
        }
        if table is not None:
            properties["table"] = table
        super().__init__(operands=[input], result_types=[result_type], properties=properties)

    def param_values(self) -> dict[str, float]:
        return {k: v.value.data for k, v in self.params.data.items()}  # type: ignore[union-attr]

    def verify_(self) -> None:
        super().verify_()
        for key, value in self.params.data.items():
            _require(isinstance(value, FloatAttr), f"axq.lut parameter '{key}' must be a float")
        if self.table is not None:
            _require(tuple(self.table.get_shape()) == (256,),
                     "axq.lut table must have 256 entries")


@irdl_op_definition
class ClipOp(_ShapePreservingOp):
    """Clamp to [min, max] (ReLU, ReLU6, HardTanh)."""

    name = "axq.clip"
    min = prop_def(FloatAttr)
    max = prop_def(FloatAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, min: float, max: float):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"min": float_attr(min), "max": float_attr(max)})

    def verify_(self) -> None:
        super().verify_()
        _require(self.min.value.data <= self.max.value.data, "axq.clip needs min <= max")


@irdl_op_definition
class SoftmaxOp(_ShapePreservingOp):
    """Softmax along one axis; quantized, it runs on the DPU in float18."""

    name = "axq.softmax"
    axis = prop_def(IntegerAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, axis: int):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"axis": int_attr(axis)})

    def verify_(self) -> None:
        super().verify_()
        rank = len(shape_of(self.input))
        _require(-rank <= self.axis.value.data < rank, "axq.softmax axis out of range")


@irdl_op_definition
class QuantizeOp(_ShapePreservingOp):
    """float -> quantized, round half to even then clamp."""

    name = "axq.quantize"

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        super().verify_()
        _require(not is_quantized(self.input) and is_quantized(self.result),
                 "axq.quantize maps a float tensor to a quantized one")


@irdl_op_definition
class DequantizeOp(_ShapePreservingOp):
    """quantized -> float: scale * (q - zero_point)."""

    name = "axq.dequantize"

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        super().verify_()
        _require(is_quantized(self.input) and not is_quantized(self.result),
                 "axq.dequantize maps a quantized tensor to a float one")


@irdl_op_definition
class RequantizeOp(_ShapePreservingOp):
    """quantized -> quantized with other parameters, by fixed-point multiplier and shift."""

    name = "axq.requantize"

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        super().verify_()
        _require(is_quantized(self.input) and is_quantized(self.result),
                 "axq.requantize maps a quantized tensor to a quantized one")


@irdl_op_definition
class ReshapeOp(_UnaryOp):
    """Reshape (also Flatten, Squeeze, Unsqueeze); the target shape is the result type's."""

    name = "axq.reshape"

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        _require(np.prod(shape_of(self.input)) == np.prod(shape_of(self.result)),
                 f"axq.reshape cannot change the element count: {shape_of(self.input)} -> "
                 f"{shape_of(self.result)}")
        _require(element_type(self.input) == element_type(self.result),
                 "axq.reshape keeps the element type")


@irdl_op_definition
class TransposeOp(_UnaryOp):
    name = "axq.transpose"
    perm = prop_def(DenseArrayBase)

    def __init__(self, input: SSAValue, result_type: Attribute, perm: Sequence[int]):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"perm": ints(perm)})

    def verify_(self) -> None:
        perm, in_shape = self.perm.get_values(), shape_of(self.input)
        _require(sorted(perm) == list(range(len(in_shape))), f"axq.transpose bad perm {perm}")
        expected = tuple(in_shape[p] for p in perm)
        _require(shape_of(self.result) == expected,
                 f"axq.transpose result shape should be {expected}")


@irdl_op_definition
class PadOp(_UnaryOp):
    """Pad with ONNX pads layout [begin_0, ..., begin_n, end_0, ..., end_n]."""

    name = "axq.pad"
    pads = prop_def(DenseArrayBase)
    value = prop_def(FloatAttr)
    mode = prop_def(PadModeAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, pads: Sequence[int],
                 value: float = 0.0, mode: PadMode = PadMode.CONSTANT):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"pads": ints(pads), "value": float_attr(value),
                                     "mode": PadModeAttr(mode)})

    def verify_(self) -> None:
        in_shape, pads = shape_of(self.input), self.pads.get_values()
        rank = len(in_shape)
        _require(len(pads) == 2 * rank, f"axq.pad needs {2 * rank} pads")
        expected = tuple(in_shape[i] + pads[i] + pads[i + rank] for i in range(rank))
        _require(shape_of(self.result) == expected, f"axq.pad result shape should be {expected}")


@irdl_op_definition
class SliceOp(_UnaryOp):
    """Static strided slice (ONNX Slice with constant starts/ends/axes/steps)."""

    name = "axq.slice"
    starts = prop_def(DenseArrayBase)
    ends = prop_def(DenseArrayBase)
    axes = prop_def(DenseArrayBase)
    steps = prop_def(DenseArrayBase)

    def __init__(self, input: SSAValue, result_type: Attribute, starts: Sequence[int],
                 ends: Sequence[int], axes: Sequence[int], steps: Sequence[int]):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"starts": ints(starts), "ends": ints(ends),
                                     "axes": ints(axes), "steps": ints(steps)})

    def index(self) -> tuple[slice, ...]:
        """The NumPy index that performs this slice."""
        index = [slice(None)] * len(shape_of(self.input))
        for start, end, axis, step in zip(self.starts.get_values(), self.ends.get_values(),
                                          self.axes.get_values(), self.steps.get_values(),
                                          strict=True):
            index[axis] = slice(start, end, step)
        return tuple(index)

    def verify_(self) -> None:
        lengths = {len(self.starts.get_values()), len(self.ends.get_values()),
                   len(self.axes.get_values()), len(self.steps.get_values())}
        _require(len(lengths) == 1, "axq.slice needs equally many starts, ends, axes and steps")
        rank = len(shape_of(self.input))
        _require(all(0 <= a < rank for a in self.axes.get_values()), "axq.slice axis out of range")
        _require(all(s != 0 for s in self.steps.get_values()), "axq.slice step must not be 0")
        expected = np.empty(shape_of(self.input), np.int8)[self.index()].shape
        _require(shape_of(self.result) == expected,
                 f"axq.slice result shape {shape_of(self.result)} should be {expected}")


class _WindowOp(_UnaryOp):
    """Sliding-window pooling over H and W of an NCHW tensor; pads [top, left, bottom, right]."""

    kernel = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    ceil_mode = prop_def(BoolAttr)

    def _window_properties(self, kernel, strides, pads, dilations, ceil_mode):
        return {"kernel": ints(kernel), "strides": ints(strides), "pads": ints(pads),
                "dilations": ints(dilations), "ceil_mode": BoolAttr.from_bool(ceil_mode)}

    def verify_(self) -> None:
        in_shape = shape_of(self.input)
        _require(len(in_shape) == 4, f"{self.name} works on 4-D NCHW tensors")
        k, s = self.kernel.get_values(), self.strides.get_values()
        p, d = self.pads.get_values(), self.dilations.get_values()
        ceil_mode = self.ceil_mode.value.data != 0  # xDSL stores a true i1 as -1
        expected = in_shape[:2] + tuple(
            conv_output_size(in_shape[2 + i], k[i], s[i], p[i], p[i + 2], d[i], ceil_mode)
            for i in range(2))
        _require(shape_of(self.result) == expected,
                 f"{self.name} result shape {shape_of(self.result)} should be {expected}")


@irdl_op_definition
class MaxPoolOp(_WindowOp):
    name = "axq.max_pool"

    def __init__(self, input: SSAValue, result_type: Attribute, kernel, strides=(1, 1),
                 pads=(0, 0, 0, 0), dilations=(1, 1), ceil_mode: bool = False):
        super().__init__(operands=[input], result_types=[result_type],
                         properties=self._window_properties(kernel, strides, pads, dilations,
                                                            ceil_mode))


@irdl_op_definition
class AvgPoolOp(_WindowOp):
    name = "axq.avg_pool"
    count_include_pad = prop_def(BoolAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, kernel, strides=(1, 1),
                 pads=(0, 0, 0, 0), ceil_mode: bool = False, count_include_pad: bool = False):
        properties = self._window_properties(kernel, strides, pads, (1, 1), ceil_mode)
        properties["count_include_pad"] = BoolAttr.from_bool(count_include_pad)
        super().__init__(operands=[input], result_types=[result_type], properties=properties)


@irdl_op_definition
class GlobalPoolOp(_UnaryOp):
    """Global average or max over all spatial axes, keeping them as size 1."""

    name = "axq.global_pool"
    kind = prop_def(PoolKindAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, kind: PoolKind):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"kind": PoolKindAttr(kind)})

    def verify_(self) -> None:
        in_shape = shape_of(self.input)
        _require(len(in_shape) >= 3, "axq.global_pool needs spatial axes")
        expected = in_shape[:2] + (1,) * (len(in_shape) - 2)
        _require(shape_of(self.result) == expected,
                 f"axq.global_pool result shape should be {expected}")


@irdl_op_definition
class ResizeOp(_UnaryOp):
    """Resize by per-axis scales (nearest or linear), ONNX Resize semantics."""

    name = "axq.resize"
    mode = prop_def(ResizeModeAttr)
    scales = prop_def(DenseArrayBase)
    coordinate_transform = prop_def(CoordinateTransformAttr)
    nearest_rounding = prop_def(NearestRoundingAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, mode: ResizeMode,
                 scales: Sequence[float],
                 coordinate_transform: CoordinateTransform = CoordinateTransform.HALF_PIXEL,
                 nearest_rounding: NearestRounding = NearestRounding.ROUND_PREFER_FLOOR):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"mode": ResizeModeAttr(mode), "scales": floats(scales),
                                     "coordinate_transform":
                                         CoordinateTransformAttr(coordinate_transform),
                                     "nearest_rounding": NearestRoundingAttr(nearest_rounding)})

    def verify_(self) -> None:
        in_shape, scales = shape_of(self.input), self.scales.get_values()
        _require(len(scales) == len(in_shape), "axq.resize needs one scale per axis")
        expected = tuple(int(np.floor(n * s)) for n, s in zip(in_shape, scales, strict=True))
        _require(shape_of(self.result) == expected,
                 f"axq.resize result shape {shape_of(self.result)} should be {expected}")


@irdl_op_definition
class ConcatOp(_AxqOp):
    name = "axq.concat"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure())
    assembly_format = "$inputs attr-dict `:` functional-type($inputs, $result)"

    def __init__(self, inputs: Sequence[SSAValue], result_type: Attribute, axis: int):
        super().__init__(operands=[inputs], result_types=[result_type],
                         properties={"axis": int_attr(axis)})

    def verify_(self) -> None:
        shapes = [shape_of(v) for v in self.inputs]
        axis = self.axis.value.data
        _require(len(shapes) >= 1, "axq.concat needs at least one input")
        rank = len(shapes[0])
        _require(0 <= axis < rank, "axq.concat axis out of range (normalised, non-negative)")
        _require(all(len(s) == rank and s[:axis] + s[axis + 1:] == shapes[0][:axis]
                     + shapes[0][axis + 1:] for s in shapes),
                 "axq.concat inputs differ outside the concatenation axis")
        expected = shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]
        _require(shape_of(self.result) == expected,
                 f"axq.concat result shape should be {expected}")
        self._check_same_numeric_kind([*self.inputs, self.result])


@irdl_op_definition
class SplitOp(_AxqOp):
    name = "axq.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($outputs)"

    def __init__(self, input: SSAValue, result_types: Sequence[Attribute], axis: int):
        super().__init__(operands=[input], result_types=[result_types],
                         properties={"axis": int_attr(axis)})

    def split_sizes(self) -> list[int]:
        return [shape_of(r)[self.axis.value.data] for r in self.outputs]

    def verify_(self) -> None:
        in_shape, axis = shape_of(self.input), self.axis.value.data
        _require(0 <= axis < len(in_shape), "axq.split axis out of range (normalised)")
        _require(sum(self.split_sizes()) == in_shape[axis],
                 f"axq.split sizes {self.split_sizes()} do not add up to {in_shape[axis]}")
        for result in self.outputs:
            shape = shape_of(result)
            _require(shape[:axis] + shape[axis + 1:] == in_shape[:axis] + in_shape[axis + 1:],
                     "axq.split results differ from the input outside the split axis")


@irdl_op_definition
class HostOp(_AxqOp):
    """An ONNX operator run on the host (shape arithmetic, normalisation, decode tails).

    `attributes` holds the ONNX node's attributes converted to builtin attributes; the
    interpreters run it with onnx's reference implementation of `op_type` at `opset`.
    """

    name = "axq.host"
    inputs = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    op_type = prop_def(StringAttr)
    domain = prop_def(StringAttr)
    opset = prop_def(IntegerAttr)
    onnx_attributes = prop_def(DictionaryAttr, prop_name="attributes")
    assembly_format = "$op_type `(` $inputs `)` attr-dict `:` functional-type($inputs, $outputs)"

    def __init__(self, op_type: str, inputs: Sequence[SSAValue],
                 result_types: Sequence[Attribute], attributes: Mapping[str, Attribute],
                 opset: int, domain: str = ""):
        super().__init__(operands=[inputs], result_types=[result_types],
                         properties={"op_type": StringAttr(op_type), "domain": StringAttr(domain),
                                     "opset": int_attr(opset),
                                     "attributes": DictionaryAttr(dict(attributes))})


Axq = Dialect(
    "axq",
    [
        ConstantOp,
        Conv2dOp,
        ConvTranspose2dOp,
        DenseOp,
        MatMulOp,
        AddOp,
        SubOp,
        MulOp,
        PReluOp,
        LutOp,
        ClipOp,
        SoftmaxOp,
        QuantizeOp,
        DequantizeOp,
        RequantizeOp,
        ReshapeOp,
        TransposeOp,
        PadOp,
        SliceOp,
        MaxPoolOp,
        AvgPoolOp,
        GlobalPoolOp,
        ResizeOp,
        ConcatOp,
        SplitOp,
        HostOp,
    ],
    [
        QuantizedType,
        PoolKindAttr,
        ResizeModeAttr,
        CoordinateTransformAttr,
        NearestRoundingAttr,
        PadModeAttr,
        UnaryFunctionAttr,
    ],
)
