"""Tests of the shared numerics against independent exact (Fraction) and pure-Python references."""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aipuc import numerics as nx
from aipuc.hardware import AIPU

MANTISSA_BITS = AIPU.float18_mantissa_bits
LANES = AIPU.dpu_lanes
F18_MIN_EXPONENT = -126  # float18 shares float32's exponent range
F18_OVERFLOW = Fraction(2) ** 128

int32s = st.integers(-(2**31), 2**31 - 1)
real_multipliers = st.floats(2.0**-32, 2.0**15)


# --------------------------------------------------------------------------- references


def round_half_up_shift(value: int, shift: int) -> int:
    """The documented requantization rounding, computed exactly."""
    return math.floor(Fraction(value, 2**shift) + Fraction(1, 2))


def f18_reference(exact: Fraction) -> float:
    """Correctly rounded float18 (ties to even, gradual underflow, overflow to inf)."""
    if exact == 0:
        return 0.0
    magnitude = abs(exact)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    ulp = Fraction(2) ** (max(exponent, F18_MIN_EXPONENT) - MANTISSA_BITS)
    rounded = round(magnitude / ulp) * ulp  # Fraction.__round__ ties to even
    result = math.inf if rounded >= F18_OVERFLOW else float(rounded)
    return math.copysign(result, exact)


def f18_values(rng: np.random.Generator, size: int, low_exp: int, high_exp: int) -> np.ndarray:
    """Random float18 values with exponents in [low_exp, high_exp)."""
    mantissa = 1 + rng.integers(0, 2**MANTISSA_BITS, size) / 2**MANTISSA_BITS
    sign = rng.choice([-1.0, 1.0], size)
    return (sign * np.ldexp(mantissa, rng.integers(low_exp, high_exp, size))).astype(np.float32)


def f18_sum_loop(row: list[float]) -> float:
    """f18_sum's documented order, one scalar at a time, rounded by the Fraction reference."""

    def add(a: float, b: float) -> float:
        return f18_reference(Fraction(a) + Fraction(b))

    groups = max(1, -(-len(row) // LANES))
    padded = row + [0.0] * (groups * LANES - len(row))
    acc = padded[:LANES]
    for group in range(1, groups):
        acc = [add(acc[lane], padded[group * LANES + lane]) for lane in range(LANES)]
    width = LANES
    while width > 1:
        width //= 2
        acc = [add(acc[lane], acc[lane + width]) for lane in range(width)]
    return acc[0]


# --------------------------------------------------------------------------- quantization


@given(
    st.floats(-1e4, 1e4),
    st.floats(-1e4, 1e4),
    st.lists(st.floats(0, 1), min_size=1, max_size=50),
)
def test_quantize_round_trip_within_half_a_step(a, b, fractions):
    lo, hi = min(a, b), max(a, b)
    scale, zp = nx.choose_qparams_asymmetric(lo, hi)
    assert scale > 0 and -128 <= zp <= 127
    assert nx.dequantize(nx.quantize(0.0, scale, zp), scale, zp) == 0  # 0 is exact
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    x = np.float32(lo + np.array(fractions) * (hi - lo))
    q = nx.quantize(x, scale, zp)
    assert q.dtype == np.int8
    error = np.abs(nx.dequantize(q, scale, zp).astype(np.float64) - x)
    assert np.all(error <= scale / 2 * (1 + 1e-5) + 1e-6 * np.abs(x))


def test_quantize_rounds_half_to_even_and_clamps():
    q = nx.quantize([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9, np.inf], 1.0, 0)
    assert q.tolist() == [0, 2, 2, 0, -2, 127, -128, 127]
    assert nx.quantize([1e12], 1.0, 0, qmin=-(2**31), qmax=2**31 - 1).dtype == np.int32


def test_qparams_of_all_zero_tensor_have_positive_scale():
    scale, zp = nx.choose_qparams_asymmetric(0.0, 0.0)
    assert scale > 0 and zp == -128
    weight_scales = nx.choose_qparams_symmetric_per_channel(np.zeros((3, 4)), axis=0)
    assert np.all(weight_scales > 0)


def test_choose_qparams_asymmetric_per_channel_arrays():
    lo, hi = np.array([-64.0, 0.5, -3.0]), np.array([191.0, 2.0, -1.0])
    scale, zp = nx.choose_qparams_asymmetric(lo, hi)
    assert scale.dtype == np.float32 and zp.dtype == np.int32
    np.testing.assert_allclose(scale, [1.0, 2 / 255, 3 / 255], rtol=1e-6)
    assert zp.tolist() == [-64, -128, 127]


def test_symmetric_per_channel_weights_use_full_range_and_round_trip():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 3, 3, 5)).astype(np.float32) * rng.uniform(0.01, 10, (8, 1, 1, 1))
    scales = nx.choose_qparams_symmetric_per_channel(w, axis=0)
    q = nx.quantize(w, scales, 0, axis=0, qmin=-127, qmax=127)
    assert np.abs(q).reshape(8, -1).max(axis=1).tolist() == [127] * 8
    error = np.abs(nx.dequantize(q, scales, 0, axis=0) - w)
    assert np.all(error <= scales[:, None, None, None] / 2 * (1 + 1e-5))
    np.testing.assert_array_equal(nx.choose_qparams_symmetric_per_channel(w.T, axis=-1), scales)


