"""`mem-promote`: every device tensor's home pool, then promotion DDR -> L2 -> L1 where it pays.

Initial homes come from the config: segment inputs and outputs (`aipu.to_device` results and
tensors that `aipu.from_device` reads) from `io_memory_pool`, constants from
`constant_memory_pool`, every other layer result from `workspace_memory_pool`:

    %x = aipu.to_device %in {perm = ...}                 // io_memory_pool
    %y = aipu.conv %x, %w, %t {tiles = ...}
becomes
    %x = aipu.to_device %in {home = #mem<space global.ddr>, perm = ...}
    %y = aipu.conv %x, %w, %t {home = #mem<space global.l1>, tiles = ...}

With `enable_buffer_promotion` the pass then moves tensors up, level by level in
`promote_to` (L2, then L1), greedily by benefit: the bytes of DMA traffic to and from the
tensor's home that promotion saves, per byte of capacity it takes. A tensor moves only if
its pool has room at every program step of its lifetime (a step is one layer; constants
live throughout). L1 room counts the L1 staging every layer needs, measured by expanding
the layer for real on a scratch builder as `aipu-tile` does; a tensor in L1 needs no staging
in the layers that read or write it, so promoting it also shrinks theirs. After L1, room
that the L1 promotions freed in L2 is filled again. Constants whose home a config field
fixes (`pinned` by aipu-dpu-constants) are never promoted.

Traffic is what the expansions move: a convolution reads its input once per output-channel
chunk and height tile (halos included), writes its output once, loads weights once per
chunk. Promoting to L2 moves that traffic from DDR to L2; promoting to L1 removes it from
both (constants in L1, weights and tables, are read in place: no staging copy).

`split_buffer_promotion` runs L2 and L1 promotion as two instances of this pass with
depth-first tiling between them (see `aipuc.lowering.stage`).

Promotion fills L1 up to the bytes alive at once, but mem-plan's placement of those bytes
can need more (fragmentation). `l1_headroom` is how many bytes of L1 the promotion leaves
free at every step: after promoting to L1, the tensors it promoted go back, least valuable
per byte first (to L2 when it has room, else where they came from), until every step
that one of them lives at has that headroom. The lowering stage raises it after a failed
L1 plan (`aipuc.pipeline.run_stage`); the module's `mem.promotion` then records it:

    builtin.module attributes {mem.promotion = {l1_headroom = 4096 : i64,
                               demoted = 2 : i64, demoted_bytes = 5120 : i64}}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, TensorType, i64
from xdsl.ir import Block, Operation, SSAValue

from aipuc.dialects import aipu, mem
from aipuc.errors import CompilationError
from aipuc.hardware import MemorySpace
from aipuc.lowering.aipu_tile import EXPANSIONS
from aipuc.lowering.mem_bufferize import SegmentBuilder, _main, buffer_bytes, partition
from aipuc.lowering.mem_pools import pool_name, pools_of
from aipuc.passes import AipucPass

PROMOTION_ATTR = "mem.promotion"
"""Module attribute, with an L1 headroom: the headroom and the tensors sent back to make it."""


def promotion_record(module: ModuleOp) -> dict[str, int] | None:
    """`PROMOTION_ATTR` as integers (`l1_headroom`, `demoted`, `demoted_bytes`), if set."""
    entry = module.attributes.get(PROMOTION_ATTR)
    if entry is None:
        return None
    return {key: value.value.data for key, value in entry.data.items()}  # type: ignore[union-attr]


class TensorKind(StrEnum):
    IO = "io"
    CONSTANT = "constant"
    WORKSPACE = "workspace"


@dataclass(eq=False)
class Tensor:
    """A device tensor with its own storage (reinterpretations alias their source)."""

    owner: Operation
    kind: TensorKind
    size: int
    """Bytes its buffers take (a constant read by several segments has one copy in each)."""
    copies: int
    """How many buffers hold it (one per segment that reads a constant)."""
    first: int
    last: int
    layers: set[int] = field(default_factory=set)
    """Steps of the layers that read or write it: their staging depends on its home."""
    traffic: int = 0
    """DMA bytes to and from its home when it is not in L1, over the whole program."""

    @property
    def pinned(self) -> bool:
        return getattr(self.owner, "pinned", None) is not None

    @property
    def home(self) -> MemorySpace:
        return self.owner.home.data  # type: ignore[attr-defined]

    @home.setter
    def home(self, space: MemorySpace) -> None:
        self.owner.home = mem.MemorySpaceAttr(space)  # type: ignore[attr-defined]


def root(value: SSAValue) -> SSAValue:
    """The tensor that owns the storage of `value` (through reinterpretations)."""
    while isinstance(value.owner, aipu.ReinterpretOp):
        value = value.owner.input
    return value


def tensor_operands(op: Operation) -> Iterable[SSAValue]:
    """Device tensors a layer reads, its DPU program's tables included."""
    for inner in op.walk():
        for operand in inner.operands:
            if isinstance(operand.type, TensorType):
                yield operand


