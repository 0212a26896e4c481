"""The ELF file of a compiled model: tasklists, DPU programs and constants at their addresses.

Sections (all `SHF_ALLOC`, at the device address the loader copies them to):

    .aipu.tasklist.core<c>.seg<k>   the records of segment k on core c, ending with END
    .aipu.boot.core<c>              with stream_tasklist: per segment, a DMA of its first
                                    chunk into the core's tasklist buffer and a JUMP there
    .aipu.dpu_text.<n>              a DPU program (micro-op words), where aipu-programs put it
    .aipu.dwpu_text.<n>             a DWPU program word, likewise
    .aipu.<kind>.<n>                a constant buffer: weights, mvm_requant (bias and
                                    requantization), dwpu_weights, dwpu_requant, dpu_table
                                    (LUTs, requantization and exp tables), dpu_operand, data

The file itself is loaded into DDR (`elf_in_ddr`) or L2, above the planned buffers of that
pool. Tasklists run from the L2 that `l2_size_reserved_tasklist` reserves per core. Without
`stream_tasklist` each segment's tasklist is copied there whole (it must fit). With it, the
tasklist stays in the loaded file, cut into chunks of half the reserved space; the core
runs a chunk from one half while the chunk's first record, a system DMA, brings the next
chunk into the other half, and its last record, a JUMP, continues there. These DMA records
are ordinary records: the simulator runs them and the cycle model counts them.

Symbols: `segment<k>` (the entry of segment k, in its tasklist or boot section),
`segment<k>.in<i>` / `.out<i>` (absolute: IO buffer address and size) and `aipu.elf_image`
(where the file is loaded, and its size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, i64

from aipuc.dialects import aipu, mem
from aipuc.errors import CompilationError
from aipuc.lowering.emit_stream import Emitted, emit_records
from aipuc.lowering.mem_plan import PLAN_ATTR
from aipuc.lowering.mem_pools import TASKLIST_ATTR, pools_of
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.elf import ElfFile, Section, SectionFlag, Symbol, SymbolType
from aipuc.runtime.sim.isa import RECORD_BYTES, DmaEngineCode, Opcode
from aipuc.runtime.sim.memory import Region
from aipuc.runtime.sim.program import IMAGE_SYMBOL, DeviceProgram

CODE = SectionFlag.ALLOC | SectionFlag.EXECINSTR
IMAGE_ALIGN = 4096
CORE = 0


@dataclass(frozen=True)
class EmitOptions:
    """The emission's options, spelled like the CompilerConfig fields they mirror."""

    stream_tasklist: bool = True
    elf_in_ddr: bool = True


@dataclass
class Artifact:
    elf: bytes
    device: dict[str, Any]
    """The manifest's `device` entry: memory map, segments' entries and IO buffers."""
    emitted: Emitted
    image: dict[str, int]

    def program(self) -> DeviceProgram:
        return DeviceProgram.from_elf(self.elf, self.device)

    def executed(self) -> list[isa.Stream]:
        """Per segment, the records its core runs in order, JUMPs and END left out: the
        boot DMA of its first chunk (stream_tasklist), then its tasklist section, whose
        chunks follow one another in the order they run."""
        elf = ElfFile.from_bytes(self.elf)
        boot = next((s for s in elf.sections if s.name == f".aipu.boot.core{CORE}"), None)
        streams = []
        for position, segment in enumerate(self.emitted.segments):
            data = elf.section(f".aipu.tasklist.core{CORE}.seg{segment.index}").data
            if boot is not None:
                data = boot.data[2 * RECORD_BYTES * position :][:RECORD_BYTES] + data
            records = [
                record.tobytes()
                for opcode, record in isa.Stream(data).records()
                if opcode not in (Opcode.JUMP, Opcode.END)
            ]
            streams.append(isa.Stream(b"".join(records)))
        return streams


def _end() -> bytes:
    return isa.encode(Opcode.END, {}, core=CORE)


def _jump(target: int) -> bytes:
    return isa.encode(Opcode.JUMP, {"target": target}, core=CORE)


