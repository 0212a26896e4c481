"""Multi-node ONNX patterns that the importer turns into one axq op.

Exporters spell some layers as several primitive nodes. Recognising them on the ONNX graph
lets the support rules accept every node of the pattern and the importer emit the one op
the accelerator runs. Each matcher checks that the intermediate tensors have no other use
(not read elsewhere, not graph outputs), so replacing the nodes by one op is exact.

LayerNorm spelled in primitive ops (PyTorch before opset 17, many exported transformers)::

    mean = ReduceMean(x, axes=A)          A: the trailing axes [k, ..., rank-1]
    d    = Sub(x, mean)
    sq   = Pow(d, 2)  |  Mul(d, d)
    var  = ReduceMean(sq, axes=A)
    ve   = Add(var, eps)                  eps: a constant scalar
    s    = Sqrt(ve)
    y    = Div(d, s)
    [y   = Mul(y, gamma)]                 gamma, beta: constants over the normalised axes
    [y   = Add(y, beta)]

becomes `axq.layer_norm(x, gamma, beta) {axis = k, epsilon = eps}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from onnx import NodeProto, helper

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class LayerNormMatch:
    """A decomposed LayerNorm: its nodes in graph order and what the one op needs."""

    nodes: tuple[NodeProto, ...]
    input: str
    output: str
    axis: int
    epsilon: float
    scale: str | None
    bias: str | None


class _Graph:
    """The lookups a matcher needs over one graph."""

    def __init__(
        self,
        consumers: Mapping[str, Sequence[NodeProto]],
        constants: Mapping[str, np.ndarray],
        shapes: Mapping[str, Shape],
        graph_outputs: Sequence[str],
    ):
        self.consumers, self.constants, self.shapes = consumers, constants, shapes
        self.graph_outputs = set(graph_outputs)

    def sole_consumer(self, tensor: str, op_type: str) -> NodeProto | None:
        """The one node reading `tensor` if it is an `op_type` and nothing else uses it."""
        readers = self.consumers.get(tensor, [])
        if tensor in self.graph_outputs or len(readers) != 1:
            return None
        reader = readers[0]
        return reader if reader.op_type == op_type and reader.domain in ("", "ai.onnx") else None

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants[name] if name in self.constants else None

    def other_operand(self, node: NodeProto, tensor: str) -> str | None:
        """The input of a binary `node` that is not `tensor` (None unless exactly one is)."""
        if len(node.input) != 2 or list(node.input).count(tensor) != 1:
            return None
        return node.input[1] if node.input[0] == tensor else node.input[0]


def _reduced_axes(node: NodeProto, graph: _Graph, rank: int) -> list[int] | None:
    """The axes a keepdims ReduceMean reduces (sorted, non-negative), None if not static."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if not attrs.get("keepdims", 1):
        return None
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = graph.constant(node.input[1])
        axes = None if value is None else value.ravel().tolist()
    if axes is None or len(axes) == 0:
        return None
    return sorted(int(a) % rank for a in axes)


def _is_scalar_constant(graph: _Graph, name: str | None, value: float | None = None) -> bool:
    array = graph.constant(name) if name else None
    if array is None or array.size != 1 or not np.issubdtype(array.dtype, np.floating):
        return False
    return value is None or float(array.reshape(())) == value


def _affine_operand(graph: _Graph, name: str | None, normalized: Shape) -> bool:
    """A constant that broadcasts over the normalised axes only (gamma or beta)."""
    array = graph.constant(name) if name else None
    if array is None or array.ndim > len(normalized) or not np.issubdtype(array.dtype, np.floating):
        return False
    trailing = normalized[len(normalized) - array.ndim :]
    return all(a in (1, n) for a, n in zip(array.shape, trailing, strict=True))


def _match_layer_norm(first: NodeProto, graph: _Graph) -> LayerNormMatch | None:
    x = first.input[0]
    shape = graph.shapes.get(x)
    if shape is None or None in shape or not shape:
        return None
    rank = len(shape)
    axes = _reduced_axes(first, graph, rank)
    if axes is None or axes != list(range(axes[0], rank)):
        return None
    sub = graph.sole_consumer(first.output[0], "Sub")
    if sub is None or list(sub.input) != [x, first.output[0]]:
        return None
    d = sub.output[0]
    readers = graph.consumers.get(d, [])
    if d in graph.graph_outputs or len(readers) != 2:
        return None
    square = next((n for n in readers if n.op_type in ("Pow", "Mul")), None)
    div = next((n for n in readers if n.op_type == "Div"), None)
    if square is None or div is None or list(div.input) != [d, div.input[1]]:
        return None
    squares = (
        square.op_type == "Mul"
        and list(square.input) == [d, d]
        or square.op_type == "Pow"
        and square.input[0] == d
        and _is_scalar_constant(graph, square.input[1], 2.0)
    )
    var = graph.sole_consumer(square.output[0], "ReduceMean") if squares else None
    if var is None or _reduced_axes(var, graph, rank) != axes:
        return None
    add = graph.sole_consumer(var.output[0], "Add")
    eps = graph.other_operand(add, var.output[0]) if add is not None else None
    if add is None or not _is_scalar_constant(graph, eps):
        return None
    sqrt = graph.sole_consumer(add.output[0], "Sqrt")
    if (
        sqrt is None
        or div.input[1] != sqrt.output[0]
        or graph.sole_consumer(sqrt.output[0], "Div") is None
    ):
        return None
    nodes = [first, sub, square, var, add, sqrt, div]
    normalized = tuple(shape[axes[0] :])
    scale = bias = None
    output = div.output[0]
    mul = graph.sole_consumer(output, "Mul")
    if mul is not None and _affine_operand(graph, graph.other_operand(mul, output), normalized):
        scale = graph.other_operand(mul, output)
        nodes.append(mul)
        output = mul.output[0]
    shift = graph.sole_consumer(output, "Add")
    if shift is not None and _affine_operand(graph, graph.other_operand(shift, output), normalized):
        bias = graph.other_operand(shift, output)
        nodes.append(shift)
        output = shift.output[0]
    epsilon = float(graph.constants[eps].reshape(()))  # type: ignore[index]
    return LayerNormMatch(tuple(nodes), x, output, axes[0], epsilon, scale, bias)


def find_layer_norms(
    nodes: Sequence[NodeProto],
    consumers: Mapping[str, Sequence[NodeProto]],
    constants: Mapping[str, np.ndarray],
    shapes: Mapping[str, Shape],
    graph_outputs: Sequence[str],
) -> list[LayerNormMatch]:
    """Every decomposed LayerNorm of a graph (see the module docstring), in graph order."""
    graph = _Graph(consumers, constants, shapes, graph_outputs)
    matches = []
    for node in nodes:
        if node.op_type == "ReduceMean" and node.domain in ("", "ai.onnx") and node.input:
            match = _match_layer_norm(node, graph)
            if match is not None:
                matches.append(match)
    return matches
