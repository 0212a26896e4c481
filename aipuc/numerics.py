"""Integer and float18 numerics: the one implementation shared by every interpreter.

The integer reference interpreter and the instruction-stream simulator both call these
functions, so their results are equal bit for bit by construction. Everything here is
vectorised NumPy and deterministic. The rules below are the project's numerics contract;
changing one changes the meaning of every compiled model.

Quantization (affine, ``real = (q - zero_point) * scale``)
    ``quantize``: ``q = clamp(rint(x / scale) + zero_point, qmin, qmax)``, where ``x / scale``
    is computed in float64 and ``rint`` rounds half to even (as ``np.rint`` and
    ``torch.quantize_per_tensor``). ``dequantize``: ``float32(float64(q - zp) * scale)``.
    ``choose_qparams_*`` follow PyTorch's MinMaxObserver in float32 arithmetic: with
    ``lo = min(min_val, 0)`` and ``hi = max(max_val, 0)``, ``scale = max((hi - lo) / (qmax -
    qmin), eps)`` (float32 eps, so an all-zero tensor still gets a positive scale) and
    ``zero_point = clamp(qmin - rint(lo / scale), qmin, qmax)``, rint half to even. Weights are
    symmetric per channel in [-127, 127] with zero point 0. Results are int8 for the default
    [-128, 127]; wider ranges (an int32 bias) get the narrowest signed type that holds them.

Requantization (fixed point)
    A positive real multiplier is stored as ``multiplier * 2**-shift`` with
    ``multiplier`` in [2**30, 2**31) (Q31 normalised, rounded half to even) and ``shift`` in
    [1, 62], which covers real multipliers in [2**-32, 2**30); others raise ValueError.
    ``requantize`` computes, exactly in int64, for int32-range accumulators::

        out = clamp(((acc * multiplier + 2**(shift - 1)) >> shift) + out_zp, qmin, qmax)

    with ``>>`` an arithmetic (flooring) shift. That is ONE rounding of the exact product,
    *round half up* (ties go towards +inf: 2.5 -> 3, -2.5 -> -2). ``rounding_right_shift`` is
    that same rule for any other shift. |acc * multiplier| < 2**62, so nothing overflows.

float18 (1 sign, exponent and mantissa widths from ``AIPU``: 8 and 9 bits)
    float18 shares float32's exponent, so a float18 value is held as a float32 whose low
    ``23 - mantissa_bits`` bits are zero. ``to_float18`` rounds the float32 bit pattern to
    nearest, ties to even, by integer arithmetic. Consequences: overflow rounds to +-inf
    exactly like IEEE (values at or beyond half an ulp above the largest float18); subnormals
    are kept (gradual underflow) on a grid of 2**-135; +-inf pass through; NaN stays a (quiet)
    NaN. float64 inputs are first rounded to float32 by NumPy.
    Arithmetic (``f18_add``, ``f18_mul``, ``f18_reciprocal``) rounds the operands to float18,
    computes in IEEE float32 and rounds the result to float18. Because float32 carries
    24 >= 2*10 + 2 significant bits this equals the correctly rounded float18 result whenever
    that result is normal.
    ``f18_sum`` reduces in a fixed order, rounding after every addition: the axis is padded with
    +0.0 to a multiple of ``AIPU.dpu_lanes`` (64) and viewed as groups of 64 lanes; groups are
    accumulated lane-wise in order (``acc = g0; acc = acc + g1; ...``), then the 64 lanes are
    folded by a halving tree (lane i += lane i + w for w = 32, 16, ..., 1). Lane 0 is the sum.

LUTs
    A unary function on int8 is a 256-entry int8 table indexed by ``q + 128``: entry for code q is
    ``quantize(fn(float64(q - in_zp) * in_scale), out_scale, out_zp)``. Float definitions of the
    functions live in ``UNARY_FUNCTIONS``: every entry is a factory taking the function's
    parameters as keywords and returning ``fn(x: float64 array) -> float64 array``, e.g.
    ``UNARY_FUNCTIONS["sigmoid"]()`` or ``UNARY_FUNCTIONS["leakyrelu"](alpha=0.1)``.
    ``unary_function(name, params)`` builds one from an ``axq.lut``'s parameters, which may
    add an affine map around the function (``AFFINE_PARAMETERS``).

Softmax and LayerNorm (DPU, float18): see ``softmax_int8`` and ``layer_norm_int8``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from aipuc.hardware import AIPU

_F32 = np.finfo(np.float32)
if AIPU.float18_exponent_bits != _F32.nexp:
    raise NotImplementedError("to_float18 relies on float18 having float32's exponent width")
if AIPU.dpu_lanes & (AIPU.dpu_lanes - 1):
    raise NotImplementedError("f18_sum's halving tree needs a power-of-two lane count")

_F18_DROPPED_BITS = _F32.nmant - AIPU.float18_mantissa_bits
_F18_DROPPED_MASK = np.uint64((1 << _F18_DROPPED_BITS) - 1)
_F18_HALF_MINUS_ONE = np.uint64((1 << (_F18_DROPPED_BITS - 1)) - 1)
_F32_QUIET_NAN_BIT = np.uint64(1 << (_F32.nmant - 1))

_INT8_MIN = -128
_INT8_MAX = 127
_MIN_SHIFT = 1
_MAX_SHIFT = 62  # |acc * multiplier| < 2**62, so adding 2**(shift - 1) stays below 2**63

UnaryFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- helpers


def along_axis(values, ndim: int, axis: int | None) -> np.ndarray:
    """Shape per-channel ``values`` so they broadcast along ``axis`` of an ``ndim`` array.

    ``axis=None`` (per tensor) returns them as they are.
    """
    values = np.asarray(values)
    if axis is None:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def _int_dtype(qmin: int, qmax: int) -> np.dtype:
    """The narrowest signed integer type holding [qmin, qmax] (int8 for activations)."""
    if qmin > qmax:
        raise ValueError(f"empty quantization range [{qmin}, {qmax}]")
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"quantization range [{qmin}, {qmax}] does not fit in int32")


# --------------------------------------------------------------------------- quantization


def choose_qparams_asymmetric(min_val, max_val, qmin: int = _INT8_MIN, qmax: int = _INT8_MAX):
    """Scale and zero point covering [min_val, max_val] and 0, as torch's MinMaxObserver.

    Scalars give ``(float, int)``; arrays (per-channel activations) give float32 and int32
    arrays. Computed in float32 so observers match PyTorch's.
    """
    lo = np.minimum(np.asarray(min_val, np.float32), np.float32(0))
    hi = np.maximum(np.asarray(max_val, np.float32), np.float32(0))
    scale = (hi - lo) / np.float32(qmax - qmin)
    scale = np.maximum(scale, _F32.eps).astype(np.float32)
    zero_point = np.clip(qmin - np.rint(lo / scale).astype(np.int64), qmin, qmax).astype(np.int32)
    if scale.ndim == 0:
        return float(scale), int(zero_point)
    return scale, zero_point


def choose_qparams_symmetric_per_channel(w, axis: int, qmax: int = _INT8_MAX) -> np.ndarray:
    """Per-channel float32 scales for symmetric weights in [-qmax, qmax] (zero point 0)."""
    w = np.asarray(w, np.float32)
    axis = axis % w.ndim
    other_axes = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.max(np.abs(w), axis=other_axes) if other_axes else np.abs(w)
    return np.maximum(amax / np.float32(qmax), _F32.eps).astype(np.float32)


def quantize(
    x,
    scale,
    zero_point,
    axis: int | None = None,
    qmin: int = _INT8_MIN,
    qmax: int = _INT8_MAX,
) -> np.ndarray:
    """Round half to even, then clamp; ``axis`` makes scale/zero point per channel."""
    x = np.asarray(x, np.float64)
    scale = along_axis(np.asarray(scale, np.float64), x.ndim, axis)
    zero_point = along_axis(np.asarray(zero_point, np.int64), x.ndim, axis)
    q = np.rint(x / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(_int_dtype(qmin, qmax))


def dequantize(q, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """``float32((q - zero_point) * scale)``, the product taken in float64."""
    q = np.asarray(q, np.int64)
    scale = along_axis(np.asarray(scale, np.float64), q.ndim, axis)
    zero_point = along_axis(np.asarray(zero_point, np.int64), q.ndim, axis)
    return ((q - zero_point) * scale).astype(np.float32)


# --------------------------------------------------------------------------- requantization


def quantize_multiplier(real_multiplier) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point form ``real ~= multiplier * 2**-shift``, multiplier in [2**30, 2**31).

    The relative error is at most 2**-31. Real multipliers outside [2**-32, 2**30) (after
    rounding) raise ValueError: the accumulator product would not fit the shift range.
    """
    real = np.asarray(real_multiplier, np.float64)
    if not np.all(np.isfinite(real) & (real > 0)):
        raise ValueError(f"real multipliers must be finite and positive, got {real}")
    fraction, exponent = np.frexp(real)  # real = fraction * 2**exponent, fraction in [0.5, 1)
    multiplier = np.rint(np.ldexp(fraction, 31)).astype(np.int64)
    shift = 31 - exponent.astype(np.int64)
    carried = multiplier == 1 << 31  # fraction rounded up to 1.0
    multiplier = np.where(carried, 1 << 30, multiplier)
    shift = np.where(carried, shift - 1, shift)
    if np.any((shift < _MIN_SHIFT) | (shift > _MAX_SHIFT)):
        raise ValueError(
            f"real multiplier out of the supported range [2**-32, 2**30): {real_multiplier}"
        )
    return multiplier.astype(np.int32), shift.astype(np.int32)


