"""docs/quantization.md's "Integer semantics" table, op by op, by explicit loops.

Codes come in and go out as NumPy integer arrays; every rescaling is `quant.requant` on one
element with the real multiplier written as in the table (float64 operations in the order
the formula reads). Accumulations are exact: Python ints, or int64 sums of a window of
small products (|x_c * q_w| < 2**16, so no int64 sum here can overflow). Layouts are ONNX's:
NCHW activations, OIHW conv weights, IOHW conv-transpose weights, [N, K] dense weights,
pads [top, left, bottom, right].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from oracle.quant import (
    INT8_MIN,
    QType,
    clamp,
    quantize,
    requant,
    requant_int32,
)

ADD_LEFT_SHIFT = 20  # add/sub: a_c << 20 (TFLite)
RESIZE_WEIGHT_BITS = 10  # linear resize: weights in units of 2**-10


def centred(codes: np.ndarray, type_: QType) -> np.ndarray:
    """x_c = q - zp, element by element (int64)."""
    out = np.empty(codes.shape, np.int64)
    for index in np.ndindex(codes.shape):
        out[index] = int(codes[index]) - type_.zero_point(index)
    return out


def requant_array(acc: np.ndarray, real_of: Callable[[tuple], float], out: QType) -> np.ndarray:
    """requant(acc, real_of(index)) in `out`'s zero point, element by element."""
    result = np.empty(acc.shape, np.int8)
    for index in np.ndindex(acc.shape):
        result[index] = requant(int(acc[index]), real_of(index), out.zero_point(index))
    return result


