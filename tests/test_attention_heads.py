"""Attention heads read and written in place: between the head split (Reshape + Transpose
[.., T, H, D] -> [.., H, T, D]) or the head merge and the attention matmuls, the heads stay
token-major (`assign_layouts`), so those transposes move nothing and the matmuls' MVMs read
queries, load values and write the context through strided views (`aipu.conv image_axes`).
The stream must still equal the integer reference bit for bit, under tiling, DDR pools and
without swICR (the heads then padded to whole PWORDs in place)."""

from __future__ import annotations

import pytest
from lowering_harness import assert_stream_equals_reference, lower, quantize
from test_lowering_models import ALL_POOLS_IN_DDR

from aipuc.config import CompilerConfig
from aipuc.dialects import aipu
from aipuc.ir_files import ir_context, load_module
from aipuc.models.architectures import input_feeds, transformer_encoder
from aipuc.outputs import QUANTIZED_IR, QUANTIZED_MODEL
from aipuc.pipeline import Phase, run_stage, stages

SHAPES = {
    "3 heads of 16, 24 tokens": {"dim": 48, "heads": 3, "tokens": 24},
    "2 heads of 40, 80 tokens": {"dim": 80, "heads": 2, "tokens": 80},
}
CONFIGS = {
    "default": {},
    "height tiles, DDR pools, no promotion, no swICR": {
        "force_h_tiling": 3,
        "enable_buffer_promotion": False,
        "enable_swicr": False,
        "enable_icr": False,
        **ALL_POOLS_IN_DDR,
    },
}


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            model = transformer_encoder(layers=1, **SHAPES[name])
            samples = [input_feeds(model, seed) for seed in range(2)]
            folder = tmp_path_factory.mktemp("heads") / "quantized"
            compiled = quantize(model, samples, folder)
            cache[name] = (folder, samples, [compiled.run_quantized(s) for s in samples])
        return cache[name]

    return get


def _converted(folder, fields: dict) -> list:
    """The layers convert-axq-to-aipu makes of the quantized graph under `fields`."""
    module = load_module(folder / QUANTIZED_MODEL / QUANTIZED_IR)
    convert = next(stage for stage in stages(Phase.LOWERING) if stage.name == "convert")
    run_stage(convert, CompilerConfig(**fields), ir_context(), module)
    return list(module.walk())


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_heads_are_strided_views_and_the_stream_is_exact(quantized, tmp_path, shape, config):
    folder, samples, references = quantized(shape)
    layers = _converted(folder, CONFIGS[config])
    attention = [  # the layers whose weights are computed, one matrix per head
        op
        for op in layers
        if isinstance(op, aipu.ConvLayerOp) and len(op.weights.type.get_shape()) == 3
    ]
    axes = sorted(tuple(op.image_axes.get_values()) for op in attention)
    assert axes == [(0, 1, 2), (2, 0, 0)]  # context: values and output in place; scores: queries
    tokens, heads = SHAPES[shape]["tokens"], SHAPES[shape]["heads"]
    head = SHAPES[shape]["dim"] // heads
    moved = [tuple(op.result.type.get_shape()) for op in layers if isinstance(op, aipu.MoveLayerOp)]
    assert (1, heads, tokens, head) not in moved  # no head split copies queries or values
    assert (1, tokens, heads, head) not in moved  # no head merge copies the context
    lower(folder, tmp_path, **CONFIGS[config])
    assert_stream_equals_reference(tmp_path, references, samples)
