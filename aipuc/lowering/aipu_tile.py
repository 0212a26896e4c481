"""`aipu-tile`: height and output-channel tiles so each layer's working set fits L1.

A layer's working set is the L1 staging its expansion allocates (input and output tiles,
partial sums, weightsets, tables); it is measured by expanding the layer for real on a
scratch builder, so tiling and bufferization can never disagree. Height tiles double from
1 for up to `max_tiling_attempts` attempts (an element-wise layer's, once its first non-1
axis is cut into single rows, go on doubling over its next axes); `force_h_tiling` and
`force_oc_tiling` fix the factors instead (a layer with ICR keeps one channel tile: its
copies share the columns of all its output channels); with `ignore_weight_buffers`
weightsets and kernels do not count (the memory planner still places them). The choice is
recorded on the layer, and the rules on the module, for `aipu-dfs` to tile depth-first
groups by them (it reads no tiling field):

    builtin.module attributes {aipu.tiling = #aipu.tiling<force_h_tiling = 4,
                                                          ignore_weight_buffers = true>} {
      %y = aipu.conv %x, %w, %t {..., tiles = array<i64: 4, 1>}
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

from aipuc.dialects import aipu
from aipuc.dialects.axq import shape_of
from aipuc.errors import CompilationError
from aipuc.lowering.conversion.common import logger
from aipuc.lowering.mem_bufferize import (
    ConvExpansion,
    EltwiseExpansion,
    PoolExpansion,
    SegmentBuilder,
)
from aipuc.lowering.mem_pools import l1_capacity, pools_of
from aipuc.passes import AipucPass

EXPANSIONS = {
    aipu.ConvLayerOp: ConvExpansion,
    aipu.PoolLayerOp: PoolExpansion,
    aipu.EltwiseOp: EltwiseExpansion,
}


TILING = "aipu.tiling"
"""The module attribute holding aipu-tile's rules (`aipu.TilingAttr`)."""


def tiling_of(module: ModuleOp) -> aipu.TilingAttr:
    """The tiling rules aipu-tile recorded on the module."""
    tiling = module.attributes.get(TILING)
    if not isinstance(tiling, aipu.TilingAttr):
        raise CompilationError(f"the module has no {TILING} attribute: run aipu-tile first")
    return tiling


def working_set(
    builder: SegmentBuilder, layer, tiles: tuple[int, int], tiling: aipu.TilingAttr
) -> int:
    """L1 bytes the layer's expansion stages with `tiles`, counted by `tiling`'s rules."""
    layer.tiles = aipu._array(tiles)
    builder.buffer_ops.clear()
    builder.buffers.clear()
    builder.weight_buffers.clear()
    EXPANSIONS[type(layer)](builder, layer)
    return tiling.l1_bytes(*builder.l1_bytes())


def _height_extents(layer) -> list[int]:
    """The axes a layer's height tiles split, outermost first ([1]: it cannot be tiled).

    An element-wise layer splits its leading non-1 axes flattened (`tiles.split_axes`).
    """
    if isinstance(layer, aipu.PoolLayerOp) and layer.is_global:
        return [1]
    shape = shape_of(layer.result)
    if isinstance(layer, aipu.EltwiseOp):
        return [n for n in shape[:-1] if n > 1] or [1]
    return [shape[1]]


@dataclass(frozen=True)
class AipuTilePass(AipucPass):
    name = "aipu-tile"

    max_tiling_attempts: int = 8
    force_h_tiling: int | None = None
    force_oc_tiling: int | None = None
    ignore_weight_buffers: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        limit = l1_capacity(op)
        tiling = aipu.TilingAttr(self.force_h_tiling, self.ignore_weight_buffers)
        op.attributes[TILING] = tiling
        builder = SegmentBuilder(0, pools_of(op))
        for layer in list(op.walk()):
            if type(layer) in EXPANSIONS:
                self._tile(builder, layer, limit, tiling)

    def _candidates(self, layer, tiling: aipu.TilingAttr) -> list[tuple[int, int]]:
        extents = _height_extents(layer)
        extent, total = extents[0], prod(extents)
        channels = self.force_oc_tiling or 1
        if not isinstance(layer, aipu.ConvLayerOp):
            channels = 1
        elif channels > 1 and aipu._int(layer.icr) > 1:
            logger.warning(
                f"force_oc_tiling={channels} ignored for {layer.name} at {layer.location}: its "
                f"ICR copies (icr={aipu._int(layer.icr)}) share the MVM columns of all its "
                "output channels"
            )
            channels = 1
        if (forced := tiling.forced_height(extent)) is not None:
            return [(forced, channels)]
        heights = []
        whole = (extent - 1).bit_length()  # the first attempt that tiles the first axis whole
        for attempt in range(self.max_tiling_attempts):
            tiles = 2**attempt if attempt < whole else min(extent << (attempt - whole), total)
            if tiles not in heights:
                heights.append(tiles)
        return [(h, channels) for h in heights]

    def _tile(self, builder: SegmentBuilder, layer, limit: int, tiling: aipu.TilingAttr) -> None:
        tried = []
        for tiles in self._candidates(layer, tiling):
            needed = working_set(builder, layer, tiles, tiling)
            tried.append(f"{tiles[0]}x{tiles[1]}: {needed} bytes")
            if needed <= limit:
                return
        raise CompilationError(
            f"Could not find a tiling factor that fits the memory constraints for "
            f"{layer.name} at {layer.location}: L1 holds {limit} bytes, tried (height x "
            f"channel tiles) {'; '.join(tried)}; raise max_tiling_attempts or l1_constraint, "
            "or change force_h_tiling/force_oc_tiling"
        )
