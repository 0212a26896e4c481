"""Which ONNX nodes the accelerator runs: the operator support table as data.

`SUPPORT_TABLE` lists every operator the accelerator runs with its constraint in words
(docs/coverage.md measures the placement on real architectures); the rule functions in
`_RULES` check those constraints on a node. `check_node` returns the reasons a node cannot
be accelerated (empty: supported). Such a node runs on the host: the graph cleaner puts it
in the preamble or the postamble when it is input preprocessing or a trailing node, and
otherwise leaves it where it is, where the importer makes it an `axq.host` op between
accelerated segments.

Every check needs static shapes (the loader provides them) and treats a tensor as constant
when it is an initializer. The rules follow the AIPU model of design.md:

- Weighted ops (Conv, ConvTranspose, Gemm, dense MatMul) need constant weights: the IMC
  holds weights, not activations. Convolutions and pools are 2-D (4-D NCHW tensors).
- Data movement is a strided DMA that copies blocks of up to 5 axes with arbitrary byte
  strides (zero strides broadcast). So any static Reshape, Flatten, Squeeze, Unsqueeze,
  Transpose, Slice, Split, Concat and Pad is legal, and elementwise ops broadcast any
  operand (the layout rule: a 4-D tensor produced or consumed by spatial ops is stored
  NHWC, other tensors row-major in logical order; a reshape or transpose that is not a pure
  reinterpretation of the buffer, see `is_layout_free_reshape`, is a DMA permutation).
- Unary functions are 256-entry tables (LUT), whatever their parameters.
- MatMul runs as a dense layer (constant 2-D right operand) or, with both operands
  computed, as MVMs whose weightsets are loaded at run time (equal batch dimensions).
  Softmax runs on the DPU in float18 over any axis (the lowering makes that axis innermost).
- Resize (nearest: DMA gathers; linear: two gathers and a DPU weighted sum per axis) scales
  H and W by any factor.
- A LayerNorm spelled in primitive ops (`patterns.find_layer_norms`) runs as one DPU op, so
  its ReduceMean, Sub, Pow, Sqrt and Div nodes are supported there (with a `GraphIndex`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from math import prod

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, helper, numpy_helper

from aipuc import constraints
from aipuc.errors import ModelError
from aipuc.frontend.patterns import LayerNormMatch, find_layer_norms

Shape = tuple[int | None, ...]
"""A tensor shape; None marks a dynamic dimension."""

DEFAULT_DOMAINS = ("", "ai.onnx")

NHWC_INPUTS_KEY = "aipuc.nhwc_inputs"
"""Metadata key of a cleaned core: JSON list of the inputs the host delivers as NHWC."""

_LUT = "a 256-entry table (LUT)"
_DMA = "data movement (strided DMA)"

SUPPORT_TABLE: dict[str, str] = {
    # Unary functions: tables.
    **{
        op_type: _LUT
        for op_type in (
            "Relu",
            "Sigmoid",
            "Tanh",
            "HardSwish",
            "HardSigmoid",
            "LeakyRelu",
            "Elu",
            "Selu",
            "Celu",
            "Softplus",
            "Softsign",
            "Mish",
            "ThresholdedRelu",
            "Exp",
            "Log",
            "Erf",
            "Sqrt",
            "Reciprocal",
            "Abs",
            "Neg",
            "Sin",
            "Cos",
            "Gelu",
        )
    },
    "Clip": "constant bounds (a clamp of the codes)",
    "PRelu": "constant slope",
    # Data movement.
    **{
        op_type: _DMA
        for op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat")
    },
    "Identity": "vanishes",
    "Dropout": "inference mode (vanishes; a mask output is all true)",
    "Constant": "data only; folded into an initializer",
    "Slice": f"{_DMA}; constant starts, ends, axes and steps",
    "Split": f"{_DMA}; constant split sizes",
    "Pad": f"{_DMA}; constant, reflect or edge mode, constant non-negative pads",
    "Resize": "nearest or linear, 4-D, H and W only",
    "Upsample": "as Resize (deprecated; an asymmetric, floor-rounding Resize)",
    # Elementwise, any broadcasting.
    "Add": "any broadcasting",
    "Sub": "any broadcasting",
    "Mul": "any broadcasting",
    "Div": "any broadcasting (by a constant: a multiplication; else reciprocal table + mul)",
    "Pow": "constant scalar exponent (2: a multiplication; else a table)",
    "Sum": "n-ary: a chain of additions",
    "Mean": "n-ary: a chain of additions and a scaling",
    "Max": "n-ary: a chain of elementwise maxima",
    "Min": "n-ary: a chain of elementwise minima",
    # Weighted.
    "Conv": (
        "2-D, constant weights; grouped: square kernel and dilation, kernel area < 128 "
        "(a non-square stride is a stride-1 convolution and a row/column subsample)"
    ),
    "ConvTranspose": "2-D, constant weights, group 1, symmetric pads",
    "Gemm": "constant B",
    "MatMul": "dense layer (constant 2-D right operand) or equal batch dimensions",
    "BatchNormalization": "inference mode with constant statistics (folded)",
    # Pooling and reductions.
    "MaxPool": "2-D, storage_order 0, no Indices output",
    "AveragePool": "2-D, no dilation",
    "GlobalAveragePool": "",
    "GlobalMaxPool": "",
    "ReduceMean": "over all spatial axes (a global average pool) or inside a LayerNorm",
    "ReduceMax": "over all spatial axes (a global max pool)",
    # Normalisation (DPU, float18).
    "LayerNormalization": "constant scale and bias, no Mean/InvStdDev output",
    "Softmax": "",
}
"""Operator -> its constraint on the accelerator ("" = always supported)."""

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

    @cached_property
    def layer_norms(self) -> list[LayerNormMatch]:
        """The decomposed LayerNorms of the graph (`patterns.find_layer_norms`)."""
        return find_layer_norms(
            self.nodes, self.consumers, self.constants, self.shapes, self.graph_outputs
        )

    @cached_property
    def in_layer_norm(self) -> set[str]:
        """Names of the nodes that belong to a decomposed LayerNorm."""
        return {node.name for match in self.layer_norms for node in match.nodes}

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


def _needs_rank(view: _NodeView, rank: int, what: str) -> list[str]:
    actual = len(view.shape(0))
    return [] if actual == rank else [f"only {what} on {rank}-D tensors, got {actual}-D"]


def _needs_const(view: _NodeView, index: int, what: str) -> list[str]:
    if not view.name(index) or view.const(index) is not None:
        return []
    return [f"{what} '{view.name(index)}' must be a constant initializer"]


def _needs_consts(view: _NodeView, first: int, what: str) -> list[str]:
    """Every input from `first` on must be constant (shape parameters, pads, ...)."""
    return [
        reason
        for index in range(first, len(view.node.input))
        for reason in _needs_const(view, index, what)
    ]


def _unused_outputs(view: _NodeView, first: int, what: str) -> list[str]:
    """Optional outputs from `first` on must be absent or unused (needs the graph)."""
    names = [name for name in view.node.output[first:] if name]
    if view.graph is None:
        return [f"the {what} output is present" for _ in names[:1]]
    graph = view.graph
    used = [name for name in names if name in graph.graph_outputs or graph.consumers.get(name)]
    return [f"the {what} output '{name}' is used" for name in used]


def _batch_norm(view: _NodeView) -> list[str]:
    reasons = [
        reason
        for index, what in enumerate(("scale", "bias", "mean", "variance"), 1)
        for reason in _needs_const(view, index, what)
    ]
    if view.attr("training_mode", 0):
        reasons.append("training_mode=1 (batch statistics); export the model in eval mode")
    return reasons


def _conv(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D convolution")
    reasons += _needs_const(view, 1, "weight") + _needs_const(view, 2, "bias")
    if reasons:
        return reasons
    # a non-square stride is rewritten (stride 1 and a row subsample): not constrained here
    return constraints.grouped_conv(
        view.attr("group", 1), view.shape(1)[2:], tuple(view.attr("dilations", [1, 1]))
    )


def _conv_transpose_asymmetric(view: _NodeView) -> bool:
    """Whether a ConvTranspose's explicit or implied (output_shape, auto_pad) pads differ
    between begin and end on some axis (implied pads split an odd total unevenly)."""
    in_spatial, kernel = view.shape(0)[2:], view.shape(1)[2:]
    strides = list(view.attr("strides", [1] * len(kernel)))
    dilations = list(view.attr("dilations", [1] * len(kernel)))
    output_padding = list(view.attr("output_padding", [0] * len(kernel)))
    output_shape = view.attr("output_shape")
    if output_shape is None and view.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [size * s for size, s in zip(in_spatial, strides, strict=True)]
    if output_shape is None:
        pads = [0] * 2 * len(kernel)
        if view.attr("auto_pad", "NOTSET") == "NOTSET":
            pads = list(view.attr("pads", pads))
        return pads[: len(kernel)] != pads[len(kernel) :]
    return any(
        max(s * (n - 1) + p + (k - 1) * d + 1 - target, 0) % 2
        for n, k, s, d, p, target in zip(
            in_spatial,
            kernel,
            strides,
            dilations,
            output_padding,
            output_shape[-len(kernel) :],
            strict=True,
        )
    )


def _conv_transpose(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D transposed convolution")
    reasons += _needs_const(view, 1, "weight") + _needs_const(view, 2, "bias")
    if reasons:
        return reasons
    return constraints.conv_transpose(view.attr("group", 1), _conv_transpose_asymmetric(view))


def _average_pool(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D pooling")
    if any(d != 1 for d in view.attr("dilations", [])):
        reasons.append(f"dilations {list(view.attr('dilations'))}: dilated average pooling")
    return reasons


def _max_pool(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D pooling")
    if view.attr("storage_order", 0) != 0:
        reasons.append("storage_order=1 (column-major indices); only storage_order 0")
    if len(view.node.output) > 1 and view.node.output[1]:
        reasons.append("the Indices output (argmax positions) is not computed on the accelerator")
    return reasons


def _clip(view: _NodeView) -> list[str]:
    return _needs_consts(view, 1, "the clip bound")


def _gemm(view: _NodeView) -> list[str]:
    return _needs_const(view, 1, "weight B")


def _prelu(view: _NodeView) -> list[str]:
    return _needs_const(view, 1, "slope")


def _pow(view: _NodeView) -> list[str]:
    if view.graph is not None and view.node.name in view.graph.in_layer_norm:
        return []
    exponent = view.const(1)
    if exponent is None or exponent.size != 1:
        return ["the exponent must be a constant scalar (a table of x ** p)"]
    return []


def _pad(view: _NodeView) -> list[str]:
    reasons = _needs_consts(view, 1, "pads, constant_value and axes")
    mode = view.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        reasons.append(f"mode={mode}; only constant, reflect or edge padding")
    pads = view.const(1)
    if pads is not None and np.any(pads < 0):
        reasons.append(f"negative pads {pads.tolist()} (cropping)")
    return reasons


_RESIZE_TRANSFORMS = frozenset({"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"})


def _resize(view: _NodeView) -> list[str]:
    reasons = _needs_rank(view, 4, "2-D resizing") + _needs_consts(view, 1, "roi, scales, sizes")
    mode = view.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        reasons.append(f"mode={mode}; only nearest or linear")
    transform = view.attr("coordinate_transformation_mode", "half_pixel")
    if transform not in _RESIZE_TRANSFORMS:
        reasons.append(f"coordinate_transformation_mode={transform}")
    if view.attr("antialias", 0):
        reasons.append("antialias=1")
    if view.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        reasons.append(f"keep_aspect_ratio_policy={view.attr('keep_aspect_ratio_policy')}")
    if reasons:
        return reasons
    return constraints.resize(view.shape(0), view.out_shape())


def _reduce(kind: str) -> Rule:
    def rule(view: _NodeView) -> list[str]:
        if (
            kind == "average"
            and view.graph is not None
            and view.node.name in view.graph.in_layer_norm
        ):
            return []
        rank = len(view.shape(0))
        axes = view.attr("axes")
        if axes is None and view.name(1):
            constant = view.const(1)
            if constant is None:
                return ["the axes input must be a constant"]
            axes = constant.ravel().tolist()
        spatial = list(range(2, rank))
        if rank < 3 or sorted(int(a) % rank for a in axes or []) != spatial:
            return [
                f"reduction over axes {list(axes) if axes is not None else 'all'} of a "
                f"{rank}-D tensor; only over all spatial axes {spatial} (a global {kind} pool)"
            ]
        return []

    return rule


def _dropout(view: _NodeView) -> list[str]:
    training = view.name(2)
    if not training:
        return []
    value = view.const(2)
    if value is None or bool(value.reshape(())):
        return ["training_mode is not the constant false (random masks are host work)"]
    return []


def _layer_norm(view: _NodeView) -> list[str]:
    reasons = _needs_const(view, 1, "scale") + _needs_const(view, 2, "bias")
    return reasons + _unused_outputs(view, 1, "Mean/InvStdDev")


def _slice(view: _NodeView) -> list[str]:
    return _needs_consts(view, 1, "starts, ends, axes and steps")


def _split(view: _NodeView) -> list[str]:
    return _needs_consts(view, 1, "the split sizes")


def is_layout_free_reshape(in_shape: Sequence[int], out_shape: Sequence[int]) -> bool:
    """Whether a reshape only reinterprets the accelerator's buffer, moving no data.

    The accelerator stores a 4-D NCHW tensor as NHWC with channels innermost. A reshape is
    *layout-free* when it

    - only inserts or removes axes of size 1 (they hold no data), or
    - keeps the batch and channel axes (0 and 1) and reshapes only the trailing axes
      after them: in NHWC those are whole C-vectors in row-major order, so merging or
      splitting them (e.g. [N,C,H,W] -> [N,C,H*W]) keeps every element at its offset.

    Anything else (e.g. [N,C,H,W] -> [N,C*H*W] with H*W > 1, or splitting C for a channel
    shuffle) is a permutation of the buffer, which the strided DMA performs.
    """
    if [dim for dim in in_shape if dim != 1] == [dim for dim in out_shape if dim != 1]:
        return True
    return len(in_shape) >= 2 and len(out_shape) >= 2 and in_shape[:2] == out_shape[:2]


def _matmul(view: _NodeView) -> list[str]:
    return constraints.matmul(
        view.shape(0), view.shape(1), view.const(0) is not None, view.const(1) is not None
    )


_RULES: dict[str, Rule] = {
    "BatchNormalization": _batch_norm,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "AveragePool": _average_pool,
    "MaxPool": _max_pool,
    "Clip": _clip,
    "Gemm": _gemm,
    "PRelu": _prelu,
    "Pow": _pow,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
    "ReduceMean": _reduce("average"),
    "ReduceMax": _reduce("max"),
    "Dropout": _dropout,
    "LayerNormalization": _layer_norm,
    "Slice": _slice,
    "Split": _split,
    "MatMul": _matmul,
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
            if graph.dtypes.get(name, TensorProto.FLOAT) != TensorProto.FLOAT
        ]
        if not_float:
            kinds = ", ".join(
                f"'{name}' ({TensorProto.DataType.Name(graph.dtypes[name])})" for name in not_float
            )
            return [
                f"non-float32 tensors {kinds}; the accelerator computes on float32 models "
                "(quantized to int8)"
            ]
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
