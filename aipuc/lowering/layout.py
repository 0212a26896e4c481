"""Device layouts and the strided copies that move tensors between them.

A device tensor stores its logical axes in the order `perm` (innermost last), densely:
4-D activations of spatial ops are NHWC (`perm = (0, 2, 3, 1)`), everything else keeps its
logical order. Data movement (reshape, transpose, slice, concat, pad, nearest resize) is a
list of `Copy`s: blocks of up to `MAX_DIMS` axes with element strides into the dense source
and destination, which the DMA executes directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aipuc.runtime.sim.isa import MAX_DIMS

NHWC = (0, 2, 3, 1)


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def token_major(rank: int) -> tuple[int, ...]:
    """Attention heads [.., H, T, D] stored as [.., T, H, D]: the order of the tensor the
    head split transposes and the head merge gives back, so neither moves a byte."""
    return (*range(rank - 3), rank - 2, rank - 3, rank - 1)


def physical_shape(shape: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(shape[axis]) for axis in perm)


def logical_strides(shape: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
    """Element stride of each logical axis in the dense physical layout."""
    physical = physical_shape(shape, perm)
    dense, step = [0] * len(physical), 1
    for position in range(len(physical) - 1, -1, -1):
        dense[position] = step
        step *= physical[position]
    strides = [0] * len(shape)
    for position, axis in enumerate(perm):
        strides[axis] = dense[position]
    return tuple(strides)


@dataclass(frozen=True)
class Copy:
    """dst[dst_offset + sum(i * dst_strides)] = src[src_offset + sum(i * src_strides)]."""

    src_offset: int
    dst_offset: int
    sizes: tuple[int, ...]
    src_strides: tuple[int, ...]
    dst_strides: tuple[int, ...]

    def as_tuple(self):
        return self.src_offset, self.dst_offset, self.sizes, self.src_strides, self.dst_strides

    def is_identity(self, total: int) -> bool:
        """Whether it copies every element of a dense `total`-element tensor to the same
        place (in whatever axis order, such as a transpose into the source's own layout)."""
        if (self.src_offset, self.dst_offset) != (0, 0) or self.src_strides != self.dst_strides:
            return False
        step = 1
        for size, stride in sorted(
            zip(self.sizes, self.src_strides, strict=True), key=lambda a: a[1]
        ):
            if size != 1 and stride != step:
                return False
            step *= size
        return step == total


def _simplify(src_offset, dst_offset, sizes, src_strides, dst_strides) -> list[Copy]:
    """Drops size-1 axes, merges axes contiguous on both sides, splits beyond MAX_DIMS."""
    axes = [(n, s, d) for n, s, d in zip(sizes, src_strides, dst_strides, strict=True) if n != 1]
    merged: list[tuple[int, int, int]] = []
    for n, s, d in axes:
        if merged and merged[-1][1] == s * n and merged[-1][2] == d * n:
            outer_n = merged[-1][0]
            merged[-1] = (outer_n * n, s, d)
        else:
            merged.append((n, s, d))
    if not merged:
        merged = [(1, 1, 1)]
    if len(merged) <= MAX_DIMS:
        return [
            Copy(src_offset, dst_offset, *(tuple(column) for column in zip(*merged, strict=True)))
        ]
    (n, s, d), rest = merged[0], merged[1:]
    copies = []
    for i in range(n):
        copies += _simplify(src_offset + i * s, dst_offset + i * d, *zip(*rest, strict=True))
    return copies


def strided(src_offset: int, dst_offset: int, sizes, src_strides, dst_strides) -> list[Copy]:
    return _simplify(src_offset, dst_offset, tuple(sizes), tuple(src_strides), tuple(dst_strides))


def transpose_copies(in_shape, in_perm, perm, out_perm) -> list[Copy]:
    """out[i] = in[i permuted]: out axis k is input axis perm[k]."""
    src = logical_strides(in_shape, in_perm)
    out_shape = [in_shape[p] for p in perm]
    dst = logical_strides(out_shape, out_perm)
    return strided(0, 0, out_shape, [src[p] for p in perm], dst)


def _refine(in_shape: Sequence[int], out_shape: Sequence[int]):
    """Atomic axes of a row-major reshape: (size, input axis, output axis, in sub-stride,
    out sub-stride), or None when the two shapes share no mixed-radix refinement."""
    in_rem, out_rem = list(in_shape), list(out_shape)
    i = o = 0
    atoms = []
    # Inner products within the current logical axis (sub-strides), filled from the right.
    while i < len(in_rem) and o < len(out_rem):
        if in_rem[i] == 1:
            i += 1
            continue
        if out_rem[o] == 1:
            o += 1
            continue
        size = math.gcd(in_rem[i], out_rem[o])
        if size == 1:
            return None
        if size != min(in_rem[i], out_rem[o]):
            return None  # digits would not align: no common mixed radix
        atoms.append([size, i, o])
        in_rem[i] //= size
        out_rem[o] //= size
        if in_rem[i] == 1:
            i += 1
        if out_rem[o] == 1:
            o += 1
    result = []
    for index, (size, i_axis, o_axis) in enumerate(atoms):
        in_sub = math.prod(a[0] for a in atoms[index + 1 :] if a[1] == i_axis)
        out_sub = math.prod(a[0] for a in atoms[index + 1 :] if a[2] == o_axis)
        result.append((size, i_axis, o_axis, in_sub, out_sub))
    return result


def reshape_copies(in_shape, in_perm, out_shape, out_perm) -> list[Copy]:
    """The copies of a row-major logical reshape between two device layouts."""
    src = logical_strides(in_shape, in_perm)
    dst = logical_strides(out_shape, out_perm)
    atoms = _refine(in_shape, out_shape)
    if atoms is not None:
        return strided(
            0,
            0,
            [a[0] for a in atoms],
            [src[a[1]] * a[3] for a in atoms],
            [dst[a[2]] * a[4] for a in atoms],
        )
    # No common refinement (rare): one copy per element run, from explicit index maps.
    return _gather_copies(_offsets(in_shape, src).reshape(-1), _offsets(out_shape, dst).reshape(-1))


def _offsets(shape, strides) -> np.ndarray:
    grid = np.zeros(shape, np.int64)
    for axis, stride in enumerate(strides):
        index_shape = [1] * len(shape)
        index_shape[axis] = shape[axis]
        grid = grid + np.arange(shape[axis]).reshape(index_shape) * stride
    return grid


def _gather_copies(src: np.ndarray, dst: np.ndarray) -> list[Copy]:
    """Copies moving element src[j] to dst[j] for every j, as 1-D runs contiguous on both."""
    order = np.argsort(dst, kind="stable")
    src, dst = src[order], dst[order]
    breaks = np.flatnonzero((np.diff(src) != 1) | (np.diff(dst) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(src)]])
    return [
        Copy(int(src[a]), int(dst[a]), (int(b - a),), (1,), (1,))
        for a, b in zip(starts, ends, strict=True)
    ]