# --------------------------------------------------------------------------- requantization


def test_quantize_multiplier_relative_error_and_normalisation():
    real = np.concatenate([np.geomspace(1e-9, 2.0**15, 5000), [1.0, 0.5, 2.0**-32, 1 - 2**-40]])
    multiplier, shift = nx.quantize_multiplier(real)
    assert multiplier.dtype == np.int32
    assert np.all((multiplier >= 2**30) & (multiplier.astype(np.int64) < 2**31))
    approx = multiplier.astype(np.float64) * np.ldexp(1.0, -shift.astype(np.int64))
    assert np.max(np.abs(approx / real - 1)) < 2.0**-30


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, 2.0**30, 1e-12])
def test_quantize_multiplier_rejects_out_of_range(bad):
    with pytest.raises(ValueError):
        nx.quantize_multiplier([0.5, bad])


def test_requantize_matches_exact_rounding_rule_elementwise():
    rng = np.random.default_rng(2)
    acc = np.concatenate(
        [
            rng.integers(-(2**31), 2**31, 2000),
            rng.integers(-5000, 5000, 2000),
            [-(2**31), 2**31 - 1],
        ]
    )
    real = np.exp(rng.uniform(np.log(1e-9), np.log(2.0**15), acc.size))
    multiplier, shift = nx.quantize_multiplier(real)
    zp = rng.integers(-128, 128, acc.size)
    out = nx.requantize(acc, multiplier, shift, zp)
    expected = [
        min(127, max(-128, round_half_up_shift(int(a) * int(m), int(s)) + int(z)))
        for a, m, s, z in zip(acc, multiplier, shift, zp, strict=True)
    ]
    assert out.dtype == np.int8
    assert out.tolist() == expected


@pytest.mark.parametrize("smallest_real", [2.0**-12, 1e-9])  # shifts up to 43, up to 61
@pytest.mark.parametrize("zero_points", [2**7, 2**20])
def test_requantize_zero_point_and_rounding_term_together(smallest_real, zero_points):
    """Zero points folded into the rounding term (when the shifts leave room) or added
    after the shift give the rule's result, for int8 and int32 outputs."""
    rng = np.random.default_rng(7)
    acc = np.concatenate([rng.integers(-(2**31), 2**31, 1000), [-(2**31), 2**31 - 1]])
    real = np.exp(rng.uniform(np.log(smallest_real), np.log(2.0**15), acc.size))
    multiplier, shift = nx.quantize_multiplier(real)
    zp = rng.integers(-zero_points, zero_points, acc.size)
    for qmin, qmax in ((-128, 127), (-(2**31), 2**31 - 1)):
        out = nx.requantize(acc, multiplier, shift, zp, qmin=qmin, qmax=qmax)
        expected = [
            min(qmax, max(qmin, round_half_up_shift(int(a) * int(m), int(s)) + int(z)))
            for a, m, s, z in zip(acc, multiplier, shift, zp, strict=True)
        ]
        assert out.tolist() == expected


