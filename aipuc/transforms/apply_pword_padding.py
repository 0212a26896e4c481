"""`apply-pword-padding`: channels padded to whole PWORDs where they are made (config field
`apply_pword_padding`).

The MVM reads its input vector in PWORDs of 64 channels, so a convolution's input must have
a multiple of 64 channels, the extra lanes holding the zero point (real 0) against zero
weights. Without this pass the lowering pads at every MVM consumer with a DMA copy. This pass
pads at the producer instead, where it costs nothing: a convolution with 40 output channels
gets 24 more whose weights and bias are zero (the MVM's 64 columns compute them anyway), so
they hold the zero point, and a channel slice takes the 40 back. The slice then sinks through
every op that treats channels independently (clip, table, requantization, pooling, resize,
depthwise convolution, element-wise ops, whose per-channel constants are padded with their
zero point) and disappears into

- the next convolution, whose weights grow zero input channels, or
- a softmax over channels, whose padded lanes hold `softmax_neutral_value` so that they add
  nothing to its sum (`axq.softmax` `valid_length`, masked on the DPU).

Before any other consumer (reshape, concatenation on channels, a graph output) the slice
stays, right before it. Exact on the integer graph: a valid lane never reads a padded one
(zero weights, channel-wise ops, the softmax mask), so every valid code is unchanged.
Only per-tensor quantized activations are padded (a per-channel type cannot be sliced).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from aipuc.dialects import axq
from aipuc.dialects.axq import CHANNEL_AXIS, QuantizedType, element_type, is_depthwise, shape_of
from aipuc.dialects.tensors import dense_from_numpy, tensor_type
from aipuc.hardware import AIPU
from aipuc.passes import AipucPass
from aipuc.transforms.common import erase_dead_constants, located

PWORD = AIPU.pword_bytes

_ELEMENTWISE = (axq.ClipOp, axq.LutOp, axq.RequantizeOp)
_WINDOWED = (axq.MaxPoolOp, axq.AvgPoolOp, axq.GlobalPoolOp, axq.ResizeOp)
_MOVES = (axq.PadOp, axq.SliceOp, axq.SplitOp)  # when they keep the channel axis whole
_BINARY = (axq.AddOp, axq.SubOp, axq.MulOp, axq.PReluOp)


def pword_ceil(channels: int) -> int:
    return -(-channels // PWORD) * PWORD


def _per_tensor_4d(value: SSAValue) -> bool:
    type_ = element_type(value)
    return len(shape_of(value)) == 4 and isinstance(type_, QuantizedType) and not type_.is_per_axis


def _with_channels(type_: Attribute, channels: int, axis: int = CHANNEL_AXIS) -> TensorType:
    """`type_` with `channels` along `axis`; per-axis scales there repeat their last entry
    (the padded lanes' weights or constants are zero, so their scale is immaterial)."""
    assert isinstance(type_, TensorType)
    shape = list(type_.get_shape())
    added = channels - shape[axis]
    shape[axis] = channels
    element = type_.get_element_type()
    if isinstance(element, QuantizedType) and element.is_per_axis and element.axis_index == axis:
        scales, zero_points = element.scale_array(), element.zero_point_array()
        element = QuantizedType(
            element.storage,
            np.concatenate([scales, np.repeat(scales[-1:], added)]),
            np.concatenate([zero_points, np.repeat(zero_points[-1:], added)]),
            axis,
        )
    return tensor_type(shape, element)


def padded_source(value: SSAValue) -> SSAValue | None:
    """The PWORD-padded tensor whose first channels `value` slices, if it does."""
    op = value.owner
    if not isinstance(op, axq.SliceOp) or not _per_tensor_4d(value):
        return None
    channels = shape_of(value)[CHANNEL_AXIS]
    if (
        list(op.axes.get_values()) != [CHANNEL_AXIS]
        or list(op.starts.get_values()) != [0]
        or list(op.steps.get_values()) != [1]
        or channels % PWORD == 0
        or shape_of(op.input)[CHANNEL_AXIS] != pword_ceil(channels)
    ):
        return None
    return op.input


def _grown_constant(constant: SSAValue, axis: int, size: int, fill: int = 0) -> axq.ConstantOp:
    """A copy of `constant` grown along `axis` to `size`, the new entries `fill`."""
    owner = constant.owner
    assert isinstance(owner, axq.ConstantOp)
    data = owner.to_numpy()
    widths = [(0, 0)] * data.ndim
    widths[axis] = (0, size - data.shape[axis])
    grown = np.pad(data, widths, constant_values=fill)
    return located(  # type: ignore[return-value]
        axq.ConstantOp(
            dense_from_numpy(grown, owner.value.get_element_type()),
            _with_channels(constant.type, size, axis),
        ),
        owner.location,
    )


def _slice_back(padded: SSAValue, channels: int) -> axq.SliceOp:
    return axq.SliceOp(
        padded, _with_channels(padded.type, channels), [0], [channels], [CHANNEL_AXIS], [1]
    )


def _replace_padded(
    rewriter: PatternRewriter, op: Operation, new_ops: Sequence[Operation], padded: Operation
) -> None:
    """Replace `op` by `new_ops`, whose `padded` computes its results with more channels,
    followed by one slice per result back to the old channel count."""
    slices = [
        _slice_back(result, shape_of(old)[CHANNEL_AXIS])
        for result, old in zip(padded.results, op.results, strict=True)
    ]
    for new_op in (padded, *slices):
        located(new_op, op.location)
    rewriter.replace(op, [*new_ops, *slices], [s.result for s in slices])


def _rebuilt(op: Operation, operands: Sequence[SSAValue], channels: int, **properties) -> Operation:
    """`op` on new operands, every result widened to `channels`."""
    return type(op).create(
        operands=list(operands),
        result_types=[_with_channels(r.type, channels) for r in op.results],
        properties={**op.properties, **properties},
        attributes=dict(op.attributes),
    )


# --------------------------------------------------------------------------- where it pays


def _is_mvm_consumer(op: Operation) -> bool:
    return (
        isinstance(op, (axq.Conv2dOp, axq.ConvTranspose2dOp))
        and op.group.value.data == 1
        and isinstance(op.weight.owner, axq.ConstantOp)
    )


def _is_channel_softmax(op: Operation) -> bool:
    return (
        isinstance(op, axq.SoftmaxOp)
        and len(shape_of(op.input)) == 4
        and op.axis.value.data % 4 == CHANNEL_AXIS
        and op.valid_length is None
    )


def _is_channelwise(op: Operation) -> bool:
    if isinstance(op, _MOVES):
        return axq.preserves_channel_axis(op)
    return isinstance(op, _ELEMENTWISE + _WINDOWED + _BINARY) or is_depthwise(op)


def padding_pays(value: SSAValue) -> bool:
    """Whether padding `value` at its producer moves fewer bytes than padding at each consumer.

    Padded, every tensor that channel-wise ops derive from `value` is wider: written once and
    read by each user. In exchange, each convolution reading one of them skips its pad copy
    (read the channels, write them padded). Any other consumer needs a slice copy instead."""
    channels = shape_of(value)[CHANNEL_AXIS]
    padded = pword_ceil(channels)
    seen: set[SSAValue] = set()
    stack, cost, saved = [value], 0, 0
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        shape = shape_of(current)
        pixels = prod(shape) // shape[CHANNEL_AXIS]
        cost += pixels * (padded - channels) * (1 + len(list(current.uses)))
        for use in current.uses:
            user = use.operation
            if _is_mvm_consumer(user) and use.index == 0:
                saved += pixels * (channels + padded)
            elif (_is_channelwise(user) or _is_channel_softmax(user)) and all(
                _per_tensor_4d(r) for r in user.results
            ):
                stack.extend(user.results)
            else:
                cost += pixels * (channels + padded)
    return saved > cost


# --------------------------------------------------------------------------- patterns


class PadConvOutputChannels(RewritePattern):
    """A convolution's output channels grow to whole PWORDs with zero weights and bias, where
    that moves fewer bytes than padding at the consumers (`padding_pays`).

        %y = axq.conv2d %x, %w, %b : (..., tensor<40x16x3x3x!q>, tensor<40x!q32>)
            -> tensor<1x40x8x8x!axq.q<i8, 0.05:-3>>
    becomes
        %w64 = axq.constant {...} : tensor<64x16x3x3x!q>   // rows 40..63 zero
        %b64 = axq.constant {...} : tensor<64x!q32>        // entries 40..63 zero
        %p = axq.conv2d %x, %w64, %b64 : (...) -> tensor<1x64x8x8x!axq.q<i8, 0.05:-3>>
        %y = axq.slice %p {starts = [0], ends = [40], axes = [1], steps = [1]}
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is_mvm_consumer(op) or not _per_tensor_4d(op.results[0]):
            return
        assert isinstance(op, (axq.Conv2dOp, axq.ConvTranspose2dOp))
        channels = shape_of(op.result)[CHANNEL_AXIS]
        if channels % PWORD == 0 or not isinstance(op.bias.owner, axq.ConstantOp):
            return
        if not padding_pays(op.result):
            return
        padded = pword_ceil(channels)
        weight = _grown_constant(op.weight, op.WEIGHT_CHANNEL_AXIS, padded)
        bias = _grown_constant(op.bias, 0, padded)
        conv = _rebuilt(op, [op.input, weight.result, bias.result], padded)
        _replace_padded(rewriter, op, [weight, bias, conv], conv)


class SinkSliceThroughChannelwiseOp(RewritePattern):
    """An op that treats channels independently runs on the padded tensor; the slice moves
    after it. Per-channel constants of element-wise ops grow with their zero point.

        %s = axq.slice %p {ends = [40], axes = [1], ...} : tensor<1x64x8x8x!q> -> ...x40x...
        %r = axq.clip %s {...} : tensor<1x40x8x8x!q> -> tensor<1x40x8x8x!q>
    becomes
        %c = axq.clip %p {...} : tensor<1x64x8x8x!q> -> tensor<1x64x8x8x!q>
        %r = axq.slice %c {ends = [40], axes = [1], ...}
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is_channelwise(op) or not all(_per_tensor_4d(r) for r in op.results):
            return
        sources = [padded_source(v) for v in op.operands]
        widths = {shape_of(s)[CHANNEL_AXIS] for s in sources if s is not None}
        if len(widths) != 1:
            return
        (padded,) = widths
        if is_depthwise(op):
            self._depthwise(op, sources[0], padded, rewriter)
            return
        operands, constants = self._operands(op, sources, padded)
        if operands is None:
            return
        new_op = _rebuilt(op, operands, padded)
        _replace_padded(rewriter, op, [*constants, new_op], new_op)

    @staticmethod
    def _operands(op: Operation, sources, padded: int):
        """The padded operands (and the grown constants), or None if one cannot be padded."""
        operands: list[SSAValue] = []
        constants: list[axq.ConstantOp] = []
        for value, source in zip(op.operands, sources, strict=True):
            shape = (1,) * (4 - len(shape_of(value))) + shape_of(value)
            if source is not None:
                operands.append(source)
            elif not isinstance(op, _BINARY) or not isinstance(value.owner, axq.ConstantOp):
                return None, []
            elif shape[CHANNEL_AXIS] == 1:
                operands.append(value)
            else:  # a channel axis of its own (a rank < 3 constant broadcasts as 1 there)
                axis = CHANNEL_AXIS - (4 - len(shape_of(value)))
                qtype = element_type(value)
                assert isinstance(qtype, QuantizedType)
                grown = _grown_constant(value, axis, padded, fill=qtype.zero_point)
                constants.append(grown)
                operands.append(grown.result)
        return operands, constants

    @staticmethod
    def _depthwise(op: Operation, source: SSAValue | None, padded: int, rewriter) -> None:
        assert isinstance(op, axq.Conv2dOp)
        if source is None or not all(
            isinstance(v.owner, axq.ConstantOp) for v in (op.weight, op.bias)
        ):
            return
        weight = _grown_constant(op.weight, 0, padded)
        bias = _grown_constant(op.bias, 0, padded)
        conv = _rebuilt(
            op, [source, weight.result, bias.result], padded, group=axq.int_attr(padded)
        )
        _replace_padded(rewriter, op, [weight, bias, conv], conv)


class AbsorbSliceIntoConv(RewritePattern):
    """A convolution reads the padded tensor through zero weights on the padded channels.

        %s = axq.slice %p {ends = [40], axes = [1], ...} : tensor<1x64x8x8x!q> -> ...x40x...
        %y = axq.conv2d %s, %w, %b : (..., tensor<32x40x3x3x!q>, ...) -> ...
    becomes
        %w64 = axq.constant {...} : tensor<32x64x3x3x!q>   // input channels 40..63 zero
        %y = axq.conv2d %p, %w64, %b : (..., tensor<32x64x3x3x!q>, ...) -> ...
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _is_mvm_consumer(op):
            return
        assert isinstance(op, (axq.Conv2dOp, axq.ConvTranspose2dOp))
        source = padded_source(op.input)
        if source is None:
            return
        input_axis = 1 - op.WEIGHT_CHANNEL_AXIS  # OIHW for conv2d, IOHW for conv_transpose2d
        weight = _grown_constant(op.weight, input_axis, shape_of(source)[CHANNEL_AXIS])
        conv = type(op).create(
            operands=[source, weight.result, op.bias],
            result_types=[op.result.type],
            properties=dict(op.properties),
            attributes=dict(op.attributes),
        )
        rewriter.replace(op, [weight, located(conv, op.location)])


@dataclass
class MaskSoftmaxChannels(RewritePattern):
    """A softmax over channels runs on the padded tensor with its padded lanes set to the
    neutral value, whose exponential is 0.

        %s = axq.slice %p {ends = [40], axes = [1], ...} : tensor<1x64x8x8x!q> -> ...x40x...
        %y = axq.softmax %s {axis = 1} : tensor<1x40x8x8x!q> -> tensor<1x40x8x8x!q>
    becomes
        %m = axq.softmax %p {axis = 1, valid_length = 40, neutral_value = -1.0e5}
            : tensor<1x64x8x8x!q> -> tensor<1x64x8x8x!q>
        %y = axq.slice %m {ends = [40], axes = [1], ...}
    """

    softmax_neutral_value: float

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.SoftmaxOp, rewriter: PatternRewriter) -> None:
        source = padded_source(op.input)
        if source is None or not _is_channel_softmax(op):
            return
        channels = shape_of(op.input)[CHANNEL_AXIS]
        padded = shape_of(source)[CHANNEL_AXIS]
        softmax = axq.SoftmaxOp(
            source,
            _with_channels(op.result.type, padded),
            CHANNEL_AXIS,
            valid_length=channels,
            neutral_value=self.softmax_neutral_value,
        )
        _replace_padded(rewriter, op, [softmax], softmax)


@dataclass(frozen=True)
class ApplyPwordPaddingPass(AipucPass):
    """Pads channels to PWORD multiples at convolutions, sinks the slices to the consumers."""

    name = "apply-pword-padding"

    softmax_neutral_value: float = -100000.0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier(
            [
                PadConvOutputChannels(),
                SinkSliceThroughChannelwiseOp(),
                AbsorbSliceIntoConv(),
                MaskSoftmaxChannels(self.softmax_neutral_value),
            ]
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
        erase_dead_constants(op)
