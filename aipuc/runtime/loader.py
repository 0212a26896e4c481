"""Loading and running a compiled model from its folder, with nothing of the compiler.

    from aipuc.runtime.loader import load
    outputs = load("out/compiled_model").run({"input": x})

`compiled_model/manifest.json` lists every file of the folder with its size and SHA-256
(a folder whose files do not match is refused), the model's inputs and outputs, the
hardware model the program was compiled for, and the steps of the host program: host
ONNX models run by onnxruntime, quantization and dequantization with the manifest's
scales and zero points (`aipuc.numerics`, bit for bit what the compiler's reference
does), and launches of the segments of `model.elf` on the simulated device. This module
imports NumPy and the runtime only (onnxruntime when a host step runs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aipuc import numerics
from aipuc.errors import InputError, ModelError
from aipuc.hardware import AIPU
from aipuc.runtime.sim.device import Device
from aipuc.runtime.sim.elf import ElfError
from aipuc.runtime.sim.program import DeviceProgram

MANIFEST = "manifest.json"
ELF = "model.elf"
FORMAT = "aipuc.compiled_model"
VERSION = 2


def digest(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a compiled_model/ folder, after checking every file it lists."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"'{path}' cannot be read ({error}); compile the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"'{path}' is not an aipuc manifest; compile the model again")
    if manifest.get("version") != VERSION:
        raise ModelError(
            f"'{path}' has format version {manifest.get('version')}, this runtime reads "
            f"{VERSION}; compile the model again"
        )
    for name, expected in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise ModelError(f"'{file}' is missing; compile the model again")
        found = digest(file)
        for key in ("size", "sha256"):
            if found[key] != expected[key]:
                raise ModelError(
                    f"'{file}' does not match {MANIFEST} ({key} {found[key]}, expected "
                    f"{expected[key]}): the folder was modified; compile the model again"
                )
    if manifest["hardware"] != asdict(AIPU):
        raise ModelError(
            f"'{path}' was compiled for another hardware model than this runtime simulates; "
            "compile the model again"
        )
    return manifest


class _OnnxHost:
    """One host ONNX model on onnxruntime: no graph optimisation, one thread, as the
    compiler's reference runs host parts, so the results are the same bits."""

    _DTYPES = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int8)": np.int8,
        "tensor(uint8)": np.uint8,
        "tensor(int32)": np.int32,
        "tensor(int64)": np.int64,
        "tensor(bool)": np.bool_,
    }

    def __init__(self, path: Path):
        try:
            import onnxruntime
        except ImportError:
            raise ModelError(
                f"running host model '{path.name}' needs onnxruntime: pip install onnxruntime"
            ) from None
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name: self._DTYPES.get(i.type) for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        for name, dtype in self.inputs.items():
            array = np.asarray(values[name])
            if dtype is not None and array.dtype != dtype:
                if not np.can_cast(array.dtype, dtype, "same_kind"):
                    raise ModelError(f"input '{name}' must be {np.dtype(dtype)}, got {array.dtype}")
                array = array.astype(dtype)
            feeds[name] = array
        results = self.session.run(self.outputs, feeds)
        return {name: np.asarray(r) for name, r in zip(self.outputs, results, strict=True)}


class CompiledModel:
    """A compiled_model/ folder, loaded: its device program and host steps."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        try:
            program = DeviceProgram.from_elf(
                (self.folder / ELF).read_bytes(), self.manifest["device"]
            )
        except ElfError as error:
            raise ModelError(f"'{self.folder / ELF}': {error}; compile the model again") from None
        self.device = Device(program)
        self._hosts: dict[str, _OnnxHost] = {}

    @property
    def input_names(self) -> list[str]:
        return [entry["name"] for entry in self.manifest["inputs"]]

    def _host(self, file: str) -> _OnnxHost:
        if file not in self._hosts:
            self._hosts[file] = _OnnxHost(self.folder / file)
        return self._hosts[file]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs by name, from its inputs by name."""
        if not isinstance(inputs, Mapping):
            raise ModelError(
                f"inputs must be a dict of arrays by name, got {type(inputs).__name__}"
            )
        values = check_inputs(self.manifest["inputs"], inputs)
        for step in self.manifest["steps"]:
            kind = step["op"]
            if kind == "host":
                values.update(self._host(step["model"]).run(values))
            elif kind == "launch":
                arrays = [values[name] for name in step["inputs"]]
                results = self.device.launch(step["segment"], arrays)
                values.update(zip(step["outputs"], results, strict=True))
            elif kind == "quantize":
                value = values[step["input"]]
                if np.issubdtype(value.dtype, np.floating):
                    value = numerics.quantize(value, *_parameters(step))
                values[step["output"]] = value
            elif kind == "dequantize":
                values[step["output"]] = numerics.dequantize(
                    values[step["input"]], *_parameters(step)
                )
            elif kind == "rename":
                values[step["output"]] = values[step["input"]]
            else:
                raise ModelError(f"unknown step '{kind}' in {MANIFEST}; compile the model again")
        return {entry["name"]: values[entry["name"]] for entry in self.manifest["outputs"]}


def check_inputs(
    entries: list[dict[str, Any]], inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The inputs as arrays, after checking their names, shapes and dtypes against the
    model's input `entries` (name, shape, dtype): a mismatch is a one-line InputError."""
    names = [entry["name"] for entry in entries]
    missing = [name for name in names if name not in inputs]
    unknown = [name for name in inputs if name not in names]
    if missing or unknown:
        problems = [f"unknown input(s) {', '.join(map(str, unknown))}"] if unknown else []
        problems += [f"missing model input(s) {', '.join(missing)}"] if missing else []
        raise InputError(f"{'; '.join(problems)}; the model's inputs are {', '.join(names)}")
    values = {name: np.asarray(value) for name, value in inputs.items()}
    for entry in entries:
        value, name = values[entry["name"]], entry["name"]
        shape, dtype = tuple(entry["shape"]), np.dtype(entry["dtype"])
        if value.shape != shape or value.dtype != dtype:
            raise InputError(
                f"input '{name}' must be {dtype} of shape {shape}, got {value.dtype} of "
                f"shape {value.shape}"
            )
    return values


def _parameters(step: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int | None]:
    return (
        np.asarray(step["scale"], np.float64),
        np.asarray(step["zero_point"], np.int64),
        step["axis"],
    )


def load(folder: str | Path) -> CompiledModel:
    """The compiled model in `folder` (a compiled_model/ directory)."""
    return CompiledModel(folder)
