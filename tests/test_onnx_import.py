"""The ONNX importer, `Graph` and the generic interpreter walker.

Single-node models built with onnx.helper are imported, run by the float interpreter and
compared with onnxruntime on random inputs; the structure of the IR (which axq ops, their
locations, bytes-backed weights, folded constants) and the one-line errors are checked
directly. The zoo models run end to end against onnxruntime.
"""

from __future__ import annotations

import functools
import gc
import re
import weakref

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    NameLoc,
    NoneAttr,
    StringAttr,
    UnknownLoc,
)

from aipuc.dialects import axq
from aipuc.dialects.tensors import numpy_from_dense
from aipuc.errors import AipucError, ModelError, UnsupportedOperatorError
from aipuc.frontend.onnx_attributes import to_builtin, to_onnx
from aipuc.frontend.onnx_import import import_onnx, import_with_placement
from aipuc.graph import Graph
from aipuc.models import ZOO, build_model, sample_inputs
from aipuc.runtime.float_interpreter import FLOAT_KERNELS
from aipuc.runtime.host import HostRunner
from aipuc.runtime.interpreter import host_runner, run_function

RNG = np.random.default_rng(0)
W = functools.partial(RNG.standard_normal, dtype=np.float32)


def make_model(
    nodes, inputs, outputs, initializers=None, opset=17, output_shapes=None, extra_opsets=()
):
    """A shape-inferred model; `inputs` maps names to shapes (float32) or (shape, dtype).

    Output types come from shape inference, unless `output_shapes` declares them (float32).
    """

    def input_info(name, spec):
        shape, dtype = (
            spec
            if isinstance(spec, tuple) and isinstance(spec[0], tuple)
            else (spec, TensorProto.FLOAT)
        )
        return helper.make_tensor_value_info(name, dtype, list(shape))

    graph = helper.make_graph(
        nodes,
        "test",
        [input_info(n, s) for n, s in inputs.items()],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, (output_shapes or {})[n])
            if n in (output_shapes or {})
            else helper.make_empty_tensor_value_info(n)
            for n in outputs
        ],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (initializers or {}).items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid(domain, version) for domain, version in (("", opset), *extra_opsets)
        ],
    )
    return onnx.shape_inference.infer_shapes(model, strict_mode=not extra_opsets, data_prop=True)


