"""Byte-addressed memories of the AIPU and the device address map.

Every memory (DDR, L2, the L1 of each core) is one NumPy byte array. A device address picks
the memory through its `Region`: a half-open range of device addresses backed by one memory.
Accesses are strided blocks (sizes and byte strides per axis, innermost last) read and
written through NumPy views of the byte arrays, bounds-checked against their region, so an
addressing bug reads the wrong bytes or stops the simulation with the address it got.

A paged memory (`page_memory`) is addressed through a virtual window: its page table maps
each virtual page to a physical page of the byte array, and every access is translated, so
a wrong page table gives wrong numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class SimulationError(Exception):
    """The stream asked for something the hardware cannot do (bad address, bad record)."""


@dataclass(frozen=True)
class Region:
    name: str  # "ddr", "l2", "l1_core0", ...
    base: int
    size: int
    """Bytes addressable from `base`: the memory, or a paged memory's virtual window."""
    page_size: int = 0
    """Bytes per page of a paged memory; 0 when addresses are physical."""
    pages: tuple[int, ...] = ()
    """The page table of a paged memory: the physical page behind each virtual page of the
    window, -1 where nothing is mapped."""
    physical: int = 0
    """Bytes of physical memory behind a paged window."""
    backing: str | None = None
    """The region whose bytes this one shows (an L1 seen through its physical window)."""

    @property
    def memory(self) -> str:
        return self.backing or self.name

    def __contains__(self, address: int) -> bool:
        return self.base <= address < self.base + self.size

    @property
    def physical_bytes(self) -> int:
        return self.physical if self.page_size else self.size


@dataclass
class Memories:
    """The memories of one device, addressed through their regions.

    An access to a paged memory is translated page by page through its page table: when the
    pages it touches are physically consecutive it is a view of the backing array, otherwise
    a gather (read) or scatter (write) of its translated byte addresses."""

    regions: list[Region]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ordered = sorted((r for r in self.regions if r.size), key=lambda r: r.base)
        for low, high in zip(ordered, ordered[1:], strict=False):
            if low.base + low.size > high.base:
                raise SimulationError(f"memory regions {low.name} and {high.name} overlap")
        self.tables = {r.name: np.asarray(r.pages, np.int64) for r in self.regions if r.page_size}
        self._spans = [(r.base, r.base + r.size, r) for r in self.regions]
        self._contiguous: dict[tuple[str, int, int], int] = {}
        """(paged region, first page, last page) -> first frame when the pages are
        physically consecutive, else -1 (page tables do not change after construction)."""
        for region in self.regions:
            if region.backing is None and region.name not in self.arrays:
                # np.zeros maps untouched pages lazily: a 1 GiB DDR costs what is written.
                self.arrays[region.name] = np.zeros(region.physical_bytes, np.uint8)

    def _locate(self, address: int, low: int, high: int) -> tuple[Region, int]:
        """The region of `address` and its offset there, checking [address+low, address+high]."""
        for base, end, region in self._spans:
            if base <= address < end:
                offset = address - base
                if offset + low < 0 or offset + high >= region.size:
                    raise SimulationError(
                        f"access [{address + low:#x}, {address + high:#x}] leaves {region.name} "
                        f"[{region.base:#x}, {region.base + region.size:#x})"
                    )
                return region, offset
        raise SimulationError(f"address {address:#x} is in no memory")

    def _block(self, address: int, sizes: list[int], strides: list[int], dtype: np.dtype):
        """(backing array, physical offset, None) for a block that is a view of its memory,
        or (backing array, None, physical byte addresses [*sizes, itemsize]) otherwise."""
        low = high = 0
        for n, s in zip(sizes, strides, strict=True):
            if s < 0:
                low += (n - 1) * s
            else:
                high += (n - 1) * s
        region, offset = self._locate(address, low, high + dtype.itemsize - 1)
        array = self.arrays[region.memory]
        if not region.page_size:
            return array, offset, None
        page, table = region.page_size, self.tables[region.name]
        first, last = (offset + low) // page, (offset + high + dtype.itemsize - 1) // page
        frame = self._first_frame(region.name, first, last)
        if frame >= 0:
            return array, frame * page + offset - first * page, None
        virtual = np.full([1] * len(sizes), offset, np.int64)
        for axis, (n, stride) in enumerate(zip(sizes, strides, strict=True)):
            shape = [1] * len(sizes)
            shape[axis] = n
            virtual = virtual + np.arange(n, dtype=np.int64).reshape(shape) * stride
        virtual = virtual[..., None] + np.arange(dtype.itemsize, dtype=np.int64)
        frames = table[virtual // page]
        if (frames < 0).any():
            raise SimulationError(
                f"access [{address + low:#x}, {address + high:#x}] touches an unmapped page "
                f"of {region.name}"
            )
        return array, None, frames * page + virtual % page

    def _first_frame(self, name: str, first: int, last: int) -> int:
        """The frame of page `first` when pages first..last are mapped to consecutive
        frames (the access is one view), else -1."""
        key = (name, first, last)
        frame = self._contiguous.get(key)
        if frame is None:
            frames = self.tables[name][first : last + 1]
            consecutive = frames[0] >= 0 and bool((np.diff(frames) == 1).all())
            frame = self._contiguous[key] = int(frames[0]) if consecutive else -1
        return frame

    def view(self, address, sizes, strides, dtype=np.int8) -> np.ndarray:
        """The block's values, without a copy where its bytes are contiguous in physical
        memory (a view: read it before the memory changes); otherwise a gathered copy."""
        dtype = _little_endian(dtype)
        sizes, strides = [int(s) for s in sizes], [int(s) for s in strides]
        if min(sizes, default=1) <= 0:
            return np.zeros(sizes, dtype)
        array, offset, scattered = self._block(address, sizes, strides, dtype)
        if scattered is None:
            return np.ndarray(sizes, dtype, buffer=array, offset=offset, strides=strides)
        return array[scattered].view(dtype).reshape(sizes)

    def read(self, address, sizes, strides, dtype=np.int8) -> np.ndarray:
        return self.view(address, sizes, strides, dtype).copy()

    def write(self, address, sizes, strides, values, dtype=np.int8) -> None:
        sizes, strides = [int(s) for s in sizes], [int(s) for s in strides]
        if any(s == 0 for s, n in zip(strides, sizes, strict=True) if n > 1):
            raise SimulationError(f"a write at {address:#x} has a zero stride")
        dtype = _little_endian(dtype)
        if min(sizes, default=1) <= 0:
            return
        array, offset, scattered = self._block(address, sizes, strides, dtype)
        if scattered is None:
            block = np.ndarray(sizes, dtype, buffer=array, offset=offset, strides=strides)
            block[...] = values
            return
        block = np.empty(sizes, dtype)
        block[...] = values
        array[scattered] = block.view(np.uint8).reshape(scattered.shape)

    def load_bytes(self, address: int, data: bytes) -> None:
        """Place raw bytes (constants, programs, inputs) at `address`."""
        if data:
            self.write(address, [len(data)], [1], np.frombuffer(data, np.uint8), np.uint8)

    def dump_bytes(self, address: int, length: int) -> bytes:
        return self.read(address, [length], [1], np.uint8).tobytes()


@functools.cache
def _little_endian(dtype) -> np.dtype:
    return np.dtype(dtype).newbyteorder("<")


def dense_strides(sizes: Sequence[int], itemsize: int = 1) -> list[int]:
    """Row-major byte strides of a dense block."""
    strides, step = [], itemsize
    for size in reversed(sizes):
        strides.append(step)
        step *= int(size)
    return strides[::-1]
