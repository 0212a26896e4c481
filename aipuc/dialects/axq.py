"""The `axq` dialect: the quantized graph.

Ops work on ranked tensors in ONNX's NCHW layout until legalization. Before quantization
the element type is `f32`; after it, `!axq.q<...>` carries the scale and zero point of
every int8 (or int32 bias) tensor, per tensor or per axis, like MLIR's `!quant.uniform`:

    %w = axq.constant {value = dense<"0x..."> : tensor<64x3x7x7xi8>}
        : tensor<64x3x7x7x!axq.q<i8, axis 0, [0.0123:0, 0.0098:0, ...]>>
    %y = axq.conv2d %x, %w, %b {strides = array<i64: 2, 2>, ...}
        : (tensor<1x3x224x224x!axq.q<i8, 0.0187:-14>>, ...) -> tensor<...>

ONNX operators that the accelerator cannot run stay `axq.host` ops, wherever they sit, that
carry the ONNX op type and attributes; @main is then accelerated segments with host ops
between them (`aipuc.placement.segments`). The interpreters run a host op on the host engine
(onnxruntime, else onnx's reference implementation).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from enum import auto
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    f64,
    i8,
    i32,
    i64,
)
from xdsl.dialects.utils.enum_attribute import EnumAttribute
from xdsl.ir import (
    Attribute,
    Dialect,
    Operation,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
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
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, OpTrait, Pure
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from aipuc.dialects import resources
from aipuc.dialects.quantized_type import QuantizedType
from aipuc.dialects.tensors import numpy_from_dense

NAME_ATTR = "axq.name"
"""Argument/result attribute of the graph function holding the ONNX tensor name."""


# --------------------------------------------------------------------------- types
# `!axq.q` (QuantizedType) is defined in aipuc.dialects.quantized_type.


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerifyException(message)


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
    GELU_TANH = auto()
    SOFTSIGN = auto()
    MISH = auto()
    SELU = auto()
    CELU = auto()
    THRESHOLDEDRELU = auto()
    LOG = auto()
    SIN = auto()
    COS = auto()
    POW = auto()


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


def conv_output_size(
    size: int,
    kernel: int,
    stride: int,
    pad_begin: int,
    pad_end: int,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output extent of a sliding window, as ONNX defines it for Conv and pooling."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window must start inside the input or its leading pad
    return out


CHANNEL_AXIS = 1
"""The NCHW channel axis: the one axis along which activations may be quantized per axis."""


# --------------------------------------------------------------------------- traits
# Facts about op classes that quantization, calibration and later passes read instead of
# lists of op types, so a new op states its facts where it is defined. Like xDSL's
# `ConditionallySpeculatable`, a fact whose truth depends on an op's properties is a
# subclass overriding `holds`; ask through the functions below, not `has_trait`.


class _OpFact(OpTrait):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        """Whether the fact holds for this op (always, unless a subclass narrows it)."""
        return True


class SharesInputQuantization(_OpFact):
    """The results keep the input's codes (data movement, monotone clamps), so quantized
    they have exactly the input's type."""


class PreservesChannelAxis(_OpFact):
    """Channel c (axis 1 of a 4-D input) of every result comes from channel c of the input,
    so a per-channel type stays valid across the op."""


class CommutesWithClamp(_OpFact):
    """A clamp of the result equals the op applied to the clamped input, so a later clip's
    range may decide the input's quantization (activation fusion looks through it)."""


class RequantizesPerChannel(_OpFact):
    """The integer kernel ends in a requantization that may use one scale per output
    channel, so the result may be quantized per channel."""


class Weighted(_OpFact):
    """Operands `input`, `weight` and `bias`: only `input` is an activation; the weight and
    bias are constants that quantization turns into int8 and int32 codes."""


class FloatParameters(_OpFact):
    """Operands after the first are f32 parameters that stay float after quantization (the
    DPU holds them as float18): only the first operand is an activation."""


class JoinsInResultType(_OpFact):
    """Quantized, every operand has the result's type (the quantizer requantizes the others),
    after which the op only moves or selects codes: an operand read only here may be
    produced in the result's type directly."""


class QuantizationConversion(_OpFact):
    """An op that quantization inserts to convert between float and quantized types."""


def _fact(op: Operation, fact: type[_OpFact]) -> bool:
    trait = op.get_trait(fact)
    return trait is not None and trait.holds(op)


def shares_input_quantization(op: Operation) -> bool:
    return _fact(op, SharesInputQuantization)


def preserves_channel_axis(op: Operation) -> bool:
    return _fact(op, PreservesChannelAxis)


def commutes_with_clamp(op: Operation) -> bool:
    return _fact(op, CommutesWithClamp)


def requantizes_per_channel(op: Operation) -> bool:
    return _fact(op, RequantizesPerChannel)


def is_weighted(op: Operation) -> bool:
    return _fact(op, Weighted)


def has_float_parameters(op: Operation) -> bool:
    return _fact(op, FloatParameters)


def joins_in_result_type(op: Operation) -> bool:
    return _fact(op, JoinsInResultType)


def is_quantization_conversion(op: Operation) -> bool:
    return _fact(op, QuantizationConversion)


def _check_tensor_type(op_name: str, value: SSAValue) -> None:
    """Static shape, and a per-axis type that has one scale per index of its axis."""
    shape = shape_of(value)
    if not all(size >= 0 for size in shape):
        raise VerifyException(f"{op_name} needs static shapes, got {value.type}")
    element = element_type(value)
    if isinstance(element, QuantizedType) and element.is_per_axis:
        axis, count = element.axis_index, len(element.scales.get_values())
        _require(
            axis < len(shape),
            f"{op_name}: quantization axis {axis} is out of range for a rank-{len(shape)} tensor",
        )
        _require(
            shape[axis] == count,
            f"{op_name}: a per-axis type along axis {axis} needs {shape[axis]} scales (the "
            f"size of that axis), got {count}",
        )


def _is_per_axis(value: SSAValue) -> bool:
    element = element_type(value)
    return isinstance(element, QuantizedType) and element.is_per_axis


def _scales_per_channel(type_: QuantizedType, channel_of: np.ndarray) -> np.ndarray:
    """The scale of each entry of `channel_of` (per-axis indices; any index if per tensor)."""
    if type_.is_per_axis:
        return type_.scale_array()[channel_of]
    return np.full(len(channel_of), type_.scale)


class _AxqOp(IRDLOperation):
    """Every axq op: static shapes, and per-axis types that fit their tensors.

    Properties print in the attribute dictionary, as MLIR prints them.
    """

    irdl_options = (ParsePropInAttrDict(),)

    def verify_(self) -> None:
        for value in (*self.operands, *self.results):
            _check_tensor_type(self.name, value)


