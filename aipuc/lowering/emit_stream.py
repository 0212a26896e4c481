"""Emission: a planned module becomes a `DeviceProgram`: memory map, initial memory image,
and per segment the flattened instruction stream of its core with its IO buffers.

This is where tile loops disappear: each loop body is emitted once per iteration with its
induction variable bound, every view resolved to a device address and byte strides from
the planned offsets. Nothing of the IR survives in the output; the simulator needs only
the `DeviceProgram` (and issue-9's ELF will store exactly this).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, SSAValue

from aipuc.dialects import aipu, mem
from aipuc.dialects.tensors import dtype_of
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU
from aipuc.lowering.mem_pools import pools_of
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.isa import DPU_OPERANDS, DPU_RANK, MAX_DIMS, MicroOpcode, Opcode
from aipuc.runtime.sim.memory import Region
from aipuc.runtime.sim.program import DeviceProgram, IoBuffer, SegmentImage

# ---------------------------------------------------------------------------------- addresses


class Addresses:
    """Device addresses and byte strides of buffers and views, given induction values."""

    def __init__(self, module: ModuleOp):
        self.pools = pools_of(module)

    def buffer_address(self, value: SSAValue) -> int:
        owner = value.owner
        if isinstance(owner, mem.ReinterpretOp):
            return self.buffer_address(owner.source)
        assert isinstance(owner, mem.BufferOp)
        pool = self.pools[owner.pool.root_reference.data]
        if owner.offset is None or pool.address is None:
            raise CompilationError("emission needs planned buffers: run mem-pools and mem-plan")
        return pool.address.value.data + owner.offset.value.data

    def block(
        self, value: SSAValue, env: dict[SSAValue, int]
    ) -> tuple[int, list[int], list[int], int]:
        """(address, sizes, byte strides, element bytes) of a buffer or view."""
        owner = value.owner
        memory = value.type
        assert isinstance(memory, mem.MemoryType)
        itemsize = memory.element_type.size
        if not isinstance(owner, mem.ViewOp):
            shape = list(memory.get_shape())
            return self.buffer_address(value), shape, _dense(shape, itemsize), itemsize
        source_shape = list(owner.source_type.get_shape())
        dense = _dense(source_shape, itemsize)
        address = self.buffer_address(owner.source)
        for dim, (offset, terms) in enumerate(
            zip(owner.static_offsets.iter_values(), owner.offset_terms(), strict=True)
        ):
            position = offset + sum(c * env[iv] for c, iv in terms)
            address += position * dense[dim]
        strides = [d * s for d, s in zip(dense, owner.strides.iter_values(), strict=True)]
        return address, list(memory.get_shape()), strides, itemsize


def _dense(shape: Sequence[int], itemsize: int) -> list[int]:
    strides, step = [], itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


def _byte_blocks(sizes, strides, itemsize) -> list[tuple[list[int], list[int]]]:
    """Element blocks as byte blocks of at most MAX_DIMS axes (merged, then split)."""
    axes = [(n, s) for n, s in zip(sizes, strides, strict=True) if n != 1]
    axes.append((itemsize, 1))
    merged: list[tuple[int, int]] = []
    for n, s in axes:
        if merged and merged[-1][1] == n * s:
            merged[-1] = (merged[-1][0] * n, s)
        else:
            merged.append((n, s))
    return [([n for n, _ in merged], [s for _, s in merged])]


# ---------------------------------------------------------------------------------- emission


class StreamEmitter:
    """Flattens one core's program into records."""

    def __init__(self, addresses: Addresses, program: DeviceProgram):
        self.addresses = addresses
        self.program = program
        self.records: list[bytes] = []
        self.dpu_programs: dict[int, bytes] = {}

    def emit_block(self, block: Block, env: dict[SSAValue, int]) -> None:
        for op in block.ops:
            if isinstance(op, aipu.TileLoopOp):
                for value in range(aipu._int(op.lb), aipu._int(op.ub)):
                    self.emit_block(op.body.block, {**env, op.iv: value})
            elif isinstance(op, (mem.ViewOp, aipu.YieldOp)):
                continue
            else:
                self._task(op, env)

    def _task(self, op: Operation, env) -> None:
        if isinstance(op, aipu.DmaOp):
            self._dma(op, env)
        elif isinstance(op, aipu.FillOp):
            address, sizes, strides, itemsize = self.addresses.block(op.dest, env)
            for byte_sizes, byte_strides in _byte_blocks(sizes, strides, itemsize):
                self._record(
                    Opcode.FILL,
                    dst=address,
                    sizes=_pad(byte_sizes, 1),
                    dst_strides=_pad(byte_strides, 0),
                    value=aipu._int(op.value),
                )
        elif isinstance(op, aipu.ImcLoadOp):
            address, sizes, strides, _ = self.addresses.block(op.weights, env)
            self._record(
                Opcode.IMC_LOAD,
                src=address,
                row_stride=strides[0],
                k=sizes[0],
                n=sizes[1],
                weightset=aipu._int(op.weightset),
            )
        elif isinstance(op, aipu.MvmOp):
            self._mvm(op, env)
        elif isinstance(op, aipu.DwpuOp):
            self._dwpu(op, env)
        elif isinstance(op, aipu.DpuOp):
            self._dpu(op, env)
        else:
            raise CompilationError(f"no instruction for {op.name}")

    def _record(self, opcode: Opcode, flags: int = 0, **fields) -> None:
        self.records.append(isa.encode(opcode, fields, flags=flags))

    # ------------------------------------------------------------------ units

    def _dma(self, op: aipu.DmaOp, env) -> None:
        src, src_sizes, src_strides, itemsize = self.addresses.block(op.source, env)
        dst, _, dst_strides, _ = self.addresses.block(op.dest, env)
        pattern = op.pattern()
        if pattern is None:
            sizes = src_sizes
        else:
            sizes, elem_src, elem_dst = pattern
            src_offset, dst_offset = op.pattern_offsets()
            # pattern strides count elements of the dense source/dest buffers
            src += src_offset * itemsize
            dst += dst_offset * itemsize
            src_strides = [s * itemsize for s in elem_src]
            dst_strides = [s * itemsize for s in elem_dst]
        axes = [
            (n, s, d) for n, s, d in zip(sizes, src_strides, dst_strides, strict=True) if n != 1
        ]
        # A copy may run its axes in any order: innermost the densest destination axis, so
        # contiguous stretches merge into long runs (a channel concat of NHWC moves whole
        # pixels' channels, not one byte per step).
        axes.sort(key=lambda a: (abs(a[2]), abs(a[1])), reverse=True)
        axes.append((itemsize, 1, 1))
        merged: list[tuple[int, int, int]] = []
        for n, s, d in axes:
            if merged and merged[-1][1] == n * s and merged[-1][2] == n * d:
                merged[-1] = (merged[-1][0] * n, s, d)
            else:
                merged.append((n, s, d))
        self._dma_blocks(src, dst, merged, op)

    def _dma_blocks(self, src: int, dst: int, axes, op: aipu.DmaOp) -> None:
        if len(axes) > MAX_DIMS:
            (n, s, d), rest = axes[0], axes[1:]
            for i in range(n):
                self._dma_blocks(src + i * s, dst + i * d, rest, op)
            return
        self._record(
            Opcode.DMA,
            src=src,
            dst=dst,
            sizes=_pad([a[0] for a in axes], 1),
            src_strides=_pad([a[1] for a in axes], 0),
            dst_strides=_pad([a[2] for a in axes], 0),
            engine=int(op.engine.data == aipu.DmaEngine.SYSTEM),
            channel=aipu._int(op.channel),
        )

    def _mvm(self, op: aipu.MvmOp, env) -> None:
        x, x_sizes, x_strides, _ = self.addresses.block(op.input, env)
        y, y_sizes, y_strides, _ = self.addresses.block(op.output, env)
        flags = 0
        fields = {}
        if op.requant is not None:
            flags |= isa.MvmFlag.REQUANTIZE
            fields["out_addr"], fields["out_strides"] = y, y_strides[1:3]
            fields["rq_addr"] = self.addresses.block(op.requant, env)[0]
            if op.acc is not None:
                acc, _, acc_strides, _ = self.addresses.block(op.acc, env)
                flags |= isa.MvmFlag.ACCUMULATE
                fields["acc_addr"], fields["acc_strides"] = acc, acc_strides[1:3]
        else:
            if op.acc is not None and op.acc != op.output:
                raise CompilationError("an MVM without requantization accumulates in place")
            if op.acc is not None:
                flags |= isa.MvmFlag.ACCUMULATE
            fields["acc_addr"], fields["acc_strides"] = y, y_strides[1:3]
        if aipu._flag(op.swicr):
            flags |= isa.MvmFlag.SWICR
        if x_sizes[0] != 1 or y_sizes[0] != 1:
            raise CompilationError("MVM tiles hold one image")
        self._record(
            Opcode.MVM,
            flags,
            in_addr=x,
            in_hw=x_sizes[1:3],
            in_strides=x_strides[1:3],
            in_c=aipu._int(op.in_c),
            channels=aipu._int(op.channels or op.in_c),
            out_hw=y_sizes[1:3],
            n=aipu._int(op.n),
            kernel=aipu._ints(op.kernel),
            stride=aipu._ints(op.stride),
            dilation=aipu._ints(op.dilation),
            pads=aipu._ints(op.pads),
            in_zp=aipu._int(op.in_zp),
            w_zp=aipu._int(op.w_zp),
            k_start=aipu._int(op.k_start),
            k_len=aipu._int(op.k),
            weightset=aipu._int(op.weightset),
            icr=aipu._int(op.icr),
            **fields,
        )

    def _dwpu(self, op: aipu.DwpuOp, env) -> None:
        x, x_sizes, x_strides, _ = self.addresses.block(op.input, env)
        y, y_sizes, y_strides, _ = self.addresses.block(op.output, env)
        flags = 0
        if aipu._flag(op.count_include_pad):
            flags |= isa.DwpuFlag.COUNT_INCLUDE_PAD
        if aipu._flag(op.per_channel):
            flags |= isa.DwpuFlag.PER_CHANNEL
        fields = {}
        if op.weights is not None:
            fields["w_addr"] = self.addresses.block(op.weights, env)[0]
        if op.requant is not None:
            fields["rq_addr"] = self.addresses.block(op.requant, env)[0]
        mode = {
            aipu.DwpuMode.CONV: isa.DwpuMode.CONV,
            aipu.DwpuMode.MAX: isa.DwpuMode.MAX,
            aipu.DwpuMode.AVG: isa.DwpuMode.AVG,
            aipu.DwpuMode.GLOBAL_AVG: isa.DwpuMode.GLOBAL_AVG,
            aipu.DwpuMode.GLOBAL_MAX: isa.DwpuMode.GLOBAL_MAX,
        }[op.mode.data]
        self._record(
            Opcode.DWPU,
            flags,
            in_addr=x,
            out_addr=y,
            in_hw=x_sizes[1:3],
            in_strides=x_strides[1:3],
            channels=x_sizes[3],
            out_hw=y_sizes[1:3],
            out_strides=y_strides[1:3],
            kernel=aipu._ints(op.kernel),
            stride=aipu._ints(op.stride),
            dilation=aipu._ints(op.dilation),
            pads=aipu._ints(op.pads),
            extra=aipu._ints(op.extra),
            mode=int(mode),
            **fields,
        )

    def _dpu(self, op: aipu.DpuOp, env) -> None:
        slots: dict[SSAValue, int] = {}
        operand_addr = [0] * DPU_OPERANDS
        operand_strides = [0] * (DPU_OPERANDS * DPU_RANK)
        operand_bytes = [0] * DPU_OPERANDS
        shape: list[int] | None = None
        for micro in op.body.block.ops:
            if isinstance(micro, (aipu.DpuLoadOp, aipu.DpuStoreOp)):
                value = micro.source if isinstance(micro, aipu.DpuLoadOp) else micro.dest
                if value in slots:
                    continue
                if len(slots) == DPU_OPERANDS:
                    raise CompilationError(
                        f"a DPU program reads or writes more than {DPU_OPERANDS} tiles"
                    )
                slot = slots[value] = len(slots)
                address, sizes, strides, itemsize = self.addresses.block(value, env)
                if len(sizes) > DPU_RANK:
                    raise CompilationError(f"DPU tiles have at most {DPU_RANK} axes")
                lead = DPU_RANK - len(sizes)
                sizes, strides = [1] * lead + sizes, [0] * lead + strides
                if isinstance(micro, aipu.DpuStoreOp):
                    shape = sizes
                operand_addr[slot] = address
                operand_bytes[slot] = itemsize
                operand_strides[slot * DPU_RANK : (slot + 1) * DPU_RANK] = [
                    0 if n == 1 else s for n, s in zip(sizes, strides, strict=True)
                ]
        assert shape is not None
        words = self._micro_ops(op, slots, env)
        shape = _full_lanes(shape, operand_strides, operand_bytes, len(slots), words)
        if op.program is None:
            raise CompilationError("a DPU task needs its program buffer (mem-bufferize)")
        program = self.addresses.buffer_address(op.program)
        if self.dpu_programs.setdefault(program, words) != words:
            raise CompilationError("tiles of one DPU layer must run one program")
        self._record(
            Opcode.DPU,
            program=program,
            operand_addr=operand_addr,
            operand_strides=operand_strides,
            shape=shape,
            micro_ops=len(words) // isa.MICRO_OP_BYTES,
            operand_bytes=operand_bytes,
        )

    def _micro_ops(self, op: aipu.DpuOp, slots, env) -> bytes:
        registers: dict[SSAValue, int] = {}
        words = []
        for micro in op.body.block.ops:
            fields: dict[str, int] = {"op": int(micro.MICRO)}  # type: ignore[attr-defined]
            operands = [o for o in micro.operands if isinstance(o.type, aipu.VRegType)]
            for name, register in zip(("a", "b", "c"), operands, strict=False):
                fields[name] = registers[register]
            if isinstance(micro, aipu.DpuLoadOp):
                fields["slot"] = slots[micro.source]
            elif isinstance(micro, aipu.DpuStoreOp):
                fields["slot"] = slots[micro.dest]
            tables = [
                o
                for o in micro.operands
                if isinstance(o.type, mem.MemoryType)
                and not isinstance(micro, (aipu.DpuLoadOp, aipu.DpuStoreOp))
            ]
            if tables:
                fields["addr"] = self.addresses.block(tables[0], env)[0]
            fields.update(_immediates(micro))
            if micro.results:
                if len(registers) >= 255:
                    raise CompilationError("a DPU program needs more than 255 registers")
                registers[micro.results[0]] = fields["dst"] = len(registers)
            words.append(fields)
        return isa.encode_micro_ops(words)


