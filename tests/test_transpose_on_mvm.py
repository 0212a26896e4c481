"""Byte-granular transposes on the MVM (`swap_on_mvm`): the stream stays bit-exact and the
cycle model charges the MVM's window gather instead of a DMA burst per byte."""

from __future__ import annotations

import numpy as np
import pytest
from lowering_harness import assert_stream_equals_reference

import aipuc
from aipuc.config import CompilerConfig
from aipuc.models import sample_inputs
from aipuc.models.builder import EMBEDDINGS, GraphBuilder


def _swap_model(shape: tuple[int, ...]):
    """relu -> transpose of the last two axes -> relu: the transpose sits inside the core."""
    b = GraphBuilder("swap", seed=0)
    x = b.input("x", shape, EMBEDDINGS)
    perm = [*range(len(shape) - 2), len(shape) - 1, len(shape) - 2]
    y = b.relu(b.transpose(b.relu(x, "before"), perm, "swap"), "after")
    b.output(y, "y")
    return b.model("a transpose of single bytes between two device layers")


@pytest.mark.parametrize(
    "shape, kernel, icr",
    [
        ((1, 64, 128), 64, 1),  # the attention block's keys: one image
        ((1, 3, 24, 40), 24, 2),  # three images, two ICR copies per vector
    ],
)
def test_a_byte_transpose_runs_on_the_mvm_bit_exactly(tmp_path, shape, kernel, icr):
    model = _swap_model(shape)
    samples = [sample_inputs(model, seed=seed) for seed in range(3)]
    results = {}
    for swicr in (True, False):
        out = tmp_path / f"swicr_{swicr}"
        config = CompilerConfig(output_dir=str(out), enable_swicr=swicr)
        compiled = aipuc.compile(model, config, samples[:2])
        for sample in samples:  # the stream equals the integer reference bit for bit
            got = compiled.run(sample)["y"]
            np.testing.assert_array_equal(got, compiled.run_quantized(sample)["y"])
        # a calibration sample (inside the quantized range): the transpose, not any bits
        expected = np.maximum(samples[0]["x"], 0).swapaxes(-1, -2)
        assert np.abs(compiled.run(samples[0])["y"] - expected).max() < 0.05
        lowered = (out / "lowered" / "model.mlir").read_text()
        results[swicr] = compiled.report["performance"], lowered
    (on_mvm, lowered), (on_dma, plain) = results[True], results[False]
    mvm = next(line for line in lowered.splitlines() if "aipu.mvm" in line)
    assert "in_c = 1 : i64" in mvm and f"swicr = true, kernel = array<i64: {kernel}, 1>" in mvm
    assert (f"icr = {icr} : i64" in mvm) == (icr > 1)
    assert "aipu.mvm" not in plain
    # the swap's bytes: one 4-cycle burst each on the DMA, far fewer cycles on the MVM
    swapped = int(np.prod(shape))
    dma_saved = on_dma["units"]["dma"]["cycles"] - on_mvm["units"]["dma"]["cycles"]
    assert dma_saved >= 0.9 * swapped * 4
    assert on_mvm["cycles"] < on_dma["cycles"] - swapped * 2


def _swap_convs(lowered: str) -> list[str]:
    return [line for line in lowered.splitlines() if "aipu.mvm" in line and "in_c = 1 " in line]


@pytest.mark.parametrize(
    "shape, fields, rows, icr",
    [
        # the repro: 4 MiB, more than the default L1 (3.5 MiB) holds twice over
        ((1, 64, 65536), {}, 128, 1),
        # a small L1: 256 KiB in a 256 KiB L1; 192 KiB in 128 KiB with two ICR copies
        ((1, 64, 4096), {"l1_constraint": 262144}, 128, 1),
        ((1, 24, 8192), {"l1_constraint": 131072}, 128, 2),
        # a prime A: padded to 4100 columns, 205 rows of 20, cropped back
        ((1, 64, 4099), {"l1_constraint": 262144}, 205, 1),
    ],
)
def test_a_swap_larger_than_l1_is_tiled_on_the_mvm(tmp_path, shape, fields, rows, icr):
    """A swap that cannot sit in L1 whole still runs on the MVM, bit for bit, in height
    tiles of the rows its A columns split into, each staging its rows of every block."""
    model = _swap_model(shape)
    samples = [sample_inputs(model, seed=seed) for seed in range(2)]
    config = CompilerConfig(output_dir=str(tmp_path), **fields)
    compiled = aipuc.compile(model, config, samples[:1])
    references = [compiled.run_quantized(sample) for sample in samples]
    assert_stream_equals_reference(tmp_path, references, samples)
    lowered = (tmp_path / "lowered" / "model.mlir").read_text()
    mvm = _swap_convs(lowered)[0]  # the first run's tiles (a remainder tile is another MVM)
    kernel, tile_rows = shape[-2], int(mvm.split("1x")[1].split("x")[0])
    assert f"kernel = array<i64: {kernel}, 1>, dilation = array<i64: " in mvm
    dilation = int(mvm.split("dilation = array<i64: ")[1].split(",")[0])
    assert dilation < rows and "aipu.tile_loop" in lowered  # tiles of fewer rows than the swap's
    assert tile_rows == (kernel - 1) * dilation + dilation  # each block's rows of the tile only
    performance = compiled.report["performance"]
    swapped = int(np.prod(shape))
    assert performance["units"]["dma"]["cycles"] < swapped  # not one 4-cycle burst per byte
    assert (f"icr = {icr} : i64" in mvm) == (icr > 1)
    assert performance["units"]["mvm"]["cycles"] >= shape[-1] // icr  # a vector per icr columns


def test_a_swap_that_fits_l1_stays_one_tile(tmp_path):
    """The attention block's key swap fits L1: one MVM over its whole input, dilation its
    rows (128 columns in 128 rows of one), no tile loop."""
    model = _swap_model((1, 64, 128))
    samples = [sample_inputs(model, seed=0)]
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path)), samples)
    assert_stream_equals_reference(tmp_path, [compiled.run_quantized(samples[0])], samples)
    lowered = (tmp_path / "lowered" / "model.mlir").read_text()
    (mvm,) = _swap_convs(lowered)
    assert "ins(%" in mvm and "1x8192x1x1xi8" in mvm and "1x128x1x64xi8" in mvm
    assert "dilation = array<i64: 128, 1>" in mvm and "aipu.tile_loop" not in lowered


def test_a_swap_in_l1_is_tiled_in_place(tmp_path):
    """Forced height tiles of a swap whose input mem-promote put in L1: each tile reads its
    dilated window in place (63 blocks of 128 rows and its 32), nothing staged."""
    model = _swap_model((1, 64, 128))
    samples = [sample_inputs(model, seed=seed) for seed in range(2)]
    config = CompilerConfig(output_dir=str(tmp_path), force_h_tiling=4)
    compiled = aipuc.compile(model, config, samples[:1])
    references = [compiled.run_quantized(sample) for sample in samples]
    assert_stream_equals_reference(tmp_path, references, samples)
    lowered = (tmp_path / "lowered" / "model.mlir").read_text()
    (mvm,) = _swap_convs(lowered)
    assert "ins(%" in mvm and "1x8096x1x1xi8, global.l1" in mvm and "1x32x1x64xi8" in mvm
    assert "dilation = array<i64: 128, 1>" in mvm and "aipu.tile_loop" in lowered
