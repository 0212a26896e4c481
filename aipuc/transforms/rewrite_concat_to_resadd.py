"""`rewrite-concat-to-resadd`: concatenation as padded, shifted inputs added together (config
field `rewrite_concat_to_resadd`).

The AIPU has no concatenation. Each input is padded with zeros into its slice of the
output along the concatenation axis, and the padded inputs are added in a chain.

Exact on the integer graph, where the pipeline runs it (after `axq-quantize`): every
input of a quantized concat has the output's type T (scale s, zero point zp), because
quantization requantizes the others to it. Padding with the real value 0 writes the code
zp, whose centred value is 0. The integer add of two tensors of type T into type T
(`integer_reference._add_or_sub`) computes
`requant((a_c << 20) * 1/2 + (b_c << 20) * 1/2, 2**-19) + zp = a_c + b_c + zp`: both
rescalings are by exact powers of two, so nothing rounds. At every position exactly one
input is not padding, so each add returns that input's code unchanged.

Float concats are left alone: rewritten before calibration, the partial sums would get
ranges of their own and the result would no longer be exact.

Concatenations on the channel axis are rewritten only when every input starts at a
multiple of the PWORD (`hardware.AIPU.pword_bytes` channels): a channel shift by part of a
PWORD is not an addressing offset on the AIPU. Others stay concats (once channels are
padded to whole PWORDs, every channel concat qualifies).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from aipuc.dialects import axq
from aipuc.dialects.axq import element_type, is_quantized, shape_of
from aipuc.hardware import AIPU
from aipuc.passes import AipucPass
from aipuc.transforms.common import located


def _rewritable(op: axq.ConcatOp) -> bool:
    shape = shape_of(op.result)
    axis = op.axis.value.data % len(shape)
    result_type = element_type(op.result)
    if len(shape) != 4 or axis == 0 or not is_quantized(op.result) or result_type.is_per_axis:
        return False
    if any(element_type(value) != result_type for value in op.operands):
        return False
    if axis == axq.CHANNEL_AXIS:
        ends = accumulate(shape_of(value)[axis] for value in op.operands[:-1])
        return all(end % AIPU.pword_bytes == 0 for end in ends)
    return True


class ConcatToResadd(RewritePattern):
    """A quantized 4-D concat becomes zero-padded inputs added in a chain.

        %y = axq.concat %a, %b {axis = 2 : i64} : (tensor<1x8x2x4x!axq.q<i8, 0.1:-3>>,
            tensor<1x8x3x4x!axq.q<i8, 0.1:-3>>) -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>>
    becomes
        %pa = axq.pad %a {pads = array<i64: 0, 0, 0, 0, 0, 0, 3, 0>, value = 0.0 : f64,
            mode = #axq<pad_mode constant>} : ... -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>>
        %pb = axq.pad %b {pads = array<i64: 0, 0, 2, 0, 0, 0, 0, 0>, ...}
        %y = axq.add %pa, %pb : (...) -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>>
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ConcatOp, rewriter: PatternRewriter) -> None:
        if not _rewritable(op):
            return
        shape = shape_of(op.result)
        rank, axis = len(shape), op.axis.value.data % len(shape)
        new_ops = []
        start = 0
        for value in op.operands:
            size = shape_of(value)[axis]
            pads = [0] * (2 * rank)
            pads[axis], pads[rank + axis] = start, shape[axis] - start - size
            start += size
            new_ops.append(axq.PadOp(value, op.result.type, pads, 0.0))
        total = new_ops[0].results[0]
        for padded in new_ops[1 : len(op.operands)]:
            add = axq.AddOp(total, padded.results[0], op.result.type)
            new_ops.append(add)
            total = add.result
        for new_op in new_ops:
            located(new_op, op.location)
        rewriter.replace(op, new_ops, [total])


@dataclass(frozen=True)
class RewriteConcatToResaddPass(AipucPass):
    """Every quantized 4-D concat that the AIPU can shift into place becomes pads and adds."""

    name = "rewrite-concat-to-resadd"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(ConcatToResadd(), apply_recursively=False).rewrite_module(op)
