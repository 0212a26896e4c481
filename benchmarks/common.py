"""Helpers shared by the benchmarks: onnxruntime's int8 quantizer as the baseline, SQNR, tables.

The benchmarks compare aipuc's post-training quantization with onnxruntime's `quantize_static`
on the same float model and the same calibration samples, so the baseline is set up here once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

Feeds = Mapping[str, np.ndarray]

ORT_METHODS: dict[str, CalibrationMethod] = {
    "MinMax": CalibrationMethod.MinMax,
    "Entropy": CalibrationMethod.Entropy,
    "Percentile": CalibrationMethod.Percentile,
}


class FeedsReader(CalibrationDataReader):
    """onnxruntime's calibration protocol over an in-memory list of input dicts."""

    def __init__(self, samples: Sequence[Feeds]) -> None:
        self._samples = list(samples)
        self._iterator: Iterator[Feeds] = iter(self._samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self._iterator, None)
        return None if sample is None else dict(sample)

    def rewind(self) -> None:
        self._iterator = iter(self._samples)


def ort_session(model: onnx.ModelProto | str | Path) -> onnxruntime.InferenceSession:
    """A CPU session with onnxruntime's default optimisations: QDQ models run the fused int8
    kernels (QLinearConv, ...) a deployment would run."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence quantize_static: it warns on the root logger (pre-processing advice) and the
    histogram calibrators print their progress to stdout."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def ort_quantize(
    model: onnx.ModelProto,
    calibration: Sequence[Feeds],
    method: str = "MinMax",
) -> onnx.ModelProto:
    """onnxruntime's static int8 quantization: QDQ format, int8 activations (asymmetric) and
    weights (symmetric, per output channel), calibrated with `method` on `calibration`."""
    with tempfile.TemporaryDirectory(prefix="ort-quant-") as workdir, _quiet():
        source = Path(workdir, "float.onnx")
        target = Path(workdir, "int8.onnx")
        onnx.save(model, source)
        quantize_static(
            str(source),
            str(target),
            FeedsReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=ORT_METHODS[method],
        )
        return onnx.load(str(target))


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `actual` against `reference`, in dB (inf when
    they are equal)."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum(np.square(reference - np.asarray(actual, dtype=np.float64))))
    signal = float(np.sum(np.square(reference)))
    return math.inf if noise == 0.0 else 10.0 * math.log10(signal / noise)


def machine_info() -> str:
    """One line naming the machine the numbers were measured on."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    )


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """`rows` as a Markdown table, floats to two decimals."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def quantized_folder(name: str, work: Path, calibration: int) -> Path:
    """The quantize_only output folder of zoo model `name` under `work`, made once."""
    import aipuc
    from aipuc.config import CompilerConfig
    from aipuc.models import build_model, sample_inputs

    folder = work / name / "quantized"
    if not (folder / "quantized_model" / "model.mlir").is_file():
        model = build_model(name)
        samples = [sample_inputs(model, seed=seed) for seed in range(calibration)]
        config = CompilerConfig(output_dir=str(folder), compiler_mode="quantize_only")
        aipuc.compile(model, config, samples)
    return folder
