"""`aipu-dpu-constants`: the home of the constants only DPU layers read.

LUTs, requantization and exp tables, and per-channel operands of `aipu.eltwise` programs
live where `dpu_constants_home` says (DDR or L2); each DPU layer stages them into L1 once.

    %t = aipu.const {value = dense<...> : tensor<256xi8>} : tensor<256xi8>
becomes (dpu_constants_home = global.l2)
    %t = aipu.const {value = dense<...>, home = #mem<space global.l2>, pinned} : tensor<256xi8>

mem-promote leaves pinned constants in their home.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, UnitAttr

from aipuc.dialects import aipu
from aipuc.dialects.mem import MemorySpaceAttr
from aipuc.hardware import MemorySpace
from aipuc.passes import AipucPass


def _read_by_dpu_only(const: aipu.ConstOp) -> bool:
    users = [use.operation for use in const.result.uses]
    layers = []
    for user in users:
        layer = user if isinstance(user, aipu.EltwiseOp) else user.parent_op()
        layers.append(layer)
    return bool(users) and all(isinstance(layer, aipu.EltwiseOp) for layer in layers)


@dataclass(frozen=True)
class AipuDpuConstantsPass(AipucPass):
    name = "aipu-dpu-constants"

    dpu_constants_home: str = "global.l2"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        home = MemorySpaceAttr(MemorySpace(self.dpu_constants_home))
        for const in op.walk():
            if isinstance(const, aipu.ConstOp) and _read_by_dpu_only(const):
                const.home = home
                const.pinned = UnitAttr()
