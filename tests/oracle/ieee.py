"""IEEE binary rounding from exact rationals, float32 arithmetic, and float18.

Contract (numerics docstring, "float18"): a float18 has 1 sign bit, float32's 8 exponent
bits and 9 mantissa bits; it is held as a float32 whose low 14 bits are zero. Rounding is to
nearest, ties to even, on the float32 bit pattern: overflow goes to +-inf like IEEE,
subnormals are kept, +-inf pass through, NaN stays NaN; float64 inputs are first rounded to
float32. f18 add/mul/reciprocal round the operands to float18, compute in IEEE float32 and
round the result to float18. f18_sum pads to 64 lanes with +0.0, adds groups lane-wise in
order, then folds the lanes by a halving tree, rounding after every addition.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Sequence
from fractions import Fraction

from aipuc.hardware import AIPU

F32_MANTISSA_BITS = 23
F32_MIN_EXPONENT = -126  # smallest normal exponent; subnormals share its ulp
F32_MAX_EXPONENT = 127
F18_MANTISSA_BITS = AIPU.float18_mantissa_bits
F18_DROPPED_BITS = F32_MANTISSA_BITS - F18_MANTISSA_BITS
LANES = AIPU.dpu_lanes


def round_to_binary(exact: Fraction, mantissa_bits: int, min_exponent: int, max_exponent: int):
    """The nearest binary float to `exact` (ties to even), as a Python float.

    The ulp of a value in [2**e, 2**(e+1)) is 2**(e - mantissa_bits), and 2**(min_exponent -
    mantissa_bits) below 2**min_exponent (gradual underflow). A rounded magnitude of
    2**(max_exponent + 1) or more is infinite. An underflow to zero keeps the sign of
    `exact`; an exact zero is +0 (callers that know the sign of an exact zero set it).
    """
    if exact == 0:
        return 0.0
    magnitude = abs(exact)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    ulp = Fraction(2) ** (max(exponent, min_exponent) - mantissa_bits)
    rounded = round(magnitude / ulp) * ulp  # Fraction.__round__ rounds half to even
    result = math.inf if rounded >= Fraction(2) ** (max_exponent + 1) else float(rounded)
    return math.copysign(result, exact)


def f32(value: float) -> float:
    """float64 -> float32 (round to nearest even), returned as the float64 holding it."""
    if not math.isfinite(value) or value == 0:
        return value
    return round_to_binary(Fraction(value), F32_MANTISSA_BITS, F32_MIN_EXPONENT, F32_MAX_EXPONENT)


_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _sign_product_is_negative(a: float, b: float) -> bool:
    return (math.copysign(1, a) < 0) != (math.copysign(1, b) < 0)


def f32_op(op: str, a: float, b: float) -> float:
    """IEEE float32 `a op b` (op in + - * /) of float32 values: the exact result, rounded once.

    Non-finite operands follow IEEE, whose special cases float64 arithmetic shares; x / 0 is
    NaN for x = 0 or NaN, else an infinity with the sign of the product of the signs.
    """
    a, b = f32(a), f32(b)
    if op == "/" and b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return -math.inf if _sign_product_is_negative(a, b) else math.inf
    if not (math.isfinite(a) and math.isfinite(b)):
        return _OPERATORS[op](a, b)
    exact = _OPERATORS[op](Fraction(a), Fraction(b))
    if exact != 0:
        return round_to_binary(exact, F32_MANTISSA_BITS, F32_MIN_EXPONENT, F32_MAX_EXPONENT)
    # An exact zero: a sum is +0 unless both terms are -0 (round to nearest); a product or
    # quotient has the product of the signs.
    if op in "+-":
        b_signed = b if op == "+" else -b
        negative = math.copysign(1, a) < 0 and math.copysign(1, b_signed) < 0
    else:
        negative = _sign_product_is_negative(a, b)
    return -0.0 if negative else 0.0


def float32_bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def from_float32_bits(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def to_float18(value: float) -> float:
    """Round to float18 on the float32 bit pattern: nearest, ties to even (struct bits).

    The magnitude bits of a float32 (exponent then mantissa) grow with its magnitude, so
    rounding them to a multiple of 2**14 rounds the value; a carry out of the mantissa
    bumps the exponent, and from the largest finite value reaches the inf pattern.
    """
    value = f32(value)
    if math.isnan(value):
        return math.nan
    bits = float32_bits(value)
    sign, magnitude = bits & 0x8000_0000, bits & 0x7FFF_FFFF
    kept, dropped = magnitude >> F18_DROPPED_BITS, magnitude & ((1 << F18_DROPPED_BITS) - 1)
    half = 1 << (F18_DROPPED_BITS - 1)
    if dropped > half or (dropped == half and kept & 1):
        kept += 1
    return from_float32_bits(sign | (kept << F18_DROPPED_BITS))


def _f18_binary(op: str) -> Callable[[float, float], float]:
    return lambda a, b: to_float18(f32_op(op, to_float18(a), to_float18(b)))


f18_add = _f18_binary("+")
f18_mul = _f18_binary("*")


def f18_reciprocal(x: float) -> float:
    return to_float18(f32_op("/", 1.0, to_float18(x)))


def f18_sum(values: Sequence[float]) -> float:
    """The DPU's order: lane-wise over groups of 64 lanes (+0.0 padding), then a halving tree."""
    values = [to_float18(v) for v in values]
    groups = max(1, -(-len(values) // LANES))
    values += [0.0] * (groups * LANES - len(values))
    acc = values[:LANES]
    for group in range(1, groups):
        acc = [f18_add(acc[lane], values[group * LANES + lane]) for lane in range(LANES)]
    width = LANES
    while width > 1:
        width //= 2
        acc = [f18_add(acc[lane], acc[lane + width]) for lane in range(width)]
    return acc[0]
