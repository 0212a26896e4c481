"""ONNX -> axq: one axq op per ONNX node (or a documented decomposition).

The input is a loaded, version-converted (opset >= 17), shape-inferred model with static
shapes (`aipuc.frontend.loader` produces it). Every node is handled in this order:

1. its input count is checked against the operator schema (`ModelError` if wrong);
2. `Shape`/`Size` are answered from the static shapes, and a deterministic node whose
   inputs are all constant is folded with `onnx.reference`, so shape arithmetic never
   reaches the IR;
3. a node with a converter in `CONVERTERS` and float32 outputs becomes axq ops;
4. anything else that `onnx.reference` can run becomes `axq.host`, which keeps the ONNX
   op type, opset and attributes; the rest is an `UnsupportedOperatorError`.

Choices worth knowing:
- Relu is `axq.clip(0, inf)`: a clamp, which later fuses into the producer's requantization.
- MatMul with a constant 2-D right operand is `axq.dense` (weight = B^T, zero bias), so it is
  quantized per output channel like Gemm; any other MatMul is `axq.matmul`.
- Gemm with a constant B is `axq.dense` with alpha folded into the weight and beta * C into
  the bias (or an `axq.add` when C varies along M); transA=1 adds an `axq.transpose` in
  front. A non-constant B gives `axq.matmul` plus `axq.mul`/`axq.add` for alpha and C.
- BatchNormalization folds into the preceding Conv when that Conv's output has no other
  use; otherwise it is `axq.mul` and `axq.add` by [1, C, 1, ...] constants.
- Div by a constant is `axq.mul` by its reciprocal; Identity and inference Dropout vanish.
- Slice ends that run past index 0 with a negative step are stored as -(dim + 1), the
  NumPy spelling of "through index 0" that `axq.slice`'s index() relies on.
- Constants take the location of their ONNX tensor name; ops take their node's name
  (the first output's name for an unnamed node).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, helper, numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    LocationAttr,
    ModuleOp,
    NameLoc,
    NoneAttr,
    StringAttr,
    TensorType,
    UnknownLoc,
    f32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from aipuc.dialects import axq
from aipuc.dialects.tensors import dense_from_numpy, element_type_of, tensor_type
from aipuc.errors import ModelError, UnsupportedOperatorError, first_line
from aipuc.frontend.onnx_attributes import to_builtin
from aipuc.frontend.patterns import LayerNormMatch
from aipuc.frontend.support import (
    GraphIndex,
    check_node,
    is_static,
    shape_of_value,
    shape_op_value,
)
from aipuc.graph import Graph
from aipuc.placement import NodePlacement, node_macs
from aipuc.runtime.interpreter import describe, reference_evaluator, run_reference

_NONDETERMINISTIC = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Bernoulli",
        "Multinomial",
    }
)
_SHAPE_ONLY = frozenset({"Shape", "Size"})


@dataclass
class _Node:
    """An ONNX node with its attributes decoded, and the name used to report it."""

    proto: NodeProto
    name: str
    attrs: dict[str, Any]

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def input(self, index: int) -> str:
        """The input at `index`, or '' when it is omitted."""
        return self.proto.input[index] if index < len(self.proto.input) else ""

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def describe(self) -> str:
        return f"node '{self.name}' ({self.op_type})"

    def unsupported(self, reason: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"{self.describe()}: {reason}")


def _decode_attrs(node: NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@dataclass
class _Importer:
    """The state of one import: ONNX tensor names -> SSA values, constants and types."""

    opsets: dict[str, int]
    propagate_span_information: bool
    block: Block = field(default_factory=Block)
    types: dict[str, tuple[tuple[int, ...], int]] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, SSAValue] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)
    graph_outputs: set[str] = field(default_factory=set)
    absorbed: set[int] = field(default_factory=set)
    nodes: list[_Node] = field(default_factory=list)
    location: LocationAttr = field(default_factory=UnknownLoc)
    index: GraphIndex | None = None
    folded: set[int] = field(default_factory=set)
    layer_norms: dict[int, LayerNormMatch] = field(default_factory=dict)
    placements: list[NodePlacement] = field(default_factory=list)
    follow_support: bool = True

    # ------------------------------------------------------------------ tensors

    def shape(self, name: str) -> tuple[int, ...]:
        if name in self.constants:
            return self.constants[name].shape
        return self.static_type(name)[0]

    def static_type(self, name: str) -> tuple[tuple[int, ...], int]:
        if name not in self.types:
            raise ModelError(
                f"tensor '{name}' has no static shape; give the model static input shapes "
                f"and run ONNX shape inference (aipuc.frontend.loader does both)"
            )
        return self.types[name]

    def tensor_type(self, name: str) -> TensorType:
        shape, onnx_type = self.static_type(name)
        return tensor_type(shape, _element_type(onnx_type, name))

    def is_float(self, name: str) -> bool:
        if name in self.constants:
            return self.constants[name].dtype == np.float32
        return self.static_type(name)[1] == TensorProto.FLOAT

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant(self, node: _Node, name: str, what: str) -> np.ndarray:
        """The value of a constant input; `what` says why it must be constant."""
        if name not in self.constants:
            raise node.unsupported(
                f"{what} must be constant, but '{name}' is computed at run "
                f"time; make it an initializer or a constant expression"
            )
        return self.constants[name]

    def value(self, name: str) -> SSAValue:
        """The SSA value of a tensor, materialising a constant on its first use."""
        if name not in self.values:
            if name not in self.constants:
                raise ModelError(
                    f"tensor '{name}' is used before any node produces it; "
                    f"the graph must be topologically sorted"
                )
            op = axq.ConstantOp(dense_from_numpy(self.constants[name]))
            if self.propagate_span_information:
                op.location = NameLoc(StringAttr(name), NoneAttr())
            self.block.add_op(op)
            self.values[name] = op.result
        return self.values[name]

    def new_constant(self, array: np.ndarray) -> SSAValue:
        """A constant computed by a converter (folded weights, zero bias, ...)."""
        return self.emit(axq.ConstantOp(dense_from_numpy(array))).results[0]

    def emit(self, op: Operation) -> Operation:
        op.location = self.location
        self.block.add_op(op)
        return op

    def bind(self, name: str, value: SSAValue) -> None:
        self.values[name] = value

    def sole_consumer(self, name: str) -> int | None:
        """Index of the one node reading `name`, if the tensor has no other use."""
        readers = self.consumers.get(name, [])
        if name in self.graph_outputs or len(readers) != 1:
            return None
        return readers[0]

    # ------------------------------------------------------------------ nodes

    def fold_node(self, index: int, node: _Node) -> bool:
        """Folds a node whose value is known at compile time; whether it did."""
        self._check_arity(node)
        present = [name for name in node.inputs if name]
        if node.op_type in _SHAPE_ONLY:
            self._fold_shape(node)
        elif (
            all(self.is_constant(name) for name in present)
            and node.op_type not in _NONDETERMINISTIC
        ):
            self._fold(node)
        else:
            return False
        self.folded.add(index)
        return True

    def import_node(self, index: int, node: _Node) -> None:
        """Converts a node to axq ops, or keeps it as `axq.host` with the reason why."""
        if index in self.folded:
            return
        self.location = (
            NameLoc(StringAttr(node.name), NoneAttr())
            if self.propagate_span_information
            else UnknownLoc()
        )
        if index in self.absorbed:
            self._place(node, None)
            return
        if index in self.layer_norms:
            convert_layer_norm_pattern(self, self.layer_norms[index])
            self._place(node, None)
            return
        reason = "; ".join(self.host_reasons(node))
        if not reason:
            try:
                CONVERTERS[node.op_type](self, node)
            except UnsupportedOperatorError as error:
                reason = str(error).removeprefix(f"{node.describe()}: ")
        if reason:
            convert_to_host(self, node)
        self._place(node, reason or None)

    def host_reasons(self, node: _Node) -> list[str]:
        """Why the accelerator cannot run `node` (the support rules, with folded constants)."""
        assert self.index is not None
        if self.follow_support:
            reasons = check_node(node.proto, self.index.shapes, self.constants, graph=self.index)
            if reasons:
                return reasons
        if node.op_type not in CONVERTERS:
            return [f"{node.op_type} has no axq form yet"]
        if not self.is_float(node.outputs[0]):
            return ["a non-float32 result; the accelerator computes on float32 models"]
        return []

    def _place(self, node: _Node, reason: str | None) -> None:
        assert self.index is not None
        self.placements.append(
            NodePlacement(node.name, node.op_type, node_macs(node.proto, self.index.shapes), reason)
        )

    def domain(self, node: _Node) -> str:
        return "" if node.proto.domain == "ai.onnx" else node.proto.domain

    def opset(self, node: _Node) -> int:
        domain = self.domain(node)
        if domain not in self.opsets:
            raise ModelError(f"{node.describe()}: the model imports no opset for domain '{domain}'")
        return self.opsets[domain]

    def _check_arity(self, node: _Node) -> None:
        domain, opset = self.domain(node), self.opset(node)
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, domain)
        except onnx.defs.SchemaError:
            raise node.unsupported(
                f"no operator {node.op_type} in domain '{domain or 'ai.onnx'}' at opset "
                f"{opset}; neither the accelerator nor the host reference can run it"
            ) from None
        version = f"{node.op_type}-{schema.since_version}"
        n_inputs, n_outputs = len(node.inputs), len(node.outputs)
        if not schema.min_input <= n_inputs <= schema.max_input:
            raise ModelError(
                f"{node.describe()} has {n_inputs} inputs, but {version} takes "
                f"{_arity(schema.min_input, schema.max_input)}"
            )
        if not schema.min_output <= n_outputs <= schema.max_output:
            raise ModelError(
                f"{node.describe()} has {n_outputs} outputs, but {version} gives "
                f"{_arity(schema.min_output, schema.max_output)}"
            )

    def _fold_shape(self, node: _Node) -> None:
        """Shape and Size only read the static shape of their input."""
        self.constants[node.outputs[0]] = shape_op_value(node.proto, self.shape(node.inputs[0]))

    def _fold(self, node: _Node) -> None:
        present = [name for name in node.inputs if name]
        arrays = [self.constants[name] for name in present]
        try:
            evaluator = reference_evaluator(
                node.proto, [(a.dtype, a.shape) for a in arrays], self.opsets
            )
            results = run_reference(evaluator, arrays)
        except Exception as error:
            raise node.unsupported(
                f"constant folding with onnx.reference failed: {first_line(error)}"
            ) from None
        for name, result in zip([n for n in node.outputs if n], results, strict=True):
            self.constants[name] = result


def _arity(low: int, high: int) -> str:
    if low == high:
        return str(low)
    return f"at least {low}" if high >= 2**31 - 1 else f"{low} to {high}"


def _element_type(onnx_type: int, name: str) -> Attribute:
    try:
        return element_type_of(helper.tensor_dtype_to_np_dtype(onnx_type))
    except (TypeError, KeyError):
        raise UnsupportedOperatorError(
            f"tensor '{name}' has element type {TensorProto.DataType.Name(onnx_type)}, which "
            f"aipuc does not support"
        ) from None


def _normalise_axis(node: _Node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ModelError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _require_finite(ctx: _Importer, node: _Node, names: Sequence[str]) -> None:
    """Constant weights, biases and statistics must be finite numbers.

    NaN or infinity in a parameter (a corrupt or badly trained model) gives no quantization
    scale; the message names the node and tensor instead of a failure deep in quantization.
    """
    for name in names:
        values = ctx.constants.get(name) if name else None
        if values is not None and not np.isfinite(values).all():
            raise ModelError(
                f"{node.describe()}: parameter '{name}' holds NaN or infinite "
                "values; fix the model's weights (a corrupt file or a diverged "
                "training run)"
            )


# ====================================================================== host


def _dtype_limits(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.array(info.min, dtype), np.array(info.max, dtype)
    return np.array(-np.inf, dtype), np.array(np.inf, dtype)


_OMITTED_INPUTS: dict[tuple[str, int], Callable[[np.dtype], np.ndarray]] = {
    ("Clip", 1): lambda dtype: _dtype_limits(dtype)[0],
    ("Clip", 2): lambda dtype: _dtype_limits(dtype)[1],
    ("Pad", 2): lambda dtype: np.zeros((), dtype),
    ("Resize", 1): lambda dtype: np.zeros(0, np.float32),
    ("Resize", 2): lambda dtype: np.zeros(0, np.float32),
}
"""(op type, input index) -> the value an omitted optional input stands for, by data dtype.

