"""Operator support rules: a supported and an unsupported case for every constrained operator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from aipuc.frontend.support import (
    GraphIndex,
    check_node,
    is_accelerated,
    is_layout_free_reshape,
    validate_operators,
)

X4 = (1, 64, 16, 16)


def node(op_type, inputs, outputs=("y",), **attrs):
    return helper.make_node(
        op_type, list(inputs), list(outputs), name=f"{op_type.lower()}0", **attrs
    )


def reasons(op, shapes, constants=None, graph=None):
    return check_node(op, shapes, constants or {}, graph=graph)


def conv_case(weight_shape, out_shape, **attrs):
    op = node("Conv", ["x", "w"], **attrs)
    return reasons(
        op, {"x": X4, "w": weight_shape, "y": out_shape}, {"w": np.zeros(weight_shape, np.float32)}
    )


def test_always_supported_and_unknown_ops():
    for op_type in (
        "Relu",
        "Sigmoid",
        "Tanh",
        "HardSwish",
        "HardSigmoid",
        "LeakyRelu",
        "Erf",
        "Sqrt",
        "Reciprocal",
        "Exp",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Transpose",
        "Reshape",
        "Flatten",
        "Concat",
    ):
        assert is_accelerated(node(op_type, ["x"]), {"x": X4, "y": X4}, {}), op_type
    assert reasons(node("LRN", ["x"], size=3), {"x": X4, "y": X4}) == [
        "LRN is not supported by the accelerator"
    ]
    assert reasons(node("Relu", ["x"], domain="custom"), {"x": X4, "y": X4})
    assert reasons(node("Relu", ["x"]), {"x": (1, None, 4), "y": (1, None, 4)}) == [
        "tensor 'x' has no static shape",
        "tensor 'y' has no static shape",
    ]


def test_batch_normalization_needs_constant_statistics():
    op = node("BatchNormalization", ["x", "s", "b", "m", "v"])
    shapes = {"x": X4, "y": X4, **{name: (64,) for name in "sbmv"}}
    constants = {name: np.ones(64, np.float32) for name in "sbmv"}
    assert reasons(op, shapes, constants) == []
    without_mean = {name: value for name, value in constants.items() if name != "m"}
    assert "mean 'm' must be a constant" in reasons(op, shapes, without_mean)[0]
    assert (
        "training_mode=1"
        in reasons(
            node("BatchNormalization", ["x", "s", "b", "m", "v"], training_mode=1),
            shapes,
            constants,
        )[0]
    )


def test_conv():
    assert conv_case((32, 64, 3, 3), (1, 32, 16, 16), pads=[1, 1, 1, 1]) == []
    # the importer resolves auto_pad into explicit pads
    assert conv_case((32, 64, 3, 3), (1, 32, 16, 16), auto_pad="SAME_UPPER") == []
    depthwise = (64, 1, 3, 3)
    assert conv_case(depthwise, (1, 64, 8, 8), group=64, strides=[2, 2], pads=[1] * 4) == []
    # a non-square stride is a square-stride conv and a subsample
    assert conv_case(depthwise, (1, 64, 16, 8), group=64, strides=[1, 2], pads=[1] * 4) == []
    assert "square kernel, got 3x5" in conv_case((64, 1, 3, 5), X4, group=64)[0]
    assert "square dilation" in conv_case(depthwise, X4, group=64, dilations=[2, 1])[0]
    assert conv_case((64, 1, 11, 11), X4, group=64) == []  # area 121 < 128
    assert "area 12x12=144 must be < 128" in conv_case((64, 1, 12, 12), X4, group=64)[0]
    computed_weight = node("Conv", ["x", "w"])
    assert (
        "'w' must be a constant"
        in reasons(computed_weight, {"x": X4, "w": (4, 64, 1, 1), "y": (1, 4, 16, 16)})[0]
    )
    conv1d = node("Conv", ["x", "w"])
    assert (
        "2-D convolution on 4-D"
        in reasons(
            conv1d,
            {"x": (1, 4, 8), "w": (4, 4, 3), "y": (1, 4, 6)},
            {"w": np.zeros((4, 4, 3), np.float32)},
        )[0]
    )


def test_conv_transpose():
    def case(**attrs):
        op = node("ConvTranspose", ["x", "w"], **attrs)
        return reasons(
            op,
            {"x": X4, "w": (64, 8, 2, 2), "y": (1, 8, 32, 32)},
            {"w": np.zeros((64, 8, 2, 2), np.float32)},
        )

    assert case(strides=[2, 2]) == []
    assert case(strides=[2, 2], pads=[1, 1, 1, 1]) == []
    assert "asymmetric" in case(strides=[2, 2], pads=[0, 0, 1, 1])[0]
    assert "needs group 1" in case(group=2)[0]
    assert case(strides=[2, 2], output_shape=[32, 32]) == []  # implied pads: 0 and 0
    assert "asymmetric" in case(strides=[2, 2], output_shape=[31, 31])[0]  # 1 and 0


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean"])
def test_elementwise_ops_broadcast_anything(op_type):
    """The strided DMA replicates a broadcast operand (zero strides)."""
    op = node(op_type, ["a", "b"])
    for a, b in [
        (X4, X4),
        (X4, (1, 64, 1, 1)),
        (X4, ()),
        ((1, 49, 96), (96,)),
        (X4, (1, 1, 16, 16)),  # spatial attention map
        ((1, 8, 16), (1, 8, 1)),  # per token
    ]:
        out = np.broadcast_shapes(a, b)
        assert reasons(op, {"a": a, "b": b, "y": out}) == [], (a, b)


def test_pow_needs_a_constant_scalar_exponent():
    shapes = {"x": X4, "p": (), "y": X4}
    assert reasons(node("Pow", ["x", "p"]), shapes, {"p": np.array(2.0, np.float32)}) == []
    assert "constant scalar" in reasons(node("Pow", ["x", "p"]), shapes)[0]
    assert (
        "constant scalar"
        in reasons(node("Pow", ["x", "p"]), {**shapes, "p": (64,)}, {"p": np.ones(64, np.float32)})[
            0
        ]
    )


def test_average_pool():
    def case(**attrs):
        return reasons(node("AveragePool", ["x"], kernel_shape=[3, 3], **attrs), {"x": X4, "y": X4})

    assert case() == []
    assert case(pads=[1, 1, 1, 1], count_include_pad=1) == []
    assert case(pads=[1, 1, 1, 1]) == []  # per-position divisors
    assert case(auto_pad="SAME_UPPER") == []
    assert "dilated average pooling" in case(dilations=[2, 2])[0]


def test_max_pool():
    shapes = {"x": X4, "y": X4, "i": X4}
    assert reasons(node("MaxPool", ["x"], kernel_shape=[2, 2]), shapes) == []
    assert (
        "storage_order"
        in reasons(node("MaxPool", ["x"], kernel_shape=[2, 2], storage_order=1), shapes)[0]
    )
    assert "Indices" in reasons(node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2]), shapes)[0]


def test_reductions_over_spatial_axes_are_global_pools():
    shapes = {"x": X4, "y": (1, 64, 1, 1), "a": (2,)}
    spatial = {"a": np.array([2, 3], np.int64)}
    for op_type in ("ReduceMean", "ReduceMax"):
        assert reasons(node(op_type, ["x", "a"]), shapes, spatial) == []
        assert reasons(node(op_type, ["x"], axes=[-1, -2]), shapes) == []
        assert "only over all spatial axes" in reasons(node(op_type, ["x"], axes=[1]), shapes)[0]
        assert "axes input must be a constant" in reasons(node(op_type, ["x", "a"]), shapes)[0]


def test_clip():
    op = node("Clip", ["x", "lo", "hi"])
    shapes = {"x": X4, "y": X4, "lo": (), "hi": ()}

    def bounds(lo, hi):
        return {"lo": np.array(lo, np.float32), "hi": np.array(hi, np.float32)}

    assert reasons(op, shapes, bounds(0, 6)) == []  # ReLU6
    assert reasons(op, shapes, bounds(-1, 1)) == []  # HardTanh
    assert reasons(op, shapes, bounds(1, -1)) == []  # min > max: everything is max
    assert reasons(node("Clip", ["x", "lo"]), shapes, bounds(0, 6)) == []  # no upper bound
    assert "'hi' must be a constant" in reasons(op, shapes, {"lo": np.array(0, np.float32)})[0]


def test_data_movement_of_any_layout():
    for axis in (0, 1, 2, 3, -1):
        shapes = {"a": X4, "b": X4, "y": (1, 128, 16, 16)}
        assert reasons(node("Concat", ["a", "b"], axis=axis), shapes) == []
    assert (
        reasons(node("Concat", ["a", "b"], axis=1), {"a": (1, 4), "b": (1, 4), "y": (1, 8)}) == []
    )
    assert (
        reasons(node("Transpose", ["x"], perm=[0, 2, 3, 1]), {"x": X4, "y": (1, 16, 16, 64)}) == []
    )
    split = {"x": (2, 64, 16, 16), "a": X4, "b": X4, "s": (2,)}
    assert reasons(node("Split", ["x"], ["a", "b"], axis=0), split) == []
    assert "split sizes" in reasons(node("Split", ["x", "s"], ["a", "b"], axis=0), split)[0]


def test_gemm():
    shapes = {"a": (1, 64), "w": (10, 64), "y": (1, 10)}
    constants = {"w": np.zeros((10, 64), np.float32)}
    assert reasons(node("Gemm", ["a", "w"], transB=1), shapes, constants) == []
    transposed = {**shapes, "a": (64, 1)}
    assert reasons(node("Gemm", ["a", "w"], transA=1, transB=1), transposed, constants) == []
    assert "must be a constant" in reasons(node("Gemm", ["a", "w"], transB=1), shapes)[0]


def test_prelu():
    op = node("PRelu", ["x", "s"])
    for slope in [(1,), (64, 1, 1), (1, 64, 1, 1), (1, 1, 16)]:
        assert reasons(op, {"x": X4, "s": slope, "y": X4}, {"s": np.zeros(slope, np.float32)}) == []
    assert "'s' must be a constant" in reasons(op, {"x": X4, "s": (1,), "y": X4})[0]


def test_pad():
    def case(pads, value=None, mode="constant", axes=None):
        inputs = ["x", "p", "v" if value is not None else ""]
        constants = {"p": np.array(pads, np.int64)}
        if value is not None:
            constants["v"] = np.array(value, np.float32)
        if axes is not None:
            inputs.append("a")
            constants["a"] = np.array(axes, np.int64)
        return reasons(
            node("Pad", inputs, mode=mode),
            {"x": X4, "p": (len(pads),), "v": (), "a": (len(axes or ()),), "y": (1, 128, 18, 18)},
            constants,
        )

    assert case([0, 0, 1, 1, 0, 0, 1, 1]) == []
    assert case([0, 3, 1, 1, 0, 0, 1, 1], value=1.5) == []
    assert case([1, 1, 1, 1], axes=[2, 3]) == []
    assert case([0, 0, 1, 1, 0, 0, 1, 1], mode="reflect") == []
    assert "mode=wrap" in case([0, 0, 1, 1, 0, 0, 1, 1], mode="wrap")[0]
    assert "negative pads" in case([0, 0, -1, 0, 0, 0, 0, 0])[0]


def test_resize():
    def case(out_shape, mode="nearest"):
        op = node("Resize", ["x", "", "scales"], mode=mode)
        return reasons(
            op,
            {"x": X4, "scales": (4,), "y": out_shape},
            {"scales": np.array([1, 1, 2, 2], np.float32)},
        )

    assert case((1, 64, 32, 32)) == []
    assert case((1, 64, 48, 32), mode="linear") == []
    assert case((1, 64, 24, 24)) == []  # any factor: DMA gathers (linear: two per axis + DPU)
    assert case((1, 64, 8, 8), mode="linear") == []
    assert "mode=cubic" in case((1, 64, 32, 32), mode="cubic")[0]
    assert "changes N or C" in case((1, 32, 32, 32))[0]


@pytest.mark.parametrize(
    ("in_shape", "out_shape", "free"),
    [
        ((1, 64, 1, 1), (1, 64), True),  # Flatten after global pooling
        ((1, 64, 16, 16), (64, 16, 16), True),  # squeeze the batch axis
        ((1, 64, 16, 16), (1, 64, 256), True),  # merge H and W
        ((1, 64, 256), (1, 64, 16, 16), True),  # split them again
        ((1, 49, 96), (1, 49, 4, 24), True),  # split the trailing axis of tokens
        ((1, 64, 16, 16), (1, 16384), False),  # C merged with H, W: needs an NHWC transpose
        ((1, 255, 80, 80), (1, 3, 85, 80, 80), False),  # YOLO: split C
        ((1, 64, 16, 16), (1, 16, 64, 16), False),
    ],
)
def test_layout_free_reshape(in_shape, out_shape, free):
    """Every static reshape runs (a DMA permutation when not layout-free)."""
    assert is_layout_free_reshape(in_shape, out_shape) is free
    for op_type in ("Reshape", "Flatten", "Squeeze"):
        assert reasons(node(op_type, ["x"]), {"x": in_shape, "y": out_shape}) == []


def attention_graph(softmax_axis=-1, mask_op="Mul"):
    """q, k, v -> MatMul(q, k^T) -> Mul(scale) -> Softmax -> MatMul(., v) -> y, and a dense."""
    t = helper.make_tensor_value_info
    scale = numpy_helper.from_array(np.array(0.125, np.float32), "scale")
    weight = numpy_helper.from_array(np.zeros((16, 16), np.float32), "w")
    nodes = [
        node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="qk"),
        helper.make_node(mask_op, ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["probs"], name="softmax", axis=softmax_axis),
        helper.make_node("MatMul", ["probs", "v"], ["attn"], name="av"),
        helper.make_node("MatMul", ["attn", "w"], ["y"], name="dense"),
    ]
    value = [1, 4, 8, 16]
    graph = helper.make_graph(
        nodes,
        "attention",
        [t(n, TensorProto.FLOAT, value) for n in "qkv"],
        [t("y", TensorProto.FLOAT, value)],
        [scale, weight],
        value_info=[
            t("kt", TensorProto.FLOAT, [1, 4, 16, 8]),
            *(t(n, TensorProto.FLOAT, [1, 4, 8, 8]) for n in ("scores", "scaled", "probs")),
            t("attn", TensorProto.FLOAT, value),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_matmul_of_computed_tensors_and_softmax():
    model = attention_graph()
    graph = GraphIndex.of(model)
    by_name = {n.name: n for n in model.graph.node}
    for name in ("qk", "softmax", "av", "dense"):
        assert graph.check(by_name[name]) == [], name
        assert check_node(by_name[name], graph.shapes, graph.constants) == [], name
    # the MVM loads one weightset per image of the batch dimensions: they must be equal
    broadcast = node("MatMul", ["a", "b"])
    [reason] = reasons(broadcast, {"a": (2, 4, 8), "b": (1, 8, 4), "y": (2, 4, 4)})
    assert "needs equal batch dims" in reason
    constant_left = node("MatMul", ["a", "b"])
    shapes = {"a": (4, 8), "b": (8, 3), "y": (4, 3)}
    assert "constant left operand" in reasons(constant_left, shapes, {"a": np.ones((4, 8))})[0]


def test_softmax_runs_over_any_axis():
    """The DPU softmax works over the innermost device axis; the lowering puts `axis` there."""
    graph = GraphIndex.of(attention_graph(softmax_axis=2))
    softmax = next(n for n in graph.nodes if n.op_type == "Softmax")
    assert graph.check(softmax) == []
    classifier = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("Gemm", ["x", "w"], ["logits"], name="fc", transB=1),
                helper.make_node("Softmax", ["logits"], ["p"], name="softmax"),
                helper.make_node("LRN", ["p4"], ["n"], name="lrn", size=3),
            ],
            "classifier",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
                helper.make_tensor_value_info("p4", TensorProto.FLOAT, [1, 4, 2, 2]),
            ],
            [
                helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 4]),
                helper.make_tensor_value_info("n", TensorProto.FLOAT, [1, 4, 2, 2]),
            ],
            [numpy_helper.from_array(np.zeros((4, 8), np.float32), "w")],
            value_info=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        )
    )
    violations = validate_operators(classifier)
    assert [(v.node, v.op_type) for v in violations] == [("lrn", "LRN")]
    assert str(violations[0]).startswith("node 'lrn' (LRN): ")


def test_non_float_tensors_stay_on_the_host():
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Add", ["i", "i"], ["y"], name="int_add")],
            "ints",
            [helper.make_tensor_value_info("i", TensorProto.INT64, [1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 4])],
        )
    )
    [violation] = validate_operators(model)
    assert "non-float32 tensors 'i' (INT64)" in violation.reason