def window_output_size(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int, ceil: bool
) -> int:
    """ONNX: floor (or ceil) of (size + pads - dilation (kernel - 1) - 1) / stride, plus 1;
    with ceil_mode a last window that starts beyond the input and its leading pad is dropped."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


# --------------------------------------------------------------------------- weighted ops


def _rescale_per_output_channel(bias_type: QType, out_type: QType, channel_axis: int):
    """real = s_bias / s_out for the output element at `index` (its channel's bias scale)."""
    return lambda index: bias_type.scale((index[channel_axis],)) / out_type.scale(index)


def conv2d(x, x_type, w, bias, bias_type, out_type, strides, pads, dilations, group):
    """acc = sum x_c * q_w + q_b over the window (padding contributes 0), then
    requant(acc, s_bias / s_out) per output channel."""
    batch, channels, height, width = x.shape
    out_channels, group_channels, kh, kw = w.shape
    top, left, bottom, right = pads
    padded = np.zeros((batch, channels, height + top + bottom, width + left + right), np.int64)
    padded[:, :, top : top + height, left : left + width] = centred(x, x_type)
    out_h = window_output_size(height, kh, strides[0], top, bottom, dilations[0], False)
    out_w = window_output_size(width, kw, strides[1], left, right, dilations[1], False)
    per_group = out_channels // group
    acc = np.zeros((batch, out_channels, out_h, out_w), np.int64)
    for n, o, y, x_ in np.ndindex(acc.shape):
        first = (o // per_group) * group_channels
        row, col = y * strides[0], x_ * strides[1]
        window = padded[
            n,
            first : first + group_channels,
            row : row + dilations[0] * (kh - 1) + 1 : dilations[0],
            col : col + dilations[1] * (kw - 1) + 1 : dilations[1],
        ]
        acc[n, o, y, x_] = int(np.sum(window * w[o].astype(np.int64))) + int(bias[o])
    return requant_array(acc, _rescale_per_output_channel(bias_type, out_type, 1), out_type)


def conv_transpose2d(
    x, x_type, w, bias, bias_type, out_type, strides, pads, dilations, output_padding, group
):
    """ONNX ConvTranspose: input pixel (iy, ix) times tap (ky, kx) lands on output
    (iy s + ky d - pad_top, ix s + kx d - pad_left); the output has
    s (in - 1) + output_padding + d (k - 1) + 1 - pads rows/columns. Then bias and requant."""
    batch, channels, height, width = x.shape
    _, per_group, kh, kw = w.shape
    group_channels = channels // group
    xc = centred(x, x_type)
    top, left, bottom, right = pads
    out_h = strides[0] * (height - 1) + output_padding[0] + dilations[0] * (kh - 1) + 1
    out_w = strides[1] * (width - 1) + output_padding[1] + dilations[1] * (kw - 1) + 1
    out_h, out_w = out_h - top - bottom, out_w - left - right
    acc = np.zeros((batch, group * per_group, out_h, out_w), np.int64)
    acc += np.asarray(bias, np.int64).reshape(1, -1, 1, 1)
    for n, c, iy, ix in np.ndindex(x.shape):
        g = c // group_channels
        for j, ky, kx in np.ndindex(per_group, kh, kw):
            y = iy * strides[0] + ky * dilations[0] - top
            x_ = ix * strides[1] + kx * dilations[1] - left
            if 0 <= y < out_h and 0 <= x_ < out_w:
                acc[n, g * per_group + j, y, x_] += int(xc[n, c, iy, ix]) * int(w[c, j, ky, kx])
    return requant_array(acc, _rescale_per_output_channel(bias_type, out_type, 1), out_type)


def dense(x, x_type, w, bias, bias_type, out_type):
    """acc[..., o] = sum_k x_c[..., k] q_w[o, k] + q_b[o]; requant(acc, s_bias / s_out)."""
    xc = centred(x, x_type)
    acc = np.zeros((*x.shape[:-1], w.shape[0]), np.int64)
    for index in np.ndindex(acc.shape):
        row = xc[index[:-1]]
        acc[index] = int(np.sum(row * w[index[-1]].astype(np.int64))) + int(bias[index[-1]])
    axis = acc.ndim - 1
    return requant_array(acc, _rescale_per_output_channel(bias_type, out_type, axis), out_type)


def matmul(a, a_type, b, b_type, out_type):
    """acc = sum a_c b_c (NumPy matmul broadcasting of the batch axes);
    requant(acc, s_a s_b / s_out)."""
    ac, bc = centred(a, a_type), centred(b, b_type)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    ac = np.broadcast_to(ac, (*batch, *a.shape[-2:]))
    bc = np.broadcast_to(bc, (*batch, *b.shape[-2:]))
    acc = np.zeros((*batch, a.shape[-2], b.shape[-1]), np.int64)
    for index in np.ndindex(acc.shape):
        row = ac[(*index[:-2], index[-2])]
        column = bc[(*index[:-2], slice(None), index[-1])]
        acc[index] = int(np.sum(row * column))
    scale = a_type.only_scale * b_type.only_scale
    return requant_array(acc, lambda index: scale / out_type.scale(index), out_type)


# --------------------------------------------------------------------------- elementwise


def _broadcast_centred(a, a_type, b, b_type):
    ac, bc = np.broadcast_arrays(centred(a, a_type), centred(b, b_type))
    return ac, bc


def add_sub(a, a_type, b, b_type, out_type, sign: int):
    """TFLite style: a' = requant_0(a_c << 20, s_a / (2 max(s_a, s_b))) in int32, b' likewise;
    requant(a' +- b', 2 max(s_a, s_b) / (2**20 s_out))."""
    s_a, s_b = a_type.only_scale, b_type.only_scale
    twice_max = 2 * max(s_a, s_b)
    ac, bc = _broadcast_centred(a, a_type, b, b_type)
    acc = np.zeros(ac.shape, np.int64)
    for index in np.ndindex(ac.shape):
        a_prime = requant_int32(int(ac[index]) << ADD_LEFT_SHIFT, s_a / twice_max)
        b_prime = requant_int32(int(bc[index]) << ADD_LEFT_SHIFT, s_b / twice_max)
        acc[index] = a_prime + sign * b_prime
    return requant_array(
        acc, lambda index: twice_max / (2**ADD_LEFT_SHIFT * out_type.scale(index)), out_type
    )


def mul(a, a_type, b, b_type, out_type):
    """requant(a_c b_c, s_a s_b / s_out)."""
    ac, bc = _broadcast_centred(a, a_type, b, b_type)
    scale = a_type.only_scale * b_type.only_scale
    return requant_array(ac * bc, lambda index: scale / out_type.scale(index), out_type)


def prelu(x, x_type, slope, slope_type, out_type):
    """requant(x_c, s_x / s_out) where x_c >= 0, else requant(x_c slope_c, s_x s_slope / s_out)."""
    xc, sc = _broadcast_centred(x, x_type, slope, slope_type)
    s_x, s_slope = x_type.only_scale, slope_type.only_scale
    out = np.empty(xc.shape, np.int8)
    for index in np.ndindex(xc.shape):
        value, zp, s_out = int(xc[index]), out_type.zero_point(index), out_type.scale(index)
        if value >= 0:
            out[index] = requant(value, s_x / s_out, zp)
        else:
            out[index] = requant(value * int(sc[index]), s_x * s_slope / s_out, zp)
    return out


# --------------------------------------------------------------------------- pooling


def _window_taps(size, kernel, stride, pad_begin, pad_end, dilation, ceil):
    """Per output position, each tap's input coordinate and whether it lies on the input,
    on an explicit pad, or beyond (only ceil_mode's last window reaches there)."""
    out = window_output_size(size, kernel, stride, pad_begin, pad_end, dilation, ceil)
    taps = []
    for position in range(out):
        row = []
        for k in range(kernel):
            coordinate = position * stride + k * dilation - pad_begin
            if 0 <= coordinate < size:
                where = "input"
            elif -pad_begin <= coordinate < size + pad_end:
                where = "pad"
            else:
                where = "beyond"
            row.append((coordinate, where))
        taps.append(row)
    return taps


def avg_pool(x, in_type, out_type, kernel, strides, pads, dilations, ceil_mode, include_pad):
    """Exact window sum of x_c; requant(sum, s_in / (s_out N)) with N the ONNX divisor of the
    position: taps on the input, plus taps on explicit pads with count_include_pad; taps
    that only ceil_mode reaches never count."""
    xc = centred(x, in_type)
    rows = _window_taps(
        x.shape[2], kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode
    )
    cols = _window_taps(
        x.shape[3], kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode
    )
    counted = {"input", "pad"} if include_pad else {"input"}
    out = np.empty((*x.shape[:2], len(rows), len(cols)), np.int8)
    for n, c, y, x_ in np.ndindex(out.shape):
        total, divisor = 0, 0
        for (r, r_where), (q, q_where) in ((r, q) for r in rows[y] for q in cols[x_]):
            if r_where == "input" and q_where == "input":
                total += int(xc[n, c, r, q])
            if r_where in counted and q_where in counted:
                divisor += 1
        index = (n, c, y, x_)
        real = in_type.scale(index) / (out_type.scale(index) * divisor)
        out[index] = requant(total, real, out_type.zero_point(index))
    return out


def max_pool(x, kernel, strides, pads, dilations, ceil_mode):
    """Max of the codes in the window; taps off the input read -128."""
    rows = _window_taps(
        x.shape[2], kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode
    )
    cols = _window_taps(
        x.shape[3], kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode
    )
    out = np.empty((*x.shape[:2], len(rows), len(cols)), np.int8)
    for n, c, y, x_ in np.ndindex(out.shape):
        values = [
            int(x[n, c, r, q]) if r_where == q_where == "input" else INT8_MIN
            for r, r_where in rows[y]
            for q, q_where in cols[x_]
        ]
        out[n, c, y, x_] = max(values)
    return out


def global_pool(x, in_type, out_type, kind: str):
    """avg: sum of x_c over the spatial axes, requant(sum, s_in / (s_out (H W)));
    max: max of the codes."""
    spatial = x.shape[2:]
    count = math.prod(spatial)
    out = np.empty((*x.shape[:2], *[1] * len(spatial)), np.int8)
    for n, c in np.ndindex(x.shape[:2]):
        index = (n, c, *[0] * len(spatial))
        if kind == "max":
            out[index] = int(x[n, c].max())
            continue
        total = sum(int(v) - in_type.zero_point(index) for v in x[n, c].ravel())
        real = in_type.scale(index) / (out_type.scale(index) * count)
        out[index] = requant(total, real, out_type.zero_point(index))
    return out


# --------------------------------------------------------------------------- resize


def source_coordinate(out_index: int, in_len: int, scale: float, transform: str) -> float:
    """ONNX Resize's coordinate transforms (float64) as onnx.reference maps them: the resized
    length is the unrounded `scale * in_len`, and a resized length of exactly 1 maps to
    -0.5 (pytorch_half_pixel) or 0 (align_corners)."""
    resized_len = scale * in_len
    if transform == "half_pixel":
        return (out_index + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        return (out_index + 0.5) / scale - 0.5 if resized_len != 1 else -0.5
    if transform == "align_corners":
        return out_index * (in_len - 1) / (resized_len - 1) if resized_len != 1 else 0.0
    if transform == "asymmetric":
        return out_index / scale
    raise ValueError(f"unknown coordinate transform {transform}")


def nearest_index(coordinate: float, rounding: str, in_len: int) -> int:
    if rounding == "round_prefer_floor":
        index = math.ceil(coordinate - 0.5)
    elif rounding == "round_prefer_ceil":
        index = math.floor(coordinate + 0.5)
    elif rounding == "floor":
        index = math.floor(coordinate)
    else:
        index = math.ceil(coordinate)
    return clamp(index, 0, in_len - 1)


def linear_weights(in_len: int, scale: float, transform: str) -> list[list[int]]:
    """The fixed-point interpolation matrix [floor(in_len scale), in_len] of one axis.

    Output i reads inputs floor(c) and floor(c) + 1 (clamped to the edge) with float64
    weights 1 - f and f (f = c - floor(c), c its source coordinate; both added to one
    column at the edges). Each weight becomes rint(weight * 2**10), half to even; the
    row's leftover 2**10 - sum goes to its largest weight (the first of equal ones), so
    every row sums to 2**10.
    """
    one = 1 << RESIZE_WEIGHT_BITS
    rows = []
    for i in range(math.floor(in_len * scale)):
        coordinate = source_coordinate(i, in_len, scale, transform)
        low = math.floor(coordinate)
        fraction = coordinate - low
        real = [0.0] * in_len
        real[clamp(low, 0, in_len - 1)] += 1.0 - fraction
        real[clamp(low + 1, 0, in_len - 1)] += fraction
        fixed = [round(weight * one) for weight in real]
        largest = real.index(max(real))
        fixed[largest] += one - sum(fixed)
        rows.append(fixed)
    return rows


def resize(x, in_type, out_type, mode, scales, transform, rounding):
    """nearest: gather codes. linear: apply each scaled axis's fixed-point matrix to x_c in
    turn (exact ints), then requant(acc, s_in / (s_out 2**(10 k))) for k scaled axes."""
    if mode == "nearest":
        out = x
        for axis, scale in enumerate(scales):
            if scale != 1.0:
                length = x.shape[axis]
                picks = [
                    nearest_index(source_coordinate(i, length, scale, transform), rounding, length)
                    for i in range(math.floor(length * scale))
                ]
                out = np.take(out, picks, axis=axis)
        return out
    acc = centred(x, in_type)
    bits = 0
    for axis, scale in enumerate(scales):
        if scale == 1.0:
            continue
        weights = linear_weights(x.shape[axis], scale, transform)
        moved = np.moveaxis(acc, axis, -1)
        mixed = np.zeros((*moved.shape[:-1], len(weights)), np.int64)
        for index in np.ndindex(mixed.shape):
            line = moved[index[:-1]]
            mixed[index] = sum(
                int(w) * int(v) for w, v in zip(weights[index[-1]], line, strict=True)
            )
        acc = np.moveaxis(mixed, -1, axis)
        bits += RESIZE_WEIGHT_BITS
    return requant_array(
        acc, lambda index: in_type.scale(index) / (out_type.scale(index) * 2.0**bits), out_type
    )


# --------------------------------------------------------------------------- codes only


def code_of(value: float, type_: QType, index) -> int:
    """quantize(value) in `type_` at `index` (its channel's scale and zero point)."""
    return quantize(value, type_.scale(index), type_.zero_point(index))


def clip(x, type_: QType, low: float, high: float):
    """Clamp each code to [quantize(min), quantize(max)] in the tensor's type."""
    out = np.empty(x.shape, np.int8)
    for index in np.ndindex(x.shape):
        bounds = code_of(low, type_, index), code_of(high, type_, index)
        out[index] = clamp(int(x[index]), *bounds)
    return out


def _reflect(i: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return period - i if i >= n else i


def pad(x, type_: QType, pads: Sequence[int], mode: str, value: float):
    """ONNX Pad (pads = begins then ends, >= 0): constant pads hold quantize(value) in the
    type (per channel if it is), reflect mirrors without repeating the edge, edge repeats it."""
    rank = x.ndim
    begins, ends = list(pads[:rank]), list(pads[rank:])
    shape = tuple(n + b + e for n, b, e in zip(x.shape, begins, ends, strict=True))
    out = np.empty(shape, np.int8)
    for index in np.ndindex(shape):
        source = [i - b for i, b in zip(index, begins, strict=True)]
        inside = all(0 <= s < n for s, n in zip(source, x.shape, strict=True))
        if inside:
            out[index] = x[tuple(source)]
        elif mode == "constant":
            out[index] = code_of(value, type_, index)
        elif mode == "edge":
            out[index] = x[tuple(clamp(s, 0, n - 1) for s, n in zip(source, x.shape, strict=True))]
        else:
            out[index] = x[tuple(_reflect(s, n) for s, n in zip(source, x.shape, strict=True))]
    return out
