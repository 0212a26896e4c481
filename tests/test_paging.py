"""page_memory end to end: the planner's page tables, the simulator's translation, bit-exactness.

Paged pools (DDR and L2 with `page_memory`) give buffers virtual offsets; the planner maps
virtual pages to physical pages, and the device translates every access through that page
table. The translation itself is checked against hand-computed physical bytes with the
simulator's other memory tests (test_simulator.py, "paged memories"). These tests check that
the planner's page mapping removes the fragmentation of a virtual plan, that a stream through
scrambled (but consistent) page tables still equals the integer reference bit for bit, and
that a wrong page table gives wrong numbers.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from lowering_harness import lowered_in_memory
from xdsl.dialects.builtin import DenseArrayBase, i64

import aipuc
from aipuc.config import CompilerConfig
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU
from aipuc.lowering.mem_plan import Lifetime, lower_bound, map_pages, place, verify_plan
from aipuc.lowering.mem_pools import pools_of
from aipuc.models.builder import IMAGE_IMAGENET, GraphBuilder
from aipuc.runtime import loader
from aipuc.runtime.sim.device import Device
from aipuc.runtime.sim.memory import Region

PAGE = 16

# ---------------------------------------------------------------------------------- planner


@dataclasses.dataclass
class FakeBuffer:
    size: int
    align: int = 1

    def __hash__(self) -> int:
        return id(self)


def lifetime(size: int, start: int, end: int) -> Lifetime:
    item = Lifetime.__new__(Lifetime)
    item.buffer, item.start, item.end = FakeBuffer(size), start, end  # type: ignore[assignment]
    return item


@pytest.fixture(autouse=False)
def fake_sizes(monkeypatch):
    monkeypatch.setattr(Lifetime, "size", property(lambda self: self.buffer.size))
    monkeypatch.setattr(Lifetime, "alignment", property(lambda self: self.buffer.align))


def test_pages_remove_the_fragmentation_of_a_virtual_plan(fake_sizes):
    # A and C (one page each) outlive B between them; D (two pages) comes when B has gone:
    # no contiguous two-page gap is left below A..C, so the virtual plan grows to 5 pages,
    # but D's pages can be B's physical page plus one: 4 pages, the lower bound.
    a, b, c = lifetime(PAGE, 0, 9), lifetime(PAGE, 0, 3), lifetime(PAGE, 0, 9)
    d = lifetime(2 * PAGE, 5, 9)
    items = [a, b, c, d]
    rank = {id(i): n for n, i in enumerate(items)}
    offsets, extent = place(items, lambda i: (rank[id(i)],))
    assert [offsets[i.buffer] for i in items] == [0, PAGE, 2 * PAGE, 3 * PAGE]
    assert extent == 5 * PAGE
    table, frames = map_pages(items, offsets, PAGE)
    assert frames == 4 == -(-lower_bound(items) // PAGE)
    assert table[:3] == [0, 1, 2] and sorted(table[3:]) == [1, 3]


def test_pages_shared_by_small_buffers_live_as_long_as_any_of_them(fake_sizes):
    items = [lifetime(PAGE // 2, 0, 1), lifetime(PAGE // 2, 4, 5), lifetime(PAGE, 2, 3)]
    offsets = {items[0].buffer: 0, items[1].buffer: PAGE // 2, items[2].buffer: PAGE}
    table, frames = map_pages(items, offsets, PAGE)
    assert frames == 2 and table[0] != table[1]  # page 0 is alive 0..5, page 1 in between


# ---------------------------------------------------------------------------------- streams


def paging_model():
    """Activations of 2 to 4 pages of 64 KiB: a residual conv pair, a max pool, a conv."""
    b = GraphBuilder("paging", 3)
    x = b.input("input", (1, 3, 64, 64), IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 32, 3, act="relu", name="c1")
    y = b.conv_bn_act(x, 32, 3, act=None, name="c2")
    x = b.relu(b.add(x, y), "merge")
    x = b.maxpool(x, 2, 2, 0, name="pool")
    x = b.conv_bn_act(x, 64, 3, act="relu", name="c3")
    b.output(x, "features")
    return b.model("paging test model")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from aipuc.models import sample_inputs

    model = paging_model()
    samples = [sample_inputs(model, seed=s) for s in range(2)]
    out = tmp_path_factory.mktemp("paging") / "quantized"
    aipuc.compile(
        model, CompilerConfig(output_dir=str(out), compiler_mode="quantize_only"), samples
    )
    return out, sample_inputs(model, seed=7)


def lower(quantized, tmp_path, **fields):
    folder, _ = quantized
    config = CompilerConfig(output_dir=str(tmp_path / "lowered"), compiler_mode="lower_only")
    return aipuc.compile(folder, config.replace(**fields) if fields else config)


def program_of(compiled):
    """The device program as the runtime decodes it from compiled_model/ on disk."""
    return loader.load(compiled.output_dir / "compiled_model").device.program


def rerun(compiled, regions):
    """The compiled model run from disk on a device whose memory map is `regions`."""
    model = loader.load(compiled.output_dir / "compiled_model")
    model.device = Device(dataclasses.replace(model.device.program, regions=regions))
    return model.run


@pytest.fixture(scope="module")
def in_ddr(quantized, tmp_path_factory):
    """Everything in paged DDR (no promotion): several live buffers of several pages."""
    folder, x = quantized
    out = tmp_path_factory.mktemp("in_ddr")
    config = CompilerConfig(
        output_dir=str(out), compiler_mode="lower_only", enable_buffer_promotion=False
    )
    return aipuc.compile(folder, config), x


def test_paged_ddr_stream_equals_the_integer_reference(in_ddr):
    compiled, x = in_ddr
    plan = json.loads((compiled.output_dir / "lowered" / "memory_plan.json").read_text())
    ddr = plan["pools"]["ddr"]
    assert ddr["page_size"] == AIPU.page_bytes and len(ddr["page_table"]) >= 4
    # the planned buffers take exactly `peak` bytes of physical pages; model.elf (elf_in_ddr)
    # takes the pages after them
    image = compiled.report["lowering"]["elf"]
    assert image["pool"] == "ddr"
    base = next(r.base for r in program_of(compiled).regions if r.name == "ddr")
    first_image_page = (image["address"] - base) // AIPU.page_bytes
    planned = {f for f in ddr["page_table"][:first_image_page] if f >= 0}
    assert ddr["peak"] == len(planned) * AIPU.page_bytes
    assert min(f for f in ddr["page_table"][first_image_page:] if f >= 0) == len(planned)
    streamed, reference = compiled.run(x), compiled.run_quantized(x)
    for name, value in reference.items():
        np.testing.assert_array_equal(streamed[name], value)


def scrambled(region: Region, permutation) -> Region:
    pages = tuple(-1 if f < 0 else int(permutation[f]) for f in region.pages)
    return dataclasses.replace(region, pages=pages)


def test_any_consistent_relocation_of_pages_gives_the_same_bits(in_ddr):
    compiled, x = in_ddr
    program = program_of(compiled)
    ddr = next(r for r in program.regions if r.name == "ddr")
    frames = max(ddr.pages) + 1
    reverse = np.arange(frames)[::-1]  # no two consecutive virtual pages stay consecutive
    regions = [scrambled(r, reverse) if r is ddr else r for r in program.regions]
    run = rerun(compiled, regions)
    reference = compiled.run_quantized(x)
    for name, value in run(x).items():
        np.testing.assert_array_equal(value, reference[name])


def test_a_wrong_page_table_gives_wrong_numbers(in_ddr):
    compiled, x = in_ddr
    plan = json.loads((compiled.output_dir / "lowered" / "memory_plan.json").read_text())
    end = max(b["last_step"] for b in plan["buffers"])
    ddr = [
        b
        for b in plan["buffers"]
        if b["pool"] == "ddr" and (b["first_step"], b["last_step"]) != (0, end)
    ]
    # B is first written while A is alive and A is read after that: B's pages on A's clobber A
    a, b = next(
        (a, b) for a in ddr for b in ddr if a["first_step"] < b["first_step"] < a["last_step"]
    )
    page = AIPU.page_bytes
    program = program_of(compiled)
    region = next(r for r in program.regions if r.name == "ddr")
    pages = list(region.pages)
    target = pages[a["offset"] // page]
    for virtual in range(b["offset"] // page, (b["offset"] + b["size"] - 1) // page + 1):
        pages[virtual] = target
    wrong = dataclasses.replace(region, pages=tuple(pages))
    run = rerun(compiled, [wrong if r is region else r for r in program.regions])
    reference = compiled.run_quantized(x)
    outputs = run(x)
    assert any(not np.array_equal(outputs[k], v) for k, v in reference.items())


def test_unpaged_and_paged_plans_give_the_same_bits(quantized, tmp_path, in_ddr):
    compiled, x = in_ddr
    flat = lower(quantized, tmp_path, enable_buffer_promotion=False, page_memory=False)
    program = program_of(flat)
    assert all(r.page_size == 0 for r in program.regions)
    for name, value in flat.run(x).items():
        np.testing.assert_array_equal(value, compiled.run(x)[name])


@pytest.fixture
def planned(quantized):
    """The lowered module of the paging model, everything in paged DDR."""
    folder, _ = quantized
    return lowered_in_memory(folder, enable_buffer_promotion=False)[0]


def test_verify_plan_accepts_the_plan_and_catches_a_page_table_that_aliases(planned):
    verify_plan(planned)
    ddr = pools_of(planned)["ddr"]
    table = list(ddr.pages.get_values())
    ddr.pages = DenseArrayBase.from_list(i64, [0 if f >= 0 else -1 for f in table])
    with pytest.raises(CompilationError, match="pool 'ddr': the buffer at .* overlap at bytes"):
        verify_plan(planned)
    table[next(i for i, f in enumerate(table) if f >= 0)] = -1
    ddr.pages = DenseArrayBase.from_list(i64, table)
    with pytest.raises(CompilationError, match="which the page table does not map"):
        verify_plan(planned)
