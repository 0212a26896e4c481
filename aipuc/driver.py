"""The compilation driver: runs the pipeline stages a CompilerConfig asks for.

The driver reads the tooling, frontend and reporting fields of the config itself
(`DRIVER_FIELDS`); the pass stages come from the one pipeline builder (`aipuc.pipeline`),
which hands every other field to the pass that reads it. Calibration runs between the
float passes and quantization. Stages write into a staging folder that is committed at the
end, so a failed compilation never leaves half-written outputs (see `aipuc.outputs`).

The pipeline is built up to quantization and legalization; lowering to the instruction
stream is reported as not built yet, plainly, in the report and on the command line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import traceback
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from aipuc import outputs
from aipuc.compiled import CompiledModel, io_manifest
from aipuc.config import CompilerConfig, CompilerMode
from aipuc.errors import AipucError, CompilationError, ConfigError, ModelError
from aipuc.graph import Graph
from aipuc.pipeline import PassRun, Phase
from aipuc.progress import ProgressCallback, each, step, track

logger = logging.getLogger("aipuc")


DEFAULT_OUTPUT_DIR = Path("aipuc-out")
NOT_BUILT = "not_built"

DRIVER_FIELDS: dict[str, str] = {
    "output_dir": "driver",
    "remove_output_dir": "driver",
    "model_name": "driver",
    "compiler_mode": "driver",
    "trace_tvm_passes": "driver",
    "save_error_artifact": "driver",
    "randomize_onnx_model": "driver",
    "frequency": "emit",
    "onnx_opset_version": "load",
    "run_graph_cleaner": "clean",
    "graph_cleaner_split_pre_post_processing": "clean",
    "graph_cleaner_condition": "clean",
    "graph_cleaner_node": "clean",
    "graph_cleaner_threshold": "clean",
    "graph_cleaner_dump_core_onnx": "clean",
    "graph_cleaner_dump_full_opt_onnx": "clean",
    "remove_layout_transform_from_preamble": "clean",
    "propagate_span_information": "import",
    "quantization_debug": "evaluate",
    "model_debug_save_dir": "evaluate",
    "quantized_graph_export": "evaluate",
    "stream_tasklist": "emit",
    "elf_in_ddr": "emit",
}
"""Config fields the driver reads itself -> the stage that reads them. The passes read the
others (`pipeline.fields_read_by_passes`); a field neither reads has no effect yet."""


def fields_without_effect() -> list[str]:
    """Config fields that no built stage reads (their stage is not built yet)."""
    from aipuc.pipeline import fields_read_by_passes

    read = set(DRIVER_FIELDS) | set(fields_read_by_passes())
    return [name for name in CompilerConfig.model_fields if name not in read]


@dataclass
class StageRecord:
    name: str
    status: str = "running"
    seconds: float = 0.0
    start: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Compilation:
    """State shared by the stages of one compilation: config, staging folder, log, report."""

    config: CompilerConfig
    staged: outputs.StagedOutput
    model_name: str
    stages: list[StageRecord] = field(default_factory=list)
    pass_runs: list[PassRun] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    progress: ProgressCallback | None = None
    core: Any = None
    """The quantized core `Graph`, handed to the `CompiledModel` so that its first run does
    not read `model.mlir` back."""

    def log(self, message: str) -> None:
        logger.info(message)
        self.log_lines.append(f"[{time.strftime('%H:%M:%S')}] {message}")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        record = StageRecord(name, start=time.time())
        self.stages.append(record)
        self.log(f"stage {name}: start")
        started = time.perf_counter()
        try:
            with step(self.progress, name):
                yield record
        except AipucError as error:
            record.status = "error"
            if "stage" not in vars(error):  # no explicit stage: it failed in this one
                error.stage = name
            raise
        except Exception as error:  # a compiler bug: keep the stage, wrap for the report
            record.status = "error"
            raise CompilationError(
                f"internal error in stage '{name}': {type(error).__name__}: {error} "
                "(please report it with compilation_log.txt)",
                stage=name,
            ) from error
        finally:
            record.seconds = time.perf_counter() - started
        record.status = "ok"
        self.log(f"stage {name}: ok in {record.seconds:.2f} s")

    def stage_table(self) -> list[dict[str, Any]]:
        return [
            {"stage": s.name, "status": s.status, "seconds": round(s.seconds, 4), **s.detail}
            for s in self.stages
        ]


def _checked_config(config: object) -> CompilerConfig:
    """The config to use; a dict or a path in its place is a clear error, not a crash later."""
    if config is None:
        return CompilerConfig()
    if not isinstance(config, CompilerConfig):
        raise ConfigError(
            f"config is a {type(config).__name__}, not a CompilerConfig; build one "
            "with CompilerConfig(field=value, ...) or CompilerConfig.load(path)"
        )
    return config


def resolve_output_dir(config: CompilerConfig, model_name: str) -> Path:
    """output_dir, else aipuc-out/<model_name>; a model name never leads out of aipuc-out."""
    if config.output_dir:
        return Path(config.output_dir)
    return outputs.inside(DEFAULT_OUTPUT_DIR, model_name, "model_name")


def _model_name(config: CompilerConfig, model: object) -> str:
    if config.model_name:
        return config.model_name
    if isinstance(model, (str, Path)):
        return _folder_name(Path(model).stem)
    if isinstance(model, onnx.ModelProto) and model.graph.name:
        return _folder_name(model.graph.name)
    return "model"


def _folder_name(name: str) -> str:
    """A name taken from the model made safe as one folder name (a graph name is untrusted)."""
    return re.sub(r"[^\w.-]+", "_", name).lstrip(".") or "model"


def _refuse_to_remove_inputs(output_dir: Path, model: object, calibration: object) -> None:
    """remove_output_dir must not delete what the compilation reads, nor the working folder."""
    root = output_dir.resolve()
    for what, path in (
        ("the model", model),
        ("the calibration data", calibration),
        ("the current directory", Path.cwd()),
    ):
        if isinstance(path, (str, Path)) and Path(path).resolve().is_relative_to(root):
            raise ConfigError(
                f"remove_output_dir would delete output_dir '{output_dir}', which "
                f"holds {what} ('{path}'); choose another output_dir"
            )


def compile_model(
    model: object,
    config: CompilerConfig | None = None,
    calibration: object = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    example_input: object = None,
    progress: ProgressCallback | None = None,
):
    """Compile `model` as `config` says; returns the `CompiledModel` of the output folder."""
    config = _checked_config(config)
    model_name = _model_name(config, model)
    output_dir = resolve_output_dir(config, model_name)
    if config.remove_output_dir:
        _refuse_to_remove_inputs(output_dir, model, calibration)
    staged = outputs.StagedOutput(output_dir, clean=config.remove_output_dir)
    compilation = Compilation(config, staged, model_name, progress=progress)
    compilation.log(
        f"aipuc compiling '{model_name}' into {output_dir} (compiler_mode={config.compiler_mode})"
    )
    _report_fields_without_effect(compilation)
    started = time.perf_counter()
    try:
        if config.compiler_mode == CompilerMode.LOWER_ONLY:
            _lower_only(compilation, model)
        else:
            module = _quantize(
                compilation, model, calibration, input_shapes, example_input, progress
            )
            if config.compiler_mode == CompilerMode.QUANTIZE_AND_LOWER:
                _lower(compilation, module)
        compilation.report["status"] = "ok"
    except AipucError as error:
        compilation.log(f"error in stage {error.stage}: {error}")
        compilation.log_lines.append(traceback.format_exc())
        _complete_report(compilation, time.perf_counter() - started, error=error)
        staged.discard()
        _write_failure(compilation, model, error)
        raise
    except BaseException:
        staged.discard()
        raise
    _complete_report(compilation, time.perf_counter() - started)
    _write_results(compilation)
    staged.commit()
    return CompiledModel.load(output_dir, core=compilation.core)


# --------------------------------------------------------------------------- stages


def load_onnx(
    model: object,
    config: CompilerConfig,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    example_input: object = None,
) -> onnx.ModelProto:
    """The model as a checked, shape-inferred ModelProto at the configured opset."""
    from aipuc.frontend.loader import load_model

    config = _checked_config(config)
    return load_model(
        model,
        input_shapes=input_shapes,
        opset=config.onnx_opset_version,
        example_input=example_input,
    )


def import_float_graph(onnx_model: onnx.ModelProto, config: CompilerConfig):
    """The axq float graph of `onnx_model`, node names as locations when configured."""
    return import_with_placement(onnx_model, config)[0]


def import_with_placement(onnx_model: onnx.ModelProto, config: CompilerConfig):
    """`import_float_graph` and where each node of `onnx_model` runs.

    Without the graph cleaner nothing is placed on the host that has an axq form: the
    accelerated core is the model as given, and `validate-operators` reports what the
    AIPU cannot run."""
    from aipuc.frontend.onnx_import import import_with_placement as import_placed

    return import_placed(
        onnx_model,
        propagate_span_information=config.propagate_span_information,
        follow_support=config.run_graph_cleaner,
    )


def _quantize(
    compilation: Compilation, model, calibration, input_shapes, example_input, progress
) -> ModuleOp:
    """Load, clean, import, rewrite, calibrate, quantize and legalize: the final axq IR."""
    from aipuc.frontend.graph_cleaner import clean_graph

    config, staged = compilation.config, compilation.staged

    with compilation.stage("load"):
        onnx_model = load_onnx(
            model, config, input_shapes=input_shapes, example_input=example_input
        )
        onnx.save(onnx_model, staged.path(outputs.INPUT_MODEL, "model.onnx"))
        compilation.report["model"] = _io_description(onnx_model)

    with compilation.stage("clean") as record:
        if config.run_graph_cleaner:
            cleaned = clean_graph(
                onnx_model,
                split_pre_post_processing=config.graph_cleaner_split_pre_post_processing,
                condition=config.graph_cleaner_condition,
                node_type=config.graph_cleaner_node,
                threshold=config.graph_cleaner_threshold,
                remove_layout_transform_from_preamble=config.remove_layout_transform_from_preamble,
                dump_core_onnx=_optional_inside(
                    staged, config.graph_cleaner_dump_core_onnx, "graph_cleaner_dump_core_onnx"
                ),
                dump_full_opt_onnx=_optional_inside(
                    staged,
                    config.graph_cleaner_dump_full_opt_onnx,
                    "graph_cleaner_dump_full_opt_onnx",
                ),
            )
            preamble, core, postamble = cleaned.preamble, cleaned.core, cleaned.postamble
        else:
            cleaned = None
            preamble, core, postamble = None, onnx_model, None
        if core is None:
            raise ModelError(
                "no operator of the model can run on the accelerator: the graph "
                "cleaner moved every node to the host (see compilation_log.txt)",
                stage="clean",
            )
        for part_name, part in (("preamble", preamble), ("core", core), ("postamble", postamble)):
            if part is not None:
                onnx.save(part, staged.path(outputs.INPUT_MODEL, f"{part_name}.onnx"))
        record.detail["nodes"] = {
            name: len(part.graph.node) if part is not None else 0
            for name, part in (("preamble", preamble), ("core", core), ("postamble", postamble))
        }

    with compilation.stage("import") as record:
        float_graph, core_placements = import_with_placement(core, config)
        record.detail["ops"] = _op_count(float_graph.module)
        _report_placement(compilation, cleaned, core_placements, float_graph)

    _run_pass_stages(compilation, Phase.FLOAT, float_graph.module)
    module, stats, samples, held_out = _calibrate(
        compilation, float_graph, onnx_model, preamble, calibration, progress
    )
    _run_pass_stages(compilation, Phase.QUANTIZED, module)
    whole_model = (onnx_model, preamble, postamble)
    _evaluate(compilation, float_graph, Graph(module), stats, samples, whole_model, held_out)
    return module


def _run_pass_stages(compilation: Compilation, phase: Phase, module: ModuleOp) -> None:
    """Every pass stage of `phase` on `module`, in place, each pass timed and verified."""
    from aipuc.ir_files import ir_context
    from aipuc.pipeline import run_stage, stages

    ctx = ir_context()
    for stage in stages(phase):
        with compilation.stage(stage.name) as record:
            runs = run_stage(stage, compilation.config, ctx, module)
            record.detail["passes"] = [
                {"pass": run.name, "seconds": round(run.seconds, 4)} for run in runs
            ]
            record.detail["ops"] = _op_count(module)
            if plans := sum(run.name == "mem-plan" for run in runs):
                record.detail["memplan_attempts"] = plans
            if plans > 1:
                compilation.log(_replanned(module, plans))
            compilation.pass_runs += runs


def _calibrate(compilation: Compilation, float_graph, onnx_model, preamble, calibration, progress):
    """Calibrate the rewritten float graph; the calibrated copy that quantization starts from."""
    from aipuc.evaluation import split_held_out
    from aipuc.ir_files import save_calibrated_model
    from aipuc.quantization.calibration import annotate, calibrate, load_calibration
    from aipuc.runtime.host import HostRunner

    with compilation.stage("calibrate") as record:
        samples, held_out = split_held_out(load_calibration(calibration, _full_inputs(onnx_model)))
        if preamble is not None:
            runner = HostRunner(preamble)
            samples = [{**sample, **runner.run(sample)} for sample in samples]
        samples = [_select(sample, float_graph.inputs) for sample in samples]
        compilation.log(f"calibrating with {len(samples)} sample(s)")
        record.detail["calibration_samples"] = len(samples)
        stats = calibrate(float_graph, samples, each(progress, "calibrate"))
        with step(progress, "write quantized_model/calibrated.mlir"):
            save_calibrated_model(
                compilation.staged.path(outputs.QUANTIZED_MODEL), float_graph.module, stats
            )
        module = float_graph.module.clone()
        annotate(module, stats)
    return module, stats, samples, held_out


def _quantize_options(compilation: Compilation) -> dict[str, Any]:
    """The options axq-quantize ran with."""
    for run in compilation.pass_runs:
        if run.name == "axq-quantize":
            return {f.name: getattr(run.module_pass, f.name) for f in fields(run.module_pass)}
    raise CompilationError("the pipeline has no axq-quantize pass")


def _evaluate(
    compilation: Compilation, float_graph, quant_graph, stats, samples, whole_model, held_out
) -> None:
    """Write quantized_model/ and measure the whole model, int8 core and host parts
    (`whole_model` = model, preamble, postamble), against float on `held_out` samples."""
    from aipuc.evaluation import sqnr_description, whole_model_sqnr
    from aipuc.ir_files import save_quantized_model
    from aipuc.quantization.artifacts import export_quantized_graph, quantization_debug_report

    config, staged = compilation.config, compilation.staged
    with compilation.stage("evaluate") as record:
        quantized_dir = staged.path(outputs.QUANTIZED_MODEL)
        with step(compilation.progress, "write quantized_model/"):
            save_quantized_model(quantized_dir, quant_graph.module, stats)
        compilation.core = quant_graph
        if config.quantized_graph_export:
            staged.write_json(
                export_quantized_graph(quant_graph.module),
                outputs.QUANTIZED_MODEL,
                "quantized_graph.json",
            )
        started = time.perf_counter()
        model, preamble, postamble = whole_model
        accuracy = whole_model_sqnr(
            model, preamble, quant_graph, postamble, track(compilation.progress, "SQNR", held_out)
        )
        record.detail["output_sqnr_db"] = accuracy
        record.detail["sqnr_seconds"] = round(time.perf_counter() - started, 4)
        options = _quantize_options(compilation)
        compilation.report["quantization"] = {
            "scheme": options["quantization_scheme"],
            "calibration_samples": len(samples),
            "output_sqnr_db": accuracy,
            "output_sqnr_held_out_samples": len(held_out),
            "output_sqnr_method": sqnr_description(len(held_out)),
            "remove_io_quantization": options["remove_io_quantization"],
        }
        if config.quantization_debug:
            debug_dir = _optional_inside(
                staged, config.model_debug_save_dir or "quantization_debug", "model_debug_save_dir"
            )
            table = quantization_debug_report(float_graph, quant_graph, samples[:1], debug_dir)
            compilation.report["quantization"]["debug_dir"] = str(
                Path(debug_dir).relative_to(staged.root)
            )
            compilation.report["quantization"]["worst_layers"] = sorted(
                table, key=lambda row: row["sqnr_db"]
            )[:5]
        staged.write_json(
            io_manifest(quant_graph.module), outputs.QUANTIZED_MODEL, outputs.MANIFEST_FILE
        )


def _report_placement(compilation: Compilation, cleaned, core_placements, float_graph) -> None:
    """compilation_report.json's `placement`, over the host parts and the core."""
    from aipuc.frontend.support import tensor_shapes
    from aipuc.placement import (
        accelerated_segment_count,
        host_part_placements,
        placement_report,
        placement_summary,
        placement_warning,
    )

    nodes = list(core_placements)
    if cleaned is not None:
        shapes = tensor_shapes(cleaned.full.graph)
        reasons = cleaned.host_reasons
        nodes = [
            *host_part_placements(cleaned.preamble, "preamble", reasons, shapes),
            *nodes,
            *host_part_placements(cleaned.postamble, "postamble", reasons, shapes),
        ]
    placement = placement_report(nodes, accelerated_segment_count(float_graph.main))
    compilation.report["placement"] = placement
    compilation.log(placement_summary(placement))
    for node in placement["host_nodes"]:
        compilation.log(
            f"host node: {node['name']} ({node['op_type']}, {node['part']}): {node['reason']}"
        )
    warning = placement_warning(placement)
    if warning:
        compilation.log(warning)


