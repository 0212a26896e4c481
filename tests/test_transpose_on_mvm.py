"""Byte-granular transposes on the MVM (`swap_on_mvm`): the stream stays bit-exact and the
cycle model charges the MVM's window gather instead of a DMA burst per byte."""

from __future__ import annotations

import numpy as np
import pytest

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