def _load_chunk(src: int, dst: int, size: int) -> bytes:
    return isa.encode(
        Opcode.DMA,
        {
            "src": src,
            "dst": dst,
            "sizes": [1, 1, 1, 1, size],
            "src_strides": [0, 0, 0, 0, 1],
            "dst_strides": [0, 0, 0, 0, 1],
            "engine": int(DmaEngineCode.SYSTEM),
        },
        core=CORE,
    )


# ---------------------------------------------------------------------------------- constants


def constant_kinds(module: ModuleOp) -> dict[mem.BufferOp, str]:
    """What each constant buffer holds, from the tasks that read it (or its L1 copy)."""
    readers: dict[mem.BufferOp, list[tuple[Any, Any]]] = {}
    copies: dict[mem.BufferOp, list[mem.BufferOp]] = {}
    for op in module.walk():
        if isinstance(op, aipu.DmaOp):
            source, dest = mem.root_buffer(op.source), mem.root_buffer(op.dest)
            copies.setdefault(source, []).append(dest)
        for operand in op.operands:
            if isinstance(operand.type, (mem.BufferType, mem.ViewType)):
                readers.setdefault(mem.root_buffer(operand), []).append((op, operand))

    def kind_of(buffer: mem.BufferOp, depth: int = 0) -> str | None:
        for op, operand in readers.get(buffer, []):
            if isinstance(op, aipu.ImcLoadOp):
                return "weights"
            if isinstance(op, aipu.MvmOp) and operand is op.requant:
                return "mvm_requant"
            if isinstance(op, aipu.DwpuOp):
                return "dwpu_weights" if operand is op.weights else "dwpu_requant"
            if isinstance(op, aipu.DpuLoadOp):
                return "dpu_operand"
            if op.parent_op() is not None and isinstance(op.parent_op(), aipu.DpuOp):
                return "dpu_table"
        for copy in copies.get(buffer, []) if depth < 3 else []:
            if (found := kind_of(copy, depth + 1)) is not None:
                return found
        return None

    return {
        op: kind_of(op) or "data"
        for op in module.ops
        if isinstance(op, mem.BufferOp) and op.init is not None
    }


# ---------------------------------------------------------------------------------- layout


@dataclass
class _Tasklists:
    """The tasklist sections of one core, with stream_tasklist or without."""

    base: int
    size: int
    streamed: bool

    def chunk_records(self, segments: int) -> int:
        records = (self.size - self.boot_bytes(segments)) // 2 // RECORD_BYTES
        if records < 3:
            raise CompilationError(
                f"l2_size_reserved_tasklist ({self.size} bytes) leaves no room for two "
                "tasklist chunks; raise it"
            )
        return records

    def boot_bytes(self, segments: int) -> int:
        return 2 * RECORD_BYTES * segments

    def chunks(self, records: list[bytes], per_chunk: int) -> list[list[bytes]]:
        """Bodies of the chunks: all but the last leave room for their DMA and JUMP."""
        chunks, rest = [], list(records)
        while len(rest) > per_chunk - 1:
            chunks.append(rest[: per_chunk - 2])
            rest = rest[per_chunk - 2 :]
        return [*chunks, rest]


