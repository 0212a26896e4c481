"""The end of the lowering: the ELF file of a lowered module, its manifest, and its files.

The lowering passes run as `Phase.LOWERING` stages of `aipuc.pipeline`; `emit` flattens
the result into the ELF file (aipuc/lowering/emit_elf.py) and `write` stores what a
compiled model folder holds:

    lowered/model.mlir            the aipu+mem IR (constant contents elided: see model.elf)
    lowered/memory_plan.json      per pool: capacity, planned peak, lower bound; every buffer
    compiled_model/model.elf      tasklists, DPU/DWPU programs, weights and tables
    compiled_model/manifest.json  files and hashes, IO, host steps, hardware, config hash
    compiled_model/*.onnx         host parts: preamble, host segments, postamble
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import onnx
from xdsl.dialects.builtin import ModuleOp

from aipuc.config import CompilerConfig
from aipuc.dialects import aipu, mem
from aipuc.hardware import AIPU
from aipuc.ir_files import module_text
from aipuc.lowering.emit_elf import Artifact, EmitOptions, build_elf
from aipuc.lowering.host_program import host_steps
from aipuc.lowering.mem_plan import PLAN_ATTR, lifetimes
from aipuc.lowering.mem_pools import pools_of
from aipuc.lowering.mem_promote import promotion_record
from aipuc.runtime import loader
from aipuc.runtime.sim import cycles

HOST_PARTS = ("preamble", "postamble")


def emit(module: ModuleOp, options: EmitOptions) -> Artifact:
    """The ELF file of the lowered module (the passes ran through `aipuc.pipeline`)."""
    return build_elf(module, options)


def lowered_text(module: ModuleOp) -> str:
    """The lowered IR with constant contents elided (they are in model.elf)."""
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


def summary(module: ModuleOp, artifact: Artifact) -> dict[str, Any]:
    """The report's `lowering` entry: segments, records, tasks per unit, memory per pool,
    where the ELF file sits, how each DPU program was register-allocated, and (after a
    failed L1 plan) the headroom promotion left and the tensors it sent back for it."""
    tasks: dict[str, int] = {}
    regalloc: dict[str, int] = {}
    spills = 0
    for op in module.walk():
        if isinstance(op, aipu.TASK_OPS):
            unit = op.UNIT.value  # type: ignore[attr-defined]
            tasks[unit] = tasks.get(unit, 0) + 1
        if isinstance(op, aipu.DpuOp) and "regalloc" in op.attributes:
            name = op.attributes["regalloc"].data  # type: ignore[union-attr]
            regalloc[name] = regalloc.get(name, 0) + 1
            spills += op.attributes["spills"].value.data  # type: ignore[union-attr]
    promotion = promotion_record(module)
    return {
        "segments": len(artifact.emitted.segments),
        "records": artifact.emitted.records,
        "tasks": tasks,
        "memory": memory_plan(module, page_tables=False)["pools"],
        "elf": {"bytes": len(artifact.elf), **artifact.image},
        "dpu_regalloc": {"programs": regalloc, "spills": spills},
        **({} if promotion is None else {"promotion": promotion}),
    }


def performance(artifact: Artifact, frequency: int) -> dict[str, Any]:
    """The report's `performance` entry: the cycle model over the records each segment
    runs, as model.elf holds them (with stream_tasklist, the chunk loads too)."""
    program = artifact.program()
    modelled = cycles.profile(program.regions, program.loads, artifact.executed())
    return modelled.report(frequency)


def write(
    module: ModuleOp,
    artifact: Artifact,
    lowered_dir: Path,
    compiled_dir: Path,
    write_json,
    *,
    host_parts: Path,
    model_io: dict[str, Any],
    config: CompilerConfig,
) -> None:
    """lowered/ and compiled_model/: the IR, the plan, the ELF, host models, the manifest."""
    lowered_dir.mkdir(parents=True, exist_ok=True)
    compiled_dir.mkdir(parents=True, exist_ok=True)
    (lowered_dir / "model.mlir").write_text(lowered_text(module))
    write_json(memory_plan(module), lowered_dir / "memory_plan.json")
    (compiled_dir / loader.ELF).write_bytes(artifact.elf)
    steps, models = host_steps(module)
    for name, model in models.items():
        onnx.save(model, compiled_dir / name)
    for part in HOST_PARTS:
        source = host_parts / f"{part}.onnx"
        if source.is_file():
            shutil.copyfile(source, compiled_dir / source.name)
            step = _host_part_step(source)
            steps = [step, *steps] if part == "preamble" else [*steps, step]
    files = [loader.ELF, *models]
    files += [f"{p}.onnx" for p in HOST_PARTS if (compiled_dir / f"{p}.onnx").is_file()]
    settings = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    manifest = {
        "format": loader.FORMAT,
        "version": loader.VERSION,
        "files": {name: loader.digest(compiled_dir / name) for name in files},
        "config_sha256": hashlib.sha256(settings).hexdigest(),
        "hardware": dataclasses.asdict(AIPU),
        "inputs": _io_entries(model_io["inputs"], steps, "quantize", "input"),
        "outputs": _io_entries(model_io["outputs"], steps, "dequantize", "output"),
        "steps": steps,
        "device": {**artifact.device, "elf_image": artifact.image},
    }
    write_json(manifest, compiled_dir / loader.MANIFEST)


def _host_part_step(source: Path) -> dict[str, Any]:
    graph = onnx.load(str(source), load_external_data=False).graph
    constants = {t.name for t in graph.initializer}
    return {
        "op": "host",
        "model": source.name,
        "inputs": [v.name for v in graph.input if v.name not in constants],
        "outputs": [v.name for v in graph.output],
    }


def _io_entries(entries, steps, kind: str, side: str) -> list[dict[str, Any]]:
    """The model's inputs or outputs, with the quantization the host applies to each."""
    result = []
    for entry in entries:
        item = dict(entry)
        for step in steps:
            if step["op"] == kind and step[side] == entry["name"]:
                item["quantization"] = {k: step[k] for k in ("scale", "zero_point", "axis")}
        result.append(item)
    return result
