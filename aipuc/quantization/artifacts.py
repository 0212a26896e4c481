"""What quantization hands to the rest of the compiler and to people.

- `quantize_graph`: calibrate + annotate + the `axq-quantize` pass, on a copy of the graph.
- `export_quantized_graph`: the content of `quantized_graph.json`: the graph inputs and
  outputs (ONNX name and tensor), every tensor with its shape, storage dtype and
  quantization (scales, zero points, axis), every op with its operands, results and
  attributes.
- `quantization_debug_report`: per-layer float vs dequantized int8 tensors (.npz) and an
  SQNR table (`sqnr.csv`, `sqnr.json`) that points at the layers losing accuracy.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.exceptions import VerifyException

from aipuc import numerics
from aipuc.dialects import axq
from aipuc.dialects.axq import QuantizedType
from aipuc.dialects.axq_graph import main_function, tensor_names
from aipuc.dialects.tensors import dtype_of, numpy_from_dense
from aipuc.errors import QuantizationError
from aipuc.ir_files import ir_context
from aipuc.progress import ProgressCallback, each, step
from aipuc.quantization.calibration import annotate, calibrate
from aipuc.transforms.quantize import QuantizePass

EXPORT_FORMAT = "aipuc.quantized_graph"
EXPORT_VERSION = 1


def quantize_graph(
    graph,
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    quantization_scheme: str = "per_tensor_histogram",
    quantize_dw_channel_wise: bool = False,
    remove_io_quantization: bool = False,
    progress: ProgressCallback | None = None,
):
    """The quantized copy of a float `Graph` and the calibration stats it was made from.

    `progress` hears of every calibration sample ("calibrate") and of the pass
    ("axq-quantize")."""
    from aipuc.graph import Graph

    quantize = QuantizePass(
        quantization_scheme=quantization_scheme,
        quantize_dw_channel_wise=quantize_dw_channel_wise,
        remove_io_quantization=remove_io_quantization,
    )
    stats = calibrate(graph, samples, each(progress, "calibrate"))
    with step(progress, "axq-quantize"):
        module = graph.module.clone()
        annotate(module, stats)
        quantize.apply(ir_context(), module)
    try:
        module.verify()
    except VerifyException as error:
        raise QuantizationError(f"the quantized graph does not verify: {error}") from error
    return Graph(module), stats


# --------------------------------------------------------------------------- export


def _location(op: Operation | None) -> str | None:
    if op is not None and isinstance(op.location, NameLoc):
        return op.location.desc.data
    return None


def _finite_or_text(value: float) -> float | str:
    """JSON has no infinities: they are written as "inf" / "-inf"."""
    return value if np.isfinite(value) else ("inf" if value > 0 else "-inf")


def attribute_json(attr: Attribute):
    """Plain JSON for an op attribute (constant payloads other than LUTs are left out)."""
    if isinstance(attr, IntegerAttr):
        if attr.type == IntegerType(1):  # BoolAttr (xDSL stores true as -1)
            return attr.value.data != 0
        return int(attr.value.data)
    if isinstance(attr, FloatAttr):
        return _finite_or_text(float(attr.value.data))
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, DenseArrayBase):
        return [_finite_or_text(v) if isinstance(v, float) else v for v in attr.get_values()]
    if isinstance(attr, DictionaryAttr):
        return {key: attribute_json(value) for key, value in attr.data.items()}
    if isinstance(attr, ArrayAttr):
        return [attribute_json(value) for value in attr.data]
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return numpy_from_dense(attr).tolist()
    data = getattr(attr, "data", None)
    if data is not None and hasattr(data, "value"):  # enum attributes
        return str(data.value)
    return str(attr)


def quantization_json(type_: Attribute) -> dict | None:
    element = type_.element_type if isinstance(type_, TensorType) else type_
    if not isinstance(element, QuantizedType):
        return None
    return {
        "scales": [float(s) for s in element.scale_array()],
        "zero_points": [int(z) for z in element.zero_point_array()],
        "axis": element.quantized_axis,
    }


def export_quantized_graph(module: ModuleOp) -> dict:
    """quantized_graph.json: tensors with their quantization, ops with their attributes."""
    func_op = main_function(module)
    names = tensor_names(func_op)

    def tensor_entry(value: SSAValue, producer: Operation | None) -> dict:
        type_ = value.type
        assert isinstance(type_, TensorType)
        entry = {
            "name": names[value],
            "location": _location(producer),
            "shape": list(type_.get_shape()),
            "dtype": str(dtype_of(type_.element_type)),
            "quantization": quantization_json(type_),
        }
        if isinstance(producer, axq.ConstantOp):
            entry["constant"] = True
        return entry

    tensors = [tensor_entry(arg, None) for arg in func_op.body.block.args]
    ops = []
    for op in func_op.body.block.ops:
        tensors.extend(tensor_entry(result, op) for result in op.results)
        if isinstance(op, axq.ConstantOp) or op is func_op.get_return_op():
            continue
        attributes = {key: attribute_json(value) for key, value in op.properties.items()}
        ops.append(
            {
                "name": names[op.results[0]] if op.results else op.name,
                "type": op.name,
                "location": _location(op),
                "inputs": [names[v] for v in op.operands],
                "outputs": [names[v] for v in op.results],
                "attributes": attributes,
            }
        )
    return_op = func_op.get_return_op()
    returned = list(return_op.operands) if return_op is not None else []
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "inputs": [
            {"name": name, "tensor": names[arg]}
            for name, arg in zip(_io_names(func_op.arg_attrs), func_op.body.block.args, strict=True)
        ],
        "outputs": [
            {"name": name, "tensor": names[value]}
            for name, value in zip(_io_names(func_op.res_attrs), returned, strict=True)
        ],
        "tensors": tensors,
        "ops": ops,
    }


def _io_names(attrs: ArrayAttr | None) -> list[str]:
    """The ONNX names of @main's arguments or results (`axq.name`)."""
    names = []
    for entry in attrs.data if attrs is not None else ():
        name = entry.data.get(axq.NAME_ATTR)
        names.append(name.data if isinstance(name, StringAttr) else "")
    return names


