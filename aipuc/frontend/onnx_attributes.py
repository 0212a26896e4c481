"""ONNX node attributes <-> xDSL builtin attributes, losslessly.

`axq.host` keeps the attributes of the ONNX node it stands for, so the interpreters can
rebuild the node and run it with onnx's reference implementation. The mapping is
one-to-one on the attribute kinds a graph node carries:

    INT     <-> IntegerAttr i64          INTS    <-> array<i64: ...>
    FLOAT   <-> FloatAttr f32            FLOATS  <-> array<f32: ...>
    STRING  <-> StringAttr (UTF-8)       STRINGS <-> [StringAttr | BytesAttr, ...]
            or  BytesAttr (other bytes)
    TENSOR  <-> dense<...> (bytes)       TENSORS <-> [dense, ...]

An empty STRINGS or TENSORS list are both the empty ArrayAttr, which converts back to an
empty STRINGS (neither carries a value). Subgraphs, sparse tensors and type protos have no
builtin form and are rejected.
"""

from __future__ import annotations

import numpy as np
from onnx import AttributeProto, TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    f32,
    i64,
)
from xdsl.ir import Attribute

from aipuc.dialects.tensors import dense_from_numpy, numpy_from_dense
from aipuc.errors import UnsupportedOperatorError

_Kind = AttributeProto.AttributeType


def _string_to_builtin(value: bytes) -> StringAttr | BytesAttr:
    try:
        return StringAttr(value.decode("utf-8"))
    except UnicodeDecodeError:
        return BytesAttr(value)


def tensor_to_dense(tensor: TensorProto, what: str) -> DenseIntOrFPElementsAttr:
    """A bytes-backed dense attribute of an ONNX tensor; `what` names it in errors."""
    try:
        return dense_from_numpy(numpy_helper.to_array(tensor))
    except TypeError:
        type_name = TensorProto.DataType.Name(tensor.data_type)
        raise UnsupportedOperatorError(
            f"{what} has element type {type_name}, which aipuc cannot hold in a constant; "
            f"cast it to float32 or an integer type"
        ) from None


def to_builtin(attribute: AttributeProto) -> Attribute:
    """The builtin attribute holding the value of an ONNX attribute."""
    kind = attribute.type
    what = f"attribute '{attribute.name}'"
    if attribute.ref_attr_name:
        raise UnsupportedOperatorError(
            f"{what} refers to function attribute '{attribute.ref_attr_name}'; inline "
            f"functions before importing"
        )
    if kind == _Kind.INT:
        return IntegerAttr(attribute.i, i64)
    if kind == _Kind.FLOAT:
        return FloatAttr(attribute.f, f32)
    if kind == _Kind.STRING:
        return _string_to_builtin(attribute.s)
    if kind == _Kind.TENSOR:
        return tensor_to_dense(attribute.t, what)
    if kind == _Kind.INTS:
        return DenseArrayBase.from_list(i64, list(attribute.ints))
    if kind == _Kind.FLOATS:
        return DenseArrayBase.from_list(f32, list(attribute.floats))
    if kind == _Kind.STRINGS:
        return ArrayAttr([_string_to_builtin(s) for s in attribute.strings])
    if kind == _Kind.TENSORS:
        return ArrayAttr([tensor_to_dense(t, what) for t in attribute.tensors])
    raise UnsupportedOperatorError(
        f"{what} of kind {_Kind.Name(kind)} has no builtin attribute form (subgraphs, "
        f"sparse tensors and types are not supported)"
    )


def _string_to_onnx(name: str, value: Attribute) -> bytes:
    if isinstance(value, StringAttr):
        return value.data.encode("utf-8")
    if isinstance(value, BytesAttr):
        return value.data
    raise TypeError(f"attribute '{name}': list element {value} is not a string")


def _dense_to_onnx(value: DenseIntOrFPElementsAttr) -> TensorProto:
    return numpy_helper.from_array(np.asarray(numpy_from_dense(value)))


def to_onnx(name: str, value: Attribute) -> AttributeProto:
    """The ONNX attribute `name` holding `value` (the inverse of `to_builtin`)."""
    if isinstance(value, IntegerAttr):
        return helper.make_attribute(name, int(value.value.data), attr_type=_Kind.INT)
    if isinstance(value, FloatAttr):
        return helper.make_attribute(name, float(value.value.data), attr_type=_Kind.FLOAT)
    if isinstance(value, StringAttr | BytesAttr):
        return helper.make_attribute(name, _string_to_onnx(name, value), attr_type=_Kind.STRING)
    if isinstance(value, DenseIntOrFPElementsAttr):
        return helper.make_attribute(name, _dense_to_onnx(value), attr_type=_Kind.TENSOR)
    if isinstance(value, DenseArrayBase):
        values = value.get_values()
        if isinstance(value.elt_type, IntegerType):
            return helper.make_attribute(name, [int(v) for v in values], attr_type=_Kind.INTS)
        return helper.make_attribute(name, [float(v) for v in values], attr_type=_Kind.FLOATS)
    if isinstance(value, ArrayAttr):
        if value.data and all(isinstance(v, DenseIntOrFPElementsAttr) for v in value.data):
            return helper.make_attribute(
                name, [_dense_to_onnx(v) for v in value.data], attr_type=_Kind.TENSORS
            )
        return helper.make_attribute(
            name, [_string_to_onnx(name, v) for v in value.data], attr_type=_Kind.STRINGS
        )
    raise TypeError(f"attribute '{name}': no ONNX attribute holds {value}")