_PER_LANE_AXIS = (MicroOpcode.REQUANT_TABLE, MicroOpcode.RMAX, MicroOpcode.RSUM)
"""Micro-ops whose meaning depends on the innermost axis (per channel, reductions)."""


def _full_lanes(
    shape: list[int], strides: list[int], sizes: list[int], operands: int, words: bytes
) -> list[int]:
    """A dense element-wise tile as rows of whole DPU vectors (`strides` updated in place).

    A tile of 16 channels per pixel fills a quarter of each 64-lane vector; when every
    operand is dense with the tile's shape and no micro-op depends on the innermost axis,
    the same bytes are the same elements read as [rows, 64], so the DPU runs full vectors.
    """
    lanes, total = AIPU.dpu_lanes, math.prod(shape)
    if shape[-1] % lanes == 0 or total % lanes:
        return shape
    if np.isin(isa.decode_micro_ops(words)["op"], [int(c) for c in _PER_LANE_AXIS]).any():
        return shape
    for slot in range(operands):
        dense = [0 if n == 1 else s for n, s in zip(shape, _dense(shape, sizes[slot]), strict=True)]
        if strides[slot * DPU_RANK : (slot + 1) * DPU_RANK] != dense:
            return shape
    for slot in range(operands):
        strides[slot * DPU_RANK : (slot + 1) * DPU_RANK] = [0, 0, lanes * sizes[slot], sizes[slot]]
    return [1, 1, total // lanes, lanes]


def _immediates(micro: Operation) -> dict[str, int]:
    if isinstance(micro, (aipu.DpuAddImmOp, aipu.DpuShiftLeftOp)):
        return {"imm0": aipu._int(micro.imm)}
    if isinstance(micro, aipu.DpuRescaleOp):
        return {"imm0": aipu._int(micro.multiplier), "imm1": aipu._int(micro.shift)}
    if isinstance(micro, aipu.DpuRequantOp):
        return {
            "imm0": aipu._int(micro.multiplier),
            "imm1": aipu._int(micro.shift),
            "imm2": aipu._int(micro.zero_point),
        }
    if isinstance(micro, aipu.DpuClampOp):
        return {"imm0": aipu._int(micro.low), "imm1": aipu._int(micro.high)}
    if isinstance(micro, aipu.DpuFloatConstantOp):
        bits = struct.unpack("<i", struct.pack("<f", micro.value.value.data))[0]
        return {"imm1": bits}
    if isinstance(micro, aipu.DpuFloatToIntOp):
        return {"imm2": aipu._int(micro.zero_point)}
    return {}


def _pad(values: Sequence[int], fill: int, length: int = MAX_DIMS) -> list[int]:
    values = list(values)
    return [fill] * (length - len(values)) + values


# ---------------------------------------------------------------------------------- module


def _regions(module: ModuleOp) -> list[Region]:
    """The memory map: each pool's address window (a paged pool's virtual window, its page
    table and the physical bytes behind it)."""
    regions = []
    for name, pool in pools_of(module).items():
        assert pool.address is not None
        address, capacity = pool.address.value.data, pool.capacity.value.data
        if pool.page_size is None:
            regions.append(Region(name, address, capacity))
            continue
        page = pool.page_size.value.data
        table = () if pool.pages is None else pool.pages.get_values()
        regions.append(Region(name, address, len(table) * page, page, tuple(table), capacity))
    return regions


def emit_program(module: ModuleOp) -> DeviceProgram:
    """The device program of a bufferized, planned module."""
    program = DeviceProgram(_regions(module))
    addresses = Addresses(module)
    for op in module.ops:
        if isinstance(op, mem.BufferOp) and op.init is not None:
            array = np.asarray(_init_array(op))
            program.constants.append((addresses.buffer_address(op.buffer), array.tobytes()))
    for segment in (op for op in module.ops if isinstance(op, aipu.SegmentOp)):
        emitter = StreamEmitter(addresses, program)
        for core in segment.body.block.ops:
            emitter.emit_block(core.regions[0].block, {})
        program.constants += list(emitter.dpu_programs.items())
        program.segments.append(
            SegmentImage(
                aipu._int(segment.index),
                isa.Stream(b"".join(emitter.records)),
                [
                    _io(addresses, v, p)
                    for v, p in zip(segment.inputs, segment.perms("inputs"), strict=True)
                ],
                [
                    _io(addresses, v, p)
                    for v, p in zip(segment.outputs, segment.perms("outputs"), strict=True)
                ],
            )
        )
    return program


def _init_array(buffer: mem.BufferOp) -> np.ndarray:
    from aipuc.dialects.tensors import numpy_from_dense

    assert buffer.init is not None
    array = numpy_from_dense(buffer.init)
    return array.astype(array.dtype.newbyteorder("<"))


def _io(addresses: Addresses, value: SSAValue, perm) -> IoBuffer:
    memory = value.type
    assert isinstance(memory, mem.BufferType)
    return IoBuffer(
        addresses.buffer_address(value),
        tuple(memory.get_shape()),
        tuple(perm),
        dtype_of(memory.element_type).name,
    )
