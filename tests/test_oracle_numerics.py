"""aipuc.numerics against the independent oracle (tests/oracle), bit for bit.

Each test draws cases with Hypothesis (tie cases placed on purpose), computes them with the
product's vectorised NumPy rules and with the oracle's element-by-element ones, and requires
identical results (or the same ValueError). The oracle is itself checked against NumPy's
float32 and an exact rational float18 rounding first, so a wrong oracle fails loudly too.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle import ieee, layernorm, quant, softmax
from oracle.cases import oracle_settings, scales, zero_points

from aipuc import numerics as nx
from aipuc.runtime.integer_reference import fixed_point_multiplier

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
float32_bit_patterns = st.integers(0, 2**32 - 1).map(ieee.from_float32_bits)
finite_float64 = st.floats(allow_nan=False, allow_infinity=False)


def same_float(a: float, b: float) -> bool:
    """Equal bits as float32 (NaN equals NaN; -0 differs from +0)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack("<f", a) == struct.pack("<f", b)


# --------------------------------------------------------------------------- the oracle itself


@oracle_settings(ci=200, long=2000)
@given(st.one_of(finite_float64, st.floats(-1e-38, 1e-38), st.floats(-4e38, 4e38)))
def test_oracle_f32_is_numpys_float32(x):
    with np.errstate(over="ignore"):
        assert same_float(ieee.f32(x), float(np.float32(x)))


@oracle_settings(ci=200, long=2000)
@given(float32_bit_patterns, float32_bit_patterns, st.sampled_from("+-*/"))
def test_oracle_f32_arithmetic_is_numpys(a, b, op):
    with np.errstate(all="ignore"):
        a32, b32 = np.float32(a), np.float32(b)
        expected = {"+": a32 + b32, "-": a32 - b32, "*": a32 * b32, "/": a32 / b32}[op]
    assert same_float(ieee.f32_op(op, a, b), float(expected))


@oracle_settings(ci=300, long=3000)
@given(float32_bit_patterns)
def test_oracle_float18_bits_equal_exact_rounding(x):
    """The struct bit rounding equals rounding the exact value (ties to even, overflow)."""
    assume(math.isfinite(x))
    exact = ieee.round_to_binary(Fraction(x), ieee.F18_MANTISSA_BITS, -126, 127)
    assert same_float(ieee.to_float18(x), math.copysign(exact, x) if exact == 0 else exact)


# --------------------------------------------------------------------------- quantization


@st.composite
def quantize_cases(draw):
    scale, zp = draw(scales(-40, 20)), draw(zero_points)
    qmin, qmax = draw(st.sampled_from([(-128, 127), (-127, 127), (INT32_MIN, INT32_MAX)]))
    steps = draw(st.one_of(st.integers(-300, 300), st.integers(-(2**33), 2**33)))
    kind = draw(st.sampled_from(["tie", "near", "any", "huge"]))
    if kind == "tie":
        x = (steps + 0.5) * scale  # exactly half way when the product is exact
    elif kind == "near":
        x = float(np.nextafter((steps + 0.5) * scale, draw(st.sampled_from([-np.inf, np.inf]))))
    elif kind == "huge":
        x = draw(st.sampled_from([math.inf, -math.inf, 3e38, -3e38, 1e300]))
    else:
        x = draw(finite_float64.filter(lambda v: abs(v) < 1e30))
    return x, scale, zp, qmin, qmax


@oracle_settings(ci=300, long=3000)
@given(quantize_cases())
def test_quantize(case):
    x, scale, zp, qmin, qmax = case
    assert int(nx.quantize(x, scale, zp, qmin=qmin, qmax=qmax)) == quant.quantize(
        x, scale, zp, qmin, qmax
    )


@oracle_settings(ci=50, long=500)
@given(st.data())
def test_quantize_and_dequantize_per_channel(data):
    channels = data.draw(st.integers(1, 4))
    scale_list = data.draw(st.lists(scales(-40, 20), min_size=channels, max_size=channels))
    zps = data.draw(st.lists(zero_points, min_size=channels, max_size=channels))
    x = data.draw(st.lists(st.floats(-1e4, 1e4), min_size=channels * 3, max_size=channels * 3))
    x = np.asarray(x).reshape(3, channels)
    q = nx.quantize(x, scale_list, zps, axis=1)
    assert q.tolist() == [
        [quant.quantize(x[i, c], scale_list[c], zps[c]) for c in range(channels)] for i in range(3)
    ]
    restored = nx.dequantize(q, scale_list, zps, axis=1)
    for i, c in np.ndindex(q.shape):
        expected = quant.dequantize(int(q[i, c]), scale_list[c], zps[c])
        assert same_float(float(restored[i, c]), expected)


