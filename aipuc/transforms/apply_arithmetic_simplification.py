"""`apply-arithmetic-simplification`: fewer ops for the same arithmetic (config field
`apply_arithmetic_simplification`).

On the float graph (the pipeline runs it before calibration, so the simplified graph is
what gets calibrated and quantized):
- consecutive scalings and shifts by constants become one (`x * a * b` -> `x * (a b)`,
  `x + a - b` -> `x + (a - b)`; division by a constant is already a multiplication);
- identities vanish: `x + 0`, `x - 0`, `x * 1`;
- a per-channel scale or shift after a conv2d or dense layer (an unfolded BatchNorm, a
  layer scale, the bias Add of a Linear exported as MatMul + Add) folds into its weights and
  bias, so the MVM's requantization table applies it;
- a clip of a clip is one clip.

On either graph, exactly: a reshape of a reshape is one reshape (none if it restores the
shape), such as a Flatten before a dense layer that became a 1x1 convolution.

On the integer graph (the pipeline runs it again after `axq-quantize`), exactly: a clip
whose bounds the int8 range of its input already satisfies clamps nothing, so it goes. A
ReLU or ReLU6 after a conv usually is one, because quantization gives the conv the clip's
range (activation fusion); the clip is then fused into the producer's output range.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from aipuc import numerics
from aipuc.dialects import axq
from aipuc.dialects.axq import QuantizedType, element_type, is_quantized, shape_of
from aipuc.dialects.axq_graph import is_f32_tensor
from aipuc.passes import AipucPass
from aipuc.transforms.common import (
    constant_array,
    constant_operand,
    float_constant,
    keeps_shape,
    located,
    only_user,
)

_INT8_MIN, _INT8_MAX = -128, 127


def _shift(op: Operation) -> tuple[SSAValue, np.ndarray] | None:
    """(x, c) for `x + c`, `c + x` or `x - c` (as `x + (-c)`) with a constant c."""
    if isinstance(op, axq.AddOp):
        return constant_operand(op)
    if isinstance(op, axq.SubOp) and (c := constant_array(op.rhs)) is not None:
        if constant_array(op.lhs) is None:
            return op.lhs, -c.astype(np.float64)
    return None


def _float_result(op: Operation) -> bool:
    return len(op.results) == 1 and is_f32_tensor(op.results[0])


class FoldConsecutiveScales(RewritePattern):
    """Two multiplications by constants are one.

        %a = axq.mul %x, %c2 : (tensor<1x8x4x4xf32>, tensor<f32>) -> tensor<1x8x4x4xf32>
        %b = axq.mul %a, %c3 : (tensor<1x8x4x4xf32>, tensor<1x8x1x1xf32>) -> tensor<1x8x4x4xf32>
    becomes
        %c = axq.constant {value = c2 * c3} : tensor<1x8x1x1xf32>
        %b = axq.mul %x, %c : (tensor<1x8x4x4xf32>, tensor<1x8x1x1xf32>) -> tensor<1x8x4x4xf32>
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.MulOp, rewriter: PatternRewriter) -> None:
        outer = constant_operand(op)
        if outer is None or not _float_result(op):
            return
        inner_value, outer_factor = outer
        inner = inner_value.owner
        if not isinstance(inner, axq.MulOp) or only_user(inner_value) is not op:
            return
        found = constant_operand(inner)
        if found is None:
            return
        x, inner_factor = found
        product = inner_factor.astype(np.float64) * outer_factor.astype(np.float64)
        constant = float_constant(product, op.location)
        rewriter.replace(
            op, [constant, located(axq.MulOp(x, constant.result, op.result.type), op.location)]
        )


class FoldConsecutiveShifts(RewritePattern):
    """Two additions (or subtractions) of constants are one.

        %a = axq.add %x, %c1 : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
        %b = axq.sub %a, %c2 : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
    becomes
        %c = axq.constant {value = c1 - c2} : tensor<8xf32>
        %b = axq.add %x, %c : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        outer = _shift(op)
        if outer is None or not _float_result(op):
            return
        inner_value, outer_shift = outer
        inner = inner_value.owner
        if not isinstance(inner, Operation) or only_user(inner_value) is not op:
            return
        found = _shift(inner)
        if found is None:
            return
        x, inner_shift = found
        total = inner_shift.astype(np.float64) + outer_shift.astype(np.float64)
        constant = float_constant(total, op.location)
        rewriter.replace(
            op, [constant, located(axq.AddOp(x, constant.result, op.results[0].type), op.location)]
        )


class RemoveIdentity(RewritePattern):
    """`x + 0`, `x - 0` and `x * 1` are `x` (when the constant does not broadcast x).

        %y = axq.mul %x, %one : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
        func.return %y
    becomes
        func.return %x
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, axq.MulOp):
            found, neutral = constant_operand(op), 1.0
        else:
            found, neutral = _shift(op), 0.0
        if found is None or not _float_result(op):
            return
        x, constant = found
        if np.all(constant == neutral) and keeps_shape(op, x):
            rewriter.replace(op, [], [x])


