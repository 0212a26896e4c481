"""`validate-operators`: every accelerated op against the AIPU's constraints (config field
`validate_operators`).

The pipeline runs it on the quantized core, after the rewrites, so it checks the graph
lowering will receive. The constraints are design.md's operator support table, read on
axq ops (the graph cleaner applies the same table to ONNX nodes to place them).
`axq.host` ops run on the host by design and are not checked. One error lists every
violation with its ONNX node name (the op's location) and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NameLoc
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.utils.exceptions import PassFailedException

from aipuc.dialects import axq
from aipuc.dialects.axq import shape_of
from aipuc.errors import ModelError
from aipuc.frontend.support import is_layout_free_reshape
from aipuc.hardware import AIPU
from aipuc.passes import AipucPass

GROUPED_KERNEL_AREA_LIMIT = 128
SCORE_OPS = (axq.MulOp, axq.AddOp, axq.SubOp, axq.RequantizeOp)
"""Ops between an attention MatMul and its Softmax (scaling, masking) or a requantization."""
SCORE_DEPTH = 3
NHWC_TO_NCHW = (0, 3, 1, 2)


class OperatorValidationError(ModelError, PassFailedException):
    """Accelerated ops that the AIPU cannot run; a diagnostic for xdsl-opt too."""


@dataclass(frozen=True)
class Violation:
    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"node '{self.node}' ({self.op}): {self.reason}"


# --------------------------------------------------------------------------- shape facts


def _is_scalar(shape: tuple[int, ...]) -> bool:
    return prod(shape) == 1


def _is_per_channel(operand: tuple[int, ...], full: tuple[int, ...]) -> bool:
    """Whether `operand` broadcasts over `full` along the channel axis only.

    The channel axis is 1 of a 4-D NCHW tensor and the last axis of rank-2/3 tokens.
    """
    if len(operand) > len(full) or len(full) not in (2, 3, 4):
        return False
    axis = axq.CHANNEL_AXIS if len(full) == 4 else len(full) - 1
    aligned = (1,) * (len(full) - len(operand)) + operand
    return aligned == tuple(full[i] if i == axis else 1 for i in range(len(full)))


def _elementwise(op: axq._BinaryOp, *, same_shape: bool) -> list[str]:
    a, b = shape_of(op.lhs), shape_of(op.rhs)
    if same_shape and a == b:
        return []
    for operand, other in ((a, b), (b, a)):
        if (_is_scalar(operand) and len(operand) <= len(other)) or _is_per_channel(operand, other):
            return []
    allowed = "equal shapes, " if same_shape else ""
    return [
        f"operand shapes {list(a)} and {list(b)}: the accelerator needs {allowed}"
        "a per-channel [1,C,1,1] operand or a scalar"
    ]


# --------------------------------------------------------------------------- rules


def _conv(op: axq.Conv2dOp) -> list[str]:
    group = op.group.value.data
    if group == 1:
        return []
    kernel = shape_of(op.weight)[2:]
    reasons = [
        f"grouped convolution (group={group}) needs a square {what}, got {pair[0]}x{pair[1]}"
        for what, pair in (
            ("kernel", kernel),
            ("stride", op.strides.get_values()),
            ("dilation", op.dilations.get_values()),
        )
        if pair[0] != pair[1]
    ]
    if prod(kernel) >= GROUPED_KERNEL_AREA_LIMIT:
        reasons.append(
            f"grouped convolution kernel area {kernel[0]}x{kernel[1]}={prod(kernel)} must be "
            f"< {GROUPED_KERNEL_AREA_LIMIT}"
        )
    return reasons


def _conv_transpose(op: axq.ConvTranspose2dOp) -> list[str]:
    reasons = []
    if op.group.value.data != 1:
        reasons.append(f"group={op.group.value.data}: transposed convolution needs group 1")
    top, left, bottom, right = op.pads.get_values()
    if (top, left) != (bottom, right):
        reasons.append(
            f"pads {[top, left, bottom, right]} are asymmetric; the accelerator needs begin == end"
        )
    return reasons


def _avg_pool(op: axq.AvgPoolOp) -> list[str]:
    if any(op.pads.get_values()) and not op.count_include_pad.value.data:
        return ["padded average pooling needs count_include_pad=1"]
    return []


def _concat(op: axq.ConcatOp) -> list[str]:
    rank = len(shape_of(op.result))
    if rank != 4:
        return [f"only 4-D concatenation is supported, got {rank}-D"]
    return [] if op.axis.value.data % rank else ["concatenation on the batch axis; only C, H or W"]


def _prelu(op: axq.PReluOp) -> list[str]:
    slope, data = shape_of(op.rhs), shape_of(op.lhs)
    if _is_scalar(slope) or _is_per_channel(slope, data):
        return []
    return [f"slope shape {list(slope)} is neither a scalar nor per channel of {list(data)}"]


def _pad(op: axq.PadOp) -> list[str]:
    reasons = []
    if op.mode.data != axq.PadMode.CONSTANT:
        reasons.append(f"mode={op.mode.data}; only constant padding")
    if op.value.value.data != 0.0:
        reasons.append(f"pad value {op.value.value.data}; it must be 0")
    pads, rank = op.pads.get_values(), len(shape_of(op.input))
    if rank == 4:
        if pads[0] or pads[rank]:
            reasons.append("padding on the batch axis")
        channel = (pads[axq.CHANNEL_AXIS], pads[rank + axq.CHANNEL_AXIS])
        if channel[0] % AIPU.pword_bytes or channel[1] % AIPU.pword_bytes:
            reasons.append(f"channel pads {list(channel)} must be multiples of {AIPU.pword_bytes}")
    return reasons


def _resize(op: axq.ResizeOp) -> list[str]:
    (n, c, h, w), out = shape_of(op.input), shape_of(op.result)
    if (n, c) != out[:2] or out[2] % h or out[3] % w:
        return [f"resizing {[n, c, h, w]} to {list(out)} is not an integer upscaling of H and W"]
    return []


def _split(op: axq.SplitOp) -> list[str]:
    axis = op.axis.value.data % len(shape_of(op.input))
    return [] if axis > 0 else ["split on the batch axis; the accelerator needs axis > 0"]


def _reshape(op: axq.ReshapeOp) -> list[str]:
    in_shape, out_shape = shape_of(op.input), shape_of(op.result)
    if is_layout_free_reshape(in_shape, out_shape):
        return []
    return [
        f"reshaping {list(in_shape)} to {list(out_shape)} is not layout-free (it moves data "
        "across the channel axis)"
    ]


def _graph_input(value: SSAValue) -> bool:
    """A @main argument, or its quantization."""
    if isinstance(value.owner, axq.QuantizeOp):
        value = value.owner.input
    return isinstance(value, BlockArgument)


def _transpose(op: axq.TransposeOp) -> list[str]:
    perm = tuple(op.perm.get_values())
    identity = tuple(range(len(perm)))
    if perm in (identity, identity[:-2] + identity[-2:][::-1]):
        return []
    if perm == NHWC_TO_NCHW and _graph_input(op.input):
        return []  # the NHWC input's layout transform: the accelerator's native layout
    return [f"perm={list(perm)}; only the identity or swapping the last two axes"]


def _users(value: SSAValue) -> Iterator[Operation]:
    return (use.operation for use in value.uses)


def _reaches(value: SSAValue, kind: type, depth: int = SCORE_DEPTH) -> bool:
    """Whether `value` feeds an op of `kind` directly or through score ops."""
    for user in _users(value):
        if isinstance(user, kind):
            return True
        if depth and isinstance(user, SCORE_OPS) and _reaches(user.results[0], kind, depth - 1):
            return True
    return False


def _comes_from(value: SSAValue, kind: type, depth: int = SCORE_DEPTH) -> bool:
    """Whether `value` is made by an op of `kind` directly or through score ops."""
    producer = value.owner
    if isinstance(producer, kind):
        return True
    return (
        bool(depth)
        and isinstance(producer, SCORE_OPS)
        and any(_comes_from(operand, kind, depth - 1) for operand in producer.operands)
    )


def _matmul(op: axq.MatMulOp) -> list[str]:
    if isinstance(op.lhs.owner, axq.ConstantOp):
        return ["constant left operand; only the right operand can be a weight"]
    if isinstance(op.rhs.owner, axq.ConstantOp):
        rank = len(shape_of(op.rhs))
        return [] if rank == 2 else [f"constant right operand of rank {rank}; a weight is 2-D"]
    a, b = shape_of(op.lhs), shape_of(op.rhs)
    reasons = []
    if len(a) < 2 or len(b) < 2 or a[:-2] != b[:-2]:
        reasons.append(f"batched matmul of {list(a)} and {list(b)} needs equal batch dims")
    in_attention = _reaches(op.result, axq.SoftmaxOp) or any(
        _comes_from(operand, axq.SoftmaxOp, depth=1) for operand in op.operands
    )
    if not in_attention:
        reasons.append("matmul of two computed tensors outside an attention block")
    return reasons


def _softmax(op: axq.SoftmaxOp) -> list[str]:
    rank = len(shape_of(op.input))
    reasons = []
    if op.axis.value.data % rank != rank - 1:
        reasons.append(f"axis={op.axis.value.data}; attention softmax runs over the last axis")
    feeds_matmul = _reaches(op.result, axq.MatMulOp, depth=1)
    if not (feeds_matmul and _comes_from(op.input, axq.MatMulOp)):
        reasons.append("softmax outside an attention block (matmul -> softmax -> matmul)")
    return reasons


RULES: dict[type[Operation], Callable[..., list[str]]] = {
    axq.Conv2dOp: _conv,
    axq.ConvTranspose2dOp: _conv_transpose,
    axq.AddOp: lambda op: _elementwise(op, same_shape=True),
    axq.MulOp: lambda op: _elementwise(op, same_shape=True),
    axq.SubOp: lambda op: _elementwise(op, same_shape=False),
    axq.AvgPoolOp: _avg_pool,
    axq.ConcatOp: _concat,
    axq.PReluOp: _prelu,
    axq.PadOp: _pad,
    axq.ResizeOp: _resize,
    axq.SplitOp: _split,
    axq.ReshapeOp: _reshape,
    axq.TransposeOp: _transpose,
    axq.MatMulOp: _matmul,
    axq.SoftmaxOp: _softmax,
}
"""The constrained ops; every other accelerated op (dense, clip, lut, max pool, global
pools, slice) is supported as it is."""


def _node_name(op: Operation, index: int) -> str:
    if isinstance(op.location, NameLoc):
        return op.location.desc.data
    return f"#{index} (no location)"


def violations(module: ModuleOp) -> list[Violation]:
    """Every constraint violation of every accelerated op, in program order."""
    found = []
    for index, op in enumerate(module.walk()):
        rule = RULES.get(type(op))
        if rule is not None:
            found += [Violation(_node_name(op, index), op.name, reason) for reason in rule(op)]
    return found


@dataclass(frozen=True)
class ValidateOperatorsPass(AipucPass):
    """Fails, naming every violation, if an accelerated op breaks a hardware constraint."""

    name = "validate-operators"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        found = violations(op)
        if found:
            raise OperatorValidationError(
                f"{len(found)} hardware constraint violation(s) in the accelerated core: "
                f"{'; '.join(map(str, found))}. Enable run_graph_cleaner to run these "
                "operators on the host, or set validate_operators=false",
                stage="validate",
            )
