"""Safe model loading: any model source -> a checked, opset >= 17, statically shaped ModelProto.

Everything that can go wrong with a model file is a one-line `ModelError` that names the
culprit: missing or ambiguous files, corrupt protobuf, external data that escapes the model's
folder (checked before any byte of it is read), missing external files, cycles, dangling or
duplicate tensor names, empty graphs, failed opset conversion, failed shape inference, and
dynamic dimensions. The result is what every later stage assumes:

- nodes are named (unnamed ones get `<OpType>_<index>`) and topologically sorted;
- the default-domain opset is >= 17 (older models are converted to `opset`);
- initializers are constants (listed as graph inputs in old models, they are dropped from the
  inputs so nobody can feed them);
- every graph input has a static shape (a dynamic batch dimension becomes 1), and shape
  inference has typed every tensor with a static shape. The one exception: tensors downstream
  of value-dependent operators (`DATA_DEPENDENT_SHAPE_OPS`, e.g. NonMaxSuppression in a
  detection tail) keep their dynamic shapes; they can only run on the host, and the graph
  cleaner puts them there.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from math import prod
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, TensorProto, helper

from aipuc.errors import ModelError
from aipuc.frontend.support import (
    DEFAULT_DOMAINS,
    is_static,
    node_inputs,
    shape_of_value,
    topological_order,
    value_infos,
)

MIN_OPSET = 17
"""The oldest default-domain opset the compiler reads; older models are converted."""

DATA_DEPENDENT_SHAPE_OPS = frozenset(
    {"NonZero", "NonMaxSuppression", "Unique", "Compress", "TopK", "Loop", "Scan", "If"})
"""Operators whose output shapes can depend on input values, not only on input shapes."""

_ELEMENT_BYTES = {
    TensorProto.FLOAT: 4, TensorProto.DOUBLE: 8, TensorProto.FLOAT16: 2,
    TensorProto.BFLOAT16: 2, TensorProto.INT8: 1, TensorProto.UINT8: 1, TensorProto.INT16: 2,
    TensorProto.UINT16: 2, TensorProto.INT32: 4, TensorProto.UINT32: 4, TensorProto.INT64: 8,
    TensorProto.UINT64: 8, TensorProto.BOOL: 1,
}


def _first_line(error: BaseException) -> str:
    """The gist of a library error: its first line, without C++ assertion boilerplate."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^.*Assertion .* failed: ", "", text)
    return text if len(text) <= 300 else text[:297] + "..."


def load_model(source, *, input_shapes: Mapping[str, Sequence[int]] | None = None,
               opset: int = MIN_OPSET, example_input=None) -> onnx.ModelProto:
    """Loads, validates and prepares a model from a path, bytes, a ModelProto or a torch module.

    `input_shapes` overrides the shapes of named inputs; `opset` is the version older models
    are converted to (and torch modules exported at); `example_input` (a tensor or a tuple of
    tensors) is required for a torch.nn.Module. The caller's ModelProto is not modified.
    """
    if opset < MIN_OPSET:
        raise ModelError(f"opset {opset} is too old; use onnx_opset_version >= {MIN_OPSET}")
    model, base_dir = _read(source, opset, example_input)
    _load_external_data(model, base_dir)
    graph = model.graph
    _name_nodes(graph)
    _check_structure(graph)
    _sort_nodes(graph)
    model = _convert_opset(model, opset)
    _drop_initializer_inputs(model.graph)
    _fix_input_shapes(model.graph, input_shapes or {})
    model = infer_shapes(model)
    if _unresolved_shapes(model):
        # Shape arithmetic that data propagation cannot follow (e.g. Shape -> Div -> Reshape)
        # becomes constant once the input shapes are static.
        from aipuc.frontend.graph_cleaner import fold_constants

        model = infer_shapes(fold_constants(model))
    unresolved = _unresolved_shapes(model)
    if unresolved:
        tensor, node, shape = unresolved[0]
        found = "no inferred shape" if shape is None else f"the dynamic shape {_show(shape)}"
        raise ModelError(
            f"tensor '{tensor}' (output of node '{node.name}', {node.op_type}) has {found} "
            "after shape inference; the compiler needs static shapes: fix the input shapes "
            "(--input-shape) or make the shape computation constant")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise ModelError(f"the model is not valid ONNX: {_first_line(error)}") from None
    return model


