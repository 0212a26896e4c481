"""Layout-level NumPy kernels shared by the float interpreter and the integer reference.

Kernels take arrays and plain Python parameters (never xDSL ops), NCHW activations and
OIHW weights, with ONNX semantics. Convolutions are im2col over a strided window view
plus one BLAS GEMM per group (a single batched `np.matmul` call); depthwise convolutions
are one broadcast multiply-add over the window view per kernel tap. No kernel loops over
pixels or channels.

Integer GEMMs in NumPy have no BLAS. With `exact_integer=True` the weighted kernels run
the GEMM in floating point instead (design.md, "Fast NumPy"): a float sums integers
exactly while every partial sum stays below 2**24 (float32) or 2**53 (float64) in
magnitude, whatever the summation order. The reduction is cut into float32 chunks short
enough for that bound (from the operands' actual magnitudes: about 500 int8 terms), the
chunk results are added in int64, and float64 is used only where a single term is too
large for float32. The result comes back as int64, or int32 for a convolution whose
operands bound it below 2**31.

Every GEMM runs on one BLAS thread: on the shared 2-core machines the project targets,
OpenBLAS's threads wait on each other (ResNet-50's conv GEMMs: 3x slower on two threads
than on one; a 49x512x64 GEMM 500x, measured under load).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import ThreadpoolController

FLOAT64_EXACT_LIMIT = 2**53
"""Integers of smaller magnitude are exact in float64, whatever the summation order."""
FLOAT32_EXACT_LIMIT = 2**24
"""The same for float32."""
INT32_LIMIT = 2**31
"""Integer sums of smaller magnitude fit int32 accumulators."""


# --------------------------------------------------------------------------- exact GEMM


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (about 40 ms)


def _one_blas_thread(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with BLAS limited to one thread while it runs (about 70 us a call)."""

    @functools.wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        with _blas().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited


def max_magnitude(array: np.ndarray) -> int:
    if array.size == 0:
        return 0
    return max(abs(int(array.min())), abs(int(array.max())))


def check_exact_integer_depth(
    a: np.ndarray, b: np.ndarray, depth: int, bias: np.ndarray | None = None
) -> int:
    """Fail unless a float64 dot product of `depth` terms of `a` and `b` (plus `bias`) is
    exact.

    The bound uses the operands' actual magnitudes, so int8 (|q| <= 128) allows
    depth < 2**53 / 2**14, i.e. any realistic K. Returns the largest |product| of one
    term of each, so callers choosing a float dtype need not scan the operands again.
    """
    for name, array in (("lhs", a), ("rhs", b)):
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"exact integer GEMM needs integer operands, {name} is {array.dtype}")
    largest_product = max_magnitude(a) * max_magnitude(b)
    bound = depth * largest_product + (0 if bias is None else max_magnitude(bias))
    if bound >= FLOAT64_EXACT_LIMIT:
        raise ValueError(
            f"exact integer GEMM of depth {depth} could reach {bound} >= 2**53; "
            "float64 accumulation would round"
        )
    return largest_product


def _to_int64(exact: np.ndarray) -> np.ndarray:
    """float64 values that are exact integers, as int64 (no rounding needed)."""
    return np.asarray(exact, np.int64)


def exact_int_matmul(a_int: np.ndarray, b_int: np.ndarray) -> np.ndarray:
    """`np.matmul` of integer arrays at BLAS speed, exact, returned as int64."""
    chunk = _float32_exact_terms(check_exact_integer_depth(a_int, b_int, a_int.shape[-1]))
    dtype = _exact_gemm_dtype(chunk)
    return _exact_float_matmul(a_int.astype(dtype), b_int.astype(dtype), chunk)


