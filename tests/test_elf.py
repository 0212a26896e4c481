"""model.elf: readelf and pyelftools read what the runtime reads; the tasklists in it decode to
the emitted records; each ELF-related config field changes the file as documented, and the
model still runs bit for bit."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from deploy_checks import READELF, check_pyelftools, check_readelf

import aipuc
from aipuc.config import CompilerConfig
from aipuc.errors import AipucError
from aipuc.ir_files import load_module
from aipuc.lowering.emit_stream import emit_records
from aipuc.models import build_model, sample_inputs
from aipuc.runtime.sim import elf as elf_format
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.device import Device
from aipuc.runtime.sim.elf import ElfError, ElfFile, Section, SectionFlag, Symbol, SymbolType
from aipuc.runtime.sim.isa import Opcode
from aipuc.runtime.sim.memory import SimulationError
from aipuc.runtime.sim.program import IMAGE_SYMBOL, DeviceProgram


@pytest.fixture(scope="module")
def tiny():
    model = build_model("tiny_cnn")
    return model, [sample_inputs(model, seed=seed) for seed in range(2)]


def _compile(tmp_path: Path, tiny, name: str, **fields):
    model, samples = tiny
    config = CompilerConfig(output_dir=str(tmp_path / name), **fields)
    compiled = aipuc.compile(model, config, samples)
    folder = compiled.output_dir / "compiled_model"
    elf = ElfFile.from_bytes((folder / "model.elf").read_bytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    for sample in samples:
        streamed, reference = compiled.run(sample), compiled.run_quantized(sample)
        for key, value in reference.items():
            np.testing.assert_array_equal(streamed[key], value)
    return compiled, elf, manifest


@pytest.fixture(scope="module")
def default(tmp_path_factory, tiny):
    return _compile(tmp_path_factory.mktemp("default"), tiny, "out")


def _region(manifest, name: str) -> range:
    entry = next(r for r in manifest["device"]["memory_map"] if r["name"] == name)
    return range(entry["base"], entry["base"] + entry["size"])


def _records(data: bytes) -> list[isa.Instruction]:
    return isa.decode(data)


# ------------------------------------------------------------------------- readers agree


@pytest.mark.skipif(READELF is None, reason="readelf (binutils) is not installed")
def test_readelf_reads_the_file_without_warnings(default):
    compiled, elf, _ = default
    listing = check_readelf(compiled.output_dir / "compiled_model" / "model.elf", elf)
    symbols = set(re.findall(r"GLOBAL\s+DEFAULT\s+\S+ (\S+)", listing))
    assert {"segment0", "segment0.in0", "segment0.out0", IMAGE_SYMBOL} <= symbols


def test_pyelftools_reads_what_the_runtime_reads(default):
    compiled, elf, _ = default
    check_pyelftools(compiled.output_dir / "compiled_model" / "model.elf", elf)


def test_the_tasklist_decodes_to_the_emitted_records(default):
    """Records emitted again from lowered/model.mlir are what the ELF's tasklist holds."""
    compiled, elf, manifest = default
    module = load_module(compiled.output_dir / "lowered" / "model.mlir")
    emitted = emit_records(module)
    (segment,) = emitted.segments
    tasklists = _region(manifest, "l2.tasklists")
    decoded = [
        r
        for r in _records(elf.section(".aipu.tasklist.core0.seg0").data)
        if r.opcode not in (Opcode.JUMP, Opcode.END)
        and not (r.opcode == Opcode.DMA and r.fields["dst"] in tasklists)
    ]
    assert decoded == isa.decode(b"".join(segment.records))
    assert isa.encode_stream(decoded) == b"".join(segment.records)
    assert sum(r.opcode == Opcode.MVM for r in decoded) > 0


# ------------------------------------------------------------------------- config fields


def test_elf_in_ddr_places_the_file(default, tmp_path, tiny):
    _, elf, manifest = default
    image = elf.symbol(IMAGE_SYMBOL)
    assert image.value in _region(manifest, "ddr")
    assert elf.section(".aipu.tasklist.core0.seg0").address in _region(manifest, "ddr")
    _, elf_l2, manifest_l2 = _compile(tmp_path, tiny, "l2", elf_in_ddr=False)
    assert elf_l2.symbol(IMAGE_SYMBOL).value in _region(manifest_l2, "l2")
    tasklist = elf_l2.section(".aipu.tasklist.core0.seg0")
    assert tasklist.address in _region(manifest_l2, "l2")
    # the streamed chunks are loaded from the file's home: a system DMA out of L2
    boot = _records(elf_l2.section(".aipu.boot.core0").data)
    assert boot[0].opcode == Opcode.DMA and boot[0].fields["src"] == tasklist.address


