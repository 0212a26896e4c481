"""`mem-pools`: the memory pools the compiled model may use, from the CompilerConfig.

Every memory-size field is read here and nowhere else; later passes read the pools:

    mem.pool @ddr global.ddr capacity 1040187392 page 65536 at 4294967296
    mem.pool @l2 global.l2 capacity 31260672 page 65536 at 134217728
    mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 206175207424

Capacities are the used size minus what is reserved (for L2 also the tasklist space of
every core), capped by the `*_constraint` fields and scaled by `resources_used`.

With `page_memory`, DDR and L2 are paged: their capacity is whole pages of
`AIPU.page_bytes`, buffers get virtual offsets, and the memory planner maps each virtual
page to a physical page through the pool's page table, which the device applies to every
access. A buffer is contiguous in virtual addresses only, so a paged pool fits when the
pages alive at once fit, however its virtual plan is fragmented (see `mem-plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, i64
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import mem
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU, MemorySpace
from aipuc.passes import AipucPass

L1_PHYSICAL_ATTR = "aipu.l1_core0_physical_address"
"""Module attribute: where DMA engines see core 0's L1 (core k at + k * AIPU.l1_core_stride)."""

TASKLIST_ATTR = "aipu.tasklist_region"
"""Module attribute [address, bytes per core]: the L2 that `l2_size_reserved_tasklist`
reserves for each core's tasklist, core k at address + k * bytes, below the system's part."""

POOL_NAMES = {MemorySpace.DDR: "ddr", MemorySpace.L2: "l2"}


def l1_pool_name(core: int) -> str:
    return f"l1_core{core}"


def pool_name(space: MemorySpace, core: int = 0) -> str:
    return l1_pool_name(core) if space == MemorySpace.L1 else POOL_NAMES[space]


def pools_of(module: ModuleOp) -> dict[str, mem.PoolOp]:
    return {op.sym_name.data: op for op in module.ops if isinstance(op, mem.PoolOp)}


def l1_capacity(module: ModuleOp, core: int = 0) -> int:
    """Usable bytes of a core's L1 pool; a clear error when mem-pools has not run."""
    pool = pools_of(module).get(l1_pool_name(core))
    if pool is None:
        raise CompilationError(
            f"the module has no L1 pool '{l1_pool_name(core)}': run mem-pools first"
        )
    return pool.capacity.value.data


@dataclass(frozen=True)
class MemPoolsPass(AipucPass):
    name = "mem-pools"

    l1_size_used: int = 4194304
    l1_size_reserved: int = 524288
    l2_size_used: int = 33554432
    l2_size_reserved: int = 1245184
    l2_size_reserved_tasklist: int = 1048576
    ddr_size_used: int = 1073741824
    ddr_size_reserved: int = 33554432
    ddr_size_max: int = 1073741824
    l1_constraint: int | None = None
    l2_constraint: int | None = None
    ddr_constraint: int | None = None
    resources_used: float = 1.0
    page_memory: bool = True
    aipu_cores_used: int = 1
    l1_virtual_address: int = 206175207424
    l1_core0_physical_address: int = 402653184

    def capacity(self, space: MemorySpace) -> int:
        if space == MemorySpace.L1:
            usable, constraint = self.l1_size_used - self.l1_size_reserved, self.l1_constraint
        elif space == MemorySpace.L2:
            reserved = self.l2_size_reserved + self.aipu_cores_used * self.l2_size_reserved_tasklist
            usable, constraint = self.l2_size_used - reserved, self.l2_constraint
        else:
            usable = min(self.ddr_size_used, self.ddr_size_max) - self.ddr_size_reserved
            constraint = self.ddr_constraint
        if constraint is not None:
            usable = min(usable, constraint)
        capacity = int(usable * self.resources_used)
        if capacity < 1:
            raise CompilationError(
                f"no {space} memory is left to the compiler ({capacity} bytes); check the size, "
                "reserved and constraint fields and resources_used"
            )
        if self.page_memory and space != MemorySpace.L1:
            if capacity < AIPU.page_bytes:
                raise CompilationError(
                    f"the {space} pool of {capacity} bytes is smaller than one page "
                    f"({AIPU.page_bytes} bytes) of page_memory; raise its size or constraint "
                    "fields or resources_used, or set page_memory=false"
                )
            capacity -= capacity % AIPU.page_bytes  # whole pages
        return capacity

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for existing in pools_of(op).values():
            Rewriter.erase_op(existing)
        page = AIPU.page_bytes if self.page_memory else None
        pools = [
            mem.PoolOp(
                "ddr",
                MemorySpace.DDR,
                self.capacity(MemorySpace.DDR),
                page_size=page,
                address=AIPU.ddr_address,
            ),
            mem.PoolOp(
                "l2",
                MemorySpace.L2,
                self.capacity(MemorySpace.L2),
                page_size=page,
                address=AIPU.l2_address,
            ),
        ]
        for core in range(self.aipu_cores_used):
            pools.append(
                mem.PoolOp(
                    l1_pool_name(core),
                    MemorySpace.L1,
                    self.capacity(MemorySpace.L1),
                    core=core,
                    address=self.l1_virtual_address,
                )
            )
        op.attributes[L1_PHYSICAL_ATTR] = IntegerAttr(self.l1_core0_physical_address, i64)
        tasklists = self.aipu_cores_used * self.l2_size_reserved_tasklist
        tasklist_base = AIPU.l2_address + self.l2_size_used - self.l2_size_reserved - tasklists
        op.attributes[TASKLIST_ATTR] = DenseArrayBase.from_list(
            i64, [tasklist_base, self.l2_size_reserved_tasklist]
        )
        Rewriter.insert_op(pools, InsertPoint.at_start(op.body.block))
