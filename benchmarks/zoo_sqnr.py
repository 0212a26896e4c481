"""Output SQNR of int8 quantization on the model zoo: aipuc against onnxruntime.

For each zoo model (seeded weights, seeded synthetic inputs from `aipuc.models.sample_inputs`),
both quantizers calibrate on the same few samples; the SQNR (dB) of their outputs against the
float32 model under onnxruntime is measured on held-out samples, pooled over all of them and as
the median of the per-sample values. aipuc runs its default scheme and is scored through
`CompiledModel.run_quantized` (the integer reference); onnxruntime runs `quantize_static` (QDQ,
per-channel int8, MinMax).

    python benchmarks/zoo_sqnr.py [--models tiny_cnn,resnet18] [--calibration 4] [--held-out 8]
        [--scheme per_tensor_histogram] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from common import machine_info, markdown_table, ort_quantize, ort_session, sqnr_db

import aipuc
from aipuc.config import QuantizationScheme
from aipuc.models import ZOO, build_model, sample_inputs

DEFAULT_SCHEME = str(aipuc.CompilerConfig().quantization_scheme)
HELD_OUT_SEED_OFFSET = 1000  # held-out samples never share a seed with calibration samples
PERTURBATION_SNR_DB = 40.0
TABLE_COLUMNS = (
    "model",
    "aipuc dB",
    "onnxruntime dB",
    "aipuc median dB",
    "onnxruntime median dB",
    "float sensitivity dB",
    "aipuc compile s",
    "aipuc run s",
    "onnxruntime quantize s",
    "onnxruntime run s",
)
# Outputs whose last axis mixes quantities of very different scale get extra rows, one per part:
# a pooled SQNR over YOLO detections is the SQNR of the pixel box coordinates alone.
OUTPUT_PARTS: dict[str, dict[str, slice]] = {
    "yolov5s_head": {"boxes": slice(0, 4), "scores": slice(4, None)},
}

Outputs = Sequence[Mapping[str, np.ndarray]]


def _sqnr_columns(
    tool: str, reference: Outputs, actual: Outputs, names: Sequence[str], part: slice
) -> dict[str, float]:
    """SQNR pooled over every held-out sample, and the median of the per-sample SQNRs (the
    pooled figure is dominated by the samples with the largest outputs)."""

    def vectors(outputs: Outputs) -> list[np.ndarray]:
        return [np.concatenate([np.ravel(o[name][..., part]) for name in names]) for o in outputs]

    expected, got = vectors(reference), vectors(actual)
    return {
        f"{tool} dB": sqnr_db(np.concatenate(expected), np.concatenate(got)),
        f"{tool} median dB": float(
            np.median([sqnr_db(e, g) for e, g in zip(expected, got, strict=True)])
        ),
    }


def _perturbed(sample: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`sample` plus white Gaussian noise at PERTURBATION_SNR_DB below each input's power."""
    noisy = {}
    for name, value in sample.items():
        power = float(np.mean(np.square(value, dtype=np.float64)))
        sigma = np.sqrt(power / 10 ** (PERTURBATION_SNR_DB / 10))
        noisy[name] = (value + sigma * rng.standard_normal(value.shape)).astype(value.dtype)
    return noisy


def _ort_outputs(
    model: onnx.ModelProto, samples: Outputs, names: Sequence[str]
) -> tuple[list[dict[str, np.ndarray]], float]:
    session = ort_session(model)
    started = time.perf_counter()
    outputs = [dict(zip(names, session.run(list(names), dict(s)), strict=True)) for s in samples]
    return outputs, time.perf_counter() - started