def test_stream_tasklist_off_copies_tasklists_into_the_reserved_l2(default, tmp_path, tiny):
    _, elf, manifest = default
    assert ".aipu.boot.core0" in {s.name for s in elf.sections}
    _, resident, manifest_r = _compile(tmp_path, tiny, "resident", stream_tasklist=False)
    names = {s.name for s in resident.sections}
    assert ".aipu.boot.core0" not in names
    tasklist = resident.section(".aipu.tasklist.core0.seg0")
    assert tasklist.address == _region(manifest_r, "l2.tasklists").start
    records = _records(tasklist.data)
    assert records[-1].opcode == Opcode.END
    assert not any(r.opcode == Opcode.JUMP for r in records)


def test_stream_tasklist_off_needs_room(tmp_path, tiny):
    model, samples = tiny
    config = CompilerConfig(
        output_dir=str(tmp_path / "x"), stream_tasklist=False, l2_size_reserved_tasklist=2048
    )
    with pytest.raises(AipucError, match="enable stream_tasklist or raise l2_size_reserved"):
        aipuc.compile(model, config, samples)


def test_streamed_chunks_are_loaded_by_dma_records_in_the_stream(tmp_path, tiny):
    """A small tasklist space: many chunks, each loaded by a system DMA record."""
    compiled, elf, manifest = _compile(tmp_path, tiny, "chunks", l2_size_reserved_tasklist=2048)
    tasklists = _region(manifest, "l2.tasklists")
    records = _records(elf.section(".aipu.tasklist.core0.seg0").data)
    loads = [r for r in records if r.opcode == Opcode.DMA and r.fields["dst"] in tasklists]
    jumps = [r for r in records if r.opcode == Opcode.JUMP]
    assert len(loads) == len(jumps) >= 3
    assert all(r.fields["engine"] == isa.DmaEngineCode.SYSTEM for r in loads)
    # the loads are real: a chunk load of the wrong size leaves the core running garbage
    data = (compiled.output_dir / "compiled_model" / "model.elf").read_bytes()
    program = DeviceProgram.from_elf(data, manifest["device"])
    tasklist = elf.section(".aipu.tasklist.core0.seg0")
    first_load = records.index(loads[0])
    broken = isa.Instruction(
        Opcode.DMA, {**loads[0].fields, "sizes": (1, 1, 1, 1, isa.RECORD_BYTES)}, 0, 0
    )
    start = elf.offsets()[elf.sections.index(tasklist)] + first_load * isa.RECORD_BYTES
    patched = data[:start] + broken.encode() + data[start + isa.RECORD_BYTES :]
    program.loads[0] = (program.loads[0][0], patched)
    # the chunks come from the file in memory, not from a copy of the section
    program.loads = [(a, d) for a, d in program.loads if a != tasklist.address]
    device = Device(program)
    inputs = _segment_inputs(compiled, tiny)
    with pytest.raises(SimulationError):
        device.launch(0, inputs)


def _segment_inputs(compiled, tiny) -> list[np.ndarray]:
    """The quantized codes segment 0 takes for the first sample."""
    manifest = json.loads((compiled.output_dir / "compiled_model" / "manifest.json").read_text())
    step = next(s for s in manifest["steps"] if s["op"] == "quantize")
    from aipuc import numerics

    value = tiny[1][0][step["input"]]
    return [numerics.quantize(value, np.asarray(step["scale"]), np.asarray(step["zero_point"]))]


@pytest.mark.parametrize("field", ["dpu_instructions_home", "dwpu_instructions_home"])
def test_instruction_homes(default, tmp_path, tiny, field):
    prefix = ".aipu.dpu_text." if field.startswith("dpu") else ".aipu.dwpu_text."
    _, elf, manifest = default
    texts = [s for s in elf.sections if s.name.startswith(prefix)]
    assert texts and all(s.address in _region(manifest, "ddr") for s in texts)
    _, moved, manifest_l2 = _compile(tmp_path, tiny, field, **{field: "l2"})
    texts = [s for s in moved.sections if s.name.startswith(prefix)]
    assert texts and all(s.address in _region(manifest_l2, "l2") for s in texts)