`axq.host` operands are positional without gaps, so an omitted input before a present one
is passed as the value ONNX gives it (Clip bounds: the dtype's limits; Pad: zero; Resize
roi/scales: the empty tensor the spec allows).
"""


def convert_to_host(ctx: _Importer, node: _Node) -> None:
    """Keeps the node as ONNX, to be run on the host by onnx.reference."""
    outputs = _rstrip_empty(node.outputs)
    if "" in outputs:
        raise node.unsupported(
            "an omitted optional output before a present one cannot be kept on the host"
        )
    try:
        attributes = {a.name: to_builtin(a) for a in node.proto.attribute}
    except UnsupportedOperatorError as error:
        raise node.unsupported(str(error)) from None
    values: list[SSAValue] = []
    input_types: list[tuple[np.dtype, tuple[int, ...]]] = []
    for index, name in enumerate(_rstrip_empty(node.inputs)):
        if name:
            values.append(ctx.value(name))
            input_types.append((_np_dtype(ctx, name), ctx.shape(name)))
            continue
        default = _OMITTED_INPUTS.get((node.op_type, index))
        if default is None:
            raise node.unsupported(
                f"input {index} is omitted before a present one, which cannot be kept on the host"
            )
        array = default(_np_dtype(ctx, node.inputs[0]))
        values.append(ctx.new_constant(array))
        input_types.append((array.dtype, array.shape))
    complete = NodeProto()
    complete.CopyFrom(node.proto)
    complete.input[:] = [name or f"omitted_{i}" for i, name in enumerate(complete.input)]
    del complete.input[len(values) :]
    try:
        reference_evaluator(complete, input_types, ctx.opsets)
    except Exception as error:
        raise node.unsupported(f"onnx.reference cannot run it: {first_line(error)}") from None
    op = axq.HostOp(
        node.op_type,
        values,
        [ctx.tensor_type(n) for n in outputs],
        attributes,
        ctx.opset(node),
        ctx.domain(node),
    )
    ctx.emit(op)
    for name, result in zip(outputs, op.results, strict=True):
        ctx.bind(name, result)


def _rstrip_empty(names: Sequence[str]) -> list[str]:
    names = list(names)
    while names and not names[-1]:
        names.pop()
    return names


def _np_dtype(ctx: _Importer, name: str) -> np.dtype:
    if name in ctx.constants:
        return ctx.constants[name].dtype
    return helper.tensor_dtype_to_np_dtype(ctx.static_type(name)[1])


# ====================================================================== geometry


def _explicit_pads(
    node: _Node,
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[int]:
    """ONNX auto_pad resolved to explicit [begin..., end...] pads."""
    auto_pad = node.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    rank = len(spatial)
    if auto_pad == "NOTSET":
        pads = list(node.attr("pads", [0] * 2 * rank))
        if len(pads) != 2 * rank:
            raise ModelError(f"{node.describe()}: needs {2 * rank} pads, got {pads}")
        return pads
    if auto_pad == "VALID":
        return [0] * 2 * rank
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ModelError(f"{node.describe()}: auto_pad '{auto_pad}' is not an ONNX padding mode")
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def _window(node: _Node, spatial: Sequence[int], kernel: Sequence[int]):
    """(strides, dilations, pads) of a 2-D sliding-window node."""
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    pads = _explicit_pads(node, spatial, kernel, strides, dilations)
    return strides, dilations, pads


def _require_2d(node: _Node, rank: int, what: str) -> None:
    if rank != 4:
        raise node.unsupported(
            f"{rank - 2}-D {what} is not supported, only 2-D (NCHW) "
            f"{what}; reshape the model to 2-D"
        )


# ====================================================================== converters


def _bias_or_zeros(ctx: _Importer, node: _Node, index: int, channels: int) -> SSAValue:
    name = node.input(index)
    if name:
        return ctx.value(name)
    return ctx.new_constant(np.zeros(channels, np.float32))


def _foldable_batchnorm(ctx: _Importer, conv: _Node) -> tuple[int, _Node] | None:
    """The BatchNormalization that alone reads a Conv's output, if it can fold into it."""
    if not ctx.is_constant(conv.input(1)) or (conv.input(2) and not ctx.is_constant(conv.input(2))):
        return None
    bn_index = ctx.sole_consumer(conv.outputs[0])
    if bn_index is None:
        return None
    bn = ctx.nodes[bn_index]
    if bn.op_type != "BatchNormalization" or bn.inputs[0] != conv.outputs[0]:
        return None
    if bn.attr("training_mode", 0) or not all(ctx.is_constant(n) for n in bn.inputs[1:5]):
        return None
    if any(name and ctx.consumers.get(name) for name in bn.outputs[1:]):
        return None
    return bn_index, bn