def slice_copies(in_shape, in_perm, out_shape, out_perm, starts, steps) -> list[Copy]:
    """out[j] = in[start + j * step] on every axis (starts/steps for every axis)."""
    src = logical_strides(in_shape, in_perm)
    dst = logical_strides(out_shape, out_perm)
    offset = sum(start * stride for start, stride in zip(starts, src, strict=True))
    return strided(offset, 0, out_shape, [st * s for st, s in zip(steps, src, strict=True)], dst)


def embed_copies(in_shape, in_perm, out_shape, out_perm, begins) -> list[Copy]:
    """The input placed at `begins` inside the output (concat slices, pad interiors)."""
    src = logical_strides(in_shape, in_perm)
    dst = logical_strides(out_shape, out_perm)
    offset = sum(b * s for b, s in zip(begins, dst, strict=True))
    return strided(0, offset, in_shape, src, dst)


def gather_copies(in_shape, in_perm, out_shape, out_perm, sources: Sequence[np.ndarray]):
    """out[j] = in[sources[0][j0], sources[1][j1], ...]: per-axis index maps (nearest resize).

    Each axis whose map is `base + j // f` for a factor f becomes f interleaved phases, so
    an integer upsampling is f_h * f_w strided copies; other maps fall back to runs.
    """
    src = logical_strides(in_shape, in_perm)
    dst = logical_strides(out_shape, out_perm)
    phases = [_phases(np.asarray(m)) for m in sources]
    if any(p is None for p in phases):
        src_offsets = _offsets(out_shape, [0] * len(out_shape))
        for axis, mapping in enumerate(sources):
            index_shape = [1] * len(out_shape)
            index_shape[axis] = out_shape[axis]
            src_offsets = src_offsets + np.asarray(mapping).reshape(index_shape) * src[axis]
        return _gather_copies(src_offsets.reshape(-1), _offsets(out_shape, dst).reshape(-1))
    copies: list[Copy] = []
    for combo in np.ndindex(*[len(p) for p in phases]):  # type: ignore[arg-type]
        sizes, src_strides, dst_strides = [], [], []
        src_offset = dst_offset = 0
        for axis, k in enumerate(combo):
            first_out, count, first_src, src_step, out_step = phases[axis][k]  # type: ignore[index]
            sizes.append(count)
            src_offset += first_src * src[axis]
            dst_offset += first_out * dst[axis]
            src_strides.append(src_step * src[axis])
            dst_strides.append(out_step * dst[axis])
        copies += strided(src_offset, dst_offset, sizes, src_strides, dst_strides)
    return copies


def _phases(mapping: np.ndarray):
    """Split an index map into arithmetic progressions out = r + f*j -> src = a + c*j."""
    n = len(mapping)
    for factor in range(1, n + 1):
        result = []
        for r in range(min(factor, n)):
            values = mapping[r::factor]
            step = int(values[1] - values[0]) if len(values) > 1 else 0
            if np.any(np.diff(values) != step):
                break
            result.append((r, len(values), int(values[0]), step, factor))
        else:
            return result
    return None