# --------------------------------------------------------------------------- debugging


def _recorded_run(
    graph, sample: Mapping[str, np.ndarray], kernels: Mapping, keep: Callable[[Operation], bool]
) -> dict[SSAValue, np.ndarray]:
    """Run `graph` with `kernels` and keep the results of the ops `keep` selects."""
    from aipuc.runtime.interpreter import run_function

    recorded: dict[SSAValue, np.ndarray] = {}

    def recording(kernel):
        def run(op: Operation, inputs):
            results = kernel(op, inputs)
            if keep(op):
                recorded.update(zip(op.results, results, strict=True))
            return results

        return run

    recording_kernels = {op_type: recording(kernel) for op_type, kernel in kernels.items()}
    run_function(graph.main, [sample[name] for name in graph.inputs], recording_kernels)
    return recorded


def _is_compute(op: Operation) -> bool:
    """Ops of the model itself, not the conversions that quantization inserts."""
    return not axq.is_quantization_conversion(op)


def _as_float(value: SSAValue, array: np.ndarray) -> np.ndarray:
    element = value.type.element_type  # type: ignore[attr-defined]
    if not isinstance(element, QuantizedType):
        return np.asarray(array, np.float32)
    from aipuc.runtime.integer_reference import dequantize_codes

    return dequantize_codes(array, element)


