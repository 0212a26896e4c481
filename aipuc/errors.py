"""User-facing errors: one line that names what is wrong and how to fix it.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; a traceback is shown
only with ``--debug``. Every error carries the pipeline stage it came from, which is
recorded in ``compilation_report.json``.
"""

from __future__ import annotations


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
