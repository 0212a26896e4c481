"""Every error of the numerics contract is a ValueError or TypeError that names the problem,
and the documented bounds are inclusive where the contract says so."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import f32
from xdsl.ir import Block

from aipuc import numerics as nx
from aipuc.dialects import axq
from aipuc.dialects.tensors import tensor_type
from aipuc.errors import QuantizationError
from aipuc.quantization.observers import (
    HistogramObserver,
    MinMaxObserver,
    PerChannelMinMaxObserver,
)
from aipuc.runtime.integer_reference import INTEGER_KERNELS

ERRORS = {
    "empty range": (
        lambda: nx.quantize([1.0], 1.0, 0, qmin=5, qmax=4),
        r"empty quantization range \[5, 4\]",
    ),
    "beyond int32": (
        lambda: nx.quantize([1.0], 1.0, 0, qmin=-(2**40), qmax=2**40),
        "does not fit in int32",
    ),
    "zero multiplier": (lambda: nx.quantize_multiplier(0.0), "finite and positive, got 0.0"),
    "huge multiplier": (
        lambda: nx.quantize_multiplier(2.0**30),
        r"out of the supported range \[2\*\*-32, 2\*\*30\)",
    ),
    "shift": (lambda: nx.rounding_right_shift(1, 63), r"shift must lie in \[0, 62\], got 63"),
    "float accumulator": (
        lambda: nx.requantize(np.array([1.5]), 2**30, 31, 0),
        "integer accumulator, got float64",
    ),
    "int32 accumulator": (
        lambda: nx.requantize(np.array([2**31]), 2**30, 31, 0),
        "^requantize accumulators must lie in the int32 range$",
    ),
    "multiplier range": (
        lambda: nx.requantize(np.array([1]), 2**31, 31, 0),
        r"^requantize multipliers must lie in \[0, 2\*\*31\)$",
    ),
    "neutral value": (
        lambda: nx.softmax_int8(
            np.zeros((1, 8), np.int8), 0.5, 5, 1 / 256, -128, neutral_value=-194.0, valid_length=4
        ),
        r"at least 256 input steps below the smallest input value -66\.5 so padded lanes fall",
    ),
    "NaN table": (
        lambda: nx.build_lut(np.log, 0.1, 0, 0.1, 0),
        "^LUT function returned NaN for some int8 input$",
    ),
    "table shape": (
        lambda: nx.apply_lut(np.int8([1]), np.zeros(255, np.int8)),
        r"shape \(256,\), got \(255,\)",
    ),
    "valid length": (
        lambda: nx.softmax_int8(np.zeros((1, 64), np.int8), 0.1, 0, 1 / 256, -128, valid_length=0),
        r"valid_length must lie in \[1, 64\], got 0",
    ),
    "per-channel observer": (
        lambda: PerChannelMinMaxObserver().range(),
        "^per-channel observer saw no data$",
    ),
    "histogram observer": (
        lambda: HistogramObserver().min_max_range(),
        "^observer saw no finite values; calibrate on real data$",
    ),
    "histogram observer range": (
        lambda: HistogramObserver().range(),
        "^observer saw no finite values; calibrate on real data$",
    ),
    "min-max observer": (
        lambda: MinMaxObserver().range(),
        "^observer saw no finite values; calibrate on real data$",
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_errors_name_the_problem(case):
    call, message = case
    with pytest.raises((ValueError, TypeError, QuantizationError), match=message):
        call()


def test_softmax_neutral_value_exactly_256_steps_below_is_accepted():
    """ "at least 256 input steps below the smallest input": equality is allowed."""
    q = np.zeros((1, 8), np.int8)
    # in_scale 1, zp 5: the smallest input is -133 steps, so -389 is exactly 256 below it.
    out = nx.softmax_int8(q, 1.0, 5, 1 / 256, -128, neutral_value=-389.0, valid_length=4)
    assert out[0, 4:].tolist() == [-128] * 4
    with pytest.raises(ValueError, match=r"smallest input value -133\.0 so padded lanes"):
        nx.softmax_int8(q, 1.0, 5, 1 / 256, -128, neutral_value=-388.0, valid_length=4)
    # Without padding the neutral value plays no part, whatever the scale.
    assert nx.softmax_int8(q, 1000.0, 0, 1 / 256, -128).tolist() == [[-96] * 8]


def test_integer_kernels_reject_float_tensors_and_missing_tables():
    block = Block(arg_types=[tensor_type((1, 4), f32)])
    op = axq.ClipOp(block.args[0], tensor_type((1, 4), f32), 0.0, 6.0)
    with pytest.raises(TypeError, match="need quantized tensors, got f32"):
        INTEGER_KERNELS[axq.ClipOp](op, [np.zeros((1, 4), np.float32)])
    lut = axq.LutOp(block.args[0], tensor_type((1, 4), f32), axq.UnaryFunction.SIGMOID)
    with pytest.raises(ValueError, match=r"^a quantized axq.lut needs its 256-entry table \(run"):
        INTEGER_KERNELS[axq.LutOp](lut, [np.zeros((1, 4), np.int8)])


def test_per_channel_observer_ignores_non_finite_values_and_keeps_constant_channels():
    x = np.array([[[1.0, np.inf], [np.nan, np.nan], [2.5, 2.5], [-np.inf, -3.0]]], np.float32)
    observer = PerChannelMinMaxObserver(axis=1)
    observer.observe(x.reshape(1, 4, 2))
    low, high = observer.range()
    # channel 1 saw no finite value: [0, 0]; channel 2 was constant: [2.5, 2.5]
    assert low.tolist() == [1.0, 0.0, 2.5, -3.0] and high.tolist() == [1.0, 0.0, 2.5, -3.0]