def rounding_right_shift(x, shift, out: np.ndarray | None = None) -> np.ndarray:
    """``floor((x + 2**(shift - 1)) / 2**shift)``: divide by 2**shift, ties towards +inf.

    ``shift`` in [0, 62] (0 returns x); ``x + 2**(shift - 1)`` must fit in int64. ``out``
    (an int64 array of the result's shape, ``x`` itself allowed) receives the result.
    """
    x = np.asarray(x, np.int64)
    shift = np.asarray(shift, np.int64)
    if np.any((shift < 0) | (shift > _MAX_SHIFT)):
        raise ValueError(f"shift must lie in [0, {_MAX_SHIFT}], got {shift}")
    return np.right_shift(np.add(x, _rounding_half(shift), out=out), shift, out=out)


def requantize(
    acc,
    multiplier,
    shift,
    out_zp,
    qmin: int = _INT8_MIN,
    qmax: int = _INT8_MAX,
    axis: int | None = None,
) -> np.ndarray:
    """int32 accumulator -> int8 through the fixed-point multiplier (round half up, clamp).

    With ``axis``, multiplier/shift (and out_zp if an array) are per channel along it.
    """
    acc = np.asarray(acc)
    if not np.issubdtype(acc.dtype, np.integer):
        raise TypeError(f"requantize expects an integer accumulator, got {acc.dtype}")
    wide = not np.can_cast(acc.dtype, np.int32)  # narrower accumulators need no scan
    if acc.size and wide and (acc.min() < -(1 << 31) or acc.max() >= 1 << 31):
        raise ValueError("requantize accumulators must lie in the int32 range")
    multiplier, shift, out_zp, offset = _requantize_parameters(
        np.asarray(multiplier, np.int64),
        np.asarray(shift, np.int64),
        np.asarray(out_zp, np.int64),
        acc.ndim,
        axis,
    )
    # one int64 buffer for every step: product, rounding shift, zero point, clamp (the
    # accumulator widened first: NumPy's mixed int32 * int64 loop is twice as slow)
    shape = np.broadcast_shapes(acc.shape, multiplier.shape, shift.shape, out_zp.shape)
    scaled = np.empty(shape, np.int64)
    np.copyto(scaled, acc, casting="unsafe")  # int32-range values
    np.multiply(scaled, multiplier, out=scaled)
    if offset is not None:
        scaled += offset
        scaled >>= shift
    else:
        rounding_right_shift(scaled, shift, out=scaled)
        scaled += out_zp
    np.clip(scaled, qmin, qmax, out=scaled)
    return scaled.astype(_int_dtype(qmin, qmax))


