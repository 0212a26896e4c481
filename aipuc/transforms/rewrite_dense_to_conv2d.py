"""`rewrite-dense-to-conv2d`: dense layers become 1x1 convolutions (config field
`rewrite_dense_to_conv2d`).

The MVM runs convolutions; a dense layer is the 1x1 convolution whose batch is the rows of
its input. The reshapes around the convolution only add or drop axes of size 1 around the
channel axis, so they move no data. A dense layer on several batches of tokens ([B, N, C]
with B > 1) stays as it is: its rows would merge two axes, which validate-operators does not
accept as a layout-free reshape. Dense and conv2d have the same integer semantics
(sum of products plus bias, requantized per output channel; weights per output channel on
axis 0), so the pass gives the same codes whether it runs before or after quantization;
the pipeline runs it on the float graph, before calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from aipuc.dialects import axq
from aipuc.dialects.axq import QuantizedType, element_type, shape_of
from aipuc.dialects.tensors import dense_from_numpy, tensor_type
from aipuc.frontend.support import is_layout_free_reshape
from aipuc.passes import AipucPass
from aipuc.transforms.common import erase_dead_constants, located


def _kernel_of(weight: axq.ConstantOp) -> axq.ConstantOp:
    """The [N, K] weight constant as an [N, K, 1, 1] kernel (same data, same element type)."""
    data = weight.to_numpy()
    kernel_shape = (*data.shape, 1, 1)
    kernel = axq.ConstantOp(
        dense_from_numpy(data.reshape(kernel_shape), weight.value.get_element_type()),
        tensor_type(kernel_shape, element_type(weight.result)),
    )
    return located(kernel, weight.location)  # type: ignore[return-value]


def _is_per_axis(value: SSAValue) -> bool:
    """Quantized per axis: along a dense layer's last axis, which is not a conv's channel axis."""
    qtype = element_type(value)
    return isinstance(qtype, QuantizedType) and qtype.is_per_axis


class DenseToConv2d(RewritePattern):
    """A dense layer as a 1x1 convolution over its rows.

        %y = axq.dense %x, %w, %b : (tensor<4x16xf32>, tensor<8x16xf32>, tensor<8xf32>)
            -> tensor<4x8xf32>
    becomes
        %k = axq.constant {value = ...} : tensor<8x16x1x1xf32>
        %x4 = axq.reshape %x : tensor<4x16xf32> -> tensor<4x16x1x1xf32>
        %y4 = axq.conv2d %x4, %k, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>,
            dilations = array<i64: 1, 1>, group = 1 : i64}
            : (tensor<4x16x1x1xf32>, tensor<8x16x1x1xf32>, tensor<8xf32>) -> tensor<4x8x1x1xf32>
        %y = axq.reshape %y4 : tensor<4x8x1x1xf32> -> tensor<4x8xf32>
    """

    def __init__(self) -> None:
        self.kernels: dict[axq.ConstantOp, SSAValue] = {}

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.DenseOp, rewriter: PatternRewriter) -> None:
        weight = op.weight.owner
        if not isinstance(weight, axq.ConstantOp) or _is_per_axis(op.result):
            return
        in_shape = shape_of(op.input)
        if not is_layout_free_reshape(in_shape, (prod(in_shape[:-1]), in_shape[-1], 1, 1)):
            return  # several batches of tokens: the dense layer stays (the MVM runs it as is)
        if weight not in self.kernels:  # one kernel per weight, next to it
            kernel_op = rewriter.insert(_kernel_of(weight), InsertPoint.after(weight))
            self.kernels[weight] = kernel_op.result
        kernel = self.kernels[weight]
        out_shape = shape_of(op.result)
        rows = prod(in_shape[:-1])
        x = axq.ReshapeOp(op.input, tensor_type((rows, in_shape[-1], 1, 1), element_type(op.input)))
        conv = axq.Conv2dOp(
            x.result,
            kernel,
            op.bias,
            tensor_type((rows, out_shape[-1], 1, 1), element_type(op.result)),
        )
        y = axq.ReshapeOp(conv.result, op.result.type)
        for new_op in (x, conv, y):
            located(new_op, op.location)
        rewriter.replace(op, [x, conv, y])


@dataclass(frozen=True)
class RewriteDenseToConv2dPass(AipucPass):
    """Every dense layer with a constant weight becomes a 1x1 conv2d between reshapes."""

    name = "rewrite-dense-to-conv2d"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(DenseToConv2d(), apply_recursively=False).rewrite_module(op)
        erase_dead_constants(op)
