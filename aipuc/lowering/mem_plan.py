"""`mem-plan`: a byte offset for every buffer, so buffers alive at once never overlap.

Program order is the order of the top-level tasks of every segment's cores, segment after
segment (a tile loop is one step). A buffer lives from the first to the last step that
uses it (through views and reinterpretations); segment inputs from the start of their
segment and outputs to its end, constants and DPU/DWPU programs for the whole program.

Per pool the planner places buffers greedily in some order, each into a gap (the lowest,
or the tightest) that overlaps no placed buffer whose lifetime meets its own. The orders of
`ORDERS` are tried in turn (by size, by lifetime start, by lifetime length, ...), the best
plan is kept, and the search stops at a plan that reaches the lower bound: the largest
total of bytes alive at one step. The report gives both per pool.

A pool that no order fits raises `PoolOverflow`. When it is an L1 pool, the lowering stage
retries from the L1 promotion with more headroom (`aipuc.pipeline.run_stage`, up to
`max_memplan_attempts` times): promotion fills L1 up to its lower bound, and the
placement's fragmentation needs more.

A paged pool (`page_memory`) plans virtual offsets the same way, then maps virtual pages to
physical pages: a virtual page is alive while any buffer in it is, and pages alive at once
get distinct physical pages, so its peak is the most pages alive at once, whatever the
virtual fragmentation; its lower bound is the live bytes in whole pages. The page table is
the pool's `pages`; the device translates every access through it.

`verify_plan` re-checks a module's offsets (and page tables) independently.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation

from aipuc.dialects import aipu, mem
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU, MemorySpace
from aipuc.lowering.mem_pools import pools_of
from aipuc.passes import AipucPass

PLAN_ATTR = "mem.plan"
"""Module attribute: per pool, its capacity, planned peak and lower bound in bytes."""


@dataclass
class Lifetime:
    buffer: mem.BufferOp
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.buffer.size.value.data

    @property
    def alignment(self) -> int:
        return self.buffer.alignment.value.data

    def meets(self, other: Lifetime) -> bool:
        return self.start <= other.end and other.start <= self.end


def _buffers_used(op: Operation) -> set[mem.BufferOp]:
    used = set()
    for inner in op.walk():
        for operand in inner.operands:
            if isinstance(operand.type, (mem.BufferType, mem.ViewType)):
                used.add(mem.root_buffer(operand))
    return used


def lifetimes(module: ModuleOp) -> list[Lifetime]:
    """The lifetime of every buffer of the module, in program steps."""
    spans: dict[mem.BufferOp, list[int]] = {}
    step = 0
    for segment in (op for op in module.ops if isinstance(op, aipu.SegmentOp)):
        first = step
        for core in segment.body.block.ops:
            for task in core.regions[0].block.ops:
                for buffer in _buffers_used(task):
                    span = spans.setdefault(buffer, [step, step])
                    span[1] = step
                step += 1
        last = max(first, step - 1)
        for value in segment.inputs:
            span = spans.setdefault(mem.root_buffer(value), [first, first])
            span[0] = min(span[0], first)
        for value in segment.outputs:
            span = spans.setdefault(mem.root_buffer(value), [last, last])
            span[1] = max(span[1], last)
    end = max(step - 1, 0)
    programs = _programs(module)
    result = []
    for buffer in (op for op in module.ops if isinstance(op, mem.BufferOp)):
        start, stop = spans.get(buffer, [0, 0])
        if buffer.init is not None or buffer in programs:
            start, stop = 0, end  # loaded before the program starts, read until it ends
        result.append(Lifetime(buffer, start, stop))
    return result


def _programs(module: ModuleOp) -> set[mem.BufferOp]:
    found = set()
    for op in module.walk():
        if isinstance(op, (aipu.DpuOp, aipu.DwpuOp)) and op.program is not None:
            found.add(mem.root_buffer(op.program))
    return found


def lower_bound(items: list[Lifetime]) -> int:
    """The largest total size of buffers alive at one step."""
    events = sorted([(i.start, i.size) for i in items] + [(i.end + 1, -i.size) for i in items])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def place(
    items: list[Lifetime], key: Callable[[Lifetime], tuple], best_fit: bool = False
) -> tuple[dict[mem.BufferOp, int], int]:
    """Offsets for `items` placed in `key` order, and the extent they span.

    Each buffer goes into a gap between the buffers already placed whose lifetimes meet
    its own: the lowest that fits (first fit) or the tightest (best fit), else on top."""
    placed: list[tuple[Lifetime, int]] = []
    offsets = {}
    extent = 0
    for item in sorted(items, key=key):
        conflicts = sorted((o, o + other.size) for other, o in placed if other.meets(item))
        offset = _gap(conflicts, item.size, item.alignment, best_fit)
        placed.append((item, offset))
        offsets[item.buffer] = offset
        extent = max(extent, offset + item.size)
    return offsets, extent


def _gap(conflicts: list[tuple[int, int]], size: int, alignment: int, best_fit: bool) -> int:
    """The offset of a free gap of `size` bytes between sorted occupied ranges."""
    best = None
    low = 0
    for start, stop in conflicts:
        offset = _align(low, alignment)
        if offset + size <= start:
            if not best_fit:
                return offset
            if best is None or start - offset < best[0]:
                best = (start - offset, offset)
        low = max(low, stop)
    return _align(low, alignment) if best is None else best[1]


def map_pages(
    items: list[Lifetime], offsets: dict[mem.BufferOp, int], page: int
) -> tuple[list[int], int]:
    """A page table for a paged pool's virtual plan, and the physical pages it uses.

    A virtual page is alive from the first to the last step of the buffers it holds; pages
    alive at once get distinct physical pages (in order of their first step, continuing
    the previous virtual page's physical run when it is free, else the lowest free page),
    so the physical pages used are the most virtual pages alive at one step."""
    spans: dict[int, list[int]] = {}
    for item in items:
        offset = offsets[item.buffer]
        for virtual in range(offset // page, (offset + item.size - 1) // page + 1):
            span = spans.setdefault(virtual, [item.start, item.end])
            span[0], span[1] = min(span[0], item.start), max(span[1], item.end)
    table = [-1] * (max(spans, default=-1) + 1)
    free: list[int] = []
    free_set: set[int] = set()
    alive: list[tuple[int, int]] = []  # (last step, physical page)
    used = 0
    for virtual in sorted(spans, key=lambda v: (spans[v][0], v)):
        start, end = spans[virtual]
        while alive and alive[0][0] < start:
            _, frame = heapq.heappop(alive)
            heapq.heappush(free, frame)
            free_set.add(frame)
        previous = table[virtual - 1] + 1 if virtual > 0 and table[virtual - 1] >= 0 else None
        if previous is not None and previous in free_set:
            frame = previous
        else:
            while free and free[0] not in free_set:
                heapq.heappop(free)
            frame = heapq.heappop(free) if free else used
        if frame == used:
            used += 1
        free_set.discard(frame)
        table[virtual] = frame
        heapq.heappush(alive, (end, frame))
    return table, used


ORDERS: list[tuple[Callable[[Lifetime], tuple], bool]] = [
    (lambda i: (-i.size, i.start), False),
    (lambda i: (-i.size, i.start), True),
    (lambda i: (i.start, -i.size), True),
    (lambda i: (-(i.end - i.start), -i.size), False),
    (lambda i: (-i.size * (i.end - i.start + 1), i.start), True),
    (lambda i: (i.end, -i.size), False),
]
"""Placement attempts: (order, best fit), tried in turn until one reaches the lower bound."""


@dataclass
class PoolPlan:
    offsets: dict[mem.BufferOp, int]
    peak: int
    """Bytes: the extent of the plan, or for a paged pool its physical pages in bytes."""
    pages: list[int] | None = None


def plan_pool(items: list[Lifetime], page: int | None, goal: int) -> PoolPlan:
    """The best placement of `ORDERS` (the first that reaches `goal` ends the search)."""
    best = None
    for key, best_fit in ORDERS:
        offsets, extent = place(items, key, best_fit)
        if page is None:
            plan = PoolPlan(offsets, extent)
        else:
            table, frames = map_pages(items, offsets, page)
            plan = PoolPlan(offsets, frames * page, table)
        if best is None or plan.peak < best.peak:
            best = plan
        if best.peak <= goal:
            break
    assert best is not None
    return best


class PoolOverflow(CompilationError):
    """A pool that no placement fits. `attempts` says how often the lowering stage tried
    (see `aipuc.pipeline.run_stage`); the message says how to make room."""

    def __init__(
        self, pool: str, space: MemorySpace, peak: int, live: int, capacity: int, attempts=""
    ):
        self.pool, self.space, self.peak, self.live, self.capacity = (
            pool,
            space,
            peak,
            live,
            capacity,
        )
        super().__init__(
            f"memory plan of pool '{pool}' needs {peak} bytes ({live} alive at once at best) "
            f"but its capacity is {capacity} bytes{attempts}; raise the pool's size or "
            "constraint, tile further, or move buffers to a larger pool"
            + (
                " (tiling counts weights in L1 only with ignore_weight_buffers=false)"
                if space == MemorySpace.L1
                else ""
            )
        )

    def after(self, attempts: str) -> PoolOverflow:
        """The same overflow, its message saying what the stage's attempts did."""
        return PoolOverflow(self.pool, self.space, self.peak, self.live, self.capacity, attempts)


@dataclass(frozen=True)
class MemPlanPass(AipucPass):
    name = "mem-plan"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pools = pools_of(op)
        by_pool: dict[str, list[Lifetime]] = {name: [] for name in pools}
        for item in lifetimes(op):
            by_pool[item.buffer.pool.root_reference.data].append(item)
        summary = {}
        for name, items in by_pool.items():
            pool = pools[name]
            capacity = pool.capacity.value.data
            page = None if pool.page_size is None else pool.page_size.value.data
            live = lower_bound(items)
            bound = live if page is None else -(-live // page) * page
            plan = plan_pool(items, page, bound)
            if plan.peak > capacity:
                raise PoolOverflow(name, pool.space.data, plan.peak, live, capacity)
            if plan.pages is not None:
                if len(plan.pages) > AIPU.page_table_entries:
                    raise CompilationError(
                        f"pool '{name}' needs {len(plan.pages)} virtual pages but a page table "
                        f"holds {AIPU.page_table_entries}; turn page_memory off or tile "
                        "further"
                    )
                pool.pages = DenseArrayBase.from_list(i64, plan.pages)
            for buffer, offset in plan.offsets.items():
                buffer.offset = IntegerAttr(offset, i64)
            summary[name] = DictionaryAttr(
                {
                    "capacity": IntegerAttr(capacity, i64),
                    "peak": IntegerAttr(plan.peak, i64),
                    "lower_bound": IntegerAttr(bound, i64),
                    "live_bytes": IntegerAttr(live, i64),
                    "page_size": IntegerAttr(page or 0, i64),
                }
            )
        op.attributes[PLAN_ATTR] = DictionaryAttr({k: v for k, v in summary.items()})
        verify_plan(op)


def verify_plan(module: ModuleOp) -> None:
    """Every buffer planned inside its pool, and no two live buffers sharing a byte.

    Independent of the planner: it reads the offsets, and for a paged pool translates each
    buffer's virtual range through the pool's page table into physical ranges."""
    pools = pools_of(module)
    items = lifetimes(module)
    for item in items:
        if item.buffer.offset is None:
            raise CompilationError(f"buffer {item.buffer.buffer.name_hint or ''} has no offset")
    by_pool: dict[str, list[Lifetime]] = {}
    for item in items:
        by_pool.setdefault(item.buffer.pool.root_reference.data, []).append(item)
    for name, group in by_pool.items():
        pool = pools[name]
        capacity = pool.capacity.value.data
        pieces = sorted(
            (
                (start, stop, item)
                for item in group
                for start, stop in _physical(name, pool, item)
                if stop > start
            ),
            key=lambda piece: piece[:2],
        )
        for index, (start, stop, item) in enumerate(pieces):
            if stop > capacity:
                raise CompilationError(
                    f"pool '{name}': {_where(item)} overflows the capacity of {capacity} bytes"
                )
            for other_start, other_stop, other in pieces[index + 1 :]:
                if other_start >= stop:
                    break
                if other is not item and item.meets(other):
                    raise CompilationError(
                        f"pool '{name}': {_where(item)} and {_where(other)} overlap at bytes "
                        f"[{max(start, other_start)}, {min(stop, other_stop)}) while both are "
                        f"alive (steps {max(item.start, other.start)}..{min(item.end, other.end)})"
                    )


def _where(item: Lifetime) -> str:
    offset = item.buffer.offset.value.data  # type: ignore[union-attr]
    return f"the buffer at [{offset}, {offset + item.size})"


def _physical(name: str, pool: mem.PoolOp, item: Lifetime) -> list[tuple[int, int]]:
    """The byte ranges of the pool's memory that a buffer occupies."""
    offset = item.buffer.offset.value.data  # type: ignore[union-attr]
    if pool.page_size is None:
        return [(offset, offset + item.size)]
    page = pool.page_size.value.data
    table = () if pool.pages is None else pool.pages.get_values()
    pieces: list[tuple[int, int]] = []
    position, stop = offset, offset + item.size
    while position < stop:
        virtual = position // page
        if virtual >= len(table) or table[virtual] < 0:
            raise CompilationError(
                f"pool '{name}': {_where(item)} uses virtual page {virtual}, which the page "
                "table does not map"
            )
        end = min(stop, (virtual + 1) * page)
        physical = table[virtual] * page + position % page
        if pieces and pieces[-1][1] == physical:
            pieces[-1] = (pieces[-1][0], physical + end - position)
        else:
            pieces.append((physical, physical + end - position))
        position = end
    return pieces
