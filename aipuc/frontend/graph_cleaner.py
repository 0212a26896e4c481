"""The graph cleaner: simplify a loaded model, then cut it into host preamble, core, postamble.

Cleaning optimisations (all exact: nothing is recomputed differently):

1. Identity and inference-mode Dropout disappear (their consumers read the source tensor).
2. `fold_constants`: Constant nodes, Shape/Size of static tensors and every deterministic
   node whose inputs are all constant become initializers. The folded nodes run once, in one
   host session, with the same kernels the uncut model would use.
3. Dead nodes and unused initializers are removed; shapes are inferred again.

The split (see `_partition`) runs in topological order over the nodes the core cannot run
(`support.check_node`), each of which must go to the host:

- *preamble* if none of its not-yet-preamble ancestors is a MAC operator (Conv,
  ConvTranspose, Gemm, MatMul): it is input preprocessing (normalisation, layout transposes),
  so it moves to the preamble together with all its ancestors, supported or not;
- *postamble* otherwise, together with all its descendants (decode tails, NMS, a classifier
  Softmax, and everything after an unsupported node in the middle of the network).

Nodes of `node_type` whose largest constant input exceeds the weight-size `condition` are
sent to the postamble first. The preamble is closed under ancestors and the postamble under
descendants, so the core (the rest) is convex: no path leaves it and comes back, and the
three parts run one after the other. Independent branches stay in the core: the three
detection heads of a YOLO model keep their convolutions and only the decode tail moves.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import numpy as np
import onnx
from onnx import GraphProto, NodeProto, TensorProto, helper, numpy_helper

from aipuc.config import GraphCleanerCondition, GraphCleanerNode
from aipuc.errors import AipucError, ConfigError, ModelError, first_line
from aipuc.frontend.loader import infer_shapes
from aipuc.frontend.support import (
    DEFAULT_DOMAINS,
    NHWC_INPUTS_KEY,
    GraphIndex,
    is_static,
    node_dependencies,
    node_inputs,
    shape_op_value,
    tensor_shapes,
    value_infos,
)
from aipuc.runtime.host import HostRunner

MAC_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
"""Operators that do the network's real work; the preamble never takes one."""

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
_PROTOBUF_LIMIT = 2**31 - 1


@dataclass
class CleanedModel:
    """The optimised model and its three parts; a part without nodes is None.

    The `*_inputs`/`*_outputs` name the tensors crossing each cut (they equal the part
    models' inputs/outputs). With `remove_layout_transform_from_preamble`,
    `nhwc_core_inputs` are the core inputs whose NHWC->NCHW transform sits inside the core
    (moved there from the end of the preamble): the host delivers them NHWC, the accelerator's
    native layout, and legalization drops the transform; the core model records them as a JSON
    list under the metadata key `NHWC_INPUTS_KEY`. `host_reasons` says, per host node, why it
    is not in the core.
    """

    full: onnx.ModelProto
    preamble: onnx.ModelProto | None
    core: onnx.ModelProto | None
    postamble: onnx.ModelProto | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    preamble_outputs: tuple[str, ...] = ()
    core_inputs: tuple[str, ...] = ()
    core_outputs: tuple[str, ...] = ()
    postamble_inputs: tuple[str, ...] = ()
    nhwc_core_inputs: tuple[str, ...] = ()
    host_reasons: dict[str, str] = field(default_factory=dict)


