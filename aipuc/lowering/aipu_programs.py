"""`aipu-programs`: the buffers of the DPU and DWPU programs, sized, in their home.

A DPU layer's tiles share one program buffer (mem-bufferize). Once registers are
allocated (aipu-dpu-regalloc, which may add spill code) the program's length is final;
this pass gives the buffer exactly that many micro-op words, in the memory that
`dpu_instructions_home` names ('default': DDR with the weights; 'l2': L2, nearer the
cores). The tiles of a DWPU layer (same mode, flags and tables) share one DWPU program
word, in `dwpu_instructions_home`. The emitter writes the encoded programs there and the
ELF holds them as instruction sections at those addresses:

    %p = mem.buffer @ddr size 576 ...             %p = mem.buffer @l2 size 640 ...
    aipu.dpu program(%p : ...) { 20 micro-ops }   aipu.dpu program(%p : ...) { 20 micro-ops }
    aipu.dwpu max ins(...) outs(...)              aipu.dwpu max ins(...) outs(...) program(%q : ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, i8
from xdsl.ir import SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import aipu, mem
from aipuc.hardware import AIPU, MemorySpace
from aipuc.lowering.mem_pools import pool_name
from aipuc.passes import AipucPass
from aipuc.runtime.sim.isa import DWPU_OP_BYTES, MICRO_OP_BYTES

INSTRUCTION_HOMES = {"default": MemorySpace.DDR, "l2": MemorySpace.L2}


@dataclass(frozen=True)
class AipuProgramsPass(AipucPass):
    name = "aipu-programs"

    dpu_instructions_home: str = "default"
    dwpu_instructions_home: str = "default"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self._dpu(op, INSTRUCTION_HOMES[self.dpu_instructions_home])
        self._dwpu(op, INSTRUCTION_HOMES[self.dwpu_instructions_home])

    @staticmethod
    def _dwpu(op: ModuleOp, space: MemorySpace) -> None:
        programs: dict[tuple, mem.BufferOp] = {}
        for task in list(op.walk()):
            if not isinstance(task, aipu.DwpuOp):
                continue
            tables = tuple(
                None if v is None else mem.root_buffer(v) for v in (task.weights, task.requant)
            )
            key = (task.mode.data, task.count_include_pad, task.per_channel, *tables)
            if key not in programs:
                buffer_type = mem.BufferType([DWPU_OP_BYTES], i8, space)
                programs[key] = mem.BufferOp(pool_name(space), buffer_type, size=AIPU.pword_bytes)
                segment = task.parent_op()
                while not isinstance(segment, aipu.SegmentOp):
                    segment = segment.parent_op()  # type: ignore[union-attr]
                Rewriter.insert_op(programs[key], InsertPoint.before(segment))
            Rewriter.replace_op(task, _with_program(task, programs[key].buffer))

    @staticmethod
    def _dpu(op: ModuleOp, space: MemorySpace) -> None:
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


def _with_program(task: aipu.DwpuOp, program: SSAValue) -> aipu.DwpuOp:
    new = aipu.DwpuOp(
        task.mode.data,
        task.input,
        task.output,
        kernel=aipu._ints(task.kernel),
        stride=aipu._ints(task.stride),
        dilation=aipu._ints(task.dilation),
        pads=aipu._ints(task.pads),
        extra=aipu._ints(task.extra),
        count_include_pad=aipu._flag(task.count_include_pad),
        per_channel=aipu._flag(task.per_channel),
        weights=task.weights,
        requant=task.requant,
        deps=list(task.deps),
        program=program,
    )
    new.attributes = dict(task.attributes)
    new.location = task.location
    return new