def exact_bounded_matmul(
    a: np.ndarray, b: np.ndarray, largest_product: int, offset: np.ndarray | None = None
) -> np.ndarray:
    """`np.matmul` of integer-valued arrays (float32 or any dtype holding them exactly) whose
    term products are at most `largest_product` in magnitude, plus an integer `offset`
    (broadcast against the product), exact: int32 when that bound keeps every sum below
    2**31, else int64. For callers that know the bound from the narrower data they built
    `a` from: nothing is scanned."""
    bound = a.shape[-1] * largest_product + (0 if offset is None else max_magnitude(offset))
    if bound >= FLOAT64_EXACT_LIMIT:
        raise ValueError(f"exact integer GEMM could reach {bound} >= 2**53; it would round")
    chunk = _float32_exact_terms(largest_product)
    dtype = _exact_gemm_dtype(chunk)
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    return _exact_float_matmul(a, b, chunk, offset, bound)


def _exact_gemm_dtype(chunk: int) -> np.dtype:
    """float32 chunks when one term fits them (`chunk` > 0), else float64."""
    return np.dtype(np.float32 if chunk else np.float64)


def _exact_float_matmul(
    a: np.ndarray,
    b: np.ndarray,
    chunk: int,
    offset: np.ndarray | None = None,
    bound: int | None = None,
) -> np.ndarray:
    """`np.matmul` of integer-valued float arrays, exact, as int64: float64 in one product
    (`chunk` 0), else float32 over reduction chunks of `chunk` terms added in int64.

    An integer `offset` (a bias broadcast against the product) is added in the same pass
    that converts the first product to int64. Each conversion adds in float64 and casts,
    exact while the sum stays below 2**53, which `check_exact_integer_depth` ensures.
    With a `bound` on every |sum + offset| below 2**31 the result is int32 instead.
    """
    depth = a.shape[-1]
    step = chunk or depth
    total = exact_sum_as_int(np.matmul(a[..., :step], b[..., :step, :]), offset, bound)
    for start in range(step, depth, step):
        product = np.matmul(a[..., start : start + step], b[..., start : start + step, :])
        np.add(total, product, out=total, dtype=np.float64, casting="unsafe")
    return total


# One BLAS thread while they run, applied by assignment rather than as decorators: mutmut
# leaves decorated functions unmutated, and these are the exact GEMM (docs/numerics-testing.md).
_exact_float_matmul = _one_blas_thread(_exact_float_matmul)


def exact_sum_as_int(
    exact: np.ndarray, offset: np.ndarray | None, bound: int | None = None
) -> np.ndarray:
    """Integer-valued floats plus an integer `offset`, as int64 in one pass (float64
    arithmetic: exact below 2**53), or as int32 when `bound` proves every |exact + offset|
    below 2**31 (a plain cast, then an int32 add that cannot wrap)."""
    if bound is not None and bound < INT32_LIMIT:
        total = exact.astype(np.int32)
        if offset is None:
            return total
        return np.add(total, offset, out=total, casting="unsafe")
    if offset is None:
        return _to_int64(exact)
    out = np.empty(np.broadcast_shapes(exact.shape, offset.shape), np.int64)
    return np.add(exact, offset, out=out, dtype=np.float64, casting="unsafe")


def _float32_exact_terms(largest_product: int) -> int:
    """How many products of at most `largest_product` float32 sums exactly (0: not one)."""
    return (FLOAT32_EXACT_LIMIT - 1) // max(1, largest_product)


def elementwise_exact_dtype(largest_product: int, terms: int) -> np.dtype:
    """float32 when `terms` products of at most `largest_product` sum exactly, else float64."""
    return np.dtype(np.float32 if _float32_exact_terms(largest_product) >= terms else np.float64)


def _add_bias(
    out: np.ndarray, bias: np.ndarray | None, exact_integer: bool, channel_axis: int
) -> np.ndarray:
    if exact_integer:
        out = _to_int64(out)
    if bias is None:
        return out
    if exact_integer and not np.issubdtype(bias.dtype, np.integer):
        raise TypeError(f"exact integer kernels need an integer bias, got {bias.dtype}")
    shape = [1] * out.ndim
    shape[channel_axis] = bias.shape[0]
    return out + bias.astype(out.dtype).reshape(shape)


