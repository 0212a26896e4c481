"""The lowering stage of a compilation: quantized axq module -> device program, and its files.

`lower` runs the lowering passes (each with its options from the CompilerConfig) and emits
the device program; `write` stores what a compiled model folder holds:

    lowered/model.mlir            the aipu+mem IR (constant contents elided: see constants.bin)
    lowered/memory_plan.json      per pool: capacity, planned peak, lower bound; every buffer
    compiled_model/host.mlir      the host program: host ops and `aipu.launch` of segments
    compiled_model/device.json    memory map, constants table, segments' IO (+ .stream files)
    compiled_model/constants.bin  weights, tables and DPU programs at their device addresses
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.printer import Printer

from aipuc.config import CompilerConfig
from aipuc.dialects import aipu, mem
from aipuc.hardware import MemorySpace
from aipuc.lowering.emit_stream import emit_program
from aipuc.lowering.mem_plan import PLAN_ATTR, lifetimes
from aipuc.lowering.mem_pools import pools_of
from aipuc.passes import PASSES
from aipuc.runtime.sim.program import DeviceProgram

LOWERING_PASSES = (
    "convert-axq-to-aipu",
    "mem-pools",
    "aipu-tile",
    "mem-promote",
    "mem-bufferize",
    "mem-plan",
)
"""Every lowering pass once, in pipeline order; `pipeline` gives the actual sequence."""
DEPTH_FIRST: tuple[tuple[str, dict[str, Any]], ...] = ()
"""Depth-first tiling (aipu-dfs), once it is built: after L2 promotion, before L1 promotion."""
PIPELINE_FIELDS = ("split_buffer_promotion",)
"""Config fields that shape the pass sequence rather than set a pass option."""
HOST_PROGRAM = "host.mlir"


def pipeline(config: CompilerConfig) -> list[tuple[str, dict[str, Any]]]:
    """The lowering passes in order, with the options that no config field mirrors.

    Promotion is one `mem-promote` (to L2, then L1), or with `split_buffer_promotion` two,
    L2 first, with depth-first tiling between them so it can choose what stays in L1."""
    l2, l1 = MemorySpace.L2.value, MemorySpace.L1.value
    if config.split_buffer_promotion:
        promotion = [
            ("mem-promote", {"promote_to": (l2,)}),
            *DEPTH_FIRST,
            ("mem-promote", {"promote_to": (l1,)}),
        ]
    else:
        promotion = [("mem-promote", {"promote_to": (l2, l1)}), *DEPTH_FIRST]
    return [
        ("convert-axq-to-aipu", {}),
        ("mem-pools", {}),
        ("aipu-tile", {}),
        *promotion,
        ("mem-bufferize", {}),
        ("mem-plan", {}),
    ]


def build(config: CompilerConfig) -> list[ModulePass]:
    """The lowering passes with their options from `config` (option = config field)."""
    built = []
    for name, fixed in pipeline(config):
        pass_class = PASSES[name]()
        options = dict(fixed)
        for option in dataclasses.fields(pass_class):
            if option.name in CompilerConfig.model_fields and option.name not in options:
                value = getattr(config, option.name)
                options[option.name] = getattr(value, "value", value)
        built.append(pass_class(**options))
    return built


@dataclass
class Lowered:
    module: ModuleOp
    program: DeviceProgram
    pass_seconds: dict[str, float]
    layers: dict[str, int]
    """Layers per unit after unit mapping (`aipu.conv` runs on the MVM, ...)."""


def lower(
    module: ModuleOp,
    config: CompilerConfig,
    log: Callable[[str], None] = lambda _: None,
    clock: Callable[[], float] = time.perf_counter,
) -> Lowered:
    """Every lowering pass (the module verified after each), then emission; `clock` times
    them (seconds per pass, verification and emission in `Lowered.pass_seconds`)."""
    ctx = Context(allow_unregistered=False)
    for dialect in _dialects():
        ctx.load_dialect(dialect)
    seconds: dict[str, float] = {}
    layers: dict[str, int] = {}
    for module_pass in build(config):
        started = clock()
        module_pass.apply(ctx, module)
        applied = clock()
        module.verify()
        verified = clock()
        seconds[module_pass.name] = round(seconds.get(module_pass.name, 0) + applied - started, 4)
        seconds["verify"] = round(seconds.get("verify", 0) + verified - applied, 4)
        log(
            f"pass {module_pass.name}: {applied - started:.2f} s, verify {verified - applied:.2f} s"
        )
        if module_pass.name == LOWERING_PASSES[0]:
            for op in module.walk():
                if isinstance(op, aipu.LAYER_OPS):
                    layers[op.name] = layers.get(op.name, 0) + 1
    started = clock()
    program = emit_program(module)
    seconds["emit"] = round(clock() - started, 4)
    return Lowered(module, program, seconds, layers)


def _dialects():
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func

    from aipuc.dialects.aipu import Aipu
    from aipuc.dialects.axq import Axq
    from aipuc.dialects.mem import Mem

    return (Builtin, Func, Axq, Aipu, Mem)


def _print(op) -> str:
    text = io.StringIO()
    Printer(stream=text, print_debuginfo=True).print_op(op)
    return text.getvalue()


def lowered_text(module: ModuleOp) -> str:
    """The lowered IR with constant contents elided (they are in constants.bin)."""
    buffers = [op for op in module.ops if isinstance(op, mem.BufferOp) and op.init is not None]
    saved = [op.init for op in buffers]
    for op in buffers:
        op.init = None
        op.attributes["constant"] = aipu._i64(1)
    try:
        return _print(module)
    finally:
        for op, init in zip(buffers, saved, strict=True):
            op.init = init
            del op.attributes["constant"]


def host_program_text(module: ModuleOp) -> str:
    """@main alone: host ops and launches, which is all the host needs of the IR."""
    main = next(
        op
        for op in module.ops
        if not isinstance(op, (mem.PoolOp, mem.BufferOp, mem.ReinterpretOp, aipu.SegmentOp))
    )
    holder = ModuleOp([])
    clone = main.clone()
    holder.body.block.add_op(clone)
    return _print(holder)


def memory_plan(module: ModuleOp, page_tables: bool = True) -> dict[str, Any]:
    """Per pool its capacity, planned peak, lower bound (and a paged pool's page table);
    every buffer's pool, (virtual) offset, size and lifetime."""
    pools = {
        name: {k: v.value.data for k, v in entry.data.items()}  # type: ignore[union-attr]
        for name, entry in module.attributes[PLAN_ATTR].data.items()
    }  # type: ignore[union-attr]
    if page_tables:
        for name, pool in pools_of(module).items():
            if pool.pages is not None:
                pools[name]["page_table"] = list(pool.pages.get_values())
    buffers = [
        {
            "pool": item.buffer.pool.root_reference.data,
            "offset": item.buffer.offset.value.data,  # type: ignore[union-attr]
            "size": item.size,
            "first_step": item.start,
            "last_step": item.end,
            "type": str(item.buffer.buffer.type),
        }
        for item in lifetimes(module)
    ]
    return {"pools": pools, "buffers": buffers}


def summary(lowered: Lowered) -> dict[str, Any]:
    """The report's `lowering` entry."""
    return {
        "segments": len(lowered.program.segments),
        "records": lowered.program.records,
        "layers": lowered.layers,
        "memory": memory_plan(lowered.module, page_tables=False)["pools"],
        "pass_seconds": lowered.pass_seconds,
    }


def write(lowered: Lowered, lowered_dir: Path, compiled_dir: Path, write_json) -> None:
    lowered_dir.mkdir(parents=True, exist_ok=True)
    (lowered_dir / "model.mlir").write_text(lowered_text(lowered.module))
    write_json(memory_plan(lowered.module), lowered_dir / "memory_plan.json")
    lowered.program.save(compiled_dir)
    (compiled_dir / HOST_PROGRAM).write_text(host_program_text(lowered.module))
