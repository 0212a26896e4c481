"""A simulated device running a `DeviceProgram`: memories loaded once, segments on demand.

The host side hands each segment its inputs as int8 codes in their logical layout; the
device writes them into the segment's input buffers in the stored layout (`perm`), runs the
segment's stream, and reads the outputs back the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aipuc.runtime.sim.memory import Memories, dense_strides
from aipuc.runtime.sim.simulator import Simulator


class Device:
    def __init__(self, program):
        self.program = program
        self.memories = Memories(list(program.regions))
        for address, data in program.loads:
            self.memories.load_bytes(address, data)
        self.simulator = Simulator(self.memories)
        self.segments = {segment.index: segment for segment in program.segments}

    def launch(self, index: int, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        segment = self.segments[index]
        if len(inputs) != len(segment.inputs):
            raise ValueError(
                f"segment {index} takes {len(segment.inputs)} inputs, got {len(inputs)}"
            )
        for io, array in zip(segment.inputs, inputs, strict=True):
            array = np.asarray(array)
            if array.shape != io.logical:
                raise ValueError(
                    f"segment {index} input of shape {array.shape}, expected {io.logical}"
                )
            stored = np.full(io.shape, io.fill, io.dtype)  # padded lanes: the zero point
            transposed = np.transpose(array, io.perm)
            stored[tuple(slice(0, n) for n in transposed.shape)] = transposed
            self.memories.write(
                io.address, io.shape, dense_strides(io.shape, stored.itemsize), stored, io.dtype
            )
        self.simulator.run_from(segment.entry)
        outputs = []
        for io in segment.outputs:
            dtype = np.dtype(io.dtype)
            stored = self.memories.read(
                io.address, io.shape, dense_strides(io.shape, dtype.itemsize), dtype
            )
            logical = np.transpose(stored, np.argsort(io.perm))
            outputs.append(logical[tuple(slice(0, n) for n in io.logical)].copy())
        return outputs