def _without_padding(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The logical tensor of a legalized one: `apply-pword-padding` appends lanes to the
    channel axis, which the float graph does not have."""
    return array[tuple(slice(0, size) for size in shape)]


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `actual` against `reference`, in dB."""
    reference = np.asarray(reference, np.float64)
    signal = float(np.sum(reference**2))
    noise = float(np.sum((reference - np.asarray(actual, np.float64)) ** 2))
    if noise == 0.0:
        return float("inf")
    return 10 * float(np.log10(max(signal, 1e-30) / noise))


def _file_name(index: int, name: str) -> str:
    return f"{index:04d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:80]}.npz"


def quantization_debug_report(
    float_graph, quant_graph, samples: Sequence[Mapping[str, np.ndarray]], save_dir: str | Path
) -> list[dict]:
    """Per-layer SQNR of the quantized graph against float, with the tensors behind it.

    Every compute op of the float graph is matched by name with the op of the quantized
    graph (quantization keeps op locations). For each, `layers/<n>_<name>.npz` holds
    `float` and `quantized` (dequantized) stacked over `samples`; the table rows
    (`index`, `name`, `op`, `sqnr_db`, `clamped_by`) are returned and written to sqnr.csv
    and sqnr.json. SQNR is cumulative: each layer sees the quantization error of everything
    before it. An op whose only reader is a clip produces the clip's range (activation
    fusion), so its float reference is clamped by that clip (named in `clamped_by`).
    """
    from aipuc.runtime.float_interpreter import FLOAT_KERNELS
    from aipuc.runtime.integer_reference import INTEGER_KERNELS

    save_dir = Path(save_dir)
    (save_dir / "layers").mkdir(parents=True, exist_ok=True)
    float_names = tensor_names(float_graph.main)
    quant_names = tensor_names(quant_graph.main)
    collected: dict[str, tuple[str, list[np.ndarray], list[np.ndarray]]] = {}
    for sample in samples:
        reference = _recorded_run(float_graph, sample, FLOAT_KERNELS, _is_compute)
        quantized = _recorded_run(
            quant_graph, _quantized_inputs(quant_graph, sample), INTEGER_KERNELS, _is_compute
        )
        by_name = {quant_names[value]: (value, array) for value, array in quantized.items()}
        for value, array in reference.items():
            name = float_names[value]
            if name not in by_name or not np.issubdtype(array.dtype, np.floating):
                continue
            quant_value, quant_array = by_name[name]
            clip = value.get_user_of_unique_use()
            clamped_by = float_names[clip.result] if isinstance(clip, axq.ClipOp) else ""
            entry = collected.setdefault(name, (value.owner.name, clamped_by, [], []))  # type: ignore
            if isinstance(clip, axq.ClipOp):
                array = np.clip(array, clip.min.value.data, clip.max.value.data)
            entry[2].append(array)
            entry[3].append(_without_padding(_as_float(quant_value, quant_array), array.shape))
    rows = []
    for index, (name, (op_name, clamped_by, references, actuals)) in enumerate(collected.items()):
        reference, actual = np.stack(references), np.stack(actuals)
        np.savez(save_dir / "layers" / _file_name(index, name), float=reference, quantized=actual)
        rows.append(
            {
                "index": index,
                "name": name,
                "op": op_name,
                "sqnr_db": round(sqnr_db(reference, actual), 3),
                "clamped_by": clamped_by,
            }
        )
    with open(save_dir / "sqnr.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["index", "name", "op", "sqnr_db", "clamped_by"])
        writer.writeheader()
        writer.writerows(rows)
    (save_dir / "sqnr.json").write_text(
        json.dumps([{**row, "sqnr_db": _finite_or_text(row["sqnr_db"])} for row in rows], indent=1)
        + "\n"
    )
    return rows


def _quantized_inputs(graph, sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float inputs quantized where the graph takes int8 inputs (remove_io_quantization)."""
    func_op = graph.main
    inputs = {}
    for name, arg in zip(graph.inputs, func_op.body.block.args, strict=True):
        element = arg.type.element_type  # type: ignore[attr-defined]
        value = np.asarray(sample[name])
        if isinstance(element, QuantizedType) and np.issubdtype(value.dtype, np.floating):
            value = numerics.quantize(value, element.scale, element.zero_point)
        inputs[name] = value
    return inputs
