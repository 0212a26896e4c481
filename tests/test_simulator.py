"""The simulator on hand-built instruction records, each checked against expectations worked
by hand or by plain NumPy/Python integer arithmetic written here, independently of
`aipuc.numerics`; the record encoding round-trips; bad addresses stop the simulation.

The last tests show the stream is the product: corrupting one address of a compiled model's
stream, or two buffers of its memory plan, gives wrong numbers (and the plan verifier
catches the plan)."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from lowering_harness import lowered_in_memory, samples_of, stream_outputs, zoo_model
from xdsl.dialects.builtin import i8

import aipuc
from aipuc.config import CompilerConfig
from aipuc.dialects import aipu, mem
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU
from aipuc.lowering.emit_elf import emit_program
from aipuc.lowering.mem_plan import verify_plan
from aipuc.outputs import COMPILED_MODEL
from aipuc.runtime import loader
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.device import Device
from aipuc.runtime.sim.elf import ElfFile
from aipuc.runtime.sim.isa import DwpuFlag, DwpuMode, Field, MicroOpcode, MvmFlag, Opcode
from aipuc.runtime.sim.memory import Memories, Region, SimulationError
from aipuc.runtime.sim.program import DeviceProgram, IoBuffer, SegmentImage
from aipuc.runtime.sim.simulator import Simulator

DDR, L1 = 0x1000, 0x10000
"""Device addresses of the two memories of the test device (4 KiB DDR, 8 KiB L1)."""


def device() -> Memories:
    return Memories([Region("ddr", DDR, 4096), Region("l1.0", L1, 8192)])


def run(memories: Memories, *records: bytes) -> None:
    Simulator(memories).run(isa.Stream(b"".join(records)))


def put(memories: Memories, address: int, array) -> None:
    memories.load_bytes(address, np.ascontiguousarray(array).tobytes())


def get(memories: Memories, address: int, shape, dtype=np.int8) -> np.ndarray:
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer(memories.dump_bytes(address, count), dtype).reshape(shape)


def pad5(values, fill):
    """A block of up to five axes, as records hold it (leading axes of size 1)."""
    return [fill] * (5 - len(values)) + list(values)


def requantize(acc: int, multiplier: int, shift: int, zero_point: int) -> int:
    """The fixed-point rule of the ISA, in Python integers: one rounding, half up, clamped."""
    value = ((acc * multiplier + (1 << (shift - 1))) >> shift) + zero_point
    return max(-128, min(127, value))


# ------------------------------------------------------------------------------ encoding


def _random_fields(opcode: Opcode, rng: np.random.Generator) -> dict:
    fields = {}
    for name, type_, count, _ in isa.FORMATS[opcode]:
        info = np.iinfo(np.dtype(type_))
        low, high = max(info.min, -(2**40)), min(info.max, 2**40)
        values = rng.integers(low, high, size=count, endpoint=True)
        fields[name] = values if count > 1 else int(values[0])
    return fields


@pytest.mark.parametrize("opcode", list(Opcode))
def test_records_round_trip(opcode: Opcode):
    rng = np.random.default_rng(int(opcode))
    fields = _random_fields(opcode, rng)
    data = isa.encode(opcode, fields, flags=5, core=3) + isa.encode(Opcode.FILL, {"value": -7})
    assert len(data) == 2 * isa.RECORD_BYTES
    (first, record), (second, fill) = list(isa.Stream(data).records())
    assert (first, second) == (opcode, Opcode.FILL)
    assert int(record["opcode"]) == opcode and int(record["unit"]) == isa.UNIT_OF[opcode]
    assert (int(record["core"]), int(record["flags"])) == (3, 5)
    for name, value in fields.items():
        np.testing.assert_array_equal(record[name], value, err_msg=name)
    assert int(fill["value"]) == -7 and int(fill["dst"]) == 0


def test_fields_not_given_are_zero():
    """A record or instruction leaves every field it is not given at zero, flags and core
    included, and a decoded micro-op's opcode is a MicroOpcode."""
    (_, record), (_, fill) = isa.Stream(isa.encode(Opcode.MVM, {"n": 3}) + isa.encode(
        Opcode.FILL, {})).records()  # fmt: skip
    assert (int(record["flags"]), int(record["core"]), int(record["n"])) == (0, 0, 3)
    assert record["pads"].tolist() == [0, 0, 0, 0] and int(fill["value"]) == 0
    instruction = isa.Instruction(Opcode.MVM, {"n": 3})
    assert instruction.fields["pads"] == (0, 0, 0, 0) and instruction.fields["k_len"] == 0
    assert instruction.encode() == isa.encode(Opcode.MVM, {"n": 3})
    (micro,) = isa.decode_micro_ops(isa.encode_micro_ops([{"op": MicroOpcode.FADD, "a": 1}]))
    assert type(isa.MicroOp.of(micro).op) is MicroOpcode


def test_micro_ops_round_trip_and_are_32_bytes():
    words = [
        {"op": MicroOpcode.LOAD, "dst": 0, "slot": 2},
        {"op": MicroOpcode.REQUANT, "dst": 1, "a": 0, "imm0": 2**31 - 1, "imm1": 62, "imm2": -128},
        {"op": MicroOpcode.LUT, "dst": 2, "a": 1, "addr": 2**40 + 17},
        {"op": MicroOpcode.SELECT, "dst": 3, "a": 0, "b": 1, "c": 2},
    ]
    data = isa.encode_micro_ops(words)
    assert len(data) == 4 * isa.MICRO_OP_BYTES
    decoded = isa.decode_micro_ops(data)
    for word, fields in zip(decoded, words, strict=True):
        for name, value in fields.items():
            assert int(word[name]) == int(value), name


_CTYPES = {
    "u1": ctypes.c_uint8, "<i1": ctypes.c_int8, "<u2": ctypes.c_uint16, "<i2": ctypes.c_int16,
    "<u4": ctypes.c_uint32, "<i4": ctypes.c_int32, "<u8": ctypes.c_uint64, "<i8": ctypes.c_int64,
}  # fmt: skip


@pytest.mark.parametrize("opcode", list(Opcode))
def test_record_layout_is_the_c_struct_layout(opcode: Opcode):
    """Header then payload, in order, naturally aligned, padded to 128 bytes: the layout a C
    compiler gives the same struct (ctypes computes it independently)."""
    fields = [(f.name, f.type, f.count) for f in (*isa.HEADER_FIELDS, *isa.FORMATS[opcode])]

    class Record(ctypes.LittleEndianStructure):
        _fields_ = [(n, _CTYPES[t] * c if c > 1 else _CTYPES[t]) for n, t, c in fields]

    layout = isa._record_dtype(isa.FORMATS[opcode], isa.RECORD_BYTES)
    assert layout == isa.DTYPES[opcode]
    assert layout.names == tuple(name for name, _, _ in fields)
    assert layout.itemsize == isa.RECORD_BYTES >= ctypes.sizeof(Record)
    for name, type_, count in fields:
        dtype, offset = layout.fields[name][:2]
        assert offset == getattr(Record, name).offset, name
        assert dtype == np.dtype(type_ if count == 1 else (type_, (count,))), name


def test_a_payload_past_the_record_is_refused():
    with pytest.raises(AssertionError, match="record of 129 bytes exceeds 128"):
        isa._record_dtype([Field("a", "<u8", 15, ""), Field("b", "u1", 1, "")], isa.RECORD_BYTES)
    assert isa._record_dtype([Field("a", "<u8", 15, "")], isa.RECORD_BYTES).itemsize == 128


def test_encoding_is_little_endian():
    data = isa.encode(Opcode.DMA, {"src": 0x0102030405060708})
    offset = isa.DTYPES[Opcode.DMA].fields["src"][1]
    assert data[0] == Opcode.DMA
    assert data[offset : offset + 8] == bytes([8, 7, 6, 5, 4, 3, 2, 1])


# ------------------------------------------------------------------------------ DMA, FILL


def dma(src: int, dst: int, sizes, src_strides, dst_strides) -> bytes:
    return isa.encode(
        Opcode.DMA,
        {
            "src": src,
            "dst": dst,
            "sizes": pad5(sizes, 1),
            "src_strides": pad5(src_strides, 0),
            "dst_strides": pad5(dst_strides, 0),
        },
    )