@oracle_settings(ci=200, long=2000)
@given(st.integers(INT32_MIN, INT32_MAX), scales(-60, 40), st.integers(INT32_MIN, INT32_MAX))
def test_dequantize(q, scale, zp):
    assert same_float(float(nx.dequantize(q, scale, zp)), quant.dequantize(q, scale, zp))


float32_values = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def ranges(draw):
    kind = draw(st.sampled_from(["any", "small", "one-sided", "zero"]))
    if kind == "zero":
        return 0.0, 0.0
    values = float32_values if kind == "any" else st.floats(-10, 10, width=32)
    low, high = sorted([draw(values), draw(values)])
    if kind == "one-sided":
        low, high = (abs(low), abs(high)) if draw(st.booleans()) else (-abs(high), -abs(low))
    return min(low, high), max(low, high)


@oracle_settings(ci=300, long=3000)
@given(ranges())
def test_choose_qparams_asymmetric(bounds):
    assert nx.choose_qparams_asymmetric(*bounds) == quant.choose_qparams_asymmetric(*bounds)


@oracle_settings(ci=50, long=500)
@given(st.lists(ranges(), min_size=1, max_size=6))
def test_choose_qparams_asymmetric_per_channel(bounds):
    lows, highs = zip(*bounds, strict=True)
    scale, zp = nx.choose_qparams_asymmetric(np.array(lows), np.array(highs))
    expected = [quant.choose_qparams_asymmetric(lo, hi) for lo, hi in bounds]
    assert scale.tolist() == [s for s, _ in expected] and zp.tolist() == [z for _, z in expected]


@oracle_settings(ci=100, long=1000)
@given(st.lists(st.lists(finite_float64, min_size=1, max_size=5), min_size=1, max_size=4))
def test_choose_qparams_symmetric_per_channel(rows):
    """float64 weights too: the scales are computed in float32."""
    width = min(len(r) for r in rows)
    w = np.array([r[:width] for r in rows])
    with np.errstate(over="ignore"):
        got = nx.choose_qparams_symmetric_per_channel(w, axis=0)
    assert got.tolist() == [quant.choose_qparams_symmetric(row) for row in w.tolist()]
    # A 1-D tensor along its only axis: one channel per element.
    with np.errstate(over="ignore"):
        got = nx.choose_qparams_symmetric_per_channel(w[:, 0], axis=0)
    assert got.tolist() == [quant.choose_qparams_symmetric([v]) for v in w[:, 0].tolist()]


# --------------------------------------------------------------------------- multipliers


@st.composite
def real_multipliers(draw):
    """Reals across and beyond [2**-32, 2**30): exact ties of the Q31 rounding, the range
    ends, and arbitrary float64 values."""
    kind = draw(st.sampled_from(["tie", "end", "any"]))
    exponent = draw(st.integers(-36, 32))
    if kind == "tie":  # 32 significant bits ending in 1: exactly half a Q31 step
        significand = draw(st.integers(2**31, 2**32 - 1)) | 1
        return significand * 2.0 ** (exponent - 32)
    if kind == "end":
        edge = draw(st.sampled_from([2.0**-32, 2.0**30, 2.0**-31, 1.0, 2.0**29]))
        return float(np.nextafter(edge, draw(st.sampled_from([0.0, np.inf, edge]))))
    return draw(st.floats(1.0, 2.0, exclude_max=True)) * 2.0**exponent


def outcome(function, *args):
    """The result as plain ints, or "ValueError"."""
    try:
        return tuple(int(v) for v in function(*args))
    except ValueError:
        return "ValueError"


@oracle_settings(ci=400, long=4000)
@given(real_multipliers())
def test_quantize_multiplier(real):
    assert outcome(nx.quantize_multiplier, real) == outcome(quant.quantize_multiplier, real)


@oracle_settings(ci=200, long=2000)
@given(st.one_of(real_multipliers(), st.floats(0, 2.0**-31, exclude_min=True)))
def test_fixed_point_multiplier_maps_negligible_multipliers_to_zero(real):
    expected = outcome(quant.fixed_point_multiplier, real)
    assert outcome(fixed_point_multiplier, real) == expected


