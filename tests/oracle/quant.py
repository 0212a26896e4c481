"""Quantization, fixed-point multipliers, requantization and LUTs, one element at a time.

Each function restates one rule of the numerics docstring (quoted in its own docstring) or
of docs/quantization.md's "Integer semantics"; arithmetic is Python `int` and `Fraction`,
float32 steps go through `ieee.f32_op`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from oracle.ieee import f32, f32_op

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
F32_EPS = 2.0**-23  # float32 machine epsilon (torch's MinMaxObserver.eps)
SMALLEST_MULTIPLIER = 2.0**-32  # below it, M(r) = (0, 1) (docs/quantization.md)
MULTIPLIER_CAP = 2.0**8  # requant(acc, r) uses M(min(r, 2**8))
MIN_SHIFT, MAX_SHIFT = 1, 62


@dataclass(frozen=True)
class QType:
    """Scale(s) and zero point(s) of a tensor; `axis` is None per tensor."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> QType:
        return QType((float(scale),), (int(zero_point),))

    def channel(self, index: Sequence[int]) -> int:
        return 0 if self.axis is None else index[self.axis]

    def scale(self, index: Sequence[int]) -> float:
        return self.scales[self.channel(index)]

    def zero_point(self, index: Sequence[int]) -> int:
        return self.zero_points[self.channel(index)]

    @property
    def only_scale(self) -> float:
        if self.axis is not None:
            raise ValueError("a per-axis type has no single scale")
        return self.scales[0]


# --------------------------------------------------------------------------- quantization


def clamp(value: int, low: int, high: int) -> int:
    return min(high, max(low, value))


def quantize(x: float, scale: float, zero_point: int, qmin=INT8_MIN, qmax=INT8_MAX) -> int:
    """``q = clamp(rint(x / scale) + zero_point, qmin, qmax)``, x / scale in float64,
    rint half to even (Python's `round` on a float is half to even)."""
    steps = float(x) / float(scale)  # a Python float division is IEEE float64
    if math.isinf(steps):
        return qmax if steps > 0 else qmin
    return clamp(round(steps) + zero_point, qmin, qmax)


def dequantize(q: int, scale: float, zero_point: int) -> float:
    """``float32(float64(q - zp) * scale)``."""
    return f32(float(q - zero_point) * float(scale))


def choose_qparams_asymmetric(min_val: float, max_val: float, qmin=INT8_MIN, qmax=INT8_MAX):
    """torch's MinMaxObserver (per tensor affine) in float32, rule by rule:

    min_neg = min(min_val, 0), max_pos = max(max_val, 0) (float32);
    scale = max((max_pos - min_neg) / float(qmax - qmin), eps) in float32 arithmetic;
    zero_point = clamp(qmin - round(min_neg / scale), qmin, qmax), torch.round being half
    to even.
    """
    low = min(f32(min_val), 0.0)
    high = max(f32(max_val), 0.0)
    scale = f32_op("/", f32_op("-", high, low), float(qmax - qmin))
    scale = max(scale, F32_EPS)
    steps = f32_op("/", low, scale)
    zero_point = qmin - round(steps) if math.isfinite(steps) else qmin
    return scale, clamp(zero_point, qmin, qmax)


def choose_qparams_symmetric(values: Sequence[float], qmax=INT8_MAX) -> float:
    """One channel's symmetric weight scale: max(max|w| / qmax, eps) in float32."""
    amax = max(abs(f32(v)) for v in values)
    return max(f32_op("/", amax, float(qmax)), F32_EPS)


# --------------------------------------------------------------------------- requantization


@functools.cache
def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real ~= multiplier * 2**-shift``, multiplier in [2**30, 2**31) (Q31 normalised,
    rounded half to even), shift in [1, 62]; anything else raises ValueError."""
    if not (math.isfinite(real) and real > 0):
        raise ValueError(f"real multipliers must be finite and positive, got {real}")
    exact = Fraction(real)
    shift = 0
    while exact * 2**shift < 2**30:
        shift += 1
    while exact * 2**shift >= 2**31:
        shift -= 1
    multiplier = round(exact * 2**shift)  # ties to even
    if multiplier == 2**31:  # rounded up out of the range: renormalise
        multiplier, shift = 2**30, shift - 1
    if not MIN_SHIFT <= shift <= MAX_SHIFT:
        raise ValueError(f"real multiplier {real} out of [2**-32, 2**30)")
    return multiplier, shift


def fixed_point_multiplier(real: float) -> tuple[int, int]:
    """M(r): quantize_multiplier, with multipliers below 2**-32 mapped to (0, 1)."""
    if real < SMALLEST_MULTIPLIER:
        return 0, 1
    return quantize_multiplier(real)


def rounding_right_shift(x: int, shift: int) -> int:
    """x / 2**shift rounded half up (towards +inf); shift in [0, 62]."""
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"shift {shift} out of [0, {MAX_SHIFT}]")
    return math.floor(Fraction(x, 2**shift) + Fraction(1, 2))


def requantize(acc: int, multiplier: int, shift: int, out_zp: int, qmin=INT8_MIN, qmax=INT8_MAX):
    """ONE rounding of the exact ``acc * multiplier * 2**-shift``, half up, plus out_zp,
    clamped; int32 accumulators and multipliers in [0, 2**31) only."""
    if not INT32_MIN <= acc <= INT32_MAX:
        raise ValueError(f"accumulator {acc} beyond int32")
    if not 0 <= multiplier < 2**31:
        raise ValueError(f"multiplier {multiplier} out of [0, 2**31)")
    return clamp(rounding_right_shift(acc * multiplier, shift) + out_zp, qmin, qmax)


def requant(acc: int, real: float, out_zp: int) -> int:
    """docs/quantization.md's ``requant(acc, r) = requantize(acc, *M(min(r, 2**8)), zp_out)``."""
    return requantize(int(acc), *fixed_point_multiplier(min(real, MULTIPLIER_CAP)), out_zp)


def requant_int32(acc: int, real: float) -> int:
    """``requant_0``: the same rounding with zero point 0 and int32 bounds (add/sub)."""
    return requantize(int(acc), *fixed_point_multiplier(real), 0, INT32_MIN, INT32_MAX)


# --------------------------------------------------------------------------- LUTs


def build_lut(
    fn: Callable[[np.ndarray], np.ndarray],
    in_scale: float,
    in_zp: int,
    out_scale: float,
    out_zp: int,
) -> list[int]:
    """Entry for code q (index q + 128): ``quantize(fn(float64(q - in_zp) * in_scale))``.

    `fn` is called on one float64 value at a time; NaN is an error.
    """
    table = []
    for q in range(INT8_MIN, INT8_MAX + 1):
        with np.errstate(all="ignore"):
            value = float(fn(np.float64(float(q - in_zp) * float(in_scale))))
        if math.isnan(value):
            raise ValueError(f"LUT function returned NaN for code {q}")
        table.append(quantize(value, out_scale, out_zp))
    return table


def apply_lut(q: int, table: Sequence[int]) -> int:
    return int(table[q - INT8_MIN])