_PARAMETERS: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = {}
_PARAMETERS_LIMIT = 1 << 12


def _requantize_parameters(
    multiplier: np.ndarray,
    shift: np.ndarray,
    out_zp: np.ndarray,
    ndim: int,
    axis: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """multiplier, shift and zero point shaped against the accumulator, checked, and the
    term added before the shift when the zero point folds into it (else None): the same
    few parameters recur on every call of a layer, so they are prepared once (by value)."""
    key = tuple((a.shape, a.tobytes()) for a in (multiplier, shift, out_zp)) + (
        ndim,
        axis,
    )
    prepared = _PARAMETERS.get(key)
    if prepared is None:
        multiplier = along_axis(multiplier, ndim, axis)
        shift = along_axis(shift, ndim, axis)
        out_zp = along_axis(out_zp, ndim, axis)
        if np.any((multiplier < 0) | (multiplier >= 1 << 31)):
            raise ValueError("requantize multipliers must lie in [0, 2**31)")
        offset = None
        if _zero_point_folds(shift, out_zp):
            # floor((p + half + zp * 2**shift) / 2**shift) = floor((p + half) / 2**shift) + zp
            offset = _rounding_half(shift) + (out_zp << shift)
        copies = [None if a is None else np.array(a) for a in (multiplier, shift, out_zp, offset)]
        for array in copies:
            if array is not None:
                array.flags.writeable = False  # shared by every later call
        prepared = (copies[0], copies[1], copies[2], copies[3])
        if len(_PARAMETERS) >= _PARAMETERS_LIMIT:
            _PARAMETERS.clear()
        _PARAMETERS[key] = prepared
    return prepared


def _zero_point_folds(shift: np.ndarray, out_zp: np.ndarray) -> bool:
    """Whether `out_zp * 2**shift` can join the rounding term before the shift without
    overflow: |acc * multiplier| < 2**62, so the added terms must stay within 2**62."""
    if not shift.size or not out_zp.size or np.any((shift < 0) | (shift > _MAX_SHIFT)):
        return False  # rounding_right_shift reports the bad shift
    largest_shift = int(shift.max())
    largest_zp = max(abs(int(out_zp.min())), abs(int(out_zp.max())))
    return (1 << largest_shift >> 1) + (largest_zp << largest_shift) <= 1 << 62


def _rounding_half(shift: np.ndarray) -> np.ndarray:
    """2**(shift - 1), 0 where shift is 0 (shift in [0, 62])."""
    return np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)


