"""Emission: a planned module becomes records: per segment the flattened instruction
stream of its core with its IO buffers, plus the constants and DPU programs at their
addresses (`Emitted`); `emit_elf` packs them into the ELF file the runtime loads.

This is where tile loops disappear: each loop body is emitted once per iteration with its
induction variable bound, every view resolved to a device address and byte strides from
the planned offsets. DMA records (and the loader) reach an L1 through its physical window
(`l1_core0_physical_address` + core * `AIPU.l1_core_stride`); the units of a core use its
L1's virtual address (`l1_virtual_address`). Nothing of the IR survives in the output.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue

from aipuc.dialects import aipu, mem
from aipuc.dialects.axq import QuantizedType
from aipuc.dialects.tensors import dtype_of
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU
from aipuc.lowering.dpu_regalloc import REG_ATTR
from aipuc.lowering.mem_pools import L1_PHYSICAL_ATTR, TASKLIST_ATTR, pools_of
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.isa import DPU_OPERANDS, DPU_RANK, MAX_DIMS, MicroOpcode, Opcode
from aipuc.runtime.sim.memory import Region
from aipuc.runtime.sim.program import IoBuffer

# ---------------------------------------------------------------------------------- addresses


class Addresses:
    """Device addresses and byte strides of buffers and views, given induction values."""

    def __init__(self, module: ModuleOp):
        self.pools = pools_of(module)
        physical = _l1_physical(module)
        self.windows = [
            (pool.address.value.data, pool.capacity.value.data, physical(pool))  # type: ignore[union-attr]
            for pool in self.pools.values()
            if pool.core is not None and pool.address is not None
        ]

    def loader(self, address: int) -> int:
        """The address DMA engines and the loader use: an L1 through its physical window."""
        for virtual, size, physical in self.windows:
            if virtual <= address < virtual + size:
                return physical + address - virtual
        return address

    def loader_address(self, value: SSAValue) -> int:
        return self.loader(self.buffer_address(value))

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

    def __init__(self, addresses: Addresses):
        self.addresses = addresses
        self.records: list[bytes] = []
        self.dpu_programs: dict[int, bytes] = {}
        self.dwpu_programs: dict[int, bytes] = {}

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
                    dst=self.addresses.loader(address),
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
            src=self.addresses.loader(src),
            dst=self.addresses.loader(dst),
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
        word = {"flags": int(flags)}
        if op.weights is not None:
            word["w_addr"] = self.addresses.block(op.weights, env)[0]
        if op.requant is not None:
            word["rq_addr"] = self.addresses.block(op.requant, env)[0]
        mode = {
            aipu.DwpuMode.CONV: isa.DwpuMode.CONV,
            aipu.DwpuMode.MAX: isa.DwpuMode.MAX,
            aipu.DwpuMode.AVG: isa.DwpuMode.AVG,
            aipu.DwpuMode.GLOBAL_AVG: isa.DwpuMode.GLOBAL_AVG,
            aipu.DwpuMode.GLOBAL_MAX: isa.DwpuMode.GLOBAL_MAX,
        }[op.mode.data]
        word["mode"] = int(mode)
        if op.program is None:
            raise CompilationError("a DWPU task needs its program buffer (aipu-programs)")
        program = self.addresses.buffer_address(op.program)
        encoded = _encode_word(isa.DWPU_OP, word)
        if self.dwpu_programs.setdefault(program, encoded) != encoded:
            raise CompilationError("tiles sharing a DWPU program must compute alike")
        self._record(
            Opcode.DWPU,
            program=program,
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
        )

    def _dpu(self, op: aipu.DpuOp, env) -> None:
        slots: dict[SSAValue, int] = {}
        operand_addr = [0] * DPU_OPERANDS
        operand_strides = [0] * (DPU_OPERANDS * DPU_RANK)
        operand_bytes = [0] * DPU_OPERANDS
        shape: list[int] | None = None
        blocks: list[tuple[int, list[int], list[int], int]] = []
        for micro in op.body.block.ops:
            if isinstance(micro, (aipu.DpuLoadOp, aipu.DpuStoreOp)):
                value = micro.source if isinstance(micro, aipu.DpuLoadOp) else micro.dest
                if value in slots:
                    continue
                if len(slots) == DPU_OPERANDS:
                    raise CompilationError(
                        f"a DPU program reads or writes more than {DPU_OPERANDS} tiles"
                    )
                slots[value] = len(slots)
                address, sizes, strides, itemsize = self.addresses.block(value, env)
                if isinstance(micro, aipu.DpuStoreOp):
                    shape = list(sizes)
                blocks.append((address, list(sizes), list(strides), itemsize))
        assert shape is not None
        shape, blocks = _within_dpu_rank(shape, blocks)
        for slot, (address, sizes, strides, itemsize) in enumerate(blocks):
            operand_addr[slot] = address
            operand_bytes[slot] = itemsize
            operand_strides[slot * DPU_RANK : (slot + 1) * DPU_RANK] = [
                0 if n == 1 else s for n, s in zip(sizes, strides, strict=True)
            ]
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
        """The program's words, with the registers aipu-dpu-regalloc assigned."""
        words = []
        for micro in op.body.block.ops:
            fields: dict[str, int] = {"op": int(micro.MICRO)}  # type: ignore[attr-defined]
            operands = [o for o in micro.operands if isinstance(o.type, aipu.VRegType)]
            for name, register in zip(("a", "b", "c"), operands, strict=False):
                fields[name] = _register(register.owner)  # type: ignore[arg-type]
            if isinstance(micro, aipu.DpuLoadOp):
                fields["slot"] = slots[micro.source]
            elif isinstance(micro, aipu.DpuStoreOp):
                fields["slot"] = slots[micro.dest]
            elif isinstance(micro, (aipu.DpuSpillOp, aipu.DpuReloadOp)):
                address, sizes, _, _ = self.addresses.block(micro.scratch, env)
                fields["addr"] = address + aipu._int(micro.slot) * sizes[1]
                fields["imm0"] = int(micro.float_lanes.value.data)
            tables = [
                o
                for o in micro.operands
                if isinstance(o.type, mem.MemoryType)
                and not isinstance(
                    micro, (aipu.DpuLoadOp, aipu.DpuStoreOp, aipu.DpuSpillOp, aipu.DpuReloadOp)
                )
            ]
            if tables:
                fields["addr"] = self.addresses.block(tables[0], env)[0]
            fields.update(_immediates(micro))
            if micro.results:
                fields["dst"] = _register(micro)
            words.append(fields)
        return isa.encode_micro_ops(words)


