"""mem-promote and the memory configuration end to end on tiny_cnn: homes, traffic, bits.

The stream must equal the integer reference bit for bit whatever the homes; promotion must
cut the DMA bytes to and from DDR and L2 (counted here from the emitted records); a model
too large for its pools fails with one line naming the pool, the peak and the capacity.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import aipuc
from aipuc.config import CompilerConfig
from aipuc.errors import CompilationError
from aipuc.models import build_model, sample_inputs
from aipuc.pipeline import Phase, build_passes, fields_read_by_passes, stages
from aipuc.runtime import loader
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.elf import ElfFile

MODEL = "tiny_cnn"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    model = build_model(MODEL)
    samples = [sample_inputs(model, seed=seed) for seed in range(2)]
    folder = tmp_path_factory.mktemp("promote") / "quantized"
    aipuc.compile(
        model, CompilerConfig(output_dir=str(folder), compiler_mode="quantize_only"), samples
    )
    return folder, sample_inputs(model, seed=9)


def lower(quantized, tmp_path, name: str = "lowered", **fields):
    folder, _ = quantized
    config = CompilerConfig(output_dir=str(tmp_path / name), compiler_mode="lower_only", **fields)
    return aipuc.compile(folder, config)


def dma_bytes(compiled) -> dict[str, int]:
    """Bytes DMA records (and fills) read or write in each memory, decoded from model.elf."""
    folder = compiled.output_dir / "compiled_model"
    regions = loader.load(folder).device.program.regions
    moved = {region.name: 0 for region in regions}

    def count(address: int, nbytes: int) -> None:
        region = next(r for r in regions if address in r)
        moved[region.name] += nbytes

    for section in ElfFile.from_bytes((folder / loader.ELF).read_bytes()).sections:
        if not section.name.startswith(".aipu.tasklist."):
            continue
        for record in isa.decode(section.data):
            fields = record.fields
            if record.opcode == isa.Opcode.DMA:
                count(int(fields["src"]), int(np.prod(fields["sizes"])))
                count(int(fields["dst"]), int(np.prod(fields["sizes"])))
            elif record.opcode == isa.Opcode.FILL:
                count(int(fields["dst"]), int(np.prod(fields["sizes"])))
    return moved


CONFIGS = {
    "default": {},
    "promotion off": {"enable_buffer_promotion": False},
    "split promotion": {"split_buffer_promotion": True},
    "io in L1, rest in L2, no promotion": {
        "enable_buffer_promotion": False,
        "io_memory_pool": "global.l1",
        "constant_memory_pool": "global.l2",
        "workspace_memory_pool": "global.l2",
    },
    "tight L1": {"l1_constraint": 81920},
    "tight L1, split, unpaged": {
        "l1_constraint": 81920,
        "split_buffer_promotion": True,
        "page_memory": False,
    },
}


@pytest.mark.parametrize("fields", CONFIGS.values(), ids=CONFIGS.keys())
def test_stream_equals_the_integer_reference(quantized, tmp_path, fields):
    compiled = lower(quantized, tmp_path, **fields)
    _, x = quantized
    streamed, reference = compiled.run(x), compiled.run_quantized(x)
    for name, value in reference.items():
        np.testing.assert_array_equal(streamed[name], value)


def test_promotion_removes_ddr_and_l2_traffic(quantized, tmp_path):
    off = dma_bytes(lower(quantized, tmp_path, "off", enable_buffer_promotion=False))
    on = dma_bytes(lower(quantized, tmp_path, "on"))
    tight = dma_bytes(lower(quantized, tmp_path, "tight", l1_constraint=81920))
    assert off["ddr"] > 0 and off["l2"] == 0
    # all of tiny_cnn fits in L1: nothing moves to or from DDR or L2 any more
    assert on["ddr"] == on["l2"] == 0
    # with 80 KiB of L1 some tensors stay in L2, none in DDR
    assert tight["ddr"] == 0 and 0 < tight["l2"] < off["ddr"]


def test_homes_in_the_lowered_ir(quantized, tmp_path):
    compiled = lower(quantized, tmp_path, l1_constraint=81920)
    text = (compiled.output_dir / "lowered" / "model.mlir").read_text()
    assert "global.l1>" in text and "global.l2>" in text
    plan = json.loads((compiled.output_dir / "lowered" / "memory_plan.json").read_text())
    assert plan["pools"]["l1_core0"]["peak"] <= 81920


def test_split_promotion_is_two_passes_with_depth_first_tiling_between():
    def lowering(config: CompilerConfig) -> list:
        return [p for s in stages(Phase.LOWERING) for p in build_passes(s, config)]

    names = [p.name for p in lowering(CompilerConfig())]
    assert names[names.index("aipu-tile") :] == [
        "aipu-tile",
        "mem-promote",
        "aipu-dfs",
        "mem-bufferize",
        "aipu-dpu-regalloc",
        "aipu-programs",
        "mem-plan",
    ]
    (single,) = [p for p in lowering(CompilerConfig()) if p.name == "mem-promote"]
    assert single.promote_to == ("global.l2", "global.l1")
    split = lowering(CompilerConfig(split_buffer_promotion=True, enable_buffer_promotion=True))
    names = [p.name for p in split]
    assert names[names.index("aipu-tile") :] == [
        "aipu-tile",
        "mem-promote",
        "aipu-dfs",
        "mem-promote",
        "mem-bufferize",
        "aipu-dpu-regalloc",
        "aipu-programs",
        "mem-plan",
    ]
    assert [p.promote_to for p in split if p.name == "mem-promote"] == [
        ("global.l2",),
        ("global.l1",),
    ]
    assert fields_read_by_passes()["split_buffer_promotion"] == "mem-promote"


def test_a_model_too_large_for_its_pool_fails_with_pool_peak_and_capacity(quantized, tmp_path):
    with pytest.raises(CompilationError) as raised:
        lower(
            quantized,
            tmp_path,
            enable_buffer_promotion=False,
            page_memory=False,
            ddr_constraint=20000,
        )
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("memory plan of pool 'ddr' needs ")
    assert "its capacity is 20000 bytes" in message
    peak = int(message.split(" needs ")[1].split()[0])
    assert peak > 20000
    report = json.loads((tmp_path / "lowered" / "compilation_report.json").read_text())
    assert report["status"] == "error"
    assert report["error"]["code"] == "E_LOWER" and report["error"]["message"] == message


def test_unknown_pool_names_are_refused():
    from xdsl.context import Context
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp

    from aipuc.lowering.mem_pools import MemPoolsPass
    from aipuc.lowering.mem_promote import MemPromotePass

    main = func.FuncOp("main", ((), ()))
    main.body.block.add_op(func.ReturnOp())
    module = ModuleOp([main])
    MemPoolsPass().apply(Context(), module)
    with pytest.raises(CompilationError, match="unknown memory pool 'global.l3'"):
        MemPromotePass(promote_to=("global.l3",)).apply(Context(), module)