# --------------------------------------------------------------------------- float18


def to_float18(x) -> np.ndarray:
    """Round to the nearest float18 (ties to even) on the float32 bit pattern; float32 out."""
    with np.errstate(over="ignore"):  # beyond float32's range is inf, as float18 rounds it
        values = np.asarray(x, dtype=np.float32)
    bits = values.view(np.uint32).astype(np.uint64)  # uint64: the rounding carry cannot wrap
    lsb = (bits >> _F18_DROPPED_BITS) & 1
    # A carry out of the mantissa bumps the exponent, and from the largest finite value to inf.
    rounded = (bits + _F18_HALF_MINUS_ONE + lsb) & ~_F18_DROPPED_MASK
    quiet_nan = (bits & ~_F18_DROPPED_MASK) | _F32_QUIET_NAN_BIT
    return np.where(np.isnan(values), quiet_nan, rounded).astype(np.uint32).view(np.float32)


def _f18_round_op(op: Callable[..., np.ndarray], *operands: np.ndarray) -> np.ndarray:
    """Apply a float32 op to float18 operands and round; inf/NaN follow IEEE silently."""
    with np.errstate(all="ignore"):
        return to_float18(op(*operands))


def f18_add(a, b) -> np.ndarray:
    """float18 addition, rounded to nearest even."""
    return _f18_round_op(np.add, to_float18(a), to_float18(b))


