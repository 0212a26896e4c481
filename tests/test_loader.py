"""Safe model loading: every error path is a one-line ModelError; good models come out static."""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aipuc.errors import ModelError
from aipuc.frontend import loader
from aipuc.frontend.loader import load_model
from aipuc.frontend.torch_export import export_torch
from aipuc.runtime.host import HostRunner


def make_model(nodes, inputs, outputs, initializers=(), opset=17, value_info=()):
    graph = helper.make_graph(
        nodes, "test", inputs, outputs, list(initializers), value_info=list(value_info)
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def tensor(name, shape, elem_type=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem_type, shape)


def conv_relu(batch="N", height=8):
    """x[batch,3,height,8] -> Conv 3x3 (4 channels) -> Relu -> y."""
    weight = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w"
    )
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    return make_model(nodes, [tensor("x", [batch, 3, height, 8])], [tensor("y", None)], [weight])


def single_line_error(match: str, source, **kwargs) -> ModelError:
    with pytest.raises(ModelError, match=match) as caught:
        load_model(source, **kwargs)
    assert "\n" not in str(caught.value)
    return caught.value


# ------------------------------------------------------------------------------ good models


def test_loads_path_bytes_and_proto_without_touching_the_callers_model(tmp_path):
    model = conv_relu()
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    for source in (path, str(path), path.read_bytes(), model, tmp_path):
        loaded = load_model(source)
        assert [d.dim_value for d in loaded.graph.output[0].type.tensor_type.shape.dim] == [
            1,
            4,
            8,
            8,
        ]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_dynamic_batch_becomes_one_and_input_shapes_override():
    loaded = load_model(conv_relu(height="H"), input_shapes={"x": (2, 3, 16, 8)})
    dims = [d.dim_value for d in loaded.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [2, 4, 16, 8]


def test_dynamic_non_batch_dim_says_how_to_fix():
    error = single_line_error("dynamic dimension 2", conv_relu(height="H"))
    assert "'x'" in str(error) and "'H'" in str(error)
    assert "--input-shape x=1x3x224x8" in str(error) and "input_shapes=" in str(error)


def test_input_shapes_errors():
    single_line_error("not model inputs", conv_relu(), input_shapes={"image": (1, 3, 8, 8)})
    single_line_error("has 3 dimensions", conv_relu(), input_shapes={"x": (3, 8, 8)})
    single_line_error("positive integers", conv_relu(), input_shapes={"x": (1, 3, 0, 8)})


def test_unnamed_unsorted_nodes_are_named_and_sorted():
    nodes = [helper.make_node("Relu", ["a"], ["y"]), helper.make_node("Neg", ["x"], ["a"])]
    loaded = load_model(make_model(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])]))
    assert [(n.op_type, n.name) for n in loaded.graph.node] == [
        ("Neg", "Neg_1"),
        ("Relu", "Relu_0"),
    ]


def test_initializers_listed_as_inputs_become_constants():
    model = conv_relu()
    model.graph.input.append(tensor("w", [4, 3, 3, 3]))
    loaded = load_model(model)
    assert [v.name for v in loaded.graph.input] == ["x"]


def test_opset_13_model_is_converted_and_computes_the_same():
    rng = np.random.default_rng(1)
    stats = [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 3).astype(np.float32), name)
        for name in ("scale", "bias", "mean", "var")
    ]
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    nodes = [
        helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["y"]),
    ]
    model = make_model(
        nodes, [tensor("x", [1, 3, 4, 4])], [tensor("y", [1, 48])], [*stats, shape], opset=13
    )
    loaded = load_model(model)
    assert [o.version for o in loaded.opset_import if o.domain == ""] == [17]
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        HostRunner(loaded).run({"x": x})["y"], HostRunner(model).run({"x": x})["y"]
    )


def test_failed_opset_conversion():
    node = helper.make_node("Dropout", ["x"], ["y"], is_test=0)
    model = make_model([node], [tensor("x", [1, 4])], [tensor("y", [1, 4])], opset=6)
    single_line_error("cannot convert the model from opset 6 to 17", model)


