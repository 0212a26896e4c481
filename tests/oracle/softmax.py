"""The DPU's float18 softmax of int8 codes (numerics.softmax_int8's six documented steps)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from oracle.ieee import f18_add, f18_mul, f18_reciprocal, f18_sum, to_float18
from oracle.quant import INT8_MAX, INT8_MIN, clamp

TABLE_ENTRIES = 256


def exp_table(in_scale: float) -> list[float]:
    """Entry k = float18(exp(-k * in_scale)), exp in float64."""
    return [to_float18(math.exp(-k * float(in_scale))) for k in range(TABLE_ENTRIES)]


def softmax_row(
    codes: Sequence[int],
    in_scale: float,
    in_zp: int,
    out_scale: float,
    out_zp: int,
    neutral_value: float = -100000.0,
    valid_length: int | None = None,
) -> list[int]:
    """One row; lanes from `valid_length` on are PWORD padding holding the neutral value."""
    length = len(codes)
    valid_length = length if valid_length is None else valid_length
    if not 1 <= valid_length <= length:
        raise ValueError(f"valid_length {valid_length} out of [1, {length}]")
    # 1. x = float18(q - in_zp); padded lanes hold float18(neutral_value / in_scale), which
    #    must lie at least 256 input steps below the smallest input value.
    x = [to_float18(q - in_zp) for q in codes[:valid_length]]
    if valid_length < length:
        neutral = to_float18(float(neutral_value) / float(in_scale))
        if neutral > INT8_MIN - in_zp - TABLE_ENTRIES:
            raise ValueError(f"neutral value {neutral_value} is not negative enough")
        x += [neutral] * (length - valid_length)
    # 2. m = max(x); d = f18_add(x, -m).
    m = max(x)
    distances = [-f18_add(v, -m) for v in x]
    # 3. e = table[-d] for -d < 256, else 0.
    table = exp_table(in_scale)
    e = [table[int(d)] if d < TABLE_ENTRIES else 0.0 for d in distances]
    # 4. s = f18_sum(e); 5. t = f18_mul(f18_reciprocal(s), float18(1 / out_scale)).
    t = f18_mul(f18_reciprocal(f18_sum(e)), to_float18(1 / float(out_scale)))
    # 6. y = f18_mul(e, t); out = clamp(rint(y) + out_zp), rint half to even.
    return [clamp(round(f18_mul(v, t)) + out_zp, INT8_MIN, INT8_MAX) for v in e]
