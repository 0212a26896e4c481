"""`aipu-fuse-eltwise`: chains of DPU layers become one program, intermediates in registers.

An `aipu.eltwise` layer whose result only feeds other eltwise layers of one group, with the
same shape, is fused into them: its micro-ops join the group's program and its result
stays in a register instead of a round trip through memory (a store, a DMA out and back,
a load). The register holds exactly the codes the store would have written (a program
yields int8 codes or int32 values in range), so the fused program computes the same bits.

    %y = aipu.eltwise(%x) ... {lut %x, %t1; yield}
    %z = aipu.eltwise(%y, %x) ... {^bb0(%a, %b): ... %s = add ...; yield %s}
becomes
    %z = aipu.eltwise(%x) ... {^bb0(%b): %a = lut %b, %t1; ... %s = add ...; yield %s}

The micro-ops keep the order of their layers in the graph. A group reads at most
`DPU_OPERANDS - 1` distinct tensors (a DPU record addresses four tiles, one is the store).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import aipu
from aipuc.passes import AipucPass
from aipuc.runtime.sim.isa import DPU_OPERANDS

MAX_INPUTS = DPU_OPERANDS - 1


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def _external_inputs(group: list[aipu.EltwiseOp]) -> list[SSAValue]:
    results = {member.result for member in group}
    inputs: dict[SSAValue, None] = {}
    for member in group:
        for value in member.inputs:
            if value not in results:
                inputs[value] = None
    return list(inputs)


def _grow(root: aipu.EltwiseOp) -> list[aipu.EltwiseOp]:
    """The largest group of producers that only feed the group, in graph order."""
    group = [root]
    changed = True
    while changed:
        changed = False
        members = set(group)
        for member in list(group):
            for value in member.inputs:
                producer = value.owner
                if (
                    isinstance(producer, aipu.EltwiseOp)
                    and producer not in members
                    and _shape(producer.result) == _shape(root.result)
                    and all(use.operation in members for use in producer.result.uses)
                    and len(_external_inputs([*group, producer])) <= MAX_INPUTS
                ):
                    group.append(producer)
                    members.add(producer)
                    changed = True
    block = root.parent_block()
    assert block is not None
    order = {op: index for index, op in enumerate(block.ops)}
    return sorted(group, key=lambda op: order[op])


def _fuse(group: list[aipu.EltwiseOp]) -> aipu.EltwiseOp:
    """One layer computing the last member of `group` (in graph order) from its inputs."""
    root = group[-1]
    inputs = _external_inputs(group)
    block = Block()
    registers: dict[SSAValue, SSAValue] = {}
    for value in inputs:
        registers[value] = block.insert_arg(aipu.VRegType(), len(block.args))
    for member in group:
        mapping = {
            arg: registers[value]
            for arg, value in zip(member.body.block.args, member.inputs, strict=True)
        }
        for micro in member.body.block.ops:
            if isinstance(micro, aipu.DpuYieldOp):
                registers[member.result] = mapping[micro.value]
                if member is root:
                    block.add_op(aipu.DpuYieldOp(mapping[micro.value]))
                continue
            clone = micro.clone(value_mapper=mapping)
            block.add_op(clone)
    fused = aipu.EltwiseOp(inputs, root.result.type, Region(block))
    fused.location = root.location
    return fused


@dataclass(frozen=True)
class AipuFuseEltwisePass(AipucPass):
    name = "aipu-fuse-eltwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for main in (o for o in op.ops if isinstance(o, func.FuncOp)):
            for layer in reversed(list(main.body.block.ops)):
                if not isinstance(layer, aipu.EltwiseOp) or layer.parent is None:
                    continue
                group = _grow(layer)
                if len(group) == 1:
                    continue
                fused = _fuse(group)
                Rewriter.insert_op(fused, InsertPoint.before(layer))
                layer.result.replace_all_uses_with(fused.result)
                for member in reversed(group):
                    Rewriter.erase_op(member)
