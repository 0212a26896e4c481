"""Smoke tests of the quantization benchmarks on a tiny budget (a few epochs, a few images):
the tables have the rows the docs promise and the numbers are sane. The full runs are in
docs/benchmarks.md."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name: str) -> ModuleType:
    """Import a benchmark script; they are scripts, not a package, and import `common`."""
    if str(BENCHMARKS_DIR) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS_DIR))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def digits() -> ModuleType:
    pytest.importorskip("sklearn")
    return _benchmark("accuracy_digits")


def test_sqnr_of_known_noise() -> None:
    common = _benchmark("common")
    reference = np.array([3.0, -4.0])  # signal energy 25
    assert common.sqnr_db(reference, reference + np.array([0.5, 0.0])) == pytest.approx(20.0)


def test_numpy_cnn_gradients_match_finite_differences(digits: ModuleType) -> None:
    rng = np.random.default_rng(0)
    model = digits.DigitsCNN.initialise(seed=3)
    model.params = {
        k: v.astype(np.float64) + 0.05 * rng.standard_normal(v.shape)
        for k, v in model.params.items()
    }
    images, labels = rng.random((4, 1, 8, 8)), rng.integers(0, 10, 4)
    _, grads = model.loss_and_gradients(images, labels)
    step = 1e-6
    for name, param in model.params.items():
        index = tuple(int(rng.integers(0, size)) for size in param.shape)
        original = param[index]
        param[index] = original + step
        above, _ = model.loss_and_gradients(images, labels)
        param[index] = original - step
        below, _ = model.loss_and_gradients(images, labels)
        param[index] = original
        assert grads[name][index] == pytest.approx(
            (above - below) / (2 * step), rel=1e-4, abs=1e-9
        ), name


def test_digits_benchmark_smoke(digits: ModuleType, tmp_path: Path) -> None:
    result = digits.run_benchmark(
        epochs=3,
        calibration_samples=8,
        test_samples=24,
        ort_methods=("MinMax", "Entropy"),
        work_dir=tmp_path,
    )
    methods = [row["method"] for row in result.rows]
    assert methods == [
        "float32 NumPy",
        "float32 onnxruntime",
        *(f"aipuc {scheme}" for scheme in digits.AIPUC_SCHEMES),
        "onnxruntime MinMax",
        "onnxruntime Entropy",
    ]
    assert result.test_samples == 24 and result.calibration_samples == 8
    assert result.float_accuracy > 70.0  # three epochs already learn the digits
    by_method = {row["method"]: row for row in result.rows}
    assert by_method["float32 onnxruntime"]["accuracy %"] == result.float_accuracy
    for row in result.rows:
        assert 0.0 <= row["accuracy %"] <= 100.0
        assert row["drop (pp)"] == pytest.approx(result.float_accuracy - row["accuracy %"])
        if row["method"].startswith(("aipuc", "onnxruntime")) and "float" not in row["method"]:
            assert row["accuracy %"] >= result.float_accuracy - 15.0, row
            assert row["quantize s"] > 0.0 and row["evaluate s"] > 0.0
    for scheme in digits.AIPUC_SCHEMES:
        assert (tmp_path / scheme / "compilation_report.json").is_file()
    assert result.target_met == (result.default_scheme_drop <= result.best_onnxruntime_drop)
    assert "| aipuc per_tensor_histogram |" in result.table()
    # The claims of README.md and docs/benchmarks.md, on this small budget:
    sqnr = {method: row["logit SQNR dB"] for method, row in by_method.items()}
    # aipuc's min-max scheme matches onnxruntime's MinMax to 0.01 dB,
    assert abs(sqnr["aipuc per_tensor_min_max"] - sqnr["onnxruntime MinMax"]) <= 0.01
    # onnxruntime's Entropy method gives exactly its MinMax scales (so the same logits),
    assert sqnr["onnxruntime Entropy"] == sqnr["onnxruntime MinMax"]
    # and without depthwise convs the hybrid scheme equals the histogram scheme.
    hybrid, histogram = (
        by_method["aipuc hybrid_per_tensor_per_channel"],
        by_method["aipuc per_tensor_histogram"],
    )
    assert (hybrid["accuracy %"], hybrid["logit SQNR dB"]) == (
        histogram["accuracy %"],
        histogram["logit SQNR dB"],
    )


def test_zoo_sqnr_smoke() -> None:
    zoo = _benchmark("zoo_sqnr")
    (row,) = zoo.model_sqnr("tiny_cnn", calibration=2, held_out=2)
    assert set(row) == set(zoo.TABLE_COLUMNS)
    assert row["model"] == "tiny_cnn"
    for column in (
        "aipuc dB",
        "onnxruntime dB",
        "aipuc median dB",
        "onnxruntime median dB",
        "float sensitivity dB",
    ):
        assert math.isfinite(row[column]) and row[column] > 15.0, row
    assert row["aipuc compile s"] > 0.0 and row["aipuc run s"] > 0.0


def test_zoo_same_observer_aipuc_matches_or_beats_onnxruntime() -> None:
    """docs/benchmarks.md's claim for min-max on every model, here for tiny_cnn (CI budget)."""
    zoo = _benchmark("zoo_sqnr")
    (row,) = zoo.model_sqnr("tiny_cnn", calibration=2, held_out=2, scheme="per_tensor_min_max")
    assert row["aipuc dB"] >= row["onnxruntime dB"]
    assert row["aipuc median dB"] >= row["onnxruntime median dB"]