def _gemm(a: np.ndarray, b: np.ndarray, exact_integer: bool, accumulate_dtype) -> np.ndarray:
    if exact_integer:
        return exact_int_matmul(a, b)
    return np.matmul(np.asarray(a, accumulate_dtype), np.asarray(b, accumulate_dtype))


_gemm = _one_blas_thread(_gemm)


def matmul(
    a: np.ndarray, b: np.ndarray, *, accumulate_dtype=np.float32, exact_integer: bool = False
) -> np.ndarray:
    """Batched matrix product with NumPy/ONNX MatMul broadcasting."""
    return _gemm(a, b, exact_integer, accumulate_dtype)


def dense(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    accumulate_dtype=np.float32,
    exact_integer: bool = False,
) -> np.ndarray:
    """Fully connected layer `x @ w.T + bias`, weight of shape [N, K]."""
    out = matmul(x, w.T, accumulate_dtype=accumulate_dtype, exact_integer=exact_integer)
    return _add_bias(out, bias, exact_integer, channel_axis=out.ndim - 1)


# --------------------------------------------------------------------------- windows


def _pad_hw(x: np.ndarray, begin: Sequence[int], end: Sequence[int], value) -> np.ndarray:
    if not any(begin) and not any(end):
        return x
    widths = ((0, 0), (0, 0), (begin[0], end[0]), (begin[1], end[1]))
    return np.pad(x, widths, mode="constant", constant_values=value)


