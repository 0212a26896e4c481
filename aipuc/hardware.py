"""The AIPU hardware model: the one place that holds the accelerator's numbers.

"doc" fields are published vendor figures; "chosen" fields are modelling assumptions kept
explicit so the cycle model can be recalibrated (see design.md, "The hardware model").
Memory sizes that the user may change live in CompilerConfig, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MemorySpace(StrEnum):
    """Memory levels; values are the config spelling of the pools."""

    DDR = "global.ddr"
    L2 = "global.l2"
    L1 = "global.l1"


class Unit(StrEnum):
    """Compute units of one AI core."""

    MVM = "mvm"  # in-memory-compute matrix-vector unit
    DPU = "dpu"  # 64-lane float18 vector unit
    DWPU = "dwpu"  # depthwise / pooling unit
    DMA = "dma"


@dataclass(frozen=True)
class HardwareModel:
    cores: int = 4  # doc
    pword_bytes: int = 64  # chosen: channel padding unit (64 int8 channels)
    # MVM (IMC): per core K x N int8 weights, int32 accumulate, one K-vector per cycle.
    mvm_k: int = 512  # chosen
    mvm_n: int = 64  # chosen
    imc_weightsets: int = 4  # chosen
    imc_weightset_load_cycles: int = 256  # chosen: one 32 KiB weightset from L1
    # DPU: 64 lanes of float18 (1 sign, 8 exponent, 9 mantissa bits).
    dpu_lanes: int = 64  # chosen
    dpu_registers: int = 16  # chosen
    float18_exponent_bits: int = 8  # doc
    float18_mantissa_bits: int = 9  # doc
    lut_entries: int = 256  # one entry per int8 code
    # DWPU: 64 channels x 9 taps per cycle.
    dwpu_channels: int = 64  # chosen
    dwpu_taps: int = 9  # chosen
    grouped_kernel_area_limit: int = 128  # doc: a grouped convolution's kh * kw stays below
    # Bandwidths in bytes per cycle.
    ddr_bytes_per_cycle: int = 64  # chosen, shared by all cores
    core_dma_l2_l1_bytes_per_cycle: int = 64  # chosen, per channel
    core_dma_ddr_l1_bytes_per_cycle: int = 32  # chosen
    sysdma_ddr_l2_bytes_per_cycle: int = 32  # chosen
    dma_setup_cycles: int = 64  # chosen
    dma_burst_min_cycles: int = 4  # chosen: a contiguous run is a burst of at least this long
    unit_task_cycles: int = 16  # chosen: issue and pipeline fill of one MVM, DWPU or DPU task
    core_dma_channels: int = 2  # chosen: the second is used with dma_dual_channel
    hw_tokens_per_core: int = 32  # chosen
    control_core_sync_cycles: int = 100  # chosen: sync cost without hardware tokens
    host_link_bytes_per_second: float = 3.5e9  # chosen: PCIe Gen3 x4
    # Device address map (chosen). Each core reaches its own L1 at the configured
    # l1_virtual_address; DMA engines see every L1 at l1_core0_physical_address + core * stride.
    l2_address: int = 0x0800_0000  # chosen
    ddr_address: int = 0x1_0000_0000  # chosen
    l1_core_stride: int = 0x0100_0000  # chosen: 16 MiB between the cores' physical L1 windows
    page_bytes: int = 64 * 1024  # chosen: page size of paged L2 and DDR (page_memory)
    page_table_entries: int = 16384  # chosen: virtual pages per paged memory (1 GiB)

    @property
    def macs_per_cycle(self) -> int:
        return self.mvm_k * self.mvm_n

    @property
    def imc_weightset_bytes(self) -> int:
        return self.mvm_k * self.mvm_n


AIPU = HardwareModel()
