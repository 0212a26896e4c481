"""The driver end to end on the tiny zoo model: output folder, modes, failures, tooling fields."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

import aipuc
from aipuc.config import CompilerConfig
from aipuc.errors import AipucError, ConfigError, ModelError
from aipuc.models import build_model, sample_inputs

MODEL = "tiny_cnn"


@pytest.fixture(scope="module")
def tiny_model() -> onnx.ModelProto:
    return build_model(MODEL)


@pytest.fixture(scope="module")
def samples(tiny_model):
    return [sample_inputs(tiny_model, seed=seed) for seed in range(3)]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, tiny_model, samples):
    out = tmp_path_factory.mktemp("build")
    return aipuc.compile(tiny_model, CompilerConfig(output_dir=str(out)), samples)


def test_output_folder_layout(compiled):
    out = compiled.output_dir
    for relative in (
        "input_model/model.onnx",
        "input_model/core.onnx",
        "quantized_model/model.mlir",
        "quantized_model/quantized_graph.json",
        "quantized_model/manifest.json",
        "compilation_report.json",
        "compilation_log.txt",
        "compiler_config_final.json",
        "lowered/model.mlir",
        "lowered/memory_plan.json",
        "compiled_model/host.mlir",
        "compiled_model/device.json",
        "compiled_model/constants.bin",
        "compiled_model/segment0.stream",
    ):
        assert (out / relative).is_file(), relative
    assert not list(out.glob(".staging-*"))
    report = json.loads((out / "compilation_report.json").read_text())
    assert report == compiled.report
    statuses = {s["stage"]: s["status"] for s in report["stages"]}
    assert statuses == {
        "load": "ok",
        "clean": "ok",
        "import": "ok",
        "quantize": "ok",
        "lower": "ok",
        "emit": "ok",
    }
    assert report["last_stage_built"] == "emit"


def test_run_quantized_is_exact_and_close_to_float(compiled, tiny_model, samples):
    first = compiled.run_quantized(samples[0])
    second = aipuc.load(compiled.output_dir).run_quantized(samples[0])
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    reference = aipuc.import_model(tiny_model).run(samples[0])
    for name, value in reference.items():
        noise = np.mean((first[name] - value) ** 2)
        assert 10 * np.log10(np.mean(value**2) / noise) > 15, name
    sqnr = compiled.report["quantization"]["output_sqnr_db"]
    assert all(v > 15 for v in sqnr.values())


def test_stream_equals_integer_reference(compiled, samples):
    for sample in samples:
        streamed = aipuc.load(compiled.output_dir).run(sample)
        reference = compiled.run_quantized(sample)
        for name, value in reference.items():
            np.testing.assert_array_equal(streamed[name], value)


def test_quantize_only_output_has_no_stream(tmp_path, tiny_model, samples):
    only = aipuc.compile(
        tiny_model,
        CompilerConfig(output_dir=str(tmp_path / "q"), compiler_mode="quantize_only"),
        samples,
    )
    with pytest.raises(AipucError, match="holds no instruction stream"):
        only.run(samples[0])


def test_quantize_only_then_lower_only_gives_same_bits(tmp_path, tiny_model, samples):
    first = aipuc.compile(
        tiny_model,
        CompilerConfig(output_dir=str(tmp_path / "q"), compiler_mode="quantize_only"),
        samples,
    )
    assert [s["stage"] for s in first.report["stages"]][-1] == "quantize"
    second = aipuc.compile(
        tmp_path / "q", CompilerConfig(output_dir=str(tmp_path / "l"), compiler_mode="lower_only")
    )
    a, b = first.run_quantized(samples[1]), second.run_quantized(samples[1])
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_lower_only_needs_a_quantized_folder(tmp_path, tiny_model):
    with pytest.raises(ConfigError, match="quantize_only"):
        aipuc.compile(
            tiny_model, CompilerConfig(output_dir=str(tmp_path / "x"), compiler_mode="lower_only")
        )


def test_failure_leaves_nothing_half_written(tmp_path, samples):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage-not-a-model")
    config = CompilerConfig(output_dir=str(out), save_error_artifact=True)
    with pytest.raises(ModelError):
        aipuc.compile(broken, config, samples)
    assert sorted(p.name for p in out.iterdir()) == [
        "compilation_log.txt",
        "compilation_report.json",
        "error_artifact.zip",
        "keep.txt",
    ]
    report = json.loads((out / "compilation_report.json").read_text())
    assert report["status"] == "error" and report["error"]["stage"] == "load"
    assert report["error"]["code"] == "E_LOAD"
    with zipfile.ZipFile(out / "error_artifact.zip") as archive:
        assert "compilation_report.json" in archive.namelist()


def test_error_artifact_randomizes_weights(tmp_path, tiny_model):
    out = tmp_path / "out"
    config = CompilerConfig(
        output_dir=str(out), save_error_artifact=True, randomize_onnx_model=True
    )
    with pytest.raises(AipucError):
        aipuc.compile(tiny_model, config, calibration=tmp_path / "no-such-folder")
    with zipfile.ZipFile(out / "error_artifact.zip") as archive:
        saved = onnx.load_from_string(archive.read("model.onnx"))
    original = {t.name: onnx.numpy_helper.to_array(t) for t in tiny_model.graph.initializer}
    changed = [
        t.name
        for t in saved.graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT
        and not np.array_equal(onnx.numpy_helper.to_array(t), original[t.name])
    ]
    assert changed


def test_paths_never_leave_output_dir(tmp_path, tiny_model, samples):
    config = CompilerConfig(
        output_dir=str(tmp_path / "o"), quantization_debug=True, model_debug_save_dir="../escape"
    )
    with pytest.raises(ConfigError, match="inside the output directory"):
        aipuc.compile(tiny_model, config, samples)
    assert not (tmp_path / "escape").exists()


def test_tooling_fields(tmp_path, tiny_model, samples):
    out = tmp_path / "o"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    config = CompilerConfig(
        output_dir=str(out),
        remove_output_dir=True,
        trace_tvm_passes=True,
        quantized_graph_export=False,
        quantization_debug=True,
        model_debug_save_dir="dbg",
        model_name="tiny",
    )
    compiled = aipuc.compile(tiny_model, config, samples)
    assert not (out / "stale.txt").exists()
    trace = json.loads((out / "pass_dependency_graph.json").read_text())
    assert [p["name"] for p in trace["passes"]][:4] == ["load", "clean", "import", "quantize"]
    assert not (out / "quantized_model" / "quantized_graph.json").exists()
    assert any((out / "dbg").iterdir())
    assert compiled.report["model_name"] == "tiny"


def test_remove_io_quantization_gives_int8_io(tmp_path, tiny_model, samples):
    config = CompilerConfig(output_dir=str(tmp_path / "o"), remove_io_quantization=True)
    compiled = aipuc.compile(tiny_model, config, samples)
    manifest = json.loads((compiled.output_dir / "quantized_model/manifest.json").read_text())
    for entry in manifest["inputs"] + manifest["outputs"]:
        assert entry["dtype"] == "int8" and entry["scale"][0] > 0
    outputs = compiled.run_quantized(samples[0])
    assert all(v.dtype == np.int8 for v in outputs.values())


def test_default_output_dir_uses_model_name(tmp_path, monkeypatch, tiny_model, samples):
    monkeypatch.chdir(tmp_path)
    compiled = aipuc.compile(tiny_model, CompilerConfig(model_name="named"), samples)
    assert Path(compiled.output_dir) == Path("aipuc-out/named")


def test_fields_of_unbuilt_stages_are_reported_not_ignored(tmp_path, tiny_model, samples):
    config = CompilerConfig(output_dir=str(tmp_path / "o"), tiling_depth=6, use_sysdma=True)
    compiled = aipuc.compile(tiny_model, config, samples)
    assert compiled.report["fields_without_effect"] == {
        "tiling_depth": "tiling and DFS",
        "use_sysdma": "scheduling",
    }
    log = (compiled.output_dir / "compilation_log.txt").read_text()
    assert "tiling_depth has no effect yet" in log


def test_unbuilt_stage_table_names_real_config_fields():
    from aipuc.driver import FIELDS_OF_UNBUILT_STAGES

    names = [n for fields in FIELDS_OF_UNBUILT_STAGES.values() for n in fields]
    assert len(names) == len(set(names))
    assert set(names) <= set(CompilerConfig.model_fields)


def test_every_built_config_field_is_read_in_one_place():
    """Fields of built stages are read by the driver only; the rest are in the unbuilt table."""
    import dataclasses
    import re

    from aipuc.driver import FIELDS_OF_UNBUILT_STAGES
    from aipuc.lowering.stage import LOWERING_PASSES, PIPELINE_FIELDS
    from aipuc.passes import PASSES

    unbuilt = {n for fields in FIELDS_OF_UNBUILT_STAGES.values() for n in fields}
    options: dict[str, list[str]] = {}
    for pass_name in LOWERING_PASSES:
        for option in dataclasses.fields(PASSES[pass_name]()):
            options.setdefault(option.name, []).append(pass_name)
    package = Path(aipuc.__file__).parent
    sources = {path: path.read_text() for path in package.rglob("*.py") if path.name != "config.py"}
    for name in set(CompilerConfig.model_fields) - unbuilt:
        readers = [
            path.name for path, text in sources.items() if re.search(rf"\bconfig\.{name}\b", text)
        ]
        if name in options:  # a lowering pass option: that pass is its one reader
            assert readers == [] and len(options[name]) == 1, (name, readers, options[name])
        elif name in PIPELINE_FIELDS:  # shapes the pass sequence: the pipeline builder
            assert readers == ["stage.py"], (name, readers)
        else:
            assert readers == ["driver.py"], (name, readers)


def test_xdsl_opt_replays_quantization_from_the_calibrated_ir(compiled):
    """quantized_model/calibrated.mlir + `xdsl-opt -p axq-quantize` == the driver's model.mlir."""
    import subprocess
    import sys

    quantized = compiled.output_dir / "quantized_model"
    xdsl_opt = Path(sys.executable).with_name("xdsl-opt")
    replay = subprocess.run(
        [
            str(xdsl_opt),
            str(quantized / "calibrated.mlir"),
            "--print-debuginfo",
            "-p",
            "axq-quantize{quantization_scheme=per_tensor_histogram}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert replay.stdout.strip() == (quantized / "model.mlir").read_text().strip()
    other = subprocess.run(
        [
            str(xdsl_opt),
            str(quantized / "calibrated.mlir"),
            "--print-debuginfo",
            "-p",
            "axq-quantize{quantization_scheme=per_tensor_min_max}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "!axq.q<" in other.stdout and other.stdout.strip() != replay.stdout.strip()
