"""Zoo models as deployable folders: each model.elf is read by readelf (no warning) and
pyelftools as the runtime reads it, its instruction sections decode and re-encode to the
same bytes, and a process that can import only the runtime, NumPy and onnxruntime runs
compiled_model/ bit for bit like `run_quantized`.

The default run covers the small models (tiny_cnn, the attention block, and MobileNetV2 on
a 32x32 image); `pytest -m long` covers every zoo model at its own size."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_checks import (
    assert_same_outputs,
    check_elf_readers,
    check_instruction_sections,
    run_runtime_only,
)
from lowering_harness import samples_of, zoo_model

import aipuc
from aipuc.config import CompilerConfig
from aipuc.models import ZOO

SMALL = {"tiny_cnn": None, "attention_block": None, "mobilenetv2": 32}
"""The default run's models, with the image size they are compiled at (None: their own)."""


def check_deployed(name: str, size: int | None, folder: Path) -> None:
    model = zoo_model(name, size)
    samples = samples_of(model, 1)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(folder / "out")), samples)
    deployed = compiled.output_dir / "compiled_model"
    elf = check_elf_readers(deployed)
    assert check_instruction_sections(elf) > 0
    outputs, modules = run_runtime_only(deployed, samples, folder)
    assert "aipuc.runtime.loader" in modules
    for found, sample in zip(outputs, samples, strict=True):
        assert_same_outputs(found, compiled.run_quantized(sample))


@pytest.mark.parametrize("name", SMALL)
def test_small_models_deploy(tmp_path, name):
    check_deployed(name, SMALL[name], tmp_path)


@pytest.mark.long
@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_model_deploys(tmp_path, name):
    check_deployed(name, None, tmp_path)
