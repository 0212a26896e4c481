"""Hand-worked examples of every rounding rule of the numerics contract, as literal numbers.

Each expectation was worked out by hand from the rule (the comment shows the arithmetic) and
each set is chosen so that the neighbouring rules - floor, ceil, round half up, half down,
half away from zero, half to even, truncation - give a different answer; the comment says
which rule gives what. Product and oracle must both give the literal.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import ieee, ops, quant
from oracle.cases import arguments, tensor
from oracle.quant import QType

from aipuc import numerics as nx
from aipuc.dialects import axq
from aipuc.runtime.integer_reference import INTEGER_KERNELS, fixed_point_multiplier


def test_quantize_rounds_half_to_even():
    # x / scale = 2.5, 3.5, -2.5, -3.5 (exact); zero point 0.
    # half to even: 2, 4, -2, -4      floor: 2, 3, -3, -4      ceil: 3, 4, -2, -3
    # half up (to +inf): 3, 4, -2, -3   half down (to -inf): 2, 3, -3, -4
    # half away from zero: 3, 4, -3, -4   truncation / half to zero: 2, 3, -2, -3
    x = [1.25, 1.75, -1.25, -1.75]
    assert nx.quantize(x, 0.5, 0).tolist() == [2, 4, -2, -4]
    assert [quant.quantize(v, 0.5, 0) for v in x] == [2, 4, -2, -4]
    # The zero point is added after rounding, then the result clamps: 2.5 -> 2, + 125 = 127;
    # 3.5 -> 4, + 125 = 129 -> 127; -2.5 -> -2, - 127 = -129 -> -128.
    assert nx.quantize([2.5, 3.5], 1.0, 125).tolist() == [127, 127]
    assert nx.quantize([-2.5], 1.0, -127).tolist() == [-128]
    # x / scale in float64, even for float32 inputs: float32(0.35) / float32(0.1) is
    # 3.49999992 in float64 -> 3, but 3.5 in float32 arithmetic -> 4 (half to even).
    x, scale = np.float32([0.35]), np.float32(0.1)
    assert nx.quantize(x, scale, 0).tolist() == [3]
    assert quant.quantize(float(x[0]), float(scale), 0) == 3


def test_requantize_rounds_half_up():
    # acc * 2**30 / 2**31 = acc / 2: 2.5, -2.5, 1.5, -1.5 are ties, 0.5 too.
    # half up (to +inf): 3, -2, 2, -1, 1       half to even: 2, -2, 2, -2, 0
    # half away from zero: 3, -3, 2, -2, 1     half down (to -inf): 2, -3, 1, -2, 0
    # floor: 2, -3, 1, -2, 0    truncation: 2, -2, 1, -1, 0    ceil: 3, -2, 2, -1, 1 (as half
    # up on ties, so the next line separates them)
    acc = [5, -5, 3, -3, 1]
    expected = [3, -2, 2, -1, 1]
    assert nx.requantize(np.array(acc), 2**30, 31, 0).tolist() == expected
    assert [quant.requantize(a, 2**30, 31, 0) for a in acc] == expected
    # Not ties: 1 * 2**30 / 2**32 = 0.25 -> 0 (ceil: 1); -3 / 4 = -0.75 -> -1 (truncation: 0).
    assert nx.requantize(np.array([1, -3]), 2**30, 32, 0).tolist() == [0, -1]
    assert [quant.requantize(a, 2**30, 32, 0) for a in (1, -3)] == [0, -1]
    # The zero point is added after the one rounding: 2.5 -> 3, + 7 = 10.
    assert nx.requantize(np.array([5]), 2**30, 31, 7).tolist() == [10]


def test_rounding_right_shift_rounds_half_up():
    # 5 / 2 = 2.5 -> 3, -5 / 2 = -2.5 -> -2, 3 / 2 = 1.5 -> 2, -3 / 2 = -1.5 -> -1,
    # 1 / 4 = 0.25 -> 0, -6 / 4 = -1.5 -> -1; shift 0 returns x.
    # half to even: 2, -2, 2, -2, 0, -2   half away: 3, -3, 2, -2, 0, -2
    # floor (a plain >>): 2, -3, 1, -2, 0, -2   ceil: 3, -2, 2, -1, 1, -1   truncation: 2, -2,
    # 1, -1, 0, -1   half down: 2, -3, 1, -2, 0, -2
    x, shift = [5, -5, 3, -3, 1, -6, 7], [1, 1, 1, 1, 2, 2, 0]
    expected = [3, -2, 2, -1, 0, -1, 7]
    assert nx.rounding_right_shift(x, shift).tolist() == expected
    assert [quant.rounding_right_shift(v, s) for v, s in zip(x, shift, strict=True)] == expected


def test_quantize_multiplier_rounds_the_q31_fraction_half_to_even():
    # real * 2**31 = 2**30 + 1/2: a tie between 2**30 (even) and 2**30 + 1 -> 2**30.
    #   half up / half away / ceil: 2**30 + 1.
    # real * 2**31 = 2**30 + 3/2: a tie between 2**30 + 1 and 2**30 + 2 (even) -> 2**30 + 2.
    #   floor / truncation / half down / half to zero: 2**30 + 1.
    # real * 2**31 = 2**30 + 3/4: not a tie -> 2**30 + 1.   floor / truncation: 2**30.
    # real * 2**31 = 2**31 - 1/2: a tie between 2**31 - 1 and 2**31 (even) -> 2**31, which
    #   renormalises to (2**30, shift 30), i.e. exactly 1.0.   floor: (2**31 - 1, 31).
    cases = {
        (2**30 + 0.5) / 2**31: (2**30, 31),
        (2**30 + 1.5) / 2**31: (2**30 + 2, 31),
        (2**30 + 0.75) / 2**31: (2**30 + 1, 31),
        (2**31 - 0.5) / 2**31: (2**30, 30),
        (2**30 + 1.5) / 2**40: (2**30 + 2, 40),  # the same tie nine octaves down
    }
    for real, expected in cases.items():
        multiplier, shift = nx.quantize_multiplier(real)
        assert (int(multiplier), int(shift)) == expected
        assert quant.quantize_multiplier(real) == expected


def test_fixed_point_multiplier_ends():
    # Below 2**-32 the multiplier is (0, 1): any int32 times it is below half a step, so 0.
    assert [int(v) for v in fixed_point_multiplier(2.0**-33)] == [0, 1]
    assert quant.fixed_point_multiplier(2.0**-33) == (0, 1)
    # 2**-32 itself is (2**30, 62); just below 2**30 rounds up to 2**30 and is rejected.
    assert [int(v) for v in fixed_point_multiplier(2.0**-32)] == [2**30, 62]
    with pytest.raises(ValueError):
        nx.quantize_multiplier(2.0**30 - 2.0**-24)
    with pytest.raises(ValueError):
        quant.quantize_multiplier(2.0**30 - 2.0**-24)


def test_requant_caps_the_multiplier_at_2_to_the_8():
    # requant(acc, r) = requantize(acc, *M(min(r, 2**8)), zp): with r = 1e6, acc = 1 gives
    # 256 -> 127 and acc = -1 gives -256 -> -128, as the uncapped product would.
    assert [quant.requant(a, 1e6, 0) for a in (1, -1, 0)] == [127, -128, 0]


def test_zero_point_is_qmin_minus_rint_of_min_over_scale():
    # [-37.3, 217.7]: scale = 255 / 255 = 1.0, min / scale = -37.3 -> rint -37, zp = -128 + 37
    #   = -91.   floor(-37.3) = -38 would give -90; ceil and truncation give -91 too, so:
    # [-36.5, 218.5]: -36.5 is a tie -> even -36, zp = -92.   half away / floor: -37 -> -91.
    # [-37.5, 217.5]: -37.5 is a tie -> even -38, zp = -90.   half up / ceil / truncation:
    #   -37 -> -91.
    cases = {(-37.3, 217.7): -91, (-36.5, 218.5): -92, (-37.5, 217.5): -90}
    for bounds, zero_point in cases.items():
        assert nx.choose_qparams_asymmetric(*bounds) == (1.0, zero_point)
        assert quant.choose_qparams_asymmetric(*bounds) == (1.0, zero_point)
    # A range that excludes 0 is widened to include it: [0.5, 2.55] -> [0, 2.55], zp = -128.
    assert nx.choose_qparams_asymmetric(0.5, 2.55)[1] == -128


ULP = 2.0**-9  # float18's mantissa step at 1


@pytest.mark.parametrize(
    ("value", "expected", "why"),
    [
        # Ties to even: 1 + ulp/2 lies between 1 (even) and 1 + ulp (odd) -> 1.
        #   half up / half away: 1 + ulp.
        (1 + ULP / 2, 1.0, "tie, down to even"),
        # 1 + 3 ulp/2 lies between 1 + ulp (odd) and 1 + 2 ulp (even) -> 1 + 2 ulp.
        #   truncation / half down: 1 + ulp.
        (1 + 3 * ULP / 2, 1 + 2 * ULP, "tie, up to even"),
        (-(1 + 3 * ULP / 2), -(1 + 2 * ULP), "negative tie, away from zero to even"),
        # Just above the tie rounds up: truncation gives 1.
        (1 + ULP / 2 + 2.0**-23, 1 + ULP, "above the tie"),
        # Overflow: half an ulp above the largest float18 (2 - ulp) 2**127 is a tie between
        # it (odd) and 2**128 (even, = inf) -> inf; just below the tie stays finite.
        ((2 - ULP / 2) * 2.0**127, np.inf, "overflow tie to inf"),
        ((2 - ULP / 2 - 2.0**-23) * 2.0**127, (2 - ULP) * 2.0**127, "just below overflow"),
        (-(2 - 2.0**-23) * 2.0**127, -np.inf, "negative float32 max overflows"),
        # Subnormals keep a grid of 2**-135: 2**-136 is a tie between 0 (even) and 2**-135
        # -> 0; 3 * 2**-136 is a tie between 2**-135 (odd) and 2**-134 -> 2**-134.
        (2.0**-136, 0.0, "subnormal tie to zero"),
        (3 * 2.0**-136, 2.0**-134, "subnormal tie up to even"),
    ],
)
def test_float18_rounding(value, expected, why):
    assert float(nx.to_float18(value)) == expected, why
    assert ieee.to_float18(value) == expected, why


def test_add_rescales_both_inputs_with_a_20_bit_left_shift():
    # a_c = 0 (s_a = 1), b_c = 1 (s_b = 1/3), s_out = 1/256: the exact sum is 1/3 = 85.33
    # output steps -> 85. The rule: b' = round(1 * 2**20 * (1/3) / 2) = 174763 (174762.67),
    # requant(174763, 2 / (2**20 / 256) = 2**-11) = round(85.333) = 85. With a left shift of
    # 8 instead, b' = round(256 / 6) = 43 and requant(43, 2) = 86: one step off.
    a, b = np.array([0], np.int8), np.array([1], np.int8)
    types = QType.per_tensor(1.0, 0), QType.per_tensor(1 / 3, 0), QType.per_tensor(1 / 256, 0)
    assert ops.add_sub(a, types[0], b, types[1], types[2], 1).tolist() == [85]
    args = arguments(tensor((1,), types[0]), tensor((1,), types[1]))
    op = axq.AddOp(*args, tensor((1,), types[2]))
    assert INTEGER_KERNELS[axq.AddOp](op, [a, b])[0].tolist() == [85]


def test_add_common_scale_is_twice_the_larger_input_scale():
    # s_a = s_b = 1, s_out = 2, b_c = 0: a_c = 1 and 3 are 0.5 and 1.5 output steps, ties that
    # round half up to 1 and 2. The common scale 2 max(s_a, s_b) = 2 makes every multiplier a
    # power of two (a' = 2**20 / 2 = 2**19; requant 2 / (2**20 * 2) = 2**-20): exact. A common
    # scale of 3 max(s_a, s_b) rounds a' = 2**20 / 3 down and lands just below each tie: 0, 1.
    a, b = np.array([1, 3], np.int8), np.array([0, 0], np.int8)
    types = QType.per_tensor(1.0, 0), QType.per_tensor(1.0, 0), QType.per_tensor(2.0, 0)
    assert ops.add_sub(a, types[0], b, types[1], types[2], 1).tolist() == [1, 2]
    args = arguments(tensor((2,), types[0]), tensor((2,), types[1]))
    op = axq.AddOp(*args, tensor((2,), types[2]))
    assert INTEGER_KERNELS[axq.AddOp](op, [a, b])[0].tolist() == [1, 2]


def test_dpu_results_saturate_beyond_int64():
    """Step 8 of LayerNorm (and 6 of softmax) is clamp(rint(z) + out_zp): with an output
    scale of 2**-70 the normalised +-1.22 become ~ +-2**70, beyond int64, and still saturate
    to 127 / -128 (a conversion to int64 before the clamp wraps +2**70 to -128)."""
    codes = np.int8([[-100, 0, 100]])
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    got = nx.layer_norm_int8(codes, 1.0, 0, ones, zeros, 1e-5, 2.0**-70, 0)
    assert got.tolist() == [[-128, 0, 127]]
    assert nx.softmax_int8(np.int8([0, 0]), 1.0, 0, 2.0**-70, 0).tolist() == [127, 127]
    assert nx.f18_to_int8(np.float32([np.inf, -np.inf, 2.5, -2.5, 3.5]), 1).tolist() == [
        127,
        -128,
        3,
        -1,
        5,
    ]
