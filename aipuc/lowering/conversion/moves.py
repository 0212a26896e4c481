"""Data movement onto the DMA: reshape, transpose, slice, split, concat, pad (constant,
reflect, edge), nearest resize.

Each becomes an `aipu.move` whose copies are strided blocks between the dense device
layouts of input and result (`aipuc.lowering.layout`), or an `aipu.reinterpret` when the
bytes are already where the result wants them:

    %y = axq.transpose %x {perm = [0, 2, 1, 3]} : tensor<1x8x16x64x...> -> tensor<1x16x8x64x...>
becomes
    %yd = aipu.move %xd {copies = array<i64: 3, 0, 0, 8, 16, 64, 1024, 64, 1, 64, 512, 1>}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import shape_of
from aipuc.errors import CompilationError
from aipuc.lowering import layout
from aipuc.lowering.conversion.common import HOST_SIDE, Conversion, describe, qtype
from aipuc.lowering.conversion.mvm import swap_on_mvm
from aipuc.runtime import kernels
from aipuc.runtime.integer_reference import code_of


class MovesToDma(RewritePattern):
    """Every data-movement axq op, by op type."""

    def __init__(self, conv: Conversion):
        self.conv = conv

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        handler = {
            axq.ReshapeOp: self._reshape,
            axq.TransposeOp: self._transpose,
            axq.SliceOp: self._slice,
            axq.SplitOp: self._split,
            axq.ConcatOp: self._concat,
            axq.PadOp: self._pad,
            axq.ResizeOp: self._resize,
        }.get(type(op))
        if handler is None:
            return
        if isinstance(op, axq.ResizeOp) and op.mode.data != axq.ResizeMode.NEAREST:
            return
        if isinstance(op, axq.SliceOp) and self._crop_on_the_host(op, rewriter):
            return
        results = handler(op, rewriter)
        self.conv.finish(op, results, rewriter)

    def _io(self, op: Operation, value: SSAValue, result: SSAValue):
        conv = self.conv
        return (
            shape_of(value),
            conv.perm(value),
            shape_of(result),
            conv.perm(result),
            conv.device_type(result),
        )

    def _moved(self, op, rewriter, value, result, copies, fill=None) -> SSAValue:
        source = self.conv.device(value, rewriter)
        return self.conv.move(
            [source], self.conv.device_type(result), [(0, c) for c in copies], rewriter, op, fill
        )

    def _reshape(self, op: axq.ReshapeOp, rewriter) -> list[SSAValue]:
        in_shape, in_perm, out_shape, out_perm, _ = self._io(op, op.input, op.result)
        copies = layout.reshape_copies(in_shape, in_perm, out_shape, out_perm)
        return [self._moved(op, rewriter, op.input, op.result, copies)]

    def _transpose(self, op: axq.TransposeOp, rewriter) -> list[SSAValue]:
        in_shape, in_perm, _, out_perm, _ = self._io(op, op.input, op.result)
        copies = layout.transpose_copies(in_shape, in_perm, op.perm.get_values(), out_perm)
        if len(copies) == 1:
            source = self.conv.device(op.input, rewriter)
            result_type = self.conv.device_type(op.result)
            swapped = swap_on_mvm(self.conv, source, copies[0], result_type, rewriter, op)
            if swapped is not None:
                return [swapped]
        return [self._moved(op, rewriter, op.input, op.result, copies)]

    def _slice_of(self, op, rewriter, value, result, index: Sequence[slice]) -> SSAValue:
        in_shape, in_perm, out_shape, out_perm, _ = self._io(op, value, result)
        ranges = [range(size)[s] for size, s in zip(in_shape, index, strict=True)]
        copies = layout.slice_copies(
            in_shape,
            in_perm,
            out_shape,
            out_perm,
            [r.start if len(r) else 0 for r in ranges],
            [r.step for r in ranges],
        )
        return self._moved(op, rewriter, value, result, copies)

    def _crop_on_the_host(self, op: axq.SliceOp, rewriter: PatternRewriter) -> bool:
        """A leading block of a device tensor that only the host reads (the slice that
        apply-pword-padding leaves before a graph output) is the host's to take, when the
        host handles the IO (`remove_io_padding_and_layout_transform`): the device hands
        over the padded tensor and does not copy.

            %y = axq.slice %x {starts = [0], ends = [40], axes = [1]} : ...x64x... -> ...x40x...
            func.return %y
        becomes
            %y = aipu.from_device %xd {cropped, perm = [0, 2, 3, 1]} : ...x64xi8 -> ...x40x...
        """
        source = op.input.owner
        if not (
            self.conv.host_io
            and isinstance(source, aipu.FromDeviceOp)
            and op.result.uses
            and all(isinstance(use.operation, HOST_SIDE) for use in op.result.uses)
        ):
            return False
        shape = shape_of(op.input)
        ranges = [range(size)[s] for size, s in zip(shape, op.index(), strict=True)]
        if any(len(r) and (r.start != 0 or r.step != 1) for r in ranges):
            return False
        perm = self.conv.perm(op.input)
        leave = aipu.FromDeviceOp(source.input, perm, op.result.type, cropped=True)
        leave.location = op.location
        rewriter.replace(op, leave)
        self.conv.layouts[leave.result] = perm
        return True

    def _slice(self, op: axq.SliceOp, rewriter) -> list[SSAValue]:
        return [self._slice_of(op, rewriter, op.input, op.result, op.index())]

    def _split(self, op: axq.SplitOp, rewriter) -> list[SSAValue]:
        axis, start, results = op.axis.value.data, 0, []
        for result, size in zip(op.outputs, op.split_sizes(), strict=True):
            index = [slice(None)] * len(shape_of(op.input))
            index[axis] = slice(start, start + size)
            results.append(self._slice_of(op, rewriter, op.input, result, index))
            start += size
        return results

    def _concat(self, op: axq.ConcatOp, rewriter) -> list[SSAValue]:
        conv, axis = self.conv, op.axis.value.data
        out_shape, out_perm = shape_of(op.result), conv.perm(op.result)
        copies, offset = [], 0
        for index, value in enumerate(op.inputs):
            begins = [0] * len(out_shape)
            begins[axis] = offset
            offset += shape_of(value)[axis]
            embedded = layout.embed_copies(
                shape_of(value), conv.perm(value), out_shape, out_perm, begins
            )
            copies += [(index, copy) for copy in embedded]
        sources = [conv.device(value, rewriter) for value in op.inputs]
        return [conv.move(sources, conv.device_type(op.result), copies, rewriter, op)]

    def _pad(self, op: axq.PadOp, rewriter) -> list[SSAValue]:
        if op.mode.data != axq.PadMode.CONSTANT:
            return [self._gathered_pad(op, rewriter)]
        type_ = qtype(op.input)
        if type_.is_per_axis:
            raise CompilationError(f"{describe(op)}: per-channel padding values are not supported")
        in_shape, in_perm, out_shape, out_perm, _ = self._io(op, op.input, op.result)
        begins = op.pads.get_values()[: len(in_shape)]
        copies = layout.embed_copies(in_shape, in_perm, out_shape, out_perm, begins)
        fill = int(code_of(op.value.value.data, type_, 0))
        return [self._moved(op, rewriter, op.input, op.result, copies, fill)]

    def _gathered_pad(self, op: axq.PadOp, rewriter) -> SSAValue:
        """reflect / edge padding: per axis, each output index reads the input index that
        np.pad's mode maps it to (codes are copied, so the quantized type is unchanged)."""
        in_shape, in_perm, out_shape, out_perm, _ = self._io(op, op.input, op.result)
        pads, rank = op.pads.get_values(), len(in_shape)
        mode = "reflect" if op.mode.data == axq.PadMode.REFLECT else "edge"
        maps = [
            np.pad(np.arange(size), (pads[axis], pads[rank + axis]), mode=mode)
            for axis, size in enumerate(in_shape)
        ]
        copies = layout.gather_copies(in_shape, in_perm, out_shape, out_perm, maps)
        return self._moved(op, rewriter, op.input, op.result, copies)

    def _resize(self, op: axq.ResizeOp, rewriter) -> list[SSAValue]:
        in_shape, in_perm, out_shape, out_perm, _ = self._io(op, op.input, op.result)
        maps = []
        for axis, scale in enumerate(op.scales.get_values()):
            maps.append(
                kernels.resize(
                    np.arange(in_shape[axis]),
                    "nearest",
                    [scale],
                    op.coordinate_transform.data.value,
                    op.nearest_rounding.data.value,
                ).astype(np.int64)
            )
        copies = layout.gather_copies(in_shape, in_perm, out_shape, out_perm, maps)
        return [self._moved(op, rewriter, op.input, op.result, copies)]
