"""The generic walker shared by the float and the integer interpreters.

`run_function` runs the single block of a graph function op by op. It evaluates what
is the same at every numeric level itself (constants, host ops on the host engine, the
return) and hands every other op to a kernel table, so the float
interpreter and the integer reference differ only in their tables.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence

import ml_dtypes
import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator
from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr
from xdsl.ir import Attribute, Operation, SSAValue

from aipuc.dialects.axq import ConstantOp, HostOp, shape_of
from aipuc.dialects.tensors import dtype_of, numpy_from_dense
from aipuc.errors import AipucError
from aipuc.frontend.onnx_attributes import to_onnx
from aipuc.runtime.host import HostRunner

Kernel = Callable[[Operation, Sequence[np.ndarray]], Sequence[np.ndarray]]
"""Computes the results of one op from the arrays of its operands."""


def reference_evaluator(
    node: onnx.NodeProto,
    input_types: Sequence[tuple[np.dtype, Sequence[int]]],
    opsets: Mapping[str, int],
) -> ReferenceEvaluator:
    """An onnx.reference evaluator of one node whose inputs are fed as `i0, i1, ...`.

    Omitted optional inputs (empty names) stay omitted. The input types let operators
    whose reference implementation is a context-dependent function resolve it.
    """
    node_inputs = [f"i{index}" if name else "" for index, name in enumerate(node.input)]
    present = [name for name in node_inputs if name]
    if len(present) != len(input_types):
        raise ValueError(
            f"{node.op_type} has {len(present)} inputs but got {len(input_types)} input types"
        )
    outputs = [f"o{index}" if name else "" for index, name in enumerate(node.output)]
    renamed = helper.make_node(node.op_type, node_inputs, outputs, domain=node.domain)
    renamed.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [renamed],
        node.op_type,
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape)
            )
            for name, (dtype, shape) in zip(present, input_types, strict=True)
        ],
        [helper.make_empty_tensor_value_info(name) for name in outputs if name],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
    )
    return ReferenceEvaluator(model)


def run_reference(evaluator: ReferenceEvaluator, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Runs an evaluator built by `reference_evaluator` on arrays in input order."""
    feeds = dict(zip(evaluator.input_names, inputs, strict=True))
    return [np.asarray(result) for result in evaluator.run(None, feeds)]


_HOST_RUNNERS: weakref.WeakKeyDictionary[HostOp, HostRunner] = weakref.WeakKeyDictionary()


def host_runner(op: HostOp) -> HostRunner:
    """The cached host session of a host op: its one ONNX node, rebuilt from its properties.

    onnxruntime runs it when it can (the engine of the host preamble and postamble, so a
    host op computes what the uncut model computes), onnx.reference otherwise.
    """
    runner = _HOST_RUNNERS.get(op)
    if runner is None:
        inputs = [f"i{index}" for index in range(len(op.inputs))]
        outputs = [f"o{index}" for index in range(len(op.outputs))]
        node = helper.make_node(op.op_type.data, inputs, outputs, domain=op.domain.data)
        attributes = op.properties["attributes"]
        assert isinstance(attributes, DictionaryAttr)
        node.attribute.extend(to_onnx(name, value) for name, value in attributes.data.items())
        opsets = {op.domain.data: op.opset.value.data}
        if op.domain.data:
            opsets[""] = onnx.defs.onnx_opset_version()
        graph = helper.make_graph(
            [node],
            op.op_type.data,
            [_value_info(name, value) for name, value in zip(inputs, op.inputs, strict=True)],
            [_value_info(name, value) for name, value in zip(outputs, op.outputs, strict=True)],
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
        )
        bfloat16 = any(
            dtype_of(_element(value)) == ml_dtypes.bfloat16 for value in (*op.inputs, *op.outputs)
        )
        try:  # onnxruntime's Python binding takes no bfloat16 arrays
            runner = HostRunner(model, reference_only=bfloat16)
        except AipucError:
            runner = HostRunner(model, reference_only=True)
        _HOST_RUNNERS[op] = runner
    return runner