def test_speed_smoke() -> None:
    speed = _benchmark("speed")
    text = speed.main(["--size", "8", "--repeats", "1", "--model", "tiny_cnn"])
    assert "| import_onnx(tiny_cnn) |" in text and "group 64, 8x8" in text


def test_modelled_table_has_the_report_figures(capsys) -> None:
    modelled = _benchmark("modelled")
    assert modelled.main(["--models", "tiny_cnn", "--calibration", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("| model"))
    row = next(line for line in lines if line.startswith("| tiny_cnn"))
    cells = dict(
        zip(
            [c.strip() for c in header.strip("|").split("|")],
            [c.strip() for c in row.strip("|").split("|")],
            strict=True,
        )
    )
    cycles = int(cells["cycles"].replace(",", ""))
    assert cycles > 0
    assert float(cells["latency ms"]) == pytest.approx(cycles / 800e6 * 1e3, abs=0.006)
    assert cells["roofline bound"].split()[0] in ("compute", "memory")
    assert float(cells["ratio to bound"]) >= 1


def test_quantization_speed_smoke(tmp_path: Path) -> None:
    speed = _benchmark("quantization_speed")
    row = speed.model_speed("tiny_cnn", calibration=2, runs=1, output_dir=tmp_path / "tiny")
    assert set(row) == set(speed.TABLE_COLUMNS) and row["model"] == "tiny_cnn"
    for column in speed.TABLE_COLUMNS[1:]:
        assert math.isfinite(row[column]) and row[column] > 0.0, (column, row)
    assert row["quantize ratio"] == pytest.approx(
        row["aipuc quantize s"] / row["onnxruntime quantize s"]
    )
    assert (tmp_path / "tiny" / "quantized_model" / "model.mlir").is_file()


def test_run_benchmark_smoke_without_peers(tmp_path: Path, monkeypatch) -> None:
    """benchmarks/run.py on tiny_cnn: the document has every table and real measurements;
    an absent peer is reported as missing, not run."""
    run = _benchmark("run")
    finder = run.importlib.util.find_spec
    monkeypatch.setattr(
        run.importlib.util, "find_spec", lambda name: None if name == "tvm" else finder(name)
    )
    out = tmp_path / "table.md"
    argv = ["--models", "tiny_cnn", "--calibration", "2", "--runs", "1", "--peers", "tvm"]
    assert run.main([*argv, "--out", str(out), "--work-dir", str(tmp_path / "work")]) == 0
    document = out.read_text()
    for heading in ("## Summary", "## Modelled unit busy fractions", "## Peers"):
        assert heading in document
    summary = document.split("## Summary")[1].splitlines()
    header = [c.strip() for c in summary[2].strip("|").split("|")]
    row = dict(zip(header, (c.strip() for c in summary[4].strip("|").split("|")), strict=True))
    assert row["model"] == "tiny_cnn" and row["sim == run_quantized"] == "yes"
    assert float(row["compile s"]) > 0 and float(row["peak RSS MiB"]) > 50
    assert row["sim / ort"].endswith("x")
    peers = document.split("## Peers")[1]
    assert "missing (apache-tvm not installed)" in peers
    assert "not run" in peers  # onnxruntime and IREE were not asked for
    stages = document.split("## tiny_cnn: stages")[1]
    for stage in ("calibrate", "quantize", "convert", "lower", "emit"):
        assert f"| {stage} |" in stages
    convert = next(line for line in stages.splitlines() if line.startswith("| convert |"))
    assert "convert-axq-to-aipu" in convert  # each pass sits in its stage's row
    assert (tmp_path / "work" / "tiny_cnn" / "compilation_report.json").is_file()


def test_weight_seeds_smoke(tmp_path: Path) -> None:
    seeds = _benchmark("weight_seeds")
    rows = seeds.run_benchmark(
        "tiny_cnn", [1, 2], held_out=2, change={"quantization_scheme": "per_tensor_min_max"}
    )
    assert [row["weight seed"] for row in rows] == [1, 2]
    for row in rows:
        assert 15.0 < row["default dB"] < 80.0 and 15.0 < row["changed dB"] < 80.0
        assert row["difference dB"] == pytest.approx(row["changed dB"] - row["default dB"])
    assert rows[0]["default dB"] != rows[1]["default dB"]  # two different networks
    result = seeds.summary(rows)
    assert (
        result["standard error dB"] > 0.0 and 0 <= result["seeds where the change is better"] <= 2
    )


def test_lowering_speed_smoke(tmp_path: Path) -> None:
    """benchmarks/lowering_speed.py lowers a quantize_only folder through aipuc.compile: every
    lowering pass and the emitted program appear, twice with --repeat 2."""
    lowering = _benchmark("lowering_speed")
    argv = ["--models", "tiny_cnn", "--calibration", "1", "--repeat", "2"]
    text = lowering.main([*argv, "--work-dir", str(tmp_path)])
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]
    assert [row["model"] for row in rows] == ["tiny_cnn", "tiny_cnn"]
    for column in ("load s", "lower s", "emit s", "convert-axq-to-aipu s", "mem-plan s"):
        assert column in header, column
    for row in rows:
        assert int(row["records"]) > 0 and float(row["CPU s"]) > 0 and float(row["wall s"]) > 0
    assert (tmp_path / "tiny_cnn" / "lowered" / "compiled_model").is_dir()
