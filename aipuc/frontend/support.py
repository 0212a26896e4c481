"""Which ONNX nodes the accelerated core runs: design.md's operator support table as data.

`SUPPORT_TABLE` lists every operator the core accepts with its constraint in words; the rule
functions in `_RULES` check those constraints on a node. `check_node` returns the reasons a
node cannot be accelerated (empty: supported); the graph cleaner sends such nodes to the host,
and `validate_operators` reports them for the `validate_operators` config field.

Every check needs static shapes (the loader provides them) and treats a tensor as constant
when it is an initializer. Interpretations beyond the table's words, kept explicit:

- Weighted ops (Conv, ConvTranspose, Gemm, dense MatMul) need constant weights: the IMC
  holds weights, not activations. Convolutions and pools are 2-D (4-D NCHW tensors).
- "Per channel" ([1,C,1,1]) means, for a 4-D NCHW tensor, an operand that broadcasts along
  axis 1 only; for rank-2/3 token tensors ([N, C], [B, N, C]) whose channels are the last
  axis, one that broadcasts along the last axis only (the bias of a dense layer on tokens).
- Clip is ReLU6 (0, 6) or HardTanh (any constant lo < hi); both bounds must be constants.
- Resize "integer factors" means integer upscaling of H and W, read from the static shapes.
- Reshape/Flatten/Squeeze are *layout-free* (see `is_layout_free_reshape`).
- MatMul runs as a dense layer (constant 2-D right operand) or inside an attention block
  (both operands computed, one of them the output of a Softmax, or the product feeding a
  Softmax through scale/mask ops); Softmax runs over the last axis of attention scores,
  between a MatMul and the MatMul with V. Deciding "attention" needs the graph
  (`GraphIndex`); without it these two report that they cannot be checked.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, helper, numpy_helper

from aipuc.errors import ModelError
from aipuc.hardware import AIPU

Shape = tuple[int | None, ...]
"""A tensor shape; None marks a dynamic dimension."""

DEFAULT_DOMAINS = ("", "ai.onnx")

NHWC_INPUTS_KEY = "aipuc.nhwc_inputs"
"""Metadata key of a cleaned core: JSON list of the inputs the host delivers as NHWC."""

_FLOAT_TYPES = frozenset(
    {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
)

SUPPORT_TABLE: dict[str, str] = {
    # Always supported.
    "BatchNormalization": "inference mode with constant statistics (folded)",
    "GlobalAveragePool": "",
    "GlobalMaxPool": "",
    "HardSwish": "",
    "LeakyRelu": "",
    "Relu": "",
    "Sigmoid": "",
    "Tanh": "",
    "Slice": "",
    "Constant": "data only; the graph cleaner folds it into an initializer",
    # Constrained.
    "Conv": "NOTSET padding; grouped: square kernel/stride/dilation and kernel area < 128",
    "ConvTranspose": "group 1, symmetric pads",
    "Add": "same shapes, a per-channel [1,C,1,1] operand or a scalar",
    "Mul": "same shapes, a per-channel [1,C,1,1] operand or a scalar",
    "Sub": "a per-channel [1,C,1,1] operand or a scalar",
    "AveragePool": "count_include_pad=1 when padded",
    "MaxPool": "storage_order 0",
    "Clip": "ReLU6 or HardTanh",
    "Concat": "4-D, on C, H or W",
    "Gemm": "transA 0",
    "HardSigmoid": "alpha 1/6, beta 0.5",
    "PRelu": "scalar or per-channel slope",
    "Pad": f"constant 0, channel pads a multiple of {AIPU.pword_bytes}",
    "Resize": "nearest or linear, integer factors",
    "Split": "axis > 0",
    "Reshape": "layout-free",
    "Flatten": "layout-free",
    "Squeeze": "layout-free",
    "Transpose": "identity or the last two axes",
    "MatMul": "dense layer or attention block",
    "Softmax": "attention block",
}
"""Operator -> its constraint on the accelerated core ("" = always supported)."""

# ------------------------------------------------------------------------------ graph facts


def _subgraphs(node: NodeProto) -> Iterator[GraphProto]:
    for attribute in node.attribute:
        if attribute.type == AttributeProto.GRAPH:
            yield attribute.g
        elif attribute.type == AttributeProto.GRAPHS:
            yield from attribute.graphs


def _outer_scope_names(graph: GraphProto) -> list[str]:
    """Names a subgraph reads from its enclosing graphs."""
    local = {value.name for value in graph.input}
    local.update(tensor.name for tensor in graph.initializer)
    local.update(name for node in graph.node for name in node.output)
    names = [name for node in graph.node for name in node_inputs(node)]
    names.extend(value.name for value in graph.output)
    return list(dict.fromkeys(name for name in names if name not in local))


def node_inputs(node: NodeProto) -> list[str]:
    """Every tensor a node reads: its inputs plus outer-scope names used by its subgraphs."""
    names = [name for name in node.input if name]
    for graph in _subgraphs(node):
        names.extend(_outer_scope_names(graph))
    return list(dict.fromkeys(names))


def node_dependencies(nodes: Sequence[NodeProto]) -> tuple[list[set[int]], list[set[int]]]:
    """Per node index, the indices of the nodes it reads from and of those reading it.

    Producers must be unique.
    """
    producer = {name: index for index, node in enumerate(nodes) for name in node.output if name}
    predecessors = [
        {producer[name] for name in node_inputs(node) if name in producer} for node in nodes
    ]
    successors: list[set[int]] = [set() for _ in nodes]
    for index, preds in enumerate(predecessors):
        for pred in preds:
            successors[pred].add(index)
    return predecessors, successors


def topological_order(nodes: Sequence[NodeProto]) -> list[NodeProto]:
    """`nodes` sorted so every producer precedes its consumers (stable for sorted graphs).

    Raises ModelError naming the nodes of a cycle. Producers must be unique.
    """
    predecessors, successors = node_dependencies(nodes)
    waiting = [len(preds) for preds in predecessors]
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for succ in successors[index]:
            waiting[succ] -= 1
            if waiting[succ] == 0:
                heapq.heappush(ready, succ)
    if len(order) < len(nodes):
        raise ModelError(
            f"the graph has a cycle: {_find_cycle(nodes, predecessors, order)}; "
            "ONNX graphs must be acyclic"
        )
    return [nodes[index] for index in order]


def _find_cycle(
    nodes: Sequence[NodeProto], predecessors: list[set[int]], sorted_indices: list[int]
) -> str:
    """One cycle among the nodes Kahn's algorithm could not sort, as 'a -> b -> a'."""
    left = set(range(len(nodes))) - set(sorted_indices)
    path: list[int] = []
    position: dict[int, int] = {}
    current = min(left)
    while current not in position:  # every unsorted node has an unsorted predecessor
        position[current] = len(path)
        path.append(current)
        current = min(predecessors[current] & left)
    cycle = path[position[current] :][::-1]
    return " -> ".join(nodes[index].name for index in [*cycle, cycle[0]])


