"""Calibration: run the float graph on sample inputs and record every tensor's range.

`calibrate` runs the float interpreter over the samples and feeds each float tensor that
an accelerated (non-host) op reads or writes to three observers: min-max, PyTorch's
histogram observer, and, for tensors whose channels matter to the hybrid scheme (inputs
of depthwise convolutions and what they share their quantization with), a per-channel
min-max. `annotate` writes the resulting ranges onto the IR as the discardable
`axq.calibration` attribute, so quantization itself is a pure IR -> IR pass:

    func.func @main(%x: tensor<...> {axq.calibration = {histogram = array<f64: -2.1, 2.3>,
                                                         min_max = array<f64: -2.6, 2.4>},
                                      axq.name = "input"})
    %3 = axq.conv2d ... {axq.calibration = [{histogram = ..., min_max = ...,
                                             channel_min = array<f64: ...>,
                                             channel_max = array<f64: ...>}]}

An op carries one dictionary per result (empty for results that need no range). Tensors
are identified by position (`arg<i>`, `op<i>.<result>` over @main's body), which survives
cloning and printing, and named after their ONNX tensor for people.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    ModuleOp,
    f64,
)
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue

from aipuc.dialects.axq import CHANNEL_AXIS
from aipuc.dialects.axq_graph import (
    calibrated_operands,
    channel_calibrated_values,
    is_floating_point_tensor,
    main_function,
    tensor_names,
    value_keys,
)
from aipuc.errors import QuantizationError, first_line
from aipuc.quantization.observers import (
    HistogramObserver,
    PerChannelMinMaxObserver,
)

CALIBRATION_ATTR = "axq.calibration"

InputSpecs = Mapping[str, tuple[tuple[int, ...], np.dtype]]
Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- statistics


def _float_array(values: Sequence[float]) -> DenseArrayBase:
    return DenseArrayBase.from_list(f64, [float(v) for v in values])


@dataclass(frozen=True, eq=False)
class TensorStats:
    """The observed ranges of one tensor: [lo, hi] pairs and optional per-channel ranges."""

    min_max: tuple[float, float]
    histogram: tuple[float, float]
    channel_min: np.ndarray | None = None
    channel_max: np.ndarray | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorStats):
            return NotImplemented
        return self.to_json() == other.to_json()

    def to_attr(self) -> DictionaryAttr:
        entries: dict[str, Attribute] = {
            "min_max": _float_array(self.min_max),
            "histogram": _float_array(self.histogram),
        }
        if self.channel_min is not None and self.channel_max is not None:
            entries["channel_min"] = _float_array(self.channel_min)
            entries["channel_max"] = _float_array(self.channel_max)
        return DictionaryAttr(entries)

    @staticmethod
    def from_attr(attr: Attribute) -> TensorStats | None:
        """The stats of an `axq.calibration` entry; None for an empty entry."""
        if not isinstance(attr, DictionaryAttr) or not attr.data:
            return None
        data = attr.data

        def pair(key: str) -> tuple[float, float]:
            entry = data.get(key)
            if not isinstance(entry, DenseArrayBase) or len(entry.get_values()) != 2:
                raise QuantizationError(
                    f"{CALIBRATION_ATTR} needs '{key} = array<f64: lo, hi>', got {entry}"
                )
            low, high = entry.get_values()
            return float(low), float(high)

        def channels(key: str) -> np.ndarray | None:
            entry = data.get(key)
            return (
                None
                if not isinstance(entry, DenseArrayBase)
                else np.asarray(entry.get_values(), np.float64)
            )

        return TensorStats(
            pair("min_max"), pair("histogram"), channels("channel_min"), channels("channel_max")
        )

    def to_json(self) -> dict:
        entry: dict = {"min_max": list(self.min_max), "histogram": list(self.histogram)}
        if self.channel_min is not None and self.channel_max is not None:
            entry["channel_min"] = [float(v) for v in self.channel_min]
            entry["channel_max"] = [float(v) for v in self.channel_max]
        return entry

    @staticmethod
    def from_json(entry: Mapping) -> TensorStats:
        channel_min, channel_max = entry.get("channel_min"), entry.get("channel_max")
        return TensorStats(
            tuple(entry["min_max"]),
            tuple(entry["histogram"]),  # type: ignore[arg-type]
            None if channel_min is None else np.asarray(channel_min, np.float64),
            None if channel_max is None else np.asarray(channel_max, np.float64),
        )


@dataclass
class CalibrationStats:
    """Ranges of every calibrated tensor of @main, by position key (see `value_keys`)."""

    samples: int
    tensors: dict[str, TensorStats] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "samples": self.samples,
            "tensors": {
                key: {"name": self.names.get(key, key), **stats.to_json()}
                for key, stats in self.tensors.items()
            },
        }

    @staticmethod
    def from_json(data: Mapping) -> CalibrationStats:
        tensors = data.get("tensors", {})
        return CalibrationStats(
            int(data.get("samples", 0)),
            {key: TensorStats.from_json(entry) for key, entry in tensors.items()},
            {key: entry.get("name", key) for key, entry in tensors.items()},
        )


# --------------------------------------------------------------------------- samples


def _describe(spec: tuple[tuple[int, ...], np.dtype]) -> str:
    return f"{np.dtype(spec[1])} of shape {tuple(spec[0])}"


def _validated(sample: object, where: str, expected: InputSpecs | None) -> dict[str, np.ndarray]:
    if not isinstance(sample, Mapping):
        raise QuantizationError(
            f"{where} is a {type(sample).__name__}; each calibration sample must be a dict "
            "of input name -> array"
        )
    arrays = {}
    for name, value in sample.items():
        try:
            arrays[str(name)] = np.asarray(value)
        except (TypeError, ValueError) as error:  # ragged nested lists, odd objects
            raise QuantizationError(
                f"{where}: input '{name}' is not an array: {first_line(error)}"
            ) from None
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
            raise QuantizationError(
                f"{where}: input '{name}' holds NaN values; calibration data must be real numbers"
            )
    if expected is None:
        return arrays
    missing = [name for name in expected if name not in arrays]
    unknown = [name for name in arrays if name not in expected]
    if missing or unknown:
        raise QuantizationError(
            f"{where}: the model's inputs are {list(expected)}; missing {missing}, "
            f"unknown {unknown}"
        )
    checked = {}
    for name, (shape, dtype) in expected.items():
        array = arrays[name]
        dtype = np.dtype(dtype)
        same_kind = np.issubdtype(array.dtype, np.floating) and np.issubdtype(dtype, np.floating)
        if tuple(array.shape) != tuple(shape) or not (array.dtype == dtype or same_kind):
            raise QuantizationError(
                f"{where}: input '{name}' must be {_describe((shape, dtype))}, got "
                f"{array.dtype} of shape {array.shape}"
            )
        checked[name] = array.astype(dtype, copy=False)
    return checked


def read_array_file(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """The array of a `.npy` file or the arrays of a `.npz` file; nothing is ever unpickled.

    Raises ValueError with a one-line reason when the file cannot be read, is corrupt, or
    holds pickled objects (which could run code, so they are refused, never loaded).
    """
    if not path.is_file():
        raise ValueError("no such file" if not path.exists() else "not a regular file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded
        with loaded:  # the members are read (and can fail) only when accessed
            arrays = {key: loaded[key] for key in loaded.files}
    except Exception as error:  # numpy, zipfile and zlib raise a zoo of types on bad data
        text = str(error).strip()
        message = text.splitlines()[0] if text else ""
        if "pickle" in message:
            raise ValueError(
                "it holds pickled Python objects (or is no NumPy file at all); "
                "only plain numeric .npy/.npz arrays are read"
            ) from None
        raise ValueError(f"corrupt or truncated ({type(error).__name__}: {message})") from None
    not_arrays = [key for key, value in arrays.items() if not isinstance(value, np.ndarray)]
    if not_arrays:
        raise ValueError(f"member '{not_arrays[0]}' is not a .npy array")
    return arrays


def _load_file(path: Path, expected: InputSpecs | None) -> dict[str, np.ndarray]:
    try:
        loaded = read_array_file(path)
    except ValueError as error:
        raise QuantizationError(f"calibration file '{path}' cannot be read: {error}") from None
    if isinstance(loaded, dict):
        return loaded
    if expected is None or len(expected) != 1:
        raise QuantizationError(
            f"calibration file '{path}' is a .npy array, which only names the input of a "
            "single-input model; use .npz files keyed by input name"
        )
    return {next(iter(expected)): loaded}


def _samples_of(source: Iterable) -> Iterator[tuple[int, object]]:
    """(index, sample) of a user iterable; an error it raises becomes a QuantizationError."""
    iterator = iter(source)
    index = 0
    while True:
        try:
            sample = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # the user's generator or dataset failed
            raise QuantizationError(
                f"the calibration data raised {type(error).__name__} while producing sample "
                f"{index}: {first_line(error)}"
            ) from error
        yield index, sample
        index += 1


def load_calibration(
    source: object, expected: InputSpecs | None = None
) -> list[dict[str, np.ndarray]]:
    """Calibration samples from an iterable of input dicts or a folder of .npy/.npz files.

    A folder is read in file-name order: `.npz` files are keyed by input name, `.npy` files
    hold the single input of a single-input model; hidden files (`.name`, such as macOS's
    `._x.npy`) are skipped. With `expected` (input name -> (shape, dtype)), every sample is
    checked; float arrays are cast to the expected float dtype. NaN is refused everywhere.
    """
    if source is None:
        raise QuantizationError(
            "post-training quantization needs calibration data: pass an iterable of input "
            "dicts or a folder of .npy/.npz files (e.g. --calibration samples/)"
        )
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if folder.is_file():
            raise QuantizationError(
                f"calibration source '{folder}' is a file; give the folder "
                "of .npy/.npz files that holds it"
            )
        if not folder.is_dir():
            raise QuantizationError(
                f"calibration folder '{folder}' does not exist or is not "
                "a folder of .npy/.npz files"
            )
        files = sorted(
            p
            for p in folder.iterdir()
            if p.suffix.lower() in (".npy", ".npz") and not p.name.startswith(".")
        )
        if not files:
            raise QuantizationError(f"calibration folder '{folder}' holds no .npy/.npz files")
        return [
            _validated(_load_file(p, expected), f"calibration file '{p.name}'", expected)
            for p in files
        ]
    if isinstance(source, Mapping):
        source = [source]
    if not isinstance(source, Iterable):
        raise QuantizationError(
            f"calibration data is a {type(source).__name__}; pass an iterable of input dicts "
            "or a folder of .npy/.npz files"
        )
    samples = [
        _validated(sample, f"calibration sample {index}", expected)
        for index, sample in _samples_of(source)
    ]
    if not samples:
        raise QuantizationError("calibration data is empty; give at least one sample")
    return samples


# --------------------------------------------------------------------------- calibrate


class _Observers:
    """The histogram observer (whose running minimum and maximum are the min-max range)
    and, for tensors the hybrid scheme may quantize per channel, a per-channel min-max."""

    def __init__(self, per_channel: bool):
        self.histogram = HistogramObserver()
        self.channels = PerChannelMinMaxObserver(CHANNEL_AXIS) if per_channel else None

    def observe(self, array: np.ndarray) -> None:
        self.histogram.observe(array)
        if self.channels is not None:
            self.channels.observe(array)

    def stats(self) -> TensorStats:
        channel_min = channel_max = None
        if self.channels is not None:
            channel_min, channel_max = self.channels.range()
        return TensorStats(
            self.histogram.min_max_range(), self.histogram.range(), channel_min, channel_max
        )


def calibrate(
    graph, samples: Sequence[Mapping[str, np.ndarray]], progress: Progress | None = None
) -> CalibrationStats:
    """Run the float `graph` on `samples` and observe every accelerated float tensor."""
    from aipuc.runtime.float_interpreter import FLOAT_KERNELS
    from aipuc.runtime.interpreter import run_function

    func_op = graph.main
    expected = graph.inputs
    samples = [_validated(s, f"calibration sample {i}", expected) for i, s in enumerate(samples)]
    if not samples:
        raise QuantizationError("calibration data is empty; give at least one sample")
    per_channel = channel_calibrated_values(func_op)
    keys, names = value_keys(func_op), tensor_names(func_op)
    observers: dict[SSAValue, _Observers] = {}
    seen: set[SSAValue] = set()

    def observe(value: SSAValue, array: np.ndarray) -> None:
        if value in seen or not is_floating_point_tensor(value):
            return
        seen.add(value)
        if array.size == 0:
            raise QuantizationError(
                f"tensor '{names[value]}' has the empty shape {list(array.shape)}; the "
                "accelerator computes no empty tensors: fix the model or its input shapes"
            )
        if value not in observers:
            observers[value] = _Observers(value in per_channel)
        observers[value].observe(array)

    def observing(kernel):
        def run(op: Operation, inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
            calibrated = calibrated_operands(op)
            for operand, array in zip(op.operands, inputs, strict=True):
                if operand in calibrated:
                    observe(operand, array)
            results = kernel(op, inputs)
            for result, array in zip(op.results, results, strict=True):
                observe(result, array)
            return results

        return run

    kernels = {op_type: observing(kernel) for op_type, kernel in FLOAT_KERNELS.items()}
    for done, sample in enumerate(samples, start=1):
        seen.clear()
        run_function(func_op, [sample[name] for name in expected], kernels)
        if progress is not None:
            progress(done, len(samples))
    ordered = sorted(observers, key=lambda value: _position(keys[value]))
    stats = {}
    for value in ordered:
        try:
            stats[keys[value]] = observers[value].stats()
        except QuantizationError as error:  # e.g. only NaN/inf seen: name the tensor
            raise QuantizationError(f"tensor '{names[value]}': {error}") from None
    return CalibrationStats(len(samples), stats, {keys[value]: names[value] for value in ordered})


def _position(key: str) -> tuple[int, int, int]:
    """Sort order of position keys: arguments first, then ops in program order."""
    if key.startswith("arg"):
        return (0, int(key[3:]), 0)
    op_index, result_index = key[2:].split(".")
    return (1, int(op_index), int(result_index))


# --------------------------------------------------------------------------- IR


def annotate(module: ModuleOp, stats: CalibrationStats) -> None:
    """Write `stats` onto @main as `axq.calibration` attributes (replacing older ones)."""
    func_op = main_function(module)
    by_key = {key: value for value, key in value_keys(func_op).items()}
    unknown = [key for key in stats.tensors if key not in by_key]
    if unknown:
        raise QuantizationError(
            f"calibration stats name tensors {unknown[:3]} that @main does not have; "
            "calibrate the same graph you annotate"
        )
    per_op: dict[Operation, dict[int, DictionaryAttr]] = {}
    arg_entries: dict[int, DictionaryAttr] = {}
    for key, tensor in stats.tensors.items():
        value = by_key[key]
        if isinstance(value, BlockArgument):
            arg_entries[value.index] = tensor.to_attr()
        else:
            per_op.setdefault(value.owner, {})[value.index] = tensor.to_attr()  # type: ignore
    for op in func_op.body.block.ops:
        op.attributes.pop(CALIBRATION_ATTR, None)
    for op, entries in per_op.items():
        op.attributes[CALIBRATION_ATTR] = ArrayAttr(
            [entries.get(index, DictionaryAttr({})) for index in range(len(op.results))]
        )
    arg_count = len(func_op.body.block.args)
    old = (
        func_op.arg_attrs.data
        if func_op.arg_attrs is not None
        else [DictionaryAttr({})] * (arg_count)
    )
    new_attrs = []
    for index, entry in enumerate(old):
        data = {k: v for k, v in entry.data.items() if k != CALIBRATION_ATTR}
        if index in arg_entries:
            data[CALIBRATION_ATTR] = arg_entries[index]
        new_attrs.append(DictionaryAttr(data))
    func_op.arg_attrs = ArrayAttr(new_attrs)


def read_annotations(func_op: func.FuncOp) -> dict[SSAValue, TensorStats]:
    """The `axq.calibration` ranges on @main's arguments and op results."""
    stats: dict[SSAValue, TensorStats] = {}
    if func_op.arg_attrs is not None:
        for arg, entry in zip(func_op.body.block.args, func_op.arg_attrs.data, strict=True):
            found = TensorStats.from_attr(entry.data.get(CALIBRATION_ATTR, DictionaryAttr({})))
            if found is not None:
                stats[arg] = found
    for op in func_op.body.block.ops:
        entries = op.attributes.get(CALIBRATION_ATTR)
        if entries is None:
            continue
        if not isinstance(entries, ArrayAttr) or len(entries.data) != len(op.results):
            raise QuantizationError(
                f"{op.name}: {CALIBRATION_ATTR} must be an array with one dictionary per result"
            )
        for result, entry in zip(op.results, entries.data, strict=True):
            found = TensorStats.from_attr(entry)
            if found is not None:
                stats[result] = found
    return stats


def strip_annotations(func_op: func.FuncOp) -> None:
    """Remove every `axq.calibration` attribute (quantization has consumed them)."""
    for op in func_op.body.block.ops:
        op.attributes.pop(CALIBRATION_ATTR, None)
    if func_op.arg_attrs is not None:
        func_op.arg_attrs = ArrayAttr(
            [
                DictionaryAttr({k: v for k, v in entry.data.items() if k != CALIBRATION_ATTR})
                for entry in func_op.arg_attrs.data
            ]
        )