@st.composite
def shifts_and_values(draw):
    shift = draw(st.integers(0, 62))
    kind = draw(st.sampled_from(["tie", "any"]))
    limit = 2**63 - 1 - (1 << max(shift - 1, 0))
    if kind == "tie" and shift > 0:
        quotient = draw(st.integers(-(2**62) >> shift, (2**62 - 1) >> shift))
        return quotient * 2**shift + 2 ** (shift - 1), shift
    return draw(st.integers(-(2**63), limit)), shift


@oracle_settings(ci=400, long=4000)
@given(shifts_and_values())
def test_rounding_right_shift(case):
    x, shift = case
    assert int(nx.rounding_right_shift(x, shift)) == quant.rounding_right_shift(x, shift)


@st.composite
def requantize_cases(draw):
    acc = draw(st.integers(INT32_MIN, INT32_MAX))
    shift = draw(st.integers(1, 62))
    multiplier = draw(st.one_of(st.integers(2**30, 2**31 - 1), st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):  # a tie: acc * multiplier an odd multiple of 2**(shift - 1)
        multiplier = 2 ** (shift - 1) if shift <= 31 else multiplier
        acc = acc | 1
    bounds = draw(st.sampled_from([(-128, 127), (INT32_MIN, INT32_MAX), (-127, 127)]))
    return acc, multiplier, shift, draw(zero_points), bounds


@oracle_settings(ci=400, long=4000)
@given(requantize_cases())
def test_requantize(case):
    acc, multiplier, shift, zp, (qmin, qmax) = case
    got = nx.requantize(np.int64(acc), multiplier, shift, zp, qmin=qmin, qmax=qmax)
    assert int(got) == quant.requantize(acc, multiplier, shift, zp, qmin, qmax)


@oracle_settings(ci=50, long=500)
@given(st.data())
def test_requantize_per_channel(data):
    channels = data.draw(st.integers(1, 4))
    acc = data.draw(
        st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=2 * channels, max_size=2 * channels)
    )
    acc = np.array(acc, np.int64).reshape(2, channels)
    reals = data.draw(st.lists(real_multipliers(), min_size=channels, max_size=channels))
    assume(all(2.0**-32 <= r < 2.0**29 for r in reals))
    pairs = [quant.quantize_multiplier(r) for r in reals]
    zps = data.draw(st.lists(zero_points, min_size=channels, max_size=channels))
    got = nx.requantize(acc, [m for m, _ in pairs], [s for _, s in pairs], np.array(zps), axis=1)
    assert got.tolist() == [
        [quant.requantize(int(acc[i, c]), *pairs[c], zps[c]) for c in range(channels)]
        for i in range(2)
    ]


def test_requantize_rejects_what_the_contract_excludes():
    for acc in (2**31, -(2**31) - 1):
        with pytest.raises(ValueError):
            nx.requantize(np.int64(acc), 2**30, 31, 0)
        with pytest.raises(ValueError):
            quant.requantize(acc, 2**30, 31, 0)
    with pytest.raises(ValueError):
        nx.requantize(np.int64(1), 2**31, 31, 0)
    with pytest.raises(ValueError):
        quant.requantize(1, 2**31, 31, 0)


# --------------------------------------------------------------------------- float18


@oracle_settings(ci=300, long=3000)
@given(st.one_of(float32_bit_patterns, finite_float64, st.sampled_from([math.inf, -math.inf])))
def test_to_float18(x):
    with np.errstate(all="ignore"):
        got = float(nx.to_float18(x))
    assert same_float(got, ieee.to_float18(x))


def float18_operands():
    """float18 values (and their neighbours) over the whole exponent range, plus specials."""
    return st.one_of(
        float32_bit_patterns.map(ieee.to_float18),
        st.floats(-1e6, 1e6, width=32),
        st.sampled_from([0.0, -0.0, math.inf, -math.inf, 2.0**-149, 3.3e38]),
    )


@oracle_settings(ci=300, long=3000)
@given(float18_operands(), float18_operands())
def test_f18_add_mul_reciprocal(a, b):
    assert same_float(float(nx.f18_add(a, b)), ieee.f18_add(a, b))
    assert same_float(float(nx.f18_mul(a, b)), ieee.f18_mul(a, b))
    with np.errstate(all="ignore"):
        assert same_float(float(nx.f18_reciprocal(a)), ieee.f18_reciprocal(a))


@oracle_settings(ci=40, long=400)
@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=200))
def test_f18_sum(values):
    assert same_float(float(nx.f18_sum(np.float32(values))), ieee.f18_sum(values))


# --------------------------------------------------------------------------- LUTs, softmax

