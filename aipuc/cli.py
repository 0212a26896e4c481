"""The `aipuc` command: compile, run, config, pipeline, example.

A user error prints one line, `aipuc: error: ...`, and exits non-zero; the traceback is
shown only with `--debug`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from aipuc import __version__
from aipuc.errors import AipucError, ConfigError, InputError, ModelError
from aipuc.progress import ProgressBars

BROKEN_PIPE_STATUS = 128 + 13  # SIGPIPE
EXAMPLE_MODEL = "resnet18"
EXAMPLE_SAMPLES = 8


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors, like every other aipuc error (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    # Subcommands accept --debug too; SUPPRESS keeps them from resetting the global flag.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logging",
    )

    def quiet_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-q", "--quiet", action="store_true", help="no progress bars (the summary stays)"
        )

    def config_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-c", "--config", type=Path, help="CompilerConfig file (.toml/.json)")
        parser.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one config field (repeatable)",
        )

    parser = _Parser(prog="aipuc", description="Compiler for the AIPU int8 edge accelerator.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--version", action="version", version=f"aipuc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_cmd = commands.add_parser("compile", parents=[common], help="compile an ONNX model")
    compile_cmd.add_argument(
        "model", help="ONNX file, its folder, or (lower_only) an output folder"
    )
    config_options(compile_cmd)
    compile_cmd.add_argument("-o", "--output-dir", type=Path, help="sets output_dir")
    calibration = compile_cmd.add_mutually_exclusive_group()
    calibration.add_argument(
        "--calibration", type=Path, help="folder of .npy/.npz calibration samples"
    )
    calibration.add_argument(
        "--synthetic-calibration",
        type=int,
        metavar="N",
        help="calibrate on N seeded random samples (no real data: "
        "for trying the compiler, not for deployment)",
    )
    compile_cmd.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="fix a dynamic input, e.g. input=1x3x224x224",
    )
    quiet_option(compile_cmd)

    run_cmd = commands.add_parser("run", parents=[common], help="run a compiled model on inputs")
    run_cmd.add_argument("output_dir", type=Path)
    run_cmd.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="[NAME=]FILE",
        help=".npy (for NAME, or the only input) or .npz keyed by input names",
    )
    run_cmd.add_argument(
        "--quantized",
        action="store_true",
        help="run the integer reference instead of the instruction stream",
    )
    run_cmd.add_argument("--save", type=Path, help="write the outputs to this .npz file")

    config_cmd = commands.add_parser("config", parents=[common], help="inspect configurations")
    config_actions = config_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_actions.add_parser("schema", parents=[common], help="print the JSON Schema")
    show = config_actions.add_parser("show", parents=[common], help="print the effective config")
    config_options(show)
    check = config_actions.add_parser("check", parents=[common], help="validate a config file")
    check.add_argument("file", type=Path)

    pipeline = commands.add_parser(
        "pipeline", parents=[common], help="print the pass pipeline as xdsl-opt commands"
    )
    config_options(pipeline)

    example = commands.add_parser(
        "example", parents=[common], help="compile a built-in model on synthetic data"
    )
    example.add_argument("--model", default=EXAMPLE_MODEL, help=f"zoo model ({EXAMPLE_MODEL})")
    example.add_argument(
        "--samples", type=int, default=EXAMPLE_SAMPLES, help="synthetic calibration samples"
    )
    config_options(example)
    example.add_argument("-o", "--output-dir", type=Path, help="sets output_dir")
    quiet_option(example)
    return parser


def _load_config(args: argparse.Namespace, output_dir: Path | None = None):
    from aipuc.config import CompilerConfig

    config = CompilerConfig.load(args.config) if args.config else CompilerConfig()
    overrides = list(args.overrides)
    if output_dir is not None:
        overrides.append(f"output_dir={json.dumps(str(output_dir))}")
    return config.with_overrides(overrides) if overrides else config


def _parse_shapes(specs: Sequence[str]) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            shapes[name] = [int(d) for d in dims.lower().split("x")]
        except ValueError:
            name = ""
        if not name or not shapes.get(name) or min(shapes[name]) < 1:
            raise ConfigError(
                f"--input-shape '{spec}' is not NAME=DIMS with positive dims, "
                "e.g. input=1x3x224x224"
            )
    return shapes


@contextlib.contextmanager
def _progress(args: argparse.Namespace) -> Iterator[ProgressBars | None]:
    """Progress bars on stderr for a compilation, unless --quiet."""
    if args.quiet:
        yield None
        return
    bars = ProgressBars()
    try:
        yield bars
    finally:
        bars.close()


def format_report(report: dict[str, Any]) -> str:
    """The human summary of compilation_report.json."""
    lines = [
        f"model      {report.get('model_name')}   (compiler_mode "
        f"{report.get('compiler_mode')}, status {report.get('status')})"
    ]
    model = report.get("model", {})
    for entry in model.get("inputs", []):
        lines.append(f"input      {entry['name']}: {entry['dtype']}{entry['shape']}")
    for entry in model.get("outputs", []):
        lines.append(f"output     {entry['name']}: {entry['dtype']}{entry['shape']}")
    lines.append("stages")
    for stage in report.get("stages", []):
        extra = {
            k: v for k, v in stage.items() if k not in ("stage", "status", "seconds", "passes")
        }
        detail = "  " + json.dumps(extra) if extra else ""
        lines.append(
            f"  {stage['stage']:<10} {stage['status']:<10} {stage['seconds']:>8.2f} s{detail}"
        )
        for run in stage.get("passes", []):
            lines.append(f"    {run['pass']:<33} {run['seconds']:>8.3f} s")
    placement = report.get("placement")
    if placement:
        from aipuc.placement import placement_summary, placement_warning

        lines.append(placement_summary(placement))
        warning = placement_warning(placement)
        if warning:
            lines.append(warning)
    quant = report.get("quantization")
    if quant and quant.get("output_sqnr_db"):
        sqnr = ", ".join(f"{k} {v:.1f} dB" for k, v in quant["output_sqnr_db"].items())
        lines.append(
            f"int8 vs float32 output SQNR ({quant['scheme']}, whole model, "
            f"{quant['output_sqnr_held_out_samples']} held-out of "
            f"{quant['calibration_samples'] + quant['output_sqnr_held_out_samples']} samples): "
            f"{sqnr}"
        )
    elif quant and "output_sqnr_method" in quant:
        lines.append(f"output SQNR {quant['output_sqnr_method']}")
    for name in report.get("fields_without_effect", []):
        lines.append(f"warning: {name} has no effect yet (no built stage reads it)")
    lowering = report.get("lowering")
    if lowering:
        tasks = ", ".join(f"{count} {unit}" for unit, count in lowering["tasks"].items())
        lines.append(
            f"lowered    {lowering['segments']} segment(s), {lowering['records']} instruction "
            f"records; tasks: {tasks}"
        )
        for pool, entry in lowering["memory"].items():
            if entry["peak"]:
                lines.append(
                    f"memory     {pool:<9} peak {entry['peak']:>11,} B  (lower bound "
                    f"{entry['lower_bound']:,} B, capacity {entry['capacity']:,} B)"
                )
    performance = report.get("performance")
    if performance:
        lines.append(_performance_line(performance))
    return "\n".join(lines)


def _performance_line(p: dict[str, Any]) -> str:
    """The cycle model's figures in one line (modelled, not measured)."""
    mvm, roofline = p["mvm"], p["roofline"]
    if not p["cycles"]:
        return "modelled   no device records (every op runs on the host)"
    utilization = "n/a" if mvm["utilization"] is None else f"{mvm['utilization']:.1%}"
    return (
        f"modelled   {p['cycles']:,} cycles, {p['latency_ms']:.3f} ms at "
        f"{p['frequency_hz'] / 1e6:g} MHz ({p['fps']:,.0f} FPS, sequential, one core); "
        f"MVM utilization {utilization}; {roofline['ratio']}x the {roofline['bound']} "
        "roofline"
    )


