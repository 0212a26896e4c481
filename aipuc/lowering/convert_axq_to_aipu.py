"""`convert-axq-to-aipu`: every accelerated axq op onto its unit, as layers on device tensors.

Convolutions and dense layers go to the MVM (`aipu.conv`), depthwise convolutions and
pooling to the DWPU (`aipu.pool`), element-wise ops, tables, requantization and softmax to
the DPU (`aipu.eltwise`), data movement to the DMA (`aipu.move`). Host ops, the graph's
quantize/dequantize and their constants stay: they run on the host between accelerated
segments. Options are the unit-mapping fields of the CompilerConfig:

    xdsl-opt model.mlir -p 'convert-axq-to-aipu{enable_icr=false,mvm_utilization_limit=0.5}'

Layouts: a first walk gives every quantized tensor a device layout. 4-D tensors that meet
a spatial op (convolution, pooling, resize) are NHWC; tensors of attention (matmul,
softmax over the last axis) keep their logical order; element-wise ops and the copies of
concat, split, slice and pad share their operands' layout (one union-find group per chain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, i8
from xdsl.ir import Block, Operation, SSAValue
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import is_quantized, shape_of
from aipuc.errors import CompilationError
from aipuc.lowering import layout
from aipuc.lowering.conversion.common import HOST_SIDE, Conversion, UnitOptions, describe
from aipuc.lowering.conversion.dpu import dpu_patterns
from aipuc.lowering.conversion.dwpu import (
    AvgPoolToDwpu,
    DepthwiseToDwpu,
    GlobalPoolToDwpu,
    MaxPoolToDwpu,
)
from aipuc.lowering.conversion.moves import MovesToDma
from aipuc.lowering.conversion.mvm import (
    ConvToMvm,
    ConvTransposeToMvm,
    DenseToMvm,
    MatMulToMvm,
)
from aipuc.lowering.conversion.resize import LinearResizeToDpu
from aipuc.passes import AipucPass

_SPATIAL = (
    axq.Conv2dOp,
    axq.MaxPoolOp,
    axq.AvgPoolOp,
    axq.GlobalPoolOp,
    axq.ResizeOp,
    axq.ConvTranspose2dOp,
)
_ROW_MAJOR = (axq.MatMulOp, axq.SoftmaxOp)
_SAME_LAYOUT = (
    axq.AddOp,
    axq.SubOp,
    axq.MulOp,
    axq.PReluOp,
    axq.MaxOp,
    axq.MinOp,
    axq.LutOp,
    axq.ClipOp,
    axq.RequantizeOp,
    # copies along any axes: keeping their neighbours' layout saves two transposes
    axq.ConcatOp,
    axq.SplitOp,
    axq.SliceOp,
    axq.PadOp,
)


def assign_layouts(
    main: func.FuncOp, host_transposes: bool = True
) -> dict[SSAValue, tuple[int, ...]]:
    """The device layout (`perm`) of every quantized tensor of @main. Unless
    `host_transposes`, tensors coming from the host enter in their logical layout."""
    parent: dict[SSAValue, SSAValue] = {}

    def find(value: SSAValue) -> SSAValue:
        parent.setdefault(value, value)
        while parent[value] is not value:
            parent[value] = parent[parent[value]]
            value = parent[value]
        return value

    nhwc_seeds, row_seeds = set(), set()
    for op in main.body.block.ops:
        values = [v for v in (*op.operands, *op.results) if is_quantized(v)]
        if isinstance(op, _SPATIAL):
            nhwc_seeds.update(v for v in values if len(shape_of(v)) == 4)
        elif isinstance(op, _ROW_MAJOR):
            row_seeds.update(values)
        if isinstance(op, _SAME_LAYOUT):
            for value in values[1:]:
                if len(shape_of(value)) == len(shape_of(values[0])):
                    parent[find(value)] = find(values[0])
    nhwc_roots = {find(v) for v in nhwc_seeds}
    layouts = {}
    values = {v for op in main.body.block.ops for v in (*op.operands, *op.results)}
    values.update(main.body.block.args)
    for value in values:
        if not is_quantized(value):
            continue
        rank = len(shape_of(value))
        spatial = rank == 4 and find(value) in nhwc_roots and value not in row_seeds
        from_host = isinstance(value.owner, (*HOST_SIDE, Block))
        if from_host and not host_transposes:
            spatial = False
        layouts[value] = layout.NHWC if spatial else layout.identity(rank)
    _heads_token_major(main, layouts)
    return layouts


def _heads_token_major(main: func.FuncOp, layouts: dict[SSAValue, tuple[int, ...]]) -> None:
    """Attention heads between a head split or merge (a transpose [.., T, H, D] <-> [.., H,
    T, D] of a tensor in its logical order) and the matmuls stay token-major: the transpose
    moves nothing and the matmul's MVMs read or write each head through a strided view."""

    def heads(value: SSAValue, partner: type[Operation]) -> bool:
        shape, users = shape_of(value), [use.operation for use in value.uses]
        return (
            is_quantized(value)
            and len(shape) >= 3
            and math.prod(shape[:-3]) == 1
            and layouts[value] == layout.identity(len(shape))
            and bool(users)
            and all(isinstance(user, partner) for user in users)
        )

    def swaps_heads(op: Operation) -> bool:
        if not isinstance(op, axq.TransposeOp):
            return False
        rank = len(shape_of(op.result))
        return (
            rank >= 3
            and tuple(op.perm.get_values()) == layout.token_major(rank)
            and layouts.get(op.input) == layout.identity(rank)
        )

    for op in main.body.block.ops:
        if swaps_heads(op) and heads(op.result, axq.MatMulOp):
            layouts[op.result] = layout.token_major(len(shape_of(op.result)))
        elif isinstance(op, axq.MatMulOp) and heads(op.result, axq.TransposeOp):
            if all(swaps_heads(use.operation) for use in op.result.uses):
                layouts[op.result] = layout.token_major(len(shape_of(op.result)))


