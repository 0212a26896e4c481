"""The model zoo: every model is valid ONNX with static shapes, deterministic, runs on
onnxruntime with healthy activations, and the zoo covers the operators the compiler must handle."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from aipuc.errors import ModelError
from aipuc.models import ZOO, build_model, sample_inputs

NAMES = sorted(ZOO)
CLASSIFIERS = [n for n in NAMES if "logits" in ZOO[n].output_shapes]

REQUIRED_OPS = {
    "Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid", "Mul", "Add", "Concat", "Resize",
    "Split", "MaxPool", "GlobalAveragePool", "Gemm", "MatMul", "Transpose", "Reshape", "Softmax",
}  # fmt: skip


@functools.cache
def model(name: str) -> onnx.ModelProto:
    """Built once per session: the big models take a fraction of a second each to build."""
    return build_model(name)


@functools.cache
def session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(model(name).SerializeToString(), providers=["CPUExecutionProvider"])


@functools.cache
def outputs(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    names = [o.name for o in session(name).get_outputs()]
    return dict(zip(names, session(name).run(None, sample_inputs(model(name), seed)), strict=True))


def _dims(value: onnx.ValueInfoProto) -> list[onnx.TensorShapeProto.Dimension]:
    return list(value.type.tensor_type.shape.dim)


@pytest.mark.parametrize("name", NAMES)
def test_model_is_valid_onnx(name):
    m = model(name)
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == 17
    assert [i.name for i in m.graph.input] == list(ZOO[name].input_shapes)
    assert [o.name for o in m.graph.output] == list(ZOO[name].output_shapes)


@pytest.mark.parametrize("name", NAMES)
def test_all_shapes_static_after_inference(name):
    m = model(name)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    graph = inferred.graph
    values = [*graph.input, *graph.value_info, *graph.output]
    declared = {v.name for v in values}
    produced = {o for node in graph.node for o in node.output}
    assert produced <= declared, f"no inferred shape for {sorted(produced - declared)[:5]}"
    for v in values:
        assert all(d.HasField("dim_value") and d.dim_value > 0 for d in _dims(v)), v.name
    for v in graph.output:
        assert tuple(d.dim_value for d in _dims(v)) == ZOO[name].output_shapes[v.name]


@pytest.mark.parametrize("name", NAMES)
def test_build_is_deterministic(name):
    assert build_model(name).SerializeToString() == model(name).SerializeToString()


@pytest.mark.parametrize("name", NAMES)
def test_node_names_unique_and_readable(name):
    names = [n.name for n in model(name).graph.node]
    assert all(names) and len(set(names)) == len(names)


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_onnxruntime_with_healthy_outputs(name):
    results = outputs(name)
    assert set(results) == set(ZOO[name].output_shapes)
    other_input = outputs(name, seed=1)
    for key, y in results.items():
        assert y.shape == ZOO[name].output_shapes[key]
        assert y.dtype == np.float32
        assert np.isfinite(y).all()
        assert y.std() > 1e-3 and np.unique(y).size > y.size // 10
        # the output depends on the input: the network did not collapse to a constant
        assert np.abs(y - other_input[key]).max() > 1e-2 * y.std()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_logits_in_sane_range(name):
    logits = outputs(name)["logits"]
    assert 0.1 < logits.std() < 10.0
    assert np.abs(logits).max() < 100.0


def test_detector_decodes_boxes_in_pixels():
    det = outputs("yolov5s_head")["detections"][0]
    xy, wh, scores = det[:, :2], det[:, 2:4], det[:, 4:]
    assert -50 < xy.min() and xy.max() < 700 and xy.std() > 100
    assert wh.min() >= 0 and wh.max() < 4 * 373
    assert scores.min() >= 0 and scores.max() <= 1 and scores.mean() < 0.1


def test_attention_output_is_layer_normalised():
    y = outputs("attention_block")["output"]
    assert np.abs(y.mean(axis=-1)).max() < 0.5
    assert 0.5 < y.std() < 2.0


def test_zoo_covers_required_operators():
    nodes = [n for name in NAMES for n in model(name).graph.node]
    missing = REQUIRED_OPS - {n.op_type for n in nodes}
    assert not missing, f"no zoo model uses {sorted(missing)}"
    groups = [a.i for n in nodes if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert max(groups) > 1, "no grouped/depthwise Conv in the zoo"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ModelError) as info:
        build_model("resnet1000")
    message = str(info.value)
    assert "\n" not in message and "resnet1000" in message
    assert all(name in message for name in ZOO)


def test_sample_inputs_are_realistic_and_seeded():
    m = model("resnet18")
    feeds = sample_inputs(m)
    x = feeds["input"]
    assert list(feeds) == ["input"] and x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    assert abs(x.mean()) < 0.5 and 0.5 < x.std() < 1.5  # ImageNet-normalised
    assert np.array_equal(x, sample_inputs(m, seed=0)["input"])
    assert not np.array_equal(x, sample_inputs(m, seed=1)["input"])
    image = sample_inputs(model("yolov5s_head"))["input"]
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.1
    tokens = sample_inputs("attention_block")["input"]
    assert tokens.shape == (1, 64, 128) and 0.8 < tokens.std() < 1.2


def test_sample_inputs_rejects_dynamic_shapes():
    m = onnx.ModelProto()
    m.CopyFrom(model("tiny_cnn"))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    with pytest.raises(ModelError, match="dynamic shape"):
        sample_inputs(m)