def test_dma_transposes_with_strides():
    memories = device()
    matrix = np.arange(12, dtype=np.int8).reshape(3, 4)
    put(memories, DDR, matrix)
    # dst[j, i] = src[i, j]: walk j (4) then i (3), reading with strides (1, 4).
    run(memories, dma(DDR, L1, [4, 3], [1, 4], [3, 1]))
    np.testing.assert_array_equal(
        get(memories, L1, (4, 3)), [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    )


def test_dma_negative_stride_and_five_axes():
    memories = device()
    put(memories, DDR, np.arange(32, dtype=np.int8))
    run(memories, dma(DDR + 31, L1, [32], [-1], [1]))  # reversed
    np.testing.assert_array_equal(get(memories, L1, (32,)), np.arange(31, -1, -1))
    # Five axes of 2: element (a, b, c, d, e) of a dense 2x2x2x2x2 source to a dense
    # destination in the reversed axis order.
    src_strides, dst_strides = [16, 8, 4, 2, 1], [1, 2, 4, 8, 16]
    run(memories, dma(DDR, L1 + 64, [2] * 5, src_strides, dst_strides))
    out = get(memories, L1 + 64, (32,))
    for index in np.ndindex(2, 2, 2, 2, 2):
        source = sum(i * s for i, s in zip(index, src_strides, strict=True))
        dest = sum(i * s for i, s in zip(index, dst_strides, strict=True))
        assert out[dest] == source


def test_fill_writes_only_its_block():
    memories = device()
    record = isa.encode(
        Opcode.FILL,
        {"dst": L1 + 1, "sizes": pad5([2, 3], 1), "dst_strides": pad5([8, 1], 0), "value": -5},
    )
    run(memories, record)
    expected = np.zeros(16, np.int8)
    expected[[1, 2, 3, 9, 10, 11]] = -5
    np.testing.assert_array_equal(get(memories, L1, (16,)), expected)


def test_a_region_holds_its_base_up_to_its_end():
    region = Region("l1", 0x1000, 0x100)
    assert 0x1000 in region and 0x10FF in region
    assert 0xFFF not in region and 0x1100 not in region


def test_a_jump_needs_a_stream_fetched_from_memory():
    with pytest.raises(SimulationError, match="^a JUMP in a stream run without fetching"):
        run(device(), isa.encode(Opcode.JUMP, {"target": L1}))


def test_fetching_garbage_or_never_ending_is_an_error():
    memories = device()
    memories.load_bytes(L1, bytes([0xEE]) * isa.RECORD_BYTES)
    with pytest.raises(SimulationError, match=f"^record at {L1:#x} is not an instruction \\("):
        Simulator(memories).run_from(L1)
    memories.load_bytes(L1, isa.encode(Opcode.JUMP, {"target": L1}))  # jumps to itself
    with pytest.raises(SimulationError, match="^no END after 3 records$"):
        Simulator(memories).run_from(L1, limit=3)


def test_a_device_segment_pads_and_transposes_its_io():
    """A segment whose stream copies its input buffer to its output buffer: the host's
    [2, 3] int16 input is stored transposed ([3, 2], `perm` (1, 0)) in a [4, 2] buffer whose
    last row holds the fill code, and the output comes back as the leading [2, 3] block."""
    io = {"shape": (4, 2), "perm": (1, 0), "dtype": "int16", "logical": (2, 3)}
    copy = isa.encode(
        Opcode.DMA,
        {"src": L1 + 1024, "dst": L1 + 2048, "sizes": pad5([16], 1),
         "src_strides": pad5([1], 0), "dst_strides": pad5([1], 0)},
    ) + isa.encode(Opcode.END, {})  # fmt: skip
    program = DeviceProgram(
        [Region("l1", L1, 4096)],
        [(L1, copy)],
        [SegmentImage(0, L1, [IoBuffer("in", L1 + 1024, **io, fill=-7)],
                      [IoBuffer("out", L1 + 2048, **io)])],
    )  # fmt: skip
    device_ = Device(program)
    x = np.array([[1, -300, 3], [400, 5, -6]], np.int16)
    (out,) = device_.launch(0, [x])
    assert out.dtype == np.int16 and out.tolist() == x.tolist()
    stored = get(device_.memories, L1 + 1024, (4, 2), np.int16)
    assert stored.tolist() == [[1, 400], [-300, 5], [3, -6], [-7, -7]]
    with pytest.raises(ValueError, match=r"^segment 0 input of shape \(3, 2\), expected \(2, 3\)$"):
        device_.launch(0, [x.T])
    with pytest.raises(ValueError, match="^segment 0 takes 1 inputs, got 2$"):
        device_.launch(0, [x, x])


# ------------------------------------------------------------------------ paged memories

PAGE = 16


def paged_memories(table) -> Memories:
    window = Region("paged", 0x1000, len(table) * PAGE, PAGE, tuple(table), 4 * PAGE)
    return Memories([window, Region("flat", 0x8000, 256)])


def test_a_block_over_scattered_pages_lands_on_the_translated_bytes():
    table = [2, -1, 0, 3, -1, 1]  # rows at 6, 46, 86 (10 bytes each) skip pages 1 and 4
    # a [3, 5] int16 block with a row stride of 40 bytes from virtual offset 6 crosses pages
    values = np.arange(15, dtype=np.int16).reshape(3, 5) * 257 - 1000
    memories = paged_memories(table)
    memories.write(0x1000 + 6, [3, 5], [40, 2], values, np.int16)
    expected = np.zeros(4 * PAGE, np.uint8)
    for row in range(3):
        for column in range(5):
            data = np.array([values[row, column]], "<i2").view(np.uint8)
            for byte in range(2):
                virtual = 6 + row * 40 + column * 2 + byte
                expected[table[virtual // PAGE] * PAGE + virtual % PAGE] = data[byte]
    np.testing.assert_array_equal(memories.arrays["paged"], expected)
    np.testing.assert_array_equal(memories.read(0x1000 + 6, [3, 5], [40, 2], np.int16), values)


def test_consecutive_physical_pages_and_unmapped_pages():
    memories = paged_memories([1, 2, -1])
    memories.load_bytes(0x1000 + 10, bytes(range(20)))  # virtual pages 0, 1: physical 1, 2
    assert memories.arrays["paged"][PAGE + 10 : 3 * PAGE - 2].tolist() == list(range(20))
    assert memories.dump_bytes(0x1000 + 10, 20) == bytes(range(20))
    with pytest.raises(SimulationError, match=r"^access \[0x1020, 0x1023\] touches an unmapped"):
        memories.read(0x1000 + 2 * PAGE + 3, [4], [-1])  # the same bytes, backwards
    with pytest.raises(SimulationError, match=r"^access \[0x1020, 0x1023\] touches an unmapped"):
        memories.read(0x1000 + 2 * PAGE, [4], [1])
    with pytest.raises(SimulationError, match="leaves paged"):
        memories.read(0x1000 + 3 * PAGE - 2, [4], [1])


def test_overlapping_regions_are_refused():
    with pytest.raises(SimulationError, match="overlap"):
        Memories([Region("a", 0, 100), Region("b", 50, 100)])


def test_pages_mapped_in_order_are_one_view_and_the_others_are_gathered():
    """Page table 0, 2, 3, 1 (16-byte pages): virtual pages 1-2 are physical 2-3, in order,
    so a block over them starts at physical 2 * 16 (not at page 0's frame); pages 0-1 are
    physical 0 and 2, two apart; pages 2-3 are 3 and 1, and a block ending on page 3's
    first byte touches both."""
    memories = paged_memories([0, 2, 3, 1])
    physical = np.arange(64, dtype=np.uint8)
    memories.arrays["paged"][:] = physical
    frames = [0, 2, 3, 1]

    def expected(virtual: list[int]) -> list[int]:
        return [int(physical[frames[v // PAGE] * PAGE + v % PAGE]) for v in virtual]

    for start, length in ((20, 24), (4, 20), (40, 9), (47, 1)):
        block = memories.read(0x1000 + start, [length], [1], np.uint8)
        assert block.tolist() == expected(list(range(start, start + length))), start
    backwards = memories.read(0x1000 + 47, [20], [-1], np.uint8)  # pages 2 down to 1
    assert backwards.tolist() == expected(list(range(47, 27, -1)))


def test_blocks_with_two_negative_strides_and_empty_or_scalar_blocks():
    memories = device()
    put(memories, L1, np.arange(12, dtype=np.int8))
    # the 3x4 block read from its last element backwards on both axes
    flipped = memories.read(L1 + 11, [3, 4], [-4, -1])
    assert flipped.tolist() == np.arange(12).reshape(3, 4)[::-1, ::-1].tolist()
    with pytest.raises(SimulationError, match=f"^access \\[{L1 - 6:#x}, {L1 + 5:#x}\\] leaves"):
        memories.read(L1 + 5, [3, 4], [-4, -1])  # both axes reach below the region
    assert memories.read(L1, [0, 3], [3, 1], np.int16).shape == (0, 3)
    assert memories.read(L1, [0, 3], [3, 1], np.int16).dtype == np.int16
    assert memories.read(L1 + 5, [], [], np.int8).tolist() == 5
    memories.write(L1, [0], [1], np.array([], np.int8))
    # an empty block touches no memory: not even an address outside every region is an error
    assert memories.read(0xDEAD_0000, [0], [1]).size == 0
    memories.write(0xDEAD_0000, [2, 0], [1, 1], np.zeros((2, 0), np.int8))
    memories.write(L1 + 2, [], [], -7)
    assert get(memories, L1, (4,)).tolist() == [0, 1, -7, 3]


def test_adjacent_regions_and_accesses_at_a_region_end():
    memories = Memories([Region("a", 0x100, 0x10), Region("b", 0x110, 0x10)])  # touching
    memories.load_bytes(0x10F, b"\x01")
    memories.load_bytes(0x110, b"\x02")
    assert memories.dump_bytes(0x10F, 1) + memories.dump_bytes(0x110, 1) == b"\x01\x02"
    with pytest.raises(SimulationError, match=r"^access \[0x11e, 0x120\] leaves b"):
        memories.read(0x11E, [3], [1])
    with pytest.raises(SimulationError, match=r"^address 0x120 is in no memory$"):
        memories.read(0x120, [1], [1])


# ------------------------------------------------------------------------------ MVM


def imc_load(src: int, k: int, n: int, weightset: int, row_stride: int | None = None) -> bytes:
    fields = {"src": src, "k": k, "n": n, "weightset": weightset, "row_stride": row_stride or n}
    return isa.encode(Opcode.IMC_LOAD, fields)


def mvm(flags: int = MvmFlag.REQUANTIZE, **fields) -> bytes:
    defaults = {"kernel": [1, 1], "stride": [1, 1], "dilation": [1, 1], "icr": 1}
    return isa.encode(Opcode.MVM, defaults | fields, flags=flags)


def table(rows) -> np.ndarray:
    return np.asarray(rows, "<i4")


# Two pixels of 64 lanes, 3 output channels, input zero point 2, weight zero point 1.
X64 = ((np.arange(2)[:, None] * 7 + np.arange(64)[None, :] * 3) % 23 - 11).astype(np.int8)
W64 = ((np.arange(64)[:, None] + 2 * np.arange(3)[None, :]) % 5 - 2).astype(np.int8)
BIAS, MULT, SHIFT, OUT_ZP = [10, -20, 30], 1518500250, 36, -1
MVM_TABLE = table([[b, MULT, SHIFT, OUT_ZP] for b in BIAS])


def expected_1x1() -> np.ndarray:
    out = np.zeros((1, 2, 3), np.int8)
    for p in range(2):
        for j in range(3):
            acc = sum((int(X64[p, c]) - 2) * (int(W64[c, j]) - 1) for c in range(64)) + BIAS[j]
            out[0, p, j] = requantize(acc, MULT, SHIFT, OUT_ZP)
    return out


def _mvm_1x1_fields(**extra) -> dict:
    return {
        "in_addr": L1,
        "in_hw": [1, 2],
        "in_strides": [128, 64],
        "in_c": 64,
        "out_addr": L1 + 512,
        "out_hw": [1, 2],
        "out_strides": [6, 3],
        "rq_addr": L1 + 1024,
        "n": 3,
        "in_zp": 2,
        "w_zp": 1,
    } | extra


def _mvm_device() -> Memories:
    memories = device()
    put(memories, L1, X64)
    put(memories, DDR, W64)
    put(memories, L1 + 1024, MVM_TABLE)
    return memories


def test_mvm_dense_1x1_requantizes_each_channel():
    memories = _mvm_device()
    run(memories, imc_load(DDR, 64, 3, 0), mvm(**_mvm_1x1_fields(k_start=0, k_len=64, weightset=0)))
    np.testing.assert_array_equal(get(memories, L1 + 512, (1, 2, 3)), expected_1x1())


def test_mvm_k_chunks_accumulate_int32_partial_sums():
    memories = _mvm_device()
    acc = L1 + 2048
    first = _mvm_1x1_fields(k_start=0, k_len=32, weightset=0, acc_addr=acc, acc_strides=[24, 12])
    second = _mvm_1x1_fields(k_start=32, k_len=32, weightset=3, acc_addr=acc, acc_strides=[24, 12])
    run(
        memories,
        imc_load(DDR, 32, 3, 0),
        imc_load(DDR + 32 * 3, 32, 3, 3),
        mvm(0, **first),
    )
    partial = get(memories, acc, (1, 2, 3), "<i4")
    for p in range(2):
        for j in range(3):
            assert partial[0, p, j] == sum(
                (int(X64[p, c]) - 2) * (int(W64[c, j]) - 1) for c in range(32)
            )
    run(
        memories,
        imc_load(DDR + 32 * 3, 32, 3, 3),
        mvm(MvmFlag.ACCUMULATE | MvmFlag.REQUANTIZE, **second),
    )
    np.testing.assert_array_equal(get(memories, L1 + 512, (1, 2, 3)), expected_1x1())


def test_mvm_swicr_3x3_with_padding_stride_and_dilation():
    """3 dense lanes per tap (swICR): K = 27 for 3x3, padding holds the zero point."""
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(5, 5, 3), dtype=np.int8)
    w = rng.integers(-127, 128, size=(27, 2), dtype=np.int8)
    rows = [[7, 1 << 30, 42, 3], [-9, 1 << 30, 41, -4]]
    zp = -5
    for stride, dilation, pads, out_hw in (
        (2, 1, [1, 1, 1, 1], (3, 3)),
        (1, 2, [0, 0, 0, 0], (1, 1)),
        (1, 1, [1, 0, 0, 2], (4, 5)),
    ):
        memories = device()
        put(memories, L1, x)
        put(memories, DDR, w)
        put(memories, L1 + 1024, table(rows))
        record = mvm(
            MvmFlag.REQUANTIZE | MvmFlag.SWICR,
            in_addr=L1, in_hw=[5, 5], in_strides=[15, 3], in_c=3,
            out_addr=L1 + 512, out_hw=list(out_hw), out_strides=[out_hw[1] * 2, 2],
            rq_addr=L1 + 1024, n=2, in_zp=zp, kernel=[3, 3], stride=[stride, stride],
            dilation=[dilation, dilation], pads=pads, k_start=0, k_len=27, weightset=1,
        )  # fmt: skip
        run(memories, imc_load(DDR, 27, 2, 1), record)
        top, left = pads[0], pads[1]
        expected = np.zeros((*out_hw, 2), np.int8)
        for oh, ow, j in np.ndindex(*out_hw, 2):
            acc = rows[j][0]
            for ky, kx, c in np.ndindex(3, 3, 3):
                iy, ix = oh * stride + ky * dilation - top, ow * stride + kx * dilation - left
                if 0 <= iy < 5 and 0 <= ix < 5:  # padding is the zero point: contributes 0
                    acc += (int(x[iy, ix, c]) - zp) * int(w[(ky * 3 + kx) * 3 + c, j])
            expected[oh, ow, j] = requantize(acc, *rows[j][1:])
        np.testing.assert_array_equal(get(memories, L1 + 512, (*out_hw, 2)), expected)


def test_mvm_icr_uses_copy_ow_mod_icr():
    """ICR 2: x-position ow multiplies by the weight copy in columns (ow % 2) * n ..."""
    memories = device()
    x = (np.arange(4 * 64).reshape(4, 64) % 7 - 3).astype(np.int8)
    w = np.zeros((64, 4), np.int8)
    w[:, 0], w[:, 1] = 1, 2  # copy 0
    w[:, 2], w[:, 3] = -1, 3  # copy 1 (differs, to see which copy each pixel used)
    put(memories, L1, x)
    put(memories, DDR, w)
    put(memories, L1 + 1024, table([[0, 1 << 30, 30, 0]] * 2))  # multiplier 1
    record = mvm(
        in_addr=L1, in_hw=[1, 4], in_strides=[256, 64], in_c=64, out_addr=L1 + 512,
        out_hw=[1, 4], out_strides=[8, 2], rq_addr=L1 + 1024, n=2, icr=2, k_start=0, k_len=64,
    )  # fmt: skip
    run(memories, imc_load(DDR, 64, 4, 0), record)
    sums = x.astype(int).sum(axis=1)
    expected = [[s, 2 * s] if ow % 2 == 0 else [-s, 3 * s] for ow, s in enumerate(sums)]
    np.testing.assert_array_equal(get(memories, L1 + 512, (4, 2)), np.clip(expected, -128, 127))


def test_mvm_errors():
    memories = _mvm_device()
    fields = _mvm_1x1_fields(k_start=0, k_len=64, weightset=2)
    with pytest.raises(
        SimulationError, match="record 0 \\(MVM\\): MVM uses weightset 2, never loaded"
    ):
        run(memories, mvm(**fields))
    with pytest.raises(SimulationError, match="IMC weightset of 513x3 exceeds 512x64"):
        run(memories, imc_load(DDR, 513, 3, 0))
    with pytest.raises(SimulationError, match="weightset holds 64x3, the MVM expects 32x3"):
        run(memories, imc_load(DDR, 64, 3, 2), mvm(**(fields | {"k_len": 32})))
    with pytest.raises(SimulationError, match=r"^record 2 \(MVM\): .* expects 64x6 \(ICR 2\)$"):
        run(
            memories, imc_load(DDR, 64, 3, 1), imc_load(DDR, 64, 3, 2), mvm(**(fields | {"icr": 2}))
        )
    with pytest.raises(SimulationError, match="not whole PWORDs"):
        run(memories, imc_load(DDR, 64, 3, 2), mvm(**(fields | {"in_c": 3})))
    last = AIPU.imc_weightsets
    with pytest.raises(SimulationError, match=f"IMC_LOAD\\): weightset {last} does not exist$"):
        run(memories, imc_load(DDR, 64, 3, last))
    run(memories, imc_load(DDR, 1, 3, last - 1))  # one row, the last weightset: fine


def test_dpu_registers_are_checked():
    """r16 is past the 16 registers; r7 is read before anything wrote it."""
    beyond = [{"op": MicroOpcode.LOAD, "dst": AIPU.dpu_registers, "slot": 0}]
    with pytest.raises(SimulationError, match=r"DPU register r16 does not exist \(16\)$"):
        dpu_run(beyond)
    unset = [{"op": MicroOpcode.STORE, "a": 7, "slot": 1}]
    with pytest.raises(SimulationError, match="DPU register r7 is read before it is written$"):
        dpu_run(unset)


def test_mvm_k_rows_past_the_input_vector_are_an_error():
    """64 lanes of one 1x1 tap: rows 60..67 run past row 63."""
    memories = _mvm_device()
    fields = _mvm_1x1_fields(k_start=60, k_len=8, weightset=2)
    with pytest.raises(SimulationError, match=r"\(MVM\): K rows 60\.\.68 exceed the vector$"):
        run(memories, imc_load(DDR, 8, 3, 2), mvm(**fields))


@pytest.mark.parametrize("end", ["max", "min"])
def test_mvm_partial_sums_may_reach_either_end_of_int32_and_no_further(end):
    """Partial sums (no requantization) accumulate onto the int32 sums in memory. Zero
    points make every product g positive (or every one negative); starting from
    INT32_MAX - g (INT32_MIN - g) the sums land exactly on that end of int32 and are
    stored as they are; one more is an error."""
    limit = int(getattr(np.iinfo(np.int32), end))
    in_zp, w_zp = (-100, -3) if end == "max" else (100, -3)
    g = np.array(
        [[sum((int(X64[p, c]) - in_zp) * (int(W64[c, j]) - w_zp) for c in range(64))
          for j in range(3)] for p in range(2)]
    )[None]  # fmt: skip
    assert (g > 0).all() if end == "max" else (g < 0).all()
    acc = L1 + 2048
    fields = _mvm_1x1_fields(
        k_start=0, k_len=64, weightset=0, acc_addr=acc, acc_strides=[24, 12], in_zp=in_zp,
        w_zp=w_zp,
    )  # fmt: skip
    records = (imc_load(DDR, 64, 3, 0), mvm(MvmFlag.ACCUMULATE, **fields))
    memories = _mvm_device()
    put(memories, acc, (limit - g).astype("<i4"))
    run(memories, *records)
    np.testing.assert_array_equal(get(memories, acc, (1, 2, 3), "<i4"), np.full(g.shape, limit))
    beyond = limit - g
    beyond[0, 1, 2] += 1 if end == "max" else -1
    memories = _mvm_device()
    put(memories, acc, beyond.astype("<i4"))
    with pytest.raises(SimulationError, match=r"MVM partial sums overflow int32$"):
        run(memories, *records)


def test_mvm_k_chunk_ending_one_row_into_a_tap():
    """swICR taps of 3 lanes: rows 0..9 of a 3x3 kernel are taps 0, 1, 2 and the first row
    of tap 3; the chunk's last tap is counted from its last row, 9 // 3 = 3."""
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, size=(3, 3, 3), dtype=np.int8)
    w = rng.integers(-127, 128, size=(10, 1), dtype=np.int8)
    memories = device()
    put(memories, L1, x)
    put(memories, DDR, w)
    record = mvm(
        MvmFlag.SWICR, in_addr=L1, in_hw=[3, 3], in_strides=[9, 3], in_c=3, out_hw=[1, 1],
        n=1, in_zp=0, kernel=[3, 3], k_start=0, k_len=10, weightset=0, acc_addr=L1 + 512,
        acc_strides=[4, 4],
    )  # fmt: skip
    run(memories, imc_load(DDR, 10, 1, 0), record)
    vector = x.reshape(-1).astype(int)[:10]  # taps (ky, kx) major, 3 lanes each
    assert get(memories, L1 + 512, (1,), "<i4")[0] == int(vector @ w[:, 0].astype(int))


# ------------------------------------------------------------------------------ DWPU


DWPU_PROGRAM = DDR + 2048
"""Where the tests' DWPU program word lives."""


def dwpu(
    memories: Memories, mode: DwpuMode, flags: int = 0, w_addr: int = 0, rq_addr: int = 0, **fields
) -> bytes:
    """A DWPU record; its program word (mode, flags, table addresses) written to memory."""
    word = np.zeros((), isa.DWPU_OP)
    word["mode"], word["flags"], word["w_addr"], word["rq_addr"] = mode, flags, w_addr, rq_addr
    memories.load_bytes(DWPU_PROGRAM, word.tobytes())
    defaults = {"kernel": [1, 1], "stride": [1, 1], "dilation": [1, 1], "program": DWPU_PROGRAM}
    return isa.encode(Opcode.DWPU, defaults | fields)


def _io(in_hw, channels, out_hw) -> dict:
    return {
        "in_addr": L1,
        "in_hw": list(in_hw),
        "in_strides": [in_hw[1] * channels, channels],
        "channels": channels,
        "out_addr": L1 + 1024,
        "out_hw": list(out_hw),
        "out_strides": [out_hw[1] * channels, channels],
    }


def test_dwpu_depthwise_conv_per_channel():
    memories = device()
    x = np.arange(18, dtype=np.int8).reshape(3, 3, 2) - 9
    w = np.array([[1, -1], [2, 0], [0, 3]] * 3, np.int8).reshape(3, 3, 2)
    rows = [[5, 1 << 30, 31, 1, -2], [-3, 1 << 30, 30, -1, 4]]  # bias, m, shift, out_zp, in_zp
    put(memories, L1, x)
    put(memories, DDR, w)
    rq_addr = DDR + 4096 - table(rows).nbytes  # flush with the end of DDR: read exactly [C, 5]
    put(memories, rq_addr, table(rows))
    record = dwpu(
        memories, DwpuMode.CONV, DwpuFlag.PER_CHANNEL, **_io((3, 3), 2, (3, 3)), w_addr=DDR,
        rq_addr=rq_addr, kernel=[3, 3], pads=[1, 1, 1, 1],
    )  # fmt: skip
    run(memories, record)
    expected = np.zeros((3, 3, 2), np.int8)
    for oh, ow, c in np.ndindex(3, 3, 2):
        bias, m, s, out_zp, in_zp = rows[c]
        acc = bias
        for ky, kx in np.ndindex(3, 3):
            iy, ix = oh + ky - 1, ow + kx - 1
            if 0 <= iy < 3 and 0 <= ix < 3:
                acc += (int(x[iy, ix, c]) - in_zp) * int(w[ky, kx, c])
        expected[oh, ow, c] = requantize(acc, m, s, out_zp)
    np.testing.assert_array_equal(get(memories, L1 + 1024, (3, 3, 2)), expected)


@pytest.mark.parametrize(
    "in_hw, kernel, stride, dilation, pads, in_zp, weight_range, shift",
    [
        # strided and dilated windows (the window view, not the flattened planes)
        ((5, 5), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), -3, (-4, 5), 33),
        ((6, 4), (2, 3), (2, 1), (2, 1), (2, 0, 1, 1), 7, (-4, 5), 33),
        ((6, 5), (3, 2), (1, 3), (1, 2), (0, 1, 2, 0), 2, (-4, 5), 33),
        # 9 taps of up to (2**16 + 134) x 127 pass 2**24: float64 sums, unit and 2x2 strides
        ((4, 4), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2**16 + 7, (-127, 128), 51),
        ((5, 5), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), -(2**16), (-127, 128), 51),
        # centred codes of 2**24 and more (an int32 input zero point): float64 operands
        ((5, 5), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 2**24 + 5, (-1, 3), 53),
        ((4, 4), (3, 3), (1, 1), (1, 1), (0, 1, 1, 0), -(2**24), (-1, 3), 53),
    ],
)
def test_dwpu_depthwise_conv_geometry_and_wide_zero_points(
    in_hw, kernel, stride, dilation, pads, in_zp, weight_range, shift
):
    """The DWPU conv against Python integer loops: the window view at non-unit strides,
    float64 sums, input zero points far outside int8 (the table holds int32): 3 channels,
    the first with that zero point, a bias in every row."""
    memories, channels = device(), 3
    rng = np.random.default_rng(sum(in_hw) + shift)
    x = rng.integers(-128, 128, (*in_hw, channels), dtype=np.int8)
    w = rng.integers(*weight_range, (*kernel, channels), dtype=np.int8)
    top, left, bottom, right = pads
    out_hw = tuple(
        (in_hw[a] + pads[a] + pads[a + 2] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
        for a in range(2)
    )
    rows = [  # bias, multiplier, shift, output zero point, input zero point
        [1000, 1 << 30, shift, 3, in_zp],
        [-77, 3 << 28, shift - 2, -5, 1],
        [0, (1 << 31) - 1, shift - 4, 0, -128],
    ]
    put(memories, L1, x)
    put(memories, DDR, w)
    put(memories, DDR + 1024, table(rows))
    record = dwpu(
        memories, DwpuMode.CONV, DwpuFlag.PER_CHANNEL, **_io(in_hw, channels, out_hw),
        w_addr=DDR, rq_addr=DDR + 1024, kernel=list(kernel), stride=list(stride),
        dilation=list(dilation), pads=list(pads),
    )  # fmt: skip
    run(memories, record)
    expected = np.zeros((*out_hw, channels), np.int8)
    for oh, ow, c in np.ndindex(*out_hw, channels):
        bias, m, s, out_zp, zp = rows[c]
        acc = bias
        for ky, kx in np.ndindex(*kernel):
            iy = oh * stride[0] + ky * dilation[0] - top
            ix = ow * stride[1] + kx * dilation[1] - left
            if 0 <= iy < in_hw[0] and 0 <= ix < in_hw[1]:
                acc += (int(x[iy, ix, c]) - zp) * int(w[ky, kx, c])
        expected[oh, ow, c] = requantize(acc, m, s, out_zp)
    assert len(np.unique(expected[..., 0])) > 2  # not saturated: the sums decide the codes
    np.testing.assert_array_equal(get(memories, L1 + 1024, (*out_hw, channels)), expected)


@pytest.mark.parametrize("stride", [1, 2])
def test_dwpu_conv_sums_past_float32_integers_exactly(stride):
    """Hand-worked: 3x3 taps of (1 - (-2**16)) x 127 = 8323199 (odd); from the third tap
    on the partial sums are odd and above 2**24, which float32 rounds. The bias brings the
    exact sum, 9 x 8323199 = 74908791, back to 20, and the table scales by 1: every output
    is 20 + 3, and one unit lost anywhere shows."""
    memories = device()
    put(memories, L1, np.ones((5, 5, 1), np.int8))
    put(memories, DDR, np.full((3, 3, 1), 127, np.int8))
    put(memories, DDR + 1024, table([[-74908771, 1 << 30, 30, 3, -(2**16)]]))
    out_hw = (3, 3) if stride == 1 else (2, 2)
    record = dwpu(
        memories, DwpuMode.CONV, DwpuFlag.PER_CHANNEL, **_io((5, 5), 1, out_hw), w_addr=DDR,
        rq_addr=DDR + 1024, kernel=[3, 3], stride=[stride, stride],
    )  # fmt: skip
    run(memories, record)
    np.testing.assert_array_equal(get(memories, L1 + 1024, out_hw), np.full(out_hw, 23))


@pytest.mark.parametrize("code, other, zero_point", [(-128, 127, 127), (127, -128, -128)])
def test_dwpu_conv_picks_float64_from_the_centred_codes(code, other, zero_point):
    """31 x 31 taps of weight 127 over codes centred to -255 (or 255) but one, centred to 0:
    960 products of -+32385, whose odd partial sums pass 2**24, which float32 rounds (440
    off at the end). The largest centred code comes from the tile's minimum (or maximum)
    alone, and makes the conv sum in float64. The bias brings the exact sum, -+31089600,
    to 20, scaled by 1."""
    memories = device()
    tile = np.full((31, 31, 1), code, np.int8)
    tile[0, 0, 0] = other
    put(memories, L1, tile)
    put(memories, DDR, np.full((31, 31, 1), 127, np.int8))
    exact = 960 * (code - zero_point) * 127
    put(memories, DDR + 1024, table([[20 - exact, 1 << 30, 30, 0, zero_point]]))
    record = dwpu(
        memories, DwpuMode.CONV, DwpuFlag.PER_CHANNEL, **_io((31, 31), 1, (1, 1)),
        w_addr=DDR, rq_addr=DDR + 1024, kernel=[31, 31],
    )  # fmt: skip
    run(memories, record)
    assert get(memories, L1 + 1024, (1,)).tolist() == [20]


@pytest.mark.parametrize("bias, expected", [(0, None), (-(2**31 - 1), 60)])
def test_dwpu_conv_sums_beyond_int32(bias, expected):
    """9 taps of 2**21 x 127 (input zero point -2**21) sum to 2397044736 > 2**31 - 1: an
    error, unless the bias brings the accumulator back into int32: 249561089 = 59.5 x 2**22
    + 1, scaled by 2**-22 (multiplier 2**30, shift 52): just above 59.5 -> 60."""
    memories = device()
    put(memories, L1, np.zeros((3, 3, 1), np.int8))
    put(memories, DDR, np.full((3, 3, 1), 127, np.int8))
    put(memories, DDR + 1024, table([[bias, 1 << 30, 52, 0, -(2**21)]]))
    record = dwpu(
        memories, DwpuMode.CONV, DwpuFlag.PER_CHANNEL, **_io((3, 3), 1, (1, 1)), w_addr=DDR,
        rq_addr=DDR + 1024, kernel=[3, 3],
    )  # fmt: skip
    if expected is None:
        with pytest.raises(SimulationError, match="accumulators must lie in the int32 range"):
            run(memories, record)
    else:
        run(memories, record)
        assert get(memories, L1 + 1024, (1,)).tolist() == [expected]


@pytest.mark.parametrize("in_hw", [(8, 9), (9, 8)])
def test_a_window_past_the_tile_is_an_error(in_hw):
    """3 x 3 outputs of a 3 x 3 kernel, stride 2, dilation 2 need 2 * 2 + 2 * 2 + 1 = 9 rows
    and 9 columns: one short on either axis stops the record."""
    memories = device()
    record = dwpu(
        memories, DwpuMode.MAX, **_io(in_hw, 1, (3, 3)), kernel=[3, 3], stride=[2, 2],
        dilation=[2, 2],
    )  # fmt: skip
    with pytest.raises(SimulationError, match=r"\(DWPU\): a 3x3 output needs more input than"):
        run(memories, record)
    run(memories, dwpu(memories, DwpuMode.MAX, **_io((9, 9), 1, (3, 3)), kernel=[3, 3],
                       stride=[2, 2], dilation=[2, 2]))  # fmt: skip


def test_dwpu_max_pads_with_minus_128():
    memories = device()
    x = np.full((4, 4, 1), -128, np.int8)
    x[0, 0, 0], x[3, 3, 0], x[1, 2, 0] = -120, -100, -127
    put(memories, L1, x)
    run(
        memories,
        dwpu(
            memories,
            DwpuMode.MAX,
            **_io((4, 4), 1, (2, 2)),
            kernel=[3, 3],
            stride=[2, 2],
            pads=[1, 1, 1, 1],
        ),
    )
    # Windows rows/cols -1..1 and 1..3: [[-120, -127], [-128, -100]].
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2, 2)), [[-120, -127], [-128, -100]])


def _avg_table(zero_point: int = 0) -> np.ndarray:
    """Rows per divisor 0..4 (2x2 window): real 1 / d as (2**30, 29 + log2(d)); 3 unused."""
    shifts = {0: 30, 1: 30, 2: 31, 3: 31, 4: 32}
    return table([[[0, 1 << 30, shifts[d], zero_point, 0]] for d in range(5)])


@pytest.mark.parametrize(
    "count_include_pad, extra, expected",
    [
        # Divisors 4 inside, 2 on the right column and bottom row, 1 in the corner.
        (False, (0, 0), [[7, 10, 12], [16, 19, 21], [21, 24, 25]]),
        # Padding counted: always 4.
        (True, (0, 0), [[7, 10, 6], [16, 19, 10], [10, 12, 6]]),
    ],
)
def test_dwpu_avg_divides_by_the_counted_taps(count_include_pad, extra, expected):
    memories = device()
    x = (np.arange(9, dtype=np.int8).reshape(3, 3, 1) * 3) + 1  # 1 4 7 / 10 13 16 / 19 22 25
    put(memories, L1, x)
    put(memories, DDR, _avg_table())
    flags = DwpuFlag.COUNT_INCLUDE_PAD if count_include_pad else 0
    record = dwpu(
        memories, DwpuMode.AVG, flags, **_io((3, 3), 1, (3, 3)), rq_addr=DDR, kernel=[2, 2],
        pads=[0, 0, 1, 1], extra=list(extra),
    )  # fmt: skip
    run(memories, record)
    # Window sums: 28 40 23 / 64 76 41 / 41 47 25; divided by d, rounded half up.
    np.testing.assert_array_equal(get(memories, L1 + 1024, (3, 3)), expected)


def test_dwpu_avg_reads_the_input_zero_point_of_row_0():
    """The table's input zero point is row 0's (docs/isa.md): 3 there, 100 in the divisor
    rows. 2x2 windows of 1 4 7 / 10 13 16 / 19 22 25 minus 3: sums 16, 28, 52, 64 over 4."""
    memories = device()
    put(memories, L1, (np.arange(9, dtype=np.int8).reshape(3, 3, 1) * 3) + 1)
    rows = _avg_table()
    rows[:, :, 4] = 100
    rows[0, :, 4] = 3
    put(memories, DDR, rows)
    run(memories, dwpu(memories, DwpuMode.AVG, **_io((3, 3), 1, (2, 2)), rq_addr=DDR,
                       kernel=[2, 2]))  # fmt: skip
    assert get(memories, L1 + 1024, (2, 2)).tolist() == [[4, 7], [13, 16]]


def test_dwpu_avg_extra_rows_are_reached_never_counted():
    """ceil_mode: a window past the bottom pads divides by the taps inside only."""
    memories = device()
    x = np.array([[2], [4], [9]], np.int8).reshape(3, 1, 1)
    put(memories, L1, x)
    put(memories, DDR, _avg_table())
    run(
        memories,
        dwpu(
            memories,
            DwpuMode.AVG,
            **_io((3, 1), 1, (2, 1)),
            rq_addr=DDR,
            kernel=[2, 1],
            stride=[2, 1],
            extra=[1, 0],
        ),
    )
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2,)), [3, 9])  # 6/2, 9/1


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_dwpu_avg_per_channel_with_zero_points_pads_and_overhang(count_include_pad):
    """Every side padded, ceil-mode overhang on both axes, per-channel rows per divisor with
    distinct in/out zero points; the table ends flush with DDR, so it is read exactly
    [taps + 1, C, 5]. Expected values from loops over the ISA's definition."""
    memories = device()
    (in_h, in_w), channels, (kh, kw), (sh, sw) = (4, 5), 2, (3, 2), (2, 3)
    top, left, bottom, right, extra = 1, 2, 1, 1, (1, 2)
    out_h = (in_h + top + bottom + extra[0] - kh) // sh + 1
    out_w = (in_w + left + right + extra[1] - kw) // sw + 1
    x = ((np.arange(in_h * in_w * channels) * 37) % 200 - 100).astype(np.int8)
    x = x.reshape(in_h, in_w, channels)
    in_zp, out_zp = [3, -5], [-7, 11]
    rows = [
        [[0, (1 << 30) + 9973 * d + 101 * c, 31 + d % 3, out_zp[c], in_zp[c]]
         for c in range(channels)]
        for d in range(kh * kw + 1)
    ]  # fmt: skip
    rq = table(rows)
    rq_addr = DDR + 4096 - rq.nbytes
    put(memories, L1, x)
    put(memories, rq_addr, rq)
    flags = DwpuFlag.PER_CHANNEL | (DwpuFlag.COUNT_INCLUDE_PAD if count_include_pad else 0)
    record = dwpu(
        memories, DwpuMode.AVG, flags, **_io((in_h, in_w), channels, (out_h, out_w)),
        rq_addr=rq_addr, kernel=[kh, kw], stride=[sh, sw], pads=[top, left, bottom, right],
        extra=list(extra),
    )  # fmt: skip
    run(memories, record)
    expected = np.zeros((out_h, out_w, channels), np.int8)
    for oh, ow, c in np.ndindex(out_h, out_w, channels):
        acc, divisor = 0, 0
        for ky, kx in np.ndindex(kh, kw):
            iy, ix = oh * sh + ky - top, ow * sw + kx - left
            inside = 0 <= iy < in_h and 0 <= ix < in_w
            in_pads = -top <= iy < in_h + bottom and -left <= ix < in_w + right
            acc += int(x[iy, ix, c]) - in_zp[c] if inside else 0
            divisor += inside or (count_include_pad and in_pads)
        _, m, shift, zp, _ = rows[divisor][c]  # pooling has no bias: column 0 is unused
        expected[oh, ow, c] = requantize(acc, m, shift, zp)
    got = get(memories, L1 + 1024, (out_h, out_w, channels))
    np.testing.assert_array_equal(got, expected)


