"""The driver end to end on the tiny zoo model: output folder, modes, failures, tooling fields."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

import aipuc
from aipuc.cli import main
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
        "compiled_model/model.elf",
        "compiled_model/manifest.json",
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
        "rewrite": "ok",
        "calibrate": "ok",
        "quantize": "ok",
        "legalize": "ok",
        "evaluate": "ok",
        "convert": "ok",
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
    quantization = compiled.report["quantization"]
    assert quantization["output_sqnr_db"] == {}  # 3 samples: none to hold apart
    assert quantization["output_sqnr_method"].startswith("not measured")


def test_sqnr_of_the_whole_model_on_held_out_samples(tmp_path, tiny_model):
    samples = [sample_inputs(tiny_model, seed=seed) for seed in range(9)]
    compiled = aipuc.compile(tiny_model, CompilerConfig(output_dir=str(tmp_path)), samples)
    quantization = compiled.report["quantization"]
    assert quantization["calibration_samples"] == 8
    assert quantization["output_sqnr_held_out_samples"] == 1
    assert "held apart from calibration" in quantization["output_sqnr_method"]
    reference = aipuc.import_model(tiny_model).run(samples[8])["logits"]
    got = compiled.run_quantized(samples[8])["logits"]
    expected = 10 * np.log10(
        np.sum(reference.astype(np.float64) ** 2) / np.sum((got - reference) ** 2)
    )
    assert quantization["output_sqnr_db"]["logits"] == pytest.approx(expected, abs=0.02)
    assert expected > 15


def test_placement_of_a_fully_accelerated_model(compiled):
    placement = compiled.report["placement"]
    assert placement["macs_on_host"] == 0 and placement["nodes_on_host"] == 0
    assert placement["segments"] == 1 and placement["host_nodes"] == []
    # stem 32*32*16*27, depthwise 32*32*16*9, branch_a 16*16*16*16, branch_b 16*16*16*144, fc 32*10
    assert placement["macs_on_accelerator"] == 442368 + 147456 + 65536 + 589824 + 320
    assert placement["nodes_on_accelerator"] == 18


def test_stream_equals_integer_reference(compiled, samples):
    for sample in samples:
        streamed = aipuc.load(compiled.output_dir).run(sample)
        reference = compiled.run_quantized(sample)
        for name, value in reference.items():
            np.testing.assert_array_equal(streamed[name], value)


def test_quantize_only_output_has_no_stream(tmp_path, tiny_model, samples, capsys):
    only = aipuc.compile(
        tiny_model,
        CompilerConfig(output_dir=str(tmp_path / "q"), compiler_mode="quantize_only"),
        samples,
    )
    with pytest.raises(AipucError, match="holds no instruction stream") as error:
        only.run(samples[0])
    assert "run_quantized()" in str(error.value)  # the library's words, not the CLI's
    inputs = tmp_path / "x.npz"
    np.savez(inputs, **samples[0])
    assert main(["run", str(tmp_path / "q"), "--input", str(inputs)]) == 2
    err = capsys.readouterr().err  # the command line's words, not the library's
    assert "holds no instruction stream" in err and "add --quantized" in err
    assert "run_quantized" not in err and "--set compiler_mode=quantize_and_lower" in err


def test_quantize_only_then_lower_only_gives_same_bits(tmp_path, tiny_model, samples):
    first = aipuc.compile(
        tiny_model,
        CompilerConfig(output_dir=str(tmp_path / "q"), compiler_mode="quantize_only"),
        samples,
    )
    assert [s["stage"] for s in first.report["stages"]][-1] == "evaluate"
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
    assert [s["name"] for s in trace["stages"]][:5] == [
        "load",
        "clean",
        "import",
        "rewrite",
        "calibrate",
    ]
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


def test_fields_no_stage_reads_are_reported_not_ignored(tmp_path, tiny_model, samples):
    config = CompilerConfig(output_dir=str(tmp_path / "o"), tiling_depth=6, use_sysdma=True)
    compiled = aipuc.compile(tiny_model, config, samples)
    assert compiled.report["fields_without_effect"] == ["use_sysdma"]
    log = (compiled.output_dir / "compilation_log.txt").read_text()
    assert "use_sysdma has no effect yet" in log


def test_quantization_debug_compares_padded_channels_with_the_float_ones(tmp_path):
    """apply-pword-padding widens 60 channels to 64 in the quantized graph; the per-layer
    report compares the 60 real ones with the float graph's (it crashed on the shapes)."""
    rng = np.random.default_rng(0)
    weights = {"w1": (60, 3, 3, 3), "w2": (8, 60, 1, 1)}
    nodes = [
        onnx.helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        onnx.helper.make_node("Sigmoid", ["c"], ["g"], name="gate"),
        onnx.helper.make_node("Conv", ["g", "w2"], ["y"], name="fc"),
    ]
    graph = onnx.helper.make_graph(
        nodes,
        "padded",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8, 8, 8])],
        [
            onnx.numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)
            for name, shape in weights.items()
        ],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    calibration = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(2)]
    config = CompilerConfig(
        output_dir=str(tmp_path / "o"), quantization_debug=True, model_debug_save_dir="dbg"
    )
    compiled = aipuc.compile(model, config, calibration)
    assert "tensor<1x64x8x8x!axq.q" in str(compiled.core.module)  # the padding this is about
    rows = json.loads((tmp_path / "o" / "dbg" / "sqnr.json").read_text())
    assert [row["name"] for row in rows] == ["conv", "gate", "fc"]
    assert all(row["sqnr_db"] > 30 for row in rows)
    layers = sorted((tmp_path / "o" / "dbg" / "layers").iterdir())
    with np.load(layers[1]) as gate:
        assert gate["float"].shape == gate["quantized"].shape == (1, 1, 60, 8, 8)
