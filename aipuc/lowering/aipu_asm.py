"""`xdsl-opt -t aipu-asm`: a planned module as readable assembly, one instruction per line.

    segment 0 core 0
      0000 dma      dma       src=0x100000000 dst=0x18000000 sizes=[1, 1, 1, 32, 96] ...
      0001 mvm      imc_load  src=0x18000100 row_stride=64 k=32 n=64
      ...
    dpu program 0x100006ec0: 9 micro-ops
      0 load     r0 <- slot=0
      1 addi     r1 <- r0 imm0=-3

Each record shows its unit, opcode and every non-zero field of its format (addresses in
hex), exactly as the tasklist holds it (before tasklist streaming adds its chunk loads);
DPU and DWPU programs follow, decoded from their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.target import Target

from aipuc.lowering.emit_stream import emit_records
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.isa import Instruction, MicroOp

_ADDRESSES = ("addr", "src", "dst", "program", "target")


def _value(name: str, value) -> str:
    address = any(part in name for part in _ADDRESSES)
    if isinstance(value, tuple):
        return "[" + ", ".join(hex(v) if address else str(v) for v in value) + "]"
    return hex(value) if address else str(value)


def record_line(index: int, record: Instruction) -> str:
    unit = isa.UNIT_OF[record.opcode].name.lower()
    parts = [f"{index:04d}", f"{unit:<8}", f"{record.opcode.name.lower():<9}"]
    if record.flags and record.opcode == isa.Opcode.MVM:
        parts.append(f"flags={isa.MvmFlag(record.flags).name}")
    elif record.flags:
        parts.append(f"flags={record.flags}")
    for name, value in record.fields.items():
        if value != 0 and value != (0,) * len(value if isinstance(value, tuple) else ()):
            parts.append(f"{name}={_value(name, value)}")
    return " ".join(parts).rstrip()


def micro_line(index: int, micro: MicroOp) -> str:
    sources = ", ".join(f"r{getattr(micro, r)}" for r in "abc"[: isa.MICRO_SOURCES[micro.op]])
    target = f"r{micro.dst} <- " if micro.op in isa.MICRO_WRITES else ""
    parts = [f"{index}", f"{micro.op.name.lower():<13}", f"{target}{sources}".rstrip()]
    if micro.op in (isa.MicroOpcode.LOAD, isa.MicroOpcode.STORE):
        parts.append(f"slot={micro.slot}")
    for name in ("imm0", "imm1", "imm2", "addr"):
        if getattr(micro, name):
            parts.append(f"{name}={_value(name, getattr(micro, name))}")
    return " ".join(p for p in parts if p)


def assembly(module: ModuleOp) -> str:
    emitted = emit_records(module)
    lines = []
    for segment in emitted.segments:
        lines.append(f"segment {segment.index} core 0")
        for io in (*segment.inputs, *segment.outputs):
            lines.append(f"  ; {io.symbol} at {io.address:#x}: {io.dtype}{list(io.shape)}")
        for index, record in enumerate(isa.decode(b"".join(segment.records))):
            lines.append("  " + record_line(index, record))
    for address, words in sorted(emitted.dpu_programs.items()):
        program = isa.decode_program(words)
        lines.append(f"dpu program {address:#x}: {len(program)} micro-ops")
        lines += ["  " + micro_line(i, micro) for i, micro in enumerate(program)]
    for address, word in sorted(emitted.dwpu_programs.items()):
        fields = np.frombuffer(word, isa.DWPU_OP)[0]
        values = " ".join(
            f"{f.name}={_value(f.name, int(fields[f.name]))}" for f in isa.DWPU_OP_FIELDS
        )
        lines.append(f"dwpu program {address:#x}: {values}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AipuAsmTarget(Target):
    name = "aipu-asm"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        output.write(assembly(module))
