"""`aipu-dpu-regalloc`: DPU programs onto the `AIPU.dpu_registers` vector registers.

A DPU program is straight-line code; a value occupies its register from the micro-op that
writes it to the last one that reads it (a micro-op reads before it writes, so a result
may take the register of an operand it reads last). Each result-defining micro-op gets its
register as the `reg` attribute, which the emitter encodes:

    %3 = aipu.dpu.add %1, %2                    %3 = aipu.dpu.add %1, %2 {reg = 0 : i64}

When more values are live at once than there are registers, `graph` spills: it stores a
value to a slot of an L1 buffer it allocates per program (one tile per slot, four bytes
per element; mem-plan places the buffer) right after its definition and reloads it before
each use:

    %v = aipu.dpu.lut %x, %t                    %v = aipu.dpu.lut %x, %t {reg = 5 : i64}
                                                aipu.dpu.spill %v to %spill slot 0
    ...                                         ...
                                                %v1 = aipu.dpu.reload %spill slot 0 {reg = 2}
    %w = aipu.dpu.add %v, %u                    %w = aipu.dpu.add %v1, %u {reg = 2 : i64}

Algorithms (`dpu_allocation_algorithm`):
  lazy                linear scan in program order, the lowest free register at each
                      definition; optimal for straight-line code, but never spills
  backjump_recursive  exact recursive search on the interference graph (most constrained
                      value first) with conflict-directed backjumping; never spills and
                      gives up after `SEARCH_STEPS` steps
  graph               Chaitin-Briggs graph colouring (optimistic); when a value finds no
                      colour, spills the value live across the most crowded micro-op that
                      is read again furthest away, and colours again
  try_all             lazy, then backjump_recursive, then graph: the first that succeeds
The algorithm that allocated a program is recorded on its `aipu.dpu` op (`regalloc`,
`spills`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i8, i64
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.config import DPUAllocationAlgorithm
from aipuc.dialects import aipu, mem
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU, MemorySpace
from aipuc.lowering.mem_pools import l1_pool_name
from aipuc.passes import AipucPass

REG_ATTR = "reg"
SEARCH_STEPS = 20000
"""backjump_recursive's budget: colour attempts before it gives up."""
SPILL_ROUNDS = 256

_FLOAT_RESULTS = (
    aipu.DpuIntToFloatOp,
    aipu.DpuFloatAddOp,
    aipu.DpuFloatMulOp,
    aipu.DpuFloatNegOp,
    aipu.DpuFloatReciprocalOp,
    aipu.DpuFloatConstantOp,
    aipu.DpuRowSumOp,
    aipu.DpuExpLutOp,
)
_KIND_OF_FIRST = (aipu.DpuRowMaxOp, aipu.DpuMaxOp, aipu.DpuMinOp, aipu.DpuClampOp)


class AllocationError(Exception):
    """An algorithm found no assignment; the message says why and what to do."""


def _registers(op: Operation) -> list[SSAValue]:
    return [o for o in op.operands if isinstance(o.type, aipu.VRegType)]