def _batchnorm_scale_shift(ctx: _Importer, bn: _Node) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, shift) of y = scale * x + shift, computed in float64."""
    _require_finite(ctx, bn, bn.inputs[1:5])
    gamma, beta, mean, var = (ctx.constants[name].astype(np.float64) for name in bn.inputs[1:5])
    denominator = var + bn.attr("epsilon", 1e-5)
    if not (denominator > 0).all():
        raise ModelError(
            f"{bn.describe()}: variance '{bn.inputs[4]}' plus epsilon is not "
            "positive in every channel; fix the model's statistics"
        )
    scale = gamma / np.sqrt(denominator)
    return scale, beta - mean * scale


def convert_conv(ctx: _Importer, node: _Node) -> None:
    """Conv -> axq.conv2d, with a following BatchNormalization folded in when possible.

    A grouped conv with a non-square stride (sh, sw) is a conv with the square stride
    g = gcd(sh, sw) and an axq.slice that keeps every (sh/g)-th row and (sw/g)-th column.
    """
    weight_shape = ctx.shape(node.inputs[1])
    _require_2d(node, len(weight_shape), "convolution")
    _require_finite(ctx, node, node.inputs[1:3])
    strides, dilations, pads = _window(node, ctx.shape(node.inputs[0])[2:], weight_shape[2:])
    out_channels, output = weight_shape[0], node.outputs[0]
    folded = _foldable_batchnorm(ctx, node)
    if folded is None:
        weight = ctx.value(node.inputs[1])
        bias = _bias_or_zeros(ctx, node, 2, out_channels)
    else:
        bn_index, bn = folded
        ctx.absorbed.add(bn_index)
        scale, shift = _batchnorm_scale_shift(ctx, bn)
        raw_weight = ctx.constants[node.inputs[1]].astype(np.float64)
        raw_bias = (
            ctx.constants[node.inputs[2]].astype(np.float64)
            if node.input(2)
            else np.zeros(out_channels)
        )
        weight = ctx.new_constant((raw_weight * scale[:, None, None, None]).astype(np.float32))
        bias = ctx.new_constant((raw_bias * scale + shift).astype(np.float32))
        output = bn.outputs[0]
    group = node.attr("group", 1)
    result_type = ctx.tensor_type(output)
    subsample = [1, 1]
    if group > 1 and strides[0] != strides[1]:
        # The DWPU strides squarely: stride gcd, then keep every (s / gcd)-th row/column.
        common = math.gcd(*strides)
        subsample = [stride // common for stride in strides]
        strides = [common, common]
        in_shape, out_shape = ctx.shape(node.inputs[0]), ctx.shape(output)
        full = [
            axq.conv_output_size(size, k, common, pads[i], pads[i + 2], dilations[i])
            for i, (size, k) in enumerate(zip(in_shape[2:], weight_shape[2:], strict=True))
        ]
        result_type = tensor_type((*out_shape[:2], *full), axq.element_type(result_type))
    op = axq.Conv2dOp(
        ctx.value(node.inputs[0]),
        weight,
        bias,
        result_type,
        strides=strides,
        pads=pads,
        dilations=dilations,
        group=group,
    )
    y = ctx.emit(op).results[0]
    if subsample != [1, 1]:
        sizes = axq.shape_of(y)[2:]
        y = ctx.emit(
            axq.SliceOp(y, ctx.tensor_type(output), [0, 0], list(sizes), [2, 3], subsample)
        ).results[0]
    ctx.bind(output, y)


def convert_conv_transpose(ctx: _Importer, node: _Node) -> None:
    """ConvTranspose -> axq.conv_transpose2d, with output_shape/auto_pad as explicit pads."""
    input_shape, weight_shape = ctx.shape(node.inputs[0]), ctx.shape(node.inputs[1])
    _require_2d(node, len(weight_shape), "transposed convolution")
    _require_finite(ctx, node, node.inputs[1:3])
    group = node.attr("group", 1)
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    output_padding = list(node.attr("output_padding", [0, 0]))
    auto_pad = node.attr("auto_pad", b"NOTSET").decode()
    output_shape = node.attr("output_shape")
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [size * s for size, s in zip(input_shape[2:], strides, strict=True)]
    if output_shape is None:
        pads = [0] * 4 if auto_pad == "VALID" else list(node.attr("pads", [0] * 4))
    else:
        begins, ends = [], []
        for i, target in enumerate(output_shape[-2:]):
            total = (
                strides[i] * (input_shape[2 + i] - 1)
                + output_padding[i]
                + (weight_shape[2 + i] - 1) * dilations[i]
                + 1
                - target
            )
            if total < 0:  # a larger output_shape extends the end, like output_padding
                output_padding[i] -= total
                total = 0
            small, large = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else large)
            ends.append(large if auto_pad == "SAME_UPPER" else small)
        pads = begins + ends
    op = axq.ConvTranspose2dOp(
        ctx.value(node.inputs[0]),
        ctx.value(node.inputs[1]),
        _bias_or_zeros(ctx, node, 2, weight_shape[1] * group),
        ctx.tensor_type(node.outputs[0]),
        strides=strides,
        pads=pads,
        dilations=dilations,
        output_padding=output_padding,
        group=group,
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_batchnorm(ctx: _Importer, node: _Node) -> None:
    """BatchNormalization that did not fold into a Conv: x * scale + shift per channel."""
    if node.attr("training_mode", 0) or not all(ctx.is_constant(n) for n in node.inputs[1:5]):
        raise node.unsupported("training mode or computed statistics run on the host")
    scale, shift = _batchnorm_scale_shift(ctx, node)
    rank = len(ctx.shape(node.inputs[0]))
    channel_shape = (1, scale.size) + (1,) * (rank - 2)
    result_type = ctx.tensor_type(node.outputs[0])
    scaled = ctx.emit(
        axq.MulOp(
            ctx.value(node.inputs[0]),
            ctx.new_constant(scale.astype(np.float32).reshape(channel_shape)),
            result_type,
        )
    ).results[0]
    shifted = ctx.emit(
        axq.AddOp(
            scaled, ctx.new_constant(shift.astype(np.float32).reshape(channel_shape)), result_type
        )
    ).results[0]
    ctx.bind(node.outputs[0], shifted)


def _transpose_2d(ctx: _Importer, value: SSAValue) -> SSAValue:
    rows, cols = axq.shape_of(value)
    op = axq.TransposeOp(value, tensor_type((cols, rows), axq.element_type(value)), [1, 0])
    return ctx.emit(op).results[0]


def _dense(
    ctx: _Importer, input: SSAValue, weight: np.ndarray, bias: np.ndarray, result_type: Attribute
) -> SSAValue:
    op = axq.DenseOp(
        input,
        ctx.new_constant(weight.astype(np.float32)),
        ctx.new_constant(bias.astype(np.float32)),
        result_type,
    )
    return ctx.emit(op).results[0]


def convert_gemm(ctx: _Importer, node: _Node) -> None:
    """Gemm: alpha * op(A) @ op(B) + beta * C."""
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    _require_finite(ctx, node, node.inputs[1:3])
    result_type = ctx.tensor_type(node.outputs[0])
    rows, cols = ctx.shape(node.outputs[0])
    a = ctx.value(node.inputs[0])
    if node.attr("transA", 0):
        a = _transpose_2d(ctx, a)
    c_name = node.input(2) if beta != 0 else ""
    if ctx.is_constant(node.inputs[1]):
        b = ctx.constants[node.inputs[1]].astype(np.float64)
        weight = alpha * (b if node.attr("transB", 0) else b.T)
        c = ctx.constants.get(c_name) if c_name else None
        if c is not None and (c.ndim < 2 or c.shape[0] == 1):
            bias, c_name = beta * np.broadcast_to(c, (rows, cols))[0], ""
        else:
            bias = np.zeros(cols)
        y = _dense(ctx, a, weight, bias, result_type)
    else:
        b = ctx.value(node.inputs[1])
        if node.attr("transB", 0):
            b = _transpose_2d(ctx, b)
        y = ctx.emit(axq.MatMulOp(a, b, result_type)).results[0]
        if alpha != 1.0:
            y = ctx.emit(axq.MulOp(y, ctx.new_constant(np.float32(alpha)), result_type)).results[0]
    if c_name:
        c_value = (
            ctx.new_constant((beta * ctx.constants[c_name]).astype(np.float32))
            if ctx.is_constant(c_name)
            else ctx.value(c_name)
        )
        if not ctx.is_constant(c_name) and beta != 1.0:
            c_value = ctx.emit(
                axq.MulOp(c_value, ctx.new_constant(np.float32(beta)), ctx.tensor_type(c_name))
            ).results[0]
        y = ctx.emit(axq.AddOp(y, c_value, result_type)).results[0]
    ctx.bind(node.outputs[0], y)


def convert_matmul(ctx: _Importer, node: _Node) -> None:
    """MatMul: axq.dense for a constant 2-D right operand, axq.matmul otherwise."""
    a_name, b_name = node.inputs
    _require_finite(ctx, node, [b_name])
    result_type = ctx.tensor_type(node.outputs[0])
    if ctx.is_constant(b_name) and ctx.constants[b_name].ndim == 2:
        b = ctx.constants[b_name]
        y = _dense(ctx, ctx.value(a_name), b.T, np.zeros(b.shape[1]), result_type)
    else:
        y = ctx.emit(axq.MatMulOp(ctx.value(a_name), ctx.value(b_name), result_type)).results[0]
    ctx.bind(node.outputs[0], y)


def _binary(op_class: type[axq._BinaryOp]) -> Callable[[_Importer, _Node], None]:
    def convert(ctx: _Importer, node: _Node) -> None:
        op = op_class(
            ctx.value(node.inputs[0]), ctx.value(node.inputs[1]), ctx.tensor_type(node.outputs[0])
        )
        ctx.bind(node.outputs[0], ctx.emit(op).results[0])

    convert.__doc__ = f"{op_class.name}: elementwise with ONNX (NumPy) broadcasting."
    return convert


def convert_div(ctx: _Importer, node: _Node) -> None:
    """Div by a constant is a multiplication by its reciprocal; by a computed tensor, a
    multiplication by the reciprocal table (axq.lut reciprocal) of the divisor."""
    divisor = node.inputs[1]
    if ctx.is_constant(divisor):
        reciprocal = ctx.new_constant(
            (1.0 / ctx.constants[divisor].astype(np.float64)).astype(np.float32)
        )
    else:
        lut = axq.LutOp(ctx.value(divisor), ctx.tensor_type(divisor), _U.RECIPROCAL)
        reciprocal = ctx.emit(lut).results[0]
    op = axq.MulOp(ctx.value(node.inputs[0]), reciprocal, ctx.tensor_type(node.outputs[0]))
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def _lut(function: axq.UnaryFunction, **defaults: float) -> Callable[[_Importer, _Node], None]:
    """A converter to axq.lut whose parameters are the ONNX attributes named in defaults."""

    def convert(ctx: _Importer, node: _Node) -> None:
        params = {name: float(node.attr(name, value)) for name, value in defaults.items()}
        op = axq.LutOp(
            ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]), function, params
        )
        ctx.bind(node.outputs[0], ctx.emit(op).results[0])

    convert.__doc__ = f"axq.lut {function.value} with parameters {sorted(defaults)}."
    return convert


def convert_gelu(ctx: _Importer, node: _Node) -> None:
    """Gelu is a LUT: exact (erf) or its tanh approximation."""
    tanh = node.attr("approximate", b"none") == b"tanh"
    _lut(axq.UnaryFunction.GELU_TANH if tanh else axq.UnaryFunction.GELU)(ctx, node)


def _clip(ctx: _Importer, node: _Node, low: float, high: float) -> None:
    op = axq.ClipOp(ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]), low, high)
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_relu(ctx: _Importer, node: _Node) -> None:
    """Relu is a clamp to [0, inf)."""
    _clip(ctx, node, 0.0, float("inf"))


def convert_clip(ctx: _Importer, node: _Node) -> None:
    """Clip with constant bounds (inputs since opset 11; absent bound = unbounded)."""
    bounds = []
    for index, unbounded in ((1, -np.inf), (2, np.inf)):
        name = node.input(index)
        if not name:
            bounds.append(float(unbounded))
            continue
        bound = ctx.constant(node, name, "the clip bound")
        if bound.size != 1:
            raise ModelError(
                f"{node.describe()}: clip bounds must be scalars, got shape {bound.shape}"
            )
        bounds.append(float(bound.reshape(())))
    low, high = bounds
    _clip(ctx, node, min(low, high), high)  # ONNX: min > max clips everything to max


def convert_prelu(ctx: _Importer, node: _Node) -> None:
    """PRelu: the slope broadcasts onto the input (scalar or per channel)."""
    _require_finite(ctx, node, node.inputs[1:2])
    op = axq.PReluOp(
        ctx.value(node.inputs[0]), ctx.value(node.inputs[1]), ctx.tensor_type(node.outputs[0])
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_softmax(ctx: _Importer, node: _Node) -> None:
    rank = len(ctx.shape(node.inputs[0]))
    axis = _normalise_axis(node, node.attr("axis", -1), rank)
    op = axq.SoftmaxOp(ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]), axis)
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def _pool_geometry(ctx: _Importer, node: _Node):
    input_shape = ctx.shape(node.inputs[0])
    _require_2d(node, len(input_shape), "pooling")
    kernel = list(node.attr("kernel_shape"))
    strides, dilations, pads = _window(node, input_shape[2:], kernel)
    return kernel, strides, dilations, pads, bool(node.attr("ceil_mode", 0))


def convert_max_pool(ctx: _Importer, node: _Node) -> None:
    if node.attr("storage_order", 0) != 0:
        raise node.unsupported("storage_order=1 (column-major indices) is not supported")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.unsupported("the Indices output of MaxPool is not supported")
    kernel, strides, dilations, pads, ceil_mode = _pool_geometry(ctx, node)
    op = axq.MaxPoolOp(
        ctx.value(node.inputs[0]),
        ctx.tensor_type(node.outputs[0]),
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_avg_pool(ctx: _Importer, node: _Node) -> None:
    kernel, strides, dilations, pads, ceil_mode = _pool_geometry(ctx, node)
    if any(d != 1 for d in dilations):
        raise node.unsupported(f"dilated average pooling (dilations {dilations}) is not supported")
    op = axq.AvgPoolOp(
        ctx.value(node.inputs[0]),
        ctx.tensor_type(node.outputs[0]),
        kernel,
        strides,
        pads,
        ceil_mode,
        bool(node.attr("count_include_pad", 0)),
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def _global_pool(kind: axq.PoolKind) -> Callable[[_Importer, _Node], None]:
    def convert(ctx: _Importer, node: _Node) -> None:
        op = axq.GlobalPoolOp(ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]), kind)
        ctx.bind(node.outputs[0], ctx.emit(op).results[0])

    convert.__doc__ = f"axq.global_pool {kind.value}."
    return convert


def _scales_from_sizes(in_shape: Sequence[int], sizes: Sequence[int]) -> list[float]:
    """Scales out/in, nudged up by an ulp where floor(in * scale) would fall short of out."""
    scales = []
    for n, m in zip(in_shape, sizes, strict=True):
        scale = m / n
        while int(np.floor(n * scale)) < m:
            scale = float(np.nextafter(scale, np.inf))
        scales.append(scale)
    return scales


def _emit_resize(
    ctx: _Importer,
    node: _Node,
    mode: axq.ResizeMode,
    scales: Sequence[float],
    transform: axq.CoordinateTransform,
    rounding: axq.NearestRounding,
) -> None:
    op = axq.ResizeOp(
        ctx.value(node.inputs[0]),
        ctx.tensor_type(node.outputs[0]),
        mode,
        [float(s) for s in scales],
        transform,
        rounding,
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_resize(ctx: _Importer, node: _Node) -> None:
    """Resize with nearest or linear interpolation and constant scales or sizes."""
    mode = node.attr("mode", b"nearest").decode()
    transform = node.attr("coordinate_transformation_mode", b"half_pixel").decode()
    if mode not in ("nearest", "linear"):
        raise node.unsupported(f"mode '{mode}' is not supported, only nearest and linear")
    if transform not in {t.value for t in axq.CoordinateTransform}:
        raise node.unsupported(f"coordinate_transformation_mode '{transform}' is not supported")
    if node.attr("antialias", 0):
        raise node.unsupported("antialias=1 is not supported")
    in_shape = ctx.shape(node.inputs[0])
    rank = len(in_shape)
    axes = [_normalise_axis(node, a, rank) for a in node.attr("axes", range(rank))]
    scales_name, sizes_name = node.input(2), node.input(3)
    if scales_name and ctx.shape(scales_name) != (0,):
        given = ctx.constant(node, scales_name, "the scales input").astype(np.float64)
        scales = [1.0] * rank
        for axis, scale in zip(axes, given, strict=True):
            scales[axis] = float(scale)
    elif sizes_name:
        ctx.constant(node, sizes_name, "the sizes input")
        if node.attr("keep_aspect_ratio_policy", b"stretch") != b"stretch":
            raise node.unsupported("keep_aspect_ratio_policy other than 'stretch' is not supported")
        scales = _scales_from_sizes(in_shape, ctx.shape(node.outputs[0]))
    else:
        raise ModelError(f"{node.describe()}: needs a scales or a sizes input")
    rounding = node.attr("nearest_mode", b"round_prefer_floor").decode()
    _emit_resize(
        ctx,
        node,
        axq.ResizeMode(mode),
        scales,
        axq.CoordinateTransform(transform),
        axq.NearestRounding(rounding),
    )


def convert_upsample(ctx: _Importer, node: _Node) -> None:
    """Upsample (deprecated) is Resize with asymmetric coordinates and floor rounding."""
    mode = node.attr("mode", b"nearest").decode()
    if mode not in ("nearest", "linear"):
        raise node.unsupported(f"mode '{mode}' is not supported, only nearest and linear")
    scales = ctx.constant(node, node.inputs[1], "the scales input")
    _emit_resize(
        ctx,
        node,
        axq.ResizeMode(mode),
        scales.astype(np.float64).tolist(),
        axq.CoordinateTransform.ASYMMETRIC,
        axq.NearestRounding.FLOOR,
    )


def convert_pad(ctx: _Importer, node: _Node) -> None:
    """Pad with constant pads (and axes), modes constant/reflect/edge."""
    mode = node.attr("mode", b"constant").decode()
    if mode not in {m.value for m in axq.PadMode}:
        raise node.unsupported(
            f"pad mode '{mode}' is not supported, only constant, reflect and edge"
        )
    rank = len(ctx.shape(node.inputs[0]))
    given = ctx.constant(node, node.inputs[1], "the pads input").astype(np.int64).tolist()
    axes = list(range(rank))
    if node.input(3):
        axes = [
            _normalise_axis(node, int(a), rank)
            for a in ctx.constant(node, node.input(3), "the axes input").ravel()
        ]
    if len(given) != 2 * len(axes):
        raise ModelError(f"{node.describe()}: needs {2 * len(axes)} pads, got {len(given)}")
    if min(given, default=0) < 0:
        raise node.unsupported(f"negative pads {given} (cropping) are not supported")
    pads = [0] * 2 * rank
    for i, axis in enumerate(axes):
        pads[axis], pads[axis + rank] = given[i], given[i + len(axes)]
    value = 0.0
    if node.input(2):
        value = float(ctx.constant(node, node.input(2), "the constant_value input").reshape(()))
    op = axq.PadOp(
        ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]), pads, value, axq.PadMode(mode)
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def _normalise_slice(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX Slice clamping; 'through index 0' with a negative step becomes -(dim + 1)."""
    start += dim if start < 0 else 0
    end += dim if end < 0 else 0
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, -(dim + 1) if end == -1 else end


