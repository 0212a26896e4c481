"""docs/isa.md, rendered from the one table of the instruction set (`aipuc.runtime.sim.isa`).

    python -m aipuc.runtime.sim.isa_doc > docs/isa.md

A test compares the file with `render()`, so the document cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np

from aipuc.runtime.sim import isa
from aipuc.runtime.sim.isa import Field, Opcode, UnitCode

_ENUMS: dict[UnitCode, Sequence[type[Enum]]] = {
    UnitCode.DMA: (isa.DmaEngineCode,),
    UnitCode.MVM: (isa.MvmFlag,),
    UnitCode.DWPU: (isa.DwpuMode, isa.DwpuFlag),
    UnitCode.DPU: (isa.MicroOpcode,),
    UnitCode.CONTROL: (),
}


def _type_name(field: Field) -> str:
    dtype = np.dtype(field.type)
    name = f"{'i' if dtype.kind == 'i' else 'u'}{8 * dtype.itemsize}"
    return name if field.count == 1 else f"{name}[{field.count}]"


def _table(dtype: np.dtype, fields: Sequence[Field]) -> list[str]:
    lines = ["| offset | field | type | meaning |", "|---:|---|---|---|"]
    for field in fields:
        offset = dtype.fields[field.name][1]  # type: ignore[index]
        lines.append(f"| {offset} | `{field.name}` | {_type_name(field)} | {field.doc} |")
    return lines


def _enum(enum: type[Enum]) -> list[str]:
    values = ", ".join(f"`{member.name}` = {member.value}" for member in enum)  # type: ignore[attr-defined]
    return [f"`{enum.__name__}`: {values}.", ""]


def render() -> str:
    lines = [
        "# The AIPU instruction set",
        "",
        "Generated from `aipuc/runtime/sim/isa.py` by "
        "`python -m aipuc.runtime.sim.isa_doc > docs/isa.md`; a test keeps them equal.",
        "",
        f"A core runs a tasklist of {isa.RECORD_BYTES}-byte records, little-endian, each field "
        "at its natural alignment. Every record starts with the same header; the rest is the "
        "payload of its opcode, zero where unused. Addresses are device addresses, strides "
        "are in bytes with the innermost axis last.",
        "",
        "## Header",
        "",
        *_table(isa.HEADER, isa.HEADER_FIELDS),
        "",
        *_enum(Opcode),
    ]
    for unit in UnitCode:
        lines += [f"## {unit.name} unit", ""]
        for opcode in (op for op in Opcode if isa.UNIT_OF[op] == unit):
            lines += [f"### {opcode.name} (0x{opcode.value:02x})", ""]
            semantics = isa.OPCODE_SEMANTICS[opcode]
            lines.append(semantics[0].upper() + semantics[1:] + ".")
            lines.append("")
            if isa.FORMATS[opcode]:
                lines += [*_table(isa.DTYPES[opcode], isa.FORMATS[opcode]), ""]
            else:
                lines += ["No payload.", ""]
        for enum in _ENUMS[unit]:
            if enum is not isa.MicroOpcode:
                lines += _enum(enum)
        if unit == UnitCode.DWPU:
            lines += [
                "### DWPU program",
                "",
                f"A {isa.DWPU_OP_BYTES}-byte word in memory that the records of a layer's "
                "tiles point at: what the layer computes and the L1 addresses of its tables.",
                "",
                *_table(isa.DWPU_OP, isa.DWPU_OP_FIELDS),
                "",
            ]
        if unit == UnitCode.DPU:
            lines += _micro_ops()
    return "\n".join(lines).rstrip() + "\n"


def _micro_ops() -> list[str]:
    lines = [
        "### DPU micro-ops",
        "",
        f"A DPU program is an array of {isa.MICRO_OP_BYTES}-byte micro-op words in memory. "
        "The DPU runs it over the tile of its record, vector by vector. It has "
        "`AIPU.dpu_registers` registers; the simulator, vectorised over the tile, keeps a "
        "whole tile per register, so a spill slot (SPILL, RELOAD) holds the whole tile: "
        "four bytes per element, dense in the record's `shape`.",
        "",
        *_table(isa.MICRO_OP, isa.MICRO_OP_FIELDS),
        "",
        "| code | micro-op | semantics |",
        "|---:|---|---|",
    ]
    for micro in isa.MicroOpcode:
        lines.append(f"| {micro.value} | `{micro.name}` | {isa.MICRO_SEMANTICS[micro]} |")
    return [*lines, ""]


if __name__ == "__main__":
    print(render(), end="")