def _per_channel(constant: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """The constant as one value per channel of `shape` along `axis`, if it is per channel."""
    if constant.ndim > len(shape):
        return None
    aligned = constant.reshape((1,) * (len(shape) - constant.ndim) + constant.shape)
    others = [size for index, size in enumerate(aligned.shape) if index != axis]
    if any(size != 1 for size in others) or aligned.shape[axis] not in (1, shape[axis]):
        return None
    return np.broadcast_to(aligned.reshape(-1), (shape[axis],)).astype(np.float64)


def _layer_behind(y: SSAValue) -> tuple[Operation, axq.ReshapeOp | None, int] | None:
    """(layer, reshape, channel axis of `y`) when `y` is a conv2d or dense output, directly or
    through a reshape whose last axis is the layer's channels: a Linear on [B, T, C] is
    exported as MatMul + Add and rewrite-dense-to-conv2d leaves it a 1x1 conv between reshapes,
    so its bias Add reads the reshape. The reshape keeps each element's channel when the
    channels are the layer's fastest axis (dense; a conv with a 1x1 output)."""
    layer, reshape = y.owner, None
    if isinstance(layer, axq.ReshapeOp):
        reshape, layer = layer, layer.input.owner
        if only_user(reshape.input) is not reshape:
            return None
    if not isinstance(layer, (axq.Conv2dOp, axq.DenseOp)):
        return None
    shape = shape_of(layer.result)
    axis = axq.CHANNEL_AXIS if isinstance(layer, axq.Conv2dOp) else len(shape) - 1
    if reshape is None:
        return layer, None, axis
    if prod(shape[axis + 1 :]) != 1 or shape_of(y)[-1] != shape[axis]:
        return None
    return layer, reshape, len(shape_of(y)) - 1


class FoldChannelAffineIntoWeights(RewritePattern):
    """A per-channel scale or shift of a conv2d or dense output folds into its weights/bias.

        %y = axq.conv2d %x, %w, %b {...} : (...) -> tensor<1x8x4x4xf32>
        %z = axq.mul %y, %s : (tensor<1x8x4x4xf32>, tensor<1x8x1x1xf32>) -> tensor<1x8x4x4xf32>
    becomes
        %w2 = axq.constant {value = w * s[o]} : tensor<8x4x3x3xf32>
        %b2 = axq.constant {value = b * s[o]} : tensor<8xf32>
        %z = axq.conv2d %x, %w2, %b2 {...} : (...) -> tensor<1x8x4x4xf32>
    (`y + t` and `y - t` change the bias only.) Also through a reshape that keeps the channels
    last, such as the bias Add of an exported Linear (MatMul + Add):

        %y = axq.conv2d %x, %w, %b {...} : (...) -> tensor<64x8x1x1xf32>
        %r = axq.reshape %y : tensor<64x8x1x1xf32> -> tensor<1x64x8xf32>
        %z = axq.add %r, %t : (tensor<1x64x8xf32>, tensor<8xf32>) -> tensor<1x64x8xf32>
    becomes
        %b2 = axq.constant {value = b + t} : tensor<8xf32>
        %y2 = axq.conv2d %x, %w, %b2 {...} : (...) -> tensor<64x8x1x1xf32>
        %z = axq.reshape %y2 : tensor<64x8x1x1xf32> -> tensor<1x64x8xf32>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, axq.MulOp):
            found, scaling = constant_operand(op), True
        else:
            found, scaling = _shift(op), False
        if found is None or not _float_result(op):
            return
        y, constant = found
        behind = _layer_behind(y)
        if behind is None or only_user(y) is not op:
            return
        layer, reshape, axis = behind
        weight, bias = constant_array(layer.weight), constant_array(layer.bias)
        values = _per_channel(constant, shape_of(y), axis)
        if weight is None or bias is None or values is None or not keeps_shape(op, y):
            return
        if scaling:
            weight = weight * values.reshape((-1,) + (1,) * (weight.ndim - 1))
            bias = bias * values
        else:
            bias = bias + values
        new_weight = float_constant(weight, layer.weight.owner.location)
        new_bias = float_constant(bias, layer.bias.owner.location)
        new_layer = layer.clone()
        new_layer.operands = [layer.input, new_weight.result, new_bias.result]
        new_ops = [new_weight, new_bias, new_layer]
        if reshape is not None:
            new_ops.append(located(axq.ReshapeOp(new_layer.results[0], y.type), reshape.location))
            rewriter.replace(op, new_ops)
            rewriter.erase(reshape)
        else:
            rewriter.replace(op, new_ops)
        rewriter.erase(layer)


class MergeClips(RewritePattern):
    """A clip of a clip whose ranges overlap is one clip to their intersection.

        %r = axq.clip %x {min = 0.0 : f64, max = inf : f64} : ...
        %y = axq.clip %r {min = 0.0 : f64, max = 6.0 : f64} : ...
    becomes
        %y = axq.clip %x {min = 0.0 : f64, max = 6.0 : f64} : ...
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ClipOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, axq.ClipOp) or not is_f32_tensor(op.result):
            return
        if only_user(inner.result) is not op:
            return
        low = max(inner.min.value.data, op.min.value.data)
        high = min(inner.max.value.data, op.max.value.data)
        if low > high:
            return
        merged = axq.ClipOp(inner.input, op.result.type, low, high)
        rewriter.replace(op, located(merged, op.location))
        rewriter.erase(inner)