LUT_FUNCTIONS = [
    ("sigmoid", {}),
    ("tanh", {}),
    ("hardswish", {}),
    ("gelu", {}),
    ("exp", {}),
    ("reciprocal", {}),
    ("sqrt", {}),
    ("leakyrelu", {"alpha": 0.1}),
    ("elu", {"alpha": 0.7}),
    ("clip", {"min_value": -1.0, "max_value": 2.0}),
    ("identity", {}),
]


@oracle_settings(ci=40, long=400)
@given(st.sampled_from(LUT_FUNCTIONS), scales(-16, 4), zero_points, scales(-16, 4), zero_points)
def test_build_and_apply_lut(function, in_scale, in_zp, out_scale, out_zp):
    name, params = function
    fn = nx.UNARY_FUNCTIONS[name](**params)
    table = nx.build_lut(fn, in_scale, in_zp, out_scale, out_zp)
    expected = quant.build_lut(fn, in_scale, in_zp, out_scale, out_zp)
    assert table.tolist() == expected
    codes = np.arange(-128, 128)
    assert nx.apply_lut(codes, table).tolist() == [quant.apply_lut(q, expected) for q in codes]


@st.composite
def softmax_cases(draw):
    length = draw(st.integers(1, 140))
    codes = draw(st.lists(st.integers(-128, 127), min_size=length, max_size=length))
    valid = draw(st.one_of(st.none(), st.integers(1, length)))
    in_scale = draw(st.one_of(st.floats(0.001, 1.0), scales(-10, -1)))
    out_scale = draw(st.one_of(st.sampled_from([1 / 256, 1 / 255]), scales(-10, -1)))
    return codes, in_scale, draw(zero_points), out_scale, draw(zero_points), valid


@oracle_settings(ci=40, long=400)
@given(softmax_cases())
def test_softmax_int8(case):
    codes, in_scale, in_zp, out_scale, out_zp, valid = case
    neutral = -1e9
    got = nx.softmax_int8(
        np.int8(codes),
        in_scale,
        in_zp,
        out_scale,
        out_zp,
        neutral_value=neutral,
        valid_length=valid,
    )
    expected = softmax.softmax_row(codes, in_scale, in_zp, out_scale, out_zp, neutral, valid)
    assert got.tolist() == expected


def test_softmax_rows_are_independent():
    """Each row subtracts its own maximum: a row far below another is not flushed to zero."""
    codes = [[-128, -127], [126, 127]]
    got = nx.softmax_int8(np.int8(codes), 0.5, 0, 1 / 256, -128)
    expected = [softmax.softmax_row(row, 0.5, 0, 1 / 256, -128) for row in codes]
    assert got.tolist() == expected
    assert expected[0] == expected[1]  # the same differences in both rows


# --------------------------------------------------------------------------- LayerNorm


@oracle_settings(ci=300, long=3000)
@given(float32_bit_patterns)
def test_f18_rsqrt(x):
    """Every float32 pattern: normal, subnormal, negative, zero, inf, NaN."""
    assert same_float(float(nx.f18_rsqrt(np.float32(x))), layernorm.f18_rsqrt(x))


def test_f18_rsqrt_examples():
    """Exact roots, the signs of zero, infinity, a negative operand, and a value whose float18
    operand differs from it: 1 + 2**-10 rounds to 1 first (ties to even), so its rsqrt is 1."""
    x = np.float32([4.0, 2.0**-20, 0.0, -0.0, np.inf, 1 + 2**-10, -1.0])
    got = nx.f18_rsqrt(x)
    assert got[:6].tolist() == [0.5, 2.0**10, np.inf, -np.inf, 0.0, 1.0]
    assert np.isnan(got[6])


@st.composite
def layer_norm_cases(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 70)))
    axis = draw(st.sampled_from([1, 2, -1]))
    codes = draw(hnp.arrays(np.int8, shape))
    if draw(st.booleans()):  # a constant row: d = 0, the deviation is epsilon's alone
        codes[0] = codes.flat[0]
    normalised = shape[axis:]
    weights = hnp.arrays(np.float32, normalised, elements=st.floats(-4, 4, width=32))
    epsilon = draw(st.one_of(st.sampled_from([1e-5, 1e-12]), st.floats(1e-12, 1.0)))
    in_scale = draw(scales(-12, 2))
    out_scale = draw(st.one_of(scales(-8, 1), scales(-80, -60)))  # the latter saturates
    return (
        codes,
        in_scale,
        draw(zero_points),
        draw(weights),
        draw(weights),
        epsilon,
        (
            out_scale,
            draw(zero_points),
            axis,
        ),
    )