def shape_of_value(value: onnx.ValueInfoProto) -> Shape | None:
    """The shape in a ValueInfo (None when its rank is unknown or it is not a tensor)."""
    if value.type.WhichOneof("value") != "tensor_type":
        return None
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(
        dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim
    )


def is_static(shape: Shape | None) -> bool:
    return shape is not None and None not in shape


def value_infos(graph: GraphProto) -> dict[str, onnx.ValueInfoProto]:
    """Every typed tensor of a graph: inputs, intermediate value_info and outputs."""
    return {value.name: value for value in (*graph.input, *graph.value_info, *graph.output)}


def shape_op_value(node: NodeProto, shape: Sequence[int]) -> np.ndarray:
    """What a Shape (with its start/end) or Size node gives for an input of static `shape`."""
    if node.op_type == "Size":
        return np.array(prod(shape), dtype=np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(tuple(shape)[slice(start, end)], dtype=np.int64)


def tensor_shapes(graph: GraphProto) -> dict[str, Shape]:
    """The shape of every tensor whose rank is known: typed values, then initializers."""
    shapes = {
        name: shape
        for name, value in value_infos(graph).items()
        if (shape := shape_of_value(value)) is not None
    }
    shapes.update({tensor.name: tuple(tensor.dims) for tensor in graph.initializer})
    return shapes


class LazyConstants(Mapping[str, np.ndarray]):
    """Initializers as NumPy arrays, converted on first access (weights can be large)."""

    def __init__(self, tensors: Sequence[TensorProto]):
        self._tensors = {tensor.name: tensor for tensor in tensors}
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = numpy_helper.to_array(self._tensors[name])
        return self._arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


@dataclass
class GraphIndex:
    """Lookup tables over a top-level graph that the support rules and the cleaner share."""

    nodes: list[NodeProto]
    producers: dict[str, NodeProto]
    consumers: dict[str, list[NodeProto]]
    shapes: dict[str, Shape]
    dtypes: dict[str, int]
    constants: Mapping[str, np.ndarray]
    graph_outputs: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, model: onnx.ModelProto) -> GraphIndex:
        graph = model.graph
        dtypes = {
            name: value.type.tensor_type.elem_type
            for name, value in value_infos(graph).items()
            if value.type.WhichOneof("value") == "tensor_type"
        }
        dtypes.update({tensor.name: tensor.data_type for tensor in graph.initializer})
        consumers: dict[str, list[NodeProto]] = {}
        for node in graph.node:
            for name in node_inputs(node):
                consumers.setdefault(name, []).append(node)
        return cls(
            nodes=list(graph.node),
            producers={name: node for node in graph.node for name in node.output if name},
            consumers=consumers,
            shapes=tensor_shapes(graph),
            dtypes=dtypes,
            constants=LazyConstants(graph.initializer),
            graph_outputs=[value.name for value in graph.output],
        )

    def check(self, node: NodeProto) -> list[str]:
        return check_node(node, self.shapes, self.constants, graph=self)