class _ComputeOp(_AxqOp):
    """An op of the accelerated graph: f32 tensors before quantization, i8 codes after.

    Float and quantized tensors are not mixed (axq.quantize and axq.dequantize convert),
    and a per-axis activation is quantized per channel.
    """

    def _code_tensors(self) -> Sequence[SSAValue]:
        """Tensors holding f32 values or i8 codes (all but a bias)."""
        return (*self.operands, *self.results)

    def _activations(self) -> Sequence[SSAValue]:
        """Tensors that, quantized per axis, must be quantized along their channel axis."""
        return self._code_tensors()

    def _same_kind_tensors(self) -> Sequence[SSAValue]:
        """Tensors that are all float or all quantized."""
        return (*self.operands, *self.results)

    def _channel_axis(self, value: SSAValue) -> int:
        return CHANNEL_AXIS

    def verify_(self) -> None:
        super().verify_()
        for value in self._code_tensors():
            element = element_type(value)
            if element != f32 and not (
                isinstance(element, QuantizedType) and element.storage == i8
            ):
                raise VerifyException(
                    f"{self.name} computes on f32 or i8-quantized tensors, got {element}"
                )
        kinds = {is_quantized(v) for v in self._same_kind_tensors()}
        _require(
            len(kinds) <= 1,
            f"{self.name} mixes float and quantized tensors; convert with axq.quantize or "
            f"axq.dequantize",
        )
        for value in self._activations():
            if _is_per_axis(value):
                axis, channel_axis = element_type(value).axis_index, self._channel_axis(value)
                _require(
                    axis == channel_axis,
                    f"{self.name}: a per-axis activation is quantized per channel (axis "
                    f"{channel_axis}), got axis {axis}",
                )

    def _check_per_tensor(self, values: Sequence[SSAValue], why: str) -> None:
        for value in values:
            if _is_per_axis(value):
                raise VerifyException(
                    f"{self.name} needs per-tensor quantization ({why}), got "
                    f"the per-axis {element_type(value)}"
                )

    def _check_keeps_type(self, input: SSAValue, results: Sequence[SSAValue]) -> None:
        """Ops that move codes without rescaling: results have the input's element type."""
        for result in results:
            if element_type(result) != element_type(input):
                raise VerifyException(
                    f"{self.name} moves codes without rescaling, so its result has the input's "
                    f"element type: got {element_type(result)} for {element_type(input)}"
                )


def _check_window_geometry(
    op_name: str,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    kernel: Sequence[int] = (1, 1),
) -> None:
    """2-D window attributes: 2 kernel sizes, strides, dilations (>= 1) and 4 pads (>= 0)."""
    for what, values in (("kernel sizes", kernel), ("strides", strides), ("dilations", dilations)):
        _require(
            len(values) == 2 and min(values) >= 1,
            f"{op_name} needs 2 {what} >= 1, got {list(values)}",
        )
    _require(
        len(pads) == 4 and min(pads) >= 0,
        f"{op_name} needs 4 pads >= 0 (top, left, bottom, right), got {list(pads)}",
    )


