"""Facts about the tensors of an axq graph (`func.func @main`), shared by calibration,
`axq-quantize`, the quantization artifacts and later passes.

- naming: stable position keys (`value_keys`) and readable ONNX-based names (`tensor_names`);
- roles: which ops are accelerated, which operands are activations, which tensors
  calibration observes (`calibrated_operands`) and which need per-channel ranges
  (`channel_calibrated_values`).

Per-op facts are traits of the axq ops (`axq.SharesInputQuantization`, ...); this module
combines them over a graph.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, NameLoc, StringAttr, TensorType, f32
from xdsl.ir import Operation, SSAValue
from xdsl.traits import ConstantLike

from aipuc.dialects import axq
from aipuc.dialects.quantized_type import QuantizedType
from aipuc.dialects.tensors import dtype_of
from aipuc.errors import QuantizationError


def main_function(module: ModuleOp) -> func.FuncOp:
    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
            return op
    raise QuantizationError("the module has no func.func @main to quantize")


# --------------------------------------------------------------------------- tensor kinds


def is_f32_tensor(value: SSAValue) -> bool:
    """A float tensor of the accelerated graph, which quantization turns into int8."""
    return isinstance(value.type, TensorType) and value.type.element_type == f32


def is_floating_point_tensor(value: SSAValue) -> bool:
    """A tensor of real numbers in any float width (not quantized codes): calibration
    observes these."""
    return (
        isinstance(value.type, TensorType)
        and not isinstance(value.type.element_type, QuantizedType)
        and np.issubdtype(dtype_of(value.type.element_type), np.floating)
    )


# --------------------------------------------------------------------------- naming


def value_keys(func_op: func.FuncOp) -> dict[SSAValue, str]:
    """Stable position keys: `arg<i>` for arguments, `op<i>.<r>` for op results."""
    keys: dict[SSAValue, str] = {arg: f"arg{arg.index}" for arg in func_op.body.block.args}
    for index, op in enumerate(func_op.body.block.ops):
        for result in op.results:
            keys[result] = f"op{index}.{result.index}"
    return keys


def _is_helper(op: Operation) -> bool:
    """Constants and the conversions quantization inserts: named after the op they serve."""
    return op.has_trait(ConstantLike) or axq.is_quantization_conversion(op)


def tensor_names(func_op: func.FuncOp) -> dict[SSAValue, str]:
    """Readable unique names: ONNX names of arguments, op locations (node names) else op kinds.

    Compute ops are named first, so an op keeps its name whatever constants or conversions
    sit around it (a float graph and its quantized graph name their ops alike); constants
    and conversions are named `<location>.<kind>`. Duplicates get `#<n>` suffixes and the
    results of multi-result ops `:<index>`.
    """
    names: dict[SSAValue, str] = {}
    taken: set[str] = set()

    def claim(value: SSAValue, base: str) -> None:
        name, count = base, 1
        while name in taken:
            count += 1
            name = f"{base}#{count}"
        taken.add(name)
        names[value] = name

    arg_attrs = func_op.arg_attrs.data if func_op.arg_attrs is not None else ()
    for arg in func_op.body.block.args:
        entry = arg_attrs[arg.index].data.get(axq.NAME_ATTR) if arg.index < len(arg_attrs) else None
        claim(arg, entry.data if isinstance(entry, StringAttr) else f"arg{arg.index}")
    ops = list(func_op.body.block.ops)
    for helpers in (False, True):
        for index, op in enumerate(ops):
            if _is_helper(op) != helpers:
                continue
            kind = op.name.split(".")[-1]
            if isinstance(op.location, NameLoc):
                base = op.location.desc.data + (f".{kind}" if helpers else "")
            else:
                base = f"{kind}_{index}"
            for result in op.results:
                claim(result, base if len(op.results) == 1 else f"{base}:{result.index}")
    return names


# --------------------------------------------------------------------------- roles


def is_accelerated(op: Operation) -> bool:
    """An axq op of the model that the accelerator computes (not host, constant or a
    quantization conversion)."""
    return (
        op.name.startswith("axq.")
        and not isinstance(op, axq.HostOp)
        and not op.has_trait(ConstantLike)
        and not axq.is_quantization_conversion(op)
    )


def activation_operands(op: Operation) -> tuple[SSAValue, ...]:
    """Operands of an accelerated op that are activations (not weights or biases)."""
    if not is_accelerated(op):
        return ()
    if axq.is_weighted(op) or axq.has_float_parameters(op):
        return (op.operands[0],)
    return tuple(op.operands)


def calibrated_operands(op: Operation) -> tuple[SSAValue, ...]:
    """Activation operands whose range calibration observes (constants are read directly)."""
    return tuple(v for v in activation_operands(op) if not isinstance(v.owner, axq.ConstantOp))


def preserves_channels(op: Operation) -> bool:
    """A sharing op that keeps axis 1 of a 4-D tensor whole and in place."""
    return (
        axq.shares_input_quantization(op)
        and len(axq.shape_of(op.operands[0])) == 4
        and axq.preserves_channel_axis(op)
    )


def channel_calibrated_values(func_op: func.FuncOp) -> set[SSAValue]:
    """Tensors whose per-channel range the hybrid scheme may need.

    Inputs of depthwise convs, and the tensors they share a type with through
    channel-preserving ops, back to the op that produces the group.
    """
    wanted: set[SSAValue] = set()
    pending = [op.operands[0] for op in func_op.body.block.ops if axq.is_depthwise(op)]
    while pending:
        value = pending.pop()
        if value in wanted:
            continue
        wanted.add(value)
        if isinstance(value.owner, Operation) and preserves_channels(value.owner):
            pending.append(value.owner.operands[0])
    return wanted