def random_feeds(graph: Graph, positive: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    feeds = {}
    for name, (shape, dtype) in graph.inputs.items():
        values = rng.standard_normal(shape)
        feeds[name] = (np.abs(values) + 0.5 if positive else values).astype(dtype)
    return feeds


def check_against_onnxruntime(
    model, positive=False, rtol=1e-4, atol=1e-5, follow_support=True
) -> Graph:
    graph = import_onnx(model, follow_support=follow_support)
    feeds = random_feeds(graph, positive)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    results = graph.run(feeds)
    assert list(results) == [o.name for o in model.graph.output]
    for (name, actual), reference in zip(results.items(), expected, strict=True):
        assert actual.dtype == reference.dtype and actual.shape == reference.shape, name
        np.testing.assert_allclose(actual, reference, rtol=rtol, atol=atol, err_msg=name)
    return graph


def op_names(graph: Graph) -> list[str]:
    return [op.name for op in graph.main.body.block.ops if op.name != "func.return"]


def compute_ops(graph: Graph) -> list[str]:
    return [name for name in op_names(graph) if name != "axq.constant"]


def node(op_type, inputs, outputs=("y",), **attrs):
    return helper.make_node(op_type, list(inputs), list(outputs), name=f"the_{op_type}", **attrs)


# ================================================================== single-node converters

X4 = {"x": (1, 4, 9, 10)}
CONV_W = W((6, 4, 3, 3))
BIAS6 = W(6)

CASES = {
    # name: (nodes, inputs, initializers, expected compute ops, options)
    "conv": (
        [node("Conv", ["x", "w", "b"], pads=[1, 1, 1, 1])],
        X4,
        {"w": CONV_W, "b": BIAS6},
        ["axq.conv2d"],
        {},
    ),
    "conv_strided_dilated_no_bias": (
        [node("Conv", ["x", "w"], strides=[2, 1], dilations=[2, 1], pads=[0, 1, 2, 0])],
        X4,
        {"w": CONV_W},
        ["axq.conv2d"],
        {},
    ),
    "conv_grouped": (
        [node("Conv", ["x", "w", "b"], group=2)],
        X4,
        {"w": W((6, 2, 3, 3)), "b": BIAS6},
        ["axq.conv2d"],
        {},
    ),
    "conv_depthwise": (
        [node("Conv", ["x", "w"], group=4, pads=[1, 1, 1, 1])],
        X4,
        {"w": W((4, 1, 3, 3))},
        ["axq.conv2d"],
        {},
    ),
    "conv_same_upper": (
        [node("Conv", ["x", "w"], strides=[2, 2], auto_pad="SAME_UPPER")],
        X4,
        {"w": W((6, 4, 4, 4))},
        ["axq.conv2d"],
        {},
    ),
    "conv_same_lower": (
        [node("Conv", ["x", "w"], strides=[2, 2], auto_pad="SAME_LOWER")],
        X4,
        {"w": W((6, 4, 4, 4))},
        ["axq.conv2d"],
        {},
    ),
    "conv_valid": (
        [node("Conv", ["x", "w"], auto_pad="VALID")],
        X4,
        {"w": CONV_W},
        ["axq.conv2d"],
        {},
    ),
    "conv_transpose": (
        [
            node(
                "ConvTranspose",
                ["x", "w", "b"],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                output_padding=[1, 1],
            )
        ],
        X4,
        {"w": W((4, 6, 3, 3)), "b": BIAS6},
        ["axq.conv_transpose2d"],
        {},
    ),
    "conv_transpose_grouped_output_shape": (
        [node("ConvTranspose", ["x", "w"], strides=[2, 2], group=2, output_shape=[18, 20])],
        X4,
        {"w": W((4, 3, 3, 3))},
        ["axq.conv_transpose2d"],
        {},
    ),
    "batchnorm_alone": (
        [node("BatchNormalization", ["x", "s", "bb", "m", "v"], epsilon=1e-3)],
        X4,
        {"s": W(4), "bb": W(4), "m": W(4), "v": np.abs(W(4)) + 0.1},
        ["axq.mul", "axq.add"],
        {},
    ),
    "gemm_transb_alpha_beta": (
        [node("Gemm", ["a", "b", "c"], transB=1, alpha=0.5, beta=2.0)],
        {"a": (3, 8)},
        {"b": W((5, 8)), "c": W(5)},
        ["axq.dense"],
        {},
    ),
    "gemm_c_matrix": (
        [node("Gemm", ["a", "b", "c"], beta=0.5)],
        {"a": (3, 8)},
        {"b": W((8, 5)), "c": W((3, 5))},
        ["axq.dense", "axq.add"],
        {},
    ),
    "gemm_c_scalar_transa": (
        [node("Gemm", ["a", "b", "c"], transA=1)],
        {"a": (8, 3)},
        {"b": W((8, 5)), "c": W(1)},
        ["axq.transpose", "axq.dense"],
        {},
    ),
    "gemm_dynamic_b": (
        [node("Gemm", ["a", "b", "c"], transB=1, alpha=2.0, beta=3.0)],
        {"a": (3, 8), "b": (5, 8), "c": (3, 5)},
        {},
        ["axq.transpose", "axq.matmul", "axq.mul", "axq.mul", "axq.add"],
        {},
    ),
    "matmul_constant_b": (
        [node("MatMul", ["a", "b"])],
        {"a": (2, 3, 8)},
        {"b": W((8, 5))},
        ["axq.dense"],
        {},
    ),
    "matmul_dynamic": (
        [node("MatMul", ["a", "b"])],
        {"a": (2, 3, 8), "b": (2, 8, 5)},
        {},
        ["axq.matmul"],
        {},
    ),
    "add_channel_constant": (
        [node("Add", ["x", "c"])],
        X4,
        {"c": W((1, 4, 1, 1))},
        ["axq.add"],
        {},
    ),
    "sub_broadcast": ([node("Sub", ["x", "z"])], {**X4, "z": (1, 1, 9, 10)}, {}, ["axq.sub"], {}),
    "mul_scalar": ([node("Mul", ["x", "c"])], X4, {"c": np.float32(1.5)}, ["axq.mul"], {}),
    "div_constant": (
        [node("Div", ["x", "c"])],
        X4,
        {"c": np.abs(W((1, 4, 1, 1))) + 0.5},
        ["axq.mul"],
        {},
    ),
    "prelu": ([node("PRelu", ["x", "slope"])], X4, {"slope": W((4, 1, 1))}, ["axq.prelu"], {}),
    "relu": ([node("Relu", ["x"])], X4, {}, ["axq.clip"], {}),
    "clip_inputs": (
        [node("Clip", ["x", "lo", "hi"])],
        X4,
        {"lo": np.float32(-0.5), "hi": np.float32(0.7)},
        ["axq.clip"],
        {},
    ),
    "clip_max_only": (
        [node("Clip", ["x", "", "hi"])],
        X4,
        {"hi": np.float32(0.2)},
        ["axq.clip"],
        {},
    ),
    "leaky_relu": ([node("LeakyRelu", ["x"], alpha=0.2)], X4, {}, ["axq.lut"], {}),
    "sigmoid": ([node("Sigmoid", ["x"])], X4, {}, ["axq.lut"], {}),
    "tanh": ([node("Tanh", ["x"])], X4, {}, ["axq.lut"], {}),
    "hard_swish": ([node("HardSwish", ["x"])], X4, {}, ["axq.lut"], {}),
    "hard_sigmoid": ([node("HardSigmoid", ["x"], alpha=0.25, beta=0.4)], X4, {}, ["axq.lut"], {}),
    "elu": ([node("Elu", ["x"], alpha=0.5)], X4, {}, ["axq.lut"], {}),
    "softplus": ([node("Softplus", ["x"])], X4, {}, ["axq.lut"], {}),
    "exp": ([node("Exp", ["x"])], X4, {}, ["axq.lut"], {}),
    "erf": ([node("Erf", ["x"])], X4, {}, ["axq.lut"], {}),
    "sqrt": ([node("Sqrt", ["x"])], X4, {}, ["axq.lut"], {"positive": True}),
    "reciprocal": ([node("Reciprocal", ["x"])], X4, {}, ["axq.lut"], {"positive": True}),
    "abs": ([node("Abs", ["x"])], X4, {}, ["axq.lut"], {}),
    "neg": ([node("Neg", ["x"])], X4, {}, ["axq.lut"], {}),
    "gelu": ([node("Gelu", ["x"])], X4, {}, ["axq.lut"], {"opset": 20}),
    "silu_pattern": (
        [node("Sigmoid", ["x"], ["s"]), node("Mul", ["x", "s"])],
        X4,
        {},
        ["axq.lut", "axq.mul"],
        {},
    ),
    "div_dynamic": (
        [node("Div", ["x", "z"])],
        {"x": (2, 3), "z": (2, 3)},
        {},
        ["axq.lut", "axq.mul"],
        {"positive": True},
    ),
    "reduce_mean_spatial": (
        [node("ReduceMean", ["x", "axes"], keepdims=0)],
        {"x": (2, 3, 4)},
        {"axes": np.array([-1])},
        ["axq.global_pool", "axq.reshape"],
        {"opset": 18},
    ),
    "softmax": ([node("Softmax", ["x"], axis=1)], X4, {}, ["axq.softmax"], {}),
    "softmax_last": ([node("Softmax", ["x"])], X4, {}, ["axq.softmax"], {}),
    "max_pool": (
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        X4,
        {},
        ["axq.max_pool"],
        {},
    ),
    "max_pool_dilated": (
        [node("MaxPool", ["x"], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 0, 0, 1])],
        X4,
        {},
        ["axq.max_pool"],
        {},
    ),
    "max_pool_same_lower": (
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")],
        X4,
        {},
        ["axq.max_pool"],
        {},
    ),
    "max_pool_ceil": (
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
        X4,
        {},
        ["axq.max_pool"],
        {},
    ),
    "avg_pool_ceil": (
        [node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
        X4,
        {},
        ["axq.avg_pool"],
        {},
    ),
    "avg_pool_exclude_pad": (
        [node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        X4,
        {},
        ["axq.avg_pool"],
        {},
    ),
    "avg_pool_include_pad": (
        [
            node(
                "AveragePool",
                ["x"],
                kernel_shape=[3, 2],
                strides=[2, 2],
                pads=[1, 0, 1, 1],
                count_include_pad=1,
            )
        ],
        X4,
        {},
        ["axq.avg_pool"],
        {},
    ),
    "global_avg_pool": ([node("GlobalAveragePool", ["x"])], X4, {}, ["axq.global_pool"], {}),
    "global_max_pool": ([node("GlobalMaxPool", ["x"])], X4, {}, ["axq.global_pool"], {}),
    "resize_nearest_scales": (
        [node("Resize", ["x", "", "s"], mode="nearest")],
        X4,
        {"s": np.array([1, 1, 2, 2], np.float32)},
        ["axq.resize"],
        {},
    ),
    "resize_nearest_asymmetric_floor": (
        [
            node(
                "Resize",
                ["x", "", "s"],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
        ],
        X4,
        {"s": np.array([1, 1, 1.5, 2.5], np.float32)},
        ["axq.resize"],
        {},
    ),
    "resize_linear_sizes": (
        [node("Resize", ["x", "", "", "sz"], mode="linear")],
        X4,
        {"sz": np.array([1, 4, 13, 7], np.int64)},
        ["axq.resize"],
        {},
    ),
    "resize_linear_align_corners": (
        [
            node(
                "Resize",
                ["x", "", "s"],
                mode="linear",
                coordinate_transformation_mode="align_corners",
            )
        ],
        X4,
        {"s": np.array([1, 1, 2, 2], np.float32)},
        ["axq.resize"],
        {},
    ),
    "resize_linear_pytorch_half_pixel": (
        [
            node(
                "Resize",
                ["x", "", "s"],
                mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel",
            )
        ],
        X4,
        {"s": np.array([1, 1, 0.5, 0.5], np.float32)},
        ["axq.resize"],
        {},
    ),
    "pad_constant": (
        [node("Pad", ["x", "p", "v"])],
        X4,
        {"p": np.array([0, 0, 1, 2, 0, 0, 3, 0]), "v": np.float32(0.5)},
        ["axq.pad"],
        {},
    ),
    "pad_reflect_axes": (
        [node("Pad", ["x", "p", "", "ax"], mode="reflect")],
        X4,
        {"p": np.array([2, 1, 0, 3]), "ax": np.array([-2, -1])},
        ["axq.pad"],
        {"opset": 18},
    ),
    "pad_edge": (
        [node("Pad", ["x", "p"], mode="edge")],
        X4,
        {"p": np.array([0, 0, 2, 2, 0, 0, 1, 1])},
        ["axq.pad"],
        {},
    ),
    "slice": (
        [node("Slice", ["x", "st", "en", "ax", "sp"])],
        X4,
        {
            "st": np.array([1, -8]),
            "en": np.array([8, 1000]),
            "ax": np.array([2, -1]),
            "sp": np.array([2, 3]),
        },
        ["axq.slice"],
        {},
    ),
    "slice_reverse": (
        [node("Slice", ["x", "st", "en", "ax", "sp"])],
        X4,
        {
            "st": np.array([-1, 100]),
            "en": np.array([-100, 2]),
            "ax": np.array([3, 2]),
            "sp": np.array([-1, -2]),
        },
        ["axq.slice"],
        {},
    ),
    "split_sizes": (
        [node("Split", ["x", "sp"], ["y0", "y1"], axis=1)],
        X4,
        {"sp": np.array([1, 3])},
        ["axq.split"],
        {"outputs": ["y0", "y1"]},
    ),
    "split_equal": (
        [node("Split", ["x"], ["y0", "y1", "y2"], axis=-1, num_outputs=3)],
        X4,
        {},
        ["axq.split"],
        {"outputs": ["y0", "y1", "y2"], "opset": 18},
    ),
    "concat_with_constant": (
        [node("Concat", ["x", "c"], axis=-3)],
        X4,
        {"c": W((1, 2, 9, 10))},
        ["axq.concat"],
        {},
    ),
    "reshape": (
        [node("Reshape", ["x", "shape"])],
        X4,
        {"shape": np.array([0, -1, 5])},
        ["axq.reshape"],
        {},
    ),
    "flatten": ([node("Flatten", ["x"], axis=2)], X4, {}, ["axq.reshape"], {}),
    "squeeze_unsqueeze": (
        [node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u", "a"])],
        X4,
        {"a": np.array([0])},
        ["axq.reshape", "axq.reshape"],
        {},
    ),
    "transpose": ([node("Transpose", ["x"], perm=[0, 2, 3, 1])], X4, {}, ["axq.transpose"], {}),
    "transpose_default": ([node("Transpose", ["x"])], X4, {}, ["axq.transpose"], {}),
    "identity_dropout_dropped": (
        [node("Identity", ["x"], ["i"]), node("Dropout", ["i", "r"], ["d"]), node("Relu", ["d"])],
        X4,
        {"r": np.float32(0.3)},
        ["axq.clip"],
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_converter_matches_onnxruntime(case):
    nodes, inputs, initializers, expected_ops, options = CASES[case]
    model = make_model(
        nodes, inputs, options.get("outputs", ["y"]), initializers, opset=options.get("opset", 17)
    )
    # the converters themselves, whether or not the accelerator runs the node
    graph = check_against_onnxruntime(
        model, positive=options.get("positive", False), follow_support=False
    )
    assert compute_ops(graph) == expected_ops


HOST_CASES = {
    "reduce_mean_channels": (
        [node("ReduceMean", ["x", "axes"])],
        {"x": (2, 3, 4)},
        {"axes": np.array([1])},
        {"opset": 18},
    ),
    "where_equal": (
        [node("Equal", ["x", "z"], ["e"]), node("Where", ["e", "x", "z"])],
        {"x": (2, 3), "z": (2, 3)},
        {},
        {},
    ),
    "integer_add": (
        [node("Add", ["x", "c"])],
        {"x": ((2, 3), TensorProto.INT64)},
        {"c": np.array(5)},
        {},
    ),
    "clip_int8_omitted_min": (
        [node("Clip", ["x", "", "hi"])],
        {"x": ((2, 3), TensorProto.INT8)},
        {"hi": np.int8(0)},
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(HOST_CASES))
def test_host_ops_match_onnxruntime(case):
    nodes, inputs, initializers, options = HOST_CASES[case]
    model = make_model(nodes, inputs, ["y"], initializers, opset=options.get("opset", 17))
    graph = check_against_onnxruntime(model)
    hosts = [op for op in graph.main.body.block.ops if isinstance(op, axq.HostOp)]
    assert [op.op_type.data for op in hosts] == [n.op_type for n in nodes]
    assert all(op.opset.value.data == options.get("opset", 17) for op in hosts)


def test_host_op_keeps_attributes_and_caches_its_evaluator():
    model = make_model([node("ReduceMax", ["x"], axes=[1], keepdims=0)], {"x": (2, 3)}, ["y"])
    graph = import_onnx(model)
    (host,) = [op for op in graph.main.body.block.ops if isinstance(op, axq.HostOp)]
    attributes = host.properties["attributes"].data
    assert {name: to_onnx(name, value) for name, value in attributes.items()} == {
        a.name: a for a in model.graph.node[0].attribute
    }
    assert host_runner(host) is host_runner(host)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(graph.run({"x": x})["y"], x.max(axis=1))


def test_upsample_is_an_asymmetric_floor_resize():
    """Upsample is deprecated (onnxruntime refuses it at opset 17); onnx.reference runs it."""
    model = make_model(
        [node("Upsample", ["x", "s"], mode="nearest")],
        X4,
        ["y"],
        {"s": np.array([1, 1, 2, 3], np.float32)},
    )
    graph = import_onnx(model)
    (resize,) = [op for op in graph.main.body.block.ops if isinstance(op, axq.ResizeOp)]
    assert resize.coordinate_transform.data == axq.CoordinateTransform.ASYMMETRIC
    assert resize.nearest_rounding.data == axq.NearestRounding.FLOOR
    x = RNG.standard_normal((1, 4, 9, 10)).astype(np.float32)
    expected = x.repeat(2, axis=2).repeat(3, axis=3)
    np.testing.assert_array_equal(graph.run({"x": x})["y"], expected)


# ================================================================== batch norm folding


def _conv_bn_model(extra_use: bool):
    channels = 6
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"], name="bn", epsilon=1e-5
        ),
    ]
    outputs = ["y"]
    if extra_use:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="side"))
        outputs.append("r")
    initializers = {
        "w": CONV_W,
        "b": BIAS6,
        "s": W(channels) + 1,
        "bb": W(channels),
        "m": W(channels),
        "v": np.abs(W(channels)) + 0.05,
    }
    return make_model(nodes, X4, outputs, initializers)


def test_batchnorm_folds_into_the_preceding_conv_exactly():
    graph = check_against_onnxruntime(_conv_bn_model(extra_use=False), rtol=0, atol=1e-5)
    assert compute_ops(graph) == ["axq.conv2d"]


def test_batchnorm_after_a_shared_conv_output_stays_mul_add():
    graph = check_against_onnxruntime(_conv_bn_model(extra_use=True), rtol=0, atol=1e-5)
    assert compute_ops(graph) == ["axq.conv2d", "axq.mul", "axq.add", "axq.clip"]
    shapes = [
        axq.shape_of(op.result)
        for op in graph.main.body.block.ops
        if isinstance(op, axq.ConstantOp)
    ][-2:]
    assert shapes == [(1, 6, 1, 1), (1, 6, 1, 1)]


# ================================================================== structure


def test_locations_are_onnx_node_names():
    model = make_model(
        [node("Conv", ["x", "w"], ["c"]), node("Relu", ["c"])], X4, ["y"], {"w": CONV_W}
    )
    ops = list(import_onnx(model).main.body.block.ops)
    locations = {op.name: op.location for op in ops}
    assert locations["axq.conv2d"] == NameLoc(StringAttr("the_Conv"), NoneAttr())
    assert locations["axq.clip"] == NameLoc(StringAttr("the_Relu"), NoneAttr())
    # an initializer is named after its tensor; the zero bias is made for the conv
    constant_locations = [op.location for op in ops if op.name == "axq.constant"]
    assert constant_locations == [
        NameLoc(StringAttr("w"), NoneAttr()),
        NameLoc(StringAttr("the_Conv"), NoneAttr()),
    ]
    quiet = import_onnx(model, propagate_span_information=False)
    assert all(op.location == UnknownLoc() for op in quiet.main.body.block.ops)
    assert 'loc("the_Conv")' in str(import_onnx(model))


def test_weights_are_bytes_backed_dense_attributes():
    model = make_model([node("Conv", ["x", "w", "b"])], X4, ["y"], {"w": CONV_W, "b": BIAS6})
    constants = [
        op for op in import_onnx(model).main.body.block.ops if isinstance(op, axq.ConstantOp)
    ]
    assert len(constants) == 2
    for op, expected in zip(constants, (CONV_W, BIAS6), strict=True):
        assert isinstance(op.value, DenseIntOrFPElementsAttr)
        assert isinstance(op.value.data, BytesAttr)
        assert len(op.value.data.data) == expected.nbytes
        np.testing.assert_array_equal(numpy_from_dense(op.value), expected)


def test_constant_shape_arithmetic_is_folded_away():
    """Flatten written the exporter way: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    nodes = [
        node("Shape", ["x"], ["shape"]),
        node("Gather", ["shape", "zero"], ["batch"]),
        node("Unsqueeze", ["batch", "axis0"], ["batch1"]),
        node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["y"]),
    ]
    model = make_model(
        nodes, X4, ["y"], {"zero": np.array(0), "axis0": np.array([0]), "minus1": np.array([-1])}
    )
    graph = check_against_onnxruntime(model)
    assert op_names(graph) == ["axq.reshape"]


def test_graph_interface_and_run_validation():
    model = make_model([node("Add", ["a", "b"])], {"a": (2, 3), "b": (1, 3)}, ["y"])
    graph = import_onnx(model)
    assert graph.inputs == {
        "a": ((2, 3), np.dtype(np.float32)),
        "b": ((1, 3), np.dtype(np.float32)),
    }
    assert graph.outputs == ["y"] and not graph.is_quantized
    a, b = np.ones((2, 3), np.float32), np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(graph.run({"a": a, "b": b})["y"], a + b)
    for feeds, words in (
        ({"a": a}, "missing ['b']"),
        ({"a": a, "b": b, "c": b}, "unknown ['c']"),
        ({"a": a, "b": a}, "shape (1, 3)"),
        ({"a": a, "b": b.astype(np.float64)}, "float32"),
    ):
        with pytest.raises(AipucError, match=re.escape(words)) as error:
            graph.run(feeds)
        assert "\n" not in str(error.value)


def test_graph_output_can_be_an_input_or_a_constant():
    model = make_model([node("Shape", ["x"], ["s"])], {"x": (2, 3)}, ["x", "s"])
    graph = import_onnx(model)
    x = np.zeros((2, 3), np.float32)
    results = graph.run({"x": x})
    assert results["x"] is x
    np.testing.assert_array_equal(results["s"], [2, 3])


# ================================================================== errors


def _error(model, error_type=ModelError) -> str:
    with pytest.raises(error_type) as error:
        import_onnx(model)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_unknown_operator_names_node_op_and_reason():
    model = make_model(
        [
            node("Relu", ["x"], ["r"]),
            helper.make_node("FancyOp", ["r"], ["y"], name="fancy", domain="com.vendor"),
        ],
        X4,
        ["y"],
        output_shapes={"y": (1, 4, 9, 10)},
        extra_opsets=[("com.vendor", 1)],
    )
    message = _error(model, UnsupportedOperatorError)
    assert "'fancy'" in message and "FancyOp" in message and "no operator" in message


@pytest.mark.parametrize(
    "nodes, initializers, words",
    [
        (
            [node("Resize", ["x", "", "s"], mode="cubic")],
            {"s": np.array([1, 1, 2, 2], np.float32)},
            "mode=cubic",
        ),
        (
            [
                node(
                    "Resize",
                    ["x", "roi", "s"],
                    mode="linear",
                    coordinate_transformation_mode="tf_crop_and_resize",
                )
            ],
            {
                "roi": np.array([0, 0, 0.1, 0.2, 1, 1, 0.8, 0.9], np.float32),
                "s": np.array([1, 1, 2, 2], np.float32),
            },
            "tf_crop_and_resize",
        ),
        (
            [node("Resize", ["x", "", "s"], mode="linear", antialias=1)],
            {"s": np.array([1, 1, 0.5, 0.5], np.float32)},
            "antialias",
        ),
        ([node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2])], {}, "Indices"),
        ([node("MaxPool", ["x"], kernel_shape=[2, 2], storage_order=1)], {}, "storage_order"),
        ([node("Pad", ["x", "p"], mode="wrap")], {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1])}, "wrap"),
        (
            [
                node(
                    "BatchNormalization",
                    ["x", "s", "b", "m", "v"],
                    ["y", "rm", "rv"],
                    training_mode=1,
                )
            ],
            {"s": W(4), "b": W(4), "m": W(4), "v": np.ones(4, np.float32)},
            "training_mode=1",
        ),
    ],
    ids=[
        "resize_cubic",
        "resize_crop",
        "resize_antialias",
        "maxpool_indices",
        "maxpool_storage_order",
        "pad_wrap",
        "batchnorm_training",
    ],
)
def test_unsupported_attributes_run_on_the_host_with_their_reason(nodes, initializers, words):
    outputs = [o for o in nodes[0].output]
    model = make_model(nodes, X4, outputs, initializers, opset=18)
    graph, placements = import_with_placement(model)
    assert [op.op_type.data for op in graph.main.walk() if isinstance(op, axq.HostOp)] == [
        nodes[0].op_type
    ]
    [placement] = placements
    assert placement.name == f"the_{nodes[0].op_type}" and words in placement.reason
    feeds = random_feeds(graph)
    try:  # the host engine: onnxruntime where it implements the node, else onnx.reference
        runner = HostRunner(model)
    except AipucError:
        runner = HostRunner(model, reference_only=True)
    expected = runner.run(feeds)
    for name, actual in graph.run(feeds).items():
        np.testing.assert_array_equal(actual, expected[name])


def test_one_dimensional_conv_runs_on_the_host():
    model = make_model([node("Conv", ["x", "w"])], {"x": (1, 4, 9)}, ["y"], {"w": W((6, 4, 3))})
    [placement] = import_with_placement(model)[1]
    assert "2-D convolution" in placement.reason
    check_against_onnxruntime(model)


def test_dynamic_resize_scales_run_on_the_host():
    model = make_model(
        [node("Resize", ["x", "", "s"])],
        {**X4, "s": (4,)},
        ["y"],
        output_shapes={"y": (1, 4, 18, 20)},
    )
    [placement] = import_with_placement(model)[1]
    assert "must be a constant initializer" in placement.reason


def test_wrong_input_count_is_a_model_error():
    model = make_model([node("Relu", ["x"])], X4, ["y"])
    model.graph.node[0].input.append("x")
    message = _error(model)
    assert "'the_Relu' (Relu) has 2 inputs" in message and "takes 1" in message


def test_dynamic_shapes_are_a_model_error():
    model = make_model([node("Relu", ["x"])], {"x": ("n", 4)}, ["y"])
    assert "no static shape" in _error(model)


# ================================================================== onnx attributes


@pytest.mark.parametrize(
    "attribute, builtin_type",
    [
        (helper.make_attribute("i", -7), IntegerAttr),
        (helper.make_attribute("f", 0.1), FloatAttr),
        (helper.make_attribute("s", "nearest"), StringAttr),
        (helper.make_attribute("raw", b"\xff\x00"), BytesAttr),
        (helper.make_attribute("ints", [3, -1, 2**40]), DenseArrayBase),
        (helper.make_attribute("no_ints", [], attr_type=onnx.AttributeProto.INTS), DenseArrayBase),
        (helper.make_attribute("floats", [0.1, -2.5e-30]), DenseArrayBase),
        (
            helper.make_attribute("no_floats", [], attr_type=onnx.AttributeProto.FLOATS),
            DenseArrayBase,
        ),
        (helper.make_attribute("strings", ["a", "bé"]), ArrayAttr),
        (helper.make_attribute("t", numpy_helper.from_array(W((2, 3)))), DenseIntOrFPElementsAttr),
        (
            helper.make_attribute("t16", numpy_helper.from_array(np.arange(4, dtype=np.float16))),
            DenseIntOrFPElementsAttr,
        ),
        (
            helper.make_attribute("tb", numpy_helper.from_array(np.array([True, False]))),
            DenseIntOrFPElementsAttr,
        ),
        (
            helper.make_attribute("tu8", numpy_helper.from_array(np.array(200, np.uint8))),
            DenseIntOrFPElementsAttr,
        ),
        (
            helper.make_attribute(
                "ts", [numpy_helper.from_array(np.arange(3)), numpy_helper.from_array(W(2))]
            ),
            ArrayAttr,
        ),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_attribute_round_trip_is_lossless(attribute, builtin_type):
    builtin = to_builtin(attribute)
    assert isinstance(builtin, builtin_type)
    back = to_onnx(attribute.name, builtin)
    if attribute.type in (onnx.AttributeProto.TENSOR, onnx.AttributeProto.TENSORS):
        tensors = (
            [attribute.t]
            if attribute.type == onnx.AttributeProto.TENSOR
            else list(attribute.tensors)
        )
        back_tensors = [back.t] if back.type == onnx.AttributeProto.TENSOR else list(back.tensors)
        assert back.type == attribute.type
        for a, b in zip(tensors, back_tensors, strict=True):
            assert a.data_type == b.data_type
            np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
    else:
        assert back == attribute


def test_graph_attributes_have_no_builtin_form():
    graph = helper.make_graph([], "g", [], [])
    with pytest.raises(UnsupportedOperatorError, match="GRAPH"):
        to_builtin(helper.make_attribute("then_branch", graph))
    bfloat = helper.make_attribute(
        "value", helper.make_tensor("t", TensorProto.BFLOAT16, [1], [1.0])
    )
    back = to_onnx("value", to_builtin(bfloat))  # bfloat16 has an xDSL element type
    assert numpy_helper.to_array(back.t) == numpy_helper.to_array(bfloat.t)


# ================================================================== interpreter walker


def test_walker_frees_arrays_after_their_last_use():
    model = make_model(
        [
            node("Relu", ["x"], ["a"]),
            node("Neg", ["a"], ["b"]),
            node("Abs", ["b"], ["c"]),
            node("Sigmoid", ["c"]),
        ],
        {"x": (4,)},
        ["y"],
    )
    graph = import_onnx(model)
    produced: list[weakref.ref] = []
    dead_when_called: list[list[bool]] = []

    def kernel(op, inputs):
        gc.collect()
        dead_when_called.append([ref() is None for ref in produced])
        result = FLOAT_KERNELS[type(op)](op, inputs)
        produced.append(weakref.ref(result[0]))
        return result

    kernels = {op_type: kernel for op_type in FLOAT_KERNELS}
    run_function(graph.main, [np.arange(4, dtype=np.float32)], kernels)
    # when the k-th op runs, results up to k-2 have been read for the last time
    assert dead_when_called == [[], [False], [True, False], [True, True, False]]


def test_walker_names_op_and_location_without_a_kernel():
    model = make_model([node("Relu", ["x"])], {"x": (4,)}, ["y"])
    graph = import_onnx(model)
    with pytest.raises(NotImplementedError, match=r'axq.clip at loc\("the_Relu"\)'):
        run_function(graph.main, [np.zeros(4, np.float32)], {})


def test_kernel_errors_carry_the_op_location():
    model = make_model([node("Relu", ["x"])], {"x": (4,)}, ["y"])
    graph = import_onnx(model)

    def broken(op, inputs):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as error:
        run_function(graph.main, [np.zeros(4, np.float32)], {axq.ClipOp: broken})
    assert any("the_Relu" in note for note in error.value.__notes__)


# ================================================================== zoo


@functools.cache
def _zoo_model(name: str) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(build_model(name), strict_mode=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_matches_onnxruntime(name):
    model = _zoo_model(name)
    graph = import_onnx(model)
    feeds = sample_inputs(model, seed=0)
    results = graph.run(feeds)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for (output, actual), expected in zip(results.items(), session.run(None, feeds), strict=True):
        error = float(np.abs(actual - expected).max())
        print(f"{name}.{output}: max abs error {error:.3g} (output std {expected.std():.3g})")
        assert error <= 1e-3 * expected.std()


def test_resnet50_imports_every_conv():
    """Its import time is measured by benchmarks/speed.py, not asserted here."""
    graph = import_onnx(_zoo_model("resnet50"))
    assert compute_ops(graph).count("axq.conv2d") == 53
