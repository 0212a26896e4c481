"""Running from disk: compiled_model/ alone, with the runtime, NumPy and onnxruntime only.

The subprocess test forbids importing the compiler (xDSL, pydantic, onnx and aipuc's
compiler modules) and still runs a model with host segments bit for bit; the manifest
refuses a folder whose files were changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from deploy_checks import assert_same_outputs, run_runtime_only
from onnx import TensorProto, helper, numpy_helper

import aipuc
from aipuc.config import CompilerConfig
from aipuc.errors import ModelError
from aipuc.models import build_model, sample_inputs
from aipuc.runtime import loader


@pytest.fixture(scope="module")
def split_attention(tmp_path_factory):
    """Convolutions around two CumSums (no accelerator op), without the graph cleaner: three
    launches with host segments between them, so the run needs onnxruntime and the device."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(
            (rng.standard_normal((8, c, 3, 3)) * 0.3).astype("float32"), f"w{n}"
        )
        for n, c in enumerate((4, 8, 8))
    ]
    axis = numpy_helper.from_array(np.array(3, np.int64), "axis")
    nodes = []
    for n in range(3):
        source = "input" if n == 0 else f"s{n - 1}"
        target = "output" if n == 2 else f"c{n}"
        nodes.append(helper.make_node("Conv", [source, f"w{n}"], [target], pads=[1, 1, 1, 1]))
        if n < 2:
            nodes.append(helper.make_node("CumSum", [target, "axis"], [f"s{n}"]))
    graph = helper.make_graph(
        nodes,
        "split",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8, 8, 8])],
        [*weights, axis],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    samples = [{"input": rng.standard_normal((1, 4, 8, 8)).astype("float32")} for _ in range(2)]
    out = tmp_path_factory.mktemp("split")
    config = CompilerConfig(output_dir=str(out), run_graph_cleaner=False, validate_operators=False)
    return aipuc.compile(model, config, samples), samples


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = build_model("tiny_cnn")
    samples = [sample_inputs(model, seed=seed) for seed in range(2)]
    out = tmp_path_factory.mktemp("tiny")
    return aipuc.compile(model, CompilerConfig(output_dir=str(out)), samples), samples


def test_host_segments_are_onnx_files_in_the_manifest(split_attention):
    compiled, _ = split_attention
    folder = compiled.output_dir / "compiled_model"
    manifest = json.loads((folder / "manifest.json").read_text())
    kinds = [step["op"] for step in manifest["steps"]]
    assert kinds.count("launch") >= 2 and kinds.count("host") >= 2
    for step in manifest["steps"]:
        if step["op"] == "host":
            assert (folder / step["model"]).is_file()
    assert set(manifest["files"]) == {p.name for p in folder.iterdir() if p.name != "manifest.json"}
    (entry,) = manifest["inputs"]
    assert entry["name"] == "input" and entry["shape"] == [1, 4, 8, 8]
    assert set(entry["quantization"]) == {"scale", "zero_point", "axis"}


def test_run_from_disk_equals_run_quantized(split_attention, tiny):
    for compiled, samples in (split_attention, tiny):
        model = loader.load(compiled.output_dir / "compiled_model")
        for sample in samples:
            streamed, reference = model.run(sample), compiled.run_quantized(sample)
            assert set(streamed) == set(reference)
            for name, value in reference.items():
                np.testing.assert_array_equal(streamed[name], value)


def test_a_subprocess_with_only_the_runtime_runs_the_model(split_attention, tmp_path):
    compiled, samples = split_attention
    folder = compiled.output_dir / "compiled_model"
    outputs, modules = run_runtime_only(folder, samples, tmp_path)
    assert "aipuc.runtime.loader" in modules
    for found, sample in zip(outputs, samples, strict=True):
        assert_same_outputs(found, compiled.run_quantized(sample))


def _copy(compiled, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(compiled.output_dir, target)
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.write_bytes(f.read_bytes()[:-1]),
            r"model.elf' does not match manifest.json \(size",
        ),
        (
            lambda f: f.write_bytes(f.read_bytes()[:-1] + b"\x01"),
            r"model.elf' does not match manifest.json \(sha256",
        ),
        (lambda f: f.unlink(), r"model.elf' is missing"),
    ],
)
def test_a_changed_folder_is_refused_in_one_line(tiny, tmp_path, change, message):
    compiled, _ = tiny
    folder = _copy(compiled, tmp_path)
    change(folder / "compiled_model" / "model.elf")
    with pytest.raises(ModelError, match=message) as error:
        aipuc.load(folder)
    assert "\n" not in str(error.value)


def test_cli_run_refuses_a_changed_folder(tiny, tmp_path):
    compiled, samples = tiny
    folder = _copy(compiled, tmp_path)
    manifest = folder / "compiled_model" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["hardware"]["dpu_registers"] = 8
    manifest.write_text(json.dumps(data))
    np.savez(tmp_path / "in.npz", **samples[0])
    aipuc_cli = Path(sys.executable).with_name("aipuc")
    result = subprocess.run(
        [str(aipuc_cli), "run", str(folder), "--input", str(tmp_path / "in.npz")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "another hardware model" in result.stderr
    assert "Traceback" not in result.stderr