def _lower_only(compilation: Compilation, model) -> None:
    from aipuc.ir_files import load_quantized_model

    with compilation.stage("load"):
        source = Path(model) if isinstance(model, (str, Path)) else None
        if source is None or not source.is_dir():
            raise ConfigError(
                "compiler_mode 'lower_only' needs the output folder of a 'quantize_only' "
                f"run (holding {outputs.QUANTIZED_MODEL}/), got {model!r}"
            )
        quantized_dir = source / outputs.QUANTIZED_MODEL
        if not (quantized_dir / outputs.QUANTIZED_IR).is_file():
            raise ConfigError(
                f"compiler_mode 'lower_only': '{source}' holds no "
                f"{outputs.QUANTIZED_MODEL}/{outputs.QUANTIZED_IR}; run with "
                "compiler_mode=quantize_only first"
            )
        graph = compilation.core = load_quantized_model(quantized_dir)
        for entry in (outputs.INPUT_MODEL, outputs.QUANTIZED_MODEL):
            if (source / entry).is_dir():
                _copy_tree(source / entry, compilation.staged.path(entry))
        compilation.report["quantization"] = {"loaded_from": str(quantized_dir)}
        compilation.report["model"] = _source_model_io(source) or io_manifest(graph.module)
    _lower(compilation, graph.module)


