"""`validate-operators`: every accelerated op against the AIPU's constraints (config field
`validate_operators`).

The pipeline runs it on the quantized core, after the rewrites, so it checks the graph
lowering will receive. The constraints are those of the AIPU as `convert-axq-to-aipu`
lowers to it, read on axq ops; the placement applies the same constraints to ONNX nodes
(`aipuc.frontend.support`), so an imported model passes unless a rewrite broke one. Data
movement (reshape, transpose, slice, split, concat, pad, resize) is a strided DMA
and elementwise operands broadcast: neither is constrained here.
`axq.host` ops run on the host by design and are not checked. One error lists every
violation with its ONNX node name (the op's location) and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NameLoc
from xdsl.ir import Operation
from xdsl.utils.exceptions import PassFailedException

from aipuc import constraints
from aipuc.dialects import axq
from aipuc.dialects.axq import shape_of
from aipuc.errors import ModelError
from aipuc.passes import AipucPass


class OperatorValidationError(ModelError, PassFailedException):
    """Accelerated ops that the AIPU cannot run; a diagnostic for xdsl-opt too."""


@dataclass(frozen=True)
class Violation:
    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"node '{self.node}' ({self.op}): {self.reason}"


# --------------------------------------------------------------------------- rules


def _conv(op: axq.Conv2dOp) -> list[str]:
    return constraints.grouped_conv(
        op.group.value.data,
        shape_of(op.weight)[2:],
        op.dilations.get_values(),
        op.strides.get_values(),
    )


def _conv_transpose(op: axq.ConvTranspose2dOp) -> list[str]:
    top, left, bottom, right = op.pads.get_values()
    return constraints.conv_transpose(op.group.value.data, (top, left) != (bottom, right))


def _resize(op: axq.ResizeOp) -> list[str]:
    return constraints.resize(shape_of(op.input), shape_of(op.result))


def _matmul(op: axq.MatMulOp) -> list[str]:
    return constraints.matmul(
        shape_of(op.lhs),
        shape_of(op.rhs),
        isinstance(op.lhs.owner, axq.ConstantOp),
        isinstance(op.rhs.owner, axq.ConstantOp),
    )


RULES: dict[type[Operation], Callable[..., list[str]]] = {
    axq.Conv2dOp: _conv,
    axq.ConvTranspose2dOp: _conv_transpose,
    axq.ResizeOp: _resize,
    axq.MatMulOp: _matmul,
}
"""The constrained ops; every other accelerated op is supported as it is."""


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