def _encode_word(dtype: np.dtype, fields: dict[str, int]) -> bytes:
    word = np.zeros(1, dtype)
    for name, value in fields.items():
        word[name] = value
    return word.tobytes()


def _register(micro: Operation) -> int:
    register = micro.attributes.get(REG_ATTR)
    if not isinstance(register, IntegerAttr):
        raise CompilationError(
            f"{micro.name} has no register: run aipu-dpu-regalloc before emission"
        )
    return register.value.data


_PER_LANE_AXIS = (MicroOpcode.REQUANT_TABLE, MicroOpcode.RMAX, MicroOpcode.RSUM)
"""Micro-ops whose meaning depends on the innermost axis (per channel, reductions)."""


def _within_dpu_rank(
    shape: list[int], blocks: list[tuple[int, list[int], list[int], int]]
) -> tuple[list[int], list[tuple[int, list[int], list[int], int]]]:
    """The tiles on DPU_RANK axes: leading 1s added, or (a 5-D element-wise tile, such as a
    detector head's [1, 3, 80, 80, 85]) outer axes merged where every operand steps through
    them as one (a broadcast axis stays 0 on both), never the innermost axis, which
    row-wise micro-ops and per-channel tables read."""
    rank = max(len(shape), *(len(sizes) for _, sizes, _, _ in blocks))
    padded = [
        (address, [1] * (rank - len(sizes)) + sizes, [0] * (rank - len(sizes)) + strides, item)
        for address, sizes, strides, item in blocks
    ]
    shape = [1] * (rank - len(shape)) + shape
    axis = 0
    while len(shape) > DPU_RANK and axis < len(shape) - 2:
        inner = shape[axis + 1]
        if all(
            strides[axis] == strides[axis + 1] * inner
            if sizes[axis] > 1 and sizes[axis + 1] > 1
            else sizes[axis] == 1 and sizes[axis + 1] == 1 or shape[axis] == 1
            for _, sizes, strides, _ in padded
        ):
            shape[axis : axis + 2] = [shape[axis] * inner]
            padded = [
                (address, [*sizes[:axis], sizes[axis] * sizes[axis + 1], *sizes[axis + 2 :]],
                 [*strides[:axis], strides[axis + 1], *strides[axis + 2 :]], item)
                for address, sizes, strides, item in padded
            ]  # fmt: skip
        else:
            axis += 1
    if len(shape) > DPU_RANK:
        raise CompilationError(
            f"DPU tiles have at most {DPU_RANK} axes, and this tile's {len(shape)} do not "
            "merge (an operand steps through them differently)"
        )
    lead = DPU_RANK - len(shape)
    return [1] * lead + shape, [
        (address, [1] * lead + sizes, [0] * lead + strides, item)
        for address, sizes, strides, item in padded
    ]


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
    """The memory map: every pool's address window (a paged pool's virtual window with its
    page table and the physical bytes behind it), and each L1 again through its physical
    window."""
    physical = _l1_physical(module)
    regions = []
    for name, pool in pools_of(module).items():
        assert pool.address is not None
        address, capacity = pool.address.value.data, pool.capacity.value.data
        if pool.page_size is None:
            regions.append(Region(name, address, capacity))
        else:
            page = pool.page_size.value.data
            table = () if pool.pages is None else pool.pages.get_values()
            regions.append(Region(name, address, len(table) * page, page, tuple(table), capacity))
        if pool.core is not None:
            regions.append(Region(f"{name}.physical", physical(pool), capacity, backing=name))
    tasklists = module.attributes.get(TASKLIST_ATTR)
    if isinstance(tasklists, DenseArrayBase):
        base, size = (int(v) for v in tasklists.iter_values())  # type: ignore[misc]
        cores = sum(1 for pool in pools_of(module).values() if pool.core is not None)
        regions.append(Region("l2.tasklists", base, size * max(cores, 1)))
    return regions


