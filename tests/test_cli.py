"""The aipuc command: subcommands, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from aipuc.cli import BROKEN_PIPE_STATUS, main
from aipuc.models import build_model, sample_inputs


def test_config_schema_lists_every_field(capsys):
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"tiling_depth", "quantization_scheme", "ddr_size_max"} <= set(schema["properties"])


def test_config_show_applies_overrides(capsys):
    assert main(["config", "show", "--set", "tiling_depth=6"]) == 0
    assert "tiling_depth = 6" in capsys.readouterr().out


def test_config_check(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text("tiling_depth = 6\n")
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("tiling_depth = 0\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tiling_depth" in err[0]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["compile", "no-such-model.onnx", "--synthetic-calibration", "1"], "no-such-model.onnx"),
        (["compile", "x.onnx", "--input-shape", "input=1xfoo"], "--input-shape"),
        (["config", "show", "--set", "no_such_field=1"], "no_such_field"),
        (["run", "no-such-dir"], "no-such-dir"),
    ],
)
def test_user_errors_are_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "Traceback" not in err[0]


def test_debug_shows_the_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "aipuc.cli", "--debug", "config", "check", "missing.toml"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_compile_and_run(tmp_path, capsys):
    model = build_model("tiny_cnn")
    model_path = tmp_path / "tiny.onnx"
    onnx.save(model, model_path)
    calib = tmp_path / "calib"
    calib.mkdir()
    for seed in range(2):
        np.savez(calib / f"{seed}.npz", **sample_inputs(model, seed=seed))
    out = tmp_path / "build"
    assert (
        main(
            [
                "compile",
                str(model_path),
                "--calibration",
                str(calib),
                "-o",
                str(out),
                "--set",
                "quantization_scheme=per_tensor_min_max",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "calibration samples" in printed and "instruction records" in printed
    report = json.loads((out / "compilation_report.json").read_text())
    assert report["quantization"]["scheme"] == "per_tensor_min_max"
    assert report["quantization"]["calibration_samples"] == 2

    inputs = tmp_path / "x.npz"
    np.savez(inputs, **sample_inputs(model, seed=5))
    saved = tmp_path / "y.npz"
    assert main(["run", str(out), "--input", str(inputs), "--quantized", "--save", str(saved)]) == 0
    assert len(np.load(saved).files) == len(model.graph.output)
    streamed = tmp_path / "z.npz"
    assert main(["run", str(out), "--input", str(inputs), "--save", str(streamed)]) == 0
    quantized, stream = np.load(saved), np.load(streamed)
    for name in quantized.files:  # the instruction stream equals the integer reference
        np.testing.assert_array_equal(stream[name], quantized[name])


def test_a_closed_pipe_ends_quietly():
    """`aipuc config schema | head`: the reader leaves before the schema is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aipuc.cli", "config", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # long before the child has imported aipuc and printed
    error = process.stderr.read().decode()
    assert process.wait() == BROKEN_PIPE_STATUS and error == ""


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("aipuc ")
