"""`DeviceProgram`: everything the device runs, as plain data the runtime can save and load.

A program is the device's memory map (`regions`), the initial contents of its memories
(`constants`: weights, tables, DPU micro-op programs, at device addresses) and, per
accelerated segment, the core's instruction stream with the addresses and layouts of the
segment's input and output buffers. `save`/`load` use a folder of raw files and one JSON
index (`device.json`), so loading needs nothing of the compiler.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aipuc.runtime.sim.isa import Stream
from aipuc.runtime.sim.memory import Region

INDEX = "device.json"
CONSTANTS = "constants.bin"


@dataclass(frozen=True)
class IoBuffer:
    """A segment input or output: where its codes live and how the host lays them out."""

    address: int
    shape: tuple[int, ...]  # stored (physical) shape
    perm: tuple[int, ...]  # logical axis of each stored axis
    dtype: str  # NumPy dtype name of the elements


@dataclass
class SegmentImage:
    index: int
    stream: Stream
    inputs: list[IoBuffer]
    outputs: list[IoBuffer]


@dataclass
class DeviceProgram:
    regions: list[Region]
    constants: list[tuple[int, bytes]] = field(default_factory=list)
    segments: list[SegmentImage] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(len(s.stream) for s in self.segments)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        table, offset = [], 0
        with open(folder / CONSTANTS, "wb") as blob:
            for address, data in self.constants:
                blob.write(data)
                table.append({"address": address, "offset": offset, "length": len(data)})
                offset += len(data)
        segments = []
        for segment in self.segments:
            name = f"segment{segment.index}.stream"
            (folder / name).write_bytes(segment.stream.data)
            segments.append(
                {
                    "index": segment.index,
                    "stream": name,
                    "inputs": [asdict(io) for io in segment.inputs],
                    "outputs": [asdict(io) for io in segment.outputs],
                }
            )
        index = {
            "regions": [asdict(r) for r in self.regions],
            "constants": table,
            "segments": segments,
        }
        (folder / INDEX).write_text(json.dumps(index, indent=1))

    @classmethod
    def load(cls, folder: Path) -> DeviceProgram:
        index = json.loads((folder / INDEX).read_text())
        blob = (folder / CONSTANTS).read_bytes()
        constants = [
            (c["address"], blob[c["offset"] : c["offset"] + c["length"]])
            for c in index["constants"]
        ]

        def io(entry) -> IoBuffer:
            return IoBuffer(
                entry["address"], tuple(entry["shape"]), tuple(entry["perm"]), entry["dtype"]
            )

        segments = [
            SegmentImage(
                s["index"],
                Stream((folder / s["stream"]).read_bytes()),
                [io(e) for e in s["inputs"]],
                [io(e) for e in s["outputs"]],
            )
            for s in index["segments"]
        ]
        regions = [Region(**{**r, "pages": tuple(r.get("pages", ()))}) for r in index["regions"]]
        return cls(regions, constants, segments)