def _window_output(
    op_name: str,
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[int, int]:
    """Output height and width of a 2-D window over an NCHW input; the window must fit
    (ceil mode lets it reach `stride - 1` past the end padding)."""
    sizes = []
    for i in range(2):
        extent = dilations[i] * (kernel[i] - 1) + 1
        padded = in_shape[2 + i] + pads[i] + pads[i + 2]
        reach = strides[i] - 1 if ceil_mode else 0
        _require(
            extent <= padded + reach,
            f"{op_name} window of extent {extent} does not fit the padded input extent "
            f"{padded}{f' (+ {reach} in ceil mode)' if reach else ''} along axis {2 + i}",
        )
        sizes.append(
            conv_output_size(
                in_shape[2 + i],
                kernel[i],
                strides[i],
                pads[i],
                pads[i + 2],
                dilations[i],
                ceil_mode,
            )
        )
    return sizes[0], sizes[1]


# --------------------------------------------------------------------------- ops


def _decimal_text_is_exact(value: DenseIntOrFPElementsAttr) -> bool:
    """Whether xDSL's decimal text of `value` parses back to the same bits.

    xDSL 0.74 prints a float element that is inf or NaN, or integral with more significant
    digits than `%.5e` keeps (1234567.0), as hex bits, and parses those back as an integer
    value; and it prints all-zero data whose signs differ as one splat zero. Other element
    types print exactly or are not NumPy types (left to xDSL).
    """
    if not isinstance(value.get_element_type(), Float16Type | Float32Type | Float64Type):
        return True
    data = numpy_from_dense(value).astype(np.float64)
    magnitude = np.abs(data)
    hex_printed = ~np.isfinite(data) | (
        (magnitude >= 1e6) & (magnitude < 1e17) & (data == np.round(data))
    )
    negative = np.signbit(data)
    mixed_zero_splat = bool((data == 0).all() and negative.any() and not negative.all())
    return not hex_printed.any() and not mixed_zero_splat


@irdl_op_definition
class ConstantOp(_AxqOp):
    """A weight or other constant tensor; the data is a bytes-backed dense attribute.

    The custom format prints the data as decimals, or as one hex string where xDSL's
    decimals would not read back exactly, so a printed graph reloads bit for bit. In IR
    files, large data is a `#axq.resource` reference to the file's weights file
    (`aipuc.dialects.resources`), resolved here while parsing.
    """

    name = "axq.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(ConstantLike(), Pure())

    def __init__(self, value: DenseIntOrFPElementsAttr, result_type: TensorType | None = None):
        super().__init__(
            properties={"value": value},
            result_types=[value.type if result_type is None else result_type],
        )

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        start = parser.pos
        attributes = dict(parser.parse_optional_attr_dict())
        value = attributes.pop("value", None)
        if isinstance(value, resources.ResourceAttr):  # data in the IR file's weights file
            try:
                value = resources.resolve(value, parser.lexer.input.name)
            except resources.ResourceError as error:
                parser.raise_error(str(error), start, parser.pos)
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error("axq.constant needs a dense `value` in its attribute dictionary")
        parser.parse_punctuation(":")
        result_type = parser.parse_type()
        return cls.create(
            properties={"value": value}, attributes=attributes, result_types=[result_type]
        )

    def print(self, printer: Printer) -> None:
        def print_entry(entry: tuple[str, Attribute]) -> None:
            name, attr = entry
            printer.print_identifier_or_string_literal(name)
            if isinstance(attr, UnitAttr):
                return
            printer.print_string(" = ")
            if (
                attr is self.value
                and not resources.is_external(printer, attr)
                and not _decimal_text_is_exact(self.value)
            ):
                printer.print_string(f'dense<"0x{self.value.data.data.hex().upper()}"> : ')
                printer.print_attribute(self.value.type)
            else:
                printer.print_attribute(attr)

        printer.print_string(" ")
        with printer.in_braces():
            printer.print_list({**self.attributes, "value": self.value}.items(), print_entry)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    def verify_(self) -> None:
        super().verify_()
        value_type = self.value.type
        if not isinstance(value_type, TensorType):
            raise VerifyException(f"axq.constant value must be a tensor, got {value_type}")
        _require(
            tuple(value_type.get_shape()) == shape_of(self.result),
            f"axq.constant value shape {tuple(value_type.get_shape())} differs from result "
            f"shape {shape_of(self.result)}",
        )
        result_element = element_type(self.result)
        expected = (
            result_element.storage if isinstance(result_element, QuantizedType) else result_element
        )
        if value_type.get_element_type() != expected:
            raise VerifyException(
                f"axq.constant data of type {value_type.get_element_type()} cannot hold "
                f"{result_element} (it needs {expected} data)"
            )

    def to_numpy(self) -> np.ndarray:
        return numpy_from_dense(self.value)


class _WeightedOp(_ComputeOp):
    """Conv-like op: input, weight and bias operands, one result.

    Quantized, the weights are symmetric i8 (zero point 0), per tensor or per output
    channel, and the bias is i32 with zero point 0 at scale s_in * s_w per output
    channel: the integer kernels add it to the accumulator as it is.
    """

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), Weighted())
    assembly_format = (
        "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)"
    )

    WEIGHT_CHANNEL_AXIS: ClassVar[int] = 0
    """The weight axis that indexes output channels (modulo the group size)."""

    def _code_tensors(self) -> Sequence[SSAValue]:
        return (self.input, self.weight, self.result)

    def _activations(self) -> Sequence[SSAValue]:
        return (self.input, self.result)

    def _input_scales(self, out_channels: int) -> np.ndarray:
        """The input scale each output channel accumulates at (per-tensor inputs only)."""
        _require(
            not _is_per_axis(self.input),
            f"{self.name} needs a per-tensor quantized input; only a depthwise "
            f"axq.conv2d reads per-channel inputs",
        )
        return np.full(out_channels, element_type(self.input).scale)

    def _check_bias(self, out_channels: int) -> None:
        _require(
            shape_of(self.bias) == (out_channels,),
            f"{self.name} bias must have shape ({out_channels},), got {shape_of(self.bias)}",
        )
        bias_type = element_type(self.bias)
        if not is_quantized(self.input):
            if bias_type != f32:
                raise VerifyException(f"{self.name} float bias must be f32, got {bias_type}")
            return
        if not (isinstance(bias_type, QuantizedType) and bias_type.storage == i32):
            raise VerifyException(
                f"{self.name} quantized bias must have i32 storage, got {bias_type}"
            )
        weight_type = element_type(self.weight)
        assert isinstance(weight_type, QuantizedType) and isinstance(bias_type, QuantizedType)
        _require(
            not weight_type.zero_point_array().any(),
            f"{self.name} weights are symmetric: their zero points must be 0",
        )
        _require(not bias_type.zero_point_array().any(), f"{self.name} bias zero points must be 0")
        if weight_type.is_per_axis:
            _require(
                weight_type.axis_index == self.WEIGHT_CHANNEL_AXIS,
                f"{self.name} weights are quantized per output channel (axis "
                f"{self.WEIGHT_CHANNEL_AXIS}), got axis {weight_type.axis_index}",
            )
        channels = np.arange(out_channels)
        weight_channel = channels % len(weight_type.scales.get_values())
        expected = self._input_scales(out_channels) * _scales_per_channel(
            weight_type, weight_channel
        )
        actual = _scales_per_channel(bias_type, channels)
        wrong = np.flatnonzero(~np.isclose(actual, expected, rtol=1e-6, atol=0))
        if wrong.size:
            channel = wrong[0]
            raise VerifyException(
                f"{self.name} bias scale {actual[channel]} of output channel {channel} should "
                f"be input scale x weight scale = {expected[channel]}"
            )


