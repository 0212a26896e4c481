"""Depthwise convolutions and pooling onto the DWPU.

    %y = axq.max_pool %x {kernel = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1], ...}
becomes
    %yd = aipu.pool max %xd {kernel = [3, 3], stride = [2, 2], pads = [1, 1, 1, 1]}

Requantizing modes get an int32 table of (bias, multiplier, shift, out_zp, in_zp) rows:
per channel when any of those differs between channels, one broadcast row otherwise;
average pooling has one such table per divisor 1..kh*kw (row 0 unused), because a window
at the border divides by the taps it really covers (ONNX AveragePool semantics).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType, i8
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from aipuc.dialects import aipu, axq
from aipuc.dialects.aipu import DwpuMode
from aipuc.dialects.axq import shape_of
from aipuc.dialects.tensors import numpy_from_dense
from aipuc.lowering import layout
from aipuc.lowering.conversion.common import (
    Conversion,
    fixed_point,
    int_table,
    qtype,
    scales,
    zero_points,
)
from aipuc.lowering.conversion.mvm import accumulator_rescale, is_depthwise
from aipuc.runtime import kernels
from aipuc.runtime.float_interpreter import flag


def _rows(bias, real, out_zp, in_zp, channels: int) -> tuple[np.ndarray, bool]:
    """[C', 5] requantization rows, C' = 1 when every channel's row is the same."""
    multiplier, shift = fixed_point(real)
    columns = [
        np.broadcast_to(np.asarray(v, np.int64), (channels,))
        for v in (bias, multiplier, shift, out_zp, in_zp)
    ]
    rows = np.stack(columns, axis=1)
    if np.all(rows == rows[0]):
        return rows[:1], False
    return rows, True


class _PoolPattern(RewritePattern):
    def __init__(self, conv: Conversion):
        self.conv = conv

    def _layer(
        self,
        op,
        rewriter: PatternRewriter,
        mode: DwpuMode,
        *,
        weights=None,
        table=None,
        per_channel=False,
        **window,
    ) -> None:
        conv = self.conv
        x = conv.relayout(op.input, layout.NHWC, rewriter, op)
        out_type = TensorType(i8, layout.physical_shape(shape_of(op.result), layout.NHWC))
        layer = aipu.PoolLayerOp(
            mode,
            x,
            out_type,
            weights=None if weights is None else conv.constant(weights, rewriter),
            table=None if table is None else conv.constant(int_table(table), rewriter),
            per_channel=per_channel,
            **window,
        )
        conv.layouts[op.result] = layout.NHWC
        conv.finish(op, [conv.emit(layer, rewriter, op).results[0]], rewriter)


def _window(op) -> dict:
    in_hw = shape_of(op.input)[2:]
    kernel, strides = op.kernel.get_values(), op.strides.get_values()
    pads, dilations = op.pads.get_values(), op.dilations.get_values()
    _, extra = kernels.window_geometry(in_hw, kernel, strides, pads, dilations, flag(op.ceil_mode))
    return {
        "kernel": kernel,
        "stride": strides,
        "dilation": dilations,
        "pads": pads,
        "extra": extra,
    }


class MaxPoolToDwpu(_PoolPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.MaxPoolOp, rewriter: PatternRewriter) -> None:
        self._layer(op, rewriter, DwpuMode.MAX, **_window(op))


class AvgPoolToDwpu(_PoolPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.AvgPoolOp, rewriter: PatternRewriter) -> None:
        in_type, out_type = qtype(op.input), qtype(op.result)
        channels = shape_of(op.input)[1]
        window = _window(op)
        taps = int(np.prod(window["kernel"]))
        s_in, s_out = scales(in_type, channels), scales(out_type, channels)
        tables = [
            _rows(
                0,
                s_in / (s_out * np.int64(max(divisor, 1))),
                zero_points(out_type, channels),
                zero_points(in_type, channels),
                channels,
            )
            for divisor in range(taps + 1)
        ]
        per_channel = any(pc for _, pc in tables)
        table = np.stack(
            [np.broadcast_to(rows, (channels if per_channel else 1, 5)) for rows, _ in tables]
        )
        self._layer(
            op,
            rewriter,
            DwpuMode.AVG,
            table=table,
            per_channel=per_channel,
            count_include_pad=flag(op.count_include_pad),
            **window,
        )


class GlobalPoolToDwpu(_PoolPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.GlobalPoolOp, rewriter: PatternRewriter) -> None:
        if len(shape_of(op.input)) != 4:
            return
        if op.kind.data == axq.PoolKind.MAX:
            self._layer(op, rewriter, DwpuMode.GLOBAL_MAX)
            return
        in_type, out_type = qtype(op.input), qtype(op.result)
        n, channels, h, w = shape_of(op.input)
        real = scales(in_type, channels) / (scales(out_type, channels) * (h * w))
        table, per_channel = _rows(
            0, real, zero_points(out_type, channels), zero_points(in_type, channels), channels
        )
        self._layer(op, rewriter, DwpuMode.GLOBAL_AVG, table=table, per_channel=per_channel)


class DepthwiseToDwpu(_PoolPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.Conv2dOp, rewriter: PatternRewriter) -> None:
        if not is_depthwise(op):
            return
        channels = shape_of(op.input)[1]
        weights = numpy_from_dense(op.weight.owner.value)  # type: ignore[union-attr]
        bias = numpy_from_dense(op.bias.owner.value).astype(np.int64)  # type: ignore[union-attr]
        table, per_channel = _rows(
            bias,
            accumulator_rescale(op, channels),
            zero_points(qtype(op.result), channels),
            zero_points(qtype(op.input), channels),
            channels,
        )
        self._layer(
            op,
            rewriter,
            DwpuMode.CONV,
            weights=np.ascontiguousarray(weights[:, 0].transpose(1, 2, 0)),
            table=table,
            per_channel=per_channel,
            kernel=shape_of(op.weight)[2:],
            stride=op.strides.get_values(),
            dilation=op.dilations.get_values(),
            pads=op.pads.get_values(),
        )