def convert_slice(ctx: _Importer, node: _Node) -> None:
    """Slice with constant starts/ends/axes/steps, normalised and clamped like ONNX."""
    shape = ctx.shape(node.inputs[0])
    rank = len(shape)
    starts = ctx.constant(node, node.inputs[1], "starts").astype(np.int64).tolist()
    ends = ctx.constant(node, node.inputs[2], "ends").astype(np.int64).tolist()
    axes = (
        ctx.constant(node, node.input(3), "axes").astype(np.int64).tolist()
        if node.input(3)
        else list(range(len(starts)))
    )
    steps = (
        ctx.constant(node, node.input(4), "steps").astype(np.int64).tolist()
        if node.input(4)
        else [1] * len(starts)
    )
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ModelError(f"{node.describe()}: starts, ends, axes and steps differ in length")
    if 0 in steps:
        raise ModelError(f"{node.describe()}: a slice step must not be 0")
    axes = [_normalise_axis(node, a, rank) for a in axes]
    bounds = [
        _normalise_slice(shape[a], s, e, st)
        for a, s, e, st in zip(axes, starts, ends, steps, strict=True)
    ]
    op = axq.SliceOp(
        ctx.value(node.inputs[0]),
        ctx.tensor_type(node.outputs[0]),
        [b[0] for b in bounds],
        [b[1] for b in bounds],
        axes,
        steps,
    )
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_split(ctx: _Importer, node: _Node) -> None:
    """Split; the piece sizes are those of the shape-inferred outputs."""
    axis = _normalise_axis(node, node.attr("axis", 0), len(ctx.shape(node.inputs[0])))
    if node.input(1):
        ctx.constant(node, node.input(1), "the split input")
    op = axq.SplitOp(ctx.value(node.inputs[0]), [ctx.tensor_type(n) for n in node.outputs], axis)
    ctx.emit(op)
    for name, result in zip(node.outputs, op.results, strict=True):
        ctx.bind(name, result)