def test_requantize_ties_round_half_up():
    acc = np.arange(-7, 8)  # acc * 2**30 / 2**31 = acc / 2: every odd acc is a tie
    out = nx.requantize(acc, 2**30, 31, 0)
    assert out.tolist() == [-3, -3, -2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert out.tolist() == [round_half_up_shift(int(a) * 2**30, 31) for a in acc]


@given(int32s, real_multipliers, st.integers(-128, 127))
def test_requantize_scalar_property(acc, real, zp):
    multiplier, shift = nx.quantize_multiplier(real)
    expected = round_half_up_shift(acc * int(multiplier), int(shift)) + zp
    assert nx.requantize(np.int32(acc), multiplier, shift, zp) == min(127, max(-128, expected))


def test_requantize_per_channel_along_axis():
    rng = np.random.default_rng(3)
    acc = rng.integers(-(2**20), 2**20, (2, 6, 4, 4)).astype(np.int32)
    multiplier, shift = nx.quantize_multiplier(rng.uniform(1e-5, 1e-3, 6))
    out = nx.requantize(acc, multiplier, shift, -3, axis=1)
    for channel in range(6):
        per_tensor = nx.requantize(acc[:, channel], multiplier[channel], shift[channel], -3)
        np.testing.assert_array_equal(out[:, channel], per_tensor)
    expected = [
        min(127, max(-128, round_half_up_shift(int(a) * int(multiplier[c]), int(shift[c])) - 3))
        for (_, c, _, _), a in np.ndenumerate(acc)
    ]
    assert out.ravel().tolist() == expected


def test_requantize_rejects_accumulators_beyond_int32():
    with pytest.raises(ValueError):
        nx.requantize(np.array([2**31], np.int64), 2**30, 31, 0)
    with pytest.raises(TypeError):
        nx.requantize(np.array([1.5]), 2**30, 31, 0)


@given(st.integers(-(2**40), 2**40), st.integers(0, 20))
def test_rounding_right_shift_is_round_half_up(x, shift):
    assert nx.rounding_right_shift(x, shift) == round_half_up_shift(x, shift)


def test_rounding_right_shift_examples_and_range():
    out = nx.rounding_right_shift([5, -5, 7, -6, -7], [1, 1, 0, 2, 2])
    assert out.tolist() == [3, -2, 7, -1, -2]
    with pytest.raises(ValueError):
        nx.rounding_right_shift(1, 63)


# --------------------------------------------------------------------------- float18


def test_to_float18_is_exact_on_representable_values():
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32)
    bits &= np.uint32(~((1 << (23 - MANTISSA_BITS)) - 1) & 0xFFFFFFFF)
    values = bits.view(np.float32)
    values = values[~np.isnan(values)]
    np.testing.assert_array_equal(nx.to_float18(values), values)


def test_to_float18_matches_exact_rounding_on_random_bit_patterns():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32)
    bits[:500] &= np.uint32(0x80FFFFFF)  # many subnormals and tiny normals
    values = bits.view(np.float32)
    values = values[np.isfinite(values)]
    expected = [f18_reference(Fraction(float(v))) for v in values]
    np.testing.assert_array_equal(nx.to_float18(values), np.array(expected, np.float32))


def test_to_float18_ties_to_even_and_special_values():
    ulp = 2.0**-MANTISSA_BITS
    ties = np.float32([1 + ulp / 2, 1 + 3 * ulp / 2, -(1 + ulp / 2), 2 - ulp / 2])
    np.testing.assert_array_equal(nx.to_float18(ties), [1.0, 1 + 2 * ulp, -1.0, 2.0])
    largest = (2 - 2 * ulp) * 2.0**127
    overflow = nx.to_float18(np.float32([largest, np.finfo(np.float32).max, -np.inf]))
    np.testing.assert_array_equal(overflow, [largest, np.inf, -np.inf])
    assert np.isnan(nx.to_float18(np.float32(np.nan)))


