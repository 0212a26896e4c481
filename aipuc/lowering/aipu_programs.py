"""`aipu-programs`: the buffers that hold the DPU programs, sized and placed in their home.

A DPU layer's tiles share one program buffer (mem-bufferize). Once registers are
allocated (aipu-dpu-regalloc, which may add spill code) the program's length is final;
this pass gives the buffer exactly that many micro-op words, in the memory that
`dpu_instructions_home` names ('default': DDR with the weights; 'l2': L2, nearer the
cores). The emitter writes the encoded programs there and the ELF holds them as
instruction sections at those addresses:

    %p = mem.buffer @ddr size 576 ...             %p = mem.buffer @l2 size 640 ...
    aipu.dpu program(%p : ...) { 20 micro-ops }   aipu.dpu program(%p : ...) { 20 micro-ops }
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, i8
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import aipu, mem
from aipuc.hardware import AIPU, MemorySpace
from aipuc.lowering.mem_pools import pool_name
from aipuc.runtime.sim.isa import MICRO_OP_BYTES

INSTRUCTION_HOMES = {"default": MemorySpace.DDR, "l2": MemorySpace.L2}


@dataclass(frozen=True)
class AipuProgramsPass(ModulePass):
    name = "aipu-programs"

    dpu_instructions_home: str = "default"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        space = INSTRUCTION_HOMES[self.dpu_instructions_home]
        lengths: dict[mem.BufferOp, int] = {}
        for task in op.walk():
            if isinstance(task, aipu.DpuOp) and task.program is not None:
                buffer = mem.root_buffer(task.program)
                words = len(task.body.block.ops)
                lengths[buffer] = max(lengths.get(buffer, 0), words)
        for old, words in lengths.items():
            buffer_type = mem.BufferType([words * MICRO_OP_BYTES], i8, space)
            size = -(-buffer_type.nbytes // AIPU.pword_bytes) * AIPU.pword_bytes
            new = mem.BufferOp(pool_name(space), buffer_type, size=size)
            Rewriter.insert_op(new, InsertPoint.before(old))
            old.buffer.replace_all_uses_with(new.buffer)
            Rewriter.erase_op(old)