def _windows(
    padded: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """A strided (copy-free) view [N, C, out_h, out_w, kh, kw] of the sliding windows."""
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    view = sliding_window_view(padded, spans, axis=(2, 3))
    view = view[:, :, :: strides[0], :: strides[1], :: dilations[0], :: dilations[1]]
    return view[:, :, : out_hw[0], : out_hw[1]]


def window_geometry(
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Output size and the extra end padding that ceil_mode's last window reaches into."""
    from aipuc.dialects.axq import conv_output_size  # not at import: the simulator's runtime

    out_hw, extra = [], []
    for axis in range(2):
        size = conv_output_size(
            in_hw[axis],
            kernel[axis],
            strides[axis],
            pads[axis],
            pads[axis + 2],
            dilations[axis],
            ceil_mode,
        )
        needed = (size - 1) * strides[axis] + dilations[axis] * (kernel[axis] - 1) + 1
        out_hw.append(size)
        extra.append(max(0, needed - (in_hw[axis] + pads[axis] + pads[axis + 2])))
    return (out_hw[0], out_hw[1]), (extra[0], extra[1])


# --------------------------------------------------------------------------- convolutions


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    group: int = 1,
    accumulate_dtype=np.float32,
    *,
    bias: np.ndarray | None = None,
    exact_integer: bool = False,
    pad_value: float = 0,
) -> np.ndarray:
    """ONNX Conv on NCHW input and OIHW weight; pads are [top, left, bottom, right].

    `pad_value` fills the border (uncentred int8 codes would pad with their zero point;
    the integer reference centres its inputs instead, so it pads with 0).
    Returns `accumulate_dtype`; with `exact_integer`, int32 when the operands' magnitudes
    bound every output below 2**31, else int64.
    """
    n, _, height, width = x.shape
    out_channels, group_channels, kh, kw = w.shape
    out_hw, _ = window_geometry((height, width), (kh, kw), strides, pads, dilations)
    padded = _pad_hw(x, pads[:2], pads[2:], pad_value)
    geometry = (group, strides, dilations, out_hw)
    if exact_integer:
        out = _exact_conv(padded, w, bias, *geometry)
        return out.reshape(n, out_channels, *out_hw)
    dtype = np.dtype(accumulate_dtype)
    if group_channels == 1 and group > 1:
        out = _depthwise_taps(padded.astype(dtype, copy=False), w.astype(dtype), *geometry)
        out = np.ascontiguousarray(out.reshape(n, out_channels, *out_hw))
    else:
        # im2col as [group, pixels, depth] against the transposed weight: this operand order
        # fixes the float sums' rounding (onnxruntime's, to a few ulps), which the exact
        # path below need not keep.
        windows = _windows(padded, (kh, kw), strides, dilations, out_hw)
        cols = (
            windows.reshape(n, group, group_channels, *out_hw, kh, kw)
            .transpose(1, 0, 3, 4, 2, 5, 6)
            .reshape(group, n * out_hw[0] * out_hw[1], group_channels * kh * kw)
        )
        weight = w.reshape(group, out_channels // group, -1).transpose(0, 2, 1)
        out = _gemm(cols, weight, False, accumulate_dtype)
        out = out.reshape(group, n, *out_hw, out_channels // group).transpose(1, 0, 4, 2, 3)
    return _add_bias(out.reshape(n, out_channels, *out_hw), bias, False, channel_axis=1)


def _exact_conv(
    padded: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    group: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """The integer conv plus bias, exact, [n, out_channels, pixels]: in float32 (float64
    where one product is too large for it), the bias added while converting to int32 (when
    the operands' magnitudes bound every sum below 2**31) or int64."""
    if bias is not None and not np.issubdtype(bias.dtype, np.integer):
        raise TypeError(f"exact integer kernels need an integer bias, got {bias.dtype}")
    depth = w.shape[1] * w.shape[2] * w.shape[3]
    largest_product = check_exact_integer_depth(padded, w, depth, bias)
    bound = depth * largest_product + (0 if bias is None else max_magnitude(bias))
    geometry = (group, strides, dilations, out_hw)
    if w.shape[1] == 1 and group > 1:
        dtype = elementwise_exact_dtype(largest_product, depth)
        sums = _depthwise_taps(np.asarray(padded, dtype), w.astype(dtype), *geometry)
        sums = sums.reshape(len(padded), len(w), *out_hw)
        column = None if bias is None else bias.reshape(-1, 1, 1)
        return exact_sum_as_int(sums, column, bound).reshape(len(padded), len(w), -1)
    chunk = _float32_exact_terms(largest_product)
    dtype = _exact_gemm_dtype(chunk)
    weight, cols = _im2col(np.asarray(padded, dtype), w.astype(dtype), *geometry)
    column = None if bias is None else bias.reshape(*weight.shape[:-1], 1)
    return _exact_float_matmul(weight, cols, chunk, column, bound)


def _depthwise_taps(
    padded: np.ndarray,
    w: np.ndarray,
    group: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """Depthwise conv (channel multiplier m) in the operands' dtype, [n, C, m, h, w]: one
    broadcast multiply-add per kernel tap over the window view; 2-5x faster than einsum on
    the 6-D view, and no GEMM to feed. With unit strides the result may be a strided view."""
    if tuple(strides) == (1, 1) and min(out_hw) > 0:
        return _depthwise_taps_flat(padded, w, dilations, out_hw)
    n, channels = padded.shape[:2]
    out_channels, _, kh, kw = w.shape
    windows = _windows(padded, (kh, kw), strides, dilations, out_hw)
    taps = w.reshape(channels, out_channels // channels, kh, kw)
    out = np.empty((n, channels, taps.shape[1], *out_hw), padded.dtype)
    product = np.empty_like(out)  # one scratch buffer, not a temporary per tap
    for i in range(kh):
        for j in range(kw):
            tap = (windows[:, :, None, :, :, i, j], taps[:, :, i, j, None, None])
            if i == j == 0:
                np.multiply(*tap, out=out)
            else:
                out += np.multiply(*tap, out=product)
    return out


def _depthwise_taps_flat(
    padded: np.ndarray, w: np.ndarray, dilations: Sequence[int], out_hw: tuple[int, int]
) -> np.ndarray:
    """`_depthwise_taps` at unit strides on each channel's flattened padded plane: output
    (h, w) sits at h * padded_width + w, and each tap reads one contiguous run from offset
    i * padded_width + j (dilated), so every NumPy loop spans a whole plane instead of one
    output row (2x faster on 56x56 planes). The columns past the output width are computed
    and dropped: the result is a view. Same products, same order: the same sums."""
    n, channels, height, width = padded.shape
    out_channels, _, kh, kw = w.shape
    out_h, out_w = out_hw
    length = (out_h - 1) * width + out_w  # the last output sits here; nothing reads beyond
    planes = padded.reshape(n, channels, 1, height * width)
    taps = w.reshape(channels, out_channels // channels, kh, kw)
    out = np.empty((n, channels, taps.shape[1], out_h * width), padded.dtype)
    grid = out[..., :length]
    product = np.empty_like(grid)
    for i in range(kh):
        for j in range(kw):
            start = i * dilations[0] * width + j * dilations[1]
            tap = (planes[..., start : start + length], taps[:, :, i, j, None])
            if i == j == 0:
                np.multiply(*tap, out=grid)
            else:
                grid += np.multiply(*tap, out=product)
    return out.reshape(n, channels, taps.shape[1], out_h, width)[..., :out_w]


def _im2col(
    padded: np.ndarray,
    w: np.ndarray,
    group: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The conv as a GEMM: weight [group, out/group, depth] (as stored) and columns
    [n, group, depth, pixels] (both without their unit batch dimensions when n and group
    are 1), depth in (channel, kh, kw) order; weight @ columns is NCHW with no transpose,
    and each copied run is an output row of the input."""
    n = padded.shape[0]
    out_channels, group_channels, kh, kw = w.shape
    depth = group_channels * kh * kw
    windows = _windows(padded, (kh, kw), strides, dilations, out_hw)
    cols = (
        windows.reshape(n, group, group_channels, *out_hw, kh, kw)
        .transpose(0, 1, 2, 5, 6, 3, 4)
        .reshape(n, group, depth, out_hw[0] * out_hw[1])
    )
    weight = w.reshape(group, out_channels // group, depth)
    if n == group == 1:  # np.matmul broadcasting batch dimensions is about 2x slower
        return weight[0], cols[0, 0]
    return weight, cols


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    output_padding: Sequence[int] = (0, 0),
    group: int = 1,
    accumulate_dtype=np.float32,
    *,
    bias: np.ndarray | None = None,
    exact_integer: bool = False,
) -> np.ndarray:
    """ONNX ConvTranspose with weight [C_in, C_out / group, kh, kw].

    One GEMM per group gives every input pixel's contribution to every kernel tap; the
    taps are then scattered into the output with one strided add each (kh * kw adds).
    """
    n, channels, height, width = x.shape
    _, group_out, kh, kw = w.shape
    group_channels = channels // group
    cols = (
        x.reshape(n, group, group_channels, height * width)
        .transpose(1, 0, 3, 2)
        .reshape(group, n * height * width, group_channels)
    )
    weight = w.reshape(group, group_channels, group_out * kh * kw)
    taps = _gemm(cols, weight, exact_integer, accumulate_dtype)
    taps = taps.reshape(group, n, height, width, group_out, kh, kw)
    taps = taps.transpose(1, 0, 4, 5, 6, 2, 3).reshape(n, group * group_out, kh, kw, height, width)
    full = [
        strides[a] * (size - 1) + dilations[a] * (k - 1) + 1 + output_padding[a]
        for a, (size, k) in enumerate(((height, kh), (width, kw)))
    ]
    out = np.zeros((n, group * group_out, *full), dtype=taps.dtype)
    rows_span = strides[0] * (height - 1) + 1
    cols_span = strides[1] * (width - 1) + 1
    for i in range(kh):
        for j in range(kw):
            top, left = i * dilations[0], j * dilations[1]
            out[:, :, top : top + rows_span : strides[0], left : left + cols_span : strides[1]] += (
                taps[:, :, i, j]
            )
    out = out[:, :, pads[0] : full[0] - pads[2], pads[1] : full[1] - pads[3]]
    return _add_bias(out, bias, exact_integer, channel_axis=1)


# --------------------------------------------------------------------------- pooling


def _lowest(dtype: np.dtype):
    """The max-pool border value: the lowest finite value, so a window that sees only
    padding yields it, as in onnxruntime."""
    return np.finfo(dtype).min if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def max_pool2d(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
) -> np.ndarray:
    """ONNX MaxPool (storage order 0, no indices); keeps the input dtype."""
    out_hw, extra = window_geometry(x.shape[2:], kernel, strides, pads, dilations, ceil_mode)
    end = (pads[2] + extra[0], pads[3] + extra[1])
    padded = _pad_hw(x, pads[:2], end, _lowest(x.dtype))
    windows = _windows(padded, kernel, strides, dilations, out_hw)
    # One np.maximum per kernel tap over strided planes: a max over the window view's two
    # last (tiny, strided) axes is several times slower. The max is the same either way.
    out = windows[..., 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                np.maximum(out, windows[..., i, j], out=out)
    return out


def avg_pool_divisor(
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool,
    dtype=np.float64,
) -> np.ndarray:
    """The ONNX AveragePool divisor of every output position, shape [1, 1, out_h, out_w].

    It counts the window's taps inside the input, plus those on the explicit pads with
    `count_include_pad`; taps that only ceil_mode's last window reaches never count (ONNX
    and PyTorch agree on this). The float and integer average pools both divide by it.
    """
    height, width = in_hw
    out_hw, extra = window_geometry(in_hw, kernel, strides, pads, dilations, ceil_mode)
    counted = np.zeros(
        (1, 1, height + pads[0] + pads[2] + extra[0], width + pads[1] + pads[3] + extra[1]),
        dtype=dtype,
    )
    if count_include_pad:
        counted[:, :, : height + pads[0] + pads[2], : width + pads[1] + pads[3]] = 1
    else:
        counted[:, :, pads[0] : pads[0] + height, pads[1] : pads[1] + width] = 1
    return _windows(counted, kernel, strides, dilations, out_hw).sum(axis=(-2, -1))


def avg_pool2d(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    accumulate_dtype=np.float64,
) -> np.ndarray:
    """ONNX AveragePool, returned in `accumulate_dtype`; divisor from `avg_pool_divisor`."""
    out_hw, extra = window_geometry(x.shape[2:], kernel, strides, pads, dilations, ceil_mode)
    end = (pads[2] + extra[0], pads[3] + extra[1])
    padded = _pad_hw(x.astype(accumulate_dtype, copy=False), pads[:2], end, 0)
    sums = _windows(padded, kernel, strides, dilations, out_hw).sum(axis=(-2, -1))
    return sums / avg_pool_divisor(
        x.shape[2:],
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
        count_include_pad,
        accumulate_dtype,
    )


def global_pool(x: np.ndarray, kind: str, accumulate_dtype=np.float64) -> np.ndarray:
    """Average ("avg") or max ("max") over every axis after N and C, kept as size 1."""
    axes = tuple(range(2, x.ndim))
    if kind == "max":
        return x.max(axis=axes, keepdims=True)
    if kind == "avg":
        return x.mean(axis=axes, keepdims=True, dtype=accumulate_dtype)
    raise ValueError(f"unknown global pool kind {kind!r}; expected 'avg' or 'max'")


# --------------------------------------------------------------------------- resize


def _source_coordinates(out_len: int, in_len: int, scale: float, transform: str) -> np.ndarray:
    """Input coordinate of each output index along one axis, as onnx.reference maps it.

    Like onnx.reference, align_corners and pytorch_half_pixel use the unrounded
    resized length `scale * in_len`.
    """
    resized = np.arange(out_len, dtype=np.float64)
    resized_len = scale * in_len
    if transform == "half_pixel":
        return (resized + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        if resized_len == 1:
            return np.full(out_len, -0.5)
        return (resized + 0.5) / scale - 0.5
    if transform == "align_corners":
        if resized_len == 1:
            return np.zeros(out_len)
        return resized * (in_len - 1) / (resized_len - 1)
    if transform == "asymmetric":
        return resized / scale
    raise ValueError(f"unknown coordinate transform {transform!r}")


def _nearest_indices(coords: np.ndarray, rounding: str) -> np.ndarray:
    if rounding == "round_prefer_floor":
        rounded = np.ceil(coords - 0.5)
    elif rounding == "round_prefer_ceil":
        rounded = np.floor(coords + 0.5)
    elif rounding == "floor":
        rounded = np.floor(coords)
    elif rounding == "ceil":
        rounded = np.ceil(coords)
    else:
        raise ValueError(f"unknown nearest rounding {rounding!r}")
    return rounded.astype(np.intp)


def _axis_shape(axis: int, ndim: int, length: int) -> tuple[int, ...]:
    return (1,) * axis + (length,) + (1,) * (ndim - axis - 1)


def resize(
    x: np.ndarray,
    mode: str,
    scales: Sequence[float],
    coordinate_transform: str = "half_pixel",
    nearest_rounding: str = "round_prefer_floor",
) -> np.ndarray:
    """ONNX Resize ("nearest" or "linear") by per-axis scales; output length floor(n * s).

    Resize is separable: each axis with a scale other than 1 is one gather (nearest) or
    two gathers and a blend (linear), with indices clamped to the edge. Linear results
    come back in float64.
    """
    out = x
    for axis, scale in enumerate(scales):
        in_len = x.shape[axis]
        if scale == 1.0:
            continue  # every coordinate transform maps an unscaled axis onto itself
        out_len = int(np.floor(in_len * scale))
        coords = _source_coordinates(out_len, in_len, scale, coordinate_transform)
        if mode == "nearest":
            indices = np.clip(_nearest_indices(coords, nearest_rounding), 0, in_len - 1)
            out = np.take(out, indices, axis=axis)
        elif mode == "linear":
            low = np.floor(coords).astype(np.intp)
            fraction = (coords - low).reshape(_axis_shape(axis, x.ndim, out_len))
            low_index = np.clip(low, 0, in_len - 1)
            high_index = np.clip(low + 1, 0, in_len - 1)
            out = (
                np.take(out, low_index, axis=axis) * (1.0 - fraction)
                + np.take(out, high_index, axis=axis) * fraction
            )
        else:
            raise ValueError(f"unknown resize mode {mode!r}; expected 'nearest' or 'linear'")
    return out


# --------------------------------------------------------------------------- pad


def pad(
    x: np.ndarray, pads: Sequence[int], mode: str = "constant", value: float = 0.0
) -> np.ndarray:
    """ONNX Pad, pads [begin_0, ..., begin_n, end_0, ..., end_n]; negative pads crop.

    Modes "constant", "reflect" and "edge" are NumPy's modes of the same names.
    """
    rank = x.ndim
    begins, ends = list(pads[:rank]), list(pads[rank:])
    crop = tuple(
        slice(max(-b, 0), size - max(-e, 0))
        for b, e, size in zip(begins, ends, x.shape, strict=True)
    )
    cropped = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends, strict=True)]
    if mode == "constant":
        return np.pad(cropped, widths, mode="constant", constant_values=value)
    if mode in ("reflect", "edge"):
        return np.pad(cropped, widths, mode=mode)
    raise ValueError(f"unknown pad mode {mode!r}; expected 'constant', 'reflect' or 'edge'")
