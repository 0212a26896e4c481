"""Linear resize: per scaled axis, two gathers by the DMA and a weighted sum on the DPU.

The integer reference multiplies the centred codes, one scaled axis after the other, by
the fixed-point interpolation matrix `integer_reference.linear_resize_weights` (10
fractional bits per axis, rows summing to 2**10) and requantizes once at the end. Each row
of that matrix has at most two nonzero weights, so each axis is

    g0 = gather(x, first source index of each output position)      (aipu.move)
    g1 = gather(x, second source index)                              (aipu.move)
    acc = (g1 << 10) + (g0 - g1) * w0                                (aipu.eltwise, int32)

with w0 the first entry of each row as an int32 vector along that axis: since each row
sums to 2**10, that is g0 * w0 + g1 * w1 exactly, the same integers as the matrix product
(and one operand fewer for the DPU). The last axis requantizes by s_in / (s_out * 2**(10 k)).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType, i32
from xdsl.ir import SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import shape_of
from aipuc.lowering import layout
from aipuc.lowering.conversion.common import Conversion, qtype, scales
from aipuc.lowering.conversion.dpu import Program
from aipuc.runtime.integer_reference import RESIZE_WEIGHT_BITS, linear_resize_weights


def two_taps(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output row of an interpolation matrix: (first column, its weight, second column,
    its weight); a row with one nonzero gets a zero second weight on the same column."""
    rows = len(weights)
    first_col, second_col = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
    first_w, second_w = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
    for row, values in enumerate(weights):
        columns = np.flatnonzero(values)
        if len(columns) > 2:
            raise ValueError("linear interpolation rows have at most two taps")
        first_col[row] = second_col[row] = columns[0]
        first_w[row] = values[columns[0]]
        if len(columns) == 2:
            second_col[row], second_w[row] = columns[1], values[columns[1]]
    return first_col, first_w, second_col, second_w


class LinearResizeToDpu(RewritePattern):
    def __init__(self, conv: Conversion):
        self.conv = conv

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ResizeOp, rewriter: PatternRewriter) -> None:
        if op.mode.data != axq.ResizeMode.LINEAR:
            return
        conv = self.conv
        in_type, out_type = qtype(op.input), qtype(op.result)
        perm = conv.perm(op.result)
        current = conv.relayout(op.input, perm, rewriter, op)
        shape = list(shape_of(op.input))
        scaled = [a for a, s in enumerate(op.scales.get_values()) if s != 1.0]
        transform = op.coordinate_transform.data.value
        for index, axis in enumerate(scaled):
            weights = linear_resize_weights(shape[axis], op.scales.get_values()[axis], transform)
            out_shape = list(shape)
            out_shape[axis] = len(weights)
            first_col, first_w, second_col, second_w = two_taps(weights)
            taps = [
                self._gather(current, shape, out_shape, perm, axis, cols, rewriter, op)
                for cols in (first_col, second_col)
            ]
            last = index == len(scaled) - 1
            p = Program(conv, rewriter, op, out_shape)
            if not np.all(first_w + second_w == 1 << RESIZE_WEIGHT_BITS):
                raise ValueError("interpolation rows must sum to one")
            g0, g1 = (p.argument(tap) for tap in taps)
            if index == 0:
                g0, g1 = p.centred(g0, in_type), p.centred(g1, in_type)
            # g0 * w0 + g1 * w1 with w1 = 2**10 - w0: one weight vector, the same integers.
            weights_vector = self._weights(p, first_w, axis, len(shape))
            difference = p.op(aipu.DpuMulOp(p.op(aipu.DpuSubOp(g0, g1)), weights_vector))
            shifted = p.op(aipu.DpuShiftLeftOp(g1, RESIZE_WEIGHT_BITS))
            total = p.op(aipu.DpuAddOp(shifted, difference))
            if last:
                bits = RESIZE_WEIGHT_BITS * len(scaled)
                channels = shape_of(op.result)[out_type.axis_index] if out_type.is_per_axis else 1
                real = scales(in_type, channels) / (scales(out_type, channels) * 2.0**bits)
                conv.finish(op, [p.build(p.requantized(total, real, out_type))], rewriter)
                return
            current = p.build(total, i32)
            shape = out_shape

    def _gather(
        self, value: SSAValue, shape, out_shape, perm, axis: int, columns: np.ndarray, rewriter, at
    ) -> SSAValue:
        maps = [np.arange(n) for n in out_shape]
        maps[axis] = columns
        copies = layout.gather_copies(shape, perm, out_shape, perm, maps)
        element = value.type.element_type  # type: ignore[attr-defined]
        result_type = TensorType(element, layout.physical_shape(out_shape, perm))
        return self.conv.move([value], result_type, [(0, c) for c in copies], rewriter, at)

    def _weights(self, p: Program, values: np.ndarray, axis: int, rank: int) -> SSAValue:
        """int32 weights along `axis`, broadcast over the other axes of the device layout."""
        shape = [1] * rank
        shape[axis] = len(values)
        array = np.asarray(values, np.int32).reshape(shape)
        return p.argument(self.conv.constant(np.transpose(array, p.perm), p.rewriter))