def _size(value: SSAValue) -> int:
    tensor_type = value.type
    assert isinstance(tensor_type, TensorType)
    shape = tensor_type.get_shape()
    return buffer_bytes(mem.BufferType(shape, tensor_type.element_type, MemorySpace.DDR))


class LayerProgram:
    """@main at the layer level: one step per layer, segment after segment (as mem-plan
    orders tasks), and every device tensor's lifetime in those steps."""

    def __init__(self, module: ModuleOp):
        self.pools = pools_of(module)
        main = _main(module)
        self.layers: list[Operation | None] = []
        self.tensors: dict[SSAValue, Tensor] = {}
        const_segments: dict[SSAValue, set[int]] = {}
        segment_of: dict[SSAValue, tuple[int, int]] = {}
        for index, ops in enumerate(partition(main)):
            first = len(self.layers)
            layers = [op for op in ops if isinstance(op, aipu.LAYER_OPS)]
            last = first + max(len(layers), 1) - 1
            for op in ops:
                if isinstance(op, aipu.ToDeviceOp):
                    self._add(op.result, TensorKind.IO, first)
                elif isinstance(op, aipu.LAYER_OPS):
                    step = len(self.layers)
                    self.layers.append(op)
                    for operand in tensor_operands(op):
                        source = root(operand)
                        if isinstance(source.owner, aipu.ConstOp):
                            const_segments.setdefault(source, set()).add(index)
                            self._add(source, TensorKind.CONSTANT, 0)
                        self._use(source, step)
                    self._add(op.result, TensorKind.WORKSPACE, step)
                    self.tensors[op.result].layers.add(step)
                for result in op.results:
                    segment_of[result] = (first, last)
            if not layers:  # a segment without layers still takes a step
                self.layers.append(None)
        if not self.layers:  # no segment at all: one empty step
            self.layers.append(None)
        steps = len(self.layers)
        for source, segments in const_segments.items():
            tensor = self.tensors[source]
            tensor.first, tensor.last = 0, steps - 1
            tensor.copies = len(segments)
            tensor.size *= tensor.copies
        for op in main.body.block.ops:
            if isinstance(op, aipu.FromDeviceOp):
                source = root(op.input)
                tensor = self.tensors[source]
                tensor.kind = TensorKind.IO
                tensor.last = max(tensor.last, segment_of.get(source, (0, steps - 1))[1])
        self.steps = steps

    def _add(self, value: SSAValue, kind: TensorKind, step: int) -> None:
        if value not in self.tensors:
            self.tensors[value] = Tensor(value.owner, kind, _size(value), 1, step, step)

    def _use(self, value: SSAValue, step: int) -> None:
        tensor = self.tensors[value]
        tensor.last = max(tensor.last, step)
        tensor.layers.add(step)

    # ------------------------------------------------------------------ expansions

    def expand(self, step: int, tasks: bool = True) -> tuple[int, dict[SSAValue, int]]:
        """The layer's L1 staging bytes and (with `tasks`) the DMA bytes per tensor, with the
        current homes; staging alone needs only the expansion's buffers, not its tasks.
        A constant the expansion lays out afresh (chunk-major weights, their output
        channels padded to whole chunks) takes the size of that buffer from then on."""
        layer = self.layers[step]
        if layer is None:
            return 0, {}
        builder = SegmentBuilder(0, self.pools)
        if tasks:
            builder.lower(layer)
        elif type(layer) in EXPANSIONS:
            EXPANSIONS[type(layer)](builder, layer)
        homes = {}
        pairs = [*builder.buffers.items(), *((v, b) for b, v in builder.derived.items())]
        for value, buffer in pairs:
            if isinstance(buffer.owner, mem.BufferOp):
                homes[buffer.owner] = root(value)
        for buffer, value in builder.derived.items():
            tensor = self.tensors[root(value)]
            stored = buffer.owner.size.value.data  # type: ignore[union-attr]
            tensor.size = max(tensor.size, stored * tensor.copies)
        staging = sum(
            op.size.value.data
            for op in builder.buffer_ops
            if isinstance(op, mem.BufferOp)
            and op.buffer_type.space == MemorySpace.L1
            and op not in homes
        )
        moved: dict[SSAValue, int] = {}
        for buffer, nbytes in _dma_bytes(builder.core.body.block, 1).items():
            if buffer in homes:
                moved[homes[buffer]] = moved.get(homes[buffer], 0) + nbytes
        return staging, moved