def clean_graph(
    model: onnx.ModelProto,
    *,
    split_pre_post_processing: bool,
    condition: str | None,
    node_type: str | None,
    threshold: int,
    remove_layout_transform_from_preamble: bool,
    dump_core_onnx: Path | None,
    dump_full_opt_onnx: Path | None,
) -> CleanedModel:
    """Optimises a loaded model (see `aipuc.frontend.loader.load_model`) and splits it.

    With `split_pre_post_processing` False the support rules do not split: the whole model is
    the core and unsupported operators run as host ops inside it; the weight-size condition
    still moves its nodes to the postamble. `dump_full_opt_onnx` receives the optimised model
    before the split, `dump_core_onnx` the core (when any node is left for it).
    """
    condition, node_type = _validated_condition(condition, node_type)
    full = optimize(model)
    if not full.graph.node:
        raise ModelError(
            "no node of the model computes its outputs: every output is a graph "
            "input or a constant (the rest is dead code); there is nothing to "
            "compile"
        )
    constants = {tensor.name for tensor in full.graph.initializer}
    constant_outputs = [value.name for value in full.graph.output if value.name in constants]
    if constant_outputs:
        raise ModelError(
            f"graph output '{constant_outputs[0]}' is a constant (an initializer) "
            "that no part of a split model computes; remove it from the model's "
            "outputs"
        )
    if dump_full_opt_onnx is not None:
        save_model(full, dump_full_opt_onnx)
    index = GraphIndex.of(full)
    nodes = index.nodes
    reasons = (
        {i: "; ".join(index.check(node)) for i, node in enumerate(nodes)}
        if split_pre_post_processing
        else {}
    )
    unsupported = {i for i, reason in reasons.items() if reason}
    forced = {}
    if condition is not None:
        for i, node in enumerate(nodes):
            reason = _weight_condition(node, index, condition, node_type, threshold)
            if reason:
                forced[i] = reason
    preamble, postamble, host_reasons = _partition(nodes, unsupported, forced, reasons)
    core = [i for i in range(len(nodes)) if i not in preamble and i not in postamble]
    nhwc: list[str] = []
    if remove_layout_transform_from_preamble:
        core = _move_layout_transforms(index, preamble, core, host_reasons)
        nhwc = _nhwc_core_inputs(index, core)
    part_nodes = [[nodes[i] for i in sorted(part)] for part in (preamble, core, postamble)]
    crossing = _crossing_tensors(full.graph, part_nodes)
    pre, mid, post = (
        _extract(full, members, suffix, outputs) if members else None
        for members, suffix, outputs in zip(
            part_nodes, ("preamble", "core", "postamble"), crossing, strict=True
        )
    )
    for part, label in ((pre, "preamble"), (post, "postamble")):
        if part is not None:
            _check_host_part(part, label)
    if nhwc and mid is not None:
        mid.metadata_props.append(
            onnx.StringStringEntryProto(key=NHWC_INPUTS_KEY, value=json.dumps(nhwc))
        )
    if dump_core_onnx is not None and mid is not None:
        save_model(mid, dump_core_onnx)
    return CleanedModel(
        full=full,
        preamble=pre,
        core=mid,
        postamble=post,
        inputs=tuple(value.name for value in full.graph.input),
        outputs=tuple(value.name for value in full.graph.output),
        preamble_outputs=_output_names(pre),
        core_inputs=_input_names(mid),
        core_outputs=_output_names(mid),
        postamble_inputs=_input_names(post),
        nhwc_core_inputs=tuple(nhwc),
        host_reasons=host_reasons,
    )


def _check_host_part(part: onnx.ModelProto, label: str) -> None:
    """The host engine must accept a host part now, not at the model's first inference.

    Building its session checks every operator (custom domains, unknown ops) and attribute
    (an invalid auto_pad or pad mode) that the support rules merely sent to the host.
    """
    try:
        HostRunner(part)
    except AipucError as error:
        nodes = ", ".join(f"'{node.name}' ({node.op_type})" for node in part.graph.node[:3])
        more = f" and {len(part.graph.node) - 3} more" if len(part.graph.node) > 3 else ""
        raise ModelError(
            f"the host {label} (nodes {nodes}{more}) cannot run: {error}; fix "
            "the node's attributes or replace it by standard ONNX operators"
        ) from None


def _input_names(part: onnx.ModelProto | None) -> tuple[str, ...]:
    return () if part is None else tuple(value.name for value in part.graph.input)


def _output_names(part: onnx.ModelProto | None) -> tuple[str, ...]:
    return () if part is None else tuple(value.name for value in part.graph.output)