# ------------------------------------------------------------------------------ the rules


class _NodeView:
    """A node with its shapes and constants at hand, for the rule functions."""

    def __init__(
        self,
        node: NodeProto,
        shapes: Mapping[str, Shape],
        constants: Mapping[str, np.ndarray],
        graph: GraphIndex | None,
    ):
        self.node, self.shapes, self.constants, self.graph = node, shapes, constants, graph
        self.attrs = {
            attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute
        }

    def attr(self, name: str, default=None):
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def name(self, index: int) -> str:
        return self.node.input[index] if index < len(self.node.input) else ""

    def shape(self, index: int) -> tuple[int, ...]:
        return self.shapes[self.name(index)]  # type: ignore[return-value]  # checked static

    def out_shape(self, index: int = 0) -> tuple[int, ...]:
        return self.shapes[self.node.output[index]]  # type: ignore[return-value]

    def const(self, index: int) -> np.ndarray | None:
        name = self.name(index)
        return self.constants[name] if name and name in self.constants else None


Rule = Callable[[_NodeView], list[str]]


def _align(shape: Sequence[int], rank: int) -> tuple[int, ...]:
    """`shape` left-padded with 1s to `rank` (NumPy broadcasting)."""
    return (1,) * (rank - len(shape)) + tuple(shape)


def _is_scalar(shape: Sequence[int]) -> bool:
    return prod(shape) == 1


def _is_per_channel(operand: Sequence[int], full: Sequence[int]) -> bool:
    """Whether `operand` broadcasts over `full` along its channel axis only.

    The channel axis is 1 for 4-D NCHW tensors and the last axis for rank-2/3 token tensors.
    """
    if len(operand) > len(full) or len(full) not in (2, 3, 4):
        return False
    channel_axis = 1 if len(full) == 4 else len(full) - 1
    expected = tuple(full[axis] if axis == channel_axis else 1 for axis in range(len(full)))
    return _align(operand, len(full)) == expected


def _elementwise(view: _NodeView, *, same_shape: bool) -> list[str]:
    a, b = view.shape(0), view.shape(1)
    if same_shape and a == b:
        return []
    for operand, other in ((a, b), (b, a)):
        if _is_scalar(operand) and len(operand) <= len(other):
            return []
        if _is_per_channel(operand, other):
            return []
    allowed = "equal shapes, " if same_shape else ""
    return [
        f"operand shapes {list(a)} and {list(b)}: the accelerator needs {allowed}"
        "a per-channel [1,C,1,1] operand or a scalar"
    ]