@dataclass(frozen=True)
class ConvertAxqToAipuPass(AipucPass):
    """Unit mapping: axq ops to MVM, DWPU, DPU and DMA layers (see the module docstring)."""

    name = "convert-axq-to-aipu"

    enable_icr: bool = True
    icrx_force: int = -1
    icrx_parallel_block_threshold: int = 4
    icrx_max_factor: int = 8
    enable_swicr: bool = True
    mvm_utilization_limit: float = 1.0
    remove_io_padding_and_layout_transform: bool = True
    """True: the host transposes the segments' inputs and outputs into and out of their
    device layouts (the layout is in the compiled program) and crops outputs whose channels
    the device padded; false: the device does both, with DMA moves, and takes and gives
    tensors in ONNX's logical layout and shape."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        main = next(o for o in op.ops if isinstance(o, func.FuncOp))
        options = UnitOptions(
            self.enable_icr,
            self.icrx_force,
            self.icrx_parallel_block_threshold,
            self.icrx_max_factor,
            self.enable_swicr,
            self.mvm_utilization_limit,
        )
        host_transposes = self.remove_io_padding_and_layout_transform
        conv = Conversion(assign_layouts(main, host_transposes), options, host_transposes)
        patterns = [
            ConvToMvm(conv),
            MatMulToMvm(conv),
            ConvTransposeToMvm(conv),
            DenseToMvm(conv),
            DepthwiseToDwpu(conv),
            MaxPoolToDwpu(conv),
            AvgPoolToDwpu(conv),
            GlobalPoolToDwpu(conv),
            MovesToDma(conv),
            LinearResizeToDpu(conv),
            *dpu_patterns(conv),
        ]
        PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns), apply_recursively=False
        ).rewrite_module(op)
        _check_converted(main)
        _erase_dead_exits(main)
        if not host_transposes:
            _leave_in_logical_layout(main)


def _check_converted(main: func.FuncOp) -> None:
    left = [
        o
        for o in main.body.block.ops
        if isinstance(o, Operation) and o.dialect_name() == "axq" and not isinstance(o, HOST_SIDE)
    ]
    if left:
        listed = "; ".join(describe(o) for o in left[:5])
        raise CompilationError(
            f"{len(left)} op(s) have no mapping onto the AIPU units: {listed}; the legalization "
            "should have moved them to the host"
        )


def _erase_dead_exits(main: func.FuncOp) -> None:
    """`aipu.from_device` ops that only fed other layers, and constants nobody reads."""
    for o in reversed(list(main.body.block.ops)):
        if (
            isinstance(o, (aipu.FromDeviceOp, axq.ConstantOp, aipu.ConstOp))
            and not o.results[0].uses
        ):
            o.detach()
            o.erase()


def _leave_in_logical_layout(main: func.FuncOp) -> None:
    """Each tensor the host reads leaves the device in its logical layout: a DMA transpose.

        %y = aipu.from_device %yd {perm = [0, 2, 3, 1]} : tensor<1x8x4x4xi8> -> ...
    becomes
        %t = aipu.move %yd ... : tensor<1x4x4x8xi8> -> tensor<1x8x4x4xi8>
        %y = aipu.from_device %t {perm = [0, 1, 2, 3]} : tensor<1x8x4x4xi8> -> ...
    """
    for leave in [o for o in main.body.block.ops if isinstance(o, aipu.FromDeviceOp)]:
        perm = tuple(leave.perm.get_values())
        shape = shape_of(leave.result)
        identity = layout.identity(len(shape))
        if perm == identity:
            continue
        copies = layout.transpose_copies(shape, perm, identity, identity)
        move = aipu.MoveLayerOp(
            [leave.input],
            TensorType(i8, shape),
            [(0, *c.as_tuple()) for c in copies],
            None,
        )
        logical = aipu.FromDeviceOp(move.results[0], identity, leave.result.type)
        for new_op in (move, logical):
            new_op.location = leave.location
        Rewriter.insert_op([move, logical], InsertPoint.after(leave))
        leave.result.replace_all_uses_with(logical.result)
        Rewriter.erase_op(leave)
