"""The AIPU's operator constraints, on plain shapes and attributes: one definition that the
placement (`aipuc.frontend.support`, on ONNX nodes) and `validate-operators` (on axq ops)
both apply. Each returns the reasons an op breaks them (none: it is supported)."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from aipuc.hardware import AIPU


def grouped_conv(
    group: int,
    kernel: Sequence[int],
    dilations: Sequence[int],
    strides: Sequence[int] | None = None,
) -> list[str]:
    """A grouped convolution needs a square kernel, dilation (and stride, unless the caller
    rewrites a non-square one) and a kernel area below the hardware's limit."""
    if group == 1:
        return []
    pairs = [("kernel", kernel), ("dilation", dilations)]
    if strides is not None:
        pairs.append(("stride", strides))
    reasons = [
        f"grouped convolution (group={group}) needs a square {what}, got {pair[0]}x{pair[1]}"
        for what, pair in pairs
        if pair[0] != pair[1]
    ]
    limit = AIPU.grouped_kernel_area_limit
    if prod(kernel) >= limit:
        reasons.append(
            f"grouped convolution kernel area {kernel[0]}x{kernel[1]}={prod(kernel)} must be "
            f"< {limit}"
        )
    return reasons


def conv_transpose(group: int, asymmetric_pads: bool) -> list[str]:
    reasons = []
    if group != 1:
        reasons.append(f"group={group}: transposed convolution needs group 1")
    if asymmetric_pads:
        reasons.append("asymmetric pads; the accelerator needs begin == end")
    return reasons


def resize(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[str]:
    """Only H and W of an NCHW tensor scale."""
    if tuple(in_shape[:2]) != tuple(out_shape[:2]):
        return [
            f"resizing {list(in_shape)} to {list(out_shape)} changes N or C; only H and W scale"
        ]
    return []


def matmul(
    lhs: Sequence[int], rhs: Sequence[int], lhs_constant: bool, rhs_constant: bool
) -> list[str]:
    """A weight (constant) is the 2-D right operand; two computed operands need matrices with
    equal batch dimensions (one IMC weightset per image)."""
    if rhs_constant:
        if len(rhs) == 2:
            return []
        return [f"constant right operand of shape {list(rhs)}; a dense layer needs a 2-D weight"]
    if lhs_constant:
        return ["constant left operand; only the right operand can be a weight"]
    if len(lhs) < 2 or len(rhs) < 2:
        return [
            f"MatMul of {list(lhs)} and {list(rhs)}: a 1-D operand (the MVM multiplies matrices)"
        ]
    if tuple(lhs[:-2]) != tuple(rhs[:-2]):
        return [
            f"batched MatMul of {list(lhs)} and {list(rhs)} needs equal batch dims (one weightset "
            "per image)"
        ]
    return []