def _needs_rank(view: _NodeView, rank: int, what: str) -> list[str]:
    actual = len(view.shape(0))
    return [] if actual == rank else [f"only {what} on {rank}-D tensors, got {actual}-D"]


def _needs_const(view: _NodeView, index: int, what: str) -> list[str]:
    if not view.name(index) or view.const(index) is not None:
        return []
    return [f"{what} '{view.name(index)}' must be a constant initializer"]


def _explicit_padding(view: _NodeView) -> list[str]:
    auto_pad = view.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        return []
    return [
        f"auto_pad={auto_pad}: only explicit pads (NOTSET) are supported; re-export with "
        "explicit padding"
    ]


def _batch_norm(view: _NodeView) -> list[str]:
    reasons = [
        reason
        for index, what in enumerate(("scale", "bias", "mean", "variance"), 1)
        for reason in _needs_const(view, index, what)
    ]
    if view.attr("training_mode", 0):
        reasons.append("training_mode=1; export the model in eval mode")
    return reasons


def _conv(view: _NodeView) -> list[str]:
    reasons = _explicit_padding(view) + _needs_rank(view, 4, "2-D convolution")
    reasons += _needs_const(view, 1, "weight") + _needs_const(view, 2, "bias")
    group = view.attr("group", 1)
    if group == 1 or reasons:
        return reasons
    kernel = view.shape(1)[2:]
    strides = tuple(view.attr("strides", [1, 1]))
    dilations = tuple(view.attr("dilations", [1, 1]))
    for what, pair in (("kernel", kernel), ("stride", strides), ("dilation", dilations)):
        if pair[0] != pair[1]:
            reasons.append(
                f"grouped convolution (group={group}) needs a square {what}, "
                f"got {pair[0]}x{pair[1]}"
            )
    if prod(kernel) >= 128:
        reasons.append(
            f"grouped convolution kernel area {kernel[0]}x{kernel[1]}={prod(kernel)} must be < 128"
        )
    return reasons


def _conv_transpose(view: _NodeView) -> list[str]:
    reasons = _explicit_padding(view) + _needs_rank(view, 4, "2-D transposed convolution")
    reasons += _needs_const(view, 1, "weight") + _needs_const(view, 2, "bias")
    if view.attr("group", 1) != 1:
        reasons.append(f"group={view.attr('group')}: transposed convolution needs group 1")
    if "output_shape" in view.attrs:
        reasons.append(
            "output_shape implies computed, possibly asymmetric pads; give "
            "explicit symmetric pads instead"
        )
    pads = list(view.attr("pads", [0, 0, 0, 0]))
    half = len(pads) // 2
    if pads[:half] != pads[half:]:
        reasons.append(f"pads {pads} are asymmetric; the accelerator needs begin == end")
    return reasons


def _add_mul(view: _NodeView) -> list[str]:
    return _elementwise(view, same_shape=True)


def _sub(view: _NodeView) -> list[str]:
    return _elementwise(view, same_shape=False)


