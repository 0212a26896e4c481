"""What the conversion patterns share: device values, layouts, constants, parameters.

The conversion follows MLIR's dialect-conversion idiom. Each pattern replaces one axq op by
layers on device tensors (physical shapes, int8 codes) and hands the logical result back
through `aipu.from_device`; a consumer's pattern looks through that op to the device value.
Values produced on the host (graph inputs, `axq.quantize`, host ops) enter through
`aipu.to_device`. When every accelerated op is converted, the `from_device` ops that only
fed layers are dead and disappear; the rest are the segments' outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType, TensorType, f32, i8, i32
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.pattern_rewriter import PatternRewriter
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import QuantizedType, element_type, shape_of
from aipuc.dialects.tensors import dense_from_numpy, numpy_from_dense
from aipuc.errors import CompilationError
from aipuc.lowering import layout
from aipuc.runtime.integer_reference import requant_parameters

logger = logging.getLogger("aipuc")


def qtype(value: SSAValue) -> QuantizedType:
    element = element_type(value)
    if not isinstance(element, QuantizedType):
        raise CompilationError(f"the accelerator computes on int8 codes, got {element}")
    return element


def channel_values(values: np.ndarray | float | int, count: int) -> np.ndarray:
    """A per-tensor value repeated, or per-channel values as they are."""
    array = np.atleast_1d(np.asarray(values))
    return np.broadcast_to(array, (count,)) if array.size == 1 else array


def scales(type_: QuantizedType, count: int) -> np.ndarray:
    return channel_values(type_.scale_array(), count).astype(np.float64)


def zero_points(type_: QuantizedType, count: int) -> np.ndarray:
    return channel_values(type_.zero_point_array(), count).astype(np.int64)


def fixed_point(real) -> tuple[np.ndarray, np.ndarray]:
    """The integer reference's (multiplier, shift) of `real`, as int64 arrays."""
    multiplier, shift = requant_parameters(np.asarray(real, np.float64))
    return np.asarray(multiplier, np.int64), np.asarray(shift, np.int64)


def describe(op: Operation) -> str:
    return f"{op.name} at {op.location}"


HOST_SIDE = (axq.HostOp, axq.QuantizeOp, axq.DequantizeOp, axq.ConstantOp, func.ReturnOp)
"""Ops that run on the host (or are constants): the conversion leaves them."""


@dataclass(frozen=True)
class UnitOptions:
    """The unit-mapping fields of the CompilerConfig, as the pass received them."""

    enable_icr: bool = True
    icrx_force: int = -1
    icrx_parallel_block_threshold: int = 4
    icrx_max_factor: int = 8
    enable_swicr: bool = True
    mvm_utilization_limit: float = 1.0


@dataclass
class Conversion:
    """State of one run: the layout of every logical tensor and the device values so far."""

    layouts: dict[SSAValue, tuple[int, ...]]
    options: UnitOptions
    host_io: bool = True
    """`remove_io_padding_and_layout_transform`: the host lays out and crops the IO."""
    entered: dict[SSAValue, SSAValue] = field(default_factory=dict)

    # ------------------------------------------------------------------ layouts and types

    def perm(self, value: SSAValue) -> tuple[int, ...]:
        return self.layouts.get(value, layout.identity(len(shape_of(value))))

    def device_type(self, value: SSAValue) -> TensorType:
        return TensorType(i8, layout.physical_shape(shape_of(value), self.perm(value)))

    # ------------------------------------------------------------------ device values

    def device(self, value: SSAValue, rewriter: PatternRewriter) -> SSAValue:
        """The device tensor holding `value`'s codes in its layout."""
        owner = value.owner
        if isinstance(owner, aipu.FromDeviceOp):
            return owner.input
        if isinstance(owner, axq.ConstantOp):
            codes = numpy_from_dense(owner.value)
            return self.constant(np.transpose(codes, self.perm(value)).astype(np.int8), rewriter)
        if value not in self.entered:
            enter = aipu.ToDeviceOp(value, self.perm(value), self.device_type(value))
            if isinstance(value, BlockArgument):
                Rewriter.insert_op(enter, InsertPoint.at_start(value.block))
            else:
                Rewriter.insert_op(enter, InsertPoint.after(owner))  # type: ignore[arg-type]
            self.entered[value] = enter.result
        return self.entered[value]

    def constant(self, array: np.ndarray, rewriter: PatternRewriter) -> SSAValue:
        op = aipu.ConstOp(dense_from_numpy(np.ascontiguousarray(array)))
        rewriter.insert(op)
        return op.result

    def finish(self, op: Operation, device_values: list[SSAValue], rewriter: PatternRewriter):
        """Replace `op` by the logical view of its results' device values."""
        leaves = []
        for result, value in zip(op.results, device_values, strict=True):
            leave = aipu.FromDeviceOp(value, self.perm(result), result.type)
            leave.location = op.location
            leaves.append(leave)
        rewriter.replace(op, leaves, [leave.result for leave in leaves])
        for result, leave in zip(op.results, leaves, strict=True):
            self.layouts[leave.result] = self.perm(result)

    def emit(self, op: Operation, rewriter: PatternRewriter, at: Operation) -> Operation:
        op.location = at.location
        rewriter.insert(op)
        return op

    # ------------------------------------------------------------------ data movement

    def move(
        self,
        sources: list[SSAValue],
        result_type: TensorType,
        copies: list[tuple[int, layout.Copy]],
        rewriter: PatternRewriter,
        at: Operation,
        fill: int | None = None,
    ) -> SSAValue:
        """A move layer (copies name their source by index), or a reinterpretation when
        the only copy is the identity of a same-size source."""
        total = int(np.prod(result_type.get_shape()))
        if fill is None and len(copies) == 1:
            index, copy = copies[0]
            source = sources[index]
            same_size = int(np.prod(source.type.get_shape())) == total  # type: ignore[attr-defined]
            if same_size and copy.is_identity(total):
                if source.type == result_type:
                    return source
                return self.emit(aipu.ReinterpretOp(source, result_type), rewriter, at).results[0]
        move = aipu.MoveLayerOp(sources, result_type, [(i, *c.as_tuple()) for i, c in copies], fill)
        return self.emit(move, rewriter, at).results[0]

    def relayout(
        self, value: SSAValue, perm: tuple[int, ...], rewriter: PatternRewriter, at: Operation
    ) -> SSAValue:
        """The device tensor of logical `value` stored in layout `perm`."""
        device = self.device(value, rewriter)
        current = self.perm(value)
        if current == tuple(perm):
            return device
        shape = shape_of(value)
        copies = layout.transpose_copies(shape, current, layout.identity(len(shape)), perm)
        result_type = TensorType(i8, layout.physical_shape(shape, perm))
        return self.move([device], result_type, [(0, c) for c in copies], rewriter, at)


def int_table(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.int32)


def float_table(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32)


def eltwise(
    inputs: list[SSAValue],
    result_type: TensorType,
    body: callable,  # type: ignore[valid-type]
) -> aipu.EltwiseOp:
    """An eltwise layer whose program `body(block, args) -> yielded register` builds."""
    block = Block(arg_types=[aipu.VRegType() for _ in inputs])
    result = body(block, list(block.args))
    block.add_op(aipu.DpuYieldOp(result))
    return aipu.EltwiseOp(inputs, result_type, Region(block))


def micro(block: Block, op: Operation) -> SSAValue:
    """Append a micro-op to a program and return its register."""
    block.add_op(op)
    return op.results[0]


def element_types() -> dict[str, Attribute]:
    return {"i8": i8, "i32": i32, "f32": f32}


INT8 = IntegerType(8)
