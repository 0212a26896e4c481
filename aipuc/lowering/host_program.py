"""The host's part of a compiled model as data: the steps of @main and its host segments.

After lowering, @main holds launches of the accelerated segments and what runs on the host
around them: `axq.quantize` / `axq.dequantize` at the segment boundaries and `axq.host`
ops (ONNX operators the accelerator does not run). The manifest lists them as steps over
named values, in order; consecutive host ops become one ONNX model (`host<n>.onnx`, with
the constants they read as initializers) that the runtime runs with onnxruntime:

    {"op": "quantize", "input": "input", "output": "t0", "scale": [0.02], "zero_point": [3], ...}
    {"op": "launch", "segment": 0, "inputs": ["t0"], "outputs": ["t1"]}
    {"op": "dequantize", "input": "t1", "output": "logits", ...}

Graph inputs and outputs keep their ONNX names; the graph cleaner's preamble and
postamble (if any) run before and after as host steps too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp
from xdsl.ir import SSAValue

from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import QuantizedType, element_type, shape_of
from aipuc.dialects.tensors import dtype_of, numpy_from_dense
from aipuc.errors import CompilationError
from aipuc.frontend.onnx_attributes import to_onnx
from aipuc.graph import Graph


def _quantization(type_: QuantizedType) -> dict[str, Any]:
    return {
        "scale": type_.scale_array().tolist(),
        "zero_point": type_.zero_point_array().tolist(),
        "axis": type_.quantized_axis,
    }


class _Names:
    def __init__(self, graph: Graph):
        main = graph.main
        self.names: dict[SSAValue, str] = dict(zip(main.body.block.args, graph.inputs, strict=True))
        self.count = 0

    def __getitem__(self, value: SSAValue) -> str:
        if value not in self.names:
            self.names[value] = f"t{self.count}"
            self.count += 1
        return self.names[value]


def host_steps(module: ModuleOp) -> tuple[list[dict[str, Any]], dict[str, onnx.ModelProto]]:
    """The steps of @main and the ONNX models of its host segments, by file name."""
    graph = Graph(module)
    main = graph.main
    names = _Names(graph)
    returned = next(op for op in main.body.block.ops if isinstance(op, func.ReturnOp))
    for value, name in zip(returned.operands, graph.outputs, strict=True):
        if value not in names.names:  # a graph input returned as it is keeps its input name
            names.names[value] = name
    steps: list[dict[str, Any]] = []
    models: dict[str, onnx.ModelProto] = {}
    pending: list[axq.HostOp] = []

    def flush() -> None:
        if pending:
            name = f"host{len(models)}.onnx"
            models[name], step = _host_model(pending, names, name)
            steps.append(step)
            pending.clear()

    for op in main.body.block.ops:
        if isinstance(op, axq.HostOp):
            pending.append(op)
            continue
        if isinstance(op, axq.ConstantOp):
            continue  # an initializer of the host model that reads it
        flush()
        if isinstance(op, axq.QuantizeOp):
            steps.append(
                {"op": "quantize", "input": names[op.input], "output": names[op.result]}
                | _quantization(element_type(op.result))
            )
        elif isinstance(op, axq.DequantizeOp):
            steps.append(
                {"op": "dequantize", "input": names[op.input], "output": names[op.result]}
                | _quantization(element_type(op.input))
            )
        elif isinstance(op, aipu.LaunchOp):
            steps.append(
                {
                    "op": "launch",
                    "segment": aipu._int(op.index),
                    "inputs": [names[v] for v in op.inputs],
                    "outputs": [names[v] for v in op.outputs],
                }
            )
        elif isinstance(op, func.ReturnOp):
            break
        else:
            raise CompilationError(f"{op.name} cannot run on the host: lowering left it in @main")
    for value, name in zip(returned.operands, graph.outputs, strict=True):
        if names[value] != name:
            steps.append({"op": "rename", "input": names[value], "output": name})
    for value, name in zip(main.body.block.args, graph.inputs, strict=True):
        if isinstance(element_type(value), QuantizedType) and value.uses:
            # int8 graph inputs (remove_io_quantization) take codes, or floats to quantize
            steps.insert(
                0,
                {"op": "quantize", "input": name, "output": name}
                | _quantization(element_type(value)),
            )
    return steps, models


def _value_info(name: str, value: SSAValue) -> onnx.ValueInfoProto:
    dtype = dtype_of(element_type(value))
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape_of(value))
    )


def _host_model(
    ops: list[axq.HostOp], names: _Names, file: str
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """One ONNX model of consecutive host ops; its step."""
    inside = {r for op in ops for r in op.results}
    inputs: dict[SSAValue, None] = {}
    initializers = []
    nodes = []
    opsets: dict[str, int] = {}
    for n, op in enumerate(ops):
        for value in op.inputs:
            if value in inside or value in inputs:
                continue
            if isinstance(value.owner, axq.ConstantOp):
                array = np.asarray(numpy_from_dense(value.owner.value))
                initializers.append(numpy_helper.from_array(array, names[value]))
                inside.add(value)
            else:
                inputs[value] = None
        attributes = op.properties["attributes"]
        assert isinstance(attributes, DictionaryAttr)
        node = helper.make_node(
            op.op_type.data,
            [names[v] for v in op.inputs],
            [names[r] for r in op.outputs],
            name=f"{file}:{n}",
            domain=op.domain.data,
        )
        node.attribute.extend(to_onnx(key, value) for key, value in attributes.data.items())
        nodes.append(node)
        domain, version = op.domain.data, op.opset.value.data
        opsets[domain] = max(opsets.get(domain, 0), version)
    outputs = [
        r for op in ops for r in op.results if any(use.operation not in ops for use in r.uses)
    ]
    graph = helper.make_graph(
        nodes,
        file.removesuffix(".onnx"),
        [_value_info(names[v], v) for v in inputs],
        [_value_info(names[v], v) for v in outputs],
        initializers,
    )
    opsets.setdefault("", max(opsets.values(), default=17))
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    onnx.checker.check_model(model)
    step = {
        "op": "host",
        "model": file,
        "inputs": [names[v] for v in inputs],
        "outputs": [names[v] for v in outputs],
    }
    return model, step
