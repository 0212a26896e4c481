"""`mem-plan`: a byte offset for every buffer, so buffers alive at once never overlap.

Program order is the order of the top-level tasks of every segment's cores, segment after
segment (a tile loop is one step). A buffer lives from the first to the last step that
uses it (through views and reinterpretations); segment inputs from the start of their
segment and outputs to its end, constants and DPU programs for the whole program.

Per pool the planner places buffers greedily, largest first, at the lowest aligned offset
that overlaps no placed buffer whose lifetime meets its own. Up to `max_memplan_attempts`
orders are tried (by size, by lifetime start, by lifetime length); the first plan that fits
every pool wins. The lower bound of a pool is the largest total of bytes alive at one
step; the report gives both. `verify_plan` re-checks a module's offsets independently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation

from aipuc.dialects import aipu, mem
from aipuc.errors import CompilationError
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
        if isinstance(op, aipu.DpuOp) and op.program is not None:
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


def place(items: list[Lifetime], key: Callable[[Lifetime], tuple]) -> tuple[dict, int]:
    """Offsets for `items` placed in `key` order at the lowest fitting offset; and the peak."""
    placed: list[tuple[Lifetime, int]] = []
    offsets = {}
    peak = 0
    for item in sorted(items, key=key):
        conflicts = sorted(
            ((o, o + other.size) for other, o in placed if other.meets(item)), key=lambda c: c[0]
        )
        offset = 0
        for low, high in conflicts:
            offset = _align(offset, item.alignment)
            if offset + item.size <= low:
                break
            offset = max(offset, high)
        offset = _align(offset, item.alignment)
        placed.append((item, offset))
        offsets[item.buffer] = offset
        peak = max(peak, offset + item.size)
    return offsets, peak


ORDERS: list[Callable[[Lifetime], tuple]] = [
    lambda i: (-i.size, i.start),
    lambda i: (i.start, -i.size),
    lambda i: (-(i.end - i.start), -i.size),
    lambda i: (-i.size * (i.end - i.start + 1), i.start),
    lambda i: (i.end, -i.size),
]


@dataclass(frozen=True)
class MemPlanPass(AipucPass):
    name = "mem-plan"

    max_memplan_attempts: int = 5

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pools = pools_of(op)
        by_pool: dict[str, list[Lifetime]] = {name: [] for name in pools}
        for item in lifetimes(op):
            by_pool[item.buffer.pool.root_reference.data].append(item)
        summary = {}
        for name, items in by_pool.items():
            capacity = pools[name].capacity.value.data
            bound = lower_bound(items)
            best = None
            for key in ORDERS[: self.max_memplan_attempts]:
                offsets, peak = place(items, key)
                if best is None or peak < best[1]:
                    best = (offsets, peak)
                if peak <= capacity:
                    break
            assert best is not None
            offsets, peak = best
            if peak > capacity:
                raise CompilationError(
                    f"memory plan of pool '{name}' needs {peak} bytes ({bound} alive at once at "
                    f"best) but its capacity is {capacity} bytes, after "
                    f"{min(self.max_memplan_attempts, len(ORDERS))} attempt(s); raise the pool's "
                    "size or constraint, tile further, or move buffers to a larger pool"
                )
            for buffer, offset in offsets.items():
                buffer.offset = IntegerAttr(offset, i64)
            summary[name] = DictionaryAttr(
                {
                    "capacity": IntegerAttr(capacity, i64),
                    "peak": IntegerAttr(peak, i64),
                    "lower_bound": IntegerAttr(bound, i64),
                }
            )
        op.attributes[PLAN_ATTR] = DictionaryAttr({k: v for k, v in summary.items()})
        verify_plan(op)


def verify_plan(module: ModuleOp) -> None:
    """Every buffer planned inside its pool, and no two live buffers overlapping."""
    pools = pools_of(module)
    items = lifetimes(module)
    for item in items:
        if item.buffer.offset is None:
            raise CompilationError(f"buffer {item.buffer.buffer.name_hint or ''} has no offset")
    by_pool: dict[str, list[Lifetime]] = {}
    for item in items:
        by_pool.setdefault(item.buffer.pool.root_reference.data, []).append(item)
    for name, group in by_pool.items():
        capacity = pools[name].capacity.value.data
        spans = sorted(group, key=lambda i: i.buffer.offset.value.data)  # type: ignore[union-attr]
        for index, item in enumerate(spans):
            start = item.buffer.offset.value.data  # type: ignore[union-attr]
            if start + item.size > capacity:
                raise CompilationError(
                    f"pool '{name}': buffer at [{start}, {start + item.size}) overflows the "
                    f"capacity of {capacity} bytes"
                )
            for other in spans[index + 1 :]:
                other_start = other.buffer.offset.value.data  # type: ignore[union-attr]
                if other_start >= start + item.size:
                    break
                if item.meets(other):
                    raise CompilationError(
                        f"pool '{name}': buffers at [{start}, {start + item.size}) and "
                        f"[{other_start}, {other_start + other.size}) overlap while both are "
                        f"alive (steps {max(item.start, other.start)}.."
                        f"{min(item.end, other.end)})"
                    )
