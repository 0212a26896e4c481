"""Where a model runs: accelerated segments, host ops between them, and the report's placement.

The importer makes every ONNX node it cannot accelerate an `axq.host` op where it sits, so
@main is a sequence of accelerated segments with host work between them. `segments` lists
them in an order that runs the graph (each segment needs only earlier ones): lowering emits
one accelerator program per accelerated segment, and the host runs the rest in between.

The placement report (`placement_report`, compilation_report.json's `placement`) counts
ONNX nodes and multiply-accumulates on each side, over the whole model: the graph cleaner's
host preamble and postamble, and the core with its accelerated and host nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import onnx
from onnx import NodeProto, helper
from xdsl.dialects import func
from xdsl.ir import Operation, SSAValue

from aipuc.dialects import axq

MAC_OP_TYPES = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN"})
"""ONNX operators that multiply-accumulate (everything else counts 0 MACs)."""

_RECURRENT = frozenset({"LSTM", "GRU", "RNN"})

HOST_MAC_WARNING_FRACTION = 0.01
"""The CLI warns when more than this fraction of a model's MACs run on the host."""


def node_macs(node: NodeProto, shapes: Mapping[str, Sequence[int | None]]) -> int:
    """Multiply-accumulates of one ONNX node with static shapes (0 for non-MAC operators).

    Conv: output elements x weight elements per output channel; ConvTranspose: input
    elements x weight elements per input channel; Gemm/MatMul: output elements x the
    contraction length; LSTM/GRU/RNN: every step of every sequence multiplies the input
    weights W and the recurrent weights R (all gates, both directions).
    """
    if node.op_type not in MAC_OP_TYPES or node.domain not in ("", "ai.onnx"):
        return 0
    if node.op_type in _RECURRENT:
        x, w, r = (shapes.get(name) for name in node.input[:3])
        if any(s is None or None in s for s in (x, w, r)):
            return 0
        return prod(x[:2]) * (prod(w) + prod(r))  # x: [steps, batch, in] or [batch, steps, in]
    inputs = [shapes.get(name) for name in node.input[:2]]
    output = shapes.get(node.output[0])
    if output is None or None in output or any(s is None or None in s for s in inputs):
        return 0
    a, b = inputs
    if node.op_type == "Conv":
        return prod(output) * prod(b[1:])
    if node.op_type == "ConvTranspose":
        return prod(a) * prod(b[1:])
    if node.op_type == "Gemm":
        trans_a = next(
            (helper.get_attribute_value(x) for x in node.attribute if x.name == "transA"), 0
        )
        return prod(output) * (a[0] if trans_a else a[1])
    return prod(output) * a[-1]  # MatMul


@dataclass(frozen=True)
class NodePlacement:
    """One ONNX node: where it runs (`reason` is None on the accelerator) and its MACs."""

    name: str
    op_type: str
    macs: int
    reason: str | None = None
    part: str = "core"
    """"preamble", "core" or "postamble" (the graph cleaner's parts)."""

    @property
    def on_host(self) -> bool:
        return self.reason is not None


def host_part_placements(
    part: onnx.ModelProto | None,
    label: str,
    reasons: Mapping[str, str],
    shapes: Mapping[str, Sequence[int | None]],
) -> list[NodePlacement]:
    """The nodes of a host preamble or postamble, each with the cleaner's reason."""
    if part is None:
        return []
    return [
        NodePlacement(
            node.name,
            node.op_type,
            node_macs(node, shapes),
            reasons.get(node.name, "host part"),
            label,
        )
        for node in part.graph.node
    ]


# --------------------------------------------------------------------------- segments


@dataclass
class Segment:
    """A maximal group of ops of @main that runs on one side without crossing to the other."""

    on_host: bool
    ops: list[Operation] = field(default_factory=list)


_CONVERSIONS = (axq.QuantizeOp, axq.DequantizeOp, axq.RequantizeOp)


