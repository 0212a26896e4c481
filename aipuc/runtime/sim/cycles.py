"""The cycle model: what each instruction record costs, from the hardware model alone.

It reads what the simulator executes (the records of each stream, the memory map, and the
DPU programs among the constants) and nothing of the IR; every number comes from
`aipuc.hardware.HardwareModel`. Costs per record, `hw` the hardware model:

    MVM       task + out_h * ceil(out_w / icr)
              one input vector (one x-position per ICR copy) per cycle; a record is one K
              chunk (<= mvm_k rows), so a layer of k chunks costs k records
    IMC_LOAD  ceil(k * n * imc_weightset_load_cycles / imc_weightset_bytes)
    DWPU      task + out_h * out_w * ceil(C / dwpu_channels) * ceil(taps / dwpu_taps)
              taps = kh * kw, or the whole tile for the global modes
    DPU       task + per micro-op: vectors = rows * ceil(lanes / dpu_lanes) (lanes = the
              innermost axis); a reduction (RMAX, RSUM) instead costs per row
              ceil(lanes / dpu_lanes) + log2(dpu_lanes) (the lane tree and its broadcast)
    DMA/FILL  dma_setup_cycles + runs * max(ceil(run / bandwidth), dma_burst_min_cycles)
              a run is a contiguous stretch on both sides; short runs cost more per byte

with `task` = `unit_task_cycles`. The bandwidth is that of the memory pair: the system DMA
at `sysdma_ddr_l2_bytes_per_cycle`, the core DMA at `core_dma_ddr_l1_bytes_per_cycle` when
DDR is an end, else (L2 and L1 on chip) at `core_dma_l2_l1_bytes_per_cycle`.

The schedule is sequential (one record after the other, one core), so the total is the sum;
`Profile.report` turns it into latency and FPS at a frequency. Useful MACs count the lanes
of each tap that hold input channels (the MVM record's `channels`), not the zero-point
padding up to whole PWORDs, times the record's output channels; grouped convolutions count
as the dense block-diagonal product they run as. Each MVM record's capacity (its cycles x
mvm_k x mvm_n) splits exactly into its useful MACs and five losses (`MVM_LOSSES`): task
cycles, rows of the array the K chunk leaves unused, columns the N chunk (times ICR) leaves
unused, ICR slots past the row's last x-position, and lanes of zero-point padding.

Per unit, `work` is what the unit did in cycles at its peak (MVM: useful MACs over
mvm_k x mvm_n; DWPU: channel-taps over dwpu_channels x dwpu_taps; DPU: lane micro-ops over
dpu_lanes; DMA: bytes over the pair's bandwidth), so work over busy cycles is the unit's
utilization while it runs (for the MVM, over its record and weight-load cycles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aipuc.hardware import AIPU, HardwareModel, MemorySpace, Unit
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.isa import DmaEngineCode, DwpuMode, MicroOpcode, Opcode
from aipuc.runtime.sim.memory import Region, SimulationError

LEVELS = (MemorySpace.DDR, MemorySpace.L2, MemorySpace.L1)
LEVEL_NAMES = {MemorySpace.DDR: "ddr", MemorySpace.L2: "l2", MemorySpace.L1: "l1"}
UNITS = {
    Opcode.DMA: Unit.DMA,
    Opcode.FILL: Unit.DMA,
    Opcode.IMC_LOAD: Unit.MVM,
    Opcode.MVM: Unit.MVM,
    Opcode.DWPU: Unit.DWPU,
    Opcode.DPU: Unit.DPU,
}
REDUCTIONS = (MicroOpcode.RMAX, MicroOpcode.RSUM)
MVM_LOSSES = (
    "task_overhead",
    "unused_rows",
    "unused_columns",
    "icr_remainder",
    "padding_lanes",
)
"""Where an MVM record's capacity goes besides useful MACs (see the module docstring)."""
_GLOBAL_MODES = (DwpuMode.GLOBAL_AVG, DwpuMode.GLOBAL_MAX)