def convert_concat(ctx: _Importer, node: _Node) -> None:
    rank = len(ctx.shape(node.inputs[0]))
    axis = _normalise_axis(node, node.attr("axis"), rank)
    op = axq.ConcatOp([ctx.value(n) for n in node.inputs], ctx.tensor_type(node.outputs[0]), axis)
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_reshape(ctx: _Importer, node: _Node) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze: the target is the static output shape."""
    op = axq.ReshapeOp(ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]))
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def convert_transpose(ctx: _Importer, node: _Node) -> None:
    rank = len(ctx.shape(node.inputs[0]))
    perm = list(node.attr("perm", range(rank - 1, -1, -1)))
    op = axq.TransposeOp(ctx.value(node.inputs[0]), ctx.tensor_type(node.outputs[0]), perm)
    ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def _chain(ctx: _Importer, op_class: type[axq._BinaryOp], values: Sequence[SSAValue]) -> SSAValue:
    """values[0] op values[1] op ... as binary ops, left to right, broadcasting as it goes."""
    result = values[0]
    for value in values[1:]:
        shape = np.broadcast_shapes(axq.shape_of(result), axq.shape_of(value))
        result_type = tensor_type(shape, axq.element_type(value))
        result = ctx.emit(op_class(result, value, result_type)).results[0]
    return result


def _nary(op_class: type[axq._BinaryOp]) -> Callable[[_Importer, _Node], None]:
    def convert(ctx: _Importer, node: _Node) -> None:
        values = [ctx.value(name) for name in node.inputs if name]
        ctx.bind(node.outputs[0], _chain(ctx, op_class, values))

    convert.__doc__ = f"n-ary: a chain of {op_class.name} (one input: the identity)."
    return convert


def convert_mean(ctx: _Importer, node: _Node) -> None:
    """Mean of n inputs: a chain of axq.add, then axq.mul by 1/n."""
    values = [ctx.value(name) for name in node.inputs if name]
    total = _chain(ctx, axq.AddOp, values)
    if len(values) > 1:
        inverse = ctx.new_constant(np.float32(1 / len(values)))
        total = ctx.emit(axq.MulOp(total, inverse, ctx.tensor_type(node.outputs[0]))).results[0]
    ctx.bind(node.outputs[0], total)


def convert_pow(ctx: _Importer, node: _Node) -> None:
    """Pow by a constant scalar: x * x for 2, x for 1, else the table of x ** p."""
    exponent = ctx.constant(node, node.inputs[1], "the exponent")
    if exponent.size != 1:
        raise node.unsupported(f"exponent of shape {exponent.shape}; only a scalar")
    p = float(exponent.reshape(()))
    x = ctx.value(node.inputs[0])
    result_type = ctx.tensor_type(node.outputs[0])
    if axq.shape_of(result_type) != axq.shape_of(x):
        raise node.unsupported("the exponent broadcasts the base to a larger shape")
    if p == 1.0:
        ctx.bind(node.outputs[0], x)
    elif p == 2.0:
        ctx.bind(node.outputs[0], ctx.emit(axq.MulOp(x, x, result_type)).results[0])
    else:
        op = axq.LutOp(x, result_type, _U.POW, {"exponent": p})
        ctx.bind(node.outputs[0], ctx.emit(op).results[0])


def _affine_constant(ctx: _Importer, name: str | None, shape, default: float) -> SSAValue:
    """gamma or beta broadcast to the normalised shape (`default` when absent)."""
    if not name:
        return ctx.new_constant(np.full(shape, default, np.float32))
    values = ctx.constants[name].astype(np.float32)
    return ctx.new_constant(np.ascontiguousarray(np.broadcast_to(values, shape)))


def _emit_layer_norm(
    ctx: _Importer, x: str, scale: str | None, bias: str | None, axis: int, epsilon: float, out: str
) -> None:
    shape = ctx.shape(x)
    normalized = tuple(shape[axis:])
    op = axq.LayerNormOp(
        ctx.value(x),
        _affine_constant(ctx, scale, normalized, 1.0),
        _affine_constant(ctx, bias, normalized, 0.0),
        ctx.tensor_type(out),
        axis,
        epsilon,
    )
    ctx.bind(out, ctx.emit(op).results[0])


def convert_layer_norm(ctx: _Importer, node: _Node) -> None:
    """LayerNormalization (Mean/InvStdDev outputs unused) -> axq.layer_norm."""
    _require_finite(ctx, node, node.inputs[1:3])
    axis = _normalise_axis(node, node.attr("axis", -1), len(ctx.shape(node.inputs[0])))
    ctx.constant(node, node.inputs[1], "the scale")
    if node.input(2):
        ctx.constant(node, node.input(2), "the bias")
    epsilon = float(node.attr("epsilon", 1e-5))
    _emit_layer_norm(
        ctx, node.inputs[0], node.inputs[1], node.input(2), axis, epsilon, node.outputs[0]
    )


def convert_layer_norm_pattern(ctx: _Importer, match: LayerNormMatch) -> None:
    """A LayerNorm spelled in primitive ops (`patterns.find_layer_norms`) -> axq.layer_norm."""
    _emit_layer_norm(
        ctx, match.input, match.scale, match.bias, match.axis, match.epsilon, match.output
    )


def _global_reduce(kind: axq.PoolKind) -> Callable[[_Importer, _Node], None]:
    def convert(ctx: _Importer, node: _Node) -> None:
        in_shape = ctx.shape(node.inputs[0])
        pooled = tensor_type((*in_shape[:2], *[1] * (len(in_shape) - 2)), f32)
        y = ctx.emit(axq.GlobalPoolOp(ctx.value(node.inputs[0]), pooled, kind)).results[0]
        if axq.shape_of(pooled) != ctx.shape(node.outputs[0]):  # keepdims=0
            y = ctx.emit(axq.ReshapeOp(y, ctx.tensor_type(node.outputs[0]))).results[0]
        ctx.bind(node.outputs[0], y)

    convert.__doc__ = f"A reduction over all spatial axes: axq.global_pool {kind.value}."
    return convert


def convert_identity(ctx: _Importer, node: _Node) -> None:
    """Identity is dropped: its output names the input's value."""
    ctx.bind(node.outputs[0], ctx.value(node.inputs[0]))


