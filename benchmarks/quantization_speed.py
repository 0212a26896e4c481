"""Speed of aipuc's quantization stage and of its integer reference, against onnxruntime.

For each zoo model, both quantizers get the same calibration samples (32 by default):

- aipuc: `aipuc.compile(..., compiler_mode="quantize_only")`; its quantization is the whole
  compile except the output SQNR check (`sqnr_seconds` of the report's `evaluate` stage),
  which quantize_static does not do: loading, cleaning, import, graph rewrites, calibration,
  the `axq-quantize` pass, legalization and writing `quantized_model/`; the whole compile
  beside it;
- onnxruntime: `quantize_static` (QDQ, per-channel int8, MinMax), as `common.ort_quantize`.

Then one held-out input runs through both: aipuc's `CompiledModel.run_quantized` (the integer
reference; its first call on a freshly loaded output folder includes reading `model.mlir`) and
onnxruntime's session on the QDQ model (session creation excluded, one warm-up run). Run times
are medians. The CPU ratios compare process CPU time (every thread: onnxruntime's pool and
BLAS count too), which a busy shared machine distorts far less than wall time; aipuc's
includes its SQNR check. A warm-up on tiny_cnn (both quantizers, two samples) runs first,
so no row pays the libraries' import time. The IR column is the size of `quantized_model/`
(IR text and weight files).
The peak RSS column is the process's resident-memory high-water mark during aipuc's compile
(Linux: reset through /proc/self/clear_refs just before it; elsewhere the process's peak so far).

    python benchmarks/quantization_speed.py [--models resnet18,mobilenetv2] [--calibration 32]
        [--runs 5] [--profile DIR] [--work-dir DIR]

`--profile DIR` also writes cProfile files (`<model>.quantize.prof`, `<model>.run.prof`) and
prints their top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from common import machine_info, markdown_table, ort_quantize, ort_session

import aipuc
from aipuc.models import ZOO, build_model, sample_inputs

T = TypeVar("T")

HELD_OUT_SEED = 1000  # the run input never shares a seed with calibration samples
TABLE_COLUMNS = (
    "model",
    "aipuc quantize s",
    "aipuc compile s",
    "onnxruntime quantize s",
    "quantize ratio",
    "quantize CPU ratio",
    "aipuc first run s",
    "aipuc run s",
    "onnxruntime int8 run s",
    "run ratio",
    "run CPU ratio",
    "IR MB",
    "aipuc peak RSS MiB",
)


def _folder_megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _reset_peak_rss() -> None:
    """Restart the kernel's RSS high-water mark at the current RSS (Linux only)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    """The process's resident-memory high-water mark."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(run: Callable[[], T]) -> tuple[T, float, float]:
    """`run()`, its wall seconds and the process's CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of `repeats` calls."""
    times = [_timed(run)[1:] for _ in range(repeats)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def _profiled(profile: cProfile.Profile | None, run: Callable[[], object]):
    if profile is None:
        return run()
    return profile.runcall(run)


def _top_entries(path: Path, count: int = 15) -> str:
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("tottime").print_stats(count)
    return text.getvalue()


def model_speed(
    name: str,
    calibration: int,
    runs: int,
    output_dir: Path,
    profile_dir: Path | None = None,
) -> dict[str, object]:
    """One table row for the zoo model `name`."""
    model = build_model(name)
    samples = [sample_inputs(model, seed=seed) for seed in range(calibration)]
    held_out = sample_inputs(model, seed=HELD_OUT_SEED)

    config = aipuc.CompilerConfig(output_dir=str(output_dir), compiler_mode="quantize_only")
    quantize_profile = cProfile.Profile() if profile_dir is not None else None
    _reset_peak_rss()
    (compiled, compile_s, compile_cpu) = _timed(
        lambda: _profiled(quantize_profile, lambda: aipuc.compile(model, config, samples))
    )
    peak_mib = _peak_rss_mib()
    evaluate = next(s for s in compiled.report["stages"] if s["stage"] == "evaluate")
    quantize_s = compile_s - evaluate["sqnr_seconds"]
    ort_model, ort_quantize_s, ort_quantize_cpu = _timed(
        lambda: ort_quantize(model, samples, "MinMax")
    )

    loaded = aipuc.load(output_dir)  # a fresh folder: the first run reads model.mlir
    run_profile = cProfile.Profile() if profile_dir is not None else None
    started = time.perf_counter()
    _profiled(run_profile, lambda: loaded.run_quantized(held_out))
    first_run_s = time.perf_counter() - started
    aipuc_run_s, aipuc_run_cpu = _median_seconds(
        lambda: _profiled(run_profile, lambda: loaded.run_quantized(held_out)), runs
    )

    session = ort_session(ort_model)
    feeds: Mapping[str, np.ndarray] = dict(held_out)
    session.run(None, feeds)
    ort_run_s, ort_run_cpu = _median_seconds(lambda: session.run(None, feeds), runs)

    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        for kind, profile in (("quantize", quantize_profile), ("run", run_profile)):
            path = profile_dir / f"{name}.{kind}.prof"
            profile.dump_stats(str(path))  # type: ignore[union-attr]
            print(f"--- {name} {kind}: top entries by own time ({path})")
            print(_top_entries(path))
    return {
        "model": name,
        "aipuc quantize s": quantize_s,
        "aipuc compile s": compile_s,
        "onnxruntime quantize s": ort_quantize_s,
        "quantize ratio": quantize_s / ort_quantize_s,
        "quantize CPU ratio": compile_cpu / ort_quantize_cpu,
        "aipuc first run s": first_run_s,
        "aipuc run s": aipuc_run_s,
        "onnxruntime int8 run s": ort_run_s,
        "run ratio": aipuc_run_s / ort_run_s,
        "run CPU ratio": aipuc_run_cpu / ort_run_cpu,
        "IR MB": _folder_megabytes(output_dir / "quantized_model"),
        "aipuc peak RSS MiB": peak_mib,
    }


def _warm_up(output_dir: Path) -> None:
    """Both quantizers once on tiny_cnn, so that no row pays the libraries' import time."""
    model = build_model("tiny_cnn")
    samples = [sample_inputs(model, seed=seed) for seed in range(2)]
    config = aipuc.CompilerConfig(output_dir=str(output_dir), compiler_mode="quantize_only")
    aipuc.compile(model, config, samples).run_quantized(samples[0])
    ort_session(ort_quantize(model, samples, "MinMax")).run(None, dict(samples[0]))


def run_benchmark(
    models: Sequence[str] = tuple(ZOO),
    calibration: int = 32,
    runs: int = 5,
    work_dir: Path | None = None,
    profile_dir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[dict[str, object]]:
    """The rows of every model in `models`; aipuc's output folders go under `work_dir`."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="aipuc-speed-") as scratch:
        root = work_dir if work_dir is not None else Path(scratch)
        _warm_up(root / "warm-up")
        for name in models:
            row = model_speed(name, calibration, runs, root / name, profile_dir)
            rows.append(row)
            progress(markdown_table([row], TABLE_COLUMNS).splitlines()[2])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default=",".join(ZOO),
        help=f"comma-separated zoo names (default: all of {', '.join(ZOO)})",
    )
    parser.add_argument(
        "--calibration", type=int, default=32, help="calibration samples (default 32)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model (default 5)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="write cProfile files into this folder"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep aipuc's output folders here (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in ZOO]
    if unknown:
        parser.error(f"unknown zoo model(s) {', '.join(unknown)}; valid: {', '.join(ZOO)}")
    print(machine_info())
    print(markdown_table([], TABLE_COLUMNS))
    rows = run_benchmark(
        models, args.calibration, args.runs, args.work_dir, args.profile, progress=print
    )
    print(f"\nquantization and integer-reference speed, {args.calibration} calibration samples\n")
    print(markdown_table(rows, TABLE_COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
