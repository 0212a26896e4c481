"""The xdsl.universe entry point: dialects and passes reach xdsl-opt, options match the config."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from xdsl.passes import PassPipeline
from xdsl.universe import Universe

from aipuc.config import CompilerConfig
from aipuc.passes import PASSES, AipucPass, PassOptionError
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


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_pass_reports_option_errors_in_one_line(name):
    """A misspelled option, in xdsl-opt or a pipeline string, names the valid options."""
    pass_class = PASSES[name]()
    assert issubclass(pass_class, AipucPass), f"{name} must derive from aipuc.passes.AipucPass"
    options = [f.name for f in dataclasses.fields(pass_class)]
    misspelled = (options[0].replace("z", "s") if options else "option") + "_x"
    with pytest.raises(PassOptionError, match=f"{name} has no option '{misspelled}'") as error:
        PassPipeline.parse_spec(PASSES, f"{name}{{{misspelled}=1}}")
    for option in options:
        assert option in str(error.value)
    result = subprocess.run(
        [str(XDSL_OPT), "-p", f"{name}{{{misspelled}=1}}"],
        input="builtin.module {}",
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"xdsl-opt: error: {name} has no option '{misspelled}'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_misspelled_option_values_get_a_suggestion():
    with pytest.raises(PassOptionError, match="did you mean 'per_tensor_min_max'"):
        PassPipeline.parse_spec(
            PASSES,
            "axq-quantize{quantization_scheme=per_tensor_minmax}",
        )
    with pytest.raises(PassOptionError, match="did you mean 'quantization_scheme'"):
        PassPipeline.parse_spec(
            PASSES,
            "axq-quantize{quantisation_scheme=per_tensor_min_max}",
        )
