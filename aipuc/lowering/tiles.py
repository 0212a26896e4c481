"""Tile geometry: which rows each height tile reads and writes, grouped into uniform runs.

A layer split into `tiles` height tiles computes `ceil(out_h / tiles)` output rows per tile
(the last may be shorter) and reads the input rows their windows cover, clamped to the
input; the part of a window outside the input is that tile's own padding. Consecutive
tiles with the same sizes and padding form a `Run`, whose row offsets are affine in the
tile index, so one tile loop covers it: usually a first tile (top padding), a loop over the
middle tiles and a last tile (bottom padding, remainder rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """Height geometry of a sliding window (a 1x1 layer has kernel 1, stride 1)."""

    in_h: int
    out_h: int
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad_top: int = 0
    pad_bottom: int = 0
    extra: int = 0  # ceil_mode rows past the bottom padding (reached, never counted)

    @property
    def span(self) -> int:
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Run:
    """`count` tiles from tile `first` on: output rows `out_start + i * out_step`, ...

    All tiles of a run have `out_rows` output rows and read `in_rows` input rows from
    `in_start + i * in_step`, with padding `pad_top`/`pad_bottom`/`extra` of their own.
    """

    first: int
    count: int
    out_start: int
    out_step: int
    out_rows: int
    in_start: int
    in_step: int
    in_rows: int
    pad_top: int
    pad_bottom: int
    extra: int


def rows_per_tile(out_h: int, tiles: int) -> int:
    return -(-out_h // max(1, min(tiles, out_h)))


def _tile(window: Window, start: int, stop: int) -> tuple[int, int, int, int, int, int]:
    """(out rows, in start, in rows, pad top, pad bottom, extra) of output rows [start, stop)."""
    first = start * window.stride - window.pad_top
    last = (stop - 1) * window.stride - window.pad_top + window.span  # exclusive
    in_start, in_stop = max(first, 0), min(last, window.in_h)
    beyond = max(0, last - window.in_h)
    pad_bottom = min(beyond, window.pad_bottom)
    return (
        stop - start,
        in_start,
        in_stop - in_start,
        in_start - first,
        pad_bottom,
        beyond - pad_bottom,
    )


def runs(window: Window, tiles: int) -> list[Run]:
    """The uniform runs of `tiles` height tiles (fewer if out_h is smaller)."""
    size = rows_per_tile(window.out_h, tiles)
    found: list[Run] = []
    for index, start in enumerate(range(0, window.out_h, size)):
        out_rows, in_start, in_rows, top, bottom, extra = _tile(
            window, start, min(start + size, window.out_h)
        )
        if found:
            run = found[-1]
            same = (run.out_rows, run.in_rows, run.pad_top, run.pad_bottom, run.extra) == (
                out_rows,
                in_rows,
                top,
                bottom,
                extra,
            )
            step = in_start - run.in_start
            if (
                same
                and (run.count == 1 or step == run.in_step * run.count)
                and (run.count > 1 or step >= 0)
            ):
                in_step = run.in_step if run.count > 1 else step
                found[-1] = Run(
                    run.first,
                    run.count + 1,
                    run.out_start,
                    size,
                    out_rows,
                    run.in_start,
                    in_step,
                    in_rows,
                    top,
                    bottom,
                    extra,
                )
                continue
        found.append(Run(index, 1, start, size, out_rows, in_start, 0, in_rows, top, bottom, extra))
    return found


def split_axes(extents: Sequence[int], tiles: int) -> list[int]:
    """Tiles per axis of `tiles` tiles over axes of `extents` flattened (outermost first).

    An axis is cut in single rows before the next one is tiled, so tile counts within
    the first axis tile it alone, as they always did.
    """
    counts: list[int] = []
    for extent in extents:
        if tiles <= extent:
            return [*counts, tiles]
        counts.append(extent)
        tiles = -(-tiles // extent)
    return counts


def max_rows(window: Window, tiles: int) -> tuple[int, int]:
    """The most input and output rows any tile holds (its L1 buffers' height)."""
    found = runs(window, tiles)
    return max(r.in_rows for r in found), max(r.out_rows for r in found)


def group_runs(windows: list[Window], tiles: int) -> list[list[Run]]:
    """Depth-first tiles of a chain of layers: per run, one `Run` per layer (in order).

    The tiles split the last layer's output rows; each earlier layer computes exactly the
    rows the next one reads (its halo included), clamped to its own output. Consecutive
    tiles whose every layer has the same sizes and padding, and whose row offsets move by a
    constant step per layer, share one run.
    """
    last = windows[-1]
    size = rows_per_tile(last.out_h, tiles)
    per_tile = []
    for start in range(0, last.out_h, size):
        stop = min(start + size, last.out_h)
        layers = []
        for window in reversed(windows):
            out_rows, in_start, in_rows, top, bottom, extra = _tile(window, start, stop)
            layers.append((start, out_rows, in_start, in_rows, top, bottom, extra))
            start, stop = in_start, in_start + in_rows
        per_tile.append(layers[::-1])
    found: list[list[Run]] = []
    for index, layers in enumerate(per_tile):
        if found and _extends(found[-1], layers):
            found[-1] = [
                Run(
                    run.first,
                    run.count + 1,
                    run.out_start,
                    run.out_step if run.count > 1 else layer[0] - run.out_start,
                    run.out_rows,
                    run.in_start,
                    run.in_step if run.count > 1 else layer[2] - run.in_start,
                    run.in_rows,
                    run.pad_top,
                    run.pad_bottom,
                    run.extra,
                )
                for run, layer in zip(found[-1], layers, strict=True)
            ]
            continue
        found.append(
            [
                Run(index, 1, out_start, 0, out_rows, in_start, 0, in_rows, top, bottom, extra)
                for out_start, out_rows, in_start, in_rows, top, bottom, extra in layers
            ]
        )
    return found


def _extends(runs_: list[Run], layers) -> bool:
    for run, (out_start, out_rows, in_start, in_rows, top, bottom, extra) in zip(
        runs_, layers, strict=True
    ):
        if (run.out_rows, run.in_rows, run.pad_top, run.pad_bottom, run.extra) != (
            out_rows,
            in_rows,
            top,
            bottom,
            extra,
        ):
            return False
        out_step, in_step = out_start - run.out_start, in_start - run.in_start
        if run.count > 1 and (
            out_step != run.out_step * run.count or in_step != run.in_step * run.count
        ):
            return False
        if out_step < 0 or in_step < 0:
            return False
    return True