def convert_dropout(ctx: _Importer, node: _Node) -> None:
    """Inference Dropout is the identity; its mask output is a constant, all true."""
    training = node.input(2)
    if training and bool(ctx.constant(node, training, "training_mode").reshape(())):
        raise node.unsupported("training_mode=true draws random masks; it runs on the host")
    if len(node.outputs) > 1 and node.outputs[1]:
        ctx.constants[node.outputs[1]] = np.ones(ctx.shape(node.inputs[0]), np.bool_)
    convert_identity(ctx, node)


_U = axq.UnaryFunction

CONVERTERS: dict[str, Callable[[_Importer, _Node], None]] = {
    "Conv": convert_conv,
    "ConvTranspose": convert_conv_transpose,
    "BatchNormalization": convert_batchnorm,
    "Gemm": convert_gemm,
    "MatMul": convert_matmul,
    "Add": _binary(axq.AddOp),
    "Sub": _binary(axq.SubOp),
    "Mul": _binary(axq.MulOp),
    "Div": convert_div,
    "PRelu": convert_prelu,
    "Relu": convert_relu,
    "Clip": convert_clip,
    "LeakyRelu": _lut(_U.LEAKYRELU, alpha=0.01),
    "Sigmoid": _lut(_U.SIGMOID),
    "Tanh": _lut(_U.TANH),
    "HardSwish": _lut(_U.HARDSWISH),
    "HardSigmoid": _lut(_U.HARDSIGMOID, alpha=0.2, beta=0.5),
    "Elu": _lut(_U.ELU, alpha=1.0),
    "Softplus": _lut(_U.SOFTPLUS),
    "Exp": _lut(_U.EXP),
    "Erf": _lut(_U.ERF),
    "Sqrt": _lut(_U.SQRT),
    "Reciprocal": _lut(_U.RECIPROCAL),
    "Abs": _lut(_U.ABS),
    "Neg": _lut(_U.NEG),
    "Gelu": convert_gelu,
    "Selu": _lut(_U.SELU, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    "Celu": _lut(_U.CELU, alpha=1.0),
    "Softsign": _lut(_U.SOFTSIGN),
    "Mish": _lut(_U.MISH),
    "ThresholdedRelu": _lut(_U.THRESHOLDEDRELU, alpha=1.0),
    "Log": _lut(_U.LOG),
    "Sin": _lut(_U.SIN),
    "Cos": _lut(_U.COS),
    "Pow": convert_pow,
    "Sum": _nary(axq.AddOp),
    "Max": _nary(axq.MaxOp),
    "Min": _nary(axq.MinOp),
    "Mean": convert_mean,
    "LayerNormalization": convert_layer_norm,
    "ReduceMean": _global_reduce(axq.PoolKind.AVG),
    "ReduceMax": _global_reduce(axq.PoolKind.MAX),
    "Softmax": convert_softmax,
    "MaxPool": convert_max_pool,
    "AveragePool": convert_avg_pool,
    "GlobalAveragePool": _global_pool(axq.PoolKind.AVG),
    "GlobalMaxPool": _global_pool(axq.PoolKind.MAX),
    "Resize": convert_resize,
    "Upsample": convert_upsample,
    "Pad": convert_pad,
    "Slice": convert_slice,
    "Split": convert_split,
    "Concat": convert_concat,
    "Reshape": convert_reshape,
    "Flatten": convert_reshape,
    "Squeeze": convert_reshape,
    "Unsqueeze": convert_reshape,
    "Transpose": convert_transpose,
    "Identity": convert_identity,
    "Dropout": convert_dropout,
}
"""ONNX op type -> converter of one float32 node to axq ops."""


# ====================================================================== entry point


def _static_types(graph: onnx.GraphProto) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (shape, ONNX element type) of every tensor whose shape is fully static."""
    types = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        shape = shape_of_value(info)
        if is_static(shape):
            types[info.name] = (shape, info.type.tensor_type.elem_type)
    return types


def _node_name(node: NodeProto, index: int) -> str:
    if node.name:
        return node.name
    return next((name for name in node.output if name), f"{node.op_type}_{index}")


def _names_attr(names: Sequence[str]) -> ArrayAttr[DictionaryAttr]:
    return ArrayAttr([DictionaryAttr({axq.NAME_ATTR: StringAttr(n)}) for n in names])


def _verify(module: ModuleOp, main: func.FuncOp) -> None:
    """Verifies every op once, naming the failing op and its ONNX node in the error."""
    for op in main.body.block.ops:
        try:
            op.verify()
        except VerifyException as error:
            raise ModelError(f"imported {describe(op)} does not verify: {error}") from None
    main.verify(verify_nested_ops=False)
    module.verify(verify_nested_ops=False)


def import_onnx(
    model: onnx.ModelProto,
    *,
    propagate_span_information: bool = True,
    follow_support: bool = True,
) -> Graph:
    """Imports a shape-inferred, static-shape ONNX model (opset >= 17) as an axq `Graph`
    (see `import_with_placement` for `follow_support`)."""
    return import_with_placement(
        model,
        propagate_span_information=propagate_span_information,
        follow_support=follow_support,
    )[0]


def import_with_placement(
    model: onnx.ModelProto,
    *,
    propagate_span_information: bool = True,
    follow_support: bool = True,
) -> tuple[Graph, list[NodePlacement]]:
    """`import_onnx`, and where each node that runs (not folded) went, with its MACs.

    `follow_support=False` converts every float node that has an axq form, whether or not
    the accelerator can run it: the float kernels can then be checked against ONNX on
    cases the support rules leave to the host (lowering would reject such a graph).
    """
    graph = model.graph
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    ctx = _Importer(opsets, propagate_span_information, follow_support=follow_support)
    ctx.types = _static_types(graph)
    for initializer in graph.initializer:
        ctx.constants[initializer.name] = numpy_helper.to_array(initializer)
    ctx.nodes = [
        _Node(node, _node_name(node, i), _decode_attrs(node)) for i, node in enumerate(graph.node)
    ]
    for index, node in enumerate(graph.node):
        for name in set(node.input):
            ctx.consumers.setdefault(name, []).append(index)
    ctx.graph_outputs = {output.name for output in graph.output}
    for index, node in enumerate(ctx.nodes):
        ctx.fold_node(index, node)
    ctx.index = dataclasses.replace(GraphIndex.of(model), constants=ctx.constants)
    ctx.index.shapes.update({name: value.shape for name, value in ctx.constants.items()})
    _claim_layer_norms(ctx)

    input_names = [i.name for i in graph.input if i.name not in ctx.constants]
    ctx.block = Block(arg_types=[ctx.tensor_type(name) for name in input_names])
    for name, arg in zip(input_names, ctx.block.args, strict=True):
        ctx.bind(name, arg)

    for index, node in enumerate(ctx.nodes):
        ctx.import_node(index, node)

    output_names = [output.name for output in graph.output]
    results = [ctx.value(name) for name in output_names]
    ctx.block.add_op(func.ReturnOp(*results))
    main = func.FuncOp(
        "main",
        ([a.type for a in ctx.block.args], [r.type for r in results]),
        Region(ctx.block),
        arg_attrs=_names_attr(input_names),
        res_attrs=_names_attr(output_names),
    )
    module = ModuleOp([main])
    _verify(module, main)
    return Graph(module), ctx.placements


def _claim_layer_norms(ctx: _Importer) -> None:
    """The first node of each decomposed LayerNorm emits it; the others are absorbed."""
    assert ctx.index is not None
    position = {node.proto.name: index for index, node in enumerate(ctx.nodes)}
    if len(position) != len(ctx.nodes):
        return  # unnamed nodes (the loader names them): no pattern can be told apart
    for match in ctx.index.layer_norms:
        indices = [position[node.name] for node in match.nodes]
        ctx.layer_norms[indices[0]] = match
        ctx.absorbed.update(indices[1:])
