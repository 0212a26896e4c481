"""How well a compiled model keeps its float outputs: SQNR of the whole model, host parts included.

The reference is the loaded ONNX model on the host engine in float32 (onnxruntime with graph
optimisations off). The compiled model runs as it will in deployment: host preamble, the
int8 integer reference of the core (with the host ops between its accelerated segments),
host postamble. The SQNR of each ONNX output is measured on samples held apart from
calibration (`split_held_out`), so it is not flattered by ranges fitted to the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from aipuc.compiled import dequantize_outputs, quantize_inputs
from aipuc.runtime.host import HostRunner

HELD_OUT_EVERY = 8
"""One calibration sample in this many is held apart to measure SQNR."""
HELD_OUT_MAX = 4

Sample = Mapping[str, np.ndarray]


def split_held_out(samples: Sequence[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(calibration samples, held-out samples): the last len // 8 samples, at most 4."""
    count = min(len(samples) // HELD_OUT_EVERY, HELD_OUT_MAX)
    cut = len(samples) - count
    return list(samples[:cut]), list(samples[cut:])


def sqnr_description(held_out: int) -> str:
    if not held_out:
        return (
            f"not measured: SQNR needs samples held apart from calibration; give at least "
            f"{HELD_OUT_EVERY} calibration samples (1 in {HELD_OUT_EVERY} is held out)"
        )
    return (
        f"SQNR per ONNX output of the whole model (host preamble, int8 core with its host "
        f"ops, host postamble) against float32 onnxruntime, on {held_out} sample(s) held "
        "apart from calibration"
    )


def whole_model_sqnr(
    model: onnx.ModelProto,
    preamble: onnx.ModelProto | None,
    quant_graph,
    postamble: onnx.ModelProto | None,
    samples: Sequence[Sample],
) -> dict[str, float]:
    """SQNR in dB of each float output of `model`, compiled against float, pooled over
    `samples` (signal and noise energies summed over the samples, then divided)."""
    reference = HostRunner(model)
    pre, post = (None if part is None else HostRunner(part) for part in (preamble, postamble))
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    for sample in samples:
        expected = reference.run(sample)
        values = dict(sample)
        if pre is not None:
            values.update(pre.run(values))
        core_inputs = quantize_inputs(
            quant_graph.module, {n: values[n] for n in quant_graph.inputs}
        )
        values.update(dequantize_outputs(quant_graph.module, quant_graph.run(core_inputs)))
        if post is not None:
            values.update(post.run(values))
        for name, value in expected.items():
            if not np.issubdtype(value.dtype, np.floating):
                continue  # indices, masks: no signal-to-noise ratio
            difference = np.asarray(values[name], np.float64) - value
            signal[name] = signal.get(name, 0.0) + float(np.sum(np.square(value, dtype=np.float64)))
            noise[name] = noise.get(name, 0.0) + float(np.sum(np.square(difference)))
    return {
        name: round(10 * np.log10(signal[name] / max(noise[name], 1e-30)), 2) for name in signal
    }
