"""Graph-optimizing helpers shared by the loader and the graph cleaner (exact rewrites only).

- `infer_shapes`: strict ONNX shape inference from the graph inputs alone.
- `fold_constants`: Constant nodes, Shape/Size of static tensors and every deterministic node
  whose inputs are all constant become initializers. The folded nodes run once, in one host
  session, with the same kernels the uncut model would use. A Constant node is data, so it
  always folds, whatever its size: a weight that arrives as a Constant node then behaves
  exactly like an initializer (the support rules see a constant weight).
- `optimize`: Identity and inference-mode Dropout disappear (a used Dropout mask, all true in
  inference, becomes a constant), then constants fold, dead nodes and unused initializers go,
  and shapes are inferred again.

This module sits below both users (`loader` imports `fold_constants`, `graph_cleaner`
imports `optimize`), so neither imports the other.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from math import prod

import numpy as np
import onnx
from onnx import GraphProto, NodeProto, TensorProto, helper, numpy_helper

from aipuc.errors import ModelError, first_line
from aipuc.frontend.support import (
    DEFAULT_DOMAINS,
    is_static,
    node_inputs,
    shape_op_value,
    tensor_shapes,
    value_infos,
)
from aipuc.runtime.host import HostRunner

_NON_DETERMINISTIC = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)
_FOLD_GROWTH_LIMIT = 1 << 16
"""A folded output may exceed its constant inputs by this many elements (keeps models small:
ConstantOfShape or Expand of a tiny constant into a huge tensor stays a node)."""


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Strict shape inference from the graph inputs alone (stale annotations are dropped).

    A graph output whose shape inference cannot tell keeps its declared shape. An output that
    is a graph input or an initializer gets that tensor's type first: onnx infers nothing at
    all for a graph whose pass-through output has lost its shape.
    """
    graph = model.graph
    del graph.value_info[:]
    sources = {value.name: value.type for value in graph.input}
    for tensor in graph.initializer:
        sources.setdefault(
            tensor.name, helper.make_tensor_type_proto(tensor.data_type, tensor.dims)
        )
    declared = {}
    for value in graph.output:
        if value.name in sources:
            value.type.CopyFrom(sources[value.name])
        elif value.type.WhichOneof("value") == "tensor_type":
            if value.type.tensor_type.HasField("shape"):
                declared[value.name] = copy.deepcopy(value.type.tensor_type.shape)
            value.type.tensor_type.ClearField("shape")
    try:
        model = onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as error:  # InferenceError, ValidationError, RuntimeError
        raise ModelError(f"ONNX shape inference failed: {first_line(error)}") from None
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        if value.name in declared and not tensor_type.HasField("shape"):
            tensor_type.shape.CopyFrom(declared[value.name])
    return model


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    """The optimisations of the module docstring, on a copy of `model`."""
    model = copy.deepcopy(model)
    _remove_identities(model.graph)
    model = fold_constants(model)
    _remove_dead_code(model.graph)
    return infer_shapes(model)


def _is_identity(
    node: NodeProto, constants: set[str], consumed: set[str], graph: GraphProto
) -> bool:
    if node.domain not in DEFAULT_DOMAINS:
        return False
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    if len(node.output) > 1 and node.output[1] and node.output[1] in consumed:
        return False  # the mask is used
    if len(node.input) > 2 and node.input[2]:
        training = node.input[2]
        if training not in constants:
            return False
        tensor = next(t for t in graph.initializer if t.name == training)
        return not bool(numpy_helper.to_array(tensor))
    return True


def _rename_inputs(nodes: Iterable[NodeProto], old: str, new: str) -> None:
    for node in nodes:
        for position, name in enumerate(node.input):
            if name == old:
                node.input[position] = new