def test_to_float18_is_monotonic_with_bounded_relative_error():
    rng = np.random.default_rng(6)
    values = np.sort(
        (rng.choice([-1, 1], 200_000) * np.exp(rng.uniform(-80, 80, 200_000))).astype(np.float32)
    )
    rounded = nx.to_float18(values)
    assert np.all(np.diff(rounded) >= 0)
    relative = np.abs(rounded.astype(np.float64) / values - 1)
    assert relative.max() <= 2.0 ** -(MANTISSA_BITS + 1)


def test_f18_arithmetic_is_correctly_rounded():
    rng = np.random.default_rng(7)
    a, b = f18_values(rng, 2000, -20, 20), f18_values(rng, 2000, -20, 20)
    b[:500] = nx.to_float18(-a[:500] * np.float32(1 + 2.0**-MANTISSA_BITS))  # cancellation
    sums, products, reciprocals = nx.f18_add(a, b), nx.f18_mul(a, b), nx.f18_reciprocal(a)
    for i in range(a.size):
        fa, fb = Fraction(float(a[i])), Fraction(float(b[i]))
        assert sums[i] == f18_reference(fa + fb)
        assert products[i] == f18_reference(fa * fb)
        assert reciprocals[i] == f18_reference(1 / fa)
    assert nx.f18_reciprocal(np.float32(0)) == np.inf


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 200), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_f18_sum_equals_loop_in_documented_order(length, rows, seed):
    rng = np.random.default_rng(seed)
    x = f18_values(rng, rows * length, -8, 8).reshape(rows, length)
    total = nx.f18_sum(x.T, axis=0)
    np.testing.assert_array_equal(total, nx.f18_sum(x, axis=-1))
    assert total.tolist() == [f18_sum_loop(row) for row in x.tolist()]


def test_f18_sum_order_matters_and_is_fixed():
    x = np.float32([2.0**10] + [1.0] * 127)  # each 1 alone vanishes against 2**10
    assert nx.f18_sum(x) == f18_sum_loop(x.tolist())
    assert nx.f18_sum(x) != f18_reference(Fraction(2**10 + 127))  # not the exact sum
    np.testing.assert_array_equal(nx.f18_sum(np.tile(x, (3, 1)), axis=1), [nx.f18_sum(x)] * 3)


# --------------------------------------------------------------------------- unary functions, LUTs

MONOTONE = "relu sigmoid tanh hardsigmoid leakyrelu elu softplus exp erf sqrt identity".split()


def test_erf_accuracy_against_math_erf():
    x = np.concatenate([np.linspace(-9, 9, 200_001), [0.0, -0.0, 1e-300, 40.0, -np.inf]])
    expected = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(nx.erf(x) - expected)) < 1e-7