def segments(func_op: func.FuncOp) -> list[Segment]:
    """The ops of `func_op` as alternating accelerated and host segments, in run order.

    Each op gets a phase, as early as its operands allow: accelerated segments are the even
    phases, host segments the odd ones. An `axq.host` op takes the first odd phase at or
    after its operands', any other compute op the first even one. Conversions (quantize,
    dequantize, requantize) join the segment of their operand's producer; constants join the
    segment of their first user. Every op's operands come from its own or earlier segments,
    so running the segments in order runs the graph. Empty phases are skipped.
    """
    phase: dict[SSAValue, int] = {}
    placed: list[tuple[Operation, int]] = []
    constants: list[axq.ConstantOp] = []
    for op in func_op.body.block.ops:
        if isinstance(op, axq.ConstantOp):
            constants.append(op)
            continue
        if isinstance(op, func.ReturnOp):
            continue
        start = max((phase.get(value, 0) for value in op.operands), default=0)
        if isinstance(op, axq.HostOp):
            start += 1 - start % 2
        elif not isinstance(op, _CONVERSIONS):
            start += start % 2
        placed.append((op, start))
        for result in op.results:
            phase[result] = start
    ops_by_phase: dict[int, list[Operation]] = {}
    for op, op_phase in placed:
        ops_by_phase.setdefault(op_phase, []).append(op)
    for constant in constants:
        users = [
            phase[r] for use in constant.result.uses for r in use.operation.results if r in phase
        ]
        ops_by_phase.setdefault(min(users, default=0), []).insert(0, constant)
    return [
        Segment(on_host=bool(op_phase % 2), ops=ops_by_phase[op_phase])
        for op_phase in sorted(ops_by_phase)
    ]


def accelerated_segment_count(func_op: func.FuncOp) -> int:
    """How many accelerated segments hold compute (not only conversions or constants)."""
    return sum(
        1
        for segment in segments(func_op)
        if not segment.on_host
        and any(not isinstance(op, (*_CONVERSIONS, axq.ConstantOp)) for op in segment.ops)
    )


# --------------------------------------------------------------------------- the report


def placement_report(nodes: Iterable[NodePlacement], segment_count: int) -> dict[str, Any]:
    """compilation_report.json's `placement` over every node of the model."""
    nodes = list(nodes)
    host = [node for node in nodes if node.on_host]
    return {
        "macs_on_accelerator": sum(node.macs for node in nodes if not node.on_host),
        "macs_on_host": sum(node.macs for node in host),
        "nodes_on_accelerator": len(nodes) - len(host),
        "nodes_on_host": len(host),
        "segments": segment_count,
        "host_nodes": [
            {"name": node.name, "op_type": node.op_type, "reason": node.reason, "part": node.part}
            for node in host
        ],
    }


def host_mac_fraction(placement: Mapping[str, Any]) -> float:
    total = placement["macs_on_accelerator"] + placement["macs_on_host"]
    return placement["macs_on_host"] / total if total else 0.0


def placement_summary(placement: Mapping[str, Any]) -> str:
    """One line for the command line: MACs and nodes on each side, segments."""
    total = placement["macs_on_accelerator"] + placement["macs_on_host"]
    share = 100 * (1 - host_mac_fraction(placement)) if total else 100.0
    return (
        f"placement  {share:.2f}% of {total:,} MACs on the accelerator; "
        f"{placement['nodes_on_accelerator']} nodes on the accelerator in "
        f"{placement['segments']} segment(s), {placement['nodes_on_host']} on the host"
    )


def placement_warning(placement: Mapping[str, Any], shown: int = 3) -> str | None:
    """A warning naming the first host nodes when too many MACs run on the host."""
    if host_mac_fraction(placement) <= HOST_MAC_WARNING_FRACTION:
        return None
    names = ", ".join(
        f"{node['name']} ({node['op_type']}: {node['reason']})"
        for node in placement["host_nodes"][:shown]
    )
    more = len(placement["host_nodes"]) - shown
    return (
        f"warning: {100 * host_mac_fraction(placement):.1f}% of the MACs run on the host "
        f"in float32, not int8; first host nodes: {names}"
        + (f" and {more} more" if more > 0 else "")
        + " (see compilation_report.json 'placement')"
    )