def test_dpu_constants_home(tmp_path):
    from test_dpu_regalloc import heavy_model

    model = heavy_model(3)
    samples = [
        {"x": np.random.default_rng(s).normal(size=(1, 8, 8, 8)).astype(np.float32)}
        for s in range(2)
    ]
    homes = {}
    for home in ("global.l2", "global.ddr"):
        config = CompilerConfig(output_dir=str(tmp_path / home), dpu_constants_home=home)
        compiled = aipuc.compile(model, config, samples)
        folder = compiled.output_dir / "compiled_model"
        elf = ElfFile.from_bytes((folder / "model.elf").read_bytes())
        manifest = json.loads((folder / "manifest.json").read_text())
        tables = [s for s in elf.sections if s.name.startswith(".aipu.dpu_table.")]
        assert tables
        homes[home] = {
            name for name in ("ddr", "l2") for s in tables if s.address in _region(manifest, name)
        }
        np.testing.assert_array_equal(
            compiled.run(samples[0])["out"], compiled.run_quantized(samples[0])["out"]
        )
    assert homes == {"global.l2": {"l2"}, "global.ddr": {"ddr"}}


def test_l1_addresses_virtual_for_units_physical_for_dma(default, tmp_path, tiny):
    physical = 0x2000_0000
    virtual = 0x40_0000_0000
    _, elf, manifest = _compile(
        tmp_path, tiny, "l1", l1_core0_physical_address=physical, l1_virtual_address=virtual
    )
    l1_virtual = _region(manifest, "l1_core0")
    l1_physical = _region(manifest, "l1_core0.physical")
    assert l1_virtual.start == virtual and l1_physical.start == physical
    records = _records(elf.section(".aipu.tasklist.core0.seg0").data)
    mvms = [r for r in records if r.opcode == Opcode.MVM]
    assert mvms and all(r.fields["in_addr"] in l1_virtual for r in mvms)
    dmas = [r for r in records if r.opcode == Opcode.DMA]
    into_l1 = [r for r in dmas if r.fields["dst"] in l1_physical]
    assert into_l1 and not any(r.fields["dst"] in l1_virtual for r in dmas)


def test_the_program_takes_io_buffers_from_the_manifest_and_addresses_from_symbols(default):
    """`DeviceProgram.from_elf`: every field of an IO buffer as the manifest gives it (a fill
    code changed to 5, to see it is read), its address from its ELF symbol."""
    compiled, elf, manifest = default
    data = (compiled.output_dir / "compiled_model" / "model.elf").read_bytes()
    device = json.loads(json.dumps(manifest["device"]))
    device["segments"][0]["inputs"][0]["fill"] = 5
    program = DeviceProgram.from_elf(data, device)
    assert [region.pages for region in program.regions] == [
        tuple(region["pages"]) for region in device["memory_map"]
    ]
    for segment, entry in zip(program.segments, device["segments"], strict=True):
        assert segment.entry == elf.symbol(entry["entry"]).value
        buffers = entry["inputs"] + entry["outputs"]
        for buffer, e in zip(segment.inputs + segment.outputs, buffers, strict=True):
            assert (buffer.symbol, buffer.address) == (e["symbol"], elf.symbol(e["symbol"]).value)
            assert (buffer.shape, buffer.perm, buffer.logical) == tuple(
                tuple(e[key]) for key in ("shape", "perm", "logical")
            )
            assert (buffer.dtype, buffer.fill) == (e["dtype"], e["fill"])
    assert program.segments[0].inputs[0].fill == 5


# ------------------------------------------------------------------------- the file format


def _hand_built() -> ElfFile:
    code = SectionFlag.ALLOC | SectionFlag.EXECINSTR
    return ElfFile(
        sections=[
            Section(".aipu.a", b"\x01\x02\x03", 0x1000, align=1),
            Section(".aipu.b", bytes(range(10)), 0x2000, code, 16),
        ],
        symbols=[
            Symbol("in_b", 0x2004, 4, SymbolType.FUNC, ".aipu.b"),
            Symbol("absolute", 0x30, 0),
        ],
        entry=0x2004,
    )  # fmt: skip


def test_hand_built_file_round_trips():
    elf = _hand_built()
    assert ElfFile.from_bytes(elf.to_bytes()) == elf


