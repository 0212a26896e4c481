"""Minimised repros of the bugs the lowering fuzz (tests/test_lowering_fuzz.py) found: each
compiles a tiny model end to end and checks the stream against `run_quantized` bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
from lowering_harness import assert_stream_equals_reference, lower, quantize
from onnx import TensorProto, helper, numpy_helper

from aipuc.models.architectures import input_feeds, mobilenet_v3_small
from aipuc.models.builder import IR_VERSION, OPSET


def single_node_model(node, input_shape, output_shape, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node],
        "repro",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def compile_and_compare(model: onnx.ModelProto, shape, tmp_path, **fields) -> None:
    samples = [
        {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}
        for seed in range(2)
    ]
    compiled = quantize(model, samples, tmp_path / "quantized")
    lower(tmp_path / "quantized", tmp_path / "lowered", **fields)
    references = [compiled.run_quantized(sample) for sample in samples]
    assert_stream_equals_reference(tmp_path / "lowered", references, samples)


def test_dense_layer_on_two_batches_of_tokens(tmp_path):
    """rewrite-dense-to-conv2d turned a dense layer on [2, 3, 8] into a conv2d between
    reshapes [2, 3, 8] -> [6, 8, 1, 1], which validate-operators then rejected as not
    layout-free: every batch > 1 token model failed to compile. The dense layer now stays."""
    weight = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    model = single_node_model(node, [2, 3, 8], [2, 3, 4], [numpy_helper.from_array(weight, "w")])
    compile_and_compare(model, (2, 3, 8), tmp_path)


def test_depth_first_group_reading_int32_interpolation_sums(tmp_path):
    """A linear resize is a DPU layer making int32 sums, then one reducing them to int8; with
    tiling_depth > 1 the second heads a depth-first group with the PReLU after it, and the
    group staged its int32 input in an int8 L1 buffer (mem-bufferize left IR that did not
    verify: "DMA copies like to like")."""
    scales = numpy_helper.from_array(np.array([1, 1, 3, 3], np.float32), "scales")
    slope = numpy_helper.from_array(np.full((8, 1, 1), 0.25, np.float32), "slope")
    resize = helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="linear")
    prelu = helper.make_node("PRelu", ["r", "slope"], ["y"])
    graph = helper.make_graph(
        [resize, prelu],
        "repro",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 9])],
        [scales, slope],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    compile_and_compare(model, (1, 8, 2, 3), tmp_path, tiling_depth=2)


def test_depth_first_group_headed_by_a_squeeze_excitation_scale(tmp_path):
    """MobileNetV3's squeeze-excitation multiplies a [1, C, 1, 1] scale into the feature
    map; with tiling_depth > 1 that multiplication headed a depth-first group whose tiled
    input was taken to be the scale, its first operand (mem-bufferize left IR that did not
    verify: "view out of bounds in dimension 1"). The rows come from the full-height operand."""
    model = mobilenet_v3_small(size=32, width=0.25, blocks=5)
    samples = [input_feeds(model, seed) for seed in range(2)]
    compiled = quantize(model, samples, tmp_path / "quantized")
    lower(tmp_path / "quantized", tmp_path / "lowered", tiling_depth=4)
    references = [compiled.run_quantized(sample) for sample in samples]
    assert_stream_equals_reference(tmp_path / "lowered", references, samples)