def _compile(args: argparse.Namespace) -> int:
    from aipuc.driver import compile_model

    config = _load_config(args, args.output_dir)
    shapes = _parse_shapes(args.input_shape)
    calibration: Any = args.calibration
    if args.synthetic_calibration is not None:
        calibration = _synthetic_calibration(args.model, config, args.synthetic_calibration, shapes)
    with _progress(args) as progress:
        compiled = compile_model(
            args.model, config, calibration, input_shapes=shapes or None, progress=progress
        )
    print(format_report(compiled.report))
    print(f"outputs in {compiled.output_dir}")
    return 0


def _synthetic_calibration(model: str, config, count: int, shapes: dict[str, list[int]]):
    from aipuc.driver import load_onnx
    from aipuc.models import sample_inputs

    if count < 1:
        raise ConfigError("--synthetic-calibration needs at least 1 sample")
    onnx_model = load_onnx(model, config, input_shapes=shapes or None)
    print(f"calibrating on {count} seeded synthetic samples (not real data)")
    return [sample_inputs(onnx_model, seed=seed) for seed in range(count)]


def _example(args: argparse.Namespace) -> int:
    from aipuc.driver import compile_model
    from aipuc.models import build_model, sample_inputs

    if args.samples < 1:
        raise ConfigError("--samples needs at least 1 sample")
    config = _load_config(args, args.output_dir)
    model = build_model(args.model)
    print(
        f"aipuc example: built-in {args.model} (seeded random weights, built in code); "
        f"calibrating on {args.samples} seeded synthetic samples, not real data"
    )
    samples = [sample_inputs(model, seed=seed) for seed in range(args.samples)]
    with _progress(args) as progress:
        compiled = compile_model(model, config, samples, progress=progress)
    print(format_report(compiled.report))
    print(f"outputs in {compiled.output_dir}")
    return 0