def test_dwpu_global_pooling():
    memories = device()
    x = np.array([[[1, -8], [2, 8]], [[3, 0], [-4, 7]]], np.int8)  # channel sums 2 and 7
    put(memories, L1, x)
    put(memories, DDR, table([[0, 1 << 30, 32, 5, -1]]))  # (sum - 4 * in_zp) / 4 + 5
    run(memories, dwpu(memories, DwpuMode.GLOBAL_AVG, **_io((2, 2), 2, (1, 1)), rq_addr=DDR))
    # (2 + 4) / 4 = 1.5 -> 2; (7 + 4) / 4 = 2.75 -> 3
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2,)), [7, 8])
    run(memories, dwpu(memories, DwpuMode.GLOBAL_MAX, **_io((2, 2), 2, (1, 1))))
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2,)), [3, 8])


def test_dwpu_max_pool_overhang_and_global_max_per_channel():
    memories = device()
    x = np.array([[[1, -8], [2, 8]], [[3, 9], [-4, 7]]], np.int8)  # [h, w, c]
    put(memories, L1, x)
    run(memories, dwpu(memories, DwpuMode.GLOBAL_MAX, **_io((2, 2), 2, (1, 1))))
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2,)), [3, 9])  # per channel
    # ceil_mode: 2x2 windows, stride 2, on 3x3: the overhang row and column are -128.
    y = np.array([[5, -3, 7], [1, 2, -9], [-100, 4, -50]], np.int8).reshape(3, 3, 1)
    put(memories, L1, y)
    record = dwpu(
        memories, DwpuMode.MAX, **_io((3, 3), 1, (2, 2)), kernel=[2, 2], stride=[2, 2], extra=[1, 1]
    )
    run(memories, record)
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2, 2)), [[5, 7], [4, -50]])


