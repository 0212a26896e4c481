"""IR files: the text form of the modules a compilation saves, and reading them back.

`save_module` / `load_module` write and read any module of the project's dialects (with op
locations, so ONNX node names survive); `xdsl-opt` reads the same files. Weights stay out of
the text: large dense attributes are `#axq.resource` references to the NumPy file
`<stem>.weights.npz` beside the `.mlir` file (`aipuc.dialects.resources`). On top of them,
the files of the output folder's `quantized_model/`:

- `model.mlir`, the quantized axq graph, and `calibration_stats.json`
  (`save_quantized_model` / `load_quantized_model`; a reloaded model runs to the same bits
  as the one that was saved);
- `calibrated.mlir`, the float graph with its calibration ranges, from which
  `xdsl-opt calibrated.mlir -p 'axq-quantize{...}'` replays quantization
  (`save_calibrated_model`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from aipuc import outputs
from aipuc.dialects.aipu import Aipu
from aipuc.dialects.axq import Axq
from aipuc.dialects.mem import Mem
from aipuc.dialects.resources import (
    ResourceError,
    ResourcePrinter,
    references,
    resolve,
    sidecar_of,
)
from aipuc.errors import ModelError, QuantizationError, first_line
from aipuc.graph import Graph
from aipuc.quantization.calibration import CalibrationStats, annotate


def ir_context() -> Context:
    """A context that parses every IR the compiler writes: builtin, func and its dialects."""
    ctx = Context()
    for dialect in (Builtin, Func, Axq, Aipu, Mem):
        ctx.load_dialect(dialect)
    return ctx


def module_text(module: ModuleOp) -> str:
    """The IR text with op locations (ONNX node names)."""
    stream = io.StringIO()
    Printer(stream=stream, print_debuginfo=True).print_op(module)
    stream.write("\n")
    return stream.getvalue()


def save_module(path: str | Path, module: ModuleOp) -> Path:
    """Write `module` as IR text to `path` (creating its folder), its large weights to
    `<stem>.weights.npz`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as stream:
        printer = ResourcePrinter(stream=stream, print_debuginfo=True)
        printer.print_op(module)
        stream.write("\n")
    if printer.write_sidecar(path) is None:
        sidecar_of(path).unlink(missing_ok=True)  # no stale weights of an older module
    return path


def load_module(path: str | Path) -> ModuleOp:
    """The verified module in the IR file `path` (weights read from its weights file)."""
    path = Path(path)
    try:
        module = Parser(ir_context(), path.read_text(), str(path)).parse_module()
        _resolve_references(module, path)
        module.verify()
    except ParseError as error:  # its text starts with the location, then the source line
        location = error.span.get_location()
        raise ModelError(
            f"'{path}' is not a valid IR file: line {location.line}: {first_line(error.msg)}"
        ) from error
    except (VerifyException, ResourceError) as error:
        raise ModelError(f"'{path}' is not a valid IR file: {first_line(error)}") from error
    return module


def _resolve_references(module: ModuleOp, path: Path) -> None:
    """Resource references in the properties and attributes of any op, as dense attributes
    (for ops whose parser does not resolve them, such as ops printed in generic form)."""
    for op in module.walk():
        for entries in (op.properties, op.attributes):
            for name, reference in list(references(entries)):
                entries[name] = resolve(reference, str(path))


# --------------------------------------------------------------------------- quantized_model/


def save_quantized_model(
    directory: str | Path, module: ModuleOp, stats: CalibrationStats | None = None
) -> Path:
    """Write `model.mlir` (and `calibration_stats.json`) into `directory`; returns the IR path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = save_module(directory / outputs.QUANTIZED_IR, module)
    if stats is not None:
        (directory / outputs.CALIBRATION_STATS_FILE).write_text(
            json.dumps(stats.to_json(), indent=1) + "\n"
        )
    return path


def save_calibrated_model(
    directory: str | Path, float_module: ModuleOp, stats: CalibrationStats
) -> Path:
    """Write `calibrated.mlir`: the float graph with its calibration annotations.

    `xdsl-opt calibrated.mlir -p 'axq-quantize{...}'` replays quantization with other pass
    options, without the model or the calibration data.
    """
    module = float_module.clone()
    annotate(module, stats)
    Path(directory).mkdir(parents=True, exist_ok=True)
    return save_module(Path(directory) / outputs.CALIBRATED_IR, module)


def load_quantized_model(directory: str | Path) -> Graph:
    """The `Graph` saved by `save_quantized_model` in `directory`."""
    path = Path(directory) / outputs.QUANTIZED_IR
    if not path.is_file():
        raise QuantizationError(
            f"'{directory}' holds no {outputs.QUANTIZED_IR}; save a quantized model "
            "there first (compiler_mode=quantize_only)"
        )
    return Graph(load_module(path))


def load_calibration_stats(directory: str | Path) -> CalibrationStats:
    path = Path(directory) / outputs.CALIBRATION_STATS_FILE
    if not path.is_file():
        raise QuantizationError(f"'{directory}' holds no {outputs.CALIBRATION_STATS_FILE}")
    return CalibrationStats.from_json(json.loads(path.read_text()))
