"""Safe model loading: any model source -> a checked, opset >= 17, statically shaped ModelProto.

Everything that can go wrong with a model file is a one-line `ModelError` that names the
culprit: missing or ambiguous files, corrupt protobuf (also strings that are not UTF-8),
external data that escapes the model's folder (checked before any byte of it is read, in the
graph and in local functions), missing or short external files, cycles, dangling or duplicate
tensor names, empty graphs, opsets the installed onnx does not know, failed opset conversion,
failed shape inference, operators onnx does not know, dynamic dimensions, and the operator
facts shape inference leaves unchecked (`_check_operators`: convolution weights and biases,
windows larger than their padded input, Gemm's C, pooling pads). The result is what every
later stage assumes:

- nodes have unique names (unnamed ones get `<OpType>_<index>`, repeated ones a suffix) and
  are topologically sorted;
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
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from math import prod
from numbers import Integral
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from onnx import AttributeProto, GraphProto, TensorProto, helper

from aipuc.errors import ModelError, first_line
from aipuc.frontend.graph_optimizer import fold_constants, infer_shapes
from aipuc.frontend.support import (
    DEFAULT_DOMAINS,
    is_static,
    node_inputs,
    shape_of_value,
    tensor_shapes,
    topological_order,
    value_infos,
)

logger = logging.getLogger("aipuc")

MIN_OPSET = 17
"""The oldest default-domain opset the compiler reads; older models are converted."""

DATA_DEPENDENT_SHAPE_OPS = frozenset(
    {"NonZero", "NonMaxSuppression", "Unique", "Compress", "TopK", "Loop", "Scan", "If"}
)
"""Operators whose output shapes can depend on input values, not only on input shapes."""

_ELEMENT_BYTES = {
    TensorProto.FLOAT: 4,
    TensorProto.DOUBLE: 8,
    TensorProto.FLOAT16: 2,
    TensorProto.BFLOAT16: 2,
    TensorProto.INT8: 1,
    TensorProto.UINT8: 1,
    TensorProto.INT16: 2,
    TensorProto.UINT16: 2,
    TensorProto.INT32: 4,
    TensorProto.UINT32: 4,
    TensorProto.INT64: 8,
    TensorProto.UINT64: 8,
    TensorProto.BOOL: 1,
}


def load_model(
    source,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    opset: int = MIN_OPSET,
    example_input=None,
) -> onnx.ModelProto:
    """Loads, validates and prepares a model from a path, bytes, a ModelProto or a torch module.

    `input_shapes` overrides the shapes of named inputs; `opset` is the version older models
    are converted to (and torch modules exported at); `example_input` (a tensor or a tuple of
    tensors) is required for a torch.nn.Module. The caller's ModelProto is not modified.
    """
    if opset < MIN_OPSET:
        raise ModelError(f"opset {opset} is too old; use onnx_opset_version >= {MIN_OPSET}")
    model, base_dir = _read(source, opset, example_input)
    _check_text(model)
    _load_external_data(model, base_dir)
    graph = model.graph
    _name_nodes(graph)
    _check_structure(graph)
    _sort_nodes(graph)
    model = _convert_opset(model, opset)
    _drop_initializer_inputs(model.graph)
    _fix_input_shapes(model.graph, input_shapes or {})
    model = infer_shapes(model)
    unresolved = _unresolved_shapes(model)
    if unresolved:
        # Shape arithmetic that data propagation cannot follow (e.g. Shape -> Div -> Reshape)
        # becomes constant once the input shapes are static.
        model = infer_shapes(fold_constants(model))
        unresolved = _unresolved_shapes(model)
    if unresolved:
        tensor, node, shape = unresolved[0]
        domain = "" if node.domain in DEFAULT_DOMAINS else node.domain
        if not onnx.defs.has(node.op_type, domain):
            raise ModelError(
                f"node '{node.name}' ({node.op_type}, domain '{domain or 'ai.onnx'}') is "
                "not an operator onnx knows, so the shape of its output "
                f"'{tensor}' is unknown; the compiler needs static shapes: replace it by "
                "standard ONNX operators"
            )
        found = "no inferred shape" if shape is None else f"the dynamic shape {_show(shape)}"
        raise ModelError(
            f"tensor '{tensor}' (output of node '{node.name}', {node.op_type}) has {found} "
            "after shape inference; the compiler needs static shapes: fix the input shapes "
            "(--input-shape) or make the shape computation constant"
        )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise ModelError(f"the model is not valid ONNX: {first_line(error)}") from None
    _check_operators(model.graph)
    return model


# ------------------------------------------------------------------------------ reading


def _is_torch_module(source) -> bool:
    return any(
        cls.__name__ == "Module" and cls.__module__.startswith("torch.nn")
        for cls in type(source).__mro__
    )


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
            raise ModelError(
                "a torch.nn.Module needs example_input (a tensor or a tuple of "
                "tensors) to be exported to ONNX"
            )
        from aipuc.frontend.torch_export import export_torch

        return export_torch(source, example_input, opset), None
    raise ModelError(
        f"cannot load a model from a {type(source).__name__}; give a path, bytes, "
        "an onnx.ModelProto or a torch.nn.Module"
    )


def _model_path(path: Path) -> Path:
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_dir():
        return path
    candidates = sorted(path.glob("*.onnx"))
    if len(candidates) != 1:
        found = ", ".join(c.name for c in candidates) if candidates else "none"
        raise ModelError(
            f"directory {path} must hold exactly one .onnx file (found: {found}); "
            "pass the model file itself"
        )
    return candidates[0]


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError) as error:
        raise ModelError(
            f"{what} is not a valid ONNX protobuf (truncated or corrupt?): {first_line(error)}"
        ) from None
    if not model.ir_version or not model.HasField("graph"):
        raise ModelError(
            f"{what} is not an ONNX model (no IR version or no graph); the file "
            "is truncated, corrupt or of another format"
        )
    return model


def _check_text(model: onnx.ModelProto) -> None:
    """Rejects names and other strings that are not UTF-8: a corrupt file, not a model.

    protobuf parses such a string field without complaint and hands it out as `bytes`,
    which no later stage (or onnx's own checker) can handle.
    """
    found = _undecodable_string(model, "model")
    if found is not None:
        field_path, value = found
        raise ModelError(
            f"{field_path} = {value!r} is not valid UTF-8 text; the model file "
            "is corrupt: export or download it again"
        )


def _undecodable_string(message: Message, path: str) -> tuple[str, bytes] | None:
    """(field path, raw value) of the first string field of `message` that is not UTF-8."""
    for descriptor, value in message.ListFields():
        if descriptor.type == FieldDescriptor.TYPE_STRING:
            for item in [value] if isinstance(value, str | bytes) else value:
                if isinstance(item, bytes):
                    return f"{path}.{descriptor.name}", item[:60]
        elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            items = [value] if isinstance(value, Message) else value
            for index, item in enumerate(items):
                where = f"{path}.{descriptor.name}" + ("" if item is value else f"[{index}]")
                found = _undecodable_string(item, where)
                if found is not None:
                    return found
    return None


# ------------------------------------------------------------------------------ external data


def _model_tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every TensorProto of a model: its graph's and those in its local functions' nodes."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        yield from _node_tensors(function.node)


def _graph_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every TensorProto of a graph: initializers, sparse parts, attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[TensorProto]:
    for node in nodes:
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
    external = [
        tensor for tensor in _model_tensors(model) if tensor.data_location == TensorProto.EXTERNAL
    ]
    if not external:
        return
    if base_dir is None:
        raise ModelError(
            f"tensor '{external[0].name}' refers to external data, but the model "
            "was not given as a file; load it from its .onnx path"
        )
    root = base_dir.resolve()
    sources = [_validate_external_reference(tensor, root) for tensor in external]
    try:
        onnx.load_external_data_for_model(model, str(root))
    except (OSError, ValueError, onnx.checker.ValidationError) as error:
        raise ModelError(f"cannot read external data: {first_line(error)}") from None
    for tensor, source in zip(external, sources, strict=True):
        _check_external_size(tensor, source)


def _validate_external_reference(tensor: TensorProto, root: Path) -> str:
    """Checks one reference without reading it; returns how messages name its bytes."""
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
        raise ModelError(f"{prefix} cannot be resolved: {first_line(error)}") from None
    if not target.is_relative_to(root):
        raise ModelError(
            f"{prefix} resolves outside the model's folder {root}; refusing to read it"
        )
    if (root / location).is_symlink():
        raise ModelError(
            f"{prefix} is a symbolic link, which onnx refuses to read; replace "
            "the link by the file it points to"
        )
    if not target.exists():
        raise ModelError(f"{prefix}: file {target} not found; copy it next to the model")
    if not target.is_file():
        raise ModelError(f"{prefix}: {target} is not a regular file")
    try:
        offset, length = int(entries.get("offset", 0)), entries.get("length")
        length = None if length is None else int(length)
    except ValueError:
        raise ModelError(f"{prefix}: offset/length are not integers") from None
    if offset < 0 or (length is not None and length < 0):
        raise ModelError(f"{prefix}: offset {offset} and length {length} must not be negative")
    size = target.stat().st_size
    end = size if length is None else offset + length
    if offset > size or end > size:
        raise ModelError(
            f"{prefix}: bytes {offset}..{end} lie outside the {size}-byte file; "
            "the file is truncated or the offset/length are wrong"
        )
    return f"{prefix} (bytes {offset}..{end})"


def _check_external_size(tensor: TensorProto, source: str) -> None:
    element_bytes = _ELEMENT_BYTES.get(tensor.data_type)
    if element_bytes is None:
        return
    expected = prod(tensor.dims) * element_bytes
    if len(tensor.raw_data) != expected:
        raise ModelError(
            f"{source} holds {len(tensor.raw_data)} bytes, but the tensor's shape "
            f"{list(tensor.dims)} needs {expected}; the offset/length entries or the "
            "file are wrong"
        )


# ------------------------------------------------------------------------------ structure


def _name_nodes(graph: GraphProto) -> None:
    """Makes node names unique, so every message, location and part can name its node.

    Unnamed nodes become `<OpType>_<index>`; a name already used by an earlier node gets
    `_<index>` appended (ONNX requires unique names, but exporters do not always comply).
    """
    taken = {node.name for node in graph.node if node.name}
    kept: set[str] = set()
    for index, node in enumerate(graph.node):
        if node.name and node.name not in kept:
            kept.add(node.name)
            continue
        name = f"{node.name or node.op_type}_{index}"
        while name in taken:
            name += "_"
        node.name = name
        taken.add(name)
        kept.add(name)


def _check_structure(graph: GraphProto) -> None:
    if not graph.node:
        raise ModelError("the model graph is empty (no nodes); export the model again")
    if not graph.output:
        raise ModelError("the model graph has no outputs")
    if len(graph.sparse_initializer):
        raise ModelError(
            f"sparse initializer '{graph.sparse_initializer[0].values.name}' is "
            "not supported; store it as a dense initializer"
        )
    producers: dict[str, str] = {}

    def define(name: str, what: str) -> None:
        if name in producers:
            raise ModelError(
                f"tensor '{name}' is produced twice, by {producers[name]} and by "
                f"{what}; tensor names must be unique"
            )
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
                raise ModelError(
                    f"node '{node.name}' ({node.op_type}) reads tensor '{name}' "
                    "that no node, initializer or graph input produces"
                )
    outputs = [value.name for value in graph.output]
    for name in outputs:
        if name not in producers:
            raise ModelError(f"graph output '{name}' is not produced by any node")
    duplicates = sorted({name for name in outputs if outputs.count(name) > 1})
    if duplicates:
        raise ModelError(
            f"graph output '{duplicates[0]}' is listed twice; output names must be unique"
        )


def _sort_nodes(graph: GraphProto) -> None:
    ordered = topological_order(graph.node)
    if [node.name for node in ordered] != [node.name for node in graph.node]:
        ordered = [copy.deepcopy(node) for node in ordered]
        del graph.node[:]
        graph.node.extend(ordered)


def _default_opset(model: onnx.ModelProto) -> int:
    """The model's ai.onnx opset, which must be one the installed onnx has schemas for."""
    versions = [entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ModelError("the model imports no default-domain (ai.onnx) opset")
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= versions[0] <= newest:
        raise ModelError(
            f"the model imports ai.onnx opset {versions[0]}, but the installed onnx "
            f"{onnx.__version__} knows opsets 1 to {newest}; re-export the model at "
            f"an opset from {MIN_OPSET} to {newest}"
        )
    return versions[0]


def _convert_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    version = _default_opset(model)
    if version < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, opset)
        except Exception as error:  # the converter raises several unrelated types
            raise ModelError(
                f"cannot convert the model from opset {version} to {opset}: "
                f"{first_line(error)}; re-export it at opset >= {MIN_OPSET}"
            ) from None
    model.ir_version = max(
        model.ir_version, helper.find_min_ir_version_for(model.opset_import, True)
    )
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
    if not isinstance(input_shapes, Mapping):
        raise ModelError(
            f"input_shapes is a {type(input_shapes).__name__}; give a dict of input "
            "name -> dimensions, e.g. {'input': (1, 3, 224, 224)}"
        )
    unknown = [name for name in input_shapes if name not in names]
    if unknown:
        raise ModelError(
            f"input_shapes names {unknown} that are not model inputs; the inputs are {names}"
        )
    for value in graph.input:
        if value.type.WhichOneof("value") != "tensor_type":
            raise ModelError(f"input '{value.name}' is not a tensor")
        tensor_type = value.type.tensor_type
        if value.name in input_shapes:
            _override_shape(value.name, tensor_type, input_shapes[value.name])
            continue
        if not tensor_type.HasField("shape"):
            raise ModelError(
                f"input '{value.name}' has an unknown rank; give its shape: use "
                f"--input-shape {value.name}=1x3x224x224 (or input_shapes={{...}})"
            )
        for index, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            if index == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            shape = [
                d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
            ]
            label = f" ('{dim.dim_param}')" if dim.dim_param else ""
            example = "x".join("1" if i == 0 else str(d or 224) for i, d in enumerate(shape))
            raise ModelError(
                f"input '{value.name}' has a dynamic dimension {index}{label} in shape "
                f"{_show(shape)}; the compiler needs static shapes: use --input-shape "
                f"{value.name}={example} (or input_shapes={{'{value.name}': "
                f"({example.replace('x', ', ')})}})"
            )


def _override_shape(name: str, tensor_type: onnx.TypeProto.Tensor, dims: Sequence[int]) -> None:
    given = dims
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise ModelError(
            f"input_shapes['{name}'] = {given!r} is not a sequence of dimensions; "
            "give e.g. (1, 3, 224, 224)"
        )
    if not all(
        isinstance(dim, Integral) and not isinstance(dim, bool) and dim > 0 for dim in given
    ):
        raise ModelError(f"input_shapes['{name}'] = {given!r} must be positive integers")
    dims = [int(dim) for dim in given]
    if tensor_type.HasField("shape") and len(tensor_type.shape.dim) != len(dims):
        raise ModelError(
            f"input_shapes['{name}'] has {len(dims)} dimensions but the input has "
            f"rank {len(tensor_type.shape.dim)}"
        )
    if tensor_type.HasField("shape"):
        _check_static_dims(name, tensor_type, dims)
    tensor_type.ClearField("shape")
    for dim in dims:
        tensor_type.shape.dim.add().dim_value = dim


def _check_static_dims(name: str, tensor_type: onnx.TypeProto.Tensor, dims: list[int]) -> None:
    """An override may fix dynamic dimensions only: the model was built for its static ones
    (weights, reshapes and pads assume them). Repeating a static shape is only a warning."""
    declared = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    changed = [i for i, (d, g) in enumerate(zip(declared, dims, strict=True)) if d not in (None, g)]
    if changed:
        raise ModelError(
            f"input '{name}' has the static shape {_show(declared)}, and input_shapes "
            f"(--input-shape) gives {_show(dims)}, changing dimension(s) "
            f"{', '.join(map(str, changed))}; the model fixes its static dimensions: drop the "
            "override, or export the model with those dimensions dynamic"
        )
    if None not in declared:
        logger.warning(
            "input_shapes['%s'] = %s repeats the static shape of input '%s'; it has no effect",
            name,
            _show(dims),
            name,
        )


def _unresolved_shapes(
    model: onnx.ModelProto,
) -> list[tuple[str, onnx.NodeProto, tuple[int | None, ...] | None]]:
    """Node outputs without a static shape that no value-dependent operator explains."""
    infos = value_infos(model.graph)
    value_dependent: set[str] = set()
    unresolved = []
    for node in model.graph.node:
        if node.op_type in DATA_DEPENDENT_SHAPE_OPS or any(
            name in value_dependent for name in node_inputs(node)
        ):
            value_dependent.update(name for name in node.output if name)
            continue
        for name in node.output:
            shape = shape_of_value(infos[name]) if name in infos else None
            if name and not is_static(shape):
                unresolved.append((name, node, shape))
    return unresolved


# ------------------------------------------------------------------------------ operators


def _check_operators(graph: GraphProto) -> None:
    """Checks what ONNX shape inference leaves unchecked and every later stage relies on.

    Conv/ConvTranspose: weight rank, group, channel counts and bias length (inference
    trusts `kernel_shape` and ignores the bias); Gemm: C broadcasts to the output; pooling:
    explicit pads smaller than the window (onnxruntime refuses the rest); convolution and
    pooling: a window that fits the padded input (inference gives a larger one an empty or
    even a one-element output, which no kernel computes).
    """
    shapes = tensor_shapes(graph)
    for node in graph.node:
        check = _OPERATOR_CHECKS.get(node.op_type) if node.domain in DEFAULT_DOMAINS else None
        problem = check(node, shapes) if check else ""
        if problem:
            raise ModelError(f"node '{node.name}' ({node.op_type}): {problem}")


def _attribute(node: onnx.NodeProto, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _optional_input(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if index < len(node.input) else ""


def _window_problem(
    node: onnx.NodeProto, shapes: Mapping[str, tuple | None], kernel: Sequence[int]
) -> str:
    """The (dilated) window must fit the padded input, and the output must not be empty.
    A ceil-mode pool's window may reach `stride - 1` past the end padding (GoogLeNet's
    ceil-mode 3x3/2 MaxPool on a 2x2 map gives one window over all of it)."""
    data, output = shapes.get(node.input[0]), shapes.get(node.output[0])
    if not is_static(data) or node.op_type == "ConvTranspose":
        return _empty_output_problem(node, output)
    assert data is not None
    spatial, rank = data[2:], len(data) - 2
    auto_pad = _attribute(node, "auto_pad", b"NOTSET")
    if auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
        return _empty_output_problem(node, output)
    pads = [0] * 2 * rank
    if auto_pad == b"NOTSET":
        pads = list(_attribute(node, "pads", pads))
    dilations = list(_attribute(node, "dilations", [1] * rank))
    strides = list(_attribute(node, "strides", [1] * rank))
    ceil = _attribute(node, "ceil_mode", 0)
    if any(
        (k - 1) * d + 1 > size + pads[axis] + pads[axis + rank] + (s - 1 if ceil else 0)
        for axis, (size, k, d, s) in enumerate(
            zip(spatial, kernel, dilations, strides, strict=False)
        )
    ):
        return (
            f"the kernel {list(kernel)} (dilations {dilations}) is larger than the input "
            f"{_show(spatial)} padded by {pads}{' (+ strides - 1 in ceil mode)' if ceil else ''}"
            "; fix the kernel, pads or dilations, or the input shape"
        )
    return _empty_output_problem(node, output)


def _empty_output_problem(node: onnx.NodeProto, output: tuple | None) -> str:
    if output is None or all(dim is None or dim > 0 for dim in output):
        return ""
    return (
        f"its output '{node.output[0]}' has the empty shape {_show(output)}; fix the "
        "node's attributes or the input shape"
    )


def _conv_problem(node: onnx.NodeProto, shapes: Mapping[str, tuple | None]) -> str:
    data, weight = shapes.get(node.input[0]), shapes.get(node.input[1])
    if not (is_static(data) and is_static(weight)):
        return ""
    assert data is not None and weight is not None
    if len(weight) != len(data) or len(data) < 3:
        return (
            f"input of shape {_show(data)} and weight '{node.input[1]}' of shape "
            f"{_show(weight)} need the same rank, at least 3"
        )
    group = _attribute(node, "group", 1)
    transposed = node.op_type == "ConvTranspose"
    in_channels = weight[0] if transposed else weight[1] * group
    out_channels = weight[1] * group if transposed else weight[0]
    if group < 1 or data[1] % group or out_channels % group:
        return (
            f"group {group} must be positive and divide the {data[1]} input and "
            f"{out_channels} output channels"
        )
    if data[1] != in_channels:
        return (
            f"the input has {data[1]} channels, but weight '{node.input[1]}' of shape "
            f"{_show(weight)} with group {group} takes {in_channels}"
        )
    kernel = _attribute(node, "kernel_shape")
    if kernel is not None and list(kernel) != list(weight[2:]):
        return (
            f"kernel_shape {list(kernel)} does not match weight '{node.input[1]}' of shape "
            f"{_show(weight)}"
        )
    bias = _optional_input(node, 2)
    if bias and is_static(shapes.get(bias)) and shapes[bias] != (out_channels,):
        return (
            f"bias '{bias}' has shape {_show(shapes[bias])}, but the node has "
            f"{out_channels} output channels"
        )
    return _window_problem(node, shapes, weight[2:])


def _gemm_problem(node: onnx.NodeProto, shapes: Mapping[str, tuple | None]) -> str:
    bias, output = _optional_input(node, 2), shapes.get(node.output[0])
    bias_shape = shapes.get(bias) if bias else None
    if not (is_static(bias_shape) and is_static(output)):
        return ""
    assert bias_shape is not None and output is not None
    broadcasts = len(bias_shape) <= len(output) and all(
        dim in (1, out) for dim, out in zip(reversed(bias_shape), reversed(output), strict=False)
    )
    if not broadcasts:
        return (
            f"C '{bias}' of shape {_show(bias_shape)} does not broadcast to the output "
            f"shape {_show(output)}"
        )
    return ""


def _pool_problem(node: onnx.NodeProto, shapes: Mapping[str, tuple | None]) -> str:
    kernel, pads = _attribute(node, "kernel_shape"), _attribute(node, "pads")
    explicit = _attribute(node, "auto_pad", b"NOTSET") == b"NOTSET"
    if (
        kernel
        and pads
        and explicit
        and any(pad >= kernel[index % len(kernel)] for index, pad in enumerate(pads))
    ):
        return (
            f"pads {list(pads)} must each be smaller than the kernel {list(kernel)} "
            "(onnxruntime refuses larger ones)"
        )
    return _window_problem(node, shapes, kernel or ())


_OPERATOR_CHECKS = {
    "Conv": _conv_problem,
    "ConvTranspose": _conv_problem,
    "Gemm": _gemm_problem,
    "MaxPool": _pool_problem,
    "AveragePool": _pool_problem,
    "LpPool": _pool_problem,
}