@irdl_op_definition
class Conv2dOp(_WeightedOp):
    """2-D convolution (grouped and depthwise included), ONNX Conv semantics, NCHW/OIHW.

    pads are [top, left, bottom, right].
    """

    name = "axq.conv2d"
    traits = traits_def(RequantizesPerChannel())
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr)

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue,
        bias: SSAValue,
        result_type: Attribute,
        strides=(1, 1),
        pads=(0, 0, 0, 0),
        dilations=(1, 1),
        group: int = 1,
    ):
        super().__init__(
            operands=[input, weight, bias],
            result_types=[result_type],
            properties={
                "strides": ints(strides),
                "pads": ints(pads),
                "dilations": ints(dilations),
                "group": int_attr(group),
            },
        )

    def _input_scales(self, out_channels: int) -> np.ndarray:
        """A depthwise conv may read a per-channel input: output o reads its group's channel."""
        in_type = element_type(self.input)
        if not _is_per_axis(self.input) or shape_of(self.weight)[1] != 1:
            return super()._input_scales(out_channels)
        group = self.group.value.data
        return in_type.scale_array()[np.arange(out_channels) // (out_channels // group)]

    def verify_(self) -> None:
        super().verify_()
        in_shape, w_shape, out_shape = (
            shape_of(self.input),
            shape_of(self.weight),
            shape_of(self.result),
        )
        _require(
            len(in_shape) == 4 and len(w_shape) == 4 and len(out_shape) == 4,
            f"axq.conv2d works on 4-D NCHW tensors and OIHW weights, got ranks "
            f"{len(in_shape)} (input), {len(w_shape)} (weight), {len(out_shape)} (result)",
        )
        strides, pads = self.strides.get_values(), self.pads.get_values()
        dilations, group = self.dilations.get_values(), self.group.value.data
        _check_window_geometry(self.name, strides, pads, dilations)
        _require(group >= 1, f"axq.conv2d group must be >= 1, got {group}")
        _require(
            in_shape[1] == w_shape[1] * group and w_shape[0] % group == 0,
            f"axq.conv2d: {in_shape[1]} input channels do not match weight {w_shape} "
            f"with group {group} (it needs input channels = weight dim 1 x group, and "
            f"weight dim 0 divisible by group)",
        )
        expected = (in_shape[0], w_shape[0]) + _window_output(
            self.name, in_shape, w_shape[2:], strides, pads, dilations
        )
        _require(out_shape == expected, f"axq.conv2d result shape {out_shape} should be {expected}")
        self._check_bias(w_shape[0])


def is_depthwise(op: Operation) -> bool:
    """A grouped conv with one input channel per group (MobileNet's depthwise conv)."""
    return (
        isinstance(op, Conv2dOp)
        and op.group.value.data > 1
        and op.group.value.data == shape_of(op.input)[1]
    )


@irdl_op_definition
class ConvTranspose2dOp(_WeightedOp):
    """2-D transposed convolution, ONNX ConvTranspose semantics (weight is IOHW)."""

    name = "axq.conv_transpose2d"
    traits = traits_def(RequantizesPerChannel())
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    output_padding = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr)

    WEIGHT_CHANNEL_AXIS: ClassVar[int] = 1

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue,
        bias: SSAValue,
        result_type: Attribute,
        strides=(1, 1),
        pads=(0, 0, 0, 0),
        dilations=(1, 1),
        output_padding=(0, 0),
        group: int = 1,
    ):
        super().__init__(
            operands=[input, weight, bias],
            result_types=[result_type],
            properties={
                "strides": ints(strides),
                "pads": ints(pads),
                "dilations": ints(dilations),
                "output_padding": ints(output_padding),
                "group": int_attr(group),
            },
        )

    def verify_(self) -> None:
        super().verify_()
        in_shape, w_shape, out_shape = (
            shape_of(self.input),
            shape_of(self.weight),
            shape_of(self.result),
        )
        _require(
            len(in_shape) == 4 and len(w_shape) == 4 and len(out_shape) == 4,
            f"axq.conv_transpose2d works on 4-D NCHW tensors and IOHW weights, got ranks "
            f"{len(in_shape)} (input), {len(w_shape)} (weight), {len(out_shape)} (result)",
        )
        s, p = self.strides.get_values(), self.pads.get_values()
        d, op = self.dilations.get_values(), self.output_padding.get_values()
        _check_window_geometry(self.name, s, p, d)
        _require(
            len(op) == 2 and min(op) >= 0,
            f"axq.conv_transpose2d needs 2 output_padding values >= 0, got {list(op)}",
        )
        group = self.group.value.data
        _require(
            group >= 1 and in_shape[1] % group == 0,
            f"axq.conv_transpose2d group {group} must be >= 1 and divide the "
            f"{in_shape[1]} input channels",
        )
        _require(
            in_shape[1] == w_shape[0],
            f"axq.conv_transpose2d: {in_shape[1]} input channels do not match weight dim 0 "
            f"of {w_shape} (IOHW)",
        )
        expected = (in_shape[0], w_shape[1] * group) + tuple(
            s[i] * (in_shape[2 + i] - 1) + op[i] + d[i] * (w_shape[2 + i] - 1) + 1 - p[i] - p[i + 2]
            for i in range(2)
        )
        _require(
            min(expected[2:]) >= 1,
            f"axq.conv_transpose2d pads {list(p)} crop the whole output {expected[2:]}",
        )
        _require(
            out_shape == expected,
            f"axq.conv_transpose2d result shape {out_shape} should be {expected}",
        )
        self._check_bias(w_shape[1] * group)


@irdl_op_definition
class DenseOp(_WeightedOp):
    """Fully connected layer: y = x @ W^T + b with W of shape [N, K] (ONNX Gemm, transA=0)."""

    name = "axq.dense"

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue, result_type: Attribute):
        super().__init__(operands=[input, weight, bias], result_types=[result_type])

    def _channel_axis(self, value: SSAValue) -> int:
        return len(shape_of(value)) - 1

    def verify_(self) -> None:
        super().verify_()
        in_shape, w_shape = shape_of(self.input), shape_of(self.weight)
        _require(
            len(w_shape) == 2 and len(in_shape) >= 1 and in_shape[-1] == w_shape[1],
            f"axq.dense input {in_shape} does not match weight {w_shape} (it needs a 2-D "
            f"[N, K] weight and K as the input's last dimension)",
        )
        expected = in_shape[:-1] + (w_shape[0],)
        _require(
            shape_of(self.result) == expected,
            f"axq.dense result shape {shape_of(self.result)} should be {expected}",
        )
        self._check_bias(w_shape[0])


class _BinaryOp(_ComputeOp):
    """Elementwise op with NumPy (ONNX multidirectional) broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self) -> None:
        super().verify_()
        try:
            expected = np.broadcast_shapes(shape_of(self.lhs), shape_of(self.rhs))
        except ValueError as error:
            raise VerifyException(f"{self.name} operands do not broadcast: {error}") from None
        _require(
            shape_of(self.result) == tuple(expected),
            f"{self.name} result shape {shape_of(self.result)} should be {expected}",
        )
        self._check_per_tensor((self.lhs, self.rhs), "one scale per operand")


@irdl_op_definition
class AddOp(_BinaryOp):
    name = "axq.add"
    traits = traits_def(RequantizesPerChannel())


@irdl_op_definition
class SubOp(_BinaryOp):
    name = "axq.sub"
    traits = traits_def(RequantizesPerChannel())


@irdl_op_definition
class MulOp(_BinaryOp):
    name = "axq.mul"
    traits = traits_def(RequantizesPerChannel())


@irdl_op_definition
class PReluOp(_BinaryOp):
    """x if x >= 0 else slope * x; slope broadcasts (scalar or per channel)."""

    name = "axq.prelu"
    traits = traits_def(RequantizesPerChannel())


class _SelectOp(_BinaryOp):
    """Elementwise maximum or minimum; quantized, both operands and the result share one
    type (the quantizer requantizes operands to the output's type, which commutes with the
    clamp), so the op selects codes."""

    def verify_(self) -> None:
        super().verify_()
        self._check_keeps_type(self.lhs, [self.rhs, self.result])


@irdl_op_definition
class MaxOp(_SelectOp):
    name = "axq.max"
    traits = traits_def(Pure(), CommutesWithClamp(), JoinsInResultType())


@irdl_op_definition
class MinOp(_SelectOp):
    name = "axq.min"
    traits = traits_def(Pure(), CommutesWithClamp(), JoinsInResultType())


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of np.matmul(a, b), found without computing it."""
    _require(len(a) >= 1 and len(b) >= 1, f"axq.matmul needs operands of rank >= 1, got {a}, {b}")
    lhs, rhs = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    _require(
        lhs[-1] == rhs[-2],
        f"axq.matmul shapes {a} and {b} do not match: contraction sizes {lhs[-1]} and "
        f"{rhs[-2]} differ",
    )
    try:
        batch = np.broadcast_shapes(lhs[:-2], rhs[:-2])
    except ValueError:
        raise VerifyException(
            f"axq.matmul batch dimensions of {a} and {b} do not broadcast"
        ) from None
    rows = (lhs[-2],) if len(a) > 1 else ()  # a 1-D operand's added axis is dropped again
    columns = (rhs[-1],) if len(b) > 1 else ()
    return (*batch, *rows, *columns)