def test_dwpu_global_average_per_channel_reads_its_table_exactly():
    memories = device()
    x = np.array([[[1, -8], [2, 8]], [[3, 9], [-4, 7]]], np.int8)  # channel sums 2 and 16
    put(memories, L1, x)
    rows = table([[0, 1 << 30, 32, 5, -1], [0, 1 << 30, 31, -3, 2]])
    rq_addr = DDR + 4096 - rows.nbytes
    put(memories, rq_addr, rows)
    flags = DwpuFlag.PER_CHANNEL
    run(
        memories,
        dwpu(memories, DwpuMode.GLOBAL_AVG, flags, **_io((2, 2), 2, (1, 1)), rq_addr=rq_addr),
    )
    # (2 + 4) / 4 = 1.5 -> 2, + 5; (16 - 8) / 2 = 4, - 3
    np.testing.assert_array_equal(get(memories, L1 + 1024, (2,)), [7, 1])


# ------------------------------------------------------------------------------ DPU

A = [-3, 5, 20, -20]
B = [7, -2, 3, 1]


def _f32_bits(value: float) -> int:
    return struct.unpack("<i", struct.pack("<f", value))[0]


def dpu_run(words, memories: Memories | None = None, shape=(1, 1, 1, 4)) -> np.ndarray:
    """Runs a program over operand 0 = A (int8), 2 = B (int32) and stores operand 1 (int8)."""
    memories = memories or device()
    put(memories, L1, np.asarray(A, np.int8))
    put(memories, L1 + 64, np.asarray(B, "<i4"))
    program = isa.encode_micro_ops(words)
    memories.load_bytes(DDR, program)
    record = isa.encode(
        Opcode.DPU,
        {
            "program": DDR,
            "micro_ops": len(words),
            "operand_addr": [L1, L1 + 128, L1 + 64, 0],
            "operand_strides": [0, 0, 0, 1] + [0, 0, 0, 1] + [0, 0, 0, 4] + [0] * 4,
            "shape": list(shape),
            "operand_bytes": [1, 1, 4, 1],
        },
    )
    run(memories, record)
    return get(memories, L1 + 128, (4,))


