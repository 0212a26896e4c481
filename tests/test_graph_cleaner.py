"""The graph cleaner: optimisations, the preamble/core/postamble split, and exact composition."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aipuc.errors import ConfigError
from aipuc.frontend.graph_cleaner import (
    TRAILING_REASON,
    CleanedModel,
    SplitModelRunner,
    clean_graph,
)
from aipuc.frontend.loader import load_model
from aipuc.frontend.support import nhwc_inputs, validate_operators
from aipuc.runtime.host import HostRunner

RNG = np.random.default_rng(7)


class Builder:
    """A tiny graph builder: `op` returns the output name, constants become initializers."""

    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0

    def const(self, value, dtype=np.float32) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def weight(self, *shape) -> str:
        return self.const(RNG.standard_normal(shape) * 0.3)

    def op(self, op_type, *inputs, outputs=1, name=None, **attrs):
        self.count += 1
        name = name or f"{op_type.lower()}{self.count}"
        names = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=name, **attrs))
        return names[0] if outputs == 1 else names

    def model(self, inputs, outputs, dtypes=None) -> onnx.ModelProto:
        dtypes = dtypes or {}
        graph = helper.make_graph(
            self.nodes,
            "test",
            [
                helper.make_tensor_value_info(n, dtypes.get(n, TensorProto.FLOAT), s)
                for n, s in inputs.items()
            ],
            [helper.make_tensor_value_info(n, t, None) for n, t in outputs.items()],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return model


def detector() -> onnx.ModelProto:
    """uint8 NHWC image -> normalisation -> conv core -> YOLO-style decode, Softmax and NMS."""
    b = Builder()
    x = b.op("Cast", "image", to=TensorProto.FLOAT, name="to_float")
    x = b.op("Div", x, b.const(255.0), name="scale_pixels")
    x = b.op("Transpose", x, perm=[0, 3, 1, 2], name="to_nchw")
    x = b.op("Sub", x, b.const(RNG.uniform(0.3, 0.6, (1, 3, 1, 1))), name="mean")
    x = b.op("Div", x, b.const(RNG.uniform(0.2, 0.3, (1, 3, 1, 1))), name="normalized")
    y = b.op("Relu", b.op("Conv", x, b.weight(8, 3, 3, 3), b.weight(8), pads=[1] * 4))
    z = b.op("Conv", y, b.weight(8, 8, 3, 3), pads=[1] * 4)
    head = b.op("Conv", b.op("Add", y, z), b.weight(18, 8, 1, 1), name="head")
    t = b.op("Reshape", head, b.const([1, 3, 6, 16, 16], np.int64), name="split_anchors")
    t = b.op("Sigmoid", b.op("Transpose", t, perm=[0, 1, 3, 4, 2]))
    t = b.op("Reshape", t, b.const([1, 768, 6], np.int64))
    xy, wh, cls = b.op("Split", t, b.const([2, 2, 2], np.int64), axis=2, outputs=3)
    xy = b.op("Add", b.op("Mul", xy, b.const(2.0)), b.const(RNG.uniform(0, 16, (1, 768, 2))))
    wh = b.op("Mul", wh, b.const(4.0))
    probs = b.op("Softmax", cls, axis=-1)
    boxes = b.op("Concat", xy, wh, axis=2)
    b.op("Concat", boxes, probs, axis=2, name="detections")
    scores = b.op("Transpose", probs, perm=[0, 2, 1])
    b.op(
        "NonMaxSuppression",
        boxes,
        scores,
        b.const([5], np.int64),
        b.const([0.5]),
        b.const([0.6]),
        center_point_box=1,
        name="selected",
    )
    return b.model(
        {"image": [1, 16, 16, 3]},
        {"detections": TensorProto.FLOAT, "selected": TensorProto.INT64},
        {"image": TensorProto.UINT8},
    )


def classifier(hidden=64) -> onnx.ModelProto:
    """Conv -> pool -> Flatten -> Gemm (hidden x 16 weight) -> Relu -> Gemm -> Softmax."""
    b = Builder()
    x = b.op("Relu", b.op("Conv", "input", b.weight(16, 3, 3, 3), pads=[1] * 4))
    x = b.op("Flatten", b.op("GlobalAveragePool", x))
    x = b.op("Relu", b.op("Gemm", x, b.weight(hidden, 16), transB=1, name="big_fc"))
    x = b.op("Gemm", x, b.weight(10, hidden), b.weight(10), transB=1, name="small_fc")
    b.op("Softmax", x, name="probabilities")
    return b.model({"input": [1, 3, 8, 8]}, {"probabilities": TensorProto.FLOAT})


def clean(model, **overrides) -> CleanedModel:
    options = dict(
        split_pre_post_processing=True,
        condition=None,
        node_type=None,
        threshold=0,
        remove_layout_transform_from_preamble=False,
        dump_core_onnx=None,
        dump_full_opt_onnx=None,
    )
    return clean_graph(model, **{**options, **overrides})


def ops(part: onnx.ModelProto | None) -> list[str]:
    return [] if part is None else [node.op_type for node in part.graph.node]


def assert_composition_exact(original: onnx.ModelProto, cleaned: CleanedModel, inputs):
    expected = HostRunner(original).run(inputs)
    got = SplitModelRunner(cleaned).run(inputs)
    assert list(got) == list(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def image():
    return {"image": RNG.integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)}


# ------------------------------------------------------------------------------ the split


def test_detector_splits_into_preamble_core_postamble():
    original = detector()
    cleaned = clean(load_model(original))
    assert ops(cleaned.preamble) == ["Cast"]  # uint8 input: not float, no MAC before it
    # normalisation (elementwise ops and a DMA) is accelerated, up to the last MAC operator
    assert ops(cleaned.core) == [
        *("Div", "Transpose", "Sub", "Div"),
        *("Conv", "Relu", "Conv", "Add", "Conv"),
    ]
    # the decode tail, the Softmax and NMS: nothing after them is a MAC operator
    assert Counter(ops(cleaned.postamble)) == Counter(
        ["Reshape", "Transpose", "Sigmoid", "Reshape", "Split", "Mul", "Add", "Mul"]
        + ["Softmax", "Concat", "Concat", "Transpose", "NonMaxSuppression"]
    )
    assert cleaned.preamble_outputs == cleaned.core_inputs == ("to_float",)
    assert cleaned.core_outputs == cleaned.postamble_inputs == ("head",)
    assert cleaned.outputs == ("detections", "selected")
    assert cleaned.host_reasons["to_float"] == "Cast is not supported by the accelerator"
    assert cleaned.host_reasons["split_anchors"] == TRAILING_REASON
    assert cleaned.host_reasons["softmax19"] == TRAILING_REASON
    assert "NonMaxSuppression is not supported" in cleaned.host_reasons["selected"]
    # each part keeps only the initializers it reads
    for part in (cleaned.preamble, cleaned.core, cleaned.postamble):
        onnx.checker.check_model(part)
        read = {name for node in part.graph.node for name in node.input}
        assert {t.name for t in part.graph.initializer} <= read
    assert_composition_exact(original, cleaned, image())


def test_without_splitting_the_whole_model_is_the_core():
    original = detector()
    cleaned = clean(load_model(original), split_pre_post_processing=False)
    assert cleaned.preamble is None
    # value-dependent shapes cannot enter the core: NMS always goes to the postamble
    assert ops(cleaned.postamble) == ["NonMaxSuppression"]
    assert len(ops(cleaned.core)) == len(original.graph.node) - 1
    assert cleaned.core_inputs == ("image",)
    assert_composition_exact(original, cleaned, image())


def lrn_network() -> onnx.ModelProto:
    """conv -> LRN -> conv -> 3-D MaxPool -> conv -> Softmax: host nodes between segments."""
    b = Builder()
    x = b.op("Relu", b.op("Conv", "input", b.weight(8, 3, 3, 3), pads=[1] * 4, name="conv1"))
    x = b.op("LRN", x, size=3, name="norm1")
    x = b.op("Relu", b.op("Conv", x, b.weight(8, 8, 3, 3), pads=[1] * 4, name="conv2"))
    x = b.op("Unsqueeze", x, b.const([1], np.int64), name="to_5d")
    x = b.op("MaxPool", x, kernel_shape=[2, 2, 2], strides=[2, 2, 2], name="pool3d")
    x = b.op("Squeeze", x, b.const([1], np.int64), name="to_4d")
    x = b.op("Conv", x, b.weight(4, 4, 1, 1), name="conv3")
    b.op("Softmax", b.op("Flatten", x), name="probabilities")
    return b.model({"input": [1, 3, 8, 8]}, {"probabilities": TensorProto.FLOAT})


def test_host_nodes_between_macs_stay_in_the_core():
    original = lrn_network()
    cleaned = clean(load_model(original))
    assert cleaned.preamble is None
    assert "LRN" in ops(cleaned.core) and "MaxPool" in ops(cleaned.core)
    # a trailing chain that concatenates nothing stays on the accelerator
    assert ops(cleaned.postamble) == [] and ops(cleaned.core)[-2:] == ["Flatten", "Softmax"]
    assert "LRN is not supported" in cleaned.host_reasons["norm1"]
    assert "2-D pooling" in cleaned.host_reasons["pool3d"]
    assert "conv3" not in cleaned.host_reasons and "to_5d" not in cleaned.host_reasons
    assert_composition_exact(original, cleaned, {"input": RNG.standard_normal((1, 3, 8, 8))})


def layout_model(transform: str) -> onnx.ModelProto:
    """NHWC input -> host normalisation (Floor: not accelerated) -> NHWC->NCHW -> Conv."""
    b = Builder()
    channels = 3 if transform == "Transpose" else 1
    x = b.op("Mul", "image", b.const(RNG.uniform(0.5, 1, (1, 1, 1, channels))), name="norm")
    x = b.op("Floor", b.op("Div", x, b.const(3.0), name="scale"), name="levels")
    if transform == "Transpose":
        x = b.op("Transpose", x, perm=[0, 3, 1, 2], name="layout")
    else:
        x = b.op("Reshape", x, b.const([1, 1, 16, 16], np.int64), name="layout")
    b.op("Conv", x, b.weight(4, channels, 3, 3), name="out")
    return b.model({"image": [1, 16, 16, channels]}, {"out": TensorProto.FLOAT})


@pytest.mark.parametrize("transform", ["Transpose", "Reshape"])
def test_remove_layout_transform_from_preamble(transform):
    original = layout_model(transform)
    loaded = load_model(original)
    kept = clean(loaded)
    assert kept.nhwc_core_inputs == ()
    moved = clean(loaded, remove_layout_transform_from_preamble=True)
    for cleaned in (kept, moved):  # the layout transform runs on the accelerator anyway
        assert ops(cleaned.preamble) == ["Mul", "Div", "Floor"]
        assert ops(cleaned.core) == [transform, "Conv"]
    assert moved.core_inputs == moved.nhwc_core_inputs == ("levels",)
    assert nhwc_inputs(moved.core) == ["levels"] and nhwc_inputs(kept.core) == []
    assert validate_operators(moved.core) == []
    channels = 3 if transform == "Transpose" else 1
    inputs = {"image": RNG.standard_normal((1, 16, 16, channels)).astype(np.float32)}
    assert_composition_exact(original, moved, inputs)


def test_layout_transform_right_after_the_input_leaves_no_preamble():
    b = Builder()
    b.op("Conv", b.op("Transpose", "image", perm=[0, 3, 1, 2]), b.weight(4, 3, 1, 1), name="y")
    loaded = load_model(b.model({"image": [1, 8, 8, 3]}, {"y": TensorProto.FLOAT}))
    cleaned = clean(loaded, remove_layout_transform_from_preamble=True)
    assert cleaned.preamble is None
    assert cleaned.core_inputs == cleaned.nhwc_core_inputs == ("image",)


# ------------------------------------------------------------------------------ weight condition


@pytest.mark.parametrize(
    ("condition", "threshold"),
    [
        ("maximum_weight_tensor_size", 64 * 16 - 1),
        ("maximum_weight_tensor_first_dimension_size", 63),
    ],
)
def test_weight_condition_moves_a_big_gemm_to_the_postamble(condition, threshold):
    original = classifier()
    loaded = load_model(original)
    cleaned = clean(loaded, condition=condition, node_type="Gemm", threshold=threshold)
    assert ops(cleaned.core) == ["Conv", "Relu", "GlobalAveragePool", "Flatten"]
    assert ops(cleaned.postamble) == ["Gemm", "Relu", "Gemm", "Softmax"]
    assert condition in cleaned.host_reasons["big_fc"]
    assert cleaned.host_reasons["small_fc"] == "follows host node 'big_fc'"
    inputs = {"input": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    assert_composition_exact(original, cleaned, inputs)
    # at the threshold nothing moves: the classifier Softmax stays on the accelerator too
    relaxed = clean(loaded, condition=condition, node_type="Gemm", threshold=threshold + 1)
    assert relaxed.postamble is None
    # the condition applies without the support split too
    unsplit = clean(
        loaded,
        split_pre_post_processing=False,
        condition=condition,
        node_type="Gemm",
        threshold=threshold,
    )
    assert ops(unsplit.postamble) == ["Gemm", "Relu", "Gemm", "Softmax"]


def test_weight_condition_config_errors():
    loaded = load_model(classifier())
    with pytest.raises(ConfigError, match="must be set together"):
        clean(loaded, condition="maximum_weight_tensor_size", node_type=None)
    with pytest.raises(ConfigError, match="valid conditions"):
        clean(loaded, condition="largest", node_type="Gemm")


# ------------------------------------------------------------------------------ optimisations


def test_optimisations_fold_constants_and_drop_identities():
    b = Builder()
    weight = RNG.standard_normal((4, 3, 1, 1)).astype(np.float32)
    b.nodes.append(
        helper.make_node(
            "Constant", [], ["w"], name="weight", value=numpy_helper.from_array(weight)
        )
    )
    x = b.op("Identity", "input")
    x = b.op("Dropout", b.op("Conv", x, "w"))
    shape = b.op("Shape", x)
    flat = b.op(
        "Concat",
        b.op("Slice", shape, b.const([0], np.int64), b.const([1], np.int64)),
        b.const([-1], np.int64),
        axis=0,
    )
    x = b.op("Reshape", x, flat)
    b.op("Identity", x, name="output")
    b.op("Relu", "input", name="unused")
    original = b.model({"input": ["N", 3, 4, 4]}, {"output": TensorProto.FLOAT})
    cleaned = clean(load_model(original), split_pre_post_processing=False)
    assert ops(cleaned.full) == ["Conv", "Reshape"]
    assert [v.name for v in cleaned.full.graph.output] == ["output"]
    assert ops(cleaned.core) == ["Conv", "Reshape"]
    inputs = {"input": RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)}
    assert_composition_exact(original, cleaned, inputs)


def test_dumps_are_written_where_asked(tmp_path):
    core_path, full_path = tmp_path / "dumps" / "core.onnx", tmp_path / "full" / "full.onnx"
    cleaned = clean(load_model(detector()), dump_core_onnx=core_path, dump_full_opt_onnx=full_path)
    assert onnx.load(core_path) == cleaned.core
    assert onnx.load(full_path) == cleaned.full


# ------------------------------------------------------------------------------ host runner


def test_host_runner_checks_inputs_and_falls_back_to_onnx_reference(monkeypatch):
    model = classifier()
    inputs = {"input": RNG.standard_normal((1, 3, 8, 8))}  # float64: cast to float32
    with_ort = HostRunner(model)
    assert with_ort.engine == "onnxruntime"
    expected = with_ort.run(inputs)["probabilities"]
    with pytest.raises(Exception, match="needs input 'input'"):
        with_ort.run({})
    with pytest.raises(Exception, match="must be float32"):
        with_ort.run({"input": np.zeros((1, 3, 8, 8), np.complex64)})
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    reference = HostRunner(model)
    assert reference.engine == "onnx.reference"
    np.testing.assert_allclose(reference.run(inputs)["probabilities"], expected, rtol=1e-5)


# ------------------------------------------------------------------------------ the zoo


def zoo_names() -> list[str]:
    models = pytest.importorskip("aipuc.models", reason="the model zoo")
    return list(models.ZOO)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_names())
def test_zoo_models_compose_exactly(name):
    from aipuc.models import build_model, sample_inputs

    original = build_model(name)
    cleaned = clean(load_model(original))
    assert cleaned.core is not None
    assert_composition_exact(original, cleaned, sample_inputs(original))
    core_ops = Counter(ops(cleaned.core))
    assert core_ops["Conv"] == Counter(ops(original))["Conv"]  # every conv is accelerated
    if "yolo" in name:
        tail = Counter(ops(cleaned.postamble))
        assert tail["Reshape"] and tail["Pow"] and not tail["Conv"]
        assert "Pow" not in core_ops and "Reshape" not in core_ops