def test_unary_function_definitions():
    fns = {
        name: factory()
        for name, factory in nx.UNARY_FUNCTIONS.items()
        if name not in ("clip", "pow")
    }
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(fns["hardswish"](x), [-1 / 3, 0, 3])
    np.testing.assert_allclose(fns["hardsigmoid"](x), [0.1, 0.5, 1.0])
    np.testing.assert_allclose(fns["leakyrelu"](x), [-0.02, 0, 3])
    gelu_expected = [-(1 - math.erf(2**0.5)), 0, 3 * 0.998650102]
    np.testing.assert_allclose(fns["gelu"](x), gelu_expected, rtol=1e-7)
    np.testing.assert_allclose(fns["softplus"](np.array([-800.0, 0, 800])), [0, math.log(2), 800])
    np.testing.assert_allclose(fns["silu"](x), x / (1 + np.exp(-x)))
    np.testing.assert_allclose(fns["elu"](x), [math.expm1(-2), 0, 3])
    np.testing.assert_allclose(nx.UNARY_FUNCTIONS["leakyrelu"](alpha=0.5)(x), [-1, 0, 3])
    np.testing.assert_allclose(nx.UNARY_FUNCTIONS["clip"](min_value=0, max_value=6)(x), [0, 0, 3])
    np.testing.assert_allclose(fns["softsign"](x), [-2 / 3, 0, 0.75])
    np.testing.assert_allclose(fns["thresholdedrelu"](x), [0, 0, 3])
    np.testing.assert_allclose(fns["selu"](x)[1:], [0, 3 * 1.0507009873554805])
    np.testing.assert_allclose(fns["celu"](x), [math.expm1(-2), 0, 3])
    np.testing.assert_allclose(fns["mish"](x), x * np.tanh(np.log1p(np.exp(x))))
    np.testing.assert_allclose(fns["gelu_tanh"](x), fns["gelu"](x), atol=2e-3)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(fns["log"](np.array([-1.0, 0.0, math.e])), [-np.inf, -np.inf, 1])
    np.testing.assert_allclose(nx.UNARY_FUNCTIONS["pow"](exponent=3.0)(x), [-8, 0, 27])
    np.testing.assert_allclose(nx.UNARY_FUNCTIONS["pow"](exponent=0.5)(x), [0, 0, math.sqrt(3)])


@pytest.mark.parametrize("name", MONOTONE)
def test_luts_of_monotone_functions_are_monotone(name):
    table = nx.build_lut(nx.UNARY_FUNCTIONS[name](), 0.05, 7, 0.02, -10)
    assert table.shape == (256,) and table.dtype == np.int8
    assert np.all(np.diff(table.astype(int)) >= 0)


def test_lut_exact_points_and_lookup():
    codes = np.arange(-128, 128)
    identity = nx.build_lut(nx.UNARY_FUNCTIONS["identity"](), 0.1, 3, 0.1, 3)
    np.testing.assert_array_equal(identity, codes)
    neg = nx.build_lut(nx.UNARY_FUNCTIONS["neg"](), 0.1, 0, 0.1, 0)
    np.testing.assert_array_equal(neg, np.minimum(-codes, 127))
    relu = nx.build_lut(nx.UNARY_FUNCTIONS["relu"](), 0.1, 5, 0.1, -128)
    assert relu[5 + 128] == -128 and relu[127 + 128] == -128 + 122
    sigmoid = nx.build_lut(nx.UNARY_FUNCTIONS["sigmoid"](), 0.05, 0, 1 / 256, -128)
    assert sigmoid[128] == 0  # sigmoid(0) = 0.5 -> code 128 - 128
    reciprocal = nx.build_lut(nx.UNARY_FUNCTIONS["reciprocal"](), 0.1, 0, 0.1, 0)
    assert reciprocal[128] == 127  # 1/0 saturates
    q = np.random.default_rng(8).integers(-128, 128, (3, 50)).astype(np.int8)
    np.testing.assert_array_equal(nx.apply_lut(q, sigmoid), sigmoid[q.astype(int) + 128])


def test_lut_rejects_nan_and_bad_tables():
    with pytest.raises(ValueError):
        nx.build_lut(np.log, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError):
        nx.apply_lut(np.int8([1]), np.zeros(255, np.int8))


# --------------------------------------------------------------------------- softmax

OUT_SCALE, OUT_ZP = 1 / 256, -128


@settings(max_examples=40, deadline=None)
@given(
    st.floats(0.005, 0.5),
    st.integers(-128, 127),
    st.integers(1, 300),
    st.integers(0, 2**32 - 1),
)
def test_softmax_int8_close_to_float_softmax(in_scale, in_zp, length, seed):
    q = np.random.default_rng(seed).integers(-128, 128, (3, length)).astype(np.int8)
    out = nx.softmax_int8(q, in_scale, in_zp, OUT_SCALE, OUT_ZP, axis=-1)
    assert out.dtype == np.int8
    expected = nx.softmax_float_reference(nx.dequantize(q, in_scale, in_zp), axis=-1)
    steps = np.abs(nx.dequantize(out, OUT_SCALE, OUT_ZP) - expected) / OUT_SCALE
    assert steps.max() <= 2


