"""The AIPU instruction set: fixed-width little-endian records, one table for every format.

A core's instruction stream is a sequence of 128-byte records. Every record starts with the
same 8-byte header (opcode, unit, core, flags, and a 32-bit word the opcode may use); the
rest is the opcode's payload, laid out by `FORMATS` below with natural alignment. A stream
is stored as raw bytes; `decode` views them as one NumPy structured array per opcode, so
encoding and decoding are `tobytes` and `frombuffer` over the same dtypes.

DPU programs are separate: a DPU record points at a program of 32-byte micro-op words
(`MICRO_OP`) stored in memory, and carries the tile shape and up to four operand
descriptors (address and byte strides per axis) that the program's loads and stores use.
A DWPU record likewise points at its layer's DWPU program word (`DWPU_OP`: mode, flags,
kernel and table addresses) and carries the geometry of its tile.

All addresses are device addresses (see `aipuc.runtime.sim.memory.AddressMap`); all
strides are in bytes, innermost axis last. docs/isa.md renders this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import NamedTuple

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
    JUMP = 0x40  # continue fetching records at `target` (streamed tasklist chunks)
    END = 0x41  # the segment is done


class UnitCode(IntEnum):
    DMA = 0
    MVM = 1
    DWPU = 2
    DPU = 3
    CONTROL = 4  # the core's record fetcher


UNIT_OF = {
    Opcode.DMA: UnitCode.DMA,
    Opcode.FILL: UnitCode.DMA,
    Opcode.IMC_LOAD: UnitCode.MVM,
    Opcode.MVM: UnitCode.MVM,
    Opcode.DWPU: UnitCode.DWPU,
    Opcode.DPU: UnitCode.DPU,
    Opcode.JUMP: UnitCode.CONTROL,
    Opcode.END: UnitCode.CONTROL,
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


class Field(NamedTuple):
    """One field of a record: little-endian NumPy type, element count (1: scalar), meaning."""

    name: str
    type: str
    count: int
    doc: str


HEADER_FIELDS = [
    Field("opcode", "u1", 1, "`Opcode`"),
    Field("unit", "u1", 1, "`UnitCode` of the opcode"),
    Field("core", "u1", 1, "core that runs the record"),
    Field("flags", "u1", 1, "opcode flags (`MvmFlag`)"),
    Field("word", "<u4", 1, "reserved, zero"),
]

FORMATS: dict[Opcode, list[Field]] = {
    Opcode.DMA: [
        Field("src", "<u8", 1, "source address"),
        Field("dst", "<u8", 1, "destination address"),
        Field("sizes", "<u4", MAX_DIMS, "bytes per axis, innermost last (unused axes 1)"),
        Field("src_strides", "<i4", MAX_DIMS, "source byte strides"),
        Field("dst_strides", "<i4", MAX_DIMS, "destination byte strides"),
        Field("engine", "u1", 1, "`DmaEngineCode`: core DMA or system DMA"),
        Field("channel", "u1", 1, "DMA channel"),
    ],
    Opcode.FILL: [
        Field("dst", "<u8", 1, "destination address"),
        Field("sizes", "<u4", MAX_DIMS, "bytes per axis"),
        Field("dst_strides", "<i4", MAX_DIMS, "destination byte strides"),
        Field("value", "<i1", 1, "the byte written"),
    ],
    Opcode.IMC_LOAD: [
        Field("src", "<u8", 1, "address of the [k, n] int8 weights"),
        Field("row_stride", "<u4", 1, "bytes between weight rows"),
        Field("k", "<u2", 1, "rows (at most `mvm_k`)"),
        Field("n", "<u2", 1, "columns (at most `mvm_n`)"),
        Field("weightset", "u1", 1, "IMC weightset loaded"),
    ],
    Opcode.MVM: [
        Field("in_addr", "<u8", 1, "input tile [h, w, in_c] of int8 codes"),
        Field("out_addr", "<u8", 1, "int8 output tile (with REQUANTIZE)"),
        Field("acc_addr", "<u8", 1, "int32 partial sums"),
        Field("rq_addr", "<u8", 1, "requantization table [n, 4]: bias, multiplier, shift, zp"),
        Field("in_hw", "<u4", 2, "input tile rows, columns"),
        Field("in_strides", "<u4", 2, "bytes between input rows, between pixels"),
        Field("in_c", "<u2", 1, "bytes (int8 lanes) each kernel tap contributes to K"),
        Field("out_hw", "<u4", 2, "output tile rows, columns"),
        Field("out_strides", "<u4", 2, "bytes between output rows, between pixels"),
        Field("acc_strides", "<u4", 2, "bytes between partial-sum rows, between pixels"),
        Field("n", "<u2", 1, "output channels (columns per ICR replica)"),
        Field("kernel", "u1", 2, "kernel height, width"),
        Field("stride", "u1", 2, "stride"),
        Field("dilation", "u1", 2, "dilation"),
        Field("pads", "u1", 4, "top, left, bottom, right: filled with the input zero point"),
        Field("in_zp", "<i2", 1, "input zero point"),
        Field("w_zp", "<i2", 1, "weight zero point"),
        Field("out_zp", "<i2", 1, "output zero point"),
        Field("k_start", "<u4", 1, "first row of the K vector this weightset holds"),
        Field("k_len", "<u2", 1, "rows of the K vector this weightset holds"),
        Field("weightset", "u1", 1, "IMC weightset used"),
        Field("icr", "u1", 1, "in-core replication: x-position ow uses copy ow % icr"),
        Field(
            "channels",
            "<u2",
            1,
            "lanes of each tap holding input channels, the rest of in_c zero-point padding "
            "(0: all); the simulator ignores it, the cycle model counts useful MACs",
        ),
    ],
    Opcode.DWPU: [
        Field("program", "<u8", 1, "address of the layer's DWPU program word (`DWPU_OP`)"),
        Field("in_addr", "<u8", 1, "input tile [h, w, channels] of int8 codes"),
        Field("out_addr", "<u8", 1, "output tile"),
        Field("in_hw", "<u4", 2, "input tile rows, columns"),
        Field("in_strides", "<u4", 2, "bytes between input rows, between pixels"),
        Field("channels", "<u2", 1, "channels"),
        Field("out_hw", "<u4", 2, "output tile rows, columns"),
        Field("out_strides", "<u4", 2, "bytes between output rows, between pixels"),
        Field("kernel", "u1", 2, "window height, width"),
        Field("stride", "u1", 2, "stride"),
        Field("dilation", "u1", 2, "dilation"),
        Field("pads", "u1", 4, "top, left, bottom, right"),
        Field("extra", "u1", 2, "ceil_mode rows/columns past the bottom/right pads"),
    ],
    Opcode.DPU: [
        Field("program", "<u8", 1, "address of the micro-op program"),
        Field("operand_addr", "<u8", DPU_OPERANDS, "address of each operand tile"),
        Field("operand_strides", "<i4", DPU_OPERANDS * DPU_RANK, "byte strides per operand"),
        Field("shape", "<u2", DPU_RANK, "tile shape, innermost last"),
        Field("micro_ops", "<u2", 1, "micro-ops in the program"),
        Field("operand_bytes", "u1", DPU_OPERANDS, "element size of each operand: 1 or 4"),
    ],
    Opcode.JUMP: [
        Field("target", "<u8", 1, "address of the next record to run"),
    ],
    Opcode.END: [],
}


def _record_dtype(fields: Sequence[Field], size: int, *, header: bool = True) -> np.dtype:
    names, formats, offsets = [], [], []
    offset = 0
    for name, type_, count, _ in (*(HEADER_FIELDS if header else ()), *fields):
        item = np.dtype(type_)
        offset = -(-offset // item.alignment) * item.alignment
        names.append(name)
        formats.append(type_ if count == 1 else (type_, (count,)))
        offsets.append(offset)
        offset += item.itemsize * count
    if offset > size:
        raise AssertionError(f"record of {offset} bytes exceeds {size}")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})


DWPU_OP_BYTES = 32
DWPU_OP_FIELDS = [
    Field("mode", "u1", 1, "`DwpuMode`"),
    Field("flags", "u1", 1, "`DwpuFlag`"),
    Field("w_addr", "<u8", 1, "depthwise kernels [kh, kw, channels] (CONV)"),
    Field(
        "rq_addr",
        "<u8",
        1,
        "int32 table [rows, C (`PER_CHANNEL`) or 1, 5]: bias, multiplier, shift, output "
        "zp, input zp; one row (CONV, GLOBAL_AVG) or kh * kw + 1 (AVG: row d for a window "
        "of d counted taps; the input zp of row 0)",
    ),
]
DWPU_OP = _record_dtype(DWPU_OP_FIELDS, DWPU_OP_BYTES, header=False)
"""A DWPU program: what a depthwise layer computes, shared by the records of its tiles
(which carry the geometry of each tile)."""

HEADER = _record_dtype([], RECORD_BYTES)
DTYPES: dict[Opcode, np.dtype] = {op: _record_dtype(f, RECORD_BYTES) for op, f in FORMATS.items()}


class MicroOpcode(IntEnum):
    """DPU micro-ops. Integer lanes hold int32 values, float lanes float18 (see numerics)."""

    LOAD = 1
    STORE = 2
    ADDI = 3
    SHLI = 4
    ADD = 5
    SUB = 6
    MUL = 7
    MAX = 8
    MIN = 9
    RESCALE = 10
    REQUANT = 11
    REQUANT_TABLE = 12
    LUT = 13
    CLAMP = 14
    SELECT = 15
    ITOF = 16
    FADD = 17
    FMUL = 18
    FNEG = 19
    FRECIP = 20
    FCONST = 21
    RMAX = 22
    RSUM = 23
    EXPLUT = 24
    FTOI = 25
    FRSQRT = 26
    FVEC = 27
    SPILL = 28
    RELOAD = 29


MICRO_SEMANTICS: dict[MicroOpcode, str] = {
    MicroOpcode.LOAD: "dst <- operand[slot] (int8 codes, or int32 if its elements have 4 bytes)",
    MicroOpcode.STORE: "operand[slot] <- a (int8 codes in range, or int32)",
    MicroOpcode.ADDI: "dst <- a + imm0",
    MicroOpcode.SHLI: "dst <- a << imm0",
    MicroOpcode.ADD: "dst <- a + b",
    MicroOpcode.SUB: "dst <- a - b",
    MicroOpcode.MUL: "dst <- a * b",
    MicroOpcode.MAX: "dst <- max(a, b)",
    MicroOpcode.MIN: "dst <- min(a, b)",
    MicroOpcode.RESCALE: "dst <- requantize(a, imm0, imm1, 0) kept in int32",
    MicroOpcode.REQUANT: "dst <- requantize(a, imm0, imm1, imm2) to int8 codes",
    MicroOpcode.REQUANT_TABLE: "per channel (innermost axis), table at addr of [C, 3] int32 "
    "multiplier, shift, zero point",
    MicroOpcode.LUT: "dst <- table at addr [a + 128] (256 int8 entries)",
    MicroOpcode.CLAMP: "dst <- clip(a, imm0, imm1)",
    MicroOpcode.SELECT: "dst <- b where a >= 0 else c",
    MicroOpcode.ITOF: "dst <- float18(a)",
    MicroOpcode.FADD: "dst <- a + b in float18",
    MicroOpcode.FMUL: "dst <- a * b in float18",
    MicroOpcode.FNEG: "dst <- -a",
    MicroOpcode.FRECIP: "dst <- 1 / a in float18",
    MicroOpcode.FCONST: "dst <- the float32 bits imm1 rounded to float18, in every lane",
    MicroOpcode.RMAX: "dst <- max of a over the innermost axis, broadcast back",
    MicroOpcode.RSUM: "dst <- float18 sum of a over the innermost axis, broadcast back",
    MicroOpcode.EXPLUT: "dst <- float18 table at addr [a] where 0 <= a < 256, else 0",
    MicroOpcode.FTOI: "dst <- clip(rint(a) + imm2, -128, 127)",
    MicroOpcode.FRSQRT: "dst <- numerics.f18_rsqrt(a)",
    MicroOpcode.FVEC: "dst <- float18 of the float32 vector at addr, one entry per innermost index",
    MicroOpcode.SPILL: "L1 at addr <- register a for the whole tile, dense: int32 lanes, "
    "or float32 when imm0 = 1",
    MicroOpcode.RELOAD: "dst <- the tile SPILL stored at addr (imm0 = 1: float lanes)",
}

MICRO_SOURCES: dict[MicroOpcode, int] = {
    **dict.fromkeys(MicroOpcode, 1),
    **dict.fromkeys(
        (MicroOpcode.LOAD, MicroOpcode.FCONST, MicroOpcode.FVEC, MicroOpcode.RELOAD), 0
    ),
    **dict.fromkeys(
        (
            MicroOpcode.ADD,
            MicroOpcode.SUB,
            MicroOpcode.MUL,
            MicroOpcode.MAX,
            MicroOpcode.MIN,
            MicroOpcode.FADD,
            MicroOpcode.FMUL,
        ),
        2,
    ),
    MicroOpcode.SELECT: 3,
}
"""Registers each micro-op reads (a, b, c in order)."""
MICRO_WRITES = frozenset(MicroOpcode) - {MicroOpcode.STORE, MicroOpcode.SPILL}
"""Micro-ops that write register dst."""

OPCODE_SEMANTICS: dict[Opcode, str] = {
    Opcode.DMA: "strided byte copy of up to five axes",
    Opcode.FILL: "strided byte fill of up to five axes",
    Opcode.IMC_LOAD: "loads int8 weights into an IMC weightset",
    Opcode.MVM: "convolution / matrix product of a tile against a weightset, int32 sums",
    Opcode.DWPU: "depthwise convolution or pooling of a tile, as its DWPU program says",
    Opcode.DPU: "runs a micro-op program over a tile of up to four operands",
    Opcode.JUMP: "continues fetching records at `target` (the next tasklist chunk)",
    Opcode.END: "ends the segment",
}


MICRO_OP_FIELDS = [
    Field("op", "u1", 1, "`MicroOpcode`"),
    Field("dst", "u1", 1, "destination register"),
    Field("a", "u1", 1, "first source register"),
    Field("b", "u1", 1, "second source register"),
    Field("c", "u1", 1, "third source register (SELECT)"),
    Field("slot", "u1", 1, "operand slot of the DPU record (LOAD, STORE)"),
    Field("imm0", "<i8", 1, "immediate: addend, shift amount, multiplier, low bound, lane kind"),
    Field("imm1", "<i4", 1, "immediate: shift, high bound, float32 bits"),
    Field("imm2", "<i4", 1, "immediate: zero point"),
    Field("addr", "<u8", 1, "table address (LUT, EXPLUT, REQUANT_TABLE), spill slot address"),
]
MICRO_OP = _record_dtype(MICRO_OP_FIELDS, MICRO_OP_BYTES, header=False)


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


Value = int | tuple[int, ...]


def _plain(value, count: int) -> Value:
    return int(value) if count == 1 else tuple(int(v) for v in value)


Fields = Mapping[str, Value]
"""A decoded record or micro-op: every field (header included) as plain Python ints."""


def plain_fields(record: np.void) -> dict[str, Value]:
    """`record`'s fields as Python values, which the simulator reads many times per
    record at dict speed instead of NumPy scalar speed."""
    return {
        name: tuple(value.tolist()) if isinstance(value, np.ndarray) else int(value)
        for name in record.dtype.names
        for value in (record[name],)
    }


@dataclass(frozen=True)
class Instruction:
    """One record as plain Python values: every payload field (zero when not given)."""

    opcode: Opcode
    fields: Mapping[str, Value]
    flags: int = 0
    core: int = 0

    def __post_init__(self) -> None:
        complete = {}
        for field in FORMATS[self.opcode]:
            value = self.fields.get(field.name, 0 if field.count == 1 else (0,) * field.count)
            complete[field.name] = _plain(value, field.count)
        if unknown := set(self.fields) - set(complete):
            raise ValueError(f"{self.opcode.name} has no field(s) {sorted(unknown)}")
        object.__setattr__(self, "fields", complete)

    def encode(self) -> bytes:
        return encode(self.opcode, self.fields, flags=self.flags, core=self.core)

    @classmethod
    def of(cls, record: np.void) -> Instruction:
        opcode = Opcode(int(record["opcode"]))
        fields = {f.name: _plain(record[f.name], f.count) for f in FORMATS[opcode]}
        return cls(opcode, fields, int(record["flags"]), int(record["core"]))


def decode(data: bytes) -> list[Instruction]:
    """The records of a stream, in order (the inverse of `encode_stream`)."""
    return [Instruction.of(record) for _, record in Stream(data).records()]


def encode_stream(instructions: Iterable[Instruction]) -> bytes:
    return b"".join(instruction.encode() for instruction in instructions)


def decode_record(data: bytes) -> tuple[Opcode, np.void]:
    """One record (at least RECORD_BYTES bytes) viewed through its opcode's format."""
    opcode = Opcode(data[0])
    return opcode, np.frombuffer(data[:RECORD_BYTES], DTYPES[opcode])[0]


