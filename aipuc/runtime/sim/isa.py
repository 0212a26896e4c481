"""The AIPU instruction set: fixed-width little-endian records, one table for every format.

A core's instruction stream is a sequence of 128-byte records. Every record starts with the
same 8-byte header (opcode, unit, core, flags, and a 32-bit word the opcode may use); the
rest is the opcode's payload, laid out by `FORMATS` below with natural alignment. A stream
is stored as raw bytes; `decode` views them as one NumPy structured array per opcode, so
encoding and decoding are `tobytes` and `frombuffer` over the same dtypes.

DPU programs are separate: a DPU record points at a program of 32-byte micro-op words
(`MICRO_OP`) stored in memory, and carries the tile shape and up to four operand
descriptors (address and byte strides per axis) that the program's loads and stores use.

All addresses are device addresses (see `aipuc.runtime.sim.memory.AddressMap`); all
strides are in bytes, innermost axis last. docs/isa.md renders this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np

RECORD_BYTES = 128
MICRO_OP_BYTES = 32
MAX_DIMS = 5
"""DMA and fill blocks have up to five axes."""
DPU_OPERANDS = 4
DPU_RANK = 4


class Opcode(IntEnum):
    DMA = 0x01
    FILL = 0x02
    IMC_LOAD = 0x10
    MVM = 0x11
    DWPU = 0x20
    DPU = 0x30


class UnitCode(IntEnum):
    DMA = 0
    MVM = 1
    DWPU = 2
    DPU = 3


UNIT_OF = {
    Opcode.DMA: UnitCode.DMA,
    Opcode.FILL: UnitCode.DMA,
    Opcode.IMC_LOAD: UnitCode.MVM,
    Opcode.MVM: UnitCode.MVM,
    Opcode.DWPU: UnitCode.DWPU,
    Opcode.DPU: UnitCode.DPU,
}


class MvmFlag(IntFlag):
    """How an MVM record treats its int32 sums (`flags` byte of the header)."""

    ACCUMULATE = 1  # add the partial sums held at acc_addr (earlier K chunks) first
    REQUANTIZE = 2  # add the bias, requantize, store int8 at out_addr; else int32 at acc_addr
    SWICR = 4  # kernel taps x input channels packed densely into the K vector


class DwpuMode(IntEnum):
    CONV = 0  # depthwise convolution, per-channel requantization
    MAX = 1  # max pooling of codes (padding is -128)
    AVG = 2  # window sums, requantized by the divisor of each output position
    GLOBAL_AVG = 3  # sum over the whole tile per channel, requantized by its area
    GLOBAL_MAX = 4


class DwpuFlag(IntFlag):
    COUNT_INCLUDE_PAD = 1
    PER_CHANNEL = 2  # the requantization table holds one entry per channel


class DmaEngineCode(IntEnum):
    CORE = 0
    SYSTEM = 1


_HEADER = [("opcode", "u1"), ("unit", "u1"), ("core", "u1"), ("flags", "u1"), ("word", "<u4")]

FORMATS: dict[Opcode, list[tuple[str, str, int]]] = {
    # name, little-endian type, count (1: scalar)
    Opcode.DMA: [
        ("src", "<u8", 1),
        ("dst", "<u8", 1),
        ("sizes", "<u4", MAX_DIMS),
        ("src_strides", "<i4", MAX_DIMS),
        ("dst_strides", "<i4", MAX_DIMS),
        ("engine", "u1", 1),
        ("channel", "u1", 1),
    ],
    Opcode.FILL: [
        ("dst", "<u8", 1),
        ("sizes", "<u4", MAX_DIMS),
        ("dst_strides", "<i4", MAX_DIMS),
        ("value", "<i1", 1),
    ],
    Opcode.IMC_LOAD: [
        ("src", "<u8", 1),
        ("row_stride", "<u4", 1),
        ("k", "<u2", 1),
        ("n", "<u2", 1),
        ("weightset", "u1", 1),
    ],
    Opcode.MVM: [
        ("in_addr", "<u8", 1),
        ("out_addr", "<u8", 1),
        ("acc_addr", "<u8", 1),
        ("rq_addr", "<u8", 1),
        ("in_hw", "<u4", 2),  # input tile rows, columns
        ("in_strides", "<u4", 2),  # bytes between rows, between pixels
        ("in_c", "<u2", 1),  # bytes (int8 lanes) each kernel tap contributes to the K vector
        ("out_hw", "<u4", 2),
        ("out_strides", "<u4", 2),
        ("acc_strides", "<u4", 2),  # int32 partial sums: bytes between rows, between pixels
        ("n", "<u2", 1),  # output channels of this record (columns per replica)
        ("kernel", "u1", 2),
        ("stride", "u1", 2),
        ("dilation", "u1", 2),
        ("pads", "u1", 4),  # top, left, bottom, right: filled with the input zero point
        ("in_zp", "<i2", 1),
        ("w_zp", "<i2", 1),
        ("out_zp", "<i2", 1),
        ("k_start", "<u4", 1),  # first row of the K vector this weightset holds
        ("k_len", "<u2", 1),
        ("weightset", "u1", 1),
        ("icr", "u1", 1),
        # lanes of each tap that hold input channels, the rest of in_c being zero-point
        # padding (0: all); the simulator ignores it, the cycle model counts useful MACs
        ("channels", "<u2", 1),
    ],
    Opcode.DWPU: [
        ("in_addr", "<u8", 1),
        ("out_addr", "<u8", 1),
        ("w_addr", "<u8", 1),
        ("rq_addr", "<u8", 1),
        ("in_hw", "<u4", 2),
        ("in_strides", "<u4", 2),
        ("channels", "<u2", 1),
        ("out_hw", "<u4", 2),
        ("out_strides", "<u4", 2),
        ("kernel", "u1", 2),
        ("stride", "u1", 2),
        ("dilation", "u1", 2),
        ("pads", "u1", 4),
        ("extra", "u1", 2),  # ceil_mode rows/columns past the bottom/right pads, never counted
        ("mode", "u1", 1),
    ],
    Opcode.DPU: [
        ("program", "<u8", 1),
        ("operand_addr", "<u8", DPU_OPERANDS),
        ("operand_strides", "<i4", DPU_OPERANDS * DPU_RANK),
        ("shape", "<u2", DPU_RANK),
        ("micro_ops", "<u2", 1),
        ("operand_bytes", "u1", DPU_OPERANDS),  # element size of each operand: 1 or 4
    ],
}


def _record_dtype(fields: Sequence[tuple[str, str, int]], size: int) -> np.dtype:
    names, formats, offsets = [], [], []
    offset = 0
    for name, type_, count in (*(_h + (1,) for _h in _HEADER), *fields):
        item = np.dtype(type_)
        offset = -(-offset // item.alignment) * item.alignment
        names.append(name)
        formats.append(type_ if count == 1 else (type_, (count,)))
        offsets.append(offset)
        offset += item.itemsize * count
    if offset > size:
        raise AssertionError(f"record of {offset} bytes exceeds {size}")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})


HEADER = _record_dtype([], RECORD_BYTES)
DTYPES: dict[Opcode, np.dtype] = {op: _record_dtype(f, RECORD_BYTES) for op, f in FORMATS.items()}


class MicroOpcode(IntEnum):
    """DPU micro-ops. Integer lanes hold int32 values, float lanes float18 (see numerics)."""

    LOAD = 1  # dst <- operand[slot] (int8 codes, or int32 if the operand has 4-byte elements)
    STORE = 2  # operand[slot] <- a (int8 codes in range)
    ADDI = 3  # dst <- a + imm0
    SHLI = 4  # dst <- a << imm0
    ADD = 5
    SUB = 6
    MUL = 7
    MAX = 8
    MIN = 9
    RESCALE = 10  # dst <- requantize(a, imm0, imm1, 0) kept in int32 (add/sub's common scale)
    REQUANT = 11  # dst <- requantize(a, imm0, imm1, imm2) to int8 codes
    REQUANT_TABLE = 12  # per channel (innermost axis): table at addr of [C, 3] int32 m, s, zp
    LUT = 13  # dst <- table at addr [a + 128] (256 int8 entries)
    CLAMP = 14  # dst <- clip(a, imm0, imm1)
    SELECT = 15  # dst <- b where a >= 0 else c
    ITOF = 16  # dst <- float18(a)
    FADD = 17
    FMUL = 18
    FNEG = 19
    FRECIP = 20
    FCONST = 21  # dst <- float18 with the float32 bits imm1 (broadcast)
    RMAX = 22  # dst <- max over the innermost axis (float), broadcast back
    RSUM = 23  # dst <- f18_sum over the innermost axis, broadcast back
    EXPLUT = 24  # dst <- float18 table at addr [a] where 0 <= a < 256, else 0
    FTOI = 25  # dst <- clip(rint(a) + imm2, -128, 127)
    FRSQRT = 26  # dst <- numerics.f18_rsqrt(a)
    FVEC = 27  # dst <- float18 of the float32 vector at addr, one entry per innermost index


MICRO_OP = np.dtype(
    {
        "names": ["op", "dst", "a", "b", "c", "slot", "imm0", "imm1", "imm2", "addr"],
        "formats": ["u1", "u1", "u1", "u1", "u1", "u1", "<i8", "<i4", "<i4", "<u8"],
        "offsets": [0, 1, 2, 3, 4, 5, 8, 16, 20, 24],
        "itemsize": MICRO_OP_BYTES,
    }
)


@dataclass
class Stream:
    """One core's instruction stream: raw records, decoded lazily."""

    data: bytes

    def __len__(self) -> int:
        return len(self.data) // RECORD_BYTES

    def header(self) -> np.ndarray:
        return np.frombuffer(self.data, HEADER)

    def records(self) -> Iterable[tuple[Opcode, np.void]]:
        """Every record in order, viewed through its opcode's format."""
        raw = np.frombuffer(self.data, np.dtype((np.void, RECORD_BYTES)))
        views = {op: raw.view(dtype) for op, dtype in DTYPES.items()}
        for index, code in enumerate(self.header()["opcode"]):
            opcode = Opcode(int(code))
            yield opcode, views[opcode][index]


def encode(opcode: Opcode, fields: Mapping[str, object], *, flags: int = 0, core: int = 0) -> bytes:
    """One record; fields not given are zero."""
    record = np.zeros(1, DTYPES[opcode])
    record["opcode"], record["unit"] = int(opcode), int(UNIT_OF[opcode])
    record["core"], record["flags"] = core, int(flags)
    for name, value in fields.items():
        record[name] = value
    return record.tobytes()


def encode_micro_ops(ops: Sequence[Mapping[str, object]]) -> bytes:
    program = np.zeros(len(ops), MICRO_OP)
    for index, fields in enumerate(ops):
        for name, value in fields.items():
            program[index][name] = value
    return program.tobytes()


def decode_micro_ops(data: bytes) -> np.ndarray:
    return np.frombuffer(data, MICRO_OP)
