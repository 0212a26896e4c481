"""The one pipeline builder: its table, switches and options, the driver's pass runs, the
pass trace, locations through every pass, and the xdsl-opt replay of `aipuc pipeline`."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, NameLoc
from xdsl.parser import Parser

import aipuc
from aipuc.cli import main
from aipuc.config import CompilerConfig
from aipuc.driver import DRIVER_FIELDS, fields_without_effect, import_float_graph, load_onnx
from aipuc.ir_files import ir_context, load_module, module_text
from aipuc.passes import PASSES
from aipuc.pipeline import STAGES, Phase, build_passes, describe, fields_read_by_passes, stages
from aipuc.quantization.calibration import annotate, calibrate, strip_annotations

ROOT = Path(__file__).resolve().parents[1]
XDSL_OPT = Path(sys.executable).with_name("xdsl-opt")
GATED = [step for stage in STAGES for step in stage.steps if step.enabled_by]
SWITCHES = [s for s in GATED if [g.enabled_by for g in GATED].count(s.enabled_by) == 1]
"""Steps their field switches on or off alone (split_buffer_promotion reshapes promotion)."""


def _config(tmp_path: Path, **fields) -> CompilerConfig:
    return CompilerConfig(
        output_dir=str(tmp_path / "out"),
        run_graph_cleaner=False,
        compiler_mode="quantize_only",
        **fields,
    )


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, showcase, showcase_samples):
    out = tmp_path_factory.mktemp("pipeline")
    config = _config(out, trace_tvm_passes=True)
    return aipuc.compile(showcase, config, showcase_samples)


# --------------------------------------------------------------------------- the table


def test_the_table_names_registered_passes_and_config_fields():
    fields = CompilerConfig.model_fields
    for stage in STAGES:
        for step in stage.steps:
            assert step.pass_name in PASSES
            if step.enabled_by is not None:
                assert fields[step.enabled_by].annotation is bool, step.enabled_by
            options = {option.name for option in dataclasses.fields(step.pass_class)}
            fixed = dict(step.fixed)  # options of the step that no config field mirrors
            assert set(fixed) <= options and not set(fixed) & set(fields), fixed
            assert options - set(fixed) <= set(fields), (step.pass_name, options)
    assert set(DRIVER_FIELDS) <= set(fields)
    names = [stage.name for stage in STAGES]
    assert len(names) == len(set(names))


def test_every_registered_pass_has_its_filecheck_test():
    tests = {path.stem for path in (ROOT / "filecheck").rglob("*.mlir")}
    assert not set(PASSES) - tests, "passes without filecheck/**/<pass-name>.mlir"


def test_every_config_field_is_read_in_exactly_one_place():
    readers: dict[str, set[str]] = defaultdict(set)
    for stage in STAGES:
        for step in stage.steps:
            for name in step.fields_read():
                readers[name].add(f"pass {step.pass_name}")
    for name, stage in DRIVER_FIELDS.items():
        readers[name].add(f"driver stage {stage}")
    shared = {name: sorted(where) for name, where in readers.items() if len(where) > 1}
    assert not shared, shared
    # In the sources, the driver reads its own fields; pass fields reach passes only through
    # the pipeline builder.
    package = Path(aipuc.__file__).parent
    files_reading: dict[str, set[str]] = defaultdict(set)
    for path in package.rglob("*.py"):
        if path.name != "config.py":
            for name in re.findall(r"\bconfig\.(\w+)", path.read_text()):
                files_reading[name].add(path.name)
    for name in CompilerConfig.model_fields:
        expected = {"driver.py"} if name in DRIVER_FIELDS else set()
        assert files_reading.get(name, set()) == expected, (name, files_reading.get(name))


def test_fields_without_effect_are_what_nothing_reads():
    read = set(DRIVER_FIELDS) | set(fields_read_by_passes())
    assert set(fields_without_effect()) == set(CompilerConfig.model_fields) - read
    assert "use_sysdma" in fields_without_effect()
    for name in (
        "rewrite_dense_to_conv2d",
        "validate_operators",
        "apply_pword_padding",
        "softmax_neutral_value",
        "quantization_scheme",
        "enable_icr",
        "tiling_depth",
        "l1_constraint",
    ):
        assert name not in fields_without_effect()


@pytest.mark.parametrize("step", SWITCHES, ids=lambda step: step.enabled_by)
def test_each_switch_removes_exactly_its_pass(step):
    def run_names(config: CompilerConfig) -> list[str]:
        return [p.name for stage in STAGES for p in build_passes(stage, config)]

    on, off = run_names(CompilerConfig()), run_names(CompilerConfig(**{step.enabled_by: False}))
    assert step.pass_name in on and step.pass_name not in off
    assert [name for name in on if name != step.pass_name] == off


def test_options_come_from_the_config():
    config = CompilerConfig(quantization_scheme="per_tensor_min_max", remove_io_quantization=True)
    [quantize] = build_passes(stages(Phase.QUANTIZED)[0], config)
    assert (quantize.quantization_scheme, quantize.remove_io_quantization) == (
        "per_tensor_min_max",
        True,
    )


def test_pipeline_command_prints_xdsl_opt_pipelines(tmp_path, capsys):
    config = tmp_path / "cfg.toml"
    config.write_text('quantization_scheme = "per_tensor_min_max"\nvalidate_operators = false\n')
    assert (
        main(["pipeline", "--config", str(config), "--set", "rewrite_dense_to_conv2d=false"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    commands = [line for line in lines if line.startswith("xdsl-opt")]
    assert len(commands) == 3
    assert "-p 'simplify-mac-before-after-lut,apply-arithmetic-simplification'" in commands[0]
    assert commands[1].endswith(
        '-p \'axq-quantize{quantization_scheme="per_tensor_min_max" '
        "quantize_dw_channel_wise=false remove_io_quantization=false},"
        "apply-arithmetic-simplification,rewrite-concat-to-resadd,"
        "apply-pword-padding{softmax_neutral_value=-100000.0}'"
    )


# --------------------------------------------------------------------------- the driver


def test_the_driver_times_every_pass_in_the_stage_table(compiled):
    table = {row["stage"]: row for row in compiled.report["stages"]}
    expected = {  # the fixture quantizes only: the lowering stages do not run
        stage.name: [p.name for p in build_passes(stage, CompilerConfig())]
        for stage in STAGES
        if stage.phase != Phase.LOWERING
    }
    for name, passes in expected.items():
        assert [entry["pass"] for entry in table[name]["passes"]] == passes
        assert all(entry["seconds"] >= 0 for entry in table[name]["passes"])
    order = [row["stage"] for row in compiled.report["stages"]]
    assert order.index("rewrite") < order.index("calibrate") < order.index("quantize")


def test_the_pass_trace_has_one_entry_per_pass_under_its_stage(compiled):
    trace = json.loads((compiled.output_dir / "pass_dependency_graph.json").read_text())
    ran = [
        (stage.name, p.name)
        for stage in STAGES
        if stage.phase != Phase.LOWERING
        for p in build_passes(stage, CompilerConfig())
    ]
    assert [(entry["parent"], entry["name"]) for entry in trace["passes"]] == ran
    stage_names = {entry["name"] for entry in trace["stages"]}
    for entry in trace["passes"]:
        assert entry["parent"] in stage_names and entry["start"] <= entry["end"]
        assert entry["options"].startswith(entry["name"])
    ids = [entry["id"] for entry in trace["passes"]]
    assert trace["dependencies"] == [list(pair) for pair in zip(ids, ids[1:], strict=False)]


def _replay(command: str, source: Path, cwd: Path) -> str:
    """Run a printed `xdsl-opt ... -p '...'` command on `source`."""
    argv = shlex.split(command)
    assert argv[0] == "xdsl-opt"
    argv[0], argv[1] = str(XDSL_OPT), str(source)
    return subprocess.run(argv, capture_output=True, text=True, check=True, cwd=cwd).stdout


def _commands(config: CompilerConfig) -> list[str]:
    return [line for line in describe(config).splitlines() if line.startswith("xdsl-opt")]


def test_xdsl_opt_replays_the_driver_from_the_calibrated_ir(compiled, tmp_path):
    quantized = compiled.output_dir / "quantized_model"
    config = _config(tmp_path)
    replayed = _replay(_commands(config)[1], quantized / "calibrated.mlir", tmp_path)
    # The saved files keep their weights in .weights.npz files, which xdsl-opt reads; its
    # output has them inline. Parsed, both are the same module.
    assert module_text(_parse(replayed)) == module_text(load_module(quantized / "model.mlir"))


def test_xdsl_opt_replays_the_float_passes(compiled, showcase, tmp_path):
    config = _config(tmp_path)
    imported = import_float_graph(load_onnx(showcase, config), config)
    source = tmp_path / "float.mlir"
    source.write_text(module_text(imported.module))
    replayed = _parse(_replay(_commands(config)[0], source, tmp_path))
    calibrated = load_module(compiled.output_dir / "quantized_model/calibrated.mlir")
    strip_annotations(_main(calibrated))
    assert module_text(replayed) == module_text(calibrated)


def _parse(text: str) -> ModuleOp:
    return Parser(ir_context(), text).parse_module()


def _main(module: ModuleOp) -> func.FuncOp:
    return next(op for op in module.ops if isinstance(op, func.FuncOp))


# --------------------------------------------------------------------------- locations


def _unnamed_ops(module: ModuleOp) -> list[str]:
    return [
        op.name
        for op in module.walk()
        if not isinstance(op, (ModuleOp, func.FuncOp, func.ReturnOp))
        and not isinstance(op.location, NameLoc)
    ]


def test_onnx_names_survive_every_pass(showcase, showcase_samples):
    """propagate_span_information: after each pass, every op still has an ONNX name."""
    config = CompilerConfig(run_graph_cleaner=False)
    model = load_onnx(showcase, config)
    onnx_names = {node.name for node in model.graph.node}
    onnx_names |= {tensor.name for tensor in model.graph.initializer}
    onnx_names |= {value.name for value in model.graph.input}
    graph = import_float_graph(model, config)
    ctx = ir_context()

    def run_checked(phase: Phase, module: ModuleOp) -> None:
        for stage in stages(phase):
            for module_pass in build_passes(stage, config):
                module_pass.apply(ctx, module)
                assert not _unnamed_ops(module), (module_pass.name, _unnamed_ops(module))
                names = {
                    op.location.desc.data
                    for op in module.walk()
                    if isinstance(op.location, NameLoc)
                }
                assert names <= onnx_names, (module_pass.name, names - onnx_names)

    assert not _unnamed_ops(graph.module)
    run_checked(Phase.FLOAT, graph.module)
    module = graph.module.clone()
    annotate(module, calibrate(graph, showcase_samples))
    run_checked(Phase.QUANTIZED, module)


def test_without_span_information_no_op_carries_a_node_name(tmp_path, showcase, showcase_samples):
    """Only the quantization of the graph input is named, after the input (axq-quantize)."""
    config = _config(tmp_path, propagate_span_information=False)
    compiled = aipuc.compile(showcase, config, showcase_samples)
    text = (compiled.output_dir / "quantized_model/model.mlir").read_text()
    assert set(re.findall(r'loc\("([^"]*)"\)', text)) == {"x"}
