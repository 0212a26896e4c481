"""Host partitioning anywhere: host ops between accelerated segments, and the placement report."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import aipuc
from aipuc.cli import main
from aipuc.config import CompilerConfig
from aipuc.dialects import axq
from aipuc.frontend.loader import load_model
from aipuc.frontend.onnx_import import import_with_placement
from aipuc.placement import node_macs, placement_warning, segments

RNG = np.random.default_rng(11)


def _weight(name, *shape):
    """Seeded by name and shape, so a model built twice is the same model."""
    rng = np.random.default_rng(sum(map(ord, name)) + sum(shape))
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def lrn_model(lrn_channels: int = 8) -> onnx.ModelProto:
    """conv -> LRN (host) -> conv -> conv, a GoogLeNet-style normalisation in the middle."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("LRN", ["r1"], ["n1"], name="lrn", size=3),
        helper.make_node("Conv", ["n1", "w2"], ["c2"], name="conv2", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["y"], name="conv3"),
    ]
    graph = helper.make_graph(
        nodes,
        "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            _weight("w1", lrn_channels, 3, 3, 3),
            _weight("w2", 8, lrn_channels, 3, 3),
            _weight("w3", 4, 8, 1, 1),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def samples(count: int) -> list[dict[str, np.ndarray]]:
    return [{"x": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(count)]


def test_node_macs_by_hand():
    model = load_model(lrn_model())
    shapes = {
        name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
        for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)
        for name in [v.name]
    }
    shapes.update({t.name: tuple(t.dims) for t in model.graph.initializer})
    macs = {node.name: node_macs(node, shapes) for node in model.graph.node}
    assert macs == {
        "conv1": 8 * 8 * 8 * 27,
        "relu1": 0,
        "lrn": 0,
        "conv2": 8 * 8 * 8 * 72,
        "relu2": 0,
        "conv3": 8 * 8 * 4 * 8,
    }
    gemm = helper.make_node("Gemm", ["a", "b"], ["c"], transA=1)
    assert node_macs(gemm, {"a": (5, 3), "b": (5, 7), "c": (3, 7)}) == 3 * 7 * 5
    matmul = helper.make_node("MatMul", ["a", "b"], ["c"])
    assert node_macs(matmul, {"a": (2, 4, 6), "b": (2, 6, 3), "c": (2, 4, 3)}) == 2 * 4 * 3 * 6
    transposed = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    shapes = {"x": (1, 4, 5, 5), "w": (4, 6, 2, 2), "y": (1, 6, 10, 10)}
    assert node_macs(transposed, shapes) == 4 * 5 * 5 * 6 * 4


def test_a_host_op_between_convolutions_splits_the_graph_into_segments():
    graph, placements = import_with_placement(load_model(lrn_model()))
    parts = segments(graph.main)
    kinds = [[op.name for op in part.ops if not isinstance(op, axq.ConstantOp)] for part in parts]
    assert [part.on_host for part in parts] == [False, True, False]
    assert kinds == [
        ["axq.conv2d", "axq.clip"],
        ["axq.host"],
        ["axq.conv2d", "axq.clip", "axq.conv2d"],
    ]
    [host] = [p for p in placements if p.on_host]
    assert (host.name, host.op_type, host.reason) == (
        "lrn",
        "LRN",
        "LRN is not supported by the accelerator",
    )
    session = ort.InferenceSession(lrn_model().SerializeToString())
    x = samples(1)[0]
    np.testing.assert_allclose(graph.run(x)["y"], session.run(None, x)[0], rtol=1e-4, atol=1e-5)


def test_segments_keep_independent_branches_together():
    """A branch beside a host op stays in the first accelerated segment."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="a"),
        helper.make_node("Floor", ["a"], ["f"], name="floor"),
        helper.make_node("Conv", ["x", "w1"], ["b"], name="b"),  # independent of the host op
        helper.make_node("Add", ["f", "b"], ["y"], name="join"),
    ]
    graph = helper.make_graph(
        nodes,
        "branches",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w1", 2, 3, 1, 1)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    parts = segments(import_with_placement(load_model(model))[0].main)
    names = [[op.name for op in p.ops if not isinstance(op, axq.ConstantOp)] for p in parts]
    assert names == [["axq.conv2d", "axq.conv2d"], ["axq.host"], ["axq.add"]]


def test_compile_reports_placement_and_runs_every_segment(tmp_path):
    model = lrn_model()
    data = samples(9)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path)), data)
    placement = compiled.report["placement"]
    assert placement == {
        "macs_on_accelerator": 8 * 8 * 8 * 27 + 8 * 8 * 8 * 72 + 8 * 8 * 4 * 8,
        "macs_on_host": 0,
        "nodes_on_accelerator": 5,
        "nodes_on_host": 1,
        "segments": 2,
        "host_nodes": [
            {
                "name": "lrn",
                "op_type": "LRN",
                "reason": "LRN is not supported by the accelerator",
                "part": "core",
            }
        ],
    }
    assert placement == json.loads((tmp_path / "compilation_report.json").read_text())["placement"]
    quantized = compiled.core
    hosts = [op for op in quantized.main.walk() if isinstance(op, axq.HostOp)]
    assert [op.op_type.data for op in hosts] == ["LRN"]
    # the host op reads dequantized codes and its result is quantized again
    assert isinstance(hosts[0].inputs[0].owner, axq.DequantizeOp)
    assert all(isinstance(use.operation, axq.QuantizeOp) for use in hosts[0].outputs[0].uses)
    reference = ort.InferenceSession(model.SerializeToString()).run(None, data[8])[0]
    got = compiled.run_quantized(data[8])["y"]
    # the stream: segment 0 on the simulator, LRN on the host, segment 1 on the simulator
    np.testing.assert_array_equal(compiled.run(data[8])["y"], got)
    sqnr = 10 * np.log10(np.sum(reference**2) / np.sum((got - reference) ** 2))
    assert sqnr > 20
    assert compiled.report["quantization"]["output_sqnr_db"]["y"] == pytest.approx(sqnr, abs=0.05)


def one_d_conv_model() -> onnx.ModelProto:
    """A 1-D convolution (host) that holds most of the MACs, then a small 2-D conv."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1d", pads=[1, 1]),
        helper.make_node("Unsqueeze", ["c1", "axes"], ["c4"], name="to_2d"),
        helper.make_node("Conv", ["c4", "w2"], ["y"], name="conv2d"),
    ]
    graph = helper.make_graph(
        nodes,
        "one_d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            _weight("w1", 16, 16, 3),
            _weight("w2", 2, 16, 1, 1),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_cli_prints_the_placement_and_warns_about_host_macs(tmp_path, capsys):
    path = tmp_path / "one_d.onnx"
    onnx.save(one_d_conv_model(), path)
    out = tmp_path / "build"
    assert main(["compile", str(path), "--synthetic-calibration", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    placement = json.loads((out / "compilation_report.json").read_text())["placement"]
    host_macs = 32 * 16 * 48  # the 1-D conv: 16 x 32 outputs, 16 x 3 taps each
    assert placement["macs_on_host"] == host_macs
    assert placement["macs_on_accelerator"] == 32 * 2 * 16
    share = 100 * placement["macs_on_accelerator"] / (host_macs + 32 * 2 * 16)
    assert f"placement  {share:.2f}% of {host_macs + 1024:,} MACs on the accelerator" in printed
    warning = next(line for line in printed.splitlines() if line.startswith("warning: "))
    assert "of the MACs run on the host" in warning and "conv1d (Conv: " in warning
    assert "2-D convolution" in warning
    assert placement_warning(placement) == warning


def test_no_warning_when_the_host_runs_no_macs():
    placement = {
        "macs_on_accelerator": 1000,
        "macs_on_host": 10,
        "host_nodes": [{"name": "lrn", "op_type": "LRN", "reason": "r", "part": "core"}],
    }
    assert placement_warning(placement) is None  # 1% exactly is not more than 1%
    assert "lrn (LRN: r)" in placement_warning({**placement, "macs_on_host": 11})


# ------------------------------------------------------------------ real architectures

SMALL = {
    "resnet50_sum": {"width": 8, "blocks": (1, 1, 1, 1), "size": 32},
    "shufflenet_v2": {"widths": (8, 16, 32, 64), "repeats": (2, 1, 1), "size": 32},
    "squeezenet1_1": {"size": 48, "classes": 10},
    "mobilenet_v3_small": {"size": 32, "width": 0.25, "blocks": 5},
    "unet": {"base": 4, "depth": 2, "size": 32},
    "transformer_encoder": {"dim": 32, "heads": 2, "layers": 1, "tokens": 8},
    "crnn": {"width": 32, "hidden": 16, "classes": 5, "channels": (8, 8, 16, 16)},
    "googlenet": {"size": 64, "width": 0.125, "classes": 10},
}
"""Small versions of `architectures.ARCHITECTURES` (docs/coverage.md measures full size)."""

EVERY_OP_TYPE = {
    "resnet50_sum": {"Sum", "BatchNormalization", "MaxPool", "Flatten", "Gemm"},
    "shufflenet_v2": {"Split", "Transpose", "Reshape", "Concat", "ReduceMean"},
    "squeezenet1_1": {"Concat", "Dropout", "GlobalAveragePool", "Flatten"},
    "mobilenet_v3_small": {"Clip", "Div", "HardSigmoid", "GlobalAveragePool", "Mul", "Dropout"},
    "unet": {"ConvTranspose", "Resize", "Concat", "Sigmoid"},
    "transformer_encoder": {"ReduceMean", "Pow", "Sqrt", "Erf", "Softmax", "Transpose"},
    "crnn": {"Squeeze", "Transpose", "LSTM", "LogSoftmax"},
    "googlenet": {"LRN", "MaxPool", "Concat", "AveragePool", "Dropout", "Flatten", "Gemm"},
}
"""Exporter idioms each architecture must keep, so its coverage cannot silently shrink."""


@pytest.fixture(scope="module", params=sorted(SMALL))
def architecture(request, tmp_path_factory):
    """(name, model, compiled through the lowering, held-out sample)."""
    from aipuc.models.architectures import ARCHITECTURES, input_feeds

    name = request.param
    model = ARCHITECTURES[name](**SMALL[name])
    data = [input_feeds(model, seed) for seed in range(3)]
    folder = tmp_path_factory.mktemp(name)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(folder)), data[:2])
    return name, model, compiled, data[2]


def test_architectures_run_on_the_accelerator_bit_exactly(architecture):
    """Every MAC of these exports runs on the accelerator except the text recognizer's LSTM
    (recurrent, on the host by design), GoogLeNet's two LRNs run on the host between
    accelerated segments, and the instruction stream equals the integer reference bit for
    bit, host parts included."""
    name, model, compiled, sample = architecture
    onnx.checker.check_model(model, full_check=True)  # valid as torch would export it
    assert EVERY_OP_TYPE[name] <= {node.op_type for node in model.graph.node}
    placement = compiled.report["placement"]
    host = [(n["op_type"], n["part"]) for n in placement["host_nodes"]]
    if name == "crnn":
        assert host == [("LSTM", "core"), ("LogSoftmax", "postamble")]
        assert placement["segments"] == 2  # the convolutions, then the classifier after the LSTM
        # the LSTM: 10 steps x 2 directions x 4 gates x 16 units x (16 inputs + 16 recurrent)
        assert placement["macs_on_host"] == 10 * 2 * 4 * 16 * (16 + 16)
    elif name == "googlenet":
        # the stem's two LRNs, each between convolutions: conv-pool | LRN | conv-conv | LRN |
        # the pool and the nine inception modules
        assert host == [("LRN", "core"), ("LRN", "core")]
        assert placement["segments"] == 3 and placement["macs_on_host"] == 0
    else:
        assert host == [] and placement["macs_on_host"] == 0
        assert placement["segments"] == 1
    assert placement["macs_on_accelerator"] > 0
    streamed, reference = compiled.run(sample), compiled.run_quantized(sample)
    assert streamed.keys() == reference.keys() == {"output"}
    np.testing.assert_array_equal(streamed["output"], reference["output"])
    expected = ort.InferenceSession(model.SerializeToString()).run(None, sample)[0]
    assert streamed["output"].shape == expected.shape
    floats = aipuc.import_model(model).run(sample)["output"]
    np.testing.assert_allclose(floats, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def lowering_coverage_model() -> onnx.ModelProto:
    """The ops this work brought onto the accelerator, each with its own lowering: n-ary Max,
    Min, Mean and Sum, reflect and edge Pad, a padded AveragePool without the padding in its
    divisor, LayerNormalization, a stride-2x1 depthwise convolution."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv_a", pads=[1] * 4),
        helper.make_node("Conv", ["x", "w2"], ["b"], name="conv_b", pads=[1] * 4),
        helper.make_node("Conv", ["x", "w3"], ["c"], name="conv_c", pads=[1] * 4),
        helper.make_node("Max", ["a", "b", "c"], ["hi"], name="max3"),
        helper.make_node("Min", ["a", "b", "c"], ["lo"], name="min3"),
        helper.make_node("Mean", ["a", "b", "c"], ["mean"], name="mean3"),
        helper.make_node("Sum", ["hi", "lo", "mean"], ["s"], name="sum3"),
        helper.make_node("Pad", ["s", "pads"], ["r"], name="reflect", mode="reflect"),
        helper.make_node("Pad", ["r", "pads"], ["e"], name="edge", mode="edge"),
        helper.make_node(
            "AveragePool",
            ["e"],
            ["p"],
            name="pool",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            count_include_pad=0,
        ),
        helper.make_node(
            "Conv", ["p", "dw"], ["d"], name="dw_2x1", group=8, strides=[2, 1], pads=[1] * 4
        ),
        helper.make_node("LayerNormalization", ["d", "gamma", "beta"], ["y"], name="norm"),
    ]
    rng = np.random.default_rng(5)
    graph = helper.make_graph(
        nodes,
        "lowering_coverage",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            _weight("w1", 8, 3, 3, 3),
            _weight("w2", 8, 3, 3, 3),
            _weight("w3", 8, 3, 3, 3),
            _weight("dw", 8, 1, 3, 3),
            numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
            numpy_helper.from_array(rng.uniform(0.5, 1.5, 12).astype(np.float32), "gamma"),
            numpy_helper.from_array(rng.normal(0, 0.1, 12).astype(np.float32), "beta"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_new_accelerator_ops_lower_and_run_bit_exactly(tmp_path):
    model = lowering_coverage_model()
    data = samples(3)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path)), data[:2])
    placement = compiled.report["placement"]
    assert placement["host_nodes"] == [] and placement["segments"] == 1
    ops = {op.name for op in compiled.core.main.walk()}
    assert {"axq.max", "axq.min", "axq.layer_norm", "axq.pad", "axq.avg_pool"} <= ops
    assert "axq.host" not in ops
    lowered = (tmp_path / "lowered" / "model.mlir").read_text()
    assert "aipu.dpu.frsqrt" in lowered and "aipu.dpu.fvec" in lowered
    got = compiled.run_quantized(data[2])["y"]
    np.testing.assert_array_equal(compiled.run(data[2])["y"], got)
    reference = ort.InferenceSession(model.SerializeToString()).run(None, data[2])[0]
    assert got.shape == reference.shape == (1, 8, 6, 12)
    sqnr = 10 * np.log10(np.sum(reference**2) / np.sum((got - reference) ** 2))
    assert sqnr > 15