def model_sqnr(
    name: str,
    calibration: int = 4,
    held_out: int = 8,
    output_dir: Path | None = None,
    scheme: str = DEFAULT_SCHEME,
) -> list[dict[str, object]]:
    """Table rows for zoo model `name`: aipuc's and onnxruntime's output SQNR and timings, then
    one row per part of `OUTPUT_PARTS` (SQNR only).

    "float sensitivity dB" is the float model's own output SNR when its inputs carry noise
    40 dB below their power: a model that turns that into 17 dB of output noise amplifies the
    rounding noise int8 adds at every layer just as much, whoever quantizes it.

    Calibration samples use seeds 0..calibration-1, held-out samples seeds from 1000.
    aipuc quantizes with `scheme` into `output_dir` (a temporary folder if None).
    """
    model = build_model(name)
    names = [o.name for o in model.graph.output]
    calibration_samples = [sample_inputs(model, seed) for seed in range(calibration)]
    held_out_samples = [sample_inputs(model, HELD_OUT_SEED_OFFSET + i) for i in range(held_out)]
    reference, _ = _ort_outputs(model, held_out_samples, names)
    rng = np.random.default_rng(0)
    perturbed, _ = _ort_outputs(model, [_perturbed(s, rng) for s in held_out_samples], names)

    with tempfile.TemporaryDirectory(prefix=f"aipuc-{name}-") as scratch:
        config = aipuc.CompilerConfig(
            output_dir=output_dir or Path(scratch, name),
            quantization_scheme=scheme,
            compiler_mode="quantize_only",
        )
        started = time.perf_counter()
        compiled = aipuc.compile(model, config, calibration=calibration_samples)
        compile_s = time.perf_counter() - started
        started = time.perf_counter()
        aipuc_outputs = [compiled.run_quantized(sample) for sample in held_out_samples]
        aipuc_run_s = time.perf_counter() - started

    started = time.perf_counter()
    quantized = ort_quantize(model, calibration_samples, "MinMax")
    ort_quantize_s = time.perf_counter() - started
    ort_outputs, ort_run_s = _ort_outputs(quantized, held_out_samples, names)

    def sqnr_row(label: str, part: slice) -> dict[str, object]:
        return {
            "model": label,
            **_sqnr_columns("aipuc", reference, aipuc_outputs, names, part),
            **_sqnr_columns("onnxruntime", reference, ort_outputs, names, part),
        }

    rows: list[dict[str, object]] = [
        {
            **sqnr_row(name, slice(None)),
            "float sensitivity dB": _sqnr_columns(
                "float", reference, perturbed, names, slice(None)
            )["float dB"],
            "aipuc compile s": compile_s,
            "aipuc run s": aipuc_run_s,
            "onnxruntime quantize s": ort_quantize_s,
            "onnxruntime run s": ort_run_s,
        }
    ]
    for part_name, part in OUTPUT_PARTS.get(name, {}).items():
        rows.append({**dict.fromkeys(TABLE_COLUMNS, ""), **sqnr_row(f"{name} {part_name}", part)})
    return rows


def run_benchmark(
    models: Sequence[str] = tuple(ZOO),
    calibration: int = 4,
    held_out: int = 8,
    work_dir: Path | None = None,
    scheme: str = DEFAULT_SCHEME,
    progress: Callable[[str], None] = lambda line: None,
) -> list[dict[str, object]]:
    """The rows of every model in `models`, in order; aipuc's output folders go under
    `work_dir` (temporary folders if None)."""
    rows: list[dict[str, object]] = []
    for name in models:
        output_dir = Path(work_dir, name) if work_dir is not None else None
        model_rows = model_sqnr(name, calibration, held_out, output_dir, scheme)
        rows += model_rows
        progress("\n".join(markdown_table(model_rows, TABLE_COLUMNS).splitlines()[2:]))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default=",".join(ZOO),
        help=f"comma-separated zoo names (default: all of {', '.join(ZOO)})",
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=4,
        help="calibration samples, the same for both quantizers (default 4)",
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=8,
        help="held-out samples the SQNR is measured on (default 8)",
    )
    parser.add_argument(
        "--scheme",
        default=DEFAULT_SCHEME,
        choices=[str(scheme) for scheme in QuantizationScheme],
        help=f"aipuc quantization_scheme (default {DEFAULT_SCHEME})",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep aipuc's output folders here (default: temporary folders)",
    )
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in ZOO]
    if unknown:
        parser.error(f"unknown zoo model(s) {', '.join(unknown)}; valid: {', '.join(ZOO)}")
    print(machine_info())
    print(markdown_table([], TABLE_COLUMNS))
    rows = run_benchmark(
        models, args.calibration, args.held_out, args.work_dir, args.scheme, progress=print
    )
    print(
        f"\nzoo output SQNR vs float32, {args.calibration} calibration and {args.held_out} "
        f"held-out samples, aipuc {args.scheme}\n"
    )
    print(markdown_table(rows, TABLE_COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