def f18_mul(a, b) -> np.ndarray:
    """float18 multiplication, rounded to nearest even."""
    return _f18_round_op(np.multiply, to_float18(a), to_float18(b))


def f18_reciprocal(x) -> np.ndarray:
    """float18 ``1 / x`` rounded to nearest even (1/+-0 = +-inf)."""
    return _f18_round_op(np.divide, np.float32(1), to_float18(x))


def f18_to_int8(x, zero_point) -> np.ndarray:
    """``clamp(rint(x) + zero_point, -128, 127)`` of float18 values (the DPU's FTOI), rint half
    to even. In float64 (exact for any float18 value plus an int32 zero point) and clamped
    before the integer conversion, so a value beyond int64 (or inf) saturates instead of
    wrapping."""
    codes = np.rint(np.asarray(x, np.float64)) + zero_point
    return np.clip(codes, _INT8_MIN, _INT8_MAX).astype(np.int8)


def f18_rsqrt(x) -> np.ndarray:
    """float18 ``1 / sqrt(x)``: float64 of the float18 operand, rounded to float32, then to
    float18 (negative operands give NaN, +0 gives +inf).

    Scaling by 2**-2k is exact, so this equals a 1024-entry float18 table indexed by the
    operand's exponent parity and its 9 mantissa bits, with the exponent halved: the DPU's
    rsqrt unit, and what a simulator computes with this same function.
    """
    with np.errstate(all="ignore"):
        return to_float18(1 / np.sqrt(to_float18(x).astype(np.float64)))


def f18_sum(x, axis: int = -1) -> np.ndarray:
    """float18 sum over ``axis`` in the DPU order: lane-wise over 64-lane groups, then a tree."""
    lanes = AIPU.dpu_lanes
    values = np.moveaxis(to_float18(x), axis, -1)
    groups = max(1, -(-values.shape[-1] // lanes))
    padding = [(0, 0)] * (values.ndim - 1) + [(0, groups * lanes - values.shape[-1])]
    values = np.pad(values, padding).reshape(*values.shape[:-1], groups, lanes)
    acc = values[..., 0, :]
    for group in range(1, groups):
        acc = _f18_round_op(np.add, acc, values[..., group, :])
    width = lanes
    while width > 1:
        width //= 2
        acc = _f18_round_op(np.add, acc[..., :width], acc[..., width:])
    return acc[..., 0]


# --------------------------------------------------------------------------- unary functions

_ERF_SERIES_BELOW = 2.0  # Maclaurin series below, Laplace continued fraction from here on
_ERF_SERIES_TERMS = 32
_ERF_FRACTION_DEPTH = 40


def erf(x) -> np.ndarray:
    """Vectorised erf, max abs error ~2e-15 (NumPy has none and scipy is not a dependency).

    |x| < 2: the Maclaurin series ``2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))``;
    |x| >= 2: ``1 - erfc``, erfc from Laplace's continued fraction, evaluated bottom-up.
    """
    x = np.asarray(x, np.float64)
    magnitude = np.abs(x)
    small = np.minimum(magnitude, _ERF_SERIES_BELOW)
    term = small.copy()
    series = small.copy()
    for n in range(1, _ERF_SERIES_TERMS):
        term = term * (-small * small) / n
        series = series + term / (2 * n + 1)
    large = np.maximum(magnitude, _ERF_SERIES_BELOW)
    fraction = large.copy()
    for k in range(_ERF_FRACTION_DEPTH, 0, -1):
        fraction = large + (k / 2) / fraction
    with np.errstate(under="ignore"):
        erfc = np.exp(-large * large) / (math.sqrt(math.pi) * fraction)
    magnitude_erf = np.where(
        magnitude < _ERF_SERIES_BELOW, 2 / math.sqrt(math.pi) * series, 1 - erfc
    )
    return np.sign(x) * magnitude_erf


def _sigmoid(x: np.ndarray) -> np.ndarray:
    decay = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1 / (1 + decay), decay / (1 + decay))


def _hardsigmoid(alpha: float = 0.2, beta: float = 0.5) -> UnaryFn:
    return lambda x: np.clip(alpha * x + beta, 0.0, 1.0)


def _leakyrelu(alpha: float = 0.01) -> UnaryFn:
    return lambda x: np.where(x >= 0, x, alpha * x)


def _elu(alpha: float = 1.0) -> UnaryFn:
    return lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _clip(min_value: float, max_value: float) -> UnaryFn:
    return lambda x: np.clip(x, min_value, max_value)


def _selu(
    alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875
) -> UnaryFn:
    return lambda x: gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _celu(alpha: float = 1.0) -> UnaryFn:
    return lambda x: np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(np.minimum(x, 0) / alpha))


