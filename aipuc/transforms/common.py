"""Small facts and builders the graph rewrites share: constants, single users, locations.

Every op a rewrite creates takes the location of the op it replaces (the ONNX node name),
so `propagate_span_information` holds through every pass.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import LocationAttr, f32
from xdsl.ir import Operation, SSAValue

from aipuc.dialects import axq
from aipuc.dialects.axq import element_type, shape_of
from aipuc.dialects.axq_graph import is_f32_tensor
from aipuc.dialects.tensors import dense_from_numpy, tensor_type


def constant_array(value: SSAValue) -> np.ndarray | None:
    """The data of a float `axq.constant` result, else None."""
    owner = value.owner
    if isinstance(owner, axq.ConstantOp) and is_f32_tensor(value):
        return owner.to_numpy()
    return None


def scalar_constant(value: SSAValue) -> float | None:
    """The value of a float constant holding one element, else None."""
    array = constant_array(value)
    return float(array.reshape(())) if array is not None and array.size == 1 else None


def constant_operand(op: Operation) -> tuple[SSAValue, np.ndarray] | None:
    """(the other operand, the constant's data) of a binary op with one float constant operand."""
    if len(op.operands) != 2:
        return None
    lhs, rhs = op.operands
    for value, other in ((rhs, lhs), (lhs, rhs)):
        array = constant_array(value)
        if array is not None and constant_array(other) is None:
            return other, array
    return None


def only_user(value: SSAValue) -> Operation | None:
    """The op reading `value`, if exactly one use reads it."""
    return value.get_user_of_unique_use()


def float_constant(array: np.ndarray, location: LocationAttr) -> axq.ConstantOp:
    """A new f32 `axq.constant` holding `array`."""
    array = np.asarray(array, np.float32)
    op = axq.ConstantOp(dense_from_numpy(array, f32), tensor_type(array.shape, f32))
    op.location = location
    return op


def located(op: Operation, location: LocationAttr) -> Operation:
    op.location = location
    return op


def same_shape_type(value: SSAValue, shape: tuple[int, ...]):
    """A tensor type of `shape` with the element type of `value`."""
    return tensor_type(shape, element_type(value))


def keeps_shape(op: Operation, value: SSAValue) -> bool:
    """Whether `value` could replace `op`'s single result: same shape and element type."""
    result = op.results[0]
    return shape_of(value) == shape_of(result) and element_type(value) == element_type(result)


def erase_dead_constants(module: Operation) -> None:
    """Constants no op reads any more (the weights a rewrite replaced by new ones)."""
    for op in reversed(list(module.walk())):
        if isinstance(op, axq.ConstantOp) and not op.result.uses:
            op.detach()
            op.erase()