@irdl_op_definition
class MatMulOp(_ComputeOp):
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
        super().verify_()
        a, b = shape_of(self.lhs), shape_of(self.rhs)
        expected = _matmul_shape(a, b)
        _require(
            shape_of(self.result) == expected,
            f"axq.matmul result shape {shape_of(self.result)} should be {expected}",
        )
        self._check_per_tensor((self.lhs, self.rhs), "one scale per operand")


class _UnaryOp(_ComputeOp):
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"


class _ShapePreservingOp(_UnaryOp):
    def verify_(self) -> None:
        super().verify_()
        _require(
            shape_of(self.input) == shape_of(self.result),
            f"{self.name} keeps the shape: {shape_of(self.input)} != {shape_of(self.result)}",
        )


@irdl_op_definition
class LutOp(_ShapePreservingOp):
    """A unary elementwise function; quantized, it is a 256-entry table indexed by q + 128."""

    name = "axq.lut"
    function = prop_def(UnaryFunctionAttr)
    params = prop_def(DictionaryAttr)
    table = opt_prop_def(DenseIntOrFPElementsAttr)

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        function: UnaryFunction,
        params: Mapping[str, float] | None = None,
        table: DenseIntOrFPElementsAttr | None = None,
    ):
        properties: dict[str, Attribute] = {
            "function": UnaryFunctionAttr(function),
            "params": DictionaryAttr({k: float_attr(v) for k, v in (params or {}).items()}),
        }
        if table is not None:
            properties["table"] = table
        super().__init__(operands=[input], result_types=[result_type], properties=properties)

    def param_values(self) -> dict[str, float]:
        return {k: v.value.data for k, v in self.params.data.items()}  # type: ignore[union-attr]

    def float_function(self):
        """numerics' float definition of the function, with this op's parameters."""
        from aipuc.numerics import unary_function

        return unary_function(self.function.data.value, self.param_values())

    def verify_(self) -> None:
        super().verify_()
        for key, value in self.params.data.items():
            if not isinstance(value, FloatAttr):
                raise VerifyException(f"axq.lut parameter '{key}' must be a float, got {value}")
        self._check_parameter_names()
        if not is_quantized(self.input):
            _require(
                self.table is None,
                "a float axq.lut has no table; axq-quantize builds it from the types",
            )
            return
        _require(
            self.table is not None,
            "a quantized axq.lut needs its 256-entry table (axq-quantize builds it)",
        )
        assert self.table is not None
        table_type = self.table.type
        if tuple(table_type.get_shape()) != (256,) or table_type.get_element_type() != i8:
            raise VerifyException(
                f"axq.lut table must be a tensor<256xi8> (one i8 code per "
                f"input code), got {table_type}"
            )
        self._check_per_tensor((self.input, self.result), "one table maps every code")

    def _check_parameter_names(self) -> None:
        """The params are what numerics' definition of the function takes, plus the
        optional affine map around it (`numerics.AFFINE_PARAMETERS`)."""
        from aipuc.numerics import AFFINE_PARAMETERS, UNARY_FUNCTIONS

        function = self.function.data.value
        accepted = inspect.signature(UNARY_FUNCTIONS[function]).parameters
        given = set(self.params.data) - set(AFFINE_PARAMETERS)
        required = {name for name, p in accepted.items() if p.default is inspect.Parameter.empty}
        if given - set(accepted) or required - given:
            raise VerifyException(
                f"axq.lut {function} takes parameters {sorted(accepted) or 'none'} "
                f"(required {sorted(required) or 'none'}), got {sorted(given) or 'none'}"
            )


@irdl_op_definition
class ClipOp(_ShapePreservingOp):
    """Clamp to [min, max] (ReLU, ReLU6, HardTanh); quantized, it clamps codes in place."""

    name = "axq.clip"
    traits = traits_def(SharesInputQuantization(), CommutesWithClamp(), PreservesChannelAxis())
    min = prop_def(FloatAttr)
    max = prop_def(FloatAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, min: float, max: float):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties={"min": float_attr(min), "max": float_attr(max)},
        )

    def verify_(self) -> None:
        super().verify_()
        low, high = self.min.value.data, self.max.value.data
        _require(low <= high, f"axq.clip needs min <= max, got min {low} and max {high}")
        self._check_keeps_type(self.input, [self.result])


@irdl_op_definition
class SoftmaxOp(_ShapePreservingOp):
    """Softmax along one axis; quantized, it runs on the DPU in float18."""

    name = "axq.softmax"
    axis = prop_def(IntegerAttr)
    valid_length = opt_prop_def(IntegerAttr)
    """Lanes from `valid_length` on along the axis are padding: they read `neutral_value`
    (real), whose exponential is 0, so they do not change the valid lanes' results."""
    neutral_value = opt_prop_def(FloatAttr)

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        axis: int,
        valid_length: int | None = None,
        neutral_value: float | None = None,
    ):
        properties: dict[str, Attribute] = {"axis": int_attr(axis)}
        if valid_length is not None:
            properties["valid_length"] = int_attr(valid_length)
        if neutral_value is not None:
            properties["neutral_value"] = float_attr(neutral_value)
        super().__init__(operands=[input], result_types=[result_type], properties=properties)

    def verify_(self) -> None:
        super().verify_()
        rank, axis = len(shape_of(self.input)), self.axis.value.data
        _require(
            -rank <= axis < rank, f"axq.softmax axis {axis} out of range for a rank-{rank} tensor"
        )
        _require(
            (self.valid_length is None) == (self.neutral_value is None),
            "axq.softmax takes valid_length and neutral_value together",
        )
        if self.valid_length is not None:
            length = shape_of(self.input)[axis]
            valid = self.valid_length.value.data
            _require(
                1 <= valid <= length,
                f"axq.softmax valid_length {valid} must lie in 1..{length} (the axis size)",
            )
        self._check_per_tensor((self.input, self.result), "the DPU softmax has one scale")