def encode(opcode: Opcode, fields: Mapping[str, object], *, flags: int = 0, core: int = 0) -> bytes:
    """One record; fields not given are zero."""
    record = np.zeros(1, DTYPES[opcode])
    record["opcode"], record["unit"] = int(opcode), int(UNIT_OF[opcode])
    record["core"], record["flags"] = core, int(flags)
    for name, value in fields.items():
        record[name] = value
    return record.tobytes()


@dataclass(frozen=True)
class MicroOp:
    """One DPU micro-op word as plain Python values."""

    op: MicroOpcode
    dst: int = 0
    a: int = 0
    b: int = 0
    c: int = 0
    slot: int = 0
    imm0: int = 0
    imm1: int = 0
    imm2: int = 0
    addr: int = 0

    @classmethod
    def of(cls, word: np.void) -> MicroOp:
        values = {f.name: int(word[f.name]) for f in MICRO_OP_FIELDS}
        return cls(MicroOpcode(values.pop("op")), **values)


def encode_micro_ops(ops: Sequence[MicroOp | Mapping[str, object]]) -> bytes:
    program = np.zeros(len(ops), MICRO_OP)
    for index, fields in enumerate(ops):
        items = vars(fields).items() if isinstance(fields, MicroOp) else fields.items()
        for name, value in items:
            program[index][name] = int(value)  # type: ignore[call-overload]
    return program.tobytes()


def decode_micro_ops(data: bytes) -> np.ndarray:
    return np.frombuffer(data, MICRO_OP)


def decode_program(data: bytes) -> list[MicroOp]:
    """A DPU program's micro-ops (the inverse of `encode_micro_ops`)."""
    return [MicroOp.of(word) for word in decode_micro_ops(data)]
