"""The graph cleaner: optimise a loaded model, then cut it into host preamble, core, postamble.

The optimisations (`graph_optimizer.optimize`) are exact: Identity/Dropout removal, constant
folding, dead code removal.

Placement (design.md, "accelerator first, host by design"): every node the accelerator cannot
run (`support.check_node` gives a reason) runs on the host, and `_partition` decides where,
in topological order:

- *preamble* if none of its not-yet-preamble ancestors is a MAC operator
  (`placement.MAC_OP_TYPES`: convolutions, Gemm, MatMul, recurrent layers): it is input
  preprocessing, so it moves to the preamble together with all its ancestors, supported or
  not;
- *postamble* if none of its descendants is a MAC operator: a trailing node (decode tails,
  NMS, a classifier Softmax) moves to the postamble together with all its descendants;
- otherwise it stays in the *core*, where the importer makes it an `axq.host` op: the core
  is then several accelerated segments with host ops between them (LRN between two
  convolutions), run in order by every interpreter, and the rest of the network stays on
  the accelerator.

Output decoding joins the postamble too, supported or not: a connected group of nodes after
the last MAC operators of their paths (no MAC descendant, a MAC ancestor) that concatenates
tensors (YOLO's boxes in pixels with scores in [0, 1]) stays in float32 on the host, where
int8 would have to share one scale between them. A trailing chain that joins nothing (a
final Softmax, LayerNorm, Sigmoid or pooling) stays on the accelerator.

Nodes of `node_type` whose largest constant input exceeds the weight-size `condition`, and
nodes whose outputs have value-dependent (dynamic) shapes, are sent to the postamble first.
The preamble is closed under ancestors and the postamble under descendants, so the three
parts run one after the other. Independent branches stay in the core: the three detection
heads of a YOLO model keep their convolutions and only the decode tail moves.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import numpy as np
import onnx
from onnx import GraphProto, NodeProto, helper

from aipuc.config import GraphCleanerCondition, GraphCleanerNode
from aipuc.errors import AipucError, ConfigError, ModelError
from aipuc.frontend.graph_optimizer import optimize
from aipuc.frontend.support import (
    NHWC_INPUTS_KEY,
    GraphIndex,
    is_static,
    node_dependencies,
    node_inputs,
    value_infos,
)
from aipuc.placement import MAC_OP_TYPES
from aipuc.runtime.host import Arrays, HostRunner

_PROTOBUF_LIMIT = 2**31 - 1


@dataclass
class CleanedModel:
    """The optimised model and its three parts; a part without nodes is None.

    The `*_inputs`/`*_outputs` name the tensors crossing each cut (they equal the part
    models' inputs/outputs). With `remove_layout_transform_from_preamble`,
    `nhwc_core_inputs` are the core inputs that enter through an NHWC->NCHW transform inside
    the core (a transpose always runs on the accelerator, so no layout transform ends the
    preamble): the host delivers them NHWC, the accelerator's native layout, and legalization
    drops the transform; the core model records them as a JSON list under the metadata key
    `NHWC_INPUTS_KEY`. `host_reasons` says, per host node (preamble, postamble, or a host op
    between accelerated segments of the core), why it runs on the host.
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
    forced = {
        i: "; ".join(index.check(node))
        for i, node in enumerate(nodes)
        if not all(is_static(index.shapes.get(name)) for name in node.output if name)
    }
    if condition is not None:
        for i, node in enumerate(nodes):
            reason = _weight_condition(node, index, condition, node_type, threshold)
            if reason:
                forced[i] = reason
    preamble, postamble, host_reasons = _partition(
        nodes, unsupported, forced, reasons, split_pre_post_processing
    )
    core = [i for i in range(len(nodes)) if i not in preamble and i not in postamble]
    nhwc: list[str] = []
    if remove_layout_transform_from_preamble:
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


# ------------------------------------------------------------------------------ the split


def _partition(
    nodes: Sequence[NodeProto],
    unsupported: set[int],
    forced: dict[int, str],
    reasons: dict[int, str],
    split_tail: bool,
) -> tuple[set[int], set[int], dict[str, str]]:
    """Preamble and postamble node indices (see the module docstring) and why each node of
    the three parts that runs on the host is there."""
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

    def has_mac(indices: set[int]) -> bool:
        return any(nodes[j].op_type in MAC_OP_TYPES for j in indices)

    for i in sorted(forced):
        if i not in postamble:
            to_postamble(i, forced[i])
    for i in sorted(unsupported):
        if i in preamble or i in postamble:
            continue
        ancestors = closure(i, predecessors, preamble)
        if not has_mac(ancestors):
            preamble.add(i)
            why[nodes[i].name] = reasons[i]
            for j in ancestors:
                preamble.add(j)
                why[nodes[j].name] = f"input preprocessing before host node '{nodes[i].name}'"
        elif not has_mac(closure(i, successors, postamble)):
            to_postamble(i, reasons[i])
        else:
            why[nodes[i].name] = reasons[i]  # a host op between accelerated segments
    tail = _output_decoding(nodes, predecessors, successors) if split_tail else set()
    for i in sorted(tail - postamble):
        postamble.add(i)
        why.setdefault(nodes[i].name, TRAILING_REASON)
    return preamble, postamble, why


TRAILING_REASON = (
    "output decoding after the last MAC operator (it concatenates tensors of different "
    "ranges): on the host in float32"
)


def _output_decoding(
    nodes: Sequence[NodeProto], predecessors: list[set[int]], successors: list[set[int]]
) -> set[int]:
    """Nodes after a MAC operator with no MAC operator after them (nodes are sorted), in
    connected groups that concatenate tensors."""
    is_mac = [node.op_type in MAC_OP_TYPES for node in nodes]
    after_mac = [False] * len(nodes)
    for i in range(len(nodes)):
        after_mac[i] = any(is_mac[p] or after_mac[p] for p in predecessors[i])
    before_mac = [False] * len(nodes)
    for i in reversed(range(len(nodes))):
        before_mac[i] = any(is_mac[s] or before_mac[s] for s in successors[i])
    tail = {i for i in range(len(nodes)) if after_mac[i] and not before_mac[i] and not is_mac[i]}
    decoding: set[int] = set()
    for start in sorted(tail):
        if start in decoding or nodes[start].op_type != "Concat":
            continue
        group, frontier = {start}, [start]
        while frontier:
            i = frontier.pop()
            for j in (*predecessors[i], *successors[i]):
                if j in tail and j not in group:
                    group.add(j)
                    frontier.append(j)
        decoding |= group
    return decoding


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


class SplitModelRunner:
    """Runs a cleaned model stage by stage: host preamble, core, host postamble.

    `run_core` computes the core's outputs from its inputs (the accelerator simulator, say);
    by default the float core model runs on the host too.
    """

    def __init__(
        self,
        cleaned: CleanedModel,
        run_core: Callable[[Arrays], Mapping[str, np.ndarray]] | None = None,
    ):
        self.outputs = list(cleaned.outputs)
        self.core_inputs = list(cleaned.core_inputs)
        self._stages: list[Callable[[Arrays], Mapping[str, np.ndarray]]] = []
        if cleaned.preamble is not None:
            self._stages.append(HostRunner(cleaned.preamble).run)
        if cleaned.core is not None:
            core = run_core or HostRunner(cleaned.core).run
            self._stages.append(lambda env: core({name: env[name] for name in self.core_inputs}))
        if cleaned.postamble is not None:
            self._stages.append(HostRunner(cleaned.postamble).run)

    def run(self, inputs: Mapping[str, np.ndarray]) -> Arrays:
        values = dict(inputs)
        for stage in self._stages:
            values.update(stage(values))
        return {name: np.asarray(values[name]) for name in self.outputs}