@irdl_op_definition
class LayerNormOp(_ComputeOp):
    """Normalisation over the axes from `axis` on, then `* scale + bias` (ONNX
    LayerNormalization); quantized, it runs on the DPU in float18 (`numerics.layer_norm_int8`).

    `scale` and `bias` have the normalised shape `input.shape[axis:]` and stay f32 constants
    after quantization (the DPU holds them as float18)."""

    name = "axq.layer_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    epsilon = prop_def(FloatAttr)
    traits = traits_def(Pure(), FloatParameters())
    assembly_format = "$input `,` $scale `,` $bias attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        input: SSAValue,
        scale: SSAValue,
        bias: SSAValue,
        result_type: Attribute,
        axis: int,
        epsilon: float,
    ):
        super().__init__(
            operands=[input, scale, bias],
            result_types=[result_type],
            properties={"axis": int_attr(axis), "epsilon": float_attr(epsilon)},
        )

    def _code_tensors(self) -> Sequence[SSAValue]:
        return (self.input, self.result)

    def _same_kind_tensors(self) -> Sequence[SSAValue]:
        return (self.input, self.result)

    def verify_(self) -> None:
        super().verify_()
        shape, axis = shape_of(self.input), self.axis.value.data
        _require(
            0 <= axis < len(shape),
            f"axq.layer_norm axis {axis} out of range 0..{len(shape) - 1} (normalise it)",
        )
        _require(
            shape_of(self.result) == shape,
            f"axq.layer_norm keeps the shape: {shape} != {shape_of(self.result)}",
        )
        for what, value in (("scale", self.scale), ("bias", self.bias)):
            _require(
                shape_of(value) == shape[axis:] and element_type(value) == f32,
                f"axq.layer_norm {what} must be an f32 tensor of the normalised shape "
                f"{shape[axis:]}, got {value.type}",
            )
        _require(self.epsilon.value.data > 0, "axq.layer_norm epsilon must be positive")
        self._check_per_tensor((self.input, self.result), "the DPU works on one scale")


@irdl_op_definition
class QuantizeOp(_ShapePreservingOp):
    """float -> quantized, round half to even then clamp."""

    name = "axq.quantize"
    traits = traits_def(QuantizationConversion())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def _same_kind_tensors(self) -> Sequence[SSAValue]:
        return ()

    def verify_(self) -> None:
        super().verify_()
        if is_quantized(self.input) or not is_quantized(self.result):
            raise VerifyException(
                f"axq.quantize maps a float tensor to a quantized one, got "
                f"{element_type(self.input)} -> {element_type(self.result)}"
            )


@irdl_op_definition
class DequantizeOp(_ShapePreservingOp):
    """quantized -> float: scale * (q - zero_point)."""

    name = "axq.dequantize"
    traits = traits_def(QuantizationConversion())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def _same_kind_tensors(self) -> Sequence[SSAValue]:
        return ()

    def verify_(self) -> None:
        super().verify_()
        if not is_quantized(self.input) or is_quantized(self.result):
            raise VerifyException(
                f"axq.dequantize maps a quantized tensor to a float one, got "
                f"{element_type(self.input)} -> {element_type(self.result)}"
            )


@irdl_op_definition
class RequantizeOp(_ShapePreservingOp):
    """quantized -> quantized with other parameters, by fixed-point multiplier and shift."""

    name = "axq.requantize"
    traits = traits_def(QuantizationConversion())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        super().verify_()
        if not is_quantized(self.input):
            raise VerifyException(
                f"axq.requantize maps a quantized tensor to a quantized one, "
                f"got {element_type(self.input)}; use axq.quantize for float "
                f"tensors"
            )


@irdl_op_definition
class ReshapeOp(_UnaryOp):
    """Reshape (also Flatten, Squeeze, Unsqueeze); the target shape is the result type's."""

    name = "axq.reshape"
    traits = traits_def(SharesInputQuantization(), CommutesWithClamp())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        super().verify_()
        _require(
            np.prod(shape_of(self.input)) == np.prod(shape_of(self.result)),
            f"axq.reshape cannot change the element count: {shape_of(self.input)} -> "
            f"{shape_of(self.result)}",
        )
        self._check_keeps_type(self.input, [self.result])


@irdl_op_definition
class TransposeOp(_UnaryOp):
    name = "axq.transpose"
    traits = traits_def(SharesInputQuantization(), CommutesWithClamp())
    perm = prop_def(DenseArrayBase)

    def __init__(self, input: SSAValue, result_type: Attribute, perm: Sequence[int]):
        super().__init__(
            operands=[input], result_types=[result_type], properties={"perm": ints(perm)}
        )

    def verify_(self) -> None:
        super().verify_()
        perm, in_shape = self.perm.get_values(), shape_of(self.input)
        _require(
            sorted(perm) == list(range(len(in_shape))),
            f"axq.transpose perm {list(perm)} is not a permutation of the "
            f"{len(in_shape)} input axes",
        )
        expected = tuple(in_shape[p] for p in perm)
        _require(
            shape_of(self.result) == expected,
            f"axq.transpose result shape {shape_of(self.result)} should be {expected}",
        )
        self._check_keeps_type(self.input, [self.result])


class _PadKeepsChannels(PreservesChannelAxis):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        assert isinstance(op, PadOp)
        pads = op.pads.get_values()
        return pads[CHANNEL_AXIS] == 0 and pads[len(pads) // 2 + CHANNEL_AXIS] == 0


@irdl_op_definition
class PadOp(_UnaryOp):
    """Pad with ONNX pads layout [begin_0, ..., begin_n, end_0, ..., end_n]."""

    name = "axq.pad"
    traits = traits_def(SharesInputQuantization(), CommutesWithClamp(), _PadKeepsChannels())
    pads = prop_def(DenseArrayBase)
    value = prop_def(FloatAttr)
    mode = prop_def(PadModeAttr)

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        pads: Sequence[int],
        value: float = 0.0,
        mode: PadMode = PadMode.CONSTANT,
    ):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties={"pads": ints(pads), "value": float_attr(value), "mode": PadModeAttr(mode)},
        )

    def verify_(self) -> None:
        super().verify_()
        in_shape, pads = shape_of(self.input), self.pads.get_values()
        rank = len(in_shape)
        _require(
            len(pads) == 2 * rank,
            f"axq.pad needs {2 * rank} pads (begins, then ends), got {len(pads)}",
        )
        _require(
            min(pads, default=0) >= 0,
            f"axq.pad pads must be >= 0 (it does not crop), got {list(pads)}",
        )
        expected = tuple(in_shape[i] + pads[i] + pads[i + rank] for i in range(rank))
        _require(
            shape_of(self.result) == expected,
            f"axq.pad result shape {shape_of(self.result)} should be {expected}",
        )
        self._check_keeps_type(self.input, [self.result])


class _SliceKeepsChannels(PreservesChannelAxis):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        assert isinstance(op, SliceOp)
        return CHANNEL_AXIS not in op.axes.get_values()