class FoldConsecutiveReshapes(RewritePattern):
    """A reshape of a reshape is one reshape, or none if it restores the shape (exact).

        %f = axq.reshape %p : tensor<1x128x1x1xf32> -> tensor<1x128xf32>
        %c = axq.reshape %f : tensor<1x128xf32> -> tensor<1x128x1x1xf32>
    becomes
        %p (its uses read it directly)
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ReshapeOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, axq.ReshapeOp) or only_user(inner.result) is not op:
            return
        if keeps_shape(op, inner.input):
            rewriter.replace(op, [], [inner.input])
        else:
            rewriter.replace(op, located(axq.ReshapeOp(inner.input, op.result.type), op.location))
        rewriter.erase(inner)


def clamps_nothing(op: axq.ClipOp) -> bool:
    """Whether a quantized clip's code bounds, quantize(min) and quantize(max), span int8."""
    qtype = element_type(op.input)
    assert isinstance(qtype, QuantizedType)
    scales, zero_points = qtype.scale_array(), qtype.zero_point_array()
    low = numerics.quantize(np.full(scales.shape, op.min.value.data), scales, zero_points)
    high = numerics.quantize(np.full(scales.shape, op.max.value.data), scales, zero_points)
    return bool(np.all(low == _INT8_MIN) and np.all(high == _INT8_MAX))


class RemoveSaturatedClip(RewritePattern):
    """A quantized clip that clamps no int8 code is its input (exact).

        %y = axq.conv2d ... -> tensor<1x8x4x4x!axq.q<i8, 0.0235:-128>>
        %r = axq.clip %y {min = 0.0 : f64, max = 6.0 : f64} : tensor<1x8x4x4x!axq.q<i8,
            0.0235:-128>> -> tensor<1x8x4x4x!axq.q<i8, 0.0235:-128>>
        func.return %r
    becomes
        func.return %y
    (quantize(0.0) = -128 and quantize(6.0) = 127 in that type: the conv's requantization
    already clamps to [0, 6].)
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ClipOp, rewriter: PatternRewriter) -> None:
        if is_quantized(op.input) and clamps_nothing(op):
            rewriter.replace(op, [], [op.input])


@dataclass(frozen=True)
class ArithmeticSimplificationPass(AipucPass):
    """Folds scalings, shifts, identities, affine ops into layers, redundant clips and
    reshapes."""

    name = "apply-arithmetic-simplification"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier(
            [
                FoldConsecutiveScales(),
                FoldConsecutiveShifts(),
                RemoveIdentity(),
                FoldChannelAffineIntoWeights(),
                MergeClips(),
                FoldConsecutiveReshapes(),
                RemoveSaturatedClip(),
            ]
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
