"""Attention heads read and written in place: between the head split (Reshape + Transpose
[.., T, H, D] -> [.., H, T, D]) or the head merge and the attention matmuls, the heads stay
token-major (`assign_layouts`), so those transposes move nothing and the matmuls' MVMs read
queries, load values and write the context through strided views (`aipu.conv image_axes`).
The stream must still equal the integer reference bit for bit, under tiling, DDR pools and
without swICR (the heads then padded to whole PWORDs in place)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from lowering_harness import assert_stream_equals_reference, lower, quantize
from onnx import TensorProto, helper, numpy_helper
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


def _head_graph(rank: int) -> onnx.ModelProto:
    """Heads of a projection used every way: queries times keys (input in place), keys times
    queries (weights in place) and queries times that (input and output in place, then
    merged); heads [1, H, T, D] (rank 4) or [H, T, D] (rank 3)."""
    tokens, heads, head = 8, 2, 4
    rng = np.random.default_rng(0)
    split = [tokens, heads, head] if rank == 3 else [1, tokens, heads, head]
    perm, key_perm = ([1, 0, 2], [1, 2, 0]) if rank == 3 else ([0, 2, 1, 3], [0, 2, 3, 1])
    initializers = {
        "w": (rng.standard_normal((heads * head, heads * head)) / 3).astype(np.float32),
        "split": np.array(split, np.int64),
        "merged": np.array([1, tokens, heads * head], np.int64),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["p"]),
        helper.make_node("Reshape", ["p", "split"], ["r"]),
        helper.make_node("Transpose", ["r"], ["q"], perm=perm),
        helper.make_node("Transpose", ["r"], ["kt"], perm=key_perm),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("MatMul", ["kt", "q"], ["kq"]),
        helper.make_node("MatMul", ["q", "kq"], ["c"]),
        helper.make_node("Transpose", ["c"], ["m"], perm=perm),
        helper.make_node("Reshape", ["m", "merged"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, tokens, heads * head])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(array, name) for name, array in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("rank", [3, 4])
def test_every_operand_of_a_head_matmul_can_be_in_place(tmp_path, rank, config):
    model = _head_graph(rank)
    rng = np.random.default_rng(1)
    samples = [{"x": rng.standard_normal((1, 8, 8)).astype(np.float32)} for _ in range(2)]
    compiled = quantize(model, samples, tmp_path / "quantized")
    layers = _converted(tmp_path / "quantized", CONFIGS[config])
    axes = {tuple(op.image_axes.get_values()) for op in layers if isinstance(op, aipu.ConvLayerOp)}
    assert {(2, 0, 0), (0, 1, 0), (2, 0, 2)} <= axes
    lower(tmp_path / "quantized", tmp_path / "lowered", **CONFIGS[config])
    references = [compiled.run_quantized(sample) for sample in samples]
    assert_stream_equals_reference(tmp_path / "lowered", references, samples)