def _remove_identities(graph: GraphProto) -> None:
    """Removes Identity/inference Dropout nodes, keeping every graph output name."""
    outputs = {value.name for value in graph.output}
    sources = {value.name for value in graph.input} | {t.name for t in graph.initializer}
    constants = {tensor.name for tensor in graph.initializer}
    subgraph_reads = {
        name for node in graph.node for name in node_inputs(node) if name not in node.input
    }
    consumed = {name for node in graph.node for name in node_inputs(node)}
    removed = set()
    for position, node in enumerate(graph.node):
        if not _is_identity(node, constants, consumed, graph):
            continue
        source, target = node.input[0], node.output[0]
        if {source, target} & subgraph_reads:
            continue
        if target not in outputs:
            _rename_inputs(graph.node, target, source)
        elif source not in outputs and source not in sources:
            for other in graph.node:
                other.output[:] = [target if name == source else name for name in other.output]
            _rename_inputs(graph.node, source, target)
        else:
            continue  # an input passed straight to an output
        removed.add(position)
    kept = [copy.deepcopy(node) for i, node in enumerate(graph.node) if i not in removed]
    del graph.node[:]
    graph.node.extend(kept)


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replaces computations on constants by initializers holding their values, in place.

    Both callers own `model` (`optimize` works on its copy, the loader on its own), so no
    second copy of the weights is made. Graph outputs stay computed, so every part of a
    split keeps its outputs. Returns `model`.
    """
    graph = model.graph
    shapes = tensor_shapes(graph)
    constants = {tensor.name for tensor in graph.initializer}
    outputs = {value.name for value in graph.output}
    new_initializers: list[TensorProto] = []
    folded: list[int] = []
    for position, node in enumerate(graph.node):
        if (
            node.domain not in DEFAULT_DOMAINS
            or node.op_type in _NON_DETERMINISTIC
            or any(name in outputs for name in node.output)
            or len(node_inputs(node)) != len([name for name in node.input if name])
        ):
            continue
        if node.op_type in ("Shape", "Size") and is_static(shapes.get(node.input[0])):
            value = shape_op_value(node, shapes[node.input[0]])  # type: ignore[arg-type]
            new_initializers.append(numpy_helper.from_array(value, node.output[0]))
            constants.add(node.output[0])
            folded.append(position)
            continue
        if node.op_type == "Constant" or (
            all(name in constants for name in node.input if name) and _small_enough(node, shapes)
        ):
            folded.append(position)
            constants.update(name for name in node.output if name)
    if not folded:
        return model
    folded_set = set(folded)
    kept = [node for i, node in enumerate(graph.node) if i not in folded_set]
    needed = {name for node in kept for name in node_inputs(node)}
    to_run = [graph.node[i] for i in folded if graph.node[i].op_type not in ("Shape", "Size")]
    results = _run_constant_nodes(model, to_run, new_initializers, needed)
    new_initializers = [t for t in new_initializers if t.name in needed]
    new_initializers += [numpy_helper.from_array(value, name) for name, value in results.items()]
    kept = [copy.deepcopy(node) for node in kept]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(new_initializers)
    now_constant = {tensor.name for tensor in new_initializers}
    stale = [copy.deepcopy(v) for v in graph.value_info if v.name not in now_constant]
    del graph.value_info[:]
    graph.value_info.extend(stale)
    return model


def _small_enough(node: NodeProto, shapes: dict) -> bool:
    inputs = sum(prod(shapes[name]) for name in node.input if name and is_static(shapes.get(name)))
    out = sum(prod(shapes[name]) for name in node.output if name and is_static(shapes.get(name)))
    return out <= inputs + _FOLD_GROWTH_LIMIT


def _run_constant_nodes(
    model: onnx.ModelProto,
    nodes: Sequence[NodeProto],
    extra_initializers: Sequence[TensorProto],
    needed: set[str],
) -> dict[str, np.ndarray]:
    """Runs constant nodes in one host session; returns their outputs that `needed` names."""
    wanted = [name for node in nodes for name in node.output if name and name in needed]
    if not wanted:
        return {}
    reads = {name for node in nodes for name in node.input if name}
    initializers = [t for t in (*model.graph.initializer, *extra_initializers) if t.name in reads]
    infos = value_infos(model.graph)
    graph = helper.make_graph(
        list(nodes),
        "fold_constants",
        [],
        [infos.get(name) or helper.make_empty_tensor_value_info(name) for name in wanted],
        initializers,
    )
    folding = helper.make_model(
        graph, opset_imports=model.opset_import, ir_version=model.ir_version
    )
    folding.functions.extend(model.functions)
    try:
        return HostRunner(folding).run({})
    except Exception as error:  # the host engine's own error types
        raise ModelError(
            f"constant folding failed on nodes "
            f"{[node.name for node in nodes][:5]}: "
            f"{first_line(error)}"
        ) from None


def _remove_dead_code(graph: GraphProto) -> None:
    """Drops nodes no graph output depends on, then initializers nothing reads."""
    needed = {value.name for value in graph.output}
    live = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            live.append(copy.deepcopy(node))
            needed.update(node_inputs(node))
    live.reverse()
    if len(live) != len(graph.node):
        del graph.node[:]
        graph.node.extend(live)
    used = [copy.deepcopy(t) for t in graph.initializer if t.name in needed]
    if len(used) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(used)
