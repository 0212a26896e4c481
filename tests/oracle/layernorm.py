"""The DPU's float18 LayerNorm of int8 codes (numerics.layer_norm_int8's eight documented
steps) and its rsqrt unit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from oracle.ieee import f18_add, f18_mul, f18_sum, to_float18
from oracle.quant import INT8_MAX, INT8_MIN, clamp


def f18_rsqrt(x: float) -> float:
    """float18(1 / sqrt(x)) of the float18 operand: root and quotient in float64 (IEEE: one
    correct rounding each, the same in Python as anywhere), then float32, then float18.
    Negative operands give NaN, +-0 gives +-inf, +inf gives 0."""
    x = to_float18(x)
    if math.isnan(x) or x < 0:
        return math.nan
    if x == 0:
        return math.copysign(math.inf, x)
    if math.isinf(x):
        return 0.0
    return to_float18(1 / math.sqrt(x))


def layer_norm_row(
    codes: Sequence[int],
    in_scale: float,
    in_zp: int,
    gamma: Sequence[float],
    beta: Sequence[float],
    epsilon: float,
    out_scale: float,
    out_zp: int,
) -> list[int]:
    """One normalised row; `gamma` and `beta` hold one value per element of the row."""
    inverse_count = to_float18(1 / len(codes))
    # 1. x = float18(q - in_zp); 2. mean = sum(x) / n; 3. d = x - mean.
    x = [to_float18(q - in_zp) for q in codes]
    mean = f18_mul(f18_sum(x), inverse_count)
    d = [f18_add(v, -mean) for v in x]
    # 4. var = sum(d d) / n; 5. r = rsqrt(var + epsilon in input steps squared).
    var = f18_mul(f18_sum([f18_mul(v, v) for v in d]), inverse_count)
    r = f18_rsqrt(f18_add(var, to_float18(float(epsilon) / float(in_scale) ** 2)))
    out = []
    for v, g, b in zip(d, gamma, beta, strict=True):
        # 6. y = d r; 7. z = y g + b, g and b divided by the output scale; 8. clamp(rint(z)).
        y = f18_mul(v, r)
        z = f18_add(f18_mul(y, to_float18(float(g) / out_scale)), to_float18(float(b) / out_scale))
        if math.isnan(z):
            raise ValueError("LayerNorm of a constant row with epsilon 0 is undefined")
        code = INT8_MAX if z == math.inf else INT8_MIN if z == -math.inf else round(z) + out_zp
        out.append(clamp(code, INT8_MIN, INT8_MAX))
    return out