def _dma_bytes(block: Block, factor: int, found: dict | None = None) -> dict[mem.BufferOp, int]:
    """Bytes each buffer sends or receives by DMA (or fill) in `block`, loops unrolled."""
    found = {} if found is None else found
    for op in block.ops:
        if isinstance(op, aipu.TileLoopOp):
            trips = aipu._int(op.ub) - aipu._int(op.lb)
            _dma_bytes(op.body.block, factor * trips, found)
        elif isinstance(op, aipu.DmaOp):
            memory = op.source.type
            assert isinstance(memory, mem.MemoryType)
            pattern = op.pattern()
            count = memory.element_count if pattern is None else int(np.prod(pattern[0]))
            nbytes = count * memory.element_type.size * factor
            for end in (op.source, op.dest):
                buffer = mem.root_buffer(end)
                found[buffer] = found.get(buffer, 0) + nbytes
        elif isinstance(op, aipu.FillOp):
            memory = op.dest.type
            assert isinstance(memory, mem.MemoryType)
            buffer = mem.root_buffer(op.dest)
            found[buffer] = found.get(buffer, 0) + memory.nbytes * factor
    return found


# ---------------------------------------------------------------------------------- promotion


class Promoter:
    """Greedy promotion with per-step usage of L2 and L1 (homes plus L1 staging)."""

    def __init__(self, program: LayerProgram):
        self.program = program
        self.capacity = {
            space: program.pools[pool_name(space)].capacity.value.data
            for space in (MemorySpace.L2, MemorySpace.L1)
        }
        steps = program.steps
        self.staging = np.zeros(steps, np.int64)
        for step in range(steps):
            staging, moved = program.expand(step)
            self.staging[step] = staging
            for value, nbytes in moved.items():
                program.tensors[value].traffic += nbytes
        self.usage = {space: np.zeros(steps, np.int64) for space in self.capacity}
        for tensor in program.tensors.values():
            if tensor.home in self.usage:
                self.usage[tensor.home][tensor.first : tensor.last + 1] += tensor.size
        self.in_l1: list[tuple[Tensor, MemorySpace]] = []
        """Tensors promoted to L1, best first, with the home each came from."""

    def candidates(self, below: Iterable[MemorySpace]) -> list[Tensor]:
        """Tensors homed in `below` that promotion would save traffic for, best first."""
        found = [
            (index, t)
            for index, t in enumerate(self.program.tensors.values())
            if t.home in below and t.traffic > 0 and not t.pinned
        ]
        found.sort(key=lambda it: (-it[1].traffic / it[1].size, -it[1].traffic, it[0]))
        return [t for _, t in found]

    def promote_l2(self) -> int:
        promoted = 0
        usage, capacity = self.usage[MemorySpace.L2], self.capacity[MemorySpace.L2]
        for tensor in self.candidates([MemorySpace.DDR]):
            span = slice(tensor.first, tensor.last + 1)
            if usage[span].max() + tensor.size <= capacity:
                usage[span] += tensor.size
                tensor.home = MemorySpace.L2
                promoted += 1
        return promoted

    def promote_l1(self) -> int:
        promoted = 0
        for tensor in self.candidates([MemorySpace.DDR, MemorySpace.L2]):
            promoted += self._try_l1(tensor)
        return promoted

    def demote_l1(self, headroom: int) -> list[Tensor]:
        """Send tensors promoted to L1 back, least valuable per byte first, while a step one
        of them lives at leaves less than `headroom` bytes of L1 free (homes and staging)."""
        limit = self.capacity[MemorySpace.L1] - headroom
        demoted = [
            tensor
            for tensor, came_from in reversed(self.in_l1)
            if self._demote(tensor, came_from, limit)
        ]
        self.in_l1 = [entry for entry in self.in_l1 if entry[0] not in demoted]
        return demoted

    def _demote(self, tensor: Tensor, came_from: MemorySpace, limit: int) -> bool:
        """Move `tensor` to L2 (or, without room there, back where it came from) if a step
        of its lifetime needs more than `limit` bytes of L1 and the move makes room: the
        layers touching it stage less of it than it takes, so no step needs more."""
        span = slice(tensor.first, tensor.last + 1)
        need = self._l1_need(span, self.staging)
        crowded = need > limit
        if not crowded.any():
            return False
        l2 = self.usage[MemorySpace.L2]
        room = l2[span].max() + tensor.size <= self.capacity[MemorySpace.L2]
        tensor.home = MemorySpace.L2 if room else came_from
        staging = self.staging.copy()
        for step in tensor.layers:
            staging[step] = self.program.expand(step, tasks=False)[0]
        after = self._l1_need(span, staging) - tensor.size
        if (after > need).any() or not (after[crowded] < need[crowded]).any():
            tensor.home = MemorySpace.L1
            return False
        self.staging = staging
        self.usage[MemorySpace.L1][span] -= tensor.size
        if tensor.home == MemorySpace.L2:
            l2[span] += tensor.size
        return True

    def _l1_need(self, span: slice, staging: np.ndarray) -> np.ndarray:
        return self.usage[MemorySpace.L1][span] + staging[span]

    def _try_l1(self, tensor: Tensor) -> bool:
        capacity = self.capacity[MemorySpace.L1]
        span = slice(tensor.first, tensor.last + 1)
        touched = sorted(tensor.layers)
        # at best the layers touching it need no staging at all: skip hopeless ones cheaply
        optimistic = self.staging.copy()
        optimistic[touched] = 0
        if (self._l1_need(span, optimistic) + tensor.size > capacity).any():
            return False
        old_home = tensor.home
        tensor.home = MemorySpace.L1
        staging = self.staging.copy()
        for step in touched:
            staging[step] = self.program.expand(step, tasks=False)[0]
        if (self._l1_need(span, staging) + tensor.size > capacity).any():
            tensor.home = old_home
            return False
        self.staging = staging
        self.usage[MemorySpace.L1][span] += tensor.size
        if old_home == MemorySpace.L2:
            self.usage[MemorySpace.L2][span] -= tensor.size
        self.in_l1.append((tensor, old_home))
        return True


