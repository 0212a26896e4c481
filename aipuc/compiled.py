"""`CompiledModel`: a compilation's output folder, loaded and runnable.

`run_quantized` runs the host preamble, the integer reference of the accelerated core and
the host postamble: the level-2 semantics that the instruction stream must equal bit for
bit. `run` executes the instruction stream on the simulator once lowering is built; until
then it says so instead of pretending.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute

from aipuc import outputs
from aipuc.dialects.axq import QuantizedType, element_type, shape_of
from aipuc.dialects.tensors import dtype_of
from aipuc.errors import ConfigError, ModelError
from aipuc.graph import Graph


def _describe(name: str, type_) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "shape": list(shape_of(type_)),
        "dtype": dtype_of(element_type(type_)).name,
    }
    element = element_type(type_)
    if isinstance(element, QuantizedType):
        entry["scale"] = element.scale_array().tolist()
        entry["zero_point"] = element.zero_point_array().tolist()
        if element.is_per_axis:
            entry["axis"] = element.axis_index
    return entry


def _signature(module: ModuleOp) -> dict[str, list[tuple[str, Attribute]]]:
    """ "inputs"/"outputs" -> (ONNX name, tensor type) of @main's arguments/results."""
    graph = Graph(module)
    signature = graph.main.function_type
    return {
        "inputs": list(zip(graph.inputs, signature.inputs, strict=True)),
        "outputs": list(zip(graph.outputs, signature.outputs, strict=True)),
    }


def io_manifest(module: ModuleOp) -> dict[str, Any]:
    """Inputs and outputs of the graph: ONNX names, shapes, dtypes, and scales when int8."""
    return {
        side: [_describe(name, type_) for name, type_ in entries]
        for side, entries in _signature(module).items()
    }


def _quantized_entries(module: ModuleOp, side: str) -> dict[str, QuantizedType]:
    return {
        name: element_type(t)
        for name, t in _signature(module)[side]
        if isinstance(element_type(t), QuantizedType)
    }


def quantize_inputs(module: ModuleOp, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float inputs of int8 graph inputs (remove_io_quantization) quantized with their scales."""
    from aipuc.numerics import quantize

    quantized = _quantized_entries(module, "inputs")
    result = dict(inputs)
    for name, qtype in quantized.items():
        value = np.asarray(inputs[name])
        if np.issubdtype(value.dtype, np.floating):
            result[name] = quantize(value, qtype.scale, qtype.zero_point)
    return result


def dequantize_outputs(module: ModuleOp, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs as float: int8 graph outputs (remove_io_quantization) dequantized."""
    from aipuc.numerics import dequantize

    quantized = _quantized_entries(module, "outputs")
    return {
        name: dequantize(value, quantized[name].scale, quantized[name].zero_point)
        if name in quantized
        else value
        for name, value in values.items()
    }


class CompiledModel:
    """The result of `aipuc.compile`, or of `aipuc.load(output_dir)`."""

    def __init__(self, output_dir: Path, report: dict[str, Any], core: Graph | None = None):
        self.output_dir = output_dir
        self.report = report
        self._runners: dict[str, Any] = {}
        self._core = core
        self._stream = None

    @classmethod
    def load(cls, output_dir: str | Path, *, core: Graph | None = None) -> CompiledModel:
        """The compilation in `output_dir`; `core` is its quantized graph when the caller
        holds it already (the compiler's own), else `model.mlir` is read on first use."""
        output_dir = Path(output_dir)
        report_file = output_dir / outputs.REPORT_FILE
        if not report_file.is_file():
            raise ConfigError(
                f"'{output_dir}' is not an aipuc output folder (no "
                f"{outputs.REPORT_FILE}); compile a model into it first"
            )
        try:
            report = json.loads(report_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(
                f"'{report_file}' cannot be read ({error}); compile the model "
                "into this folder again"
            ) from None
        not_a_report = ConfigError(
            f"'{report_file}' is not an aipuc compilation report; "
            "compile the model into this folder again"
        )
        if not isinstance(report, dict):
            raise not_a_report
        if report.get("status") != "ok":
            error = report.get("error")
            error = error if isinstance(error, dict) else {}
            raise ModelError(
                f"the compilation in '{output_dir}' failed in stage "
                f"{error.get('stage', '?')}: {error.get('message', '')}"
            )
        if not isinstance(report.get("model"), dict):
            raise not_a_report
        return cls(output_dir, report, core)

    @property
    def core(self):
        """The quantized core graph (axq, integer semantics), parsed on first use."""
        if self._core is None:
            from aipuc.ir_files import load_quantized_model

            self._core = load_quantized_model(self.output_dir / outputs.QUANTIZED_MODEL)
        return self._core

    @property
    def manifest(self) -> dict[str, Any]:
        return io_manifest(self.core.module)

    def _host(self, part: str):
        path = self.output_dir / outputs.INPUT_MODEL / f"{part}.onnx"
        if not path.is_file():
            return None
        if part not in self._runners:
            import onnx

            from aipuc.runtime.host import HostRunner

            self._runners[part] = HostRunner(onnx.load(str(path)))
        return self._runners[part]

    def run_quantized(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host preamble, integer reference of the core, host postamble.

        Inputs are keyed by the ONNX model's input names. Graph inputs that are int8
        (remove_io_quantization) accept int8 codes as they are, or floats to quantize.
        """
        return self._run(inputs, self.core.run)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host preamble, the instruction stream on the simulated device, host postamble.

        The core runs from the files in compiled_model/ only: its host program (host ops and
        launches) and the device program (memory image and streams). Equal to
        `run_quantized` bit for bit."""
        return self._run(inputs, self.stream_runner.run)

    @property
    def stream_runner(self):
        """The compiled core on the simulated device, loaded on first use."""
        if self._stream is None:
            compiled = self.output_dir / outputs.COMPILED_MODEL
            if not (compiled / "device.json").is_file():
                raise ModelError(
                    f"'{self.output_dir}' holds no instruction stream (compiler_mode "
                    f"{self.report.get('compiler_mode')}); compile with compiler_mode "
                    "quantize_and_lower, or run with --quantized"
                )
            from aipuc.lowering.runner import load_stream_runner

            self._stream = load_stream_runner(compiled)
        return self._stream

    def _run(self, inputs: Mapping[str, np.ndarray], run_core) -> dict[str, np.ndarray]:
        if not isinstance(inputs, Mapping):
            raise ConfigError(
                "inputs must be a dict of NumPy arrays keyed by the model's "
                f"input names, got {type(inputs).__name__}"
            )
        values = dict(inputs)
        preamble = self._host("preamble")
        if preamble is not None:
            values = {**values, **preamble.run(values)}
        core = self.core
        core_inputs = quantize_inputs(
            core.module, {name: values[name] for name in core.inputs if name in values}
        )
        missing = [name for name in core.inputs if name not in core_inputs]
        if missing:
            raise ModelError(
                f"missing model input(s) {', '.join(missing)}; expected {', '.join(core.inputs)}"
            )
        values.update(run_core(core_inputs))
        postamble = self._host("postamble")
        if postamble is not None:
            values.update(postamble.run(values))
        return {entry["name"]: values[entry["name"]] for entry in self.report["model"]["outputs"]}
