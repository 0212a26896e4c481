"""model.elf: readelf and pyelftools read what the runtime reads; the tasklists in it decode to
the emitted records; each ELF-related config field changes the file as documented, and the
model still runs bit for bit."""

from __future__ import annotations

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
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.device import Device
from aipuc.runtime.sim.elf import ElfFile
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