# ---------------------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class MemPromotePass(AipucPass):
    name = "mem-promote"

    io_memory_pool: str = MemorySpace.DDR.value
    constant_memory_pool: str = MemorySpace.DDR.value
    workspace_memory_pool: str = MemorySpace.DDR.value
    enable_buffer_promotion: bool = True
    promote_to: tuple[str, ...] = (MemorySpace.L2.value, MemorySpace.L1.value)
    """Levels to promote to, in order; with L2 before L1, L2 is refilled after L1."""
    l1_headroom: int = 0
    """Bytes of L1 that promotion leaves free for mem-plan's fragmentation (see above)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        program = LayerProgram(op)
        pools = {
            TensorKind.IO: self.io_memory_pool,
            TensorKind.CONSTANT: self.constant_memory_pool,
            TensorKind.WORKSPACE: self.workspace_memory_pool,
        }
        for tensor in program.tensors.values():
            if tensor.owner.home is None:  # type: ignore[attr-defined]
                tensor.home = _space(pools[tensor.kind])
        if not self.enable_buffer_promotion:
            return
        levels = [_space(level) for level in self.promote_to]
        if MemorySpace.DDR in levels:
            raise CompilationError("mem-promote promotes to global.l2 or global.l1, not DDR")
        promoter = Promoter(program)
        for level in levels:
            if level == MemorySpace.L2:
                promoter.promote_l2()
            else:
                promoter.promote_l1()
                if self.l1_headroom > 0:
                    demoted = promoter.demote_l1(self.l1_headroom)
                    op.attributes[PROMOTION_ATTR] = DictionaryAttr(
                        {
                            "l1_headroom": IntegerAttr(self.l1_headroom, i64),
                            "demoted": IntegerAttr(len(demoted), i64),
                            "demoted_bytes": IntegerAttr(sum(t.size for t in demoted), i64),
                        }
                    )
        if levels[-1] == MemorySpace.L1 and MemorySpace.L2 in levels[:-1]:
            promoter.promote_l2()


def _space(name: str) -> MemorySpace:
    try:
        return MemorySpace(name)
    except ValueError:
        valid = ", ".join(s.value for s in MemorySpace)
        raise CompilationError(f"unknown memory pool '{name}'; valid: {valid}") from None