def _l1_physical(module: ModuleOp):
    """pool -> the base address DMA engines see an L1 pool at."""
    attr = module.attributes.get(L1_PHYSICAL_ATTR)
    core0 = attr.value.data if isinstance(attr, IntegerAttr) else AIPU.l1_core_stride

    def base(pool: mem.PoolOp) -> int:
        assert pool.core is not None
        return core0 + pool.core.value.data * AIPU.l1_core_stride

    return base


@dataclass
class EmittedSegment:
    index: int
    records: list[bytes]
    """Core 0's records, in order, without the END the tasklist adds."""
    inputs: list[IoBuffer]
    outputs: list[IoBuffer]


@dataclass
class Emitted:
    """A planned module's instructions and initial memory, before they go into the ELF."""

    regions: list[Region]
    constants: list[tuple[mem.BufferOp, int, bytes]] = field(default_factory=list)
    dpu_programs: dict[int, bytes] = field(default_factory=dict)
    dwpu_programs: dict[int, bytes] = field(default_factory=dict)
    segments: list[EmittedSegment] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(len(s.records) for s in self.segments)


def emit_records(module: ModuleOp) -> Emitted:
    """The records of every segment, the constants and the DPU programs of a planned module."""
    emitted = Emitted(_regions(module))
    addresses = Addresses(module)
    launches = {aipu._int(op.index): op for op in module.walk() if isinstance(op, aipu.LaunchOp)}
    for op in module.ops:
        if isinstance(op, mem.BufferOp) and op.init is not None:
            array = np.asarray(_init_array(op))
            emitted.constants.append((op, addresses.loader_address(op.buffer), array.tobytes()))
    for segment in (op for op in module.ops if isinstance(op, aipu.SegmentOp)):
        emitter = StreamEmitter(addresses)
        for core in segment.body.block.ops:
            emitter.emit_block(core.regions[0].block, {})
        for address, words in emitter.dpu_programs.items():
            emitted.dpu_programs[addresses.loader(address)] = words
        for address, word in emitter.dwpu_programs.items():
            emitted.dwpu_programs[addresses.loader(address)] = word
        index = aipu._int(segment.index)
        launch = launches.get(index)
        host_inputs = [None] * len(segment.inputs) if launch is None else launch.inputs
        host_outputs = [None] * len(segment.outputs) if launch is None else launch.outputs
        emitted.segments.append(
            EmittedSegment(
                index,
                emitter.records,
                [
                    _io(addresses, v, p, host, f"segment{index}.in{i}")
                    for i, (v, p, host) in enumerate(
                        zip(segment.inputs, segment.perms("inputs"), host_inputs, strict=True)
                    )
                ],
                [
                    _io(addresses, v, p, host, f"segment{index}.out{i}")
                    for i, (v, p, host) in enumerate(
                        zip(segment.outputs, segment.perms("outputs"), host_outputs, strict=True)
                    )
                ],
            )
        )
    return emitted


def _init_array(buffer: mem.BufferOp) -> np.ndarray:
    from aipuc.dialects.tensors import numpy_from_dense

    assert buffer.init is not None
    array = numpy_from_dense(buffer.init)
    return array.astype(array.dtype.newbyteorder("<"))


def _io(
    addresses: Addresses, value: SSAValue, perm, host: SSAValue | None, symbol: str
) -> IoBuffer:
    """An IO buffer; its logical shape is that of the host tensor `host` (the launch's
    operand or result: smaller than the stored one when the host crops), or the stored
    shape transposed when no launch names the segment."""
    memory = value.type
    assert isinstance(memory, mem.BufferType)
    stored = tuple(memory.get_shape())
    fill = 0
    if host is None:
        logical = tuple(stored[list(perm).index(axis)] for axis in range(len(stored)))
    else:
        assert isinstance(host.type, TensorType)
        logical = tuple(host.type.get_shape())
        element = host.type.get_element_type()
        if isinstance(element, QuantizedType) and not element.is_per_axis:
            fill = element.zero_point
    return IoBuffer(
        symbol,
        addresses.buffer_address(value),
        stored,
        tuple(perm),
        dtype_of(memory.element_type).name,
        logical,
        fill,
    )
