"""Shared fixtures: a small model that gives every config-gated graph pass something to do."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from hypothesis import Phase, settings
from onnx import TensorProto, helper, numpy_helper

from aipuc.frontend.loader import load_model

# No wall-clock assertions in tests: Hypothesis' per-example deadline (200 ms by default) is
# one, and fails on a loaded machine. Speed belongs to the benchmarks.
# Under tools/mutation.py (AIPUC_HYPOTHESIS_PROFILE=mutation) a failing example is not shrunk
# nor stored: pass or fail is all a mutant needs.
settings.register_profile("aipuc", deadline=None)
settings.register_profile(
    "mutation", deadline=None, database=None, phases=[Phase.explicit, Phase.generate]
)
mutation_run = os.environ.get("AIPUC_HYPOTHESIS_PROFILE") == "mutation"
settings.load_profile("mutation" if mutation_run else "aipuc")


def rewrite_showcase() -> onnx.ModelProto:
    """conv -> unfolded BatchNorm -> ReLU -> SiLU -> exported hard-swish -> exported GELU ->
    two 1x1 convs concatenated on C (64 + 64) -> global pool -> Flatten -> Gemm -> * 2 * 0.5.

    Div, Erf and the unfolded BatchNorm are what exporters emit; the graph cleaner would send
    Div and Erf to the host, so tests compile it with run_graph_cleaner=false.
    """
    rng = np.random.default_rng(11)

    def weights(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    initializers = {
        "w1": weights(16, 8, 3, 3),
        "b1": weights(16, scale=0.1),
        "bn_scale": (1 + weights(1, 16, 1, 1, scale=0.2)),
        "bn_shift": weights(1, 16, 1, 1, scale=0.2),
        "w2": weights(64, 16, 1, 1),
        "b2": weights(64, scale=0.1),
        "w3": weights(64, 16, 1, 1),
        "b3": weights(64, scale=0.1),
        "fc_w": weights(10, 128),
        "fc_b": weights(10, scale=0.1),
        "zero": np.float32(0.0),
        "one": np.float32(1.0),
        "half": np.float32(0.5),
        "two": np.float32(2.0),
        "three": np.float32(3.0),
        "six": np.float32(6.0),
        "sqrt2": np.float32(np.sqrt(2.0)),
    }
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        node("Mul", ["c1", "bn_scale"], ["m1"], name="bn.mul"),
        node("Add", ["m1", "bn_shift"], ["a1"], name="bn.add"),
        node("Relu", ["a1"], ["r1"], name="relu"),
        node("Sigmoid", ["r1"], ["sg"], name="silu.sigmoid"),
        node("Mul", ["r1", "sg"], ["silu"], name="silu.mul"),
        node("Add", ["silu", "three"], ["h1"], name="hswish.add"),
        node("Clip", ["h1", "zero", "six"], ["h2"], name="hswish.clip"),
        node("Mul", ["silu", "h2"], ["h3"], name="hswish.mul"),
        node("Div", ["h3", "six"], ["hs"], name="hswish.div"),
        node("Div", ["hs", "sqrt2"], ["g1"], name="gelu.div"),
        node("Erf", ["g1"], ["g2"], name="gelu.erf"),
        node("Add", ["g2", "one"], ["g3"], name="gelu.add"),
        node("Mul", ["hs", "g3"], ["g4"], name="gelu.mul"),
        node("Mul", ["g4", "half"], ["gelu"], name="gelu.half"),
        node("Conv", ["gelu", "w2", "b2"], ["c2"], name="branch_a"),
        node("Conv", ["gelu", "w3", "b3"], ["c3"], name="branch_b"),
        node("Concat", ["c2", "c3"], ["cat"], name="concat", axis=1),
        node("GlobalAveragePool", ["cat"], ["pooled"], name="pool"),
        node("Flatten", ["pooled"], ["flat"], name="flatten"),
        node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], name="fc", transB=1),
        node("Mul", ["fc", "two"], ["doubled"], name="double"),
        node("Mul", ["doubled", "half"], ["logits"], name="halve"),
    ]
    graph = helper.make_graph(
        nodes,
        "rewrite_showcase",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return load_model(model)


@pytest.fixture(scope="session")
def showcase() -> onnx.ModelProto:
    return rewrite_showcase()


@pytest.fixture(scope="session")
def showcase_samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [{"x": rng.standard_normal((1, 8, 8, 8)).astype(np.float32)} for _ in range(4)]