@irdl_op_definition
class SliceOp(_UnaryOp):
    """Static strided slice (ONNX Slice with constant starts/ends/axes/steps)."""

    name = "axq.slice"
    traits = traits_def(SharesInputQuantization(), CommutesWithClamp(), _SliceKeepsChannels())
    starts = prop_def(DenseArrayBase)
    ends = prop_def(DenseArrayBase)
    axes = prop_def(DenseArrayBase)
    steps = prop_def(DenseArrayBase)

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        starts: Sequence[int],
        ends: Sequence[int],
        axes: Sequence[int],
        steps: Sequence[int],
    ):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties={
                "starts": ints(starts),
                "ends": ints(ends),
                "axes": ints(axes),
                "steps": ints(steps),
            },
        )

    def index(self) -> tuple[slice, ...]:
        """The NumPy index that performs this slice."""
        index = [slice(None)] * len(shape_of(self.input))
        for start, end, axis, step in zip(
            self.starts.get_values(),
            self.ends.get_values(),
            self.axes.get_values(),
            self.steps.get_values(),
            strict=True,
        ):
            index[axis] = slice(start, end, step)
        return tuple(index)

    def verify_(self) -> None:
        super().verify_()
        axes = self.axes.get_values()
        lengths = {
            len(self.starts.get_values()),
            len(self.ends.get_values()),
            len(axes),
            len(self.steps.get_values()),
        }
        _require(len(lengths) == 1, "axq.slice needs equally many starts, ends, axes and steps")
        rank = len(shape_of(self.input))
        _require(
            all(0 <= a < rank for a in axes),
            f"axq.slice axes {list(axes)} out of range 0..{rank - 1} (normalise negative axes)",
        )
        _require(len(set(axes)) == len(axes), f"axq.slice axes {list(axes)} repeat an axis")
        _require(all(s != 0 for s in self.steps.get_values()), "axq.slice step must not be 0")
        expected = tuple(
            len(range(size)[index])  # Python slicing is NumPy's, per axis
            for size, index in zip(shape_of(self.input), self.index(), strict=True)
        )
        _require(
            shape_of(self.result) == expected,
            f"axq.slice result shape {shape_of(self.result)} should be {expected}",
        )
        self._check_keeps_type(self.input, [self.result])


class _WindowOp(_UnaryOp):
    """Sliding-window pooling over H and W of an NCHW tensor; pads [top, left, bottom, right].

    Every window overlaps the input (pads smaller than the kernel, as ONNX runtimes require).
    """

    kernel = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    ceil_mode = prop_def(BoolAttr)

    def _window_properties(self, kernel, strides, pads, dilations, ceil_mode):
        return {
            "kernel": ints(kernel),
            "strides": ints(strides),
            "pads": ints(pads),
            "dilations": ints(dilations),
            "ceil_mode": BoolAttr.from_bool(ceil_mode),
        }

    def verify_(self) -> None:
        super().verify_()
        in_shape = shape_of(self.input)
        _require(
            len(in_shape) == 4, f"{self.name} works on 4-D NCHW tensors, got rank {len(in_shape)}"
        )
        k, s = self.kernel.get_values(), self.strides.get_values()
        p, d = self.pads.get_values(), self.dilations.get_values()
        _check_window_geometry(self.name, s, p, d, k)
        _require(
            all(p[i] < k[i % 2] for i in range(4)),
            f"{self.name} pads {list(p)} must be smaller than the kernel {list(k)}",
        )
        ceil_mode = self.ceil_mode.value.data != 0  # xDSL stores a true i1 as -1
        expected = in_shape[:2] + _window_output(self.name, in_shape, k, s, p, d, ceil_mode)
        _require(
            shape_of(self.result) == expected,
            f"{self.name} result shape {shape_of(self.result)} should be {expected}",
        )


@irdl_op_definition
class MaxPoolOp(_WindowOp):
    name = "axq.max_pool"
    traits = traits_def(SharesInputQuantization(), CommutesWithClamp(), PreservesChannelAxis())

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        kernel,
        strides=(1, 1),
        pads=(0, 0, 0, 0),
        dilations=(1, 1),
        ceil_mode: bool = False,
    ):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties=self._window_properties(kernel, strides, pads, dilations, ceil_mode),
        )

    def verify_(self) -> None:
        super().verify_()
        self._check_keeps_type(self.input, [self.result])


@irdl_op_definition
class AvgPoolOp(_WindowOp):
    name = "axq.avg_pool"
    traits = traits_def(RequantizesPerChannel())
    count_include_pad = prop_def(BoolAttr)

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        kernel,
        strides=(1, 1),
        pads=(0, 0, 0, 0),
        ceil_mode: bool = False,
        count_include_pad: bool = False,
    ):
        properties = self._window_properties(kernel, strides, pads, (1, 1), ceil_mode)
        properties["count_include_pad"] = BoolAttr.from_bool(count_include_pad)
        super().__init__(operands=[input], result_types=[result_type], properties=properties)


def _global_pool_kind(op: Operation) -> PoolKind:
    assert isinstance(op, GlobalPoolOp)
    return op.kind.data


class _GlobalMaxShares(SharesInputQuantization):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        return _global_pool_kind(op) == PoolKind.MAX


class _GlobalMaxCommutesWithClamp(CommutesWithClamp):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        return _global_pool_kind(op) == PoolKind.MAX


class _GlobalAverageRequantizes(RequantizesPerChannel):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        return _global_pool_kind(op) == PoolKind.AVG


@irdl_op_definition
class GlobalPoolOp(_UnaryOp):
    """Global average or max over all spatial axes, keeping them as size 1."""

    name = "axq.global_pool"
    traits = traits_def(
        _GlobalMaxShares(),
        _GlobalMaxCommutesWithClamp(),
        _GlobalAverageRequantizes(),
        PreservesChannelAxis(),
    )
    kind = prop_def(PoolKindAttr)

    def __init__(self, input: SSAValue, result_type: Attribute, kind: PoolKind):
        super().__init__(
            operands=[input], result_types=[result_type], properties={"kind": PoolKindAttr(kind)}
        )

    def verify_(self) -> None:
        super().verify_()
        in_shape = shape_of(self.input)
        _require(
            len(in_shape) >= 3,
            f"axq.global_pool needs spatial axes (rank >= 3), got rank {len(in_shape)}",
        )
        expected = in_shape[:2] + (1,) * (len(in_shape) - 2)
        _require(
            shape_of(self.result) == expected,
            f"axq.global_pool result shape {shape_of(self.result)} should be {expected}",
        )
        if self.kind.data == PoolKind.MAX:
            self._check_keeps_type(self.input, [self.result])


class _ResizeKeepsChannels(PreservesChannelAxis):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        assert isinstance(op, ResizeOp)
        return op.scales.get_values()[CHANNEL_AXIS] == 1.0