def build_elf(module: ModuleOp, options: EmitOptions) -> Artifact:
    emitted = emit_records(module)
    region = module.attributes.get(TASKLIST_ATTR)
    if not isinstance(region, DenseArrayBase):
        raise CompilationError("emission needs the tasklist region: run mem-pools first")
    base, size = (int(v) for v in region.iter_values())  # type: ignore[misc]
    tasklists = _Tasklists(base, size, options.stream_tasklist)
    kinds = constant_kinds(module)

    # Every section with its final size; in-place tasklist data is filled in once the
    # file's home address is known.
    sections: list[Section] = []
    symbols: list[Symbol] = []
    fills: list[Callable[[int, list[int]], None]] = []
    if options.stream_tasklist:
        _streamed(emitted, tasklists, sections, symbols, fills)
    else:
        _resident(emitted, tasklists, sections, symbols)
    for n, (address, words) in enumerate(sorted(emitted.dpu_programs.items())):
        sections.append(Section(f".aipu.dpu_text.{n}", words, address, CODE, 32))
    for n, (address, word) in enumerate(sorted(emitted.dwpu_programs.items())):
        sections.append(Section(f".aipu.dwpu_text.{n}", word, address, CODE, 32))
    for n, (buffer, address, data) in enumerate(emitted.constants):
        sections.append(Section(f".aipu.{kinds[buffer]}.{n}", data, address))
    for segment in emitted.segments:
        for io in (*segment.inputs, *segment.outputs):
            nbytes = int(np.prod(io.shape)) * np.dtype(io.dtype).itemsize
            symbols.append(Symbol(io.symbol, io.address, nbytes))
    elf = ElfFile(sections, symbols)
    symbols.append(Symbol(IMAGE_SYMBOL, 0, 0))  # placeholder of the same encoded size
    elf.entry = symbols[0].value if symbols else 0
    image = _place_image(module, len(elf.to_bytes()), options)
    _map_image_pages(module, emitted, image)
    symbols[-1] = Symbol(IMAGE_SYMBOL, image["address"], image["size"])
    offsets = elf.offsets()
    for fill in fills:
        fill(image["address"], offsets)
    elf.entry = next(s.value for s in symbols if s.name == "segment0") if emitted.segments else 0
    data = elf.to_bytes()
    assert len(data) == image["size"]
    device = {
        "memory_map": [
            {
                "name": r.name,
                "base": r.base,
                "size": r.size,
                "page_size": r.page_size,
                "pages": list(r.pages),
                "physical": r.physical,
                "backing": r.backing,
            }
            for r in emitted.regions
        ],
        "segments": [
            {
                "index": s.index,
                "entry": f"segment{s.index}",
                "inputs": [_io_entry(io) for io in s.inputs],
                "outputs": [_io_entry(io) for io in s.outputs],
            }
            for s in emitted.segments
        ],
    }
    return Artifact(data, device, emitted, image)


def _io_entry(io) -> dict[str, Any]:
    return {
        "symbol": io.symbol,
        "shape": list(io.shape),
        "perm": list(io.perm),
        "dtype": io.dtype,
        "logical": list(io.logical),
        "fill": io.fill,
    }


def _resident(emitted: Emitted, tasklists: _Tasklists, sections, symbols) -> None:
    """Each segment's whole tasklist in the core's reserved L2, one after the other."""
    address = tasklists.base
    for segment in emitted.segments:
        data = b"".join(segment.records) + _end()
        if address + len(data) > tasklists.base + tasklists.size:
            raise CompilationError(
                f"the tasklists need {address + len(data) - tasklists.base} bytes but "
                f"l2_size_reserved_tasklist is {tasklists.size}; enable stream_tasklist "
                "or raise l2_size_reserved_tasklist"
            )
        name = f".aipu.tasklist.core{CORE}.seg{segment.index}"
        sections.append(Section(name, data, address, CODE, RECORD_BYTES))
        symbols.append(Symbol(f"segment{segment.index}", address, len(data), SymbolType.FUNC, name))
        address += len(data)