def test_dpu_ftoi_saturates_floats_beyond_int64_and_infinities():
    """FTOI is clip(rint(a) + imm2, -128, 127) for every float18: (2**31 - 1)**4 ~ 2**124 and
    1 / 0 = inf give 127, their negations -128 (a conversion to int64 first would wrap them
    to -2**63, i.e. -128 for all four)."""
    memories = device()
    put(memories, L1, np.array([0, 1, 2**31 - 1, -(2**31) + 1], "<i4"))
    words = [
        {"op": MicroOpcode.LOAD, "dst": 0, "slot": 0},
        {"op": MicroOpcode.ITOF, "dst": 1, "a": 0},
        {"op": MicroOpcode.FMUL, "dst": 2, "a": 1, "b": 1},
        {"op": MicroOpcode.FMUL, "dst": 3, "a": 2, "b": 2},
        {"op": MicroOpcode.FTOI, "dst": 4, "a": 3},
        {"op": MicroOpcode.STORE, "a": 4, "slot": 1},
        {"op": MicroOpcode.FRECIP, "dst": 5, "a": 1},
        {"op": MicroOpcode.FTOI, "dst": 6, "a": 5, "imm2": 3},
        {"op": MicroOpcode.STORE, "a": 6, "slot": 2},
        {"op": MicroOpcode.FNEG, "dst": 7, "a": 3},
        {"op": MicroOpcode.FTOI, "dst": 8, "a": 7},
        {"op": MicroOpcode.STORE, "a": 8, "slot": 3},
    ]
    memories.load_bytes(DDR, isa.encode_micro_ops(words))
    fields = {
        "program": DDR,
        "micro_ops": len(words),
        "operand_addr": [L1, L1 + 64, L1 + 128, L1 + 192],
        "operand_strides": [0, 0, 0, 4] + [0, 0, 0, 1] * 3,
        "shape": [1, 1, 1, 4],
        "operand_bytes": [4, 1, 1, 1],
    }
    run(memories, isa.encode(Opcode.DPU, fields))
    np.testing.assert_array_equal(get(memories, L1 + 64, (4,)), [0, 1, 127, 127])
    np.testing.assert_array_equal(get(memories, L1 + 128, (4,)), [127, 4, 3, 3])
    np.testing.assert_array_equal(get(memories, L1 + 192, (4,)), [0, -1, -128, -128])


