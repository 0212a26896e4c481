"""Compile-and-compare helpers of the lowering tests.

A model is quantized once (`compiler_mode=quantize_only`); each lowering config then
compiles that folder (`lower_only`), and `aipuc.load(folder).run` (the instruction stream on
the simulator, from disk) must equal `run_quantized` (the integer reference) bit for bit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from xdsl.dialects.builtin import ModuleOp

import aipuc
from aipuc.compiled import CompiledModel
from aipuc.config import CompilerConfig
from aipuc.ir_files import ir_context, load_module
from aipuc.lowering.runner import StreamRunner
from aipuc.lowering.stage import emit
from aipuc.models import build_model, sample_inputs
from aipuc.outputs import COMPILED_MODEL, LOWERED, QUANTIZED_IR, QUANTIZED_MODEL
from aipuc.pipeline import Phase, run_stage, stages
from aipuc.runtime.sim.isa import Opcode
from aipuc.runtime.sim.program import DeviceProgram

Feeds = Mapping[str, np.ndarray]


def resized(model: onnx.ModelProto, size: int) -> onnx.ModelProto:
    """An image model with its NCHW input made `size` x `size` (shapes are re-inferred)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    del model.graph.value_info[:]
    return model


def zoo_model(name: str, size: int | None = None) -> onnx.ModelProto:
    model = build_model(name)
    return model if size is None else resized(model, size)


def samples_of(model: onnx.ModelProto, count: int = 2) -> list[dict[str, np.ndarray]]:
    return [sample_inputs(model, seed=seed) for seed in range(count)]


def quantize(
    model: onnx.ModelProto, samples: Sequence[Feeds], folder: Path, **fields
) -> CompiledModel:
    config = CompilerConfig(output_dir=str(folder), compiler_mode="quantize_only", **fields)
    return aipuc.compile(model, config, list(samples))


def lower(quantized: Path, folder: Path, **fields) -> CompiledModel:
    """The quantized folder compiled with `fields` set (lowering fields only)."""
    config = CompilerConfig(output_dir=str(folder), compiler_mode="lower_only", **fields)
    return aipuc.compile(quantized, config)


def assert_stream_equals_reference(
    folder: Path, references: Sequence[dict[str, np.ndarray]], samples: Sequence[Feeds]
) -> None:
    """The stream saved in `folder`, run from disk, gives the reference's outputs exactly."""
    loaded = aipuc.load(folder)
    for sample, reference in zip(samples, references, strict=True):
        streamed = loaded.run(sample)
        assert streamed.keys() == reference.keys()
        for name, value in reference.items():
            np.testing.assert_array_equal(streamed[name], value, err_msg=f"{folder}: {name}")


def lowered_in_memory(quantized: Path, **fields) -> tuple[ModuleOp, DeviceProgram]:
    """The lowering passes on the quantized model in this process: the planned module (to
    inspect or corrupt) and its device program."""
    ctx = ir_context()
    module = load_module(quantized / QUANTIZED_MODEL / QUANTIZED_IR)
    config = CompilerConfig(**fields)
    for stage in stages(Phase.LOWERING):
        run_stage(stage, config, ctx, module)
    return module, emit(module)


def stream_outputs(module: ModuleOp, program: DeviceProgram, sample: Feeds) -> dict:
    return StreamRunner(module, program).run(sample)


@dataclass
class StreamFacts:
    """What a compiled folder's instruction stream does, read from its records on disk."""

    records: Counter[str]
    mvm: list[np.void]  # the MVM records, in order
    dwpu: list[np.void]
    off_core_bytes: int  # bytes DMAs read from or write to L2/DDR (not L1 to L1)


def stream_facts(folder: Path) -> StreamFacts:
    program = DeviceProgram.load(folder / COMPILED_MODEL)
    l1 = [region for region in program.regions if region.name.startswith("l1")]
    records: Counter[str] = Counter()
    mvm, dwpu, off_core = [], [], 0
    for segment in program.segments:
        for opcode, record in segment.stream.records():
            records[opcode.name] += 1
            if opcode == Opcode.MVM:
                mvm.append(record)
            elif opcode == Opcode.DWPU:
                dwpu.append(record)
            elif opcode == Opcode.DMA:
                inside = [any(int(record[end]) in r for r in l1) for end in ("src", "dst")]
                if not all(inside):
                    off_core += int(np.prod(record["sizes"], dtype=np.int64))
    return StreamFacts(records, mvm, dwpu, off_core)


def memory_plan(folder: Path) -> dict:
    return json.loads((folder / LOWERED / "memory_plan.json").read_text())
