"""Byte-addressed memories of the AIPU and the device address map.

Every memory (DDR, L2, the L1 of each core) is one NumPy byte array. A device address picks
the memory through `AddressMap`: each region is a half-open range of device addresses backed
by one memory. Accesses are strided blocks (sizes and byte strides per axis, innermost last)
read and written as NumPy views of the byte arrays, bounds-checked against their region, so
an addressing bug reads the wrong bytes or stops the simulation with the address it got.
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
    backing: str | None = None
    """The region whose bytes this one shows (an L1 seen through its physical window)."""

    @property
    def memory(self) -> str:
        return self.backing or self.name

    def __contains__(self, address: int) -> bool:
        return self.base <= address < self.base + self.size


@dataclass
class Memories:
    """The memories of one device, addressed through their regions."""

    regions: list[Region]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for region in self.regions:
            if region.backing is None and region.name not in self.arrays:
                # np.zeros maps untouched pages lazily: a 1 GiB DDR costs what is written.
                self.arrays[region.name] = np.zeros(region.size, np.uint8)

    def _locate(self, address: int, low: int, high: int) -> tuple[np.ndarray, int]:
        """The byte array and offset of `address`, checking [address+low, address+high]."""
        for region in self.regions:
            if address in region:
                offset = address - region.base
                if offset + low < 0 or offset + high >= region.size:
                    raise SimulationError(
                        f"access [{address + low:#x}, {address + high:#x}] leaves {region.name} "
                        f"[{region.base:#x}, {region.base + region.size:#x})"
                    )
                return self.arrays[region.memory], offset
        raise SimulationError(f"address {address:#x} is in no memory")

    def view(
        self, address: int, sizes: Sequence[int], strides: Sequence[int], dtype=np.int8
    ) -> np.ndarray:
        """A writable strided view of `sizes` elements of `dtype` at `address`."""
        dtype = _little_endian(dtype)
        sizes = [int(s) for s in sizes]
        strides = [int(s) for s in strides]
        if min(sizes, default=1) <= 0:
            return np.zeros(sizes, dtype)
        low = high = 0  # the lowest and highest byte offsets the block touches
        for n, s in zip(sizes, strides, strict=True):
            if s < 0:
                low += (n - 1) * s
            else:
                high += (n - 1) * s
        array, offset = self._locate(address, low, high + dtype.itemsize - 1)
        return np.ndarray(sizes, dtype, buffer=array, offset=offset, strides=strides)

    def read(self, address, sizes, strides, dtype=np.int8) -> np.ndarray:
        return self.view(address, sizes, strides, dtype).copy()

    def write(self, address, sizes, strides, values, dtype=np.int8) -> None:
        if any(s == 0 for s, n in zip(strides, sizes, strict=True) if n > 1):
            raise SimulationError(f"a write at {address:#x} has a zero stride")
        self.view(address, sizes, strides, dtype)[...] = values

    def load_bytes(self, address: int, data: bytes) -> None:
        """Place raw bytes (constants, programs, inputs) at `address`."""
        if data:
            self.view(address, [len(data)], [1], np.uint8)[...] = np.frombuffer(data, np.uint8)

    def dump_bytes(self, address: int, length: int) -> bytes:
        return self.view(address, [length], [1], np.uint8).tobytes()


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
