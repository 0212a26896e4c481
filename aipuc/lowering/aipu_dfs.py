"""`aipu-dfs`: depth-first tiling: chains of layers run tile by tile, intermediates in L1.

With `tiling_depth` > 1, a chain of up to that many layers, each reading only its
predecessor's result (a single use, not a segment output), all height-tileable on NHWC
tensors of one image (convolutions with constant weights, windowed pooling, element-wise
programs), runs as one group: per tile of the last layer's output, every layer computes
exactly the rows the next one needs (halos recomputed), so the intermediate tensors live
only in L1 and never travel to L2 or DDR. The group's members get the same `dfs_group` and
the group's height tile count (they keep their output-channel tiles):

    %a = aipu.conv %x, ... {dfs_group = 0, tiles = array<i64: 4, 1>}
    %b = aipu.eltwise(%a) ... {dfs_group = 0, tiles = array<i64: 4, 1>}
    %c = aipu.pool max %b ... {dfs_group = 0, tiles = array<i64: 4, 1>}

The search goes through the layers in order and, at each one, through the candidates
longest chain first and, per chain, height tiles 1, 2, 4, ...; it takes the first
candidate whose L1 working set (measured by expanding the group on a scratch builder, as
aipu-tile does for single layers) fits beside the tensors mem-promote already put in L1
that are alive while the group runs. `dfs_search_constraint` caps how many candidates
are tried per start layer (the vendor's `search_space[:dfs_search_constraint]`).

Group tiles follow the rules aipu-tile recorded on the module (`aipu.tiling`): with
`force_h_tiling` the one candidate tile count per chain is that many tiles of the last
layer's rows (fewer if it has fewer rows), so every member runs in those tiles, each
computing its rows for the tile (halos included). The members' weights and kernels always
count against L1, whatever `ignore_weight_buffers` says: a group stages them whole and keeps
them in L1 for its whole run, so leaving them out only picks groups whose plan cannot fit
(ResNet-50 with tiling_depth 4 needed 5.9 MB of a 3.5 MB L1 with the default config).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation

from aipuc.dialects import aipu
from aipuc.hardware import MemorySpace
from aipuc.lowering.aipu_tile import tiling_of
from aipuc.lowering.mem_bufferize import GroupExpansion, SegmentBuilder, chain_input
from aipuc.lowering.mem_pools import l1_capacity, pools_of
from aipuc.lowering.mem_promote import LayerProgram, root, tensor_operands
from aipuc.passes import AipucPass

MAX_GROUP_TILES = 64


def _groupable(layer: Operation) -> bool:
    if isinstance(layer, aipu.ConvLayerOp):
        return len(layer.weights.type.get_shape()) == 2 and _one_image(layer)  # type: ignore[attr-defined]
    if isinstance(layer, aipu.PoolLayerOp):
        return not layer.is_global and _one_image(layer)
    if isinstance(layer, aipu.EltwiseOp):
        shape = layer.result.type.get_shape()  # type: ignore[attr-defined]
        if len(shape) != 4 or shape[0] != 1 or shape[1] == 1:
            return False
        return all(
            v.type.get_shape()[1] in (1, shape[1])  # type: ignore[attr-defined]
            for v in layer.inputs
        )
    return False


class ResidentL1:
    """Tensors homed in L1 (by mem-promote) and their lifetimes in layer steps."""

    def __init__(self, program: LayerProgram):
        self.program = program
        self.step = {layer: step for step, layer in enumerate(program.layers)}
        for step in range(program.steps):  # sizes as mem-bufferize stores them
            program.expand(step, tasks=False)

    def beside(self, members: list[Operation]) -> int:
        """L1 bytes of the resident tensors alive at some step of a group's `members` that
        they neither read nor write (those the group's expansion counts itself)."""
        steps = [self.step[layer] for layer in members]
        first, last = min(steps), max(steps)
        touched = {root(v) for layer in members for v in (*tensor_operands(layer), layer.result)}
        return sum(
            tensor.size
            for value, tensor in self.program.tensors.items()
            if tensor.owner.home is not None  # type: ignore[attr-defined]
            and tensor.home == MemorySpace.L1
            and value not in touched
            and tensor.first <= last
            and first <= tensor.last
        )


def _one_image(layer) -> bool:
    return layer.result.type.get_shape()[0] == 1 and len(layer.result.type.get_shape()) == 4


def _next_in_chain(layer: Operation) -> Operation | None:
    """The layer that alone reads `layer`'s result, if it continues a chain."""
    uses = list(layer.results[0].uses)
    if len(uses) != 1:
        return None
    user = uses[0].operation
    if not _groupable(user) or chain_input(user) is not layer.results[0]:
        return None
    return user


@dataclass(frozen=True)
class AipuDfsPass(AipucPass):
    name = "aipu-dfs"

    tiling_depth: int = 1
    dfs_search_constraint: int | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.tiling_depth < 2:
            return
        capacity = l1_capacity(op)
        tiling = tiling_of(op)
        resident = ResidentL1(LayerProgram(op))
        builder = SegmentBuilder(0, pools_of(op))
        grouped: set[Operation] = set()
        group = 0
        for layer in list(op.walk()):
            if layer in grouped or not _groupable(layer):
                continue
            chain = [layer]
            while len(chain) < self.tiling_depth and (after := _next_in_chain(chain[-1])):
                chain.append(after)
            found = self._search(builder, chain, capacity, resident, tiling)
            if found is None:
                continue
            members, tiles = found
            for member in members:
                member.dfs_group = IntegerAttr(group, i64)
                member.tiles = aipu._array((tiles, member.tile_counts()[1]))
                grouped.add(member)
            group += 1

    def _candidates(self, chain: list[Operation], tiling: aipu.TilingAttr) -> list[tuple[int, int]]:
        height = chain[-1].result.type.get_shape()[1]  # type: ignore[attr-defined]
        forced = tiling.forced_height(height)
        tile_counts = [] if forced is None else [forced]
        count = 1
        while forced is None and count <= min(height, MAX_GROUP_TILES):
            tile_counts.append(count)
            count *= 2
        space = [(length, tiles) for length in range(len(chain), 1, -1) for tiles in tile_counts]
        if self.dfs_search_constraint is not None:
            space = space[: max(1, self.dfs_search_constraint)]
        return space

    def _search(
        self,
        builder: SegmentBuilder,
        chain: list[Operation],
        capacity: int,
        resident: ResidentL1,
        tiling: aipu.TilingAttr,
    ):
        """The first candidate group (members, tiles) of `chain` whose expansion's L1
        buffers, weights included, fit in L1 beside the resident tensors the members do
        not touch."""
        saved = [(layer.tiles, layer.dfs_group) for layer in chain]
        channels = [layer.tile_counts()[1] for layer in chain]
        try:
            for length, tiles in self._candidates(chain, tiling):
                members = chain[:length]
                for member, channel_tiles in zip(members, channels, strict=False):
                    member.tiles = aipu._array((tiles, channel_tiles))
                builder.buffer_ops.clear()
                builder.buffers.clear()
                builder.weight_buffers.clear()
                GroupExpansion(builder, members)
                if sum(builder.l1_bytes()) <= capacity - resident.beside(members):
                    return members, tiles
        finally:
            for layer, (tiles, dfs_group) in zip(chain, saved, strict=True):
                layer.tiles, layer.dfs_group = tiles, dfs_group
        return None