def _streamed(emitted: Emitted, tasklists: _Tasklists, sections, symbols, fills) -> None:
    """Boot records in the reserved L2; the chunks stay in the loaded ELF file."""
    count = len(emitted.segments)
    per_chunk = tasklists.chunk_records(count)
    buffers = [
        tasklists.base + tasklists.boot_bytes(count) + half * per_chunk * RECORD_BYTES
        for half in range(2)
    ]
    boot = Section(
        f".aipu.boot.core{CORE}",
        bytes(tasklists.boot_bytes(count)),
        tasklists.base,
        CODE,
        RECORD_BYTES,
    )
    sections.append(boot)
    for position, segment in enumerate(emitted.segments):
        bodies = tasklists.chunks(segment.records, per_chunk)
        sizes = [
            (len(body) + (1 if n == len(bodies) - 1 else 2)) * RECORD_BYTES
            for n, body in enumerate(bodies)
        ]
        index = len(sections)
        name = f".aipu.tasklist.core{CORE}.seg{segment.index}"
        sections.append(Section(name, bytes(sum(sizes)), 0, CODE, RECORD_BYTES))
        entry = tasklists.base + 2 * RECORD_BYTES * position
        symbols.append(
            Symbol(f"segment{segment.index}", entry, 2 * RECORD_BYTES, SymbolType.FUNC, boot.name)
        )

        def fill(
            image: int, offsets: list[int], index=index, bodies=bodies, sizes=sizes, entry=entry
        ) -> None:
            section = sections[index]
            section.address = image + offsets[index]
            starts = [section.address + sum(sizes[:n]) for n in range(len(sizes))]
            data = []
            for n, body in enumerate(bodies):
                if n == len(bodies) - 1:
                    data += [*body, _end()]
                    continue
                target = buffers[(n + 1) % 2]
                data += [_load_chunk(starts[n + 1], target, sizes[n + 1]), *body, _jump(target)]
            section.data = b"".join(data)
            offset = entry - tasklists.base
            first = _load_chunk(starts[0], buffers[0], sizes[0]) + _jump(buffers[0])
            boot.data = boot.data[:offset] + first + boot.data[offset + len(first) :]

        fills.append(fill)


def _place_image(module: ModuleOp, size: int, options: EmitOptions) -> dict[str, int]:
    """The file's home: above the planned peak of DDR (elf_in_ddr) or of L2."""
    name = "ddr" if options.elf_in_ddr else "l2"
    pool = pools_of(module)[name]
    plan = module.attributes.get(PLAN_ATTR)
    peak = plan.data[name].data["peak"].value.data if plan is not None else 0  # type: ignore[union-attr]
    offset = -(-peak // IMAGE_ALIGN) * IMAGE_ALIGN
    capacity = pool.capacity.value.data
    if offset + size > capacity:
        hint = "" if options.elf_in_ddr else "; set elf_in_ddr=true"
        raise CompilationError(
            f"the ELF file ({size} bytes) does not fit in pool '{name}' above its planned "
            f"buffers ({peak} of {capacity} bytes){hint}"
        )
    assert pool.address is not None
    return {"pool": name, "address": pool.address.value.data + offset, "size": size}  # type: ignore[dict-item]


def _map_image_pages(module: ModuleOp, emitted: Emitted, image: dict[str, int]) -> None:
    """In a paged pool, the file's virtual pages get physical pages after the planned ones
    (the page table and the memory map grow to cover it)."""
    pool = pools_of(module)[str(image["pool"])]
    if pool.page_size is None:
        return
    assert pool.address is not None
    page, capacity = pool.page_size.value.data, pool.capacity.value.data
    table = [] if pool.pages is None else list(pool.pages.get_values())
    start = image["address"] - pool.address.value.data
    end = -(-(start + image["size"]) // page)
    table += [-1] * (end - len(table))
    frame = max(table, default=-1) + 1
    for virtual in range(start // page, end):
        if table[virtual] < 0:
            if (frame + 1) * page > capacity:
                raise CompilationError(
                    f"the ELF file ({image['size']} bytes) does not fit in the physical pages "
                    f"of pool '{image['pool']}' ({capacity} bytes)"
                )
            table[virtual], frame = frame, frame + 1
    pool.properties["pages"] = DenseArrayBase.from_list(i64, table)
    emitted.regions[:] = [
        Region(r.name, r.base, len(table) * page, page, tuple(table), capacity)
        if r.name == image["pool"]
        else r
        for r in emitted.regions
    ]


def emit_program(module: ModuleOp, options: EmitOptions = EmitOptions()) -> DeviceProgram:
    """The device program of a planned module, through its ELF file."""
    return build_elf(module, options).program()
