"""Conversions between NumPy arrays and xDSL tensor types and dense attributes.

Weights live in bytes-backed `dense` attributes, so a constant is one buffer copy away
from a NumPy array and never a Python list of numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
    TensorType,
    bf16,
    f16,
    f32,
    f64,
)
from xdsl.ir import Attribute

from aipuc.dialects.quantized_type import QuantizedType

_INT_WIDTHS = {
    np.dtype(np.int8): 8,
    np.dtype(np.int16): 16,
    np.dtype(np.int32): 32,
    np.dtype(np.int64): 64,
}
_UINT_WIDTHS = {
    np.dtype(np.uint8): 8,
    np.dtype(np.uint16): 16,
    np.dtype(np.uint32): 32,
    np.dtype(np.uint64): 64,
}
_FLOATS = {
    np.dtype(np.float16): f16,
    np.dtype(ml_dtypes.bfloat16): bf16,  # onnx's NumPy type for BFLOAT16 tensors
    np.dtype(np.float32): f32,
    np.dtype(np.float64): f64,
}


def element_type_of(dtype: np.dtype) -> Attribute:
    """The xDSL element type of a NumPy dtype (bool is i1, unsigned keeps its signedness)."""
    dtype = np.dtype(dtype).newbyteorder("=")  # the element type has no byte order
    if dtype == np.bool_:
        return IntegerType(1)
    if dtype in _INT_WIDTHS:
        return IntegerType(_INT_WIDTHS[dtype])
    if dtype in _UINT_WIDTHS:
        return IntegerType(_UINT_WIDTHS[dtype], Signedness.UNSIGNED)
    if dtype in _FLOATS:
        return _FLOATS[dtype]
    raise TypeError(f"no tensor element type for NumPy dtype {dtype}")


def dtype_of(element_type: Attribute) -> np.dtype:
    """The NumPy dtype that stores one element of an xDSL element type."""
    if isinstance(element_type, QuantizedType):
        return dtype_of(element_type.storage)
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        if width == 1:
            return np.dtype(np.bool_)
        if width not in (8, 16, 32, 64):
            raise TypeError(f"no NumPy dtype for element type {element_type}")
        signed = element_type.signedness.data != Signedness.UNSIGNED
        return np.dtype(f"{'i' if signed else 'u'}{width // 8}")
    if isinstance(element_type, Float32Type):
        return np.dtype(np.float32)
    if isinstance(element_type, Float64Type):
        return np.dtype(np.float64)
    if isinstance(element_type, Float16Type):
        return np.dtype(np.float16)
    if isinstance(element_type, BFloat16Type):
        return np.dtype(ml_dtypes.bfloat16)
    raise TypeError(f"no NumPy dtype for element type {element_type}")


def tensor_type(shape: Sequence[int], element_type: Attribute) -> TensorType:
    return TensorType(element_type, [int(d) for d in shape])


def dense_from_numpy(array: np.ndarray, element_type: Attribute | None = None):
    """A bytes-backed dense attribute holding `array` (C order, little endian).

    `element_type` is the attribute's element type; it defaults to the dtype's own.
    The data is stored in the storage dtype of that element type.
    """
    element_type = element_type_of(array.dtype) if element_type is None else element_type
    storage = dtype_of(element_type)
    data = np.ascontiguousarray(array, dtype=storage.newbyteorder("<"))
    if storage == np.bool_:
        # xDSL stores i1 as one byte per element, true as 0xFF (-1), as its parser does.
        data = np.where(data, np.uint8(0xFF), np.uint8(0))
    attr_type = tensor_type(array.shape, element_type)
    return DenseIntOrFPElementsAttr(attr_type, BytesAttr(data.tobytes()))


def numpy_from_dense(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The NumPy array behind a dense attribute, without a Python-level element loop."""
    storage = dtype_of(attr.get_element_type())
    raw_dtype = np.uint8 if storage == np.bool_ else storage.newbyteorder("<")
    values = np.frombuffer(attr.data.data, dtype=raw_dtype)
    shape = attr.get_shape()
    if values.size == 1 and int(np.prod(shape)) != 1:
        values = np.broadcast_to(values, shape)  # splat
    return values.astype(storage).reshape(shape)
