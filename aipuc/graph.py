"""`Graph`: an imported model as an xDSL module plus the ONNX names of its inputs/outputs.

The module holds one `func.func @main`; its argument and result attributes carry the
ONNX tensor names under `axq.NAME_ATTR`. Names, shapes and dtypes are read from the
function each time, so a pass that rewrites the module (e.g. quantization) keeps the
`Graph` consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from io import StringIO

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Attribute
from xdsl.printer import Printer

from aipuc.dialects.axq import NAME_ATTR, QuantizedType
from aipuc.dialects.tensors import dtype_of
from aipuc.errors import InputError
from aipuc.runtime.interpreter import run_function

TensorSpec = tuple[tuple[int, ...], np.dtype]


def _names(attrs: ArrayAttr[DictionaryAttr] | None, count: int, what: str) -> list[str]:
    if attrs is None or len(attrs.data) != count:
        raise ValueError(f"@main {what} need one '{NAME_ATTR}' attribute each")
    names = []
    for entry in attrs.data:
        name = entry.data.get(NAME_ATTR)
        if not isinstance(name, StringAttr):
            raise ValueError(f"@main {what} need one '{NAME_ATTR}' attribute each")
        names.append(name.data)
    return names


def _spec(type_: Attribute) -> TensorSpec:
    assert isinstance(type_, TensorType)
    return tuple(type_.get_shape()), dtype_of(type_.element_type)


class Graph:
    """A model in the axq dialect that can be printed and run."""

    def __init__(self, module: ModuleOp):
        self.module = module

    @property
    def main(self) -> func.FuncOp:
        for op in self.module.ops:
            if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
                return op
        raise ValueError("the module has no func.func @main")

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        """ONNX input name -> (shape, dtype), in argument order."""
        main = self.main
        types = main.function_type.inputs.data
        names = _names(main.arg_attrs, len(types), "arguments")
        return {name: _spec(t) for name, t in zip(names, types, strict=True)}

    @property
    def outputs(self) -> list[str]:
        """ONNX output names, in result order."""
        main = self.main
        return _names(main.res_attrs, len(main.function_type.outputs.data), "results")

    @property
    def is_quantized(self) -> bool:
        """Whether any tensor of @main has a quantized element type."""
        for op in self.main.walk():
            for value in (*op.operands, *op.results):
                if isinstance(value.type, TensorType) and isinstance(
                    value.type.element_type, QuantizedType
                ):
                    return True
        return False

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the graph: float kernels before quantization, integer reference after."""
        if not isinstance(inputs, Mapping):
            raise InputError(
                "inputs must be a dict of NumPy arrays keyed by the graph's input "
                f"names, got {type(inputs).__name__}",
            )
        expected = self.inputs
        missing = [name for name in expected if name not in inputs]
        unknown = [name for name in inputs if name not in expected]
        if missing or unknown:
            raise InputError(
                f"graph inputs are {list(expected)}; missing {missing}, unknown {unknown}",
            )
        arrays = []
        for name, (shape, dtype) in expected.items():
            array = np.asarray(inputs[name])
            if array.shape != shape or array.dtype != dtype:
                raise InputError(
                    f"input '{name}' must be {dtype} of shape {shape}, got {array.dtype} of "
                    f"shape {array.shape}",
                )
            arrays.append(array)
        if self.is_quantized:
            from aipuc.runtime.integer_reference import INTEGER_KERNELS as kernels
        else:
            from aipuc.runtime.float_interpreter import FLOAT_KERNELS as kernels
        results = run_function(self.main, arrays, kernels)
        return dict(zip(self.outputs, results, strict=True))

    def __str__(self) -> str:
        """The IR with op locations (the ONNX node names), in a form xdsl-opt parses."""
        text = StringIO()
        Printer(stream=text, print_debuginfo=True).print_op(self.module)
        return text.getvalue()