def _source_model_io(source: Path) -> dict[str, Any] | None:
    """The model's inputs and outputs as the quantize_only run reported them (with a host
    preamble or postamble they differ from the core's)."""
    try:
        model = json.loads((source / outputs.REPORT_FILE).read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return None
    return model if isinstance(model, dict) else None


def _lower(compilation: Compilation, module: ModuleOp) -> None:
    """The lowering stages on the final axq IR, then the device program and its files."""
    from aipuc.lowering import stage
    from aipuc.lowering.emit_elf import EmitOptions

    config = compilation.config
    module = module.clone()  # the quantized graph stays the core's integer reference
    _run_pass_stages(compilation, Phase.LOWERING, module)
    with compilation.stage("emit") as record:
        staged = compilation.staged
        options = EmitOptions(stream_tasklist=config.stream_tasklist, elf_in_ddr=config.elf_in_ddr)
        artifact = stage.emit(module, options)
        stage.write(
            module,
            artifact,
            staged.path(outputs.LOWERED),
            staged.path(outputs.COMPILED_MODEL),
            lambda data, path: outputs.write_json_file(path, data),
            host_parts=staged.path(outputs.INPUT_MODEL),
            model_io=compilation.report["model"],
            config=config,
        )
        compilation.report["lowering"] = stage.summary(module, artifact)
        record.detail["records"] = artifact.emitted.records
        compilation.report["performance"] = stage.performance(artifact, config.frequency)


# --------------------------------------------------------------------------- helpers


def _replanned(module: ModuleOp, plans: int) -> str:
    """The log line of a lowering whose L1 plan failed and ran again (`run_stage`)."""
    from aipuc.lowering.mem_promote import promotion_record

    entry = promotion_record(module)
    assert entry is not None  # a plan ran again only with a headroom, which records it
    return (
        f"L1 memory plan fitted at attempt {plans} (max_memplan_attempts): promotion sent "
        f"{entry['demoted']} tensor(s) ({entry['demoted_bytes']} bytes) back out of L1 to "
        f"leave {entry['l1_headroom']} bytes of headroom for the placement"
    )


def _op_count(module: ModuleOp) -> int:
    """Operations inside the module's functions (the stage table's size of the IR)."""
    return sum(1 for op in module.walk() if not isinstance(op, (ModuleOp, func.FuncOp)))


def _report_fields_without_effect(compilation: Compilation) -> None:
    config = compilation.config
    without_effect = [
        name
        for name in fields_without_effect()
        if getattr(config, name) != type(config).model_fields[name].default
    ]
    for name in without_effect:
        compilation.log(f"warning: {name} has no effect yet: no built stage reads it")
    if without_effect:
        compilation.report["fields_without_effect"] = without_effect


def _complete_report(
    compilation: Compilation, seconds: float, error: AipucError | None = None
) -> None:
    config = compilation.config
    report = compilation.report
    report.update(
        {
            "model_name": compilation.model_name,
            "compiler_mode": str(config.compiler_mode),
            "status": "error" if error else report.get("status", "ok"),
            "stages": compilation.stage_table(),
            "seconds": round(seconds, 3),
            "last_stage_built": _last_completed(compilation),
        }
    )
    if error is not None:
        report["error"] = {
            "stage": error.stage,
            "code": f"E_{error.stage.upper()}",
            "message": str(error),
        }


def _write_results(compilation: Compilation) -> None:
    """The final config, report, log and pass trace of a successful run, into staging."""
    config, staged = compilation.config, compilation.staged
    staged.write_json(config.model_dump(mode="json"), "compiler_config_final.json")
    staged.write_json(compilation.report, outputs.REPORT_FILE)
    staged.path(outputs.LOG_FILE).write_text("\n".join(compilation.log_lines) + "\n")
    if config.trace_tvm_passes:
        staged.write_json(_pass_trace(compilation), "pass_dependency_graph.json")


def _last_completed(compilation: Compilation) -> str | None:
    done = [s.name for s in compilation.stages if s.status == "ok"]
    return done[-1] if done else None


def _pass_trace(compilation: Compilation) -> dict[str, Any]:
    """pass_dependency_graph.json: the stages under the compilation, each pass under its stage.

    Passes are in run order; `id` tells apart a pass that runs in several stages.
    """
    from aipuc.pipeline import spec

    stages = [
        {
            "name": s.name,
            "status": s.status,
            "start": s.start,
            "end": s.start + s.seconds,
            "parent": "compile",
        }
        for s in compilation.stages
    ]
    passes = [
        {
            "id": f"{run.stage}/{run.name}",
            "name": run.name,
            "options": spec(run.module_pass),
            "start": run.start,
            "end": run.end,
            "parent": run.stage,
            "opt_level": 0,
        }
        for run in compilation.pass_runs
    ]
    edges = [[a["id"], b["id"]] for a, b in zip(passes, passes[1:], strict=False)]
    return {"root": "compile", "stages": stages, "passes": passes, "dependencies": edges}


def _write_failure(compilation: Compilation, model: object, error: AipucError) -> None:
    """A failed run leaves only complete report and log files (and the error artifact)."""
    output_dir = compilation.staged.output_dir
    outputs.write_json_file(output_dir / outputs.REPORT_FILE, compilation.report)
    (output_dir / outputs.LOG_FILE).write_text("\n".join(compilation.log_lines) + "\n")
    if compilation.config.save_error_artifact:
        _save_error_artifact(compilation, model, output_dir / "error_artifact.zip")


def _save_error_artifact(compilation: Compilation, model: object, target: Path) -> None:
    """Archive the report, the log and the input model (weights randomised if asked)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(outputs.REPORT_FILE, json.dumps(compilation.report, indent=2, default=str))
        archive.writestr(outputs.LOG_FILE, "\n".join(compilation.log_lines))
        onnx_model = _as_onnx(model)
        if onnx_model is not None:
            if compilation.config.randomize_onnx_model:
                onnx_model = _randomized(onnx_model)
            archive.writestr("model.onnx", onnx_model.SerializeToString())


def _as_onnx(model: object) -> onnx.ModelProto | None:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, Path)) and Path(model).is_file():
        with contextlib.suppress(Exception):
            return onnx.load(str(model), load_external_data=False)
    return None


def _randomized(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose float initializers hold seeded noise of the same shape and scale."""
    randomized = onnx.ModelProto()
    randomized.CopyFrom(model)
    rng = np.random.default_rng(0)
    for tensor in randomized.graph.initializer:
        if (
            tensor.data_type
            in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
            and not tensor.external_data
        ):
            values = onnx.numpy_helper.to_array(tensor)
            noise = rng.standard_normal(values.shape) * (float(np.std(values)) or 1.0)
            tensor.CopyFrom(onnx.numpy_helper.from_array(noise.astype(values.dtype), tensor.name))
    return randomized


def _optional_inside(staged: outputs.StagedOutput, relative: str | None, what: str):
    if relative is None:
        return None
    target = outputs.inside(staged.output_dir, relative, what)
    return staged.root / target.relative_to(staged.output_dir)


def _copy_tree(source: Path, destination: Path) -> None:
    import shutil

    shutil.copytree(source, destination, dirs_exist_ok=True, symlinks=False)


TensorSpecs = dict[str, tuple[tuple[int, ...], np.dtype]]


def _tensor_specs(values: Iterable[onnx.ValueInfoProto]) -> TensorSpecs:
    """name -> (static shape, NumPy dtype) of loaded tensors (names are unique)."""
    return {
        v.name: (
            tuple(d.dim_value for d in v.type.tensor_type.shape.dim),
            onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type),
        )
        for v in values
    }


def _io_description(model: onnx.ModelProto) -> dict[str, Any]:
    def describe(specs: TensorSpecs) -> list[dict[str, Any]]:
        return [
            {"name": name, "shape": list(shape), "dtype": dtype.name}
            for name, (shape, dtype) in specs.items()
        ]

    return {
        "inputs": describe(_full_inputs(model)),
        "outputs": describe(_tensor_specs(model.graph.output)),
        "nodes": len(model.graph.node),
    }


def _full_inputs(model: onnx.ModelProto) -> TensorSpecs:
    initializers = {t.name for t in model.graph.initializer}
    return _tensor_specs(v for v in model.graph.input if v.name not in initializers)


def _select(values: Mapping[str, np.ndarray], wanted: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {name: values[name] for name in wanted}