@oracle_settings(ci=60, long=600)
@given(layer_norm_cases())
def test_layer_norm_int8(case):
    codes, in_scale, in_zp, gamma, beta, epsilon, (out_scale, out_zp, axis) = case
    got = nx.layer_norm_int8(
        codes, in_scale, in_zp, gamma, beta, epsilon, out_scale, out_zp, axis=axis
    )
    rows = codes.reshape(*codes.shape[: axis % codes.ndim], -1).reshape(-1, gamma.size)
    expected = [
        layernorm.layer_norm_row(
            [int(q) for q in row],
            in_scale,
            in_zp,
            gamma.reshape(-1).tolist(),
            beta.reshape(-1).tolist(),
            epsilon,
            out_scale,
            out_zp,
        )
        for row in rows
    ]
    assert got.reshape(-1, gamma.size).tolist() == expected


def test_f18_sum_keeps_the_sign_of_an_all_negative_zero_sum():
    """IEEE: -0 + -0 = -0, so 64 lanes of -0 sum to -0 (an extra +0 group would give +0)."""
    total = float(nx.f18_sum(np.full(64, -0.0, np.float32)))
    assert math.copysign(1, total) == -1 == math.copysign(1, ieee.f18_sum([-0.0] * 64))


MATH_DEFINITIONS = {
    "relu": lambda x: max(x, 0.0),
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
    "tanh": math.tanh,
    "hardswish": lambda x: x * min(max(x / 6 + 0.5, 0.0), 1.0),
    "silu": lambda x: x / (1 + math.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))),
    "softplus": lambda x: math.log1p(math.exp(x)),
    "exp": math.exp,
    "erf": math.erf,
    "sqrt": lambda x: math.sqrt(max(x, 0.0)),
    "identity": lambda x: x,
    "abs": abs,
    "neg": lambda x: -x,
    "gelu_tanh": lambda x: (
        0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    ),
    "softsign": lambda x: x / (1 + abs(x)),
    "mish": lambda x: x * math.tanh(math.log1p(math.exp(x))),
    "log": lambda x: math.log(x) if x > 0 else -math.inf,  # a table clamps x <= 0 to -inf
    "sin": math.sin,
    "cos": math.cos,
}
PARAMETRISED = {
    ("hardsigmoid", (("alpha", 0.3), ("beta", 0.4))): lambda x: min(max(0.3 * x + 0.4, 0.0), 1.0),
    ("leakyrelu", (("alpha", 0.1),)): lambda x: x if x >= 0 else 0.1 * x,
    ("elu", (("alpha", 0.7),)): lambda x: x if x > 0 else 0.7 * math.expm1(x),
    ("clip", (("min_value", -1.0), ("max_value", 2.0))): lambda x: min(max(x, -1.0), 2.0),
    ("selu", (("alpha", 1.6), ("gamma", 1.05))): lambda x: (
        1.05 * (x if x > 0 else 1.6 * math.expm1(x))
    ),
    ("celu", (("alpha", 0.7),)): lambda x: max(x, 0.0) + min(0.0, 0.7 * math.expm1(x / 0.7)),
    ("thresholdedrelu", (("alpha", 1.5),)): lambda x: x if x > 1.5 else 0.0,
    ("pow", (("exponent", 3.0),)): lambda x: x**3,
}


def test_unary_functions_equal_their_math_definitions():
    """The LUT functions (the one thing the oracle takes from the product) against math."""
    grid = [i / 8 for i in range(-48, 49)]  # -6 .. 6, with 0 and points in (0, 1)
    cases = {(name, ()): fn for name, fn in MATH_DEFINITIONS.items()} | PARAMETRISED
    assert {name for name, _ in cases} == set(nx.UNARY_FUNCTIONS) - {"reciprocal"}
    for (name, params), reference in cases.items():
        with np.errstate(divide="ignore"):  # log(0)
            got = nx.UNARY_FUNCTIONS[name](**dict(params))(np.array(grid))
        expected = [reference(x) for x in grid]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=name)
    root = nx.UNARY_FUNCTIONS["pow"](exponent=0.5)(np.array([-4.0, 0.25]))
    assert root.tolist() == [0.0, 0.5]  # a fractional power clamps negative inputs to 0
    reciprocal = nx.UNARY_FUNCTIONS["reciprocal"]()(np.array([0.5, -4.0]))
    assert reciprocal.tolist() == [2.0, -0.25]