def region_level(region: Region) -> MemorySpace:
    """The memory level of a region of the memory map (`ddr`, `l2`, `l1_core<k>`)."""
    for level in LEVELS:
        if region.name.startswith(LEVEL_NAMES[level]):
            return level
    raise SimulationError(f"memory region '{region.name}' is none of DDR, L2, L1")


def _ceil(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return -(-a // b)


# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Costs:
    """Per-record costs of one stream, in stream order."""

    opcode: np.ndarray  # uint8
    cycles: np.ndarray  # int64
    macs: np.ndarray  # useful MACs (MVM records)
    losses: np.ndarray  # [records, len(MVM_LOSSES)] MAC slots lost (MVM records)
    work: np.ndarray  # float: cycles the record's work takes at its unit's peak
    bytes: np.ndarray  # bytes moved (DMA) or written (FILL)
    src: np.ndarray  # level index into LEVELS of a DMA's source, -1 elsewhere
    dst: np.ndarray  # level index of a DMA's or FILL's destination, -1 elsewhere
    peak_cycles: np.ndarray  # float: bytes over the pair's bandwidth, no setup or bursts


class CycleModel:
    """Costs of the records of streams on a device with `regions` and DPU `programs`."""

    def __init__(
        self,
        regions: Sequence[Region],
        programs: Mapping[int, bytes],
        hw: HardwareModel = AIPU,
    ):
        self.hw = hw
        order = sorted(regions, key=lambda r: r.base)
        self._bases = np.array([r.base for r in order], np.uint64)
        self._ends = np.array([r.base + r.size for r in order], np.uint64)
        self._levels = np.array([LEVELS.index(region_level(r)) for r in order], np.int64)
        self._programs = programs
        self._dpu_ops: dict[tuple[int, int], tuple[int, int]] = {}

    def costs(self, stream: isa.Stream) -> Costs:
        data = stream.data
        count = len(stream)
        opcode = np.frombuffer(data, isa.HEADER)["opcode"].copy()
        raw = np.frombuffer(data, np.dtype((np.void, isa.RECORD_BYTES)))
        cycles = np.zeros(count, np.int64)
        macs = np.zeros(count, np.int64)
        losses = np.zeros((count, len(MVM_LOSSES)), np.int64)
        work = np.zeros(count, np.float64)
        moved = np.zeros(count, np.int64)
        src = np.full(count, -1, np.int64)
        dst = np.full(count, -1, np.int64)
        peak = np.zeros(count, np.float64)
        unknown = set(np.unique(opcode).tolist()) - {int(op) for op in Opcode}
        if unknown:
            raise SimulationError(f"unknown opcode(s) {sorted(unknown)} in the stream")
        for op in Opcode:
            index = np.flatnonzero(opcode == op)
            if not index.size:
                continue
            r = raw[index].view(isa.DTYPES[op])
            if op == Opcode.MVM:
                cycles[index], macs[index], losses[index] = self._mvm(r)
                work[index] = macs[index] / self.hw.macs_per_cycle
            elif op == Opcode.IMC_LOAD:
                cycles[index] = self._imc_load(r)  # work 0: loading computes nothing
            elif op == Opcode.DWPU:
                cycles[index], work[index] = self._dwpu(r)
            elif op == Opcode.DPU:
                cycles[index], work[index] = self._dpu(r)
            else:
                cycles[index], moved[index], src[index], dst[index], peak[index] = self._dma(
                    r, op == Opcode.FILL
                )
                work[index] = peak[index]
        return Costs(opcode, cycles, macs, losses, work, moved, src, dst, peak)

    # ------------------------------------------------------------------ units

    def _mvm(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hw = self.hw
        out_h, out_w = (r["out_hw"][:, i].astype(np.int64) for i in range(2))
        icr = np.maximum(r["icr"].astype(np.int64), 1)
        k, n = r["k_len"].astype(np.int64), r["n"].astype(np.int64)
        too_big = (k > hw.mvm_k) | (n * icr > hw.mvm_n)
        if too_big.any():
            i = int(np.flatnonzero(too_big)[0])
            raise SimulationError(
                f"an MVM record uses {k[i]} rows x {n[i] * icr[i]} columns (n x icr), beyond "
                f"the {hw.mvm_k} x {hw.mvm_n} array"
            )
        pixels = out_h * out_w
        vectors = out_h * _ceil(out_w, icr)
        cycles = hw.unit_task_cycles + vectors
        in_c = np.maximum(r["in_c"].astype(np.int64), 1)
        channels = r["channels"].astype(np.int64)
        channels = np.where(channels == 0, in_c, np.minimum(channels, in_c))

        def data_rows(end: np.ndarray) -> np.ndarray:  # rows < end holding input channels
            return end // in_c * channels + np.minimum(end % in_c, channels)

        start = r["k_start"].astype(np.int64)
        rows = data_rows(start + k) - data_rows(start)
        macs = pixels * rows * n
        losses = np.stack(
            [
                np.full(len(r), hw.unit_task_cycles * hw.macs_per_cycle, np.int64),
                vectors * (hw.mvm_k - k) * hw.mvm_n,
                vectors * k * (hw.mvm_n - n * icr),
                (vectors * icr - pixels) * k * n,
                pixels * (k - rows) * n,
            ],
            axis=1,
        )
        return cycles, macs, losses

    def _imc_load(self, r: np.ndarray) -> np.ndarray:
        hw = self.hw
        weights = r["k"].astype(np.int64) * r["n"].astype(np.int64)
        return _ceil(weights * hw.imc_weightset_load_cycles, hw.imc_weightset_bytes)

    def _dwpu(self, r: np.ndarray) -> np.ndarray:
        hw = self.hw
        pixels = r["out_hw"][:, 0].astype(np.int64) * r["out_hw"][:, 1]
        groups = _ceil(r["channels"].astype(np.int64), hw.dwpu_channels)
        window = r["kernel"][:, 0].astype(np.int64) * r["kernel"][:, 1]
        whole = r["in_hw"][:, 0].astype(np.int64) * r["in_hw"][:, 1]
        taps = np.maximum(
            np.where(np.isin(r["mode"], [int(m) for m in _GLOBAL_MODES]), whole, window), 1
        )
        cycles = hw.unit_task_cycles + pixels * groups * _ceil(taps, hw.dwpu_taps)
        channel_taps = pixels * r["channels"].astype(np.int64) * taps
        return cycles, channel_taps / (hw.dwpu_channels * hw.dwpu_taps)

    def _dpu(self, r: np.ndarray) -> np.ndarray:
        hw = self.hw
        shape = r["shape"].astype(np.int64)
        rows = np.prod(shape[:, :-1], axis=1)
        per_row = _ceil(shape[:, -1], hw.dpu_lanes)
        elementwise = np.zeros(len(r), np.int64)
        reductions = np.zeros(len(r), np.int64)
        for i, (address, count) in enumerate(zip(r["program"], r["micro_ops"], strict=True)):
            elementwise[i], reductions[i] = self._program_ops(int(address), int(count))
        tree = math.ceil(math.log2(hw.dpu_lanes))
        cycles = (
            hw.unit_task_cycles
            + elementwise * rows * per_row
            + reductions * rows * (per_row + tree)
        )
        lane_ops = (elementwise + reductions) * rows * shape[:, -1]
        return cycles, lane_ops / hw.dpu_lanes

    def _program_ops(self, address: int, count: int) -> tuple[int, int]:
        """(element-wise micro-ops, reductions) of the DPU program at `address`."""
        key = (address, count)
        if key not in self._dpu_ops:
            words = self._programs.get(address)
            if words is None or len(words) < count * isa.MICRO_OP_BYTES:
                raise SimulationError(
                    f"a DPU record points at {address:#x}, which holds no program of {count} "
                    "micro-ops"
                )
            ops = isa.decode_micro_ops(words[: count * isa.MICRO_OP_BYTES])["op"]
            reductions = int(np.isin(ops, [int(o) for o in REDUCTIONS]).sum())
            self._dpu_ops[key] = (count - reductions, reductions)
        return self._dpu_ops[key]

    def _levels_of(self, addresses: np.ndarray) -> np.ndarray:
        addresses = addresses.astype(np.uint64)
        slot = np.searchsorted(self._bases, addresses, side="right") - 1
        inside = (slot >= 0) & (addresses < self._ends[np.maximum(slot, 0)])
        if not inside.all():
            raise SimulationError(
                f"address {int(addresses[~inside][0]):#x} is in no memory of the memory map"
            )
        return self._levels[slot]

    def bandwidth(self, src: np.ndarray, dst: np.ndarray, system: np.ndarray) -> np.ndarray:
        """Bytes per cycle of transfers between levels (indices into LEVELS)."""
        hw = self.hw
        ddr = LEVELS.index(MemorySpace.DDR)
        return np.where(
            system,
            hw.sysdma_ddr_l2_bytes_per_cycle,
            np.where(
                (src == ddr) | (dst == ddr),
                hw.core_dma_ddr_l1_bytes_per_cycle,
                hw.core_dma_l2_l1_bytes_per_cycle,
            ),
        )

    def _dma(self, r: np.ndarray, fill: bool):
        hw = self.hw
        sizes = r["sizes"].astype(np.int64)
        dst_strides = r["dst_strides"].astype(np.int64)
        src_strides = dst_strides if fill else r["src_strides"].astype(np.int64)
        dst = self._levels_of(r["dst"])
        src = dst if fill else self._levels_of(r["src"])
        system = np.zeros(len(r), bool) if fill else r["engine"] == DmaEngineCode.SYSTEM
        run = np.ones(len(r), np.int64)
        open_ = np.ones(len(r), bool)  # still contiguous on both sides
        for axis in range(isa.MAX_DIMS - 1, -1, -1):
            n = sizes[:, axis]
            joins = open_ & (src_strides[:, axis] == run) & (dst_strides[:, axis] == run)
            open_ &= joins | (n == 1)
            run = np.where(joins, run * n, run)
        total = np.prod(sizes, axis=1)
        runs = total // np.maximum(run, 1)
        bandwidth = self.bandwidth(src, dst, system)
        per_run = np.maximum(_ceil(run, bandwidth), hw.dma_burst_min_cycles)
        cycles = np.where(total > 0, hw.dma_setup_cycles + runs * per_run, hw.dma_setup_cycles)
        return cycles, total, (np.full(len(r), -1) if fill else src), dst, total / bandwidth


# ---------------------------------------------------------------------------------- profile


@dataclass
class Profile:
    """The sequential schedule's totals over every stream of a device program."""

    records: dict[Unit, int] = field(default_factory=lambda: dict.fromkeys(Unit, 0))
    cycles: dict[Unit, int] = field(default_factory=lambda: dict.fromkeys(Unit, 0))
    work: dict[Unit, float] = field(default_factory=lambda: dict.fromkeys(Unit, 0.0))
    imc_load_cycles: int = 0
    macs: int = 0
    losses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MVM_LOSSES, 0))
    read: dict[MemorySpace, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    written: dict[MemorySpace, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    transfers: dict[str, dict[str, float]] = field(default_factory=dict)
    memory_cycles: float = 0.0
    hw: HardwareModel = AIPU

    @property
    def total_cycles(self) -> int:
        return sum(self.cycles.values())

    def add(self, costs: Costs) -> None:
        for opcode, unit in UNITS.items():
            mask = costs.opcode == opcode
            self.records[unit] += int(mask.sum())
            self.cycles[unit] += int(costs.cycles[mask].sum())
            self.work[unit] += float(costs.work[mask].sum())
        self.imc_load_cycles += int(costs.cycles[costs.opcode == Opcode.IMC_LOAD].sum())
        self.macs += int(costs.macs.sum())
        for name, lost in zip(MVM_LOSSES, costs.losses.sum(axis=0).tolist(), strict=True):
            self.losses[name] += int(lost)
        self.memory_cycles += float(costs.peak_cycles.sum())
        for i, level in enumerate(LEVELS):
            self.read[level] += int(costs.bytes[costs.src == i].sum())
            self.written[level] += int(costs.bytes[costs.dst == i].sum())
        moves = np.isin(costs.opcode, [int(Opcode.DMA), int(Opcode.FILL)])
        for src in (-1, *range(len(LEVELS))):
            for dst in range(len(LEVELS)):
                mask = moves & (costs.src == src) & (costs.dst == dst)
                if not mask.any():
                    continue
                key = f"{'fill' if src < 0 else LEVEL_NAMES[LEVELS[src]]}->"
                entry = self.transfers.setdefault(
                    key + LEVEL_NAMES[LEVELS[dst]],
                    {"records": 0, "bytes": 0, "cycles": 0, "peak_cycles": 0.0},
                )
                entry["records"] += int(mask.sum())
                entry["bytes"] += int(costs.bytes[mask].sum())
                entry["cycles"] += int(costs.cycles[mask].sum())
                entry["peak_cycles"] += float(costs.peak_cycles[mask].sum())

    def report(self, frequency: int) -> dict[str, Any]:
        """Totals, latency and FPS at `frequency` Hz, utilization, bytes and the roofline."""
        total = self.total_cycles
        seconds = total / frequency
        busy = self.cycles[Unit.MVM]
        peak = self.hw.macs_per_cycle
        compute = self.macs / peak
        bound = max(compute, self.memory_cycles)
        capacity = (busy - self.imc_load_cycles) * peak
        return {
            "schedule": SCHEDULE,
            "frequency_hz": frequency,
            "cycles": total,
            "latency_ms": seconds * 1e3,
            "fps": round(1 / seconds, 2) if total else None,
            "units": {
                str(unit): {
                    "records": self.records[unit],
                    "cycles": self.cycles[unit],
                    "busy": _ratio(self.cycles[unit], total),
                    "utilization": _ratio(self.work[unit], self.cycles[unit]),
                }
                for unit in Unit
            },
            "mvm": {
                "useful_macs": self.macs,
                "mvm_cycles": busy - self.imc_load_cycles,
                "imc_load_cycles": self.imc_load_cycles,
                # useful MACs over MVM-record cycles x MACs per cycle; then with weight loads
                "utilization": _ratio(self.macs, capacity),
                "utilization_with_loads": _ratio(self.macs, busy * peak),
                "losses": {name: _ratio(lost, capacity) for name, lost in self.losses.items()},
            },
            "bytes": {
                LEVEL_NAMES[level]: {"read": self.read[level], "written": self.written[level]}
                for level in LEVELS
            },
            "transfers": {
                pair: {**entry, "peak_cycles": round(entry["peak_cycles"])}
                for pair, entry in sorted(self.transfers.items())
            },
            "roofline": {
                "compute_cycles": round(compute),
                "memory_cycles": round(self.memory_cycles),
                "bound_cycles": round(bound),
                "bound": "compute" if compute >= self.memory_cycles else "memory",
                "ratio": _ratio(total, bound, digits=3),
            },
        }


SCHEDULE = (
    "sequential: one core, one record after another, no overlap of units, DMA or weight "
    "loads (double buffering, pipelining and multicore come later); device cycles only, "
    "host ops not modelled"
)


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


def profile(
    regions: Sequence[Region],
    constants: Iterable[tuple[int, bytes]],
    streams: Iterable[isa.Stream],
    hw: HardwareModel = AIPU,
) -> Profile:
    """The cycle model over `streams`, run one after the other on one core."""
    model = CycleModel(regions, dict(constants), hw)
    result = Profile(hw=hw)
    for stream in streams:
        result.add(model.costs(stream))
    return result