def _read_inputs(specs: Sequence[str]) -> dict[str, np.ndarray]:
    from aipuc.quantization.calibration import read_array_file

    inputs: dict[str, np.ndarray] = {}
    for spec in specs:
        name, _, file = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(file)
        try:
            loaded = read_array_file(path)
        except ValueError as error:
            raise InputError(f"--input '{spec}': cannot read {path}: {error}") from None
        if isinstance(loaded, dict):
            inputs.update(loaded)
        else:
            inputs[name or ""] = loaded
    return inputs


def _run(args: argparse.Namespace) -> int:
    from aipuc.compiled import CompiledModel

    compiled = CompiledModel.load(args.output_dir)
    if not args.quantized and not compiled.has_instruction_stream:
        raise ModelError(
            f"'{args.output_dir}' holds no instruction stream (compiler_mode "
            f"{compiled.report.get('compiler_mode')}); compile it again with "
            "--set compiler_mode=quantize_and_lower, or add --quantized to run the integer "
            "reference"
        )
    inputs = _read_inputs(args.input)
    expected = compiled.input_names
    if "" in inputs:
        if len(expected) != 1:
            raise InputError(
                f"the model has inputs {', '.join(expected)}: name them as --input NAME=FILE.npy"
            )
        inputs[expected[0]] = inputs.pop("")
    results = compiled.run_quantized(inputs) if args.quantized else compiled.run(inputs)
    for name, value in results.items():
        print(
            f"{name}: {value.dtype}{list(value.shape)} min {value.min():.6g} "
            f"max {value.max():.6g} mean {value.mean():.6g}"
        )
    if args.save:
        try:
            with open(args.save, "wb") as file:  # exactly this name: np.savez adds .npz
                np.savez(file, **results)
        except OSError as error:
            raise ConfigError(f"--save {args.save}: cannot write it: {error.strerror}") from None
        print(f"saved {args.save}")
    return 0


def _config(args: argparse.Namespace) -> int:
    from aipuc.config import CompilerConfig

    if args.action == "schema":
        print(json.dumps(CompilerConfig.json_schema(), indent=2))
    elif args.action == "show":
        print(_load_config(args).show(), end="")
    else:
        CompilerConfig.load(args.file)
        print(f"{args.file}: valid")
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from aipuc.pipeline import describe

    print(describe(_load_config(args)))
    return 0


COMMANDS = {
    "compile": _compile,
    "run": _run,
    "config": _config,
    "pipeline": _pipeline,
    "example": _example,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s"
    )
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away (`aipuc config schema | head`): stop quietly, as Unix tools
        # do, with the status of a process ended by SIGPIPE. Output still buffered goes
        # nowhere, so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except AipucError as error:
        if args.debug:
            raise
        print(f"aipuc: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("aipuc: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a compiler bug: still one line unless --debug
        if args.debug:
            raise
        print(
            f"aipuc: internal error: {type(error).__name__}: {error} "
            "(rerun with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
