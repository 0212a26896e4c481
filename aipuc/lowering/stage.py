"""The lowering stage of a compilation: quantized axq module -> ELF file and manifest.

`lower` runs the lowering passes (each with its options from the CompilerConfig) and emits
the ELF file (emission's options are config fields too); `write` stores what a compiled
model folder holds:

    lowered/model.mlir            the aipu+mem IR (constant contents elided: see model.elf)
    lowered/memory_plan.json      per pool: capacity, planned peak, lower bound; every buffer
    compiled_model/model.elf      tasklists, DPU programs, weights and tables (emit_elf)
    compiled_model/manifest.json  files and hashes, IO, host steps, hardware, config hash
    compiled_model/*.onnx         host parts: preamble, host segments, postamble
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.printer import Printer

from aipuc.config import CompilerConfig
from aipuc.dialects import aipu, mem
from aipuc.hardware import AIPU
from aipuc.lowering.emit_elf import Artifact, EmitOptions, build_elf
from aipuc.lowering.host_program import host_steps
from aipuc.lowering.mem_plan import PLAN_ATTR, lifetimes
from aipuc.passes import PASSES
from aipuc.runtime import loader

LOWERING_PASSES = (
    "convert-axq-to-aipu",
    "aipu-fuse-eltwise",
    "aipu-dpu-constants",
    "mem-pools",
    "aipu-tile",
    "mem-bufferize",
    "aipu-dpu-regalloc",
    "aipu-programs",
    "mem-plan",
)
HOST_PARTS = ("preamble", "postamble")


def build(config: CompilerConfig) -> list[ModulePass]:
    """The lowering passes with their options from `config` (option = config field)."""
    built = []
    for name in LOWERING_PASSES:
        pass_class = PASSES[name]()
        options = {}
        for option in dataclasses.fields(pass_class):
            value = getattr(config, option.name)
            options[option.name] = getattr(value, "value", value)
        built.append(pass_class(**options))
    return built


def emit_options(config: CompilerConfig) -> EmitOptions:
    """Emission's options from `config` (option = config field), like the passes'."""
    return EmitOptions(**{f.name: getattr(config, f.name) for f in dataclasses.fields(EmitOptions)})


@dataclass
class Lowered:
    module: ModuleOp
    artifact: Artifact
    pass_seconds: dict[str, float]
    layers: dict[str, int]
    """Layers per unit after unit mapping (`aipu.conv` runs on the MVM, ...)."""


def lower(
    module: ModuleOp, config: CompilerConfig, log: Callable[[str], None] = lambda _: None
) -> Lowered:
    ctx = Context(allow_unregistered=False)
    for dialect in _dialects():
        ctx.load_dialect(dialect)
    seconds: dict[str, float] = {}
    layers: dict[str, int] = {}
    for module_pass in build(config):
        started = time.perf_counter()
        module_pass.apply(ctx, module)
        module.verify()
        seconds[module_pass.name] = round(time.perf_counter() - started, 4)
        log(f"pass {module_pass.name}: {seconds[module_pass.name]:.2f} s")
        if module_pass.name == LOWERING_PASSES[0]:
            for op in module.walk():
                if isinstance(op, aipu.LAYER_OPS):
                    layers[op.name] = layers.get(op.name, 0) + 1
    started = time.perf_counter()
    artifact = build_elf(module, emit_options(config))
    seconds["emit"] = round(time.perf_counter() - started, 4)
    return Lowered(module, artifact, seconds, layers)


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


def memory_plan(module: ModuleOp) -> dict[str, Any]:
    pools = {
        name: {k: v.value.data for k, v in entry.data.items()}  # type: ignore[union-attr]
        for name, entry in module.attributes[PLAN_ATTR].data.items()
    }  # type: ignore[union-attr]
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
        "segments": len(lowered.artifact.emitted.segments),
        "records": lowered.artifact.emitted.records,
        "elf": {"bytes": len(lowered.artifact.elf), **lowered.artifact.image},
        "layers": lowered.layers,
        "memory": memory_plan(lowered.module)["pools"],
        "pass_seconds": lowered.pass_seconds,
    }


def write(
    lowered: Lowered,
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
    (lowered_dir / "model.mlir").write_text(lowered_text(lowered.module))
    write_json(memory_plan(lowered.module), lowered_dir / "memory_plan.json")
    (compiled_dir / loader.ELF).write_bytes(lowered.artifact.elf)
    steps, models = host_steps(lowered.module)
    for name, model in models.items():
        onnx.save(model, compiled_dir / name)
    for part in HOST_PARTS:
        source = host_parts / f"{part}.onnx"
        if not source.is_file():
            continue
        shutil.copyfile(source, compiled_dir / source.name)
        graph = onnx.load(str(source), load_external_data=False).graph
        constants = {t.name for t in graph.initializer}
        step = {
            "op": "host",
            "model": source.name,
            "inputs": [v.name for v in graph.input if v.name not in constants],
            "outputs": [v.name for v in graph.output],
        }
        steps = [step, *steps] if part == "preamble" else [*steps, step]
    files = [
        loader.ELF,
        *models,
        *(f"{p}.onnx" for p in HOST_PARTS if (compiled_dir / f"{p}.onnx").is_file()),
    ]
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
        "device": {**lowered.artifact.device, "elf_image": lowered.artifact.image},
    }
    write_json(manifest, compiled_dir / loader.MANIFEST)


def _io_entries(entries, steps, kind: str, side: str) -> list[dict[str, Any]]:
    """The model's inputs or outputs, with the quantization the host applies to each and
    the device layout of the segment buffer it enters or leaves."""
    result = []
    for entry in entries:
        item = dict(entry)
        for step in steps:
            if step["op"] == kind and step[side] == entry["name"]:
                item["quantization"] = {k: step[k] for k in ("scale", "zero_point", "axis")}
        result.append(item)
    return result