class _NearestResizeCommutesWithClamp(CommutesWithClamp):
    """Interpolation does not commute with a clamp; picking the nearest input does."""

    @classmethod
    def holds(cls, op: Operation) -> bool:
        assert isinstance(op, ResizeOp)
        return op.mode.data != ResizeMode.LINEAR


@irdl_op_definition
class ResizeOp(_UnaryOp):
    """Resize by per-axis scales (nearest or linear), ONNX Resize semantics."""

    name = "axq.resize"
    traits = traits_def(
        SharesInputQuantization(), _NearestResizeCommutesWithClamp(), _ResizeKeepsChannels()
    )
    mode = prop_def(ResizeModeAttr)
    scales = prop_def(DenseArrayBase)
    coordinate_transform = prop_def(CoordinateTransformAttr)
    nearest_rounding = prop_def(NearestRoundingAttr)

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        mode: ResizeMode,
        scales: Sequence[float],
        coordinate_transform: CoordinateTransform = CoordinateTransform.HALF_PIXEL,
        nearest_rounding: NearestRounding = NearestRounding.ROUND_PREFER_FLOOR,
    ):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties={
                "mode": ResizeModeAttr(mode),
                "scales": floats(scales),
                "coordinate_transform": CoordinateTransformAttr(coordinate_transform),
                "nearest_rounding": NearestRoundingAttr(nearest_rounding),
            },
        )

    def verify_(self) -> None:
        super().verify_()
        in_shape, scales = shape_of(self.input), self.scales.get_values()
        _require(
            len(scales) == len(in_shape),
            f"axq.resize needs one scale per axis ({len(in_shape)}), got {len(scales)}",
        )
        _require(
            all(s > 0 and np.isfinite(s) for s in scales),
            f"axq.resize scales must be positive and finite, got {list(scales)}",
        )
        expected = tuple(int(np.floor(n * s)) for n, s in zip(in_shape, scales, strict=True))
        _require(
            shape_of(self.result) == expected,
            f"axq.resize result shape {shape_of(self.result)} should be {expected}",
        )
        if self.mode.data == ResizeMode.NEAREST:
            self._check_keeps_type(self.input, [self.result])


@irdl_op_definition
class ConcatOp(_ComputeOp):
    """Concatenation; quantized, every input has the result's type (requantize others)."""

    name = "axq.concat"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure(), CommutesWithClamp(), JoinsInResultType())
    assembly_format = "$inputs attr-dict `:` functional-type($inputs, $result)"

    def __init__(self, inputs: Sequence[SSAValue], result_type: Attribute, axis: int):
        super().__init__(
            operands=[inputs], result_types=[result_type], properties={"axis": int_attr(axis)}
        )

    def verify_(self) -> None:
        super().verify_()
        shapes = [shape_of(v) for v in self.inputs]
        axis = self.axis.value.data
        _require(len(shapes) >= 1, "axq.concat needs at least one input")
        rank = len(shapes[0])
        _require(
            0 <= axis < rank,
            f"axq.concat axis {axis} out of range 0..{rank - 1} (normalise negative axes)",
        )
        _require(
            all(
                len(s) == rank
                and s[:axis] + s[axis + 1 :] == shapes[0][:axis] + shapes[0][axis + 1 :]
                for s in shapes
            ),
            f"axq.concat inputs {shapes} differ outside the concatenation axis {axis}",
        )
        expected = shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1 :]
        _require(
            shape_of(self.result) == expected,
            f"axq.concat result shape {shape_of(self.result)} should be {expected}",
        )
        for value in self.inputs:
            self._check_keeps_type(value, [self.result])


class _SplitKeepsChannels(PreservesChannelAxis):
    @classmethod
    def holds(cls, op: Operation) -> bool:
        assert isinstance(op, SplitOp)
        return op.axis.value.data != CHANNEL_AXIS


@irdl_op_definition
class SplitOp(_ComputeOp):
    name = "axq.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(
        Pure(), SharesInputQuantization(), CommutesWithClamp(), _SplitKeepsChannels()
    )
    assembly_format = "$input attr-dict `:` type($input) `->` type($outputs)"

    def __init__(self, input: SSAValue, result_types: Sequence[Attribute], axis: int):
        super().__init__(
            operands=[input], result_types=[result_types], properties={"axis": int_attr(axis)}
        )

    def split_sizes(self) -> list[int]:
        return [shape_of(r)[self.axis.value.data] for r in self.outputs]

    def verify_(self) -> None:
        super().verify_()
        in_shape, axis = shape_of(self.input), self.axis.value.data
        _require(
            0 <= axis < len(in_shape),
            f"axq.split axis {axis} out of range 0..{len(in_shape) - 1} (normalise negative axes)",
        )
        for result in self.outputs:
            shape = shape_of(result)
            _require(
                len(shape) == len(in_shape)
                and shape[:axis] + shape[axis + 1 :] == in_shape[:axis] + in_shape[axis + 1 :],
                f"axq.split result {shape} differs from the input {in_shape} outside the "
                f"split axis {axis}",
            )
        _require(
            sum(self.split_sizes()) == in_shape[axis],
            f"axq.split sizes {self.split_sizes()} do not add up to {in_shape[axis]}",
        )
        self._check_keeps_type(self.input, self.outputs)


@irdl_op_definition
class HostOp(_AxqOp):
    """An ONNX operator run on the host (shape arithmetic, normalisation, decode tails).

    `attributes` holds the ONNX node's attributes converted to builtin attributes; the
    interpreters run `op_type` at `opset` on the host engine (`runtime.interpreter.host_runner`).
    """

    name = "axq.host"
    inputs = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    op_type = prop_def(StringAttr)
    domain = prop_def(StringAttr)
    opset = prop_def(IntegerAttr)
    onnx_attributes = prop_def(DictionaryAttr, prop_name="attributes")
    assembly_format = "$op_type `(` $inputs `)` attr-dict `:` functional-type($inputs, $outputs)"

    def __init__(
        self,
        op_type: str,
        inputs: Sequence[SSAValue],
        result_types: Sequence[Attribute],
        attributes: Mapping[str, Attribute],
        opset: int,
        domain: str = "",
    ):
        super().__init__(
            operands=[inputs],
            result_types=[result_types],
            properties={
                "op_type": StringAttr(op_type),
                "domain": StringAttr(domain),
                "opset": int_attr(opset),
                "attributes": DictionaryAttr(dict(attributes)),
            },
        )


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
        MaxOp,
        MinOp,
        LutOp,
        ClipOp,
        SoftmaxOp,
        LayerNormOp,
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
        resources.ResourceAttr,
    ],
)