def run_host_op(op: HostOp, operands: Sequence[np.ndarray]) -> list[np.ndarray]:
    """A host op's results; an operator onnxruntime loads but cannot run on these inputs
    (e.g. ReduceMax of an empty bool set) falls back to onnx.reference for good."""
    runner = host_runner(op)
    feeds = dict(zip(runner.input_names, operands, strict=True))
    try:
        results = runner.run(feeds)
    except AipucError:
        if runner.engine == "onnx.reference":
            raise
        runner = _HOST_RUNNERS[op] = HostRunner(runner.model, reference_only=True)
        results = runner.run(feeds)
    return [results[name] for name in runner.output_names]


def _value_info(name: str, value: SSAValue) -> onnx.ValueInfoProto:
    dtype = helper.np_dtype_to_tensor_dtype(dtype_of(_element(value)))
    return helper.make_tensor_value_info(name, dtype, list(shape_of(value)))


def _element(value: SSAValue):
    return value.type.element_type  # type: ignore[attr-defined]


def describe(op: Operation) -> str:
    """The op name and its location, for messages that must point into the model."""
    return f"{op.name} at {op.location}"


def _last_uses(ops: Sequence[Operation]) -> dict[SSAValue, int]:
    """Index of the last op reading each value (values nobody reads are absent)."""
    last: dict[SSAValue, int] = {}
    for index, op in enumerate(ops):
        for operand in op.operands:
            last[operand] = index
    return last


def run_function(
    func_op: func.FuncOp,
    inputs: Sequence[np.ndarray],
    kernels: Mapping[type[Operation], Kernel],
) -> list[np.ndarray]:
    """Runs the body of `func_op` on `inputs` and returns the arrays it returns.

    Each array is dropped right after the last op that reads it, so peak memory is the
    live set of the graph, not all of its activations.
    """
    block = func_op.body.block
    if len(inputs) != len(block.args):
        raise ValueError(
            f"{func_op.sym_name.data} takes {len(block.args)} inputs, got {len(inputs)}"
        )
    ops = list(block.ops)
    last_use = _last_uses(ops)
    env: dict[SSAValue, np.ndarray] = dict(zip(block.args, inputs, strict=True))
    for index, op in enumerate(ops):
        operands = [env[operand] for operand in op.operands]
        if isinstance(op, func.ReturnOp):
            return operands
        results = _evaluate(op, operands, kernels)
        if len(results) != len(op.results):
            raise RuntimeError(
                f"kernel of {describe(op)} returned {len(results)} arrays for "
                f"{len(op.results)} results"
            )
        for result, array in zip(op.results, results, strict=True):
            if result in last_use:
                env[result] = array
        for operand in set(op.operands):
            if last_use[operand] == index:
                del env[operand]
    raise ValueError(f"{func_op.sym_name.data} has no func.return")


_CONSTANTS: weakref.WeakKeyDictionary[ConstantOp, tuple[Attribute, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def constant_array(op: ConstantOp) -> np.ndarray:
    """The value of a constant op as a read-only array, decoded once while the op keeps
    the same value attribute (weights are not copied out of the IR on every run)."""
    hit = _CONSTANTS.get(op)
    if hit is None or hit[0] is not op.value:
        array = numpy_from_dense(op.value)
        array.flags.writeable = False
        hit = _CONSTANTS[op] = (op.value, array)
    return hit[1]


def _evaluate(
    op: Operation, operands: list[np.ndarray], kernels: Mapping[type[Operation], Kernel]
) -> Sequence[np.ndarray]:
    if isinstance(op, ConstantOp):
        return [constant_array(op)]
    try:
        if isinstance(op, HostOp):
            return run_host_op(op, operands)
        kernel = kernels.get(type(op))
        if kernel is None:
            raise NotImplementedError(f"no interpreter kernel for {describe(op)}")
        return kernel(op, operands)
    except Exception as error:
        if not isinstance(error, NotImplementedError):
            error.add_note(f"while running {describe(op)}")
        raise