def test_dpu_int32_operands_load_and_store_whole_words_and_every_store_runs():
    """4-byte operands are read and written as int32 (values beyond int8), and a program
    goes on after a STORE (here: two stores)."""
    memories = device()
    wide = np.array([100000, -70000, 300, -129], "<i4")
    put(memories, L1, wide)
    words = [
        {"op": MicroOpcode.LOAD, "dst": 0, "slot": 0},
        {"op": MicroOpcode.ADDI, "dst": 1, "a": 0, "imm0": 5},
        {"op": MicroOpcode.STORE, "a": 1, "slot": 1},
        {"op": MicroOpcode.CLAMP, "dst": 2, "a": 0, "imm0": -128, "imm1": 127},
        {"op": MicroOpcode.STORE, "a": 2, "slot": 2},
        {"op": MicroOpcode.ITOF, "dst": 3, "a": 0},
        {"op": MicroOpcode.FTOI, "dst": 4, "a": 3, "imm2": 0},  # saturates to int8
        {"op": MicroOpcode.STORE, "a": 4, "slot": 3},
    ]
    memories.load_bytes(DDR, isa.encode_micro_ops(words))
    fields = {
        "program": DDR,
        "micro_ops": len(words),
        "operand_addr": [L1, L1 + 64, L1 + 128, L1 + 192],
        "operand_strides": [0, 0, 0, 4] + [0, 0, 0, 4] + [0, 0, 0, 1] + [0, 0, 0, 1],
        "shape": [1, 1, 1, 4],
        "operand_bytes": [4, 4, 1, 1],
    }
    run(memories, isa.encode(Opcode.DPU, fields))
    np.testing.assert_array_equal(get(memories, L1 + 64, (4,), "<i4"), wide + 5)
    np.testing.assert_array_equal(get(memories, L1 + 128, (4,)), [127, -128, 127, -128])
    np.testing.assert_array_equal(get(memories, L1 + 192, (4,)), [127, -128, 127, -128])
    fields["operand_bytes"] = [2, 4, 1, 1]
    with pytest.raises(SimulationError, match=r"\(DPU\): DPU operand 0 has elements of 2 bytes$"):
        run(memories, isa.encode(Opcode.DPU, fields))


def program(*ops: dict, zero_point: int | None = None) -> list[dict]:
    """load r0 <- A, r1 <- B; the ops (from r2 on); clamp or ftoi the last; store."""
    words = [
        {"op": MicroOpcode.LOAD, "dst": 0, "slot": 0},
        {"op": MicroOpcode.LOAD, "dst": 1, "slot": 2},
        *ops,
    ]
    last = words[-1]["dst"]
    if zero_point is None:
        words.append({"op": MicroOpcode.CLAMP, "dst": 15, "a": last, "imm0": -128, "imm1": 127})
    else:
        words.append({"op": MicroOpcode.FTOI, "dst": 15, "a": last, "imm2": zero_point})
    words.append({"op": MicroOpcode.STORE, "a": 15, "slot": 1})
    return words


@pytest.mark.parametrize(
    "op, expected",
    [
        ({"op": MicroOpcode.ADDI, "imm0": 4}, [1, 9, 24, -16]),
        ({"op": MicroOpcode.SHLI, "imm0": 2}, [-12, 20, 80, -80]),
        ({"op": MicroOpcode.ADD, "b": 1}, [4, 3, 23, -19]),
        ({"op": MicroOpcode.SUB, "b": 1}, [-10, 7, 17, -21]),
        ({"op": MicroOpcode.MUL, "b": 1}, [-21, -10, 60, -20]),
        ({"op": MicroOpcode.MAX, "b": 1}, [7, 5, 20, 1]),
        ({"op": MicroOpcode.MIN, "b": 1}, [-3, -2, 3, -20]),
        # x * 0.5 rounded half up, kept in int32: -1.5 -> -1, 2.5 -> 3.
        ({"op": MicroOpcode.RESCALE, "imm0": 1 << 30, "imm1": 31}, [-1, 3, 10, -10]),
        ({"op": MicroOpcode.REQUANT, "imm0": 1 << 30, "imm1": 31, "imm2": 3}, [2, 6, 13, -7]),
        ({"op": MicroOpcode.CLAMP, "imm0": -4, "imm1": 6}, [-3, 5, 6, -4]),
        ({"op": MicroOpcode.SELECT, "b": 1, "c": 0}, [-3, -2, 3, -20]),  # B where A >= 0
    ],
)
def test_dpu_integer_micro_ops(op, expected):
    word = {"dst": 2, "a": 0} | op
    np.testing.assert_array_equal(dpu_run(program(word)), expected)


def test_dpu_select_takes_b_where_a_is_zero():
    shifted = {"op": MicroOpcode.ADDI, "dst": 2, "a": 0, "imm0": 3}  # A + 3 = 0, 8, 23, -17
    select = {"op": MicroOpcode.SELECT, "dst": 3, "a": 2, "b": 1, "c": 0}
    np.testing.assert_array_equal(dpu_run(program(shifted, select)), [7, -2, 3, -20])


def test_dpu_requant_table_per_channel():
    memories = device()
    rows = [[1 << 30, 30, 0], [1 << 30, 31, 1], [1 << 30, 32, -1], [1 << 30, 29, 0]]
    address = DDR + 4096 - table(rows).nbytes  # flush with the end of DDR: read exactly [C, 3]
    put(memories, address, table(rows))  # x1, x0.5 + 1, x0.25 - 1, x2
    word = {"op": MicroOpcode.REQUANT_TABLE, "dst": 2, "a": 0, "addr": address}
    np.testing.assert_array_equal(dpu_run(program(word), memories), [-3, 4, 4, -40])


def test_dpu_lut_indexes_code_plus_128():
    memories = device()
    lut = ((np.arange(256) * 7) % 256 - 128).astype(np.int8)
    put(memories, DDR + 512, lut)
    word = {"op": MicroOpcode.LUT, "dst": 2, "a": 0, "addr": DDR + 512}
    np.testing.assert_array_equal(dpu_run(program(word), memories), [lut[a + 128] for a in A])


def test_dpu_float18_arithmetic():
    # (A + 1.5) * 1.5 = -2.25, 9.75, 32.25, -27.75 (exact in float18); rint half to even; +1.
    ops = (
        {"op": MicroOpcode.ITOF, "dst": 2, "a": 0},
        {"op": MicroOpcode.FCONST, "dst": 3, "imm1": _f32_bits(1.5)},
        {"op": MicroOpcode.FADD, "dst": 4, "a": 2, "b": 3},
        {"op": MicroOpcode.FMUL, "dst": 5, "a": 4, "b": 3},
    )
    np.testing.assert_array_equal(dpu_run(program(*ops, zero_point=1)), [-1, 11, 33, -27])