def _average_pool(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D pooling")
    padded = any(view.attr("pads", [])) or view.attr("auto_pad", "NOTSET") in (
        "SAME_UPPER",
        "SAME_LOWER",
    )
    if padded and not view.attr("count_include_pad", 0):
        reasons.append("padded average pooling needs count_include_pad=1")
    return reasons


def _max_pool(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D pooling")
    if view.attr("storage_order", 0) != 0:
        reasons.append("storage_order=1 (column-major indices); only storage_order 0")
    if len(view.node.output) > 1 and view.node.output[1]:
        reasons.append("the Indices output is not supported")
    return reasons


def _clip(view: _NodeView) -> list[str]:
    low, high = view.const(1), view.const(2)
    if low is None or high is None or low.size != 1 or high.size != 1:
        return ["Clip needs constant scalar lower and upper bounds (ReLU6 or HardTanh)"]
    low_value, high_value = float(low.reshape(())), float(high.reshape(()))
    if not (np.isfinite(low_value) and np.isfinite(high_value) and low_value < high_value):
        return [f"Clip bounds [{low_value}, {high_value}] are neither ReLU6 nor HardTanh"]
    return []


def _concat(view: _NodeView) -> list[str]:
    rank = len(view.out_shape())
    if rank != 4:
        return [f"only 4-D concatenation is supported, got {rank}-D"]
    axis = view.attr("axis") % rank
    return [] if axis in (1, 2, 3) else ["concatenation on the batch axis; only C, H or W"]


def _gemm(view: _NodeView) -> list[str]:
    reasons = _needs_const(view, 1, "weight B")
    if view.attr("transA", 0):
        reasons.append("transA=1; the accelerator needs transA 0")
    return reasons


def _hard_sigmoid(view: _NodeView) -> list[str]:
    alpha, beta = view.attr("alpha", 0.2), view.attr("beta", 0.5)
    if np.isclose(alpha, 1 / 6, rtol=1e-6) and np.isclose(beta, 0.5, rtol=1e-6):
        return []
    return [
        f"alpha={alpha:g}, beta={beta:g}; only alpha 1/6 and beta 0.5 (hard-sigmoid of HardSwish)"
    ]


def _prelu(view: _NodeView) -> list[str]:
    reasons = _needs_const(view, 1, "slope")
    slope, data = view.shape(1), view.shape(0)
    if not (_is_scalar(slope) or _is_per_channel(slope, data)):
        reasons.append(
            f"slope shape {list(slope)} is neither a scalar nor per channel of {list(data)}"
        )
    return reasons


def _pad(view: _NodeView) -> list[str]:
    reasons = []
    mode = view.attr("mode", "constant")
    if mode != "constant":
        reasons.append(f"mode={mode}; only constant padding")
    value = view.const(2)
    if view.name(2) and (value is None or np.any(value != 0)):
        reasons.append("the pad value must be the constant 0")
    pads, axes = view.const(1), view.const(3)
    if pads is None or (view.name(3) and axes is None):
        return [*reasons, "pads and axes must be constants"]
    rank = len(view.shape(0))
    axes = list(range(rank)) if axes is None else [int(axis) % rank for axis in axes]
    if len(pads) != 2 * len(axes):
        return [*reasons, f"{len(pads)} pads for {len(axes)} axes"]
    begin = dict(zip(axes, pads[: len(axes)].tolist(), strict=True))
    end = dict(zip(axes, pads[len(axes) :].tolist(), strict=True))
    pword = AIPU.pword_bytes
    if rank == 4:
        if begin.get(0, 0) or end.get(0, 0):
            reasons.append("padding on the batch axis")
        channel = (begin.get(1, 0), end.get(1, 0))
        if channel[0] % pword or channel[1] % pword:
            reasons.append(f"channel pads {list(channel)} must be multiples of {pword}")
    return reasons


def _resize(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D resizing")
    mode = view.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        reasons.append(f"mode={mode}; only nearest or linear")
    if reasons:
        return reasons
    (n, c, h, w), (out_n, out_c, out_h, out_w) = view.shape(0), view.out_shape()
    if (n, c) != (out_n, out_c) or out_h % h or out_w % w:
        reasons.append(
            f"resizing {[n, c, h, w]} to {[out_n, out_c, out_h, out_w]} is not an "
            "integer upscaling of H and W"
        )
    return reasons


def _split(view: _NodeView) -> list[str]:
    axis = view.attr("axis", 0) % len(view.shape(0))
    return [] if axis > 0 else ["split on the batch axis; the accelerator needs axis > 0"]


def is_layout_free_reshape(in_shape: Sequence[int], out_shape: Sequence[int]) -> bool:
    """Whether a reshape only reinterprets the accelerator's buffer, moving no data.

    The core stores a 4-D NCHW tensor as NHWC with channels innermost. A reshape is
    *layout-free* when it

    - only inserts or removes axes of size 1 (they hold no data), or
    - keeps the batch and channel axes (0 and 1) and reshapes only the trailing axes
      after them: in NHWC those are whole C-vectors in row-major order, so merging or
      splitting them (e.g. [N,C,H,W] -> [N,C,H*W]) keeps every element at its offset.

    Anything that moves data across the channel axis (e.g. [N,C,H,W] -> [N,C*H*W] with
    H*W > 1, or splitting C) needs a transpose in NHWC and runs on the host.
    """
    if [dim for dim in in_shape if dim != 1] == [dim for dim in out_shape if dim != 1]:
        return True
    return len(in_shape) >= 2 and len(out_shape) >= 2 and in_shape[:2] == out_shape[:2]


def _reshape(view: _NodeView) -> list[str]:
    in_shape, out_shape = view.shape(0), view.out_shape()
    if is_layout_free_reshape(in_shape, out_shape):
        return []
    return [
        f"reshaping {list(in_shape)} to {list(out_shape)} is not layout-free (it moves "
        "data across the channel axis)"
    ]


def _transpose(view: _NodeView) -> list[str]:
    rank = len(view.shape(0))
    perm = list(view.attr("perm", list(range(rank))[::-1]))
    identity = list(range(rank))
    last_two = identity[:-2] + identity[-2:][::-1]
    if perm in (identity, last_two):
        return []
    return [f"perm={perm}; only the identity or swapping the last two axes"]


_SCORE_OPS = frozenset({"Mul", "Div", "Add", "Sub", "Where"})
"""Ops between an attention MatMul and its Softmax: scaling and masking."""
_SCORE_DEPTH = 3


def _reaches_softmax(graph: GraphIndex, tensor: str, depth: int = _SCORE_DEPTH) -> bool:
    for consumer in graph.consumers.get(tensor, []):
        if consumer.op_type == "Softmax":
            return True
        if (
            depth
            and consumer.op_type in _SCORE_OPS
            and _reaches_softmax(graph, consumer.output[0], depth - 1)
        ):
            return True
    return False


def _from_matmul(graph: GraphIndex, tensor: str, depth: int = _SCORE_DEPTH) -> bool:
    producer = graph.producers.get(tensor)
    if producer is None:
        return False
    if producer.op_type == "MatMul":
        return True
    return (
        bool(depth)
        and producer.op_type in _SCORE_OPS
        and any(_from_matmul(graph, name, depth - 1) for name in producer.input if name)
    )


def _matmul(view: _NodeView) -> list[str]:
    a, b = view.shape(0), view.shape(1)
    if view.const(1) is not None:
        return (
            []
            if len(b) == 2
            else [f"constant right operand of shape {list(b)}; a dense layer needs a 2-D weight"]
        )
    if view.const(0) is not None:
        return ["constant left operand; only the right operand can be a weight"]
    if view.graph is None:
        return [
            "MatMul of two computed tensors runs only in attention blocks, which needs "
            "the graph to decide"
        ]
    reasons = []
    if len(a) < 2 or len(b) < 2 or a[:-2] != b[:-2]:
        reasons.append(f"batched MatMul of {list(a)} and {list(b)} needs equal batch dims")
    graph = view.graph
    in_attention = _reaches_softmax(graph, view.node.output[0]) or any(
        graph.producers.get(name) is not None and graph.producers[name].op_type == "Softmax"
        for name in view.node.input
    )
    if not in_attention:
        reasons.append("MatMul of two computed tensors outside an attention block")
    return reasons


def _softmax(view: _NodeView) -> list[str]:
    rank = len(view.shape(0))
    reasons = []
    if view.attr("axis", -1) % rank != rank - 1:
        reasons.append(f"axis={view.attr('axis')}; attention softmax runs over the last axis")
    if view.graph is None:
        return [*reasons, "Softmax runs only in attention blocks, which needs the graph to decide"]
    graph = view.graph
    feeds_matmul = any(
        consumer.op_type == "MatMul" and consumer.input[0] == view.node.output[0]
        for consumer in graph.consumers.get(view.node.output[0], [])
    )
    if not (feeds_matmul and _from_matmul(graph, view.name(0))):
        reasons.append("Softmax outside an attention block (MatMul -> Softmax -> MatMul)")
    return reasons


_RULES: dict[str, Rule] = {
    "BatchNormalization": _batch_norm,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Add": _add_mul,
    "Mul": _add_mul,
    "Sub": _sub,
    "AveragePool": _average_pool,
    "MaxPool": _max_pool,
    "Clip": _clip,
    "Concat": _concat,
    "Gemm": _gemm,
    "HardSigmoid": _hard_sigmoid,
    "PRelu": _prelu,
    "Pad": _pad,
    "Resize": _resize,
    "Split": _split,
    "Reshape": _reshape,
    "Flatten": _reshape,
    "Squeeze": _reshape,
    "Transpose": _transpose,
    "MatMul": _matmul,
    "Softmax": _softmax,
}


def check_node(
    node: NodeProto,
    shapes: Mapping[str, Shape],
    initializers: Mapping[str, np.ndarray],
    *,
    graph: GraphIndex | None = None,
) -> list[str]:
    """Why `node` cannot run on the accelerated core (an empty list: it can).

    `shapes` maps tensor names to static shapes, `initializers` constant names to values;
    `graph` (optional) lets the rules see neighbours and element types.
    """
    if node.domain not in DEFAULT_DOMAINS or node.op_type not in SUPPORT_TABLE:
        return [f"{node.op_type} is not supported by the accelerator"]
    if node.op_type == "Constant":
        return []
    tensors = [name for name in (*node.input, *node.output) if name]
    dynamic = [name for name in tensors if not is_static(shapes.get(name))]
    if dynamic:
        return [f"tensor '{name}' has no static shape" for name in dynamic]
    if graph is not None:
        computed = [name for name in node.input if name and name not in initializers]
        not_float = [
            name
            for name in dict.fromkeys((*computed, node.output[0]))
            if graph.dtypes.get(name, TensorProto.FLOAT) not in _FLOAT_TYPES
        ]
        if not_float:
            kinds = ", ".join(
                f"'{name}' ({TensorProto.DataType.Name(graph.dtypes[name])})" for name in not_float
            )
            return [f"non-float tensors {kinds}; the accelerator computes on float data"]
    rule = _RULES.get(node.op_type)
    return rule(_NodeView(node, shapes, initializers, graph)) if rule else []


def is_accelerated(
    node: NodeProto,
    shapes: Mapping[str, Shape],
    initializers: Mapping[str, np.ndarray],
    *,
    graph: GraphIndex | None = None,
) -> bool:
    """Whether the accelerated core can run `node`."""
    return not check_node(node, shapes, initializers, graph=graph)


@dataclass(frozen=True)
class Violation:
    """One reason one node cannot run on the accelerated core."""

    node: str
    op_type: str
    reason: str

    def __str__(self) -> str:
        return f"node '{self.node}' ({self.op_type}): {self.reason}"


def nhwc_inputs(model: onnx.ModelProto) -> list[str]:
    """The inputs a cleaned core takes as NHWC (see `graph_cleaner.CleanedModel`)."""
    for entry in model.metadata_props:
        if entry.key == NHWC_INPUTS_KEY:
            return list(json.loads(entry.value))
    return []


def is_input_layout_transform(node: NodeProto, model: onnx.ModelProto) -> bool:
    """Whether `node` transposes an NHWC core input to NCHW (free on the AIPU).

    (An equivalent Reshape only moves size-1 axes: it is layout-free and supported anyway.)
    """
    perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
    return (
        node.op_type == "Transpose"
        and perm == [[0, 3, 1, 2]]
        and node.input[0] in nhwc_inputs(model)
    )


def validate_operators(model: onnx.ModelProto) -> list[Violation]:
    """Every support violation of every node of a shape-inferred model, in graph order.

    The layout transforms of NHWC core inputs are exempt: the accelerator's native layout is
    NHWC, so legalization removes them.
    """
    graph = GraphIndex.of(model)
    return [
        Violation(node.name, node.op_type, reason)
        for node in model.graph.node
        if not is_input_layout_transform(node, model)
        for reason in graph.check(node)
    ]