def test_shape_arithmetic_on_a_dynamic_batch_is_folded():
    """Shape -> Div -> Reshape: data propagation stops at Div; folding makes it static."""
    two = numpy_helper.from_array(np.array([1, 2, 1], np.int64), "two")
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Div", ["s", "two"], ["half"]),
        helper.make_node("Reshape", ["x", "half"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    model = make_model(nodes, [tensor("x", ["N", 8, 4])], [tensor("y", None)], [two])
    loaded = load_model(model)
    dims = [d.dim_value for d in loaded.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 4, 4]


def test_value_dependent_shapes_are_allowed_downstream_of_nonzero():
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"]),
        helper.make_node("Transpose", ["nz"], ["y"], perm=[1, 0]),
    ]
    model = make_model(nodes, [tensor("x", [4, 4])], [tensor("y", None, TensorProto.INT64)])
    assert load_model(model).graph.node[0].op_type == "NonZero"


def test_intermediate_tensor_without_static_shape():
    """A Reshape whose target shape is computed from input values cannot be resolved."""
    nodes = [
        helper.make_node("Cast", ["x"], ["shape"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["data", "shape"], ["y"], name="reshape"),
    ]
    model = make_model(nodes, [tensor("x", [2]), tensor("data", [4, 4])], [tensor("y", None)])
    error = single_line_error("tensor 'y'", model)
    assert "reshape" in str(error) and "static shapes" in str(error)


# ------------------------------------------------------------------------------ file errors


def test_missing_file(tmp_path):
    single_line_error("model file not found", tmp_path / "nope.onnx")


def test_directory_needs_exactly_one_onnx_file(tmp_path):
    single_line_error(r"exactly one \.onnx file \(found: none\)", tmp_path)
    onnx.save(conv_relu(), tmp_path / "a.onnx")
    onnx.save(conv_relu(), tmp_path / "b.onnx")
    single_line_error("found: a.onnx, b.onnx", tmp_path)


def test_truncated_and_corrupt_protobuf(tmp_path):
    data = conv_relu().SerializeToString()
    for cut in (len(data) // 2, len(data) - 3, 7):
        single_line_error("truncated|corrupt", data[:cut])
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\xff\xfe not a protobuf at all")
    single_line_error("not a valid ONNX protobuf|not an ONNX model", path)


def test_unsupported_source_type():
    single_line_error("cannot load a model from a int", 42)


# ------------------------------------------------------------------------------ external data


def external_model(tmp_path, location, data_bytes=None):
    """Saves conv_relu() with its weight `w` pointing at `location`; returns the model path."""
    model = conv_relu()
    weight = model.graph.initializer[0]
    raw = numpy_helper.to_array(weight).tobytes()
    weight.ClearField("float_data")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (
        ("location", location),
        ("offset", "0"),
        ("length", str(len(raw) if data_bytes is None else len(data_bytes))),
    ):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "model" / "model.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path, raw


def test_external_data_next_to_the_model_loads(tmp_path):
    path, raw = external_model(tmp_path, "weights/w.bin")
    (path.parent / "weights").mkdir()
    (path.parent / "weights" / "w.bin").write_bytes(raw)
    loaded = load_model(path)
    np.testing.assert_array_equal(
        numpy_helper.to_array(loaded.graph.initializer[0]),
        numpy_helper.to_array(conv_relu().graph.initializer[0]),
    )


@pytest.fixture
def no_external_reads(monkeypatch):
    """Fails the test if any external data is read: validation must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("external data was read before validation")

    monkeypatch.setattr(onnx, "load_external_data_for_model", refuse)


def test_absolute_external_location_is_refused(tmp_path, no_external_reads):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 432)
    path, _ = external_model(tmp_path, str(secret))
    single_line_error("is absolute", path)


def test_external_location_with_dotdot_is_refused(tmp_path, no_external_reads):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 432)
    path, _ = external_model(tmp_path, "../secret.bin")
    single_line_error(r"contains '\.\.'", path)


def test_external_symlink_escaping_the_folder_is_refused(tmp_path, no_external_reads):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 432)
    path, _ = external_model(tmp_path, "w.bin")
    os.symlink(secret, path.parent / "w.bin")
    single_line_error("resolves outside the model's folder", path)


def test_missing_external_file(tmp_path, no_external_reads):
    path, _ = external_model(tmp_path, "w.bin")
    single_line_error("not found; copy it next to the model", path)


def test_truncated_external_file(tmp_path, no_external_reads):
    path, raw = external_model(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(raw[:100])
    single_line_error("the file is truncated", path)


def test_external_data_without_a_folder(tmp_path):
    path, _ = external_model(tmp_path, "w.bin")
    single_line_error("not given as a file", path.read_bytes())


# ------------------------------------------------------------------------------ graph errors


def test_empty_graph():
    single_line_error("graph is empty", make_model([], [tensor("x", [1])], [tensor("x", [1])]))


def test_cycle_names_its_nodes():
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Relu", ["b"], ["y"], name="out"),
    ]
    model = make_model(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])])
    single_line_error("cycle: (first -> second -> first|second -> first -> second)", model)


def test_dangling_input_names_node_and_tensor():
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    model = make_model(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])])
    single_line_error("node 'adder' \\(Add\\) reads tensor 'ghost'", model)


def test_duplicate_output_names():
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="one"),
        helper.make_node("Neg", ["x"], ["y"], name="two"),
    ]
    model = make_model(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])])
    single_line_error("tensor 'y' is produced twice, by node 'one'", model)
    model = make_model(nodes[:1], [tensor("x", [1, 4])], [tensor("y", [1, 4])] * 2)
    single_line_error("listed twice", model)


# ------------------------------------------------------------------------------ torch


def test_torch_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ModelError, match=r"pip install aipuc\[torch\]"):
        export_torch(object(), np.zeros((1, 3)), 17)
    single_line_error(r"pip install aipuc\[torch\]", object(), example_input=np.zeros((1, 3)))


def test_torch_module_round_trip():
    torch = pytest.importorskip("torch", reason="torch is the optional extra aipuc[torch]")
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()
    example = torch.randn(1, 3, 8, 8)
    with pytest.raises(ModelError, match="needs example_input"):
        load_model(module)
    model = load_model(module, example_input=example)
    got = HostRunner(model).run({"input": example.numpy()})
    with torch.no_grad():
        expected = module(example).numpy()
    np.testing.assert_allclose(next(iter(got.values())), expected, rtol=1e-5, atol=1e-5)


def test_min_opset():
    with pytest.raises(ModelError, match="onnx_opset_version >= 17"):
        load_model(conv_relu(), opset=13)
    assert loader.MIN_OPSET == 17


def test_ceil_mode_pool_window_may_reach_past_a_small_map(tmp_path):
    """GoogLeNet's ceil-mode 3x3/2 pools on a 2x2 map (a 32x32 input) give one window over
    all of it, as onnxruntime and torch compute; only a window past `stride - 1` is refused.
    The float run matches onnxruntime and the stream equals `run_quantized` bit for bit."""
    import onnxruntime

    import aipuc
    from aipuc.config import CompilerConfig

    rng = np.random.default_rng(3)
    pool = {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["m"], name="max", **pool),
        helper.make_node("AveragePool", ["c"], ["a"], name="avg", **pool),
        helper.make_node("Add", ["m", "a"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "w2"], ["y"], name="head"),
    ]
    weights = [
        numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
        for name, shape in (("w", (8, 3, 3, 3)), ("w2", (4, 8, 1, 1)))
    ]
    model = make_model(nodes, [tensor("x", [1, 3, 2, 2])], [tensor("y", None)], weights)
    data = [{"x": rng.standard_normal((1, 3, 2, 2)).astype(np.float32)} for _ in range(3)]
    expected = onnxruntime.InferenceSession(model.SerializeToString()).run(None, data[2])[0]
    assert expected.shape == (1, 4, 1, 1)
    floats = aipuc.import_model(model).run(data[2])["y"]
    np.testing.assert_allclose(floats, expected, rtol=1e-5, atol=1e-5)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path)), data[:2])
    assert compiled.report["placement"]["host_nodes"] == []
    np.testing.assert_array_equal(compiled.run(data[2])["y"], compiled.run_quantized(data[2])["y"])

    wider = {**pool, "kernel_shape": [4, 4]}  # 2 past the map; ceil mode allows stride - 1
    too_far = make_model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", **wider)],
        [tensor("x", [1, 3, 2, 2])],
        [tensor("y", None)],
    )
    with pytest.raises(ModelError, match=r"node 'pool'.*kernel \[4, 4\].*larger than the input"):
        load_model(too_far)