def test_dpu_float18_reciprocal_rounds_to_nine_mantissa_bits():
    # 1/3 in float18 is 1.010101011b * 2**-2 = 0.33349609375 (rounded up); 1/5 is
    # 1.100110011b * 2**-3 = 0.199951171875; -(1/x) * 100 then rint: 33, -20, -5, 5.
    ops = (
        {"op": MicroOpcode.ITOF, "dst": 2, "a": 0},
        {"op": MicroOpcode.FRECIP, "dst": 3, "a": 2},
        {"op": MicroOpcode.FNEG, "dst": 4, "a": 3},
        {"op": MicroOpcode.FCONST, "dst": 5, "imm1": _f32_bits(100.0)},
        {"op": MicroOpcode.FMUL, "dst": 6, "a": 4, "b": 5},
    )
    np.testing.assert_array_equal(dpu_run(program(*ops, zero_point=0)), [33, -20, -5, 5])
    # Lane 0 again: 1/-3 = -683/2048 in float18; + 682/2048 = -1/2048 exactly; * -4096 = 2.
    # (A float32 reciprocal would give (1/3 - 682/2048) * 4096 = 1.33, stored as 1.)
    ops = (
        {"op": MicroOpcode.ITOF, "dst": 2, "a": 0},
        {"op": MicroOpcode.FRECIP, "dst": 3, "a": 2},
        {"op": MicroOpcode.FCONST, "dst": 4, "imm1": _f32_bits(682 / 2048)},
        {"op": MicroOpcode.FADD, "dst": 5, "a": 3, "b": 4},
        {"op": MicroOpcode.FCONST, "dst": 6, "imm1": _f32_bits(-4096.0)},
        {"op": MicroOpcode.FMUL, "dst": 7, "a": 5, "b": 6},
    )
    assert dpu_run(program(*ops, zero_point=0))[0] == 2


def test_dpu_float18_rsqrt_and_a_float_vector_from_memory():
    # B = 7, -2, 3, 1 squared: 49, 4, 9, 1; rsqrt 1/7 = 1.001001001b * 2**-3 in float18
    # (0.1428...), 1/2, 1/3 ~ 0.3335, 1; times 100: 14.28, 50, 33.35, 100 -> 14, 50, 33, 100
    ops = (
        {"op": MicroOpcode.ITOF, "dst": 2, "a": 1},
        {"op": MicroOpcode.FMUL, "dst": 3, "a": 2, "b": 2},
        {"op": MicroOpcode.FRSQRT, "dst": 4, "a": 3},
        {"op": MicroOpcode.FCONST, "dst": 5, "imm1": _f32_bits(100.0)},
        {"op": MicroOpcode.FMUL, "dst": 6, "a": 4, "b": 5},
    )
    np.testing.assert_array_equal(dpu_run(program(*ops, zero_point=0)), [14, 50, 33, 100])
    # a per-lane float32 vector (LayerNorm's gamma): A = -3, 5, 20, -20 times 0.5, -1.25,
    # 2, 3.75 = -1.5, -6.25, 40, -75 -> rint half to even: -2, -6, 40, -75
    memories = device()
    put(memories, DDR + 512, np.array([0.5, -1.25, 2, 3.75], "<f4"))
    ops = (
        {"op": MicroOpcode.FVEC, "dst": 2, "addr": DDR + 512},
        {"op": MicroOpcode.ITOF, "dst": 3, "a": 0},
        {"op": MicroOpcode.FMUL, "dst": 4, "a": 3, "b": 2},
    )
    np.testing.assert_array_equal(dpu_run(program(*ops, zero_point=0), memories), [-2, -6, 40, -75])


def test_dpu_spills_and_reloads_float_and_int32_registers():
    """A float register spilled as float32 and reloaded: A x 0.5 = -1.5, 2.5, 10, -10 ->
    -2, 2, 10, -10 (ties to even). Integer registers spill as int32, both ends included
    (B + 2**31 - 8 reaches 2**31 - 1, B - 2**31 + 2 reaches -2**31), and come back equal;
    one past an end is an error."""
    memories = device()
    ops = (
        {"op": MicroOpcode.ITOF, "dst": 2, "a": 0},
        {"op": MicroOpcode.FCONST, "dst": 3, "imm1": _f32_bits(0.5)},
        {"op": MicroOpcode.FMUL, "dst": 4, "a": 2, "b": 3},
        {"op": MicroOpcode.SPILL, "a": 4, "imm0": 1, "addr": L1 + 256},
        {"op": MicroOpcode.RELOAD, "dst": 5, "imm0": 1, "addr": L1 + 256},
    )
    assert dpu_run(program(*ops, zero_point=0), memories).tolist() == [-2, 2, 10, -10]
    assert get(memories, L1 + 256, (4,), "<f4").tolist() == [-1.5, 2.5, 10, -10]
    for offset in (2**31 - 8, -(2**31) + 2):
        memories = device()
        ops = (
            {"op": MicroOpcode.ADDI, "dst": 2, "a": 1, "imm0": offset},
            {"op": MicroOpcode.SPILL, "a": 2, "addr": L1 + 256},
            {"op": MicroOpcode.RELOAD, "dst": 3, "addr": L1 + 256},
            {"op": MicroOpcode.SHLI, "dst": 4, "a": 3, "imm0": 1},  # integer lanes again
            {"op": MicroOpcode.SHLI, "dst": 5, "a": 2, "imm0": 1},
            {"op": MicroOpcode.SUB, "dst": 6, "a": 4, "b": 5},
        )
        assert dpu_run(program(*ops), memories).tolist() == [0, 0, 0, 0]
        spilled = get(memories, L1 + 256, (4,), "<i4").tolist()
        assert spilled == [b + offset for b in B]
        assert (max(spilled), min(spilled))[offset < 0] == (2**31 - 1, -(2**31))[offset < 0]
    for offset in (2**31 - 7, -(2**31) + 1):
        ops = (
            {"op": MicroOpcode.ADDI, "dst": 2, "a": 1, "imm0": offset},
            {"op": MicroOpcode.SPILL, "a": 2, "addr": L1 + 256},
            {"op": MicroOpcode.RELOAD, "dst": 3, "addr": L1 + 256},
        )
        with pytest.raises(SimulationError, match="a spilled integer register exceeds int32$"):
            dpu_run(program(*ops))


def test_dpu_exp_table_is_zero_from_index_256_on():
    """B + 253 = 260, 251, 256, 254 indexes a table of entries d / 4: 260 and 256 lie past
    its 256 entries (0.0), 251 -> 62.75, 254 -> 63.5; plus 1.25: 1, 64, 1, 65 (rint)."""
    memories = device()
    put(memories, DDR + 512, np.arange(256, dtype="<f4") * np.float32(0.25))
    ops = (
        {"op": MicroOpcode.ADDI, "dst": 2, "a": 1, "imm0": 253},
        {"op": MicroOpcode.ITOF, "dst": 3, "a": 2},
        {"op": MicroOpcode.EXPLUT, "dst": 4, "a": 3, "addr": DDR + 512},
        {"op": MicroOpcode.FCONST, "dst": 5, "imm1": _f32_bits(1.25)},
        {"op": MicroOpcode.FADD, "dst": 6, "a": 4, "b": 5},
    )
    np.testing.assert_array_equal(dpu_run(program(*ops, zero_point=0), memories), [1, 64, 1, 65])


def test_dpu_row_reductions_and_exp_table():
    rmax = ({"op": MicroOpcode.ITOF, "dst": 2, "a": 0}, {"op": MicroOpcode.RMAX, "dst": 3, "a": 2})
    np.testing.assert_array_equal(dpu_run(program(*rmax, zero_point=0)), [20] * 4)
    rsum = ({"op": MicroOpcode.ITOF, "dst": 2, "a": 0}, {"op": MicroOpcode.RSUM, "dst": 3, "a": 2})
    np.testing.assert_array_equal(dpu_run(program(*rsum, zero_point=0)), [2] * 4)
    memories = device()
    put(memories, DDR + 512, np.arange(256, dtype="<f4") * np.float32(0.5))  # entry d = d / 2
    exp = (
        {"op": MicroOpcode.ITOF, "dst": 2, "a": 0},
        {"op": MicroOpcode.FNEG, "dst": 3, "a": 2},  # 3, -5, -20, 20
        {"op": MicroOpcode.EXPLUT, "dst": 4, "a": 3, "addr": DDR + 512},  # 1.5, 0, 0, 10
    )
    np.testing.assert_array_equal(dpu_run(program(*exp, zero_point=0), memories), [2, 0, 0, 10])


def test_dpu_row_reductions_are_per_row_and_the_exp_table_starts_at_zero():
    memories = device()
    put(memories, L1, np.array([[-3, 5, 0, 2], [7, -1, 4, 0]], np.int8))
    put(memories, DDR + 512, np.arange(256, dtype="<f4") * np.float32(0.5) + np.float32(1))
    op = MicroOpcode
    words = [
        {"op": op.LOAD, "dst": 0, "slot": 0},
        {"op": op.ITOF, "dst": 1, "a": 0},
        {"op": op.RMAX, "dst": 2, "a": 1},
        {"op": op.FTOI, "dst": 3, "a": 2},
        {"op": op.STORE, "a": 3, "slot": 1},
        {"op": op.RSUM, "dst": 4, "a": 1},
        {"op": op.FTOI, "dst": 5, "a": 4},
        {"op": op.STORE, "a": 5, "slot": 2},
        {"op": op.EXPLUT, "dst": 6, "a": 1, "addr": DDR + 512},  # entry d = d / 2 + 1
        {"op": op.FTOI, "dst": 7, "a": 6},
        {"op": op.STORE, "a": 7, "slot": 3},
    ]
    memories.load_bytes(DDR, isa.encode_micro_ops(words))
    fields = {
        "program": DDR,
        "micro_ops": len(words),
        "operand_addr": [L1, L1 + 64, L1 + 128, L1 + 192],
        "operand_strides": [0, 0, 4, 1] * 4,
        "shape": [1, 1, 2, 4],
        "operand_bytes": [1, 1, 1, 1],
    }
    run(memories, isa.encode(Opcode.DPU, fields))
    np.testing.assert_array_equal(get(memories, L1 + 64, (2, 4)), [[5] * 4, [7] * 4])
    np.testing.assert_array_equal(get(memories, L1 + 128, (2, 4)), [[4] * 4, [10] * 4])
    # outside [0, 256) -> 0; 5 -> 3.5 -> 4, 0 -> 1, 2 -> 2; 7 -> 4.5 -> 4 (ties to even), 4 -> 3
    np.testing.assert_array_equal(get(memories, L1 + 192, (2, 4)), [[0, 4, 1, 2], [4, 0, 3, 1]])