def _thresholdedrelu(alpha: float = 1.0) -> UnaryFn:
    return lambda x: np.where(x > alpha, x, 0.0)


def _pow(exponent: float) -> UnaryFn:
    """x ** exponent; a non-integer exponent clamps negative inputs to 0 (no NaN in a table)."""
    if float(exponent).is_integer():
        return lambda x: np.power(x, exponent)
    return lambda x: np.power(np.maximum(x, 0.0), exponent)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def _fixed(fn: UnaryFn) -> Callable[[], UnaryFn]:
    """A factory without parameters, so every registry entry is called the same way."""
    return lambda: fn


# Float definitions of the LUT-mapped unary functions: ``UNARY_FUNCTIONS[name](**params)``.
UNARY_FUNCTIONS: dict[str, Callable[..., UnaryFn]] = {
    "relu": _fixed(lambda x: np.maximum(x, 0.0)),
    "sigmoid": _fixed(_sigmoid),
    "tanh": _fixed(np.tanh),
    # ONNX HardSwish: x * HardSigmoid(alpha=1/6, beta=0.5)(x)
    "hardswish": _fixed(lambda x: x * np.clip(x / 6 + 0.5, 0.0, 1.0)),
    "hardsigmoid": _hardsigmoid,
    "leakyrelu": _leakyrelu,
    "silu": _fixed(lambda x: x * _sigmoid(x)),
    "gelu": _fixed(lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
    "elu": _elu,
    "gelu_tanh": _fixed(
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    ),
    "softplus": _fixed(_softplus),
    "softsign": _fixed(lambda x: x / (1 + np.abs(x))),
    "mish": _fixed(lambda x: x * np.tanh(_softplus(x))),
    "selu": _selu,
    "celu": _celu,
    "thresholdedrelu": _thresholdedrelu,
    "log": _fixed(lambda x: np.log(np.maximum(x, 0.0))),  # negative inputs clamp to 0: -inf
    "sin": _fixed(np.sin),
    "cos": _fixed(np.cos),
    "pow": _pow,
    "exp": _fixed(np.exp),
    "erf": _fixed(erf),
    "sqrt": _fixed(lambda x: np.sqrt(np.maximum(x, 0.0))),  # negative inputs clamp to 0
    "reciprocal": _fixed(lambda x: 1 / x),  # 1/0 = inf saturates to qmax
    "identity": _fixed(lambda x: x),
    "abs": _fixed(np.abs),
    "neg": _fixed(np.negative),
    "clip": _clip,
}


AFFINE_PARAMETERS: dict[str, float] = {
    "pre_scale": 1.0,
    "pre_shift": 0.0,
    "post_scale": 1.0,
    "post_shift": 0.0,
}
"""Parameters every LUT function takes besides its own, with their identity values: the
table computes ``post_scale * fn(pre_scale * x + pre_shift) + post_shift``, so per-tensor
multiply-adds around a table fold into it (``simplify-mac-before-after-lut``)."""


def unary_function(name: str, params: Mapping[str, float]) -> UnaryFn:
    """``UNARY_FUNCTIONS[name]`` with its own `params`, inside the affine ones if given."""
    own = {key: value for key, value in params.items() if key not in AFFINE_PARAMETERS}
    fn = UNARY_FUNCTIONS[name](**own)
    pre_scale, pre_shift, post_scale, post_shift = (
        params.get(key, identity) for key, identity in AFFINE_PARAMETERS.items()
    )
    if (pre_scale, pre_shift, post_scale, post_shift) == tuple(AFFINE_PARAMETERS.values()):
        return fn
    return lambda x: post_scale * fn(pre_scale * x + pre_shift) + post_shift


# --------------------------------------------------------------------------- LUTs


def build_lut(
    fn: UnaryFn, in_scale: float, in_zp: int, out_scale: float, out_zp: int
) -> np.ndarray:
    """The int8 table of ``fn`` for every input code, indexed by ``q + 128``."""
    codes = np.arange(_INT8_MIN, _INT8_MIN + AIPU.lut_entries, dtype=np.int64)
    with np.errstate(all="ignore"):  # overflow to inf saturates; NaN is rejected below
        values = np.asarray(fn((codes - in_zp) * np.float64(in_scale)), np.float64)
    if np.any(np.isnan(values)):
        raise ValueError("LUT function returned NaN for some int8 input")
    return quantize(values, out_scale, out_zp)


def apply_lut(q, table) -> np.ndarray:
    """Look every int8 code up in a 256-entry table."""
    table = np.asarray(table)
    if table.shape != (AIPU.lut_entries,):
        raise ValueError(f"LUT must have shape ({AIPU.lut_entries},), got {table.shape}")
    return table[np.asarray(q, np.int64) - _INT8_MIN]


# --------------------------------------------------------------------------- softmax


def softmax_exp_table(in_scale: float) -> np.ndarray:
    """The DPU exp table: entry k = float18(exp(-k * in_scale)), k = code distance to the max."""
    k = np.arange(AIPU.lut_entries, dtype=np.float64)
    return to_float18(np.exp(-k * np.float64(in_scale)))


def softmax_int8(
    q,
    in_scale: float,
    in_zp: int,
    out_scale: float,
    out_zp: int,
    axis: int = -1,
    neutral_value: float = -100000.0,
    valid_length: int | None = None,
) -> np.ndarray:
    """Softmax of int8 codes along ``axis`` as the DPU computes it in float18.

    The DPU works in input steps (real value / in_scale), where every difference of valid
    codes is an exact small integer:

    1. x = float18(q - in_zp) (exact); lanes at index >= valid_length along ``axis`` (PWORD
       padding) hold float18(neutral_value / in_scale) instead, whatever their codes.
    2. m = max(x) over the axis; d = f18_add(x, -m) <= 0 (exact for valid lanes).
    3. e = table[-d] with ``table = softmax_exp_table(in_scale)`` when -d < 256, else exactly 0.
       A valid lane's index is max_code - q in 0..255; padded lanes land beyond the last bin,
       which is why neutral_value must lie at least 256 input steps below the smallest input.
    4. s = f18_sum(e, axis) (s >= 1: the max lane contributes table[0] = 1).
    5. t = f18_mul(f18_reciprocal(s), float18(1 / out_scale)), once per row.
    6. y = f18_mul(e, t); out = clamp(rint(y) + out_zp, -128, 127), rint half to even.

    Padded lanes contribute exactly 0 to the sum, so padding never changes valid outputs
    (padded outputs are out_zp).
    """
    codes = np.moveaxis(np.asarray(q, np.int64), axis, -1)
    length = codes.shape[-1]
    valid_length = length if valid_length is None else valid_length
    if not 1 <= valid_length <= length:
        raise ValueError(f"valid_length must lie in [1, {length}], got {valid_length}")
    x = to_float18(codes - in_zp)
    if valid_length < length:
        neutral_steps = to_float18(np.float64(neutral_value) / in_scale)
        if neutral_steps > _INT8_MIN - in_zp - AIPU.lut_entries:
            raise ValueError(
                f"softmax_neutral_value {neutral_value} is not negative enough: it must lie at "
                f"least {AIPU.lut_entries} input steps below the smallest input value "
                f"{(_INT8_MIN - in_zp) * in_scale} so padded lanes fall beyond the exp table"
            )
        x[..., valid_length:] = neutral_steps
    m = np.max(x, axis=-1, keepdims=True)
    distance = -f18_add(x, -m)
    in_table = distance < AIPU.lut_entries
    index = np.where(in_table, distance, 0).astype(np.int64)
    e = np.where(in_table, softmax_exp_table(in_scale)[index], np.float32(0))
    s = f18_sum(e, axis=-1)[..., None]
    t = f18_mul(f18_reciprocal(s), to_float18(1 / np.float64(out_scale)))
    y = f18_mul(e, t)
    out = f18_to_int8(y, out_zp)
    return np.moveaxis(out, -1, axis)


def softmax_float_reference(x, axis: int = -1) -> np.ndarray:
    """Plain float64 softmax, the accuracy yardstick for ``softmax_int8``."""
    x = np.asarray(x, np.float64)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


# --------------------------------------------------------------------------- layer norm


def layer_norm_int8(
    q,
    in_scale: float,
    in_zp: int,
    scale,
    bias,
    epsilon: float,
    out_scale: float,
    out_zp: int,
    axis: int = -1,
) -> np.ndarray:
    """LayerNorm of int8 codes over the axes from ``axis`` on, as the DPU computes it in float18.

    ``scale`` and ``bias`` (gamma, beta) have the normalised shape ``q.shape[axis:]``. The DPU
    works in input steps (real value / in_scale), where the normalised value is the same as
    in real units once epsilon is expressed in steps squared. With n the number of normalised
    elements per row (rows are the leading axes), every value a float18:

    1. x = float18(q - in_zp) (exact: |q - in_zp| <= 255).
    2. mean = f18_mul(f18_sum(x), float18(1 / n)).
    3. d = f18_add(x, -mean).
    4. var = f18_mul(f18_sum(f18_mul(d, d)), float18(1 / n)).
    5. r = f18_rsqrt(f18_add(var, float18(epsilon / in_scale**2))), once per row.
    6. y = f18_mul(d, r).
    7. z = f18_add(f18_mul(y, g), b) with the per-element constants
       g = float18(scale / out_scale) and b = float18(bias / out_scale) (quotients in float64).
    8. out = clamp(rint(z) + out_zp, -128, 127), rint half to even.

    f18_sum reduces a row in the DPU order (64-lane groups, then a halving tree).
    """
    codes = np.asarray(q, np.int64)
    axis = axis % codes.ndim
    rows = codes.reshape(*codes.shape[:axis], -1)
    count = rows.shape[-1]
    inverse_count = to_float18(1 / np.float64(count))
    x = to_float18(rows - in_zp)
    mean = f18_mul(f18_sum(x, axis=-1)[..., None], inverse_count)
    d = f18_add(x, -mean)
    var = f18_mul(f18_sum(f18_mul(d, d), axis=-1)[..., None], inverse_count)
    r = f18_rsqrt(f18_add(var, to_float18(np.float64(epsilon) / np.float64(in_scale) ** 2)))
    y = f18_mul(d, r)
    g = to_float18(np.asarray(scale, np.float64).reshape(-1) / out_scale)
    b = to_float18(np.asarray(bias, np.float64).reshape(-1) / out_scale)
    z = f18_add(f18_mul(y, g), b)
    out = f18_to_int8(z, out_zp)
    return out.reshape(codes.shape)


def layer_norm_float_reference(x, scale, bias, epsilon: float, axis: int = -1) -> np.ndarray:
    """Plain float64 LayerNorm over the axes from ``axis`` on (ONNX LayerNormalization)."""
    x = np.asarray(x, np.float64)
    axes = tuple(range(axis % x.ndim, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = np.square(centred).mean(axis=axes, keepdims=True)
    return centred / np.sqrt(variance + epsilon) * scale + bias
