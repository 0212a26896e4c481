"""`DeviceProgram`: what the device runs, decoded from `model.elf` and the manifest.

A program is the device's memory map (`regions`, from the manifest), what the loader
writes before anything runs (`loads`: the ELF file itself at its home address, then every
section at its `sh_addr`: tasklists, DPU programs, weights and tables) and, per segment,
the entry of its tasklist and its IO buffers (ELF symbols, with the layout the manifest
gives). Nothing here needs the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aipuc.runtime.sim.elf import ElfFile
from aipuc.runtime.sim.memory import Region

IMAGE_SYMBOL = "aipu.elf_image"
"""Absolute symbol: where the ELF file itself is loaded (`elf_in_ddr`), and its size."""


@dataclass(frozen=True)
class IoBuffer:
    """A segment input or output: where its codes live and how the host lays them out."""

    symbol: str
    address: int
    shape: tuple[int, ...]  # stored (physical) shape
    perm: tuple[int, ...]  # logical axis of each stored axis
    dtype: str  # NumPy dtype name of the elements
    logical: tuple[int, ...]
    """The host's shape: the stored tensor transposed by `perm`, or (an output whose channels
    the device padded) the leading block of that shape the host keeps."""
    fill: int = 0
    """An input larger than `logical`: the code the host writes in the padded lanes."""


@dataclass
class SegmentImage:
    index: int
    entry: int
    """Address of the first record the core fetches (ELF symbol `segment<k>`)."""
    inputs: list[IoBuffer]
    outputs: list[IoBuffer]


@dataclass
class DeviceProgram:
    regions: list[Region]
    loads: list[tuple[int, bytes]] = field(default_factory=list)
    segments: list[SegmentImage] = field(default_factory=list)

    @classmethod
    def from_elf(cls, data: bytes, device: dict[str, Any]) -> DeviceProgram:
        """The program of an ELF file and the manifest's `device` entry."""
        elf = ElfFile.from_bytes(data)
        symbols = {symbol.name: symbol for symbol in elf.symbols}
        loads = [(symbols[IMAGE_SYMBOL].value, data)]
        loads += [(section.address, section.data) for section in elf.sections]

        def io(entry: dict[str, Any]) -> IoBuffer:
            return IoBuffer(
                entry["symbol"],
                symbols[entry["symbol"]].value,
                tuple(entry["shape"]),
                tuple(entry["perm"]),
                entry["dtype"],
                tuple(entry["logical"]),
                entry["fill"],
            )

        segments = [
            SegmentImage(
                s["index"],
                symbols[s["entry"]].value,
                [io(e) for e in s["inputs"]],
                [io(e) for e in s["outputs"]],
            )
            for s in device["segments"]
        ]
        regions = [Region(**{**r, "pages": tuple(r["pages"])}) for r in device["memory_map"]]
        return cls(regions, loads, segments)