def test_dpu_broadcast_operand_and_strided_store():
    """An operand of stride 0 along an axis repeats; stores follow their own strides."""
    memories = device()
    put(memories, L1, np.arange(8, dtype=np.int8))  # tile [2, 4]
    put(memories, L1 + 64, np.asarray([100, -100, 0, 1], "<i4"))  # one row, broadcast
    words = [
        {"op": MicroOpcode.LOAD, "dst": 0, "slot": 0},
        {"op": MicroOpcode.LOAD, "dst": 1, "slot": 2},
        {"op": MicroOpcode.ADD, "dst": 2, "a": 0, "b": 1},
        {"op": MicroOpcode.CLAMP, "dst": 3, "a": 2, "imm0": -128, "imm1": 127},
        {"op": MicroOpcode.STORE, "a": 3, "slot": 1},
    ]
    memories.load_bytes(DDR, isa.encode_micro_ops(words))
    record = isa.encode(
        Opcode.DPU,
        {
            "program": DDR,
            "micro_ops": len(words),
            "operand_addr": [L1, L1 + 128, L1 + 64, 0],
            "operand_strides": [0, 0, 4, 1] + [0, 0, 16, 1] + [0, 0, 0, 4] + [0] * 4,
            "shape": [1, 1, 2, 4],
            "operand_bytes": [1, 1, 4, 1],
        },
    )
    run(memories, record)
    out = get(memories, L1 + 128, (32,))
    np.testing.assert_array_equal(out[0:4], [100, -99, 2, 4])
    np.testing.assert_array_equal(out[16:20], [104, -95, 6, 8])
    assert not out[4:16].any() and not out[20:].any()


# ------------------------------------------------------------------------------ bad records


@pytest.mark.parametrize(
    "records, message",
    [
        ([dma(0x500, L1, [4], [1], [1])], "record 0 (DMA): address 0x500 is in no memory"),
        (
            [dma(DDR + 4094, L1, [4], [1], [1])],
            "access [0x1ffe, 0x2001] leaves ddr [0x1000, 0x2000)",
        ),
        (
            [dma(DDR, L1, [4], [1], [1]), dma(DDR, L1 + 8190, [4], [1], [1])],
            "record 1 (DMA): access [0x11ffe, 0x12001] leaves l1.0",
        ),
        ([dma(DDR + 3, L1, [4], [-2], [1])], "access [0xffd, 0x1003] leaves ddr"),
        ([dma(DDR, L1, [2, 4], [4, 1], [0, 1])], "has a zero stride"),
        ([imc_load(0x9000, 4, 4, 0)], "record 0 (IMC_LOAD): address 0x9000 is in no memory"),
    ],
)
def test_bad_addresses_stop_the_simulation(records, message):
    with pytest.raises(SimulationError, match=re.escape(message)):
        run(device(), *records)


def test_dpu_store_outside_memory_stops_the_simulation():
    memories = device()
    words = program({"op": MicroOpcode.ADDI, "dst": 2, "a": 0, "imm0": 0})
    memories.load_bytes(DDR, isa.encode_micro_ops(words))
    record = isa.encode(
        Opcode.DPU,
        {
            "program": DDR,
            "micro_ops": len(words),
            "operand_addr": [L1, 0x7000, L1 + 64, 0],
            "operand_strides": [0, 0, 0, 1] * 2 + [0, 0, 0, 4] + [0] * 4,
            "shape": [1, 1, 1, 4],
            "operand_bytes": [1, 1, 4, 1],
        },
    )
    with pytest.raises(SimulationError, match="record 0 \\(DPU\\): address 0x7000 is in no memory"):
        run(memories, record)


# ----------------------------------------------------------------------- the stream is the product


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """tiny_cnn compiled with its tasklist resident (one section per segment) and without
    buffer promotion (tensors in DDR, staged through L1: the addresses below are DMA, IMC and
    staging addresses), and its reference outputs."""
    model = zoo_model("tiny_cnn")
    samples = samples_of(model, 1)
    folder = tmp_path_factory.mktemp("tiny") / "out"
    config = CompilerConfig(
        output_dir=str(folder), stream_tasklist=False, enable_buffer_promotion=False
    )
    compiled = aipuc.compile(model, config, samples)
    return folder, samples[0], compiled.run_quantized(samples[0])


def _differs(outputs: dict, reference: dict) -> bool:
    return any(not np.array_equal(outputs[name], value) for name, value in reference.items())


def test_the_compiled_stream_equals_the_reference(tiny):
    folder, sample, reference = tiny
    outputs = aipuc.load(folder).run(sample)
    assert not _differs(outputs, reference)


class _Elf:
    """model.elf's bytes with each section's file offset, to change a field in place."""

    def __init__(self, data: bytes, device: dict):
        self.data = bytearray(data)
        self.file = ElfFile.from_bytes(data)
        names = [section.name for section in self.file.sections]
        self.offsets = dict(zip(names, self.file.offsets(), strict=True))
        for section in self.file.sections:
            at = self.offsets[section.name]
            assert self.data[at : at + len(section.data)] == section.data, section.name
        self.segment = DeviceProgram.from_elf(data, device).segments[0]

    def record_field(self, opcode: Opcode, field: str, value=None) -> int:
        """The file offset of `field` in segment 0's first `opcode` record (whose field
        is `value`)."""
        name = ".aipu.tasklist.core0.seg0"
        stream = isa.Stream(self.file.section(name).data)
        for index, (code, record) in enumerate(stream.records()):
            if code == opcode and (value is None or int(np.ravel(record[field])[0]) == value):
                offset = index * isa.RECORD_BYTES + isa.DTYPES[opcode].fields[field][1]
                return self.offsets[name] + offset
        raise AssertionError(f"no {opcode.name} record with {field} {value}")

    def dwpu_weights(self) -> int:
        """The file offset of the kernel address in the first DWPU program that has one."""
        for section in self.file.sections:
            if section.name.startswith(".aipu.dwpu_text."):
                word = np.frombuffer(section.data, isa.DWPU_OP)[0]
                if int(word["w_addr"]):
                    return self.offsets[section.name] + isa.DWPU_OP.fields["w_addr"][1]
        raise AssertionError("no DWPU program with kernels")


def _corrupt(folder: Path, copy: Path, offset_of, delta: int = 1) -> None:
    """A copy of the compiled folder with one 8-byte address in model.elf moved by delta
    (and the manifest updated to the changed file, so the loader accepts it)."""
    shutil.copytree(folder, copy)
    compiled = copy / COMPILED_MODEL
    manifest = json.loads((compiled / loader.MANIFEST).read_text())
    elf = _Elf((compiled / loader.ELF).read_bytes(), manifest["device"])
    offset = offset_of(elf)
    address = int.from_bytes(elf.data[offset : offset + 8], "little")
    elf.data[offset : offset + 8] = (address + delta).to_bytes(8, "little")
    (compiled / loader.ELF).write_bytes(bytes(elf.data))
    manifest["files"][loader.ELF] = loader.digest(compiled / loader.ELF)
    (compiled / loader.MANIFEST).write_text(json.dumps(manifest))


CORRUPTIONS = {
    "dma reading the input": lambda e: e.record_field(
        Opcode.DMA, "src", e.segment.inputs[0].address
    ),
    "dma writing the output": lambda e: e.record_field(
        Opcode.DMA, "dst", e.segment.outputs[0].address
    ),
    "imc weights": lambda e: e.record_field(Opcode.IMC_LOAD, "src"),
    "mvm input tile": lambda e: e.record_field(Opcode.MVM, "in_addr"),
    "dwpu kernels": lambda e: e.dwpu_weights(),
    "dpu operand": lambda e: e.record_field(Opcode.DPU, "operand_addr"),
}


@pytest.mark.parametrize("where", CORRUPTIONS)
def test_one_corrupted_address_changes_the_outputs(tiny, tmp_path, where):
    """model.elf is what runs: one address one byte off gives other numbers."""
    folder, sample, reference = tiny
    _corrupt(folder, tmp_path / "corrupted", CORRUPTIONS[where])
    assert _differs(aipuc.load(tmp_path / "corrupted").run(sample), reference)


def test_a_corrupted_table_address_stops_the_simulation(tiny, tmp_path):
    """Requantization parameters read from the wrong bytes are a bad record, not a crash."""
    folder, sample, _ = tiny
    _corrupt(folder, tmp_path / "corrupted", lambda e: e.record_field(Opcode.MVM, "rq_addr"), 2)
    with pytest.raises(SimulationError, match=r"record \d+ \(MVM\): shift must lie in"):
        aipuc.load(tmp_path / "corrupted").run(sample)


def _overlap_pairs(module) -> dict[str, tuple[mem.BufferOp, mem.BufferOp]]:
    """Two buffers alive at once whose overlap must corrupt the numbers:
    - ddr: the segment input and the first weight matrix (the input, written at launch,
      overwrites the weights the loader placed);
    - l1: the two inputs an add stages into L1 (the second DMA overwrites the first)."""
    segment = next(op for op in module.ops if isinstance(op, aipu.SegmentOp))
    source = mem.root_buffer(segment.inputs[0])
    weights = next(
        op
        for op in module.ops
        if isinstance(op, mem.BufferOp)
        and op.init is not None
        and op.pool == source.pool
        and len(op.buffer_type.get_shape()) == 2
        and op.buffer_type.element_type == i8
    )
    add = next(
        op
        for op in module.walk()
        if isinstance(op, aipu.DpuOp)
        and len(
            {
                mem.root_buffer(load.source)
                for load in op.body.ops
                if isinstance(load, aipu.DpuLoadOp)
            }
        )
        == 2
    )
    first, second = (
        mem.root_buffer(o.source) for o in add.body.ops if isinstance(o, aipu.DpuLoadOp)
    )
    return {"ddr": (source, weights), "l1": (first, second)}


@pytest.fixture(scope="module")
def planned(tiny):
    """tiny_cnn's planned module, lowered in this process (tests restore what they change)."""
    folder, sample, reference = tiny
    module, program = lowered_in_memory(folder, enable_buffer_promotion=False)
    assert not _differs(stream_outputs(module, program, sample), reference)
    return module


@pytest.mark.parametrize("memory", ["ddr", "l1"])
def test_overlapping_live_buffers_fail_the_plan_verifier_and_the_numbers(tiny, planned, memory):
    _, sample, reference = tiny
    verify_plan(planned)
    keep, moved = _overlap_pairs(planned)[memory]
    assert keep.pool == moved.pool and keep.offset != moved.offset
    saved, moved.offset = moved.offset, keep.offset
    try:
        with pytest.raises(CompilationError, match="overlap at bytes .* while both are alive"):
            verify_plan(planned)
        # The verifier bypassed: the simulator really reads the planned addresses.
        assert _differs(stream_outputs(planned, emit_program(planned), sample), reference)
    finally:
        moved.offset = saved
    verify_plan(planned)
