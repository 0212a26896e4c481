"""Running a lowered module: @main's host ops in the interpreter, each `aipu.launch` on the
simulated device (the stream, nothing else)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from aipuc.dialects import aipu
from aipuc.graph import Graph
from aipuc.runtime.integer_reference import INTEGER_KERNELS
from aipuc.runtime.interpreter import run_function
from aipuc.runtime.sim.device import Device
from aipuc.runtime.sim.program import DeviceProgram


class StreamRunner:
    def __init__(self, module: ModuleOp, program: DeviceProgram):
        self.graph = Graph(module)
        self.device = Device(program)
        self.kernels = {**INTEGER_KERNELS, aipu.LaunchOp: self._launch}

    def _launch(self, op: aipu.LaunchOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.device.launch(aipu._int(op.index), inputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = [np.asarray(inputs[name]) for name in self.graph.inputs]
        results = run_function(self.graph.main, arrays, self.kernels)
        return dict(zip(self.graph.outputs, results, strict=True))


def load_stream_runner(compiled_dir: Path) -> StreamRunner:
    """The runner of a compiled_model/ folder: host program and device program from disk."""
    from aipuc.ir_files import load_module
    from aipuc.lowering.stage import HOST_PROGRAM

    module = load_module(compiled_dir / HOST_PROGRAM)
    return StreamRunner(module, DeviceProgram.load(compiled_dir))
