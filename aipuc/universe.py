"""The `xdsl.universe` entry point: makes aipuc's dialects and passes known to xdsl-opt."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe

from aipuc.errors import one_line_uncaught_errors


def _axq() -> Dialect:
    from aipuc.dialects.axq import Axq

    return Axq


def _aipu() -> Dialect:
    from aipuc.dialects.aipu import Aipu

    return Aipu


def _mem() -> Dialect:
    from aipuc.dialects.mem import Mem

    return Mem


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Every project pass by its kebab-case name, imported lazily."""
    from aipuc.passes import PASSES

    return PASSES


one_line_uncaught_errors()  # xdsl-opt: a bad pass option is one line, not a traceback

AIPUC_UNIVERSE = Universe(
    all_dialects={"axq": _axq, "aipu": _aipu, "mem": _mem},
    all_passes=get_all_passes(),
)
