"""The xdsl.universe entry point: dialects and passes reach xdsl-opt, options match the config."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from xdsl.universe import Universe

from aipuc.config import CompilerConfig
from aipuc.passes import PASSES
from aipuc.pipeline import STAGES

XDSL_OPT = Path(sys.executable).with_name("xdsl-opt")


def test_multiverse_has_the_project_dialects_and_passes():
    multiverse = Universe.get_multiverse()
    assert {"axq", "aipu", "mem"} <= set(multiverse.all_dialects)
    assert set(PASSES) <= set(multiverse.all_passes)
    for name in ("axq", "aipu", "mem"):
        assert multiverse.all_dialects[name]().name == name


@pytest.mark.parametrize("name", sorted(PASSES))
def test_pass_names_and_options(name):
    pass_class = PASSES[name]()
    assert pass_class.name == name
    assert name == name.lower() and "_" not in name, "pass names are kebab-case"
    fixed = {o for stage in STAGES for step in stage.steps for o, _ in step.fixed}
    for option in dataclasses.fields(pass_class):  # or set by the pipeline table, no field
        assert option.name in CompilerConfig.model_fields or option.name in fixed, (
            f"option '{option.name}' of {name} is not spelled like a config field"
        )


def test_xdsl_opt_help_lists_the_project_passes():
    result = subprocess.run([str(XDSL_OPT), "--help"], capture_output=True, text=True, check=True)
    flat = " ".join(result.stdout.split())
    for name in PASSES:
        assert name in flat.replace("- ", "-")