def test_softmax_padding_with_neutral_value_does_not_change_bits():
    rng = np.random.default_rng(9)
    for length in (1, 63, 64, 100, 130):
        q = rng.integers(-128, 128, (4, length)).astype(np.int8)
        plain = nx.softmax_int8(q, 0.07, -5, OUT_SCALE, OUT_ZP)
        for padded_length in (-(-length // LANES) * LANES, length + 2 * LANES):
            garbage = rng.integers(-128, 128, (4, padded_length - length)).astype(np.int8)
            padded = np.concatenate([q, garbage], axis=1)
            out = nx.softmax_int8(padded, 0.07, -5, OUT_SCALE, OUT_ZP, valid_length=length)
            np.testing.assert_array_equal(out[:, :length], plain)
            assert np.all(out[:, length:] == OUT_ZP)


def test_softmax_axis_determinism_and_table():
    q = np.random.default_rng(10).integers(-128, 128, (2, 70, 5)).astype(np.int8)
    out = nx.softmax_int8(q, 0.1, 0, OUT_SCALE, OUT_ZP, axis=1)
    np.testing.assert_array_equal(out, nx.softmax_int8(q, 0.1, 0, OUT_SCALE, OUT_ZP, axis=1))
    moved = nx.softmax_int8(np.moveaxis(q, 1, -1), 0.1, 0, OUT_SCALE, OUT_ZP)
    np.testing.assert_array_equal(np.moveaxis(out, 1, -1), moved)
    table = nx.softmax_exp_table(0.1)
    assert table[0] == 1 and table.shape == (256,)
    np.testing.assert_array_equal(table, nx.to_float18(table))


def test_softmax_rejects_neutral_value_inside_the_table():
    q = np.zeros((1, 64), np.int8)
    with pytest.raises(ValueError, match="not negative enough"):
        nx.softmax_int8(q, 0.1, 0, OUT_SCALE, OUT_ZP, neutral_value=-30.0, valid_length=10)
    with pytest.raises(ValueError):
        nx.softmax_int8(q, 0.1, 0, OUT_SCALE, OUT_ZP, valid_length=0)


# --------------------------------------------------------------------------- float definitions


def test_unary_function_applies_the_affine_parameters_around_the_function():
    """`post_scale * f(pre_scale * x + pre_shift) + post_shift`, each parameter in its place."""
    params = {"pre_scale": 2.0, "pre_shift": 0.5, "post_scale": 3.0, "post_shift": -1.0}
    x = np.array([-3.0, -0.25, 0.0, 1.5])
    got = nx.unary_function("sigmoid", params)(x)
    expected = [3.0 / (1.0 + math.exp(-(2.0 * v + 0.5))) - 1.0 for v in x]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    leaky = nx.unary_function("leakyrelu", {"alpha": 0.25, "post_shift": 2.0})
    np.testing.assert_array_equal(leaky(np.array([-4.0, 4.0])), [1.0, 6.0])
    plain = nx.unary_function("tanh", {"pre_scale": 1.0, "post_shift": 0.0})
    np.testing.assert_array_equal(plain(x), np.tanh(x))


def test_softmax_float_reference_is_stable_per_row_in_float64():
    """Each row is shifted by its own maximum (no overflow, no row underflowing to 0/0) and
    computed in float64 whatever the input type."""
    x = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1001.0, -3000.0]], np.float32)
    got = nx.softmax_float_reference(x)
    assert got.dtype == np.float64
    e = math.exp(-1.0)
    np.testing.assert_allclose(got, [[1 / (1 + e), e / (1 + e), 0.0]] * 2, rtol=1e-15)
    third = nx.softmax_float_reference(np.float32([[0.1, 0.2, 0.3]]))
    exact = [math.exp(v - 0.30000001192092896) for v in np.float32([0.1, 0.2, 0.3]).tolist()]
    np.testing.assert_allclose(third[0], [v / sum(exact) for v in exact], rtol=1e-15)