@dataclass
class Liveness:
    """Live ranges of a straight-line program, as closed intervals on doubled positions:
    a value defined by micro-op d and last read by micro-op e occupies [2d + 1, 2e]."""

    ops: list[Operation]
    values: list[SSAValue] = field(default_factory=list)
    ranges: dict[SSAValue, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defined: dict[SSAValue, int] = {}
        last: dict[SSAValue, int] = {}
        for index, op in enumerate(self.ops):
            for operand in _registers(op):
                last[operand] = index
            for result in op.results:
                defined[result] = index
                self.values.append(result)
        for value in self.values:
            start = 2 * defined[value] + 1
            self.ranges[value] = (start, max(start, 2 * last.get(value, 0)))

    def interferes(self, u: SSAValue, v: SSAValue) -> bool:
        (a1, b1), (a2, b2) = self.ranges[u], self.ranges[v]
        return a1 <= b2 and a2 <= b1

    def graph(self) -> dict[SSAValue, set[SSAValue]]:
        """The interference graph (a sweep over range starts: no quadratic scan)."""
        edges: dict[SSAValue, set[SSAValue]] = {v: set() for v in self.values}
        active: list[SSAValue] = []
        for value in sorted(self.values, key=lambda v: self.ranges[v]):
            start = self.ranges[value][0]
            active = [a for a in active if self.ranges[a][1] >= start]
            for other in active:
                edges[value].add(other)
                edges[other].add(value)
            active.append(value)
        return edges

    def pressure(self) -> tuple[int, int]:
        """(most values live at once, index of the micro-op where that happens)."""
        events = sorted(
            [(a, 1) for a, _ in self.ranges.values()]
            + [(b + 1, -1) for _, b in self.ranges.values()]
        )
        live = peak = where = 0
        for position, delta in events:
            live += delta
            if live > peak:
                peak, where = live, position
        return peak, where // 2

    def describe_pressure(self) -> str:
        peak, index = self.pressure()
        name = self.ops[index].name if index < len(self.ops) else "the end"
        return f"{peak} values are live at once at micro-op {index} ({name})"


# ---------------------------------------------------------------------------- algorithms

Assignment = dict[SSAValue, int]


def lazy(liveness: Liveness, registers: int) -> Assignment:
    """Linear scan: each value takes the lowest register free when it is defined."""
    assignment: Assignment = {}
    free = list(range(registers))
    ends: list[tuple[int, SSAValue]] = []
    for value in liveness.values:
        start = liveness.ranges[value][0]
        for end, done in sorted(ends, key=lambda e: e[0]):
            if end < start:
                free.append(assignment[done])
        ends = [(end, v) for end, v in ends if end >= start]
        if not free:
            raise AllocationError(
                f"lazy needs more than {registers} registers: {liveness.describe_pressure()}; "
                "it does not spill (use graph or try_all)"
            )
        free.sort()
        assignment[value] = free.pop(0)
        ends.append((liveness.ranges[value][1], value))
    return assignment


def backjump_recursive(liveness: Liveness, registers: int) -> Assignment:
    """Exact search with conflict-directed backjumping, most constrained value first."""
    graph = liveness.graph()
    order = sorted(liveness.values, key=lambda v: (-len(graph[v]), liveness.ranges[v]))
    position = {value: index for index, value in enumerate(order)}
    colour: Assignment = {}
    steps = 0

    def solve(index: int) -> set[int] | None:
        """None when order[index:] is coloured; else the positions that block it."""
        nonlocal steps
        if index == len(order):
            return None
        value = order[index]
        conflicts: set[int] = set()
        for register in range(registers):
            steps += 1
            if steps > SEARCH_STEPS:
                raise AllocationError(
                    f"backjump_recursive gave up after {SEARCH_STEPS} search steps without an "
                    f"assignment of {registers} registers ({liveness.describe_pressure()}); "
                    "it does not spill (use graph or try_all)"
                )
            blocking = [position[u] for u in graph[value] if colour.get(u) == register]
            if blocking:
                conflicts.add(min(blocking))
                continue
            colour[value] = register
            below = solve(index + 1)
            if below is None:
                return None
            del colour[value]
            if index not in below:
                return below  # this value is not to blame: jump further back
            conflicts |= below - {index}
        return conflicts

    if solve(0) is not None:
        raise AllocationError(
            f"backjump_recursive proved that {registers} registers do not suffice "
            f"({liveness.describe_pressure()}); it does not spill (use graph or try_all)"
        )
    return colour


# ---------------------------------------------------------------------------- graph colouring


@dataclass
class Spiller:
    """Spill code of one program: slots in the program's L1 spill buffer."""

    program: aipu.DpuOp
    scratch: Callable[[], SSAValue]
    spilled: list[tuple[SSAValue, list[Operation]]] = field(default_factory=list)
    unspillable: set[SSAValue] = field(default_factory=set)

    def spill(self, value: SSAValue, kinds: dict[SSAValue, bool]) -> None:
        """Store `value` after its definition and reload it before each micro-op reading it."""
        floats = kinds[value]
        store = aipu.DpuSpillOp(value, self.scratch(), 0, floats)
        Rewriter.insert_op(store, InsertPoint.after(value.owner))  # type: ignore[arg-type]
        reloads: list[Operation] = [store]
        for reader in dict.fromkeys(
            use.operation for use in value.uses if use.operation is not store
        ):
            reload = aipu.DpuReloadOp(self.scratch(), 0, floats)
            Rewriter.insert_op(reload, InsertPoint.before(reader))
            reader.operands = [reload.result if o is value else o for o in reader.operands]
            kinds[reload.result] = floats
            self.unspillable.add(reload.result)
            reloads.append(reload)
        self.spilled.append((value, reloads))

    def assign_slots(self) -> int:
        """Slots by linear scan over [spill, last reload] (in program order); the count."""
        order = {op: index for index, op in enumerate(self.program.body.block.ops)}
        spans = sorted((order[ops[0]], max(order[o] for o in ops), ops) for _, ops in self.spilled)
        slot_ends: list[int] = []
        for start, end, ops in spans:
            slot = next((s for s, e in enumerate(slot_ends) if e < start), len(slot_ends))
            if slot == len(slot_ends):
                slot_ends.append(end)
            slot_ends[slot] = end
            for op in ops:
                op.properties["slot"] = IntegerAttr(slot, i64)
        return len(slot_ends)


def _kinds(ops: Sequence[Operation]) -> dict[SSAValue, bool]:
    """Whether each value holds float lanes (float18), else int32."""
    kinds: dict[SSAValue, bool] = {}
    for op in ops:
        if not op.results:
            continue
        sources = _registers(op)
        if isinstance(op, _FLOAT_RESULTS):
            floats = True
        elif isinstance(op, _KIND_OF_FIRST):
            floats = kinds[sources[0]]
        elif isinstance(op, aipu.DpuSelectOp):
            floats = kinds[sources[1]]
        elif isinstance(op, aipu.DpuReloadOp):
            floats = op.float_lanes.value.data == 1
        else:
            floats = False
        kinds[op.results[0]] = floats
    return kinds


def graph_colouring(liveness: Liveness, registers: int, spiller: Spiller | None) -> Assignment:
    """Chaitin-Briggs: simplify (optimistically), select; spill what found no colour."""
    graph = liveness.graph()
    uses = {v: sum(1 for _ in v.uses) + 1 for v in liveness.values}
    remaining = {v: set(n) for v, n in graph.items()}
    stack: list[SSAValue] = []
    while remaining:
        easy = [v for v in remaining if len(remaining[v]) < registers]
        if easy:
            chosen = easy[0]
        else:  # optimistic: push the cheapest spill candidate and hope it colours
            spillable = [v for v in remaining if spiller is None or v not in spiller.unspillable]
            chosen = min(spillable or remaining, key=lambda v: uses[v] / len(remaining[v]))
        stack.append(chosen)
        for neighbour in remaining.pop(chosen):
            remaining[neighbour].discard(chosen)
    colour: Assignment = {}
    uncoloured = []
    for value in reversed(stack):
        taken = {colour[n] for n in graph[value] if n in colour}
        free = next((r for r in range(registers) if r not in taken), None)
        if free is None:
            uncoloured.append(value)
        else:
            colour[value] = free
    if uncoloured:
        raise _Uncoloured(uncoloured)
    return colour


class _Uncoloured(Exception):
    def __init__(self, values: list[SSAValue]):
        super().__init__(f"{len(values)} value(s) found no register")
        self.values = values


def _spill_choice(liveness: Liveness, spiller: Spiller) -> SSAValue | None:
    """The value to spill: live across the most crowded point, read again furthest away."""
    crowded = 2 * liveness.pressure()[1] + 1  # where that micro-op writes its result
    order = {op: index for index, op in enumerate(liveness.ops)}
    best, best_next = None, -1
    for value, (start, end) in liveness.ranges.items():
        if value in spiller.unspillable or not start < crowded <= end:
            continue
        reads = [order[use.operation] for use in value.uses if use.operation in order]
        upcoming = [2 * r for r in reads if 2 * r >= crowded]
        if upcoming and min(upcoming) > best_next:
            best, best_next = value, min(upcoming)
    return best


def graph(program: aipu.DpuOp, registers: int, spiller: Spiller) -> Assignment:
    kinds = _kinds(list(program.body.block.ops))
    for _ in range(SPILL_ROUNDS):
        liveness = Liveness(list(program.body.block.ops))
        try:
            return graph_colouring(liveness, registers, spiller)
        except _Uncoloured as failure:
            choice = _spill_choice(liveness, spiller)
            if choice is None:
                choice = next((v for v in failure.values if v not in spiller.unspillable), None)
            if choice is None:
                raise AllocationError(
                    f"graph colouring cannot fit one micro-op's operands in {registers} registers"
                ) from None
            spiller.spill(choice, kinds)  # one at a time: the rest may colour now
    raise AllocationError(f"graph colouring still spills after {SPILL_ROUNDS} rounds")


# ---------------------------------------------------------------------------- the pass

ORDER = (
    DPUAllocationAlgorithm.LAZY,
    DPUAllocationAlgorithm.BACKJUMP_RECURSIVE,
    DPUAllocationAlgorithm.GRAPH,
)


def allocate(
    program: aipu.DpuOp, algorithm: DPUAllocationAlgorithm, spiller: Spiller, registers: int
) -> None:
    """Registers for every value of `program` (spill code added by graph), or an error
    naming every algorithm tried and why it failed."""
    tried = ORDER if algorithm == DPUAllocationAlgorithm.TRY_ALL else (algorithm,)
    failures = []
    for name in tried:
        try:
            if name == DPUAllocationAlgorithm.GRAPH:
                assignment = graph(program, registers, spiller)
            else:
                method = lazy if name == DPUAllocationAlgorithm.LAZY else backjump_recursive
                assignment = method(Liveness(list(program.body.block.ops)), registers)
        except AllocationError as error:
            failures.append(str(error))
            continue
        for value, register in assignment.items():
            value.owner.attributes[REG_ATTR] = IntegerAttr(register, i64)  # type: ignore[union-attr]
        program.attributes["regalloc"] = StringAttr(str(name))
        program.attributes["spills"] = IntegerAttr(len(spiller.spilled), i64)
        return
    raise AllocationError("; ".join(failures))


@dataclass
class _Scratch:
    """The L1 spill buffer shared by the tiles of one DPU layer (one program buffer)."""

    core: int
    segment: aipu.SegmentOp
    slot_bytes: int
    buffer: mem.BufferOp | None = None
    placeholder: mem.BufferOp | None = None

    def value(self) -> SSAValue:
        if self.placeholder is None:
            placeholder_type = mem.BufferType([1, self.slot_bytes], i8, MemorySpace.L1)
            self.placeholder = mem.BufferOp(l1_pool_name(self.core), placeholder_type, size=0)
        return self.placeholder.buffer

    def finish(self, slots: int) -> None:
        """Replace the placeholder by the buffer of `slots` slots, before the segment."""
        if self.placeholder is None:
            return
        buffer_type = mem.BufferType([max(slots, 1), self.slot_bytes], i8, MemorySpace.L1)
        size = -(-buffer_type.nbytes // AIPU.pword_bytes) * AIPU.pword_bytes
        self.buffer = mem.BufferOp(l1_pool_name(self.core), buffer_type, size=size)
        Rewriter.insert_op(self.buffer, InsertPoint.before(self.segment))
        self.placeholder.buffer.replace_all_uses_with(self.buffer.buffer)


def _tile_elements(program: aipu.DpuOp) -> int:
    store = next(op for op in program.body.block.ops if isinstance(op, aipu.DpuStoreOp))
    shape = store.dest.type.get_shape()  # type: ignore[attr-defined]
    count = 1
    for size in shape:
        count *= size
    return count


@dataclass(frozen=True)
class DpuRegallocPass(AipucPass):
    name = "aipu-dpu-regalloc"

    dpu_allocation_algorithm: str = "try_all"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        allocate_programs(op, DPUAllocationAlgorithm(self.dpu_allocation_algorithm))


def allocate_programs(
    module: ModuleOp, algorithm: DPUAllocationAlgorithm, registers: int = AIPU.dpu_registers
) -> None:
    """Registers (and spill buffers) for every DPU program of `module`."""
    layers: dict[object, list[aipu.DpuOp]] = {}
    where: dict[aipu.DpuOp, tuple[aipu.SegmentOp, int]] = {}
    for segment in (o for o in module.ops if isinstance(o, aipu.SegmentOp)):
        for core in segment.body.block.ops:
            for program in core.walk():
                if isinstance(program, aipu.DpuOp):
                    key = program.program if program.program is not None else program
                    layers.setdefault(key, []).append(program)
                    where[program] = (segment, aipu._int(core.index))  # type: ignore[attr-defined]
    for programs in layers.values():
        segment, core = where[programs[0]]
        scratch = _Scratch(core, segment, 4 * max(_tile_elements(p) for p in programs))
        slots = 0
        for program in programs:
            spiller = Spiller(program, scratch.value)
            try:
                allocate(program, algorithm, spiller, registers)
            except AllocationError as error:
                raise CompilationError(
                    f"DPU register allocation ({algorithm}) failed for a program of "
                    f"segment {aipu._int(segment.index)}: {error}"
                ) from None
            slots = max(slots, spiller.assign_slots())
        scratch.finish(slots)