def test_hand_built_file_layout_is_the_elf_specification():
    """Offsets worked by hand (header 64 bytes, section headers 64, symbols 24): data at the
    next multiple of each section's alignment (.aipu.a at 64, .aipu.b at 80, .symtab at 96),
    the string tables packed (168, 183), the section header table at the next multiple of 8
    (232). pyelftools reads the bookkeeping fields: .symtab links .strtab, and its sh_info
    is one past the last local symbol (only the null one: every other one is global)."""
    from elftools.elf.elffile import ELFFile

    data = _hand_built().to_bytes()
    reference = ELFFile(io.BytesIO(data))
    headers = [section.header for section in reference.iter_sections()]
    names = [section.name for section in reference.iter_sections()]
    assert names == ["", ".aipu.a", ".aipu.b", ".symtab", ".strtab", ".shstrtab"]
    layout = [(h.sh_offset, h.sh_size, h.sh_addralign, h.sh_link, h.sh_info, h.sh_entsize)
              for h in headers[1:]]  # fmt: skip
    assert layout == [
        (64, 3, 1, 0, 0, 0),
        (80, 10, 16, 0, 0, 0),
        (96, 3 * 24, 8, 4, 1, 24),
        (168, 15, 1, 0, 0, 0),
        (183, 43, 1, 0, 0, 0),
    ]
    assert reference.header.e_shoff == 232 and len(data) == 232 + 6 * 64
    assert reference.get_section(4).data() == b"\0in_b\0absolute\0"
    symbols = list(reference.get_section(3).iter_symbols())
    assert [(s.name, s["st_info"]["bind"], s["st_shndx"]) for s in symbols] == [
        ("", "STB_LOCAL", "SHN_UNDEF"),
        ("in_b", "STB_GLOBAL", 2),
        ("absolute", "STB_GLOBAL", "SHN_ABS"),
    ]


def _patched(data: bytes, dtype: np.dtype, offset: int, **fields) -> bytes:
    """`data` with fields of the `dtype` record at `offset` replaced."""
    patched = bytearray(data)
    record = np.frombuffer(patched, dtype, count=1, offset=offset)
    for name, value in fields.items():
        record[name] = value
    return bytes(patched)


def _header(data: bytes, **fields) -> bytes:
    return _patched(data, elf_format.EHDR, 0, **fields)


def _section(data: bytes, index: int, **fields) -> bytes:
    """`data` with fields of section header `index` replaced (232: e_shoff, worked above)."""
    return _patched(data, elf_format.SHDR, 232 + index * elf_format.SHDR.itemsize, **fields)


GOOD = _hand_built().to_bytes()


@pytest.mark.parametrize(
    "data, message",
    [
        (GOOD[:63], r"not an ELF file \(bad magic\)"),  # shorter than the file header
        (b"\x7fELG" + GOOD[4:], r"not an ELF file \(bad magic\)"),
        (GOOD[:4] + b"\x01" + GOOD[5:], "not a little-endian ELF64 file"),  # ELFCLASS32
        (GOOD[:5] + b"\x02" + GOOD[6:], "not a little-endian ELF64 file"),  # big-endian
        (_header(GOOD, e_shentsize=40), "the section header table lies outside the file"),
        (GOOD[:-1], "the section header table lies outside the file"),
        (_header(GOOD, e_shnum=7), "the section header table lies outside the file"),
        (_header(GOOD, e_shstrndx=6), "the section name table 6 is not a section"),
        (_header(GOOD[:64], e_shnum=0, e_shoff=0), "the section name table 5 is not a section"),
        (_section(GOOD, 1, sh_size=len(GOOD) - 63), "a section lies outside the file"),
        (_section(GOOD, 1, sh_offset=len(GOOD) - 2), "a section lies outside the file"),
    ],
)
def test_what_is_not_an_elf64_file_the_runtime_reads_is_refused(data, message):
    with pytest.raises(ElfError, match=f"^{message}$"):
        ElfFile.from_bytes(data)


def test_a_section_may_end_at_the_last_byte_of_the_file():
    data = _section(GOOD, 1, sh_size=len(GOOD) - 64)
    assert ElfFile.from_bytes(data).section(".aipu.a").data == data[64:]


def test_looking_up_a_missing_section_or_symbol_names_it():
    elf = _hand_built()
    with pytest.raises(KeyError, match="'.aipu.c'"):
        elf.section(".aipu.c")
    with pytest.raises(KeyError, match="'out_b'"):
        elf.symbol("out_b")
