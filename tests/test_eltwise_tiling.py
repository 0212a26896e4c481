"""aipu-tile on element-wise (DPU) layers: past their first non-1 axis when it is not enough.

A layer on [1, 12, 64, 1024] (an attention block's scores, 12 heads) used to get at most 12
tiles, each 64 x 1024 rows: under a small L1 it failed to compile although smaller tiles fit.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from lowering_harness import assert_stream_equals_reference
from onnx import TensorProto, helper

import aipuc
from aipuc.config import CompilerConfig
from aipuc.errors import CompilationError
from aipuc.lowering.tiles import split_axes
from aipuc.models.builder import IR_VERSION, OPSET


def _model(op: str, inputs: dict[str, list[int]], shape: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, list(inputs), ["y"])],
        "eltwise",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _compile(tmp_path, op: str, inputs: dict[str, list[int]], l1_constraint: int) -> str:
    """Compile, check the stream against run_quantized bit for bit; the lowered IR."""
    shape = next(iter(inputs.values()))
    model = _model(op, inputs, shape)
    samples = [
        {
            n: np.random.default_rng([seed, k]).standard_normal(s).astype(np.float32)
            for k, (n, s) in enumerate(inputs.items())
        }
        for seed in range(2)
    ]
    config = CompilerConfig(output_dir=str(tmp_path), l1_constraint=l1_constraint)
    compiled = aipuc.compile(model, config, samples[:1])
    references = [compiled.run_quantized(sample) for sample in samples]
    assert_stream_equals_reference(tmp_path, references, samples)
    return (tmp_path / "lowered" / "model.mlir").read_text()


def _loops(lowered: str) -> list[str]:
    return [
        line.split("= ")[1].split(" {")[0] for line in lowered.splitlines() if "tile_loop" in line
    ]


def test_attention_scores_tile_past_their_heads(tmp_path):
    """12 heads of 64 x 1024: 12 tiles need 128 KiB; 48 (4 per head, 16 rows) fit 64 KiB."""
    lowered = _compile(tmp_path, "Sigmoid", {"x": [1, 12, 64, 1024]}, 65536)
    assert _loops(lowered) == ["0 to 12", "0 to 4"]  # a loop per axis, not one op per tile
    assert "%0[0, %8, 16 * %9, 0] : !mem.buffer<1x12x64x1024xi8, global.l2> -> " in lowered
    assert lowered.count("aipu.dpu program") == 1


def test_a_broadcast_operand_follows_only_the_axes_it_has(tmp_path):
    """x [1, 4, 64, 256] + b [1, 1, 64, 256] in 16 tiles of 16 rows: b's tile moves with the
    inner loop alone (it has one head), x's with both."""
    lowered = _compile(tmp_path, "Add", {"x": [1, 4, 64, 256], "b": [1, 1, 64, 256]}, 16384)
    assert _loops(lowered) == ["0 to 4", "0 to 4"]
    assert "%0[0, %7, 16 * %8, 0] : !mem.buffer<1x4x64x256xi8" in lowered
    assert "%1[0, 0, 16 * %8, 0] : !mem.buffer<1x1x64x256xi8" in lowered


def test_uneven_tiles_over_three_axes(tmp_path):
    """Tiles of unequal rows past the first axis (50 rows in 4: 13, 13, 13 and 11), and
    tiles over three axes (a batch of 2 too), bit for bit."""
    lowered = _compile(tmp_path, "Add", {"x": [1, 3, 50, 64], "b": [1, 1, 50, 64]}, 4096)
    assert _loops(lowered)[:2] == ["0 to 3", "0 to 3"]  # 13 rows x 3 and one of 11
    lowered = _compile(tmp_path / "3d", "Sigmoid", {"x": [2, 3, 5, 512]}, 2048)
    assert _loops(lowered) == ["0 to 2", "0 to 3", "0 to 5"]


def test_a_layer_that_fits_its_first_axis_keeps_its_tiling(tmp_path):
    """8 tiles of [1, 12, 32, 256] fit: 6 tiles of 2 heads each, as before."""
    lowered = _compile(tmp_path, "Sigmoid", {"x": [1, 12, 32, 256]}, 40000)
    assert _loops(lowered) == ["0 to 6"]
    assert "%0[0, 2 * %8, 0, 0] : !mem.buffer<1x12x32x256xi8, global.l2> -> " in lowered


def test_what_cannot_fit_still_fails_in_one_line(tmp_path):
    model = _model("Sigmoid", {"x": [1, 2, 2, 4096]}, [1, 2, 2, 4096])
    sample = {"x": np.ones((1, 2, 2, 4096), np.float32)}
    config = CompilerConfig(output_dir=str(tmp_path), l1_constraint=4096)
    with pytest.raises(CompilationError, match=r"tried .* 4x1: 8448 bytes; raise") as error:
        aipuc.compile(model, config, [sample])
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "extents, tiles, counts",
    [
        ([12, 64], 8, [8]),  # within the first axis: as before
        ([12, 64], 12, [12]),
        ([12, 64], 48, [12, 4]),
        ([12, 64], 13, [12, 2]),  # rounded up: never fewer tiles than asked
        ([3, 5, 50], 1000, [3, 5, 50]),  # more than there are rows: every row its own tile
        ([], 4, []),
    ],
)
def test_split_axes(extents, tiles, counts):
    assert split_axes(extents, tiles) == counts


@pytest.mark.parametrize(
    "op, inputs, l1_constraint",
    [
        ("Sigmoid", {"x": [1, 3, 20, 20, 85]}, None),  # a detector head's 5-D tensor
        ("Add", {"x": [2, 3, 4, 5, 64], "b": [1, 1, 4, 5, 64]}, None),  # broadcast outer axes
        ("Add", {"x": [2, 3, 4, 5, 64], "b": [2, 1, 4, 5, 64]}, None),  # only 2 and 3 merge
        ("Mul", {"x": [1, 3, 20, 20, 85], "b": [1, 3, 20, 20, 85]}, 16384),  # tiled too
    ],
)
def test_five_axis_tiles_merge_outer_axes(tmp_path, op, inputs, l1_constraint):
    """A DPU record holds 4 axes: a 5-D element-wise tile runs with outer axes merged where
    every operand steps through them as one (these failed to compile before)."""
    lowered = _compile(tmp_path, op, inputs, l1_constraint)
    assert "aipu.dpu" in lowered