# ------------------------------------------------------------------------------ reading


def _is_torch_module(source) -> bool:
    return any(cls.__name__ == "Module" and cls.__module__.startswith("torch.nn")
               for cls in type(source).__mro__)


def _read(source, opset: int, example_input) -> tuple[onnx.ModelProto, Path | None]:
    """The model and the folder its external data lives in (None when not from a file)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        return model, None
    if isinstance(source, bytes | bytearray | memoryview):
        return _parse(bytes(source), "the model data"), None
    if isinstance(source, str | os.PathLike):
        path = _model_path(Path(source))
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ModelError(f"cannot read model file {path}: {error.strerror}") from None
        return _parse(data, str(path)), path.parent
    if example_input is not None or _is_torch_module(source):
        if example_input is None:
            raise ModelError("a torch.nn.Module needs example_input (a tensor or a tuple of "
                             "tensors) to be exported to ONNX")
        from aipuc.frontend.torch_export import export_torch

        return export_torch(source, example_input, opset), None
    raise ModelError(f"cannot load a model from a {type(source).__name__}; give a path, bytes, "
                     "an onnx.ModelProto or a torch.nn.Module")


def _model_path(path: Path) -> Path:
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_dir():
        return path
    candidates = sorted(path.glob("*.onnx"))
    if len(candidates) != 1:
        found = ", ".join(c.name for c in candidates) if candidates else "none"
        raise ModelError(f"directory {path} must hold exactly one .onnx file (found: {found}); "
                         "pass the model file itself")
    return candidates[0]


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError) as error:
        raise ModelError(f"{what} is not a valid ONNX protobuf (truncated or corrupt?): "
                         f"{_first_line(error)}") from None
    if not model.ir_version or not model.HasField("graph"):
        raise ModelError(f"{what} is not an ONNX model (no IR version or no graph); the file "
                         "is truncated, corrupt or of another format")
    return model


# ------------------------------------------------------------------------------ external data


def _graph_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every TensorProto of a graph: initializers, sparse parts, attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == AttributeProto.TENSORS:
                yield from attribute.tensors
            elif attribute.type == AttributeProto.SPARSE_TENSOR:
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            elif attribute.type == AttributeProto.GRAPH:
                yield from _graph_tensors(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _graph_tensors(subgraph)


def _load_external_data(model: onnx.ModelProto, base_dir: Path | None) -> None:
    """Validates every external-data reference, then loads the data into the model.

    A location must be relative, free of '..', and resolve (symlinks followed) inside the
    model's folder: anything else could make a crafted model read arbitrary files.
    """
    external = [tensor for tensor in _graph_tensors(model.graph)
                if tensor.data_location == TensorProto.EXTERNAL]
    if not external:
        return
    if base_dir is None:
        raise ModelError(f"tensor '{external[0].name}' refers to external data, but the model "
                         "was not given as a file; load it from its .onnx path")
    root = base_dir.resolve()
    for tensor in external:
        _validate_external_reference(tensor, root)
    try:
        onnx.load_external_data_for_model(model, str(root))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read external data: {_first_line(error)}") from None
    for tensor in external:
        _check_external_size(tensor)


def _validate_external_reference(tensor: TensorProto, root: Path) -> None:
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    prefix = f"tensor '{tensor.name}' external data location '{location}'"
    if not location:
        raise ModelError(f"tensor '{tensor.name}' is external but has no location")
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or location[0] in "/\\":
        raise ModelError(f"{prefix} is absolute; external data must sit next to the model")
    if ".." in posix.parts or ".." in windows.parts:
        raise ModelError(f"{prefix} contains '..'; external data must sit next to the model")
    try:
        target = (root / location).resolve()
    except (OSError, ValueError, RuntimeError) as error:  # NUL bytes, symlink loops
        raise ModelError(f"{prefix} cannot be resolved: {_first_line(error)}") from None
    if not target.is_relative_to(root):
        raise ModelError(f"{prefix} resolves outside the model's folder {root}; refusing to "
                         "read it")
    if not target.is_file():
        raise ModelError(f"{prefix}: file {target} not found; copy it next to the model")
    try:
        offset, length = int(entries.get("offset", 0)), int(entries.get("length", 0))
    except ValueError:
        raise ModelError(f"{prefix}: offset/length are not integers") from None
    if offset < 0 or length < 0 or offset + length > target.stat().st_size:
        raise ModelError(f"{prefix}: bytes {offset}..{offset + length} lie outside the "
                         f"{target.stat().st_size}-byte file; the file is truncated")


def _check_external_size(tensor: TensorProto) -> None:
    element_bytes = _ELEMENT_BYTES.get(tensor.data_type)
    if element_bytes is None:
        return
    expected = prod(tensor.dims) * element_bytes
    if len(tensor.raw_data) != expected:
        raise ModelError(f"tensor '{tensor.name}' needs {expected} bytes of external data but "
                         f"its file holds {len(tensor.raw_data)}; the file is truncated")


# ------------------------------------------------------------------------------ structure


def _name_nodes(graph: GraphProto) -> None:
    """Gives unnamed nodes unique names, so every message and location can name them."""
    taken = {node.name for node in graph.node if node.name}
    for index, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _check_structure(graph: GraphProto) -> None:
    if not graph.node:
        raise ModelError("the model graph is empty (no nodes); export the model again")
    if not graph.output:
        raise ModelError("the model graph has no outputs")
    if len(graph.sparse_initializer):
        raise ModelError(f"sparse initializer '{graph.sparse_initializer[0].values.name}' is "
                         "not supported; store it as a dense initializer")
    producers: dict[str, str] = {}

    def define(name: str, what: str) -> None:
        if name in producers:
            raise ModelError(f"tensor '{name}' is produced twice, by {producers[name]} and by "
                             f"{what}; tensor names must be unique")
        producers[name] = what

    for value in graph.input:
        define(value.name, "a graph input")
    inputs = set(producers)
    for tensor in graph.initializer:
        if tensor.name not in inputs:  # an initializer may give an input's default value
            define(tensor.name, "an initializer")
    for node in graph.node:
        for name in node.output:
            if name:
                define(name, f"node '{node.name}' ({node.op_type})")
    for node in graph.node:
        for name in node_inputs(node):
            if name not in producers:
                raise ModelError(f"node '{node.name}' ({node.op_type}) reads tensor '{name}' "
                                 "that no node, initializer or graph input produces")
    outputs = [value.name for value in graph.output]
    for name in outputs:
        if name not in producers:
            raise ModelError(f"graph output '{name}' is not produced by any node")
    duplicates = sorted({name for name in outputs if outputs.count(name) > 1})
    if duplicates:
        raise ModelError(f"graph output '{duplicates[0]}' is listed twice; output names must "
                         "be unique")


def _sort_nodes(graph: GraphProto) -> None:
    ordered = topological_order(graph.node)
    if [node.name for node in ordered] != [node.name for node in graph.node]:
        ordered = [copy.deepcopy(node) for node in ordered]
        del graph.node[:]
        graph.node.extend(ordered)


def _default_opset(model: onnx.ModelProto) -> int:
    versions = [entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ModelError("the model imports no default-domain (ai.onnx) opset")
    return versions[0]


def _convert_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    version = _default_opset(model)
    if version < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, opset)
        except Exception as error:  # the converter raises several unrelated types
            raise ModelError(f"cannot convert the model from opset {version} to {opset}: "
                             f"{_first_line(error)}; re-export it at opset >= {MIN_OPSET}"
                             ) from None
    model.ir_version = max(model.ir_version,
                           helper.find_min_ir_version_for(model.opset_import, True))
    return model


def _drop_initializer_inputs(graph: GraphProto) -> None:
    constants = {tensor.name for tensor in graph.initializer}
    kept = [copy.deepcopy(value) for value in graph.input if value.name not in constants]
    if len(kept) != len(graph.input):
        del graph.input[:]
        graph.input.extend(kept)


# ------------------------------------------------------------------------------ shapes


def _show(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _fix_input_shapes(graph: GraphProto, input_shapes: Mapping[str, Sequence[int]]) -> None:
    """Applies `input_shapes`, sets a dynamic batch dimension to 1, rejects other dynamic dims."""
    names = [value.name for value in graph.input]
    unknown = [name for name in input_shapes if name not in names]
    if unknown:
        raise ModelError(f"input_shapes names {unknown} that are not model inputs; the inputs "
                         f"are {names}")
    for value in graph.input:
        if value.type.WhichOneof("value") != "tensor_type":
            raise ModelError(f"input '{value.name}' is not a tensor")
        tensor_type = value.type.tensor_type
        if value.name in input_shapes:
            _override_shape(value.name, tensor_type, input_shapes[value.name])
            continue
        if not tensor_type.HasField("shape"):
            raise ModelError(f"input '{value.name}' has an unknown rank; give its shape: use "
                             f"--input-shape {value.name}=1x3x224x224 (or input_shapes={{...}})")
        for index, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            if index == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            shape = [d.dim_value if d.HasField("dim_value") else None
                     for d in tensor_type.shape.dim]
            label = f" ('{dim.dim_param}')" if dim.dim_param else ""
            example = "x".join("1" if i == 0 else str(d or 224) for i, d in enumerate(shape))
            raise ModelError(
                f"input '{value.name}' has a dynamic dimension {index}{label} in shape "
                f"{_show(shape)}; the compiler needs static shapes: use --input-shape "
                f"{value.name}={example} (or input_shapes={{'{value.name}': "
                f"({example.replace('x', ', ')})}})")


def _override_shape(name: str, tensor_type: onnx.TypeProto.Tensor, dims: Sequence[int]) -> None:
    dims = list(dims)
    if not all(isinstance(dim, int) and dim > 0 for dim in dims):
        raise ModelError(f"input_shapes['{name}'] = {dims} must be positive integers")
    if tensor_type.HasField("shape") and len(tensor_type.shape.dim) != len(dims):
        raise ModelError(f"input_shapes['{name}'] has {len(dims)} dimensions but the input has "
                         f"rank {len(tensor_type.shape.dim)}")
    tensor_type.ClearField("shape")
    for dim in dims:
        tensor_type.shape.dim.add().dim_value = dim


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Strict shape inference from the graph inputs alone (stale annotations are dropped).

    A graph output whose shape inference cannot tell keeps its declared shape.
    """
    del model.graph.value_info[:]
    declared = {}
    for value in model.graph.output:
        if value.type.WhichOneof("value") == "tensor_type":
            declared[value.name] = copy.deepcopy(value.type.tensor_type.shape)
            value.type.tensor_type.ClearField("shape")
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                  data_prop=True)
    except Exception as error:  # InferenceError, ValidationError, RuntimeError
        raise ModelError(f"ONNX shape inference failed: {_first_line(error)}") from None
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        if value.name in declared and not tensor_type.HasField("shape"):
            tensor_type.shape.CopyFrom(declared[value.name])
    return model


def _unresolved_shapes(model: onnx.ModelProto
                       ) -> list[tuple[str, onnx.NodeProto, tuple[int | None, ...] | None]]:
    """Node outputs without a static shape that no value-dependent operator explains."""
    infos = value_infos(model.graph)
    value_dependent: set[str] = set()
    unresolved = []
    for node in model.graph.node:
        if node.op_type in DATA_DEPENDENT_SHAPE_OPS or any(
                name in value_dependent for name in node_inputs(node)):
            value_dependent.update(name for name in node.output if name)
            continue
        for name in node.output:
            shape = shape_of_value(infos[name]) if name in infos else None
            if name and not is_static(shape):
                unresolved.append((name, node, shape))
    return unresolved
