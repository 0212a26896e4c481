"""Hypothesis settings and strategies for driving the oracle and the product side by side.

Profiles: ``AIPUC_HYPOTHESIS_PROFILE=ci`` (the default: few examples, derandomized so CI sees
the same cases every run), ``long`` (many random examples; see docs/numerics-testing.md) or
``mutation`` (a quarter of ``ci``'s examples, no shrinking, the first pass of
tools/mutation.py, which reruns its survivors under ``ci``). Scales cover the whole range the
product accepts, from far below float32 eps to far above 1, and are powers of two often enough
that rescaling lands exactly on rounding ties.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from xdsl.dialects.builtin import IntegerType, TensorType
from xdsl.ir import Block, SSAValue

from aipuc.dialects.axq import QuantizedType
from aipuc.dialects.tensors import tensor_type
from oracle.quant import QType, choose_qparams_asymmetric

PROFILES = ("ci", "long", "mutation")
PROFILE = os.environ.get("AIPUC_HYPOTHESIS_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"AIPUC_HYPOTHESIS_PROFILE must be one of {PROFILES}, got {PROFILE!r}")
INT8, INT32 = IntegerType(8), IntegerType(32)


def oracle_settings(ci: int, long: int) -> settings:
    """`ci` examples by default, `long` or a quarter of `ci` with AIPUC_HYPOTHESIS_PROFILE."""
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    if PROFILE == "long":
        return settings(max_examples=long, deadline=None, suppress_health_check=quiet)
    if PROFILE == "mutation":  # pass or fail is all it needs: no shrinking, no example database
        return settings(
            max_examples=max(10, ci // 4),
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=quiet,
        )
    return settings(max_examples=ci, deadline=None, derandomize=True, suppress_health_check=quiet)


# --------------------------------------------------------------------------- values

F32_EPS = 2.0**-23
EXTREME_SCALES = [F32_EPS, 2.0**-40, 1e-30, 2.0**-16, 1.0, 2.0**12, 1e6]


mantissas = st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).uniform(1, 2))
"""Uniform in [1, 2): Hypothesis' own floats favour short mantissas (1.0, 1.5, ...), whose
exact products land on few distinct fractions and hide rounding differences."""


@st.composite
def scales(draw, low_exponent: int = -30, high_exponent: int = 8) -> float:
    """A positive float64 scale: a power of two (ties), a float32 value or a float64 one."""
    exponent = draw(st.integers(low_exponent, high_exponent))
    kind = draw(st.sampled_from(["power", "float32", "float64", "extreme"]))
    if kind == "power":
        return 2.0**exponent
    if kind == "extreme":
        return draw(st.sampled_from(EXTREME_SCALES))
    value = draw(mantissas) * 2.0**exponent
    return float(np.float32(value)) if kind == "float32" else value


zero_points = st.integers(-128, 127)


@st.composite
def qtypes(draw, channels: int | None = None, axis: int = 1, scale=None) -> QType:
    """Per tensor, or (when `channels` is given, half the time) per channel along `axis`."""
    scale = scales() if scale is None else scale
    if channels is not None and draw(st.booleans()):
        return QType(
            tuple(draw(st.lists(scale, min_size=channels, max_size=channels))),
            tuple(draw(st.lists(zero_points, min_size=channels, max_size=channels))),
            axis,
        )
    return QType.per_tensor(draw(scale), draw(zero_points))


def codes(shape, low: int = -128, high: int = 127, dtype=np.int8) -> st.SearchStrategy:
    """Integer arrays of `shape` with elements in [low, high]."""
    return hnp.arrays(dtype, tuple(shape), elements=st.integers(low, high))


# --------------------------------------------------------------------------- IR


def quantized_type(type_: QType, storage: IntegerType = INT8) -> QuantizedType:
    axis = -1 if type_.axis is None else type_.axis
    return QuantizedType(storage, list(type_.scales), list(type_.zero_points), axis)


def tensor(shape, type_: QType, storage: IntegerType = INT8) -> TensorType:
    return tensor_type(tuple(shape), quantized_type(type_, storage))


def arguments(*types: TensorType) -> list[SSAValue]:
    """Block arguments of the given tensor types (the operands of one op under test)."""
    return list(Block(arg_types=list(types)).args)


def max_centred(type_: QType) -> int:
    """The largest |q - zp| any int8 code can have in `type_`."""
    return max(max(127 - zp, zp + 128) for zp in type_.zero_points)


def bias_bound(products: int, x_type: QType) -> int:
    """docs/quantization.md's bound: |q_b| <= 2**31 - 1 - K max|x_c| 127."""
    return max(0, 2**31 - 1 - products * max_centred(x_type) * 127)


def calibrated_type(draw, values: np.ndarray, per_channel_axis: int | None = 1) -> QType:
    """An output type from the real-valued result's range, as calibration would choose it
    (per tensor, or half the time per channel along `per_channel_axis`), the range widened
    or narrowed by a drawn factor so results saturate at the edges or use part of the range."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)  # calibration ignores inf (exp's table saturates there)
    if not finite.any():
        return draw(qtypes())
    spread = draw(st.sampled_from([1.0, 1.0, 0.9, 0.5, 1.5, 2.0**-6]))
    per_channel = per_channel_axis is not None and values.ndim > per_channel_axis
    if per_channel and draw(st.booleans()):
        rows = values.shape[per_channel_axis]
        moved = np.moveaxis(values, per_channel_axis, 0).reshape(rows, -1)
        if all(np.isfinite(row).any() for row in moved):
            pairs = [choose_qparams_asymmetric(*spread * _finite_range(row)) for row in moved]
            return QType(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), per_channel_axis)
    return QType.per_tensor(*choose_qparams_asymmetric(*spread * _finite_range(values)))


def _finite_range(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    return np.array([finite.min(), finite.max()])
