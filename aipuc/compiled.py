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
from aipuc.errors import ConfigError, InputError, ModelError
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
            if not self.has_instruction_stream:
                raise ModelError(
                    f"'{self.output_dir}' holds no instruction stream (compiler_mode "
                    f"{self.report.get('compiler_mode')}); compile with compiler_mode "
                    "quantize_and_lower, or call run_quantized() for the integer reference"
                )
            from aipuc.lowering.runner import load_stream_runner

            self._stream = load_stream_runner(self.output_dir / outputs.COMPILED_MODEL)
        return self._stream

    @property
    def has_instruction_stream(self) -> bool:
        """Whether the output folder holds a compiled instruction stream to simulate."""
        return (self.output_dir / outputs.COMPILED_MODEL / "device.json").is_file()

    def _run(self, inputs: Mapping[str, np.ndarray], run_core) -> dict[str, np.ndarray]:
        values = self._checked_inputs(inputs)
        preamble = self._host("preamble")
        if preamble is not None:
            values = {**values, **preamble.run(values)}
        core = self.core
        core_inputs = quantize_inputs(
            core.module, {name: values[name] for name in core.inputs if name in values}
        )
        values.update(run_core(core_inputs))
        postamble = self._host("postamble")
        if postamble is not None:
            values.update(postamble.run(values))
        return {entry["name"]: values[entry["name"]] for entry in self.report["model"]["outputs"]}

    @property
    def input_names(self) -> list[str]:
        """The ONNX model's input names, in order."""
        return [entry["name"] for entry in self.report["model"]["inputs"]]

    def _checked_inputs(self, inputs: object) -> dict[str, np.ndarray]:
        """`inputs` as a dict, refused with an InputError unless it names exactly the
        model's inputs with their shapes (dtypes are checked where they are consumed)."""
        if not isinstance(inputs, Mapping):
            raise InputError(
                "inputs must be a dict of NumPy arrays keyed by the model's "
                f"input names, got {type(inputs).__name__}"
            )
        expected = self.input_names
        unknown = [str(name) for name in inputs if name not in expected]
        missing = [name for name in expected if name not in inputs]
        if unknown or missing:
            problems = [f"unknown input(s) {', '.join(unknown)}"] if unknown else []
            problems += [f"missing model input(s) {', '.join(missing)}"] if missing else []
            raise InputError(f"{'; '.join(problems)}; the model's inputs are {', '.join(expected)}")
        for entry in self.report["model"]["inputs"]:
            shape = tuple(entry["shape"])
            if np.shape(inputs[entry["name"]]) != shape:
                raise InputError(
                    f"input '{entry['name']}' must be {entry['dtype']} of shape {shape}, got "
                    f"shape {np.shape(inputs[entry['name']])}"
                )
        return dict(inputs)
