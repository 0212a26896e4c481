"""Element-wise ops, tables, requantization, softmax and LayerNorm onto the DPU.

Each becomes an `aipu.eltwise` layer whose micro-op program repeats the integer
reference's formula step by step, with the same fixed-point parameters
(`integer_reference.requant_parameters`, `add_rescales`), so the DPU computes the same codes:

    %z = axq.add %a, %b : (..0.02:3.., ..0.05:-7..) -> ..0.06:-2..
becomes
    %zd = aipu.eltwise(%ad, %bd) : (tensor<1x8x8x64xi8>, ...) -> tensor<1x8x8x64xi8> {
    ^bb0(%a: !aipu.vreg, %b: !aipu.vreg):
      %a1 = aipu.dpu.addi %a, -3
      %a2 = aipu.dpu.shli %a1, 20
      %a3 = aipu.dpu.rescale %a2 multiplier 1717986918 shift 32
      ... the same for %b ...
      %s = aipu.dpu.add %a3, %b3
      %q = aipu.dpu.requant %s multiplier 1431655765 shift 51 zero_point -2
      aipu.dpu.yield %q
    }
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import TensorType, i8
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from aipuc import numerics
from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import QuantizedType, shape_of
from aipuc.dialects.tensors import numpy_from_dense
from aipuc.errors import CompilationError
from aipuc.lowering import layout
from aipuc.lowering.conversion.common import (
    Conversion,
    describe,
    fixed_point,
    int_table,
    qtype,
    scales,
    zero_points,
)
from aipuc.runtime.integer_reference import ADD_LEFT_SHIFT, add_rescales, code_of


class Program:
    """Builds one eltwise layer: its inputs (broadcast to the result) and micro-ops."""

    def __init__(
        self,
        conv: Conversion,
        rewriter: PatternRewriter,
        at: Operation,
        result_shape: Sequence[int] | None = None,
    ):
        """A program for `at`'s result, or for an intermediate of `result_shape` (logical)
        in the result's layout."""
        self.conv, self.rewriter, self.at = conv, rewriter, at
        self.block = Block()
        self.inputs: list[SSAValue] = []
        self.result_shape = tuple(result_shape or shape_of(at.results[0]))
        self.perm = conv.perm(at.results[0])

    # ------------------------------------------------------------------ inputs

    def load(self, value: SSAValue) -> SSAValue:
        """The register of a logical operand broadcast to the result's shape and layout."""
        rank = len(self.result_shape)
        shape = (1,) * (rank - len(shape_of(value))) + tuple(shape_of(value))
        target = TensorType(i8, layout.physical_shape(shape, self.perm))
        if isinstance(value.owner, axq.ConstantOp):
            codes = numpy_from_dense(value.owner.value).reshape(shape)
            device = self.conv.constant(np.transpose(codes, self.perm), self.rewriter)
        elif len(shape_of(value)) == rank:
            device = self.conv.relayout(value, self.perm, self.rewriter, self.at)
        else:
            device = self.conv.device(value, self.rewriter)
            kept = [d for d in shape_of(value) if d != 1]
            if kept != [d for d in target.get_shape() if d != 1]:
                raise CompilationError(
                    f"{describe(self.at)}: operand {list(shape_of(value))} does not broadcast "
                    "in the device layout"
                )
            reinterpret = aipu.ReinterpretOp(device, target)
            device = self.conv.emit(reinterpret, self.rewriter, self.at).results[0]
        return self.argument(device)

    def argument(self, device: SSAValue) -> SSAValue:
        self.inputs.append(device)
        return self.block.insert_arg(aipu.VRegType(), len(self.block.args))

    def channel_vector(self, values: np.ndarray) -> SSAValue:
        """An int32 per-channel input along the innermost axis (per-axis zero points)."""
        shape = [1] * len(self.result_shape)
        shape[-1] = len(values)
        array = np.asarray(values, np.int32).reshape(shape)
        return self.argument(self.conv.constant(array, self.rewriter))

    # ------------------------------------------------------------------ micro-ops

    def op(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def centred(self, register: SSAValue, type_: QuantizedType) -> SSAValue:
        """q - zero_point, per tensor or per channel."""
        if not type_.is_per_axis:
            return self.op(aipu.DpuAddImmOp(register, -type_.zero_point))
        self._check_channel_axis(type_)
        return self.op(aipu.DpuAddOp(register, self.channel_vector(-type_.zero_point_array())))

    def requantized(self, register: SSAValue, real, out_type: QuantizedType) -> SSAValue:
        """`integer_reference.requantize_to(acc, real, out_type)`."""
        channels = self.result_shape[out_type.axis_index] if out_type.is_per_axis else 1
        real = np.broadcast_to(np.asarray(real, np.float64).reshape(-1), (channels,))
        multiplier, shift = fixed_point(real)
        out_zp = zero_points(out_type, channels)
        if channels == 1 or (np.all(real == real[0]) and np.all(out_zp == out_zp[0])):
            return self.op(
                aipu.DpuRequantOp(register, int(multiplier[0]), int(shift[0]), int(out_zp[0]))
            )
        self._check_channel_axis(out_type)
        table = self.conv.constant(
            int_table(np.stack([multiplier, shift, out_zp], axis=1)), self.rewriter
        )
        return self.op(aipu.DpuRequantTableOp(register, table))

    def _check_channel_axis(self, type_: QuantizedType) -> None:
        if self.perm[-1] != type_.axis_index:
            raise CompilationError(
                f"{describe(self.at)}: per-channel quantization along axis {type_.axis_index} "
                "needs that axis innermost on the device"
            )

    def build(self, result: SSAValue, element=i8) -> SSAValue:
        """The eltwise layer yielding `result`; its device tensor."""
        self.block.add_op(aipu.DpuYieldOp(result))
        result_type = TensorType(element, layout.physical_shape(self.result_shape, self.perm))
        layer = aipu.EltwiseOp(self.inputs, result_type, Region(self.block))
        return self.conv.emit(layer, self.rewriter, self.at).results[0]

    def finish(self, result: SSAValue) -> None:
        self.conv.finish(self.at, [self.build(result)], self.rewriter)


class _DpuPattern(RewritePattern):
    def __init__(self, conv: Conversion):
        self.conv = conv

    def program(self, op: Operation, rewriter: PatternRewriter) -> Program:
        return Program(self.conv, rewriter, op)


class AddSubToDpu(_DpuPattern):
    """add/sub: both operands to a common scale (<< 20, rescaled), summed, requantized."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, (axq.AddOp, axq.SubOp)):
            return
        a_type, b_type, out_type = qtype(op.lhs), qtype(op.rhs), qtype(op.result)
        p = self.program(op, rewriter)
        lhs_real, rhs_real, out_real = add_rescales(
            a_type, b_type, out_type, len(shape_of(op.result))
        )
        terms = []
        for value, type_, real in ((op.lhs, a_type, lhs_real), (op.rhs, b_type, rhs_real)):
            register = p.centred(p.load(value), type_)
            register = p.op(aipu.DpuShiftLeftOp(register, ADD_LEFT_SHIFT))
            multiplier, shift = fixed_point(real)
            terms.append(p.op(aipu.DpuRescaleOp(register, int(multiplier), int(shift))))
        combine = aipu.DpuAddOp if isinstance(op, axq.AddOp) else aipu.DpuSubOp
        total = p.op(combine(*terms))
        p.finish(p.requantized(total, np.ravel(out_real), out_type))


class MulToDpu(_DpuPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.MulOp, rewriter: PatternRewriter) -> None:
        a_type, b_type, out_type = qtype(op.lhs), qtype(op.rhs), qtype(op.result)
        p = self.program(op, rewriter)
        product = p.op(
            aipu.DpuMulOp(p.centred(p.load(op.lhs), a_type), p.centred(p.load(op.rhs), b_type))
        )
        channels = shape_of(op.result)[out_type.axis_index] if out_type.is_per_axis else 1
        real = a_type.scale * b_type.scale / scales(out_type, channels)
        p.finish(p.requantized(product, real, out_type))


class PReluToDpu(_DpuPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.PReluOp, rewriter: PatternRewriter) -> None:
        x_type, slope_type, out_type = qtype(op.lhs), qtype(op.rhs), qtype(op.result)
        p = self.program(op, rewriter)
        x = p.centred(p.load(op.lhs), x_type)
        slope = p.centred(p.load(op.rhs), slope_type)
        channels = shape_of(op.result)[out_type.axis_index] if out_type.is_per_axis else 1
        out_scales = scales(out_type, channels)
        positive = p.requantized(x, x_type.scale / out_scales, out_type)
        negative = p.requantized(
            p.op(aipu.DpuMulOp(x, slope)), x_type.scale * slope_type.scale / out_scales, out_type
        )
        p.finish(p.op(aipu.DpuSelectOp(x, positive, negative)))


class LutToDpu(_DpuPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.LutOp, rewriter: PatternRewriter) -> None:
        assert op.table is not None
        p = self.program(op, rewriter)
        table = self.conv.constant(numpy_from_dense(op.table).astype(np.int8), rewriter)
        p.finish(p.op(aipu.DpuLutOp(p.load(op.input), table)))


class ClipToDpu(_DpuPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ClipOp, rewriter: PatternRewriter) -> None:
        type_ = qtype(op.input)
        if type_.is_per_axis:
            raise CompilationError(f"{describe(op)}: a per-channel clip is not supported")
        low = int(code_of(op.min.value.data, type_, 0))
        high = int(code_of(op.max.value.data, type_, 0))
        p = self.program(op, rewriter)
        p.finish(p.op(aipu.DpuClampOp(p.load(op.input), low, high)))


class RequantizeToDpu(_DpuPattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.RequantizeOp, rewriter: PatternRewriter) -> None:
        in_type, out_type = qtype(op.input), qtype(op.result)
        p = self.program(op, rewriter)
        axis = next((t.axis_index for t in (in_type, out_type) if t.is_per_axis), None)
        channels = 1 if axis is None else shape_of(op.result)[axis]
        real = scales(in_type, channels) / scales(out_type, channels)
        p.finish(p.requantized(p.centred(p.load(op.input), in_type), real, out_type))


class SoftmaxToDpu(_DpuPattern):
    """`numerics.softmax_int8` step by step, over the innermost axis in float18."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.SoftmaxOp, rewriter: PatternRewriter) -> None:
        in_type, out_type = qtype(op.input), qtype(op.result)
        rank = len(shape_of(op.result))
        axis = op.axis.value.data % rank
        perm = self.conv.perm(op.result)
        if perm[-1] != axis:
            perm = tuple(a for a in range(rank) if a != axis) + (axis,)
            self.conv.layouts[op.result] = perm
        p = self.program(op, rewriter)
        x = p.op(aipu.DpuIntToFloatOp(p.centred(p.load(op.input), in_type)))
        if op.valid_length is not None and op.neutral_value is not None:
            x = self._masked(p, x, op, in_type)
        shifted = p.op(aipu.DpuFloatAddOp(x, p.op(aipu.DpuFloatNegOp(p.op(aipu.DpuRowMaxOp(x))))))
        table = self.conv.constant(
            numerics.softmax_exp_table(in_type.scale).astype(np.float32), rewriter
        )
        e = p.op(aipu.DpuExpLutOp(p.op(aipu.DpuFloatNegOp(shifted)), table))
        inverse = numerics.to_float18(1 / np.float64(out_type.scale))
        t = p.op(
            aipu.DpuFloatMulOp(
                p.op(aipu.DpuFloatReciprocalOp(p.op(aipu.DpuRowSumOp(e)))),
                p.op(aipu.DpuFloatConstantOp(float(inverse))),
            )
        )
        p.finish(p.op(aipu.DpuFloatToIntOp(p.op(aipu.DpuFloatMulOp(e, t)), out_type.zero_point)))

    @staticmethod
    def _masked(p: Program, x: SSAValue, op: axq.SoftmaxOp, in_type: QuantizedType) -> SSAValue:
        """Padded lanes (from `valid_length` on) read the neutral value in input steps."""
        assert op.valid_length is not None and op.neutral_value is not None
        length = shape_of(op.input)[op.axis.value.data]
        valid = op.valid_length.value.data
        lanes = p.channel_vector(np.where(np.arange(length) < valid, 0, -1))
        neutral = numerics.to_float18(np.float64(op.neutral_value.value.data) / in_type.scale)
        return p.op(aipu.DpuSelectOp(lanes, x, p.op(aipu.DpuFloatConstantOp(float(neutral)))))


class SelectToDpu(_DpuPattern):
    """max/min: the operands have the result's type (the quantizer made them so), so the
    result is the lane-wise maximum or minimum of the codes."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, (axq.MaxOp, axq.MinOp)):
            return
        p = self.program(op, rewriter)
        select = aipu.DpuMaxOp if isinstance(op, axq.MaxOp) else aipu.DpuMinOp
        p.finish(p.op(select(p.load(op.lhs), p.load(op.rhs))))


class LayerNormToDpu(_DpuPattern):
    """`numerics.layer_norm_int8` step by step, over the innermost axis in float18; gamma
    and beta divided by the output scale are float vectors along that axis."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.LayerNormOp, rewriter: PatternRewriter) -> None:
        in_type, out_type = qtype(op.input), qtype(op.result)
        shape = shape_of(op.input)
        rank, axis = len(shape), op.axis.value.data
        if axis != rank - 1:
            raise CompilationError(
                f"{describe(op)}: the DPU normalises over one axis (rows of the innermost "
                f"axis), not axes {list(range(axis, rank))}"
            )
        perm = self.conv.perm(op.result)
        if perm[-1] != axis:
            self.conv.layouts[op.result] = tuple(a for a in range(rank) if a != axis) + (axis,)
        p = self.program(op, rewriter)

        def constant(value) -> SSAValue:
            return p.op(aipu.DpuFloatConstantOp(float(numerics.to_float18(value))))

        def vector(values: SSAValue) -> SSAValue:
            quotient = numpy_from_dense(values.owner.value).astype(np.float64) / out_type.scale  # type: ignore[union-attr]
            table = self.conv.constant(quotient.reshape(-1).astype(np.float32), rewriter)
            return p.op(aipu.DpuFloatVectorOp(table))

        inverse_count = constant(1 / np.float64(shape[axis]))
        x = p.op(aipu.DpuIntToFloatOp(p.centred(p.load(op.input), in_type)))
        mean = p.op(aipu.DpuFloatMulOp(p.op(aipu.DpuRowSumOp(x)), inverse_count))
        d = p.op(aipu.DpuFloatAddOp(x, p.op(aipu.DpuFloatNegOp(mean))))
        squares = p.op(aipu.DpuRowSumOp(p.op(aipu.DpuFloatMulOp(d, d))))
        variance = p.op(aipu.DpuFloatMulOp(squares, inverse_count))
        epsilon = constant(np.float64(op.epsilon.value.data) / np.float64(in_type.scale) ** 2)
        r = p.op(aipu.DpuFloatRsqrtOp(p.op(aipu.DpuFloatAddOp(variance, epsilon))))
        y = p.op(aipu.DpuFloatMulOp(d, r))
        z = p.op(aipu.DpuFloatAddOp(p.op(aipu.DpuFloatMulOp(y, vector(op.scale))), vector(op.bias)))
        p.finish(p.op(aipu.DpuFloatToIntOp(z, out_type.zero_point)))


def dpu_patterns(conv: Conversion) -> Sequence[RewritePattern]:
    return [
        AddSubToDpu(conv),
        MulToDpu(conv),
        PReluToDpu(conv),
        LutToDpu(conv),
        ClipToDpu(conv),
        RequantizeToDpu(conv),
        SoftmaxToDpu(conv),
        SelectToDpu(conv),
        LayerNormToDpu(conv),
    ]