def test_build_lut_saturates_overflow_silently():
    """exp overflows to inf for the top codes: the table saturates at 127, with no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = nx.build_lut(np.exp, 10.0, 0, 1.0, 0)
    assert table[128 + 72] == 127 and table[-1] == 127  # exp(720) and exp(1270) are inf
    assert table[0] == 0  # exp(-1280) underflows to 0


# --------------------------------------------------------------------------- details
# Each of these pins a part of the contract that a one-line fault (a mutmut survivor) changed
# without any other test noticing (docs/numerics-testing.md, "Mutation testing").


def test_per_channel_zero_points_broadcast_along_their_axis():
    """Zero points per channel of axis 0 of a [2, 3] array (not its last axis)."""
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    q = nx.quantize(x, [1.0, 0.5], [1, -1], axis=0)
    assert q.tolist() == [[2, 3, 4], [1, 3, 5]]
    assert nx.dequantize(q, [1.0, 0.5], [1, -1], axis=0).tolist() == x.tolist()
    acc = np.array([[2, 4, 6], [2, 4, 6]])
    got = nx.requantize(acc, [2**30, 2**30], [32, 31], [3, -3], axis=0)  # x 1/4 and x 1/2
    assert got.tolist() == [[4, 4, 5], [-2, -1, 0]]  # 0.5 -> 1, 1.5 -> 2 (half up)


def test_result_dtypes():
    """dequantize gives float32, weight scales float32, Q31 multipliers and shifts int32."""
    assert nx.dequantize(np.int8([3]), 0.1, 0).dtype == np.float32
    w = np.ones((2, 3), np.float32)
    assert nx.choose_qparams_symmetric_per_channel(w, axis=0).dtype == np.float32
    multiplier, shift = nx.quantize_multiplier([0.3, 1e-5])
    assert multiplier.dtype == np.int32 and shift.dtype == np.int32
    codes = np.zeros((2, 3, 4), np.int8)
    normed = nx.layer_norm_int8(codes, 0.1, 0, np.ones((3, 4)), np.zeros((3, 4)), 1e-5, 0.1, 0, 1)
    assert normed.dtype == np.int8 and normed.shape == (2, 3, 4)
    assert nx.softmax_int8(codes, 0.1, 0, 1 / 256, -128).dtype == np.int8


def test_layer_norm_epsilon_is_in_input_steps_squared():
    """codes [0, 1] at s_in = 1/16, epsilon 1/64: epsilon / s_in**2 = 4 input steps squared, so
    var + eps = 0.25 + 4 = 4.25, r = float18(1 / sqrt(4.25)) = 0.4853515625, y = +-r / 2, and
    z = y / (1/64) = +-15.53 -> +-16. (epsilon / s_in * 2 = 0.5 would give r = 1.1543 and
    +-37.)"""
    got = nx.layer_norm_int8(
        np.int8([[0, 1]]), 1 / 16, 0, np.ones(2), np.zeros(2), 1 / 64, 1 / 64, 0
    )
    assert got.tolist() == [[-16, 16]]


def test_quantization_ranges_pick_a_dtype_holding_both_ends():
    """[0, 255] needs int16 (int8 would wrap 200 to -56); a one-code range is legal."""
    q = nx.quantize([200.0, -5.0], 1.0, 0, qmin=0, qmax=255)
    assert q.dtype == np.int16 and q.tolist() == [200, 0]
    assert nx.quantize([3.0, -3.0], 1.0, 0, qmin=0, qmax=0).tolist() == [0, 0]


def test_unary_function_defaults_are_onnx():
    """Selu's alpha and gamma and ThresholdedRelu's alpha default to ONNX's values."""
    selu = nx.UNARY_FUNCTIONS["selu"]()
    # gamma * alpha * (e**-1 - 1) with ONNX's float32 constants 1.05070102..., 1.67326319...
    assert selu(np.float64(-1.0)) == pytest.approx(-1.1113307412864784, rel=1e-15)
    assert selu(np.float64(2.0)) == pytest.approx(2 * 1.05070102214813232421875, rel=1e-15)
    thresholded = nx.UNARY_FUNCTIONS["thresholdedrelu"]()
    assert thresholded(np.array([0.5, 1.0, 1.5])).tolist() == [0.0, 0.0, 1.5]


