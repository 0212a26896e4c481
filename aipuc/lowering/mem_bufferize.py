"""`mem-bufferize`: layers become buffers, tile loops, DMA transfers and unit tasks.

Each accelerated segment of @main (the layers between host ops) becomes an `aipu.segment`
holding one core's program; @main launches it with `aipu.launch`. Every device tensor gets
a buffer in its `home` pool (DDR when no home was chosen), constants with their contents.
Each layer expands into the tasks of its unit over L1 staging buffers:

    %y = aipu.conv %x, %w, %t {kernel = [3, 3], pads = [1, 1, 1, 1], tiles = [7, 1]}
becomes (the first and last height tiles have their own padding; the middle ones a loop)
    aipu.dma core ins(%t_view) outs(%t_l1)                  // requantization table
    aipu.dma core ins(%w_view) outs(%w_l1)                  // weights of the N chunk
    aipu.imc_load ins(%w_l1) weightset 0
    aipu.dma core ins(%x_rows_0_8) outs(%x_l1_9rows) ...    // first tile
    aipu.mvm ins(...) outs(...) requant(%t_l1) {pads = [1, 1, 0, 1], ...}
    aipu.dma core ins(%y_l1) outs(%y_rows_0_8)
    aipu.tile_loop %i = 0 to 5 { ... mem.view %x[0, 8 * %i + 7, 0, 0] ... }
    ... last tile ...

A tensor whose home is L1, constants included (the IMC load takes a row stride), is read
and written in place (no staging DMA). Tile loops
carry affine views, so the IR grows with layers, not with tiles.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, i8, i32
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc.dialects import aipu, mem
from aipuc.dialects.aipu import DmaEngine
from aipuc.dialects.tensors import dense_from_numpy, numpy_from_dense
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU, MemorySpace
from aipuc.lowering import tiles as tiling
from aipuc.lowering.mem_pools import pool_name, pools_of
from aipuc.passes import AipucPass
from aipuc.runtime.sim.isa import MICRO_OP_BYTES

DEVICE_OPS = (aipu.ToDeviceOp, aipu.ReinterpretOp, *aipu.LAYER_OPS)
"""Ops of an accelerated segment (constants join the segments that read them)."""


# ---------------------------------------------------------------------------------- indices


@dataclass(frozen=True)
class Index:
    """An affine offset: `const + sum(coefficient * induction variable)`."""

    const: int = 0
    terms: tuple[tuple[SSAValue, int], ...] = ()

    @staticmethod
    def of(iv: SSAValue | None, step: int, start: int = 0) -> Index:
        if iv is None or step == 0:
            return Index(start)
        return Index(start, ((iv, step),))

    def __add__(self, other: Index | int) -> Index:
        if isinstance(other, int):
            return Index(self.const + other, self.terms)
        return Index(self.const + other.const, self.terms + other.terms)

    def __mul__(self, factor: int) -> Index:
        return Index(self.const * factor, tuple((iv, c * factor) for iv, c in self.terms))


def view(source: SSAValue, offsets: Sequence[Index | int], sizes: Sequence[int]) -> mem.ViewOp:
    """A tile window of `source` at affine `offsets` (in elements)."""
    indices = [o if isinstance(o, Index) else Index(o) for o in offsets]
    steps: dict[SSAValue, list[int]] = {}
    for dim, index in enumerate(indices):
        for iv, coefficient in index.terms:
            steps.setdefault(iv, [0] * len(indices))[dim] += coefficient
    steps = {iv: c for iv, c in steps.items() if any(c)}
    return mem.ViewOp(source, [i.const for i in indices], list(sizes), steps=steps or None)


# ---------------------------------------------------------------------------------- blocks


class Emitter:
    """Appends tasks to a block (before a tile loop's terminator) and opens loops."""

    def __init__(self, block: Block):
        self.block = block

    def add(self, op: Operation) -> Operation:
        last = self.block.last_op
        if isinstance(last, aipu.YieldOp):
            self.block.insert_op_before(op, last)
        else:
            self.block.add_op(op)
        return op

    def value(self, op: Operation) -> SSAValue:
        return self.add(op).results[0]

    def view(self, source: SSAValue, offsets, sizes) -> SSAValue:
        return self.value(view(source, offsets, sizes))

    def repeat(self, count: int, body: Callable[[Emitter, SSAValue | None], None]) -> None:
        """`body` once (no loop) or in a tile loop of `count` iterations."""
        if count == 1:
            body(self, None)
            return
        loop = aipu.TileLoopOp(0, count)
        self.add(loop)
        body(Emitter(loop.body.block), loop.iv)

    def dma(self, source: SSAValue, dest: SSAValue) -> None:
        self.add(aipu.DmaOp(DmaEngine.CORE, source, dest))


# ---------------------------------------------------------------------------------- segments


def _main(module: ModuleOp) -> func.FuncOp:
    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
            return op
    raise CompilationError("the module has no func.func @main")


def partition(main: func.FuncOp) -> list[list[Operation]]:
    """The device ops of each accelerated segment, in order.

    A device op belongs to the segment after every host op it depends on: host ops that
    read a segment's results end it, and device ops that need them start the next one.
    """
    level: dict[SSAValue, int] = {arg: -1 for arg in main.body.block.args}
    segments: dict[int, list[Operation]] = {}
    for op in main.body.block.ops:
        if isinstance(op, aipu.ConstOp):
            continue
        inputs = [level.get(v, -1) for v in op.operands if not isinstance(v.owner, aipu.ConstOp)]
        if isinstance(op, aipu.ToDeviceOp):
            index = inputs[0] + 1
        elif isinstance(op, DEVICE_OPS):
            index = max(inputs, default=0)
        else:  # host side: as late as its latest device input
            index = max(inputs, default=-1)
            for result in op.results:
                level[result] = index
            continue
        index = max(index, 0)
        for result in op.results:
            level[result] = index
        segments.setdefault(index, []).append(op)
    return [segments[k] for k in sorted(segments)]


def buffer_bytes(memory: mem.MemoryType) -> int:
    """Bytes a buffer of this type takes: its dense size in whole PWORDs."""
    return -(-memory.nbytes // AIPU.pword_bytes) * AIPU.pword_bytes


@dataclass
class SegmentBuilder:
    """Buffers and the core program of one segment."""

    index: int
    pools: dict[str, mem.PoolOp]
    buffer_ops: list[Operation] = field(default_factory=list)
    buffers: dict[SSAValue, SSAValue] = field(default_factory=dict)
    weight_buffers: set[SSAValue] = field(default_factory=set)
    derived: dict[SSAValue, SSAValue] = field(default_factory=dict)
    """Buffers laid out afresh from a constant tensor (chunk-major weights) -> the tensor."""
    core: aipu.CoreOp = field(default_factory=lambda: aipu.CoreOp(0))

    @property
    def tasks(self) -> Emitter:
        return Emitter(self.core.body.block)

    # ------------------------------------------------------------------ buffers

    def new_buffer(self, space: MemorySpace, shape, element=i8, init=None) -> SSAValue:
        name = pool_name(space)
        if name not in self.pools:
            raise CompilationError(f"no {space} pool: run mem-pools before mem-bufferize")
        buffer_type = mem.BufferType(list(shape), element, space)
        op = mem.BufferOp(name, buffer_type, size=buffer_bytes(buffer_type), init=init)
        self.buffer_ops.append(op)
        return op.buffer

    def l1(self, shape, element=i8, *, weights: bool = False) -> SSAValue:
        """An L1 staging buffer; `weights` marks IMC weights and DWPU kernels."""
        buffer = self.new_buffer(MemorySpace.L1, shape, element)
        if weights:
            self.weight_buffers.add(buffer)
        return buffer

    def l1_bytes(self) -> tuple[int, int]:
        """Bytes of the L1 staging buffers created so far: (activations, weights)."""
        total = weights = 0
        for op in self.buffer_ops:
            if isinstance(op, mem.BufferOp) and op.buffer_type.space == MemorySpace.L1:
                size = op.size.value.data
                total += size
                weights += size if op.buffer in self.weight_buffers else 0
        return total - weights, weights

    def buffer(self, value: SSAValue) -> SSAValue:
        """The home buffer of a device tensor, created on first use."""
        if value in self.buffers:
            return self.buffers[value]
        owner = value.owner
        value_type = value.type
        assert isinstance(value_type, TensorType)
        if isinstance(owner, aipu.ReinterpretOp):
            source = self.buffer(owner.input)
            space = source.type.space  # type: ignore[attr-defined]
            result_type = mem.BufferType(value_type.get_shape(), value_type.element_type, space)
            alias = mem.ReinterpretOp(source, result_type)
            self.buffer_ops.append(alias)
            buffer = alias.result
        else:
            init = owner.value if isinstance(owner, aipu.ConstOp) else None
            buffer = self.new_buffer(
                home_space(owner), value_type.get_shape(), value_type.element_type, init
            )
        self.buffers[value] = buffer
        return buffer

    # ------------------------------------------------------------------ layers

    def lower(self, op: Operation) -> None:
        if getattr(op, "dfs_group", None) is not None:
            self._group(op)
        elif isinstance(op, aipu.ConvLayerOp):
            ConvExpansion(self, op).emit()
        elif isinstance(op, aipu.PoolLayerOp):
            PoolExpansion(self, op).emit()
        elif isinstance(op, aipu.EltwiseOp):
            EltwiseExpansion(self, op).emit()
        elif isinstance(op, aipu.MoveLayerOp):
            self._move(op)
        else:  # to_device, constants, reinterpretations: buffers only
            for result in op.results:
                self.buffer(result)

    def _group(self, op: Operation) -> None:
        """A depth-first group runs where its last member sits: by then every member's
        other operands (a residual add's second input, say) have been computed."""
        group = aipu._int(op.dfs_group)  # type: ignore[attr-defined]
        members = [
            o
            for o in op.parent_block().ops  # type: ignore[union-attr]
            if getattr(o, "dfs_group", None) is not None and aipu._int(o.dfs_group) == group
        ]
        if op is members[-1]:
            GroupExpansion(self, members).emit()

    def _move(self, op: aipu.MoveLayerOp) -> None:
        dest = self.buffer(op.result)
        if op.fill is not None:
            self.tasks.add(aipu.FillOp(dest, op.fill.value.data))
        for source, src_offset, dst_offset, sizes, src_strides, dst_strides in op.copy_list():
            self.tasks.add(
                aipu.DmaOp(
                    DmaEngine.CORE,
                    self.buffer(op.inputs[source]),
                    dest,
                    pattern=(sizes, src_strides, dst_strides),
                    offsets=(src_offset, dst_offset),
                )
            )


def home_space(owner: Operation) -> MemorySpace:
    """Where a layer's (or constant's) result lives: its `home`, else DDR."""
    home = getattr(owner, "home", None)
    return MemorySpace.DDR if home is None else home.data


def _space(buffer: SSAValue) -> MemorySpace:
    return buffer.type.space  # type: ignore[attr-defined]


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- MVM


def _pixel_rows(op: aipu.ConvLayerOp) -> bool:
    """A 1x1, unpadded layer with constant weights on a batch of 1x1 images."""
    batch, height, width, _ = _shape(op.input)
    return (
        batch > 1
        and height == width == 1
        and aipu._ints(op.kernel) == (1, 1)
        and not any(aipu._ints(op.pads))
        and len(_shape(op.weights)) == 2
    )


def _as_one_image(builder: SegmentBuilder, buffer: SSAValue) -> SSAValue:
    """A dense [B, 1, 1, C] buffer seen as [1, 1, B, C] (the same bytes)."""
    batch, _, _, channels = _shape(buffer)
    alias = mem.ReinterpretOp(buffer, mem.BufferType([1, 1, batch, channels], i8, _space(buffer)))
    builder.buffer_ops.append(alias)
    return alias.result


def _blocks(op: aipu.ConvLayerOp) -> int | None:
    """How many blocks of rows a layer's taps fall in, one tap per block, output row h
    reading row h of every block (a byte swap's conv, `swap_on_mvm`); None otherwise.

    Its input is `kernel` blocks of `dilation` rows and it writes `dilation` rows, stride 1
    and no height padding: a tile of output rows reads the same rows of each block only,
    not the span between them that its dilated window covers.
    """
    if any(aipu._ints(op.image_axes)):
        return None
    (k, _), (d, _) = aipu._ints(op.kernel), aipu._ints(op.dilation)
    _, in_h, _, _ = _shape(op.input)
    _, out_h, _, _ = _shape(op.result)
    stride, pads = aipu._ints(op.stride)[0], aipu._ints(op.pads)
    if k > 1 and d > 1 and stride == 1 and pads[0] == pads[2] == 0 and (in_h, out_h) == (k * d, d):
        return k
    return None


def _as_blocks(builder: SegmentBuilder, buffer: SSAValue, blocks: int) -> SSAValue:
    """A dense [B, blocks * R, W, C] buffer seen as [B, blocks, R, W, C] (the same bytes)."""
    batch, height, width, channels = _shape(buffer)
    shape = [batch, blocks, height // blocks, width, channels]
    alias = mem.ReinterpretOp(buffer, mem.BufferType(shape, i8, _space(buffer)))
    builder.buffer_ops.append(alias)
    return alias.result


class MvmExpansion:
    """The MVM work of a convolution or dense layer, wherever its tiles live.

    K (taps x `in_c` rows) splits into chunks of `k_chunk` rows, up to one per IMC weightset
    in a group; N into chunks of at most 64 columns (of all output channels with ICR, whose
    copies share the columns; smaller with channel tiles). For a tile of one N chunk, each
    group loads its weightsets and runs one MVM per K chunk, int32 partial sums in `acc`
    until the last chunk requantizes into the output tile:

        aipu.imc_load ins(%w_rows_0_512) weightset 0
        aipu.imc_load ins(%w_rows_512_576) weightset 1
        aipu.mvm ins(%x_tile) outs(%acc) {k = 512, k_start = 0, n = 24, channels = 8, ...}
        aipu.mvm ins(%x_tile, %acc) outs(%y_tile) requant(%t) {k = 64, k_start = 512, ...}

    The caller says where the tiles are: a layer stages them in L1 (`ConvExpansion`), a
    depth-first group computes them in its L1 tiles (`GroupExpansion`).
    """

    def __init__(self, op: aipu.ConvLayerOp):
        self.op = op
        self.kernel = aipu._ints(op.kernel)
        self.stride, self.dilation = aipu._ints(op.stride), aipu._ints(op.dilation)
        self.pads = aipu._ints(op.pads)
        self.icr, self.in_c = aipu._int(op.icr), aipu._int(op.in_c)
        self.depth = self.kernel[0] * self.kernel[1] * self.in_c
        rows = aipu._int(op.k_chunk)
        chunks = [(k0, min(rows, self.depth - k0)) for k0 in range(0, self.depth, rows)]
        sets = AIPU.imc_weightsets
        self.groups = [chunks[i : i + sets] for i in range(0, len(chunks), sets)]
        self.out_channels = _shape(op.result)[-1]
        channel_tiles = op.tile_counts()[1]
        self.n_chunk = (
            self.out_channels
            if self.icr > 1
            else min(AIPU.mvm_n, -(-self.out_channels // channel_tiles))
        )

    def acc(self, builder: SegmentBuilder, rows: int, width: int) -> SSAValue | None:
        """The L1 partial sums of `rows` x `width` pixels of an N chunk (one K chunk: none)."""
        if len(self.groups) == 1 and len(self.groups[0]) == 1:
            return None
        return builder.l1([1, rows, width, self.n_chunk], i32)

    def each_n_chunk(self, e: Emitter, body: Callable[[Emitter, Index, int], None]) -> None:
        """`body(e, j, n)` for the N chunks `j` of `n` columns: the full ones in a loop."""
        full, rest = divmod(self.out_channels, self.n_chunk)
        if full:
            e.repeat(full, lambda e2, j: body(e2, Index.of(j, 1), self.n_chunk))
        if rest:
            body(e, Index(full), rest)

    def load(self, e: Emitter, g: int, weightset: Callable[[int, int, int], SSAValue]) -> None:
        """IMC loads of group `g`; `weightset(c, k0, rows)` is the L1 view of its K chunk."""
        for c, (k0, rows) in enumerate(self.groups[g]):
            e.add(aipu.ImcLoadOp(weightset(c, k0, rows), c))

    def mvms(
        self, e: Emitter, g: int, run: tiling.Run, x, y, acc, requant, n: int, dilation=None
    ) -> None:
        """The MVMs of group `g` on the input tile `x`: the last K chunk writes `y`
        (`dilation`: the taps' in the tile, when not the layer's)."""
        group, op = self.groups[g], self.op
        pads = (run.pad_top, self.pads[1], run.pad_bottom, self.pads[3])
        for c, (k0, rows) in enumerate(group):
            first_chunk = g == 0 and c == 0
            last_chunk = g == len(self.groups) - 1 and c == len(group) - 1
            e.add(
                aipu.MvmOp(
                    x,
                    y if last_chunk else acc,
                    acc=None if first_chunk else acc,
                    requant=requant if last_chunk else None,
                    weightset=c,
                    k=rows,
                    n=n,
                    in_c=self.in_c,
                    channels=aipu._int(op.channels) if op.channels else None,
                    k_start=k0,
                    icr=self.icr,
                    swicr=aipu._flag(op.swicr),
                    in_zp=aipu._int(op.in_zp),
                    w_zp=aipu._int(op.w_zp),
                    kernel=self.kernel,
                    stride=self.stride,
                    dilation=dilation or self.dilation,
                    pads=pads,
                )
            )


class ConvExpansion:
    """An MVM layer: per N chunk the table and weightsets, then the height tiles.

    A layer of one tile (height and channels) keeps its input in L1 across the N chunks (one
    DMA in) and gathers all output channels there (one contiguous DMA out). A layer whose
    taps fall in blocks of rows (`_blocks`) stages a tile's rows of each block, block after
    block, so its taps' dilation in L1 is the tile's rows (not the layer's). Constant weights
    of several N chunks are stored chunk-major, so each weightset is one contiguous DMA. A
    1x1 layer on
    a batch of single pixels (a dense layer's rows) runs as one image of that many pixels,
    so its weights load once rather than once per row. Images stored token-major
    (`image_axes`, attention heads) are strided views of their tensor, read and written in
    place.
    """

    def __init__(self, builder: SegmentBuilder, op: aipu.ConvLayerOp):
        self.b, self.op = builder, op
        self.mvm = mvm = MvmExpansion(op)
        self.x, self.y = builder.buffer(op.input), builder.buffer(op.result)
        self.x_axis, self.w_axis, self.y_axis = aipu._ints(op.image_axes)
        if _pixel_rows(op):
            self.x, self.y = _as_one_image(builder, self.x), _as_one_image(builder, self.y)
            self.batch, self.in_h, self.in_w, self.lanes = _shape(self.x)
            _, self.out_h, self.out_w, self.out_channels = _shape(self.y)
        else:
            self.batch, self.in_h, self.in_w, self.lanes = op.image_shape(op.input)
            _, self.out_h, self.out_w, self.out_channels = op.image_shape(op.result)
        # staged block by block: a tile reads its own rows of every block, like a 1x1 layer
        self.blocks = _blocks(op) if _space(self.x) != MemorySpace.L1 else None
        window = (
            tiling.Window(self.out_h, self.out_h)
            if self.blocks
            else tiling.Window(
                self.in_h,
                self.out_h,
                mvm.kernel[0],
                mvm.stride[0],
                mvm.dilation[0],
                mvm.pads[0],
                mvm.pads[2],
            )
        )
        self.runs = tiling.runs(window, op.tile_counts()[0])
        # one tile in all: the input stays in L1 across N chunks, the output gathers there
        self.single = len(self.runs) == 1 and self.runs[0].count == 1 and op.tile_counts()[1] == 1
        in_rows, out_rows = tiling.max_rows(window, op.tile_counts()[0])
        self.weights, self.per_image, self.blocked = self._weight_matrix(builder, op)
        self.table = builder.buffer(op.table)
        self.x_l1 = (
            None
            if _space(self.x) == MemorySpace.L1
            else builder.l1([1, (self.blocks or 1) * in_rows, self.in_w, self.lanes])
        )
        if self.blocks:
            self.block_rows = in_rows
            self.x_blocks = _as_blocks(builder, self.x, self.blocks)
            self.x_l1_blocks = _as_blocks(builder, self.x_l1, self.blocks)
        y_channels = self.out_channels if self.single else mvm.n_chunk
        self.y_l1 = (
            None
            if _space(self.y) == MemorySpace.L1
            else builder.l1([1, out_rows, self.out_w, y_channels])
        )
        # a table or weights already in L1 are read in place (the IMC load takes a row stride)
        self.t_l1 = (
            None if _space(self.table) == MemorySpace.L1 else builder.l1([mvm.n_chunk, 4], i32)
        )
        columns = mvm.n_chunk * mvm.icr
        self.w_l1 = (
            None
            if _space(self.weights) == MemorySpace.L1
            else [
                builder.l1([max(g[c][1] for g in mvm.groups if c < len(g)), columns], weights=True)
                for c in range(len(mvm.groups[0]))
            ]
        )
        acc_rows = out_rows if len(mvm.groups) == 1 else self.out_h
        self.acc = mvm.acc(builder, acc_rows, self.out_w)

    def _weight_matrix(
        self, builder: SegmentBuilder, op: aipu.ConvLayerOp
    ) -> tuple[SSAValue, bool, bool]:
        """(the weights buffer as the DMAs read it, one matrix per image?, chunk-major?)."""
        owner = op.weights.owner
        shape = _shape(op.weights)
        n_chunk, depth = self.mvm.n_chunk, self.mvm.depth
        if isinstance(owner, aipu.ConstOp) and len(shape) == 2 and self.out_channels > n_chunk:
            # chunk j's [K, n_chunk] columns as rows j*K.. of one [chunks * K, n_chunk] matrix
            chunks = -(-self.out_channels // n_chunk)
            matrix = np.zeros((depth, chunks * n_chunk), np.int8)
            matrix[:, : self.out_channels] = numpy_from_dense(owner.value)
            blocked = matrix.reshape(depth, chunks, n_chunk).transpose(1, 0, 2)
            blocked = blocked.reshape(chunks * depth, n_chunk)
            init = dense_from_numpy(blocked)
            matrix_buffer = builder.new_buffer(home_space(owner), blocked.shape, i8, init)
            builder.derived[matrix_buffer] = op.weights
            return matrix_buffer, False, True
        weights = builder.buffer(op.weights)
        if len(shape) == 3:  # computed weights, one matrix per image: [images * K, N] or,
            # images on axis 1, [K, images * N]
            rows, columns = (
                (shape[0], shape[1] * shape[2])
                if self.w_axis == 1
                else (shape[0] * shape[1], shape[2])
            )
            flat = mem.ReinterpretOp(weights, mem.BufferType([rows, columns], i8, _space(weights)))
            builder.buffer_ops.append(flat)
            return flat.result, True, False
        return weights, False, False

    def _image(self, e: Emitter, buffer: SSAValue, axis: int, at: list, sizes: list[int]):
        """The view of [b, row, column, channel] `at` of `sizes` in an input or output
        buffer whose images sit on `axis` (0, or 2 of [1, H, images, C]: one column each)."""
        if axis == 0:
            return e.view(buffer, at, sizes)
        b, row, _, channel = at
        return e.view(buffer, [0, row, b, channel], [1, sizes[1], 1, sizes[3]])

    def emit(self) -> None:
        run = self.runs[0]
        x_whole = [1, run.in_rows, self.in_w, self.lanes]
        y_whole = [1, run.out_rows, self.out_w, self.out_channels]

        def batch(e: Emitter, b: SSAValue | None) -> None:
            bi = Index.of(b, 1)
            if self.single and self.blocks:
                self._stage_blocks(e, bi, run.in_start, run.in_rows)
            elif self.single and self.x_l1 is not None:
                x = self._image(e, self.x, self.x_axis, [bi, run.in_start, 0, 0], x_whole)
                e.dma(x, self.x_l1)
            self.mvm.each_n_chunk(e, lambda e2, j, n: self._chunk(e2, j, n, bi))
            if self.single and self.y_l1 is not None:
                y = self._image(e, self.y, self.y_axis, [bi, run.out_start, 0, 0], y_whole)
                e.dma(self.y_l1, y)

        self.b.tasks.repeat(self.batch, batch)

    def _chunk(self, e: Emitter, j: Index, n: int, b: Index) -> None:
        first = j * self.mvm.n_chunk
        if self.t_l1 is not None:
            e.dma(e.view(self.table, [first, 0], [n, 4]), e.view(self.t_l1, [0, 0], [n, 4]))
        for g in range(len(self.mvm.groups)):
            self.mvm.load(e, g, lambda c, k0, rows: self._weightset(e, c, k0, rows, j, n, b))
            for run in self.runs:
                e.repeat(
                    run.count,
                    lambda e2, t, run=run, g=g: self._tile(e2, run, Index.of(t, 1), first, n, b, g),
                )

    def _weightset(self, e: Emitter, c: int, k0: int, rows: int, j: Index, n: int, b: Index):
        """The L1 view of K chunk `k0` of N chunk `j`: in place, or DMA'd into weightset
        `c`'s L1 buffer."""
        depth, columns = self.mvm.depth, n * self.mvm.icr
        first = j * self.mvm.n_chunk * self.mvm.icr
        if self.blocked:
            at: list[Index | int] = [j * depth + k0, 0]
        elif self.per_image and self.w_axis == 1:  # [K, images, N]
            at = [Index(k0), b * _shape(self.op.weights)[2] + first]
        elif self.per_image:
            at = [b * depth + k0, first]
        else:
            at = [k0, first]
        if self.w_l1 is None:
            return e.view(self.weights, at, [rows, columns])
        w_l1 = e.view(self.w_l1[c], [0, 0], [rows, columns])
        e.dma(e.view(self.weights, at, [rows, columns]), w_l1)
        return w_l1

    def _tile(self, e: Emitter, run: tiling.Run, t: Index, first: Index, n: int, b: Index, g: int):
        in_row = t * run.in_step + run.in_start
        out_row = t * run.out_step + run.out_start
        x_home = [b, in_row, 0, 0]
        x_size = [1, run.in_rows, self.in_w, self.lanes]
        dilation = None
        if self.x_l1 is None:
            x = self._image(e, self.x, self.x_axis, x_home, x_size)
        elif self.blocks:
            x = self._stage_blocks(e, b, in_row, run.in_rows, dma=not self.single)
            dilation = (self.block_rows, self.mvm.dilation[1])
        else:
            x = e.view(self.x_l1, [0, 0, 0, 0], x_size)
            if not self.single:
                e.dma(self._image(e, self.x, self.x_axis, x_home, x_size), x)
        y_size = [1, run.out_rows, self.out_w, n]
        y_home = [b, out_row, 0, first]
        y = (
            self._image(e, self.y, self.y_axis, y_home, y_size)
            if self.y_l1 is None
            else e.view(self.y_l1, [0, 0, 0, first if self.single else 0], y_size)
        )
        acc = None
        if self.acc is not None:
            acc_row = 0 if len(self.mvm.groups) == 1 else out_row
            acc = e.view(self.acc, [0, acc_row, 0, 0], y_size)
        if self.t_l1 is None:
            table = e.view(self.table, [first, 0], [n, 4])
        else:
            table = e.view(self.t_l1, [0, 0], [n, 4])
        self.mvm.mvms(e, g, run, x, y, acc, table, n, dilation)
        last_group = g == len(self.mvm.groups) - 1
        if self.y_l1 is not None and not self.single and last_group:
            e.dma(y, self._image(e, self.y, self.y_axis, y_home, y_size))

    def _stage_blocks(
        self, e: Emitter, b: Index, row: Index | int, rows: int, dma: bool = True
    ) -> SSAValue:
        """Rows [row, row + rows) of every block of image `b` into L1, block after block
        (`block_rows` apart); the L1 view the MVM reads them through."""
        block = [1, self.blocks, rows, self.in_w, self.lanes]
        if dma:
            e.dma(
                e.view(self.x_blocks, [b, 0, row, 0, 0], block),
                e.view(self.x_l1_blocks, [0, 0, 0, 0, 0], block),
            )
        height = (self.blocks - 1) * self.block_rows + rows
        return e.view(self.x_l1, [0, 0, 0, 0], [1, height, self.in_w, self.lanes])


# ---------------------------------------------------------------------------------- DWPU


class PoolExpansion:
    """A DWPU layer: kernels and table into L1 once, then the height tiles."""

    def __init__(self, builder: SegmentBuilder, op: aipu.PoolLayerOp):
        self.b, self.op = builder, op
        self.x, self.y = builder.buffer(op.input), builder.buffer(op.result)
        self.batch, self.in_h, self.in_w, self.channels = _shape(self.x)
        _, self.out_h, self.out_w, _ = _shape(self.y)
        self.mode = op.mode.data
        kernel = aipu._ints(op.kernel)
        pads, extra = aipu._ints(op.pads), aipu._ints(op.extra)
        if op.is_global:
            window = tiling.Window(self.in_h, 1, self.in_h)
            self.runs = tiling.runs(window, 1)
        else:
            window = tiling.Window(
                self.in_h,
                self.out_h,
                kernel[0],
                aipu._ints(op.stride)[0],
                aipu._ints(op.dilation)[0],
                pads[0],
                pads[2],
                extra[0],
            )
            self.runs = tiling.runs(window, op.tile_counts()[0])
        in_rows, out_rows = tiling.max_rows(window, 1 if op.is_global else op.tile_counts()[0])
        self.x_l1 = (
            None
            if _space(self.x) == MemorySpace.L1
            else builder.l1([1, in_rows, self.in_w, self.channels])
        )
        self.y_l1 = (
            None
            if _space(self.y) == MemorySpace.L1
            else builder.l1([1, out_rows, self.out_w, self.channels])
        )
        self.staged = {}  # name -> (home, its L1 copy, or the home itself when in L1)
        for name in ("weights", "table"):
            value = getattr(op, name)
            if value is not None:
                home = builder.buffer(value)
                self.staged[name] = (
                    home,
                    home
                    if _space(home) == MemorySpace.L1
                    else builder.l1(
                        _shape(home), home.type.element_type, weights=name == "weights"
                    ),
                )

    def emit(self) -> None:
        tasks = self.b.tasks
        for home, l1 in self.staged.values():
            if l1 is not home:
                tasks.dma(home, l1)

        def batch(e: Emitter, b: SSAValue | None) -> None:
            for run in self.runs:
                e.repeat(
                    run.count,
                    lambda e2, t, run=run: self._tile(e2, run, Index.of(t, 1), Index.of(b, 1)),
                )

        tasks.repeat(self.batch, batch)

    def _tile(self, e: Emitter, run: tiling.Run, t: Index, b: Index) -> None:
        op = self.op
        x_size = [1, run.in_rows, self.in_w, self.channels]
        x_home = [b, t * run.in_step + run.in_start, 0, 0]
        if self.x_l1 is None:
            x = e.view(self.x, x_home, x_size)
        else:
            x = e.view(self.x_l1, [0, 0, 0, 0], x_size)
            e.dma(e.view(self.x, x_home, x_size), x)
        out_rows = 1 if op.is_global else run.out_rows
        y_size = [1, out_rows, self.out_w, self.channels]
        y_home = [b, t * run.out_step + run.out_start, 0, 0]
        y = (
            e.view(self.y, y_home, y_size)
            if self.y_l1 is None
            else e.view(self.y_l1, [0, 0, 0, 0], y_size)
        )
        pads = aipu._ints(op.pads)
        window = (
            {}
            if op.is_global
            else {
                "kernel": aipu._ints(op.kernel),
                "stride": aipu._ints(op.stride),
                "dilation": aipu._ints(op.dilation),
                "pads": (run.pad_top, pads[1], run.pad_bottom, pads[3]),
                "extra": (run.extra, aipu._ints(op.extra)[1]),
            }
        )
        e.add(
            aipu.DwpuOp(
                self.mode,
                x,
                y,
                weights=self.staged["weights"][1] if "weights" in self.staged else None,
                requant=self.staged["table"][1] if "table" in self.staged else None,
                count_include_pad=aipu._flag(op.count_include_pad),
                per_channel=aipu._flag(op.per_channel),
                **window,
            )
        )
        if self.y_l1 is not None:
            e.dma(y, e.view(self.y, y_home, y_size))


# ---------------------------------------------------------------------------------- DPU


class EltwiseExpansion:
    """A DPU layer: tiles along its outer axes; broadcast inputs and tables staged once.

    Its tiles split its leading non-1 axes flattened (`tiles.split_axes`): the outer ones
    into single rows, each in a tile loop, the innermost tiled one into runs of rows.
    """

    def __init__(self, builder: SegmentBuilder, op: aipu.EltwiseOp):
        self.b, self.op = builder, op
        self.y = builder.buffer(op.result)
        self.shape = _shape(self.y)
        axes = [a for a, n in enumerate(self.shape[:-1]) if n > 1]
        counts = tiling.split_axes([self.shape[a] for a in axes], op.tile_counts()[0])
        self.outer = [(a, n) for a, n in zip(axes, counts[:-1], strict=False)]
        self.axis = axes[len(counts) - 1] if counts else None
        extent = 1 if self.axis is None else self.shape[self.axis]
        window = tiling.Window(extent, extent)
        self.runs = tiling.runs(window, counts[-1] if counts else 1)
        self.rows = {a: 1 for a, _ in self.outer}
        if self.axis is not None:
            self.rows[self.axis] = tiling.max_rows(window, counts[-1])[1]
        self.inputs = [builder.buffer(v) for v in op.inputs]
        self.tiled = [any(_shape(x)[a] > 1 for a in self.rows) for x in self.inputs]
        self.staged: dict[SSAValue, SSAValue] = {}
        for x in self.inputs:
            if _space(x) != MemorySpace.L1 and x not in self.staged:
                self.staged[x] = builder.l1(self._tile_shape(_shape(x)), x.type.element_type)  # type: ignore[attr-defined]
        self.tables = {}
        for micro in op.body.walk():
            for operand in micro.operands:
                if isinstance(operand.type, TensorType) and operand not in self.tables:
                    home = builder.buffer(operand)
                    self.tables[operand] = (
                        home,
                        home
                        if _space(home) == MemorySpace.L1
                        else builder.l1(_shape(home), home.type.element_type),
                    )
        self.y_l1 = (
            None
            if _space(self.y) == MemorySpace.L1
            else builder.l1(self._tile_shape(self.shape), self.y.type.element_type)
        )
        micro_ops = len(op.inputs) + len(op.body.block.ops)  # loads, the program, its store
        self.program = builder.new_buffer(MemorySpace.DDR, [micro_ops * MICRO_OP_BYTES])

    def _tile_shape(self, shape) -> list[int]:
        """A tile of `shape`: its tiled axes cut to the tile's rows (broadcast ones stay 1)."""
        return [self.rows[a] if a in self.rows and n > 1 else n for a, n in enumerate(shape)]

    def emit(self) -> None:
        tasks = self.b.tasks
        for home, l1 in self.tables.values():
            if l1 is not home:
                tasks.dma(home, l1)
        for x, tiled in zip(self.inputs, self.tiled, strict=True):
            if not tiled and x in self.staged:
                tasks.dma(x, self.staged[x])
        self._nest(tasks, 0, {})

    def _nest(self, e: Emitter, depth: int, starts: dict[int, Index]) -> None:
        """The tile loop of outer axis `depth` around the next ones, then the runs."""
        if depth < len(self.outer):
            axis, count = self.outer[depth]
            e.repeat(
                count,
                lambda e2, t: self._nest(e2, depth + 1, {**starts, axis: Index.of(t, 1)}),
            )
            return
        for run in self.runs:
            e.repeat(
                run.count,
                lambda e2, t, run=run: self._tile(
                    e2, run, {**starts, self.axis: Index.of(t, run.out_step, run.out_start)}
                ),
            )

    def _window(self, shape, rows: dict, starts: dict) -> tuple[list, list[int]]:
        offsets: list[Index | int] = [0] * len(shape)
        sizes = list(shape)
        for axis, start in starts.items():
            if axis is not None and shape[axis] > 1:
                offsets[axis] = start
                sizes[axis] = rows[axis]
        return offsets, sizes

    def _tile(self, e: Emitter, run: tiling.Run, starts: dict) -> None:
        rows = {**self.rows, self.axis: run.out_rows}
        loads = []
        for x, tiled in zip(self.inputs, self.tiled, strict=True):
            offsets, sizes = self._window(_shape(x), rows, starts)
            if x not in self.staged:
                loads.append(e.view(x, offsets, sizes))
                continue
            local = e.view(self.staged[x], [0] * len(sizes), sizes)
            if tiled:
                e.dma(e.view(x, offsets, sizes), local)
            loads.append(local)
        offsets, sizes = self._window(self.shape, rows, starts)
        y = (
            e.view(self.y, offsets, sizes)
            if self.y_l1 is None
            else e.view(self.y_l1, [0] * len(sizes), sizes)
        )
        e.add(aipu.DpuOp(self._program(loads, y), program=self.program))
        if self.y_l1 is not None:
            e.dma(y, e.view(self.y, offsets, sizes))

    def _program(self, loads: list[SSAValue], store: SSAValue) -> Region:
        return dpu_program(self.op, loads, store, {t: l1 for t, (_, l1) in self.tables.items()})


def dpu_program(
    layer: aipu.EltwiseOp, loads: list[SSAValue], store: SSAValue, tables: dict
) -> Region:
    """The layer's micro-ops with loads for its inputs and a store of its result."""
    block = Block()
    mapping: dict[SSAValue, SSAValue] = dict(tables)
    for arg, source in zip(layer.body.block.args, loads, strict=True):
        load = aipu.DpuLoadOp(source)
        block.add_op(load)
        mapping[arg] = load.result
    for micro in layer.body.block.ops:
        if isinstance(micro, aipu.DpuYieldOp):
            block.add_op(aipu.DpuStoreOp(mapping[micro.value], store))
            continue
        block.add_op(micro.clone(value_mapper=mapping))
    return Region(block)


# ---------------------------------------------------------------------------------- groups


def chain_input(layer) -> SSAValue:
    """The operand through which a layer of a depth-first group reads its predecessor."""
    if isinstance(layer, aipu.EltwiseOp):
        # rows are tiled: never an operand broadcast along them (a squeeze-excitation scale)
        height = _shape(layer.result)[1]
        full = [v for v in layer.inputs if _shape(v)[1] == height]
        producers = [v for v in full if isinstance(v.owner, aipu.LAYER_OPS)]
        return (producers or full)[0]
    return layer.input


def window_of(layer) -> tiling.Window:
    """The height window of a layer that can join a depth-first group."""
    in_h = _shape(chain_input(layer))[1]
    out_h = _shape(layer.result)[1]
    if isinstance(layer, aipu.EltwiseOp):
        return tiling.Window(in_h, out_h)
    pads = aipu._ints(layer.pads)
    extra = aipu._ints(layer.extra)[0] if isinstance(layer, aipu.PoolLayerOp) else 0
    return tiling.Window(
        in_h,
        out_h,
        aipu._ints(layer.kernel)[0],
        aipu._ints(layer.stride)[0],
        aipu._ints(layer.dilation)[0],
        pads[0],
        pads[2],
        extra,
    )


@dataclass
class Place:
    """Where a tile lives: a buffer and the offsets of the tile's first element."""

    buffer: SSAValue
    offsets: list

    def view(self, e: Emitter, sizes, channel: Index | int = 0) -> SSAValue:
        """The tile view, moved `channel` along the innermost (channel) axis."""
        offsets = [*self.offsets[:-1], Index(0) + self.offsets[-1] + channel]
        return e.view(self.buffer, offsets, sizes)


class GroupExpansion:
    """A depth-first group: a chain of layers run tile by tile over the last one's rows.

    Each tile computes, layer after layer, exactly the rows the next layer reads (halos
    recomputed), in L1: the intermediate tensors never leave L1, which is what saves DMA
    traffic to L2 and DDR. Weights and tables of every member are staged in L1 once; the
    IMC weightsets are reloaded per tile and layer.
    """

    def __init__(self, builder: SegmentBuilder, layers: list[Operation]):
        self.b, self.layers = builder, layers
        self.x = builder.buffer(chain_input(layers[0]))
        self.y = builder.buffer(layers[-1].result)
        tiles = layers[-1].tile_counts()[0]
        self.runs = tiling.group_runs([window_of(layer) for layer in layers], tiles)
        count = len(layers)
        in_rows = max(run[0].in_rows for run in self.runs)
        out_rows = [max(run[k].out_rows for run in self.runs) for k in range(count)]
        x_shape = list(_shape(self.x))
        self.x_l1 = (
            None
            if _space(self.x) == MemorySpace.L1
            else builder.l1([1, in_rows, *x_shape[2:]], self.x.type.element_type)
        )
        self.inter = []
        for k, layer in enumerate(layers[:-1]):
            shape = list(_shape(layer.result))
            self.inter.append(
                builder.l1([1, out_rows[k], *shape[2:]], layer.result.type.element_type)
            )
        y_shape = list(_shape(self.y))
        self.y_l1 = (
            None
            if _space(self.y) == MemorySpace.L1
            else builder.l1([1, out_rows[-1], *y_shape[2:]], self.y.type.element_type)
        )
        self.staged: list[tuple[SSAValue, SSAValue]] = []  # (home, L1 copy), loaded once
        self.local: dict[SSAValue, SSAValue] = {}  # device tensor -> its L1 copy
        self.mvm: dict[Operation, MvmExpansion] = {}
        self.acc: dict[Operation, SSAValue | None] = {}
        self.tiled_inputs: dict[SSAValue, SSAValue] = {}
        self.programs: dict[Operation, SSAValue] = {}
        for k, layer in enumerate(layers):
            self._stage(layer, out_rows[k])

    def _copy(self, value: SSAValue, weights: bool = False) -> SSAValue:
        if value not in self.local:
            home = self.b.buffer(value)
            if _space(home) == MemorySpace.L1:
                self.local[value] = home
            else:
                local = self.b.l1(_shape(home), home.type.element_type, weights=weights)
                self.staged.append((home, local))
                self.local[value] = local
        return self.local[value]

    def _stage(self, layer, out_rows: int) -> None:
        if isinstance(layer, aipu.ConvLayerOp):
            self._copy(layer.weights, weights=True)
            self._copy(layer.table)
            self.mvm[layer] = MvmExpansion(layer)
            self.acc[layer] = self.mvm[layer].acc(self.b, out_rows, _shape(layer.result)[2])
        elif isinstance(layer, aipu.PoolLayerOp):
            for value in (layer.weights, layer.table):
                if value is not None:
                    self._copy(value, weights=value is layer.weights)
        else:
            chained = chain_input(layer)
            for value in layer.inputs:
                if value is chained or value in self.tiled_inputs:
                    continue
                if _shape(value)[1] == 1:
                    self._copy(value)  # broadcast along the rows: whole, once
                else:
                    home = self.b.buffer(value)
                    self.tiled_inputs[value] = (
                        home
                        if _space(home) == MemorySpace.L1
                        else (self.b.l1([1, out_rows, *_shape(value)[2:]], home.type.element_type))
                    )
            for micro in layer.body.walk():
                for operand in micro.operands:
                    if isinstance(operand.type, TensorType):
                        self._copy(operand)
            micro_ops = len(layer.inputs) + len(layer.body.block.ops)
            self.programs[layer] = self.b.new_buffer(MemorySpace.DDR, [micro_ops * MICRO_OP_BYTES])

    def emit(self) -> None:
        tasks = self.b.tasks
        for home, local in self.staged:
            tasks.dma(home, local)
        for run in self.runs:
            tasks.repeat(run[0].count, lambda e, t, run=run: self._tile(e, run, Index.of(t, 1)))

    def _tile(self, e: Emitter, run: list[tiling.Run], t: Index) -> None:
        first = run[0]
        x_shape = list(_shape(self.x))
        x_sizes = [1, first.in_rows, *x_shape[2:]]
        x_home = [0, t * first.in_step + first.in_start, 0, 0]
        if self.x_l1 is None:
            source = Place(self.x, x_home)
        else:
            e.dma(e.view(self.x, x_home, x_sizes), e.view(self.x_l1, [0, 0, 0, 0], x_sizes))
            source = Place(self.x_l1, [0, 0, 0, 0])
        last = len(self.layers) - 1
        for k, (layer, r) in enumerate(zip(self.layers, run, strict=True)):
            if k < last:
                dest = Place(self.inter[k], [0, 0, 0, 0])
            elif self.y_l1 is None:
                dest = Place(self.y, [0, t * r.out_step + r.out_start, 0, 0])
            else:
                dest = Place(self.y_l1, [0, 0, 0, 0])
            compute = {
                aipu.ConvLayerOp: self._conv,
                aipu.PoolLayerOp: self._pool,
                aipu.EltwiseOp: self._eltwise,
            }[type(layer)]
            compute(e, layer, r, t, source, dest)
            source = dest
        if self.y_l1 is not None:
            r = run[-1]
            sizes = [1, r.out_rows, *_shape(self.y)[2:]]
            e.dma(
                e.view(self.y_l1, [0, 0, 0, 0], sizes),
                e.view(self.y, [0, t * r.out_step + r.out_start, 0, 0], sizes),
            )

    def _conv(self, e, layer: aipu.ConvLayerOp, r: tiling.Run, t, source: Place, dest: Place):
        """Every N chunk of the tile: its weightsets from the layer's weights in L1."""
        mvm, acc = self.mvm[layer], self.acc[layer]
        x = source.view(e, [1, r.in_rows, *_shape(chain_input(layer))[2:]])
        weights, table = self.local[layer.weights], self.local[layer.table]
        out_w = _shape(layer.result)[2]

        def chunk(e2: Emitter, j: Index, n: int) -> None:
            first = j * mvm.n_chunk
            sizes = [1, r.out_rows, out_w, n]
            y = dest.view(e2, sizes, first)
            acc_tile = None if acc is None else e2.view(acc, [0, 0, 0, 0], sizes)
            requant = e2.view(table, [first, 0], [n, 4])
            columns = n * mvm.icr
            for g in range(len(mvm.groups)):
                mvm.load(
                    e2,
                    g,
                    lambda c, k0, rows: e2.view(weights, [k0, first * mvm.icr], [rows, columns]),
                )
                mvm.mvms(e2, g, r, x, y, acc_tile, requant, n)

        mvm.each_n_chunk(e, chunk)

    def _pool(self, e, layer: aipu.PoolLayerOp, r: tiling.Run, t, source: Place, dest: Place):
        x = source.view(e, [1, r.in_rows, *_shape(chain_input(layer))[2:]])
        y = dest.view(e, [1, r.out_rows, *_shape(layer.result)[2:]])
        pads = aipu._ints(layer.pads)
        e.add(
            aipu.DwpuOp(
                layer.mode.data,
                x,
                y,
                weights=None if layer.weights is None else self.local[layer.weights],
                requant=None if layer.table is None else self.local[layer.table],
                kernel=aipu._ints(layer.kernel),
                stride=aipu._ints(layer.stride),
                dilation=aipu._ints(layer.dilation),
                pads=(r.pad_top, pads[1], r.pad_bottom, pads[3]),
                extra=(r.extra, aipu._ints(layer.extra)[1]),
                count_include_pad=aipu._flag(layer.count_include_pad),
                per_channel=aipu._flag(layer.per_channel),
            )
        )

    def _eltwise(self, e, layer: aipu.EltwiseOp, r: tiling.Run, t, source: Place, dest: Place):
        shape = list(_shape(layer.result))
        sizes = [1, r.out_rows, *shape[2:]]
        chained = chain_input(layer)
        loads = []
        for value in layer.inputs:
            if value is chained:
                loads.append(source.view(e, sizes))
            elif value in self.tiled_inputs:
                local, home = self.tiled_inputs[value], self.b.buffer(value)
                row = t * r.out_step + r.out_start
                value_sizes = [1, r.out_rows, *_shape(value)[2:]]
                if local is home:
                    loads.append(e.view(home, [0, row, 0, 0], value_sizes))
                else:
                    tile = e.view(local, [0, 0, 0, 0], value_sizes)
                    e.dma(e.view(home, [0, row, 0, 0], value_sizes), tile)
                    loads.append(tile)
            else:
                loads.append(self.local[value])
        store = dest.view(e, sizes)
        tables = {
            v: self.local[v]
            for micro in layer.body.walk()
            for v in micro.operands
            if isinstance(v.type, TensorType)
        }
        e.add(aipu.DpuOp(dpu_program(layer, loads, store, tables), program=self.programs[layer]))


# ---------------------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class MemBufferizePass(AipucPass):
    name = "mem-bufferize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pools = pools_of(op)
        main = _main(op)
        for index, ops in enumerate(partition(main)):
            builder = SegmentBuilder(index, pools)
            for device_op in ops:
                builder.lower(device_op)
            self._launch(main, builder, ops)
        for const in [o for o in main.body.block.ops if isinstance(o, aipu.ConstOp)]:
            Rewriter.erase_op(const, safe_erase=False)
        _sort(main.body.block)

    def _launch(self, main: func.FuncOp, builder: SegmentBuilder, ops: list[Operation]) -> None:
        """Replace the segment's ops in @main by an `aipu.launch` of its `aipu.segment`."""
        enters = [o for o in ops if isinstance(o, aipu.ToDeviceOp)]
        exits = list(
            dict.fromkeys(
                use.operation
                for o in ops
                for r in o.results
                for use in r.uses
                if isinstance(use.operation, aipu.FromDeviceOp)
            )
        )
        segment = aipu.SegmentOp(
            builder.index,
            [builder.buffer(o.result) for o in enters],
            [builder.buffer(o.input) for o in exits],
            [aipu._ints(o.perm) for o in enters],
            [aipu._ints(o.perm) for o in exits],
            Region(Block([builder.core])),
        )
        Rewriter.insert_op([*builder.buffer_ops, segment], InsertPoint.before(main))
        launch = aipu.LaunchOp(
            builder.index, [o.input for o in enters], [o.result.type for o in exits]
        )
        Rewriter.insert_op(launch, InsertPoint.before(ops[0]))
        for leave, result in zip(exits, launch.outputs, strict=True):
            leave.result.replace_all_uses_with(result)
            Rewriter.erase_op(leave)
        for dead in reversed(ops):
            Rewriter.erase_op(dead, safe_erase=False)


def _sort(block: Block) -> None:
    """Reorder a block topologically, keeping the existing order where it is valid."""
    ops = list(block.ops)
    position = {op: i for i, op in enumerate(ops)}
    waiting = {
        op: {o.owner for o in op.operands if o.owner in position and o.owner is not op}
        for op in ops
    }
    users: dict[Operation, list[Operation]] = {op: [] for op in ops}
    for op, needs in waiting.items():
        for need in needs:
            users[need].append(op)  # type: ignore[index]
    ready = [(position[op], id(op), op) for op in ops if not waiting[op]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, op = heapq.heappop(ready)
        order.append(op)
        for user in users[op]:
            waiting[user].discard(op)
            if not waiting[user]:
                heapq.heappush(ready, (position[user], id(user), user))
    for op in order:
        op.detach()
        block.add_op(op)