def save_model(model: onnx.ModelProto, path: Path | str) -> None:
    """Saves a model, with its weights in `<name>.data` beside it when over protobuf's 2 GiB."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.ByteSize() < _PROTOBUF_LIMIT:
        onnx.save_model(model, path)
        return
    onnx.save_model(
        copy.deepcopy(model),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
    )


# ------------------------------------------------------------------------------ condition


def _validated_condition(
    condition: str | None, node_type: str | None
) -> tuple[GraphCleanerCondition | None, GraphCleanerNode | None]:
    if (condition is None) != (node_type is None):
        raise ConfigError(
            "graph_cleaner_condition and graph_cleaner_node must be set together "
            f"or both be null, not {condition!r} and {node_type!r}"
        )
    if condition is None:
        return None, None
    try:
        return GraphCleanerCondition(condition), GraphCleanerNode(node_type)
    except ValueError:
        raise ConfigError(
            f"graph cleaner condition {condition!r} on {node_type!r}: valid conditions are "
            f"{[c.value for c in GraphCleanerCondition]}, node types "
            f"{[n.value for n in GraphCleanerNode]}"
        ) from None


def _weight_condition(
    node: NodeProto,
    index: GraphIndex,
    condition: GraphCleanerCondition,
    node_type: GraphCleanerNode | None,
    threshold: int,
) -> str:
    """Why the weight-size condition sends `node` to the host ("" if it does not)."""
    weights = [name for name in node.input if name and name in index.constants]
    if node.op_type != node_type or not weights:
        return ""
    weight = max(weights, key=lambda name: prod(index.shapes[name]))
    shape = index.shapes[weight]
    if condition == GraphCleanerCondition.MAXIMUM_WEIGHT_TENSOR_SIZE:
        value, what = prod(shape), "size"
    else:
        value, what = (shape[0] if shape else 1), "first dimension"
    if value <= threshold:
        return ""
    return (
        f"weight '{weight}' {what} {value} exceeds graph_cleaner_threshold {threshold} "
        f"({condition.value})"
    )


# ------------------------------------------------------------------------------ optimisation


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    """The cleaning optimisations of the module docstring, on a copy of `model`."""
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
        if all(name in constants for name in node.input if name) and _small_enough(node, shapes):
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


# ------------------------------------------------------------------------------ the split


def _partition(
    nodes: Sequence[NodeProto],
    unsupported: set[int],
    forced: dict[int, str],
    reasons: dict[int, str],
) -> tuple[set[int], set[int], dict[str, str]]:
    """Preamble and postamble node indices (see the module docstring) and why each is there."""
    predecessors, successors = node_dependencies(nodes)

    def closure(start: int, edges: list[set[int]], stop: set[int]) -> set[int]:
        found, frontier = set(), [start]
        while frontier:
            for nxt in edges[frontier.pop()]:
                if nxt not in found and nxt not in stop:
                    found.add(nxt)
                    frontier.append(nxt)
        return found

    preamble: set[int] = set()
    postamble: set[int] = set()
    why: dict[str, str] = {}

    def to_postamble(i: int, reason: str) -> None:
        postamble.add(i)
        why[nodes[i].name] = reason
        for j in closure(i, successors, postamble):
            postamble.add(j)
            why.setdefault(nodes[j].name, f"follows host node '{nodes[i].name}'")

    for i in sorted(forced):
        if i not in postamble:
            to_postamble(i, forced[i])
    for i in sorted(unsupported):
        if i in preamble or i in postamble:
            continue
        ancestors = closure(i, predecessors, preamble)
        if any(nodes[j].op_type in MAC_OPS for j in ancestors):
            to_postamble(i, reasons[i])
            continue
        preamble.add(i)
        why[nodes[i].name] = reasons[i]
        for j in ancestors:
            preamble.add(j)
            why[nodes[j].name] = f"input preprocessing before host node '{nodes[i].name}'"
    return preamble, postamble, why


def _move_layout_transforms(
    index: GraphIndex, preamble: set[int], core: list[int], host_reasons: dict[str, str]
) -> list[int]:
    """Moves NHWC->NCHW transforms at the end of the preamble into the core; the new core."""
    nodes = index.nodes
    for i in sorted(preamble, reverse=True):
        core_names = {nodes[j].name for j in core}
        consumers = index.consumers.get(nodes[i].output[0], [])
        if (
            _is_nhwc_to_nchw(nodes[i], index)
            and consumers
            and nodes[i].output[0] not in index.graph_outputs
            and all(consumer.name in core_names for consumer in consumers)
        ):
            preamble.remove(i)
            core = sorted([*core, i])
            host_reasons.pop(nodes[i].name, None)
    return core


def _nhwc_core_inputs(index: GraphIndex, core: list[int]) -> list[str]:
    """Core inputs that enter through an NHWC->NCHW transform inside the core."""
    produced = {name for i in core for name in index.nodes[i].output}
    return list(
        dict.fromkeys(
            index.nodes[i].input[0]
            for i in core
            if _is_nhwc_to_nchw(index.nodes[i], index)
            and index.nodes[i].input[0] not in produced
            and index.nodes[i].input[0] not in index.constants
        )
    )


def _is_nhwc_to_nchw(node: NodeProto, index: GraphIndex) -> bool:
    """A Transpose with perm (0,3,1,2), or a Reshape that moves the same data the same way."""
    in_shape, out_shape = index.shapes.get(node.input[0]), index.shapes.get(node.output[0])
    if not (is_static(in_shape) and is_static(out_shape)) or len(in_shape) != 4:
        return False
    if node.op_type == "Transpose":
        perm = [a.ints for a in node.attribute if a.name == "perm"]
        return bool(perm) and list(perm[0]) == [0, 3, 1, 2]
    if node.op_type == "Reshape":
        n, h, w, c = in_shape  # type: ignore[misc]
        keeps_order = [d for d in in_shape if d != 1] == [d for d in out_shape if d != 1]
        return tuple(out_shape) == (n, c, h, w) and keeps_order  # type: ignore[arg-type]
    return False


def _crossing_tensors(graph: GraphProto, parts: Sequence[Sequence[NodeProto]]) -> list[list[str]]:
    """Per part, the tensors it produces that graph outputs or other parts need."""
    graph_outputs = [value.name for value in graph.output]
    part_of = {
        name: k for k, part in enumerate(parts) for node in part for name in node.output if name
    }
    read_elsewhere = {
        name
        for k, part in enumerate(parts)
        for node in part
        for name in node_inputs(node)
        if part_of.get(name, k) != k
    }
    crossing = []
    for k, part in enumerate(parts):
        produced = [name for node in part for name in node.output if name]
        ordered = [name for name in graph_outputs if part_of.get(name) == k]
        ordered += [name for name in produced if name in read_elsewhere and name not in ordered]
        crossing.append(ordered)
    return crossing


def _extract(
    model: onnx.ModelProto, nodes: Sequence[NodeProto], suffix: str, outputs: Sequence[str]
) -> onnx.ModelProto:
    """A standalone, checked model of `nodes`, with the initializers they read only."""
    graph = model.graph
    infos = value_infos(graph)
    produced = [name for node in nodes for name in node.output if name]
    reads = dict.fromkeys(name for node in nodes for name in node_inputs(node))
    initializers = [t for t in graph.initializer if t.name in reads]
    constants = {t.name for t in initializers}
    defined = set(produced) | constants
    needed = [name for name in reads if name not in defined]
    graph_inputs = [value.name for value in graph.input]
    inputs = [name for name in graph_inputs if name in needed]
    inputs += [name for name in needed if name not in inputs]
    kept_infos = [infos[name] for name in produced if name in infos and name not in outputs]
    part_graph = helper.make_graph(
        list(nodes),
        f"{graph.name}_{suffix}",
        [infos[name] for name in inputs],
        [infos[name] for name in outputs],
        initializers,
        value_info=kept_infos,
    )
    part = helper.make_model(
        part_graph,
        opset_imports=model.opset_import,
        ir_version=model.ir_version,
        producer_name="aipuc graph cleaner",
    )
    part.functions.extend(model.functions)
    part.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(part)
    return part
