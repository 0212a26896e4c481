"""`!axq.q`: the quantized element type of the axq dialect.

Its own module so that `aipuc.dialects.tensors` (NumPy <-> dense attributes) can map a
quantized element type to its storage dtype without importing the ops of `axq`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, IntegerType, Signedness, f64, i64
from xdsl.ir import Attribute, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException


def _format_float(value: float) -> str:
    """Shortest exact decimal of a float64, in a form xDSL's lexer reads as a float."""
    text = repr(float(value))
    if "e" in text and "." not in text:
        text = text.replace("e", ".0e")
    return text


STORAGE_WIDTHS = (8, 32)
"""Bit widths of quantized storage: int8 codes and int32 biases."""


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

    @property
    def quantized_axis(self) -> int | None:
        """The per-axis axis, or None per tensor: the `axis` argument of numerics' helpers."""
        return self.axis_index if self.is_per_axis else None

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
        storage = self.storage
        if storage.signedness.data != Signedness.SIGNLESS or (
            storage.width.data not in STORAGE_WIDTHS
        ):
            raise VerifyException(
                f"quantized storage must be a signless integer of 8 or 32 "
                f"bits (i8, i32), got {storage}"
            )
        scales, zero_points = self.scale_array(), self.zero_point_array()
        for holds, problem in (
            (
                self.axis_index >= -1,
                "quantization axis must be -1 (per tensor) or a tensor axis, got "
                f"{self.axis_index}",
            ),
            (
                scales.size == zero_points.size,
                f"quantized type needs as many zero points as scales, got {zero_points.size} "
                f"for {scales.size}",
            ),
            (
                self.is_per_axis or scales.size == 1,
                f"a per-tensor quantized type has exactly one scale, got {scales.size}",
            ),
            (scales.size > 0, "a quantized type needs at least one scale"),
        ):
            if not holds:
                raise VerifyException(problem)
        bad_scales = scales[~((scales > 0) & np.isfinite(scales))]
        if bad_scales.size:
            raise VerifyException(
                f"quantization scales must be positive and finite, got {bad_scales[0]}"
            )
        low, high = self.bounds
        bad_zero_points = zero_points[(zero_points < low) | (zero_points > high)]
        if bad_zero_points.size:
            raise VerifyException(
                f"zero point {bad_zero_points[0]} out of range: {storage} zero points lie in "
                f"[{low}, {high}]"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        def parse_pair() -> tuple[float, int]:
            scale = parser.parse_float()
            parser.parse_punctuation(":")
            return scale, parser.parse_integer()

        start = parser.pos
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
        if not pairs:
            parser.raise_error(
                "a quantized type needs at least one scale:zero_point pair", start, parser.pos
            )
        scales, zero_points = zip(*pairs, strict=True)
        try:
            return QuantizedType(storage, scales, zero_points, axis).parameters
        except VerifyException as error:
            parser.raise_error(str(error), start, parser.pos)

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
