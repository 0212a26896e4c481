"""The end of the lowering: the device program of a lowered module, and its files.

The lowering passes run as `Phase.LOWERING` stages of `aipuc.pipeline`; `emit` flattens
the result into the device program and `write` stores what a compiled model folder holds:

    lowered/model.mlir            the aipu+mem IR (constant contents elided: see constants.bin)
    lowered/memory_plan.json      per pool: capacity, planned peak, lower bound; every buffer
    compiled_model/host.mlir      the host program: host ops and `aipu.launch` of segments
    compiled_model/device.json    memory map, constants table, segments' IO (+ .stream files)
    compiled_model/constants.bin  weights, tables and DPU programs at their device addresses
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from aipuc.dialects import aipu, mem
from aipuc.ir_files import module_text
from aipuc.lowering.emit_stream import emit_program
from aipuc.lowering.mem_plan import PLAN_ATTR, lifetimes
from aipuc.lowering.mem_pools import pools_of
from aipuc.runtime.sim import cycles
from aipuc.runtime.sim.program import DeviceProgram

HOST_PROGRAM = "host.mlir"


def emit(module: ModuleOp) -> DeviceProgram:
    """The device program of the lowered module (the passes ran through `aipuc.pipeline`)."""
    return emit_program(module)


def lowered_text(module: ModuleOp) -> str:
    """The lowered IR with constant contents elided (they are in constants.bin)."""
    buffers = [op for op in module.ops if isinstance(op, mem.BufferOp) and op.init is not None]
    saved = [op.init for op in buffers]
    for op in buffers:
        op.init = None
        op.attributes["constant"] = aipu._i64(1)
    try:
        return module_text(module)
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
    return module_text(holder)


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


def summary(module: ModuleOp, program: DeviceProgram) -> dict[str, Any]:
    """The report's `lowering` entry: segments, records, tasks per unit, memory per pool."""
    tasks: dict[str, int] = {}
    for op in module.walk():
        if isinstance(op, aipu.TASK_OPS):
            unit = op.UNIT.value  # type: ignore[attr-defined]
            tasks[unit] = tasks.get(unit, 0) + 1
    return {
        "segments": len(program.segments),
        "records": program.records,
        "tasks": tasks,
        "memory": memory_plan(module, page_tables=False)["pools"],
    }


def performance(program: DeviceProgram, frequency: int) -> dict[str, Any]:
    """The report's `performance` entry: the cycle model over every segment's stream."""
    modelled = cycles.profile(
        program.regions, program.constants, [s.stream for s in program.segments]
    )
    return modelled.report(frequency)


def write(
    module: ModuleOp, program: DeviceProgram, lowered_dir: Path, compiled_dir: Path, write_json
) -> None:
    lowered_dir.mkdir(parents=True, exist_ok=True)
    (lowered_dir / "model.mlir").write_text(lowered_text(module))
    write_json(memory_plan(module), lowered_dir / "memory_plan.json")
    program.save(compiled_dir)
    (compiled_dir / HOST_PROGRAM).write_text(host_program_text(module))