def test_float18_of_nan_is_a_quiet_nan_without_the_dropped_bits():
    """A NaN keeps its sign and upper payload, is made quiet, and has its 14 dropped bits
    cleared; a signalling NaN whose payload is all in the dropped bits stays a NaN (rounding
    its bits like a number's would give inf)."""
    nans = np.uint32([0x7F800001, 0xFFC00001, 0x7FBFFFFF]).view(np.float32)
    got = nx.to_float18(nans).view(np.uint32)
    assert got.tolist() == [0x7FC00000, 0xFFC00000, 0x7FFFC000]


def test_softmax_padding_exactly_256_steps_below_the_max_reads_no_table_entry():
    """All codes at -128 (the max is -128) and the neutral value at -384: the padded lane's
    distance is exactly 256, one past the table, so its exponential is 0 (not entry 256)."""
    q = np.full((1, 2), -128, np.int8)
    out = nx.softmax_int8(q, 1.0, 0, 1 / 256, -128, neutral_value=-384.0, valid_length=1)
    assert out.tolist() == [[127, -128]]  # e = [1, 0]: 1 * 256 - 128 saturates to 127


def test_requantize_zero_point_folds_only_without_int64_overflow():
    """The largest product (2**31 - 1)**2 at shift 62 with zero point 1: rounding term
    2**61 plus the zero point's 2**62 would pass 2**63, so the zero point is added after
    the shift: floor((2**62 - 2**32 + 1 + 2**61) / 2**62) + 1 = 2 (hand-worked)."""
    assert nx.requantize(np.int32([2**31 - 1]), 2**31 - 1, 62, 1).tolist() == [2]
    assert nx.requantize(np.int32([-(2**31)]), 2**31 - 1, 62, -1).tolist() == [-2]


@pytest.mark.parametrize("shift", [-1, 63])
def test_requantize_rejects_shifts_beyond_0_to_62(shift):
    """A bad shift is reported whatever the zero point (folded into the rounding or not)."""
    for zp in (0, 5):
        with pytest.raises(ValueError, match=rf"^shift must lie in \[0, 62\], got {shift}$"):
            nx.requantize(np.int32([1000]), 2**30, shift, zp)


def test_to_float18_rounds_beyond_float32_to_inf_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = nx.to_float18(np.array([1e39, -1e39]))
    assert out.tolist() == [np.inf, -np.inf]


def test_requantize_of_zero_channels_is_empty():
    """Per-channel parameters of a tensor with no channel: an empty int8 result."""
    out = nx.requantize(np.zeros((2, 0), np.int32), np.int64([]), np.int64([]), 0, axis=1)
    assert (out.shape, out.dtype) == ((2, 0), np.int8)


def test_float_layer_norm_reference_computes_in_float64():
    """A float32 input is normalized in float64 (the reference the quantized LayerNorm is
    measured against): the same result as its float64 copy, bit for bit. Rows of 1e4 + a
    small ramp lose the ramp's low bits in a float32 mean and variance."""
    x = np.float32(1e4) + np.arange(12, dtype=np.float32).reshape(2, 6) * np.float32(0.001)
    scale, bias = np.ones(6, np.float32), np.zeros(6, np.float32)
    single = nx.layer_norm_float_reference(x, scale, bias, 1e-5)
    double = nx.layer_norm_float_reference(x.astype(np.float64), scale, bias, 1e-5)
    assert single.dtype == np.float64
    np.testing.assert_array_equal(single, double)
