"""User-facing errors: one line that names what is wrong and how to fix it.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; a traceback is shown
only with ``--debug``. Every error carries the pipeline stage it came from, which is
recorded in ``compilation_report.json``.
"""

from __future__ import annotations

import re


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


class CompilationError(AipucError):
    stage = "lower"


def first_line(error: BaseException) -> str:
    """The gist of a library's error for a one-line message: its first non-empty line
    without C++ assertion boilerplate, at most 300 characters (its type name when it has
    no message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^.*Assertion .* failed: ", "", text)
    return text if len(text) <= 300 else text[:297] + "..."
