"""User-facing errors: one line that names what is wrong and how to fix it.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; a traceback is shown
only with ``--debug``. Every error carries the pipeline stage it came from, which is
recorded in ``compilation_report.json``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import TracebackType


class AipucError(Exception):
    """Base of all errors that are the user's to fix (bad input, bad config, bad model)."""

    stage: str = "driver"
    exit_code: int = 2

    def __init__(self, message: str, *, stage: str | None = None):
        super().__init__(message)
        if stage is not None:
            self.stage = stage


class ConfigError(AipucError):
    stage = "config"


class ModelError(AipucError):
    """The model file or graph is malformed or cannot be imported."""

    stage = "import"


class UnsupportedOperatorError(ModelError):
    """An operator or attribute that neither the accelerator nor the host path supports."""


class QuantizationError(AipucError):
    stage = "quantize"


class InputError(AipucError):
    """Inputs given to run a model that do not fit it: not a dict of arrays, missing or
    unknown input names, a wrong shape or dtype, an unreadable input file. Raised by
    `Graph.run`, `CompiledModel.run`, `CompiledModel.run_quantized` and `aipuc run`."""

    stage = "run"


class CompilationError(AipucError):
    stage = "lower"


def one_line_uncaught_errors() -> None:
    """Show an `AipucError` that nothing caught as one line, `<program>: error: ...`,
    instead of a traceback (set AIPUC_DEBUG=1 for the traceback). Installed when xDSL
    tools such as xdsl-opt load the project, so a bad pass option reads like any other
    aipuc error; every other exception keeps the previous hook."""
    previous = sys.excepthook
    if getattr(previous, "aipuc", False):
        return

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None):
        if isinstance(error, AipucError) and not os.environ.get("AIPUC_DEBUG"):
            print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        else:
            previous(kind, error, trace)

    hook.aipuc = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def first_line(error: BaseException) -> str:
    """The gist of a library's error for a one-line message: its first non-empty line
    without C++ assertion boilerplate, at most 300 characters (its type name when it has
    no message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^.*Assertion .* failed: ", "", text)
    return text if len(text) <= 300 else text[:297] + "..."
