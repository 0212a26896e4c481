"""Adversarial edge cases of the quantized path: ONNX -> import -> quantize_graph -> integer run.

The check everywhere is the numerics contract, op by op: each quantized op, run by the
integer reference on the codes it actually receives in the graph, is within one output
step of its float kernel on the dequantized operands (weights, biases and constants
included), and ops that only move or clamp codes are exact. Graph-level checks add that
no accelerated op is left in float, that runs are deterministic and survive save/load,
and that the IO types are the ones a caller needs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import DictionaryAttr, IntegerType, TensorType, f32
from xdsl.ir import Block, Operation, SSAValue

from aipuc import numerics
from aipuc.config import QuantizationScheme
from aipuc.dialects import axq
from aipuc.dialects.axq import (
    QuantizedType,
    UnaryFunction,
    UnaryFunctionAttr,
    element_type,
    is_depthwise,
)
from aipuc.dialects.axq_graph import tensor_names
from aipuc.dialects.tensors import dense_from_numpy, numpy_from_dense, tensor_type
from aipuc.errors import QuantizationError
from aipuc.frontend.loader import load_model
from aipuc.frontend.onnx_import import import_onnx
from aipuc.graph import Graph
from aipuc.ir_files import load_quantized_model, save_quantized_model
from aipuc.quantization.artifacts import quantization_debug_report, quantize_graph
from aipuc.runtime import kernels
from aipuc.runtime.float_interpreter import FLOAT_KERNELS
from aipuc.runtime.integer_reference import (
    ADD_LEFT_SHIFT,
    INTEGER_KERNELS,
    SATURATING_MULTIPLIER,
)
from aipuc.runtime.interpreter import run_function

SCHEMES = tuple(str(scheme) for scheme in QuantizationScheme)

INT8, INT32 = IntegerType(8), IntegerType(32)
HYBRID = "hybrid_per_tensor_per_channel"
EXACT_OPS = (
    axq.ReshapeOp,
    axq.TransposeOp,
    axq.SliceOp,
    axq.SplitOp,
    axq.ConcatOp,
    axq.PadOp,
    axq.MaxPoolOp,
    axq.ClipOp,
)
CONVERSIONS = (axq.QuantizeOp, axq.DequantizeOp, axq.ConstantOp, axq.HostOp)
bounded = settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------- building models


def onnx_model(nodes, inputs, outputs, initializers=None, opset: int = 17) -> onnx.ModelProto:
    """A loaded (shape-inferred) model; float initializers become float32, int ones stay."""
    arrays = {name: np.asarray(value) for name, value in (initializers or {}).items()}
    graph = helper.make_graph(
        nodes,
        "edge",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        [
            numpy_helper.from_array(a if a.dtype.kind in "iu" else a.astype(np.float32), name)
            for name, a in arrays.items()
        ],
    )
    return load_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def node(op_type: str, inputs, outputs, **attributes) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, outputs, name=outputs[0], **attributes)


def normal_samples(graph: Graph, count: int, seed: int, scale=1.0, shift=0.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            name: (shift + scale * rng.standard_normal(shape)).astype(np.float32)
            for name, (shape, _) in graph.inputs.items()
        }
        for _ in range(count)
    ]


def quantized(graph: Graph, samples, **options) -> Graph:
    quant, _ = quantize_graph(graph, samples, **options)
    assert_integer_core(quant)
    return quant


# --------------------------------------------------------------------------- checking


def dequantized(array: np.ndarray, type_) -> np.ndarray:
    if not isinstance(type_, QuantizedType):
        return np.asarray(array, np.float32)
    axis = type_.quantized_axis
    return numerics.dequantize(array, type_.scale_array(), type_.zero_point_array(), axis)


def quantized_codes(array: np.ndarray, type_: QuantizedType) -> np.ndarray:
    axis = type_.quantized_axis
    return numerics.quantize(array, type_.scale_array(), type_.zero_point_array(), axis)


def int8_inputs(graph: Graph, sample: dict) -> dict:
    """`sample` quantized where the graph's signature is int8 (remove_io_quantization)."""
    inputs = {}
    for (name, _), arg in zip(graph.inputs.items(), graph.main.body.block.args, strict=True):
        type_ = element_type(arg)
        inputs[name] = (
            quantized_codes(sample[name], type_)
            if isinstance(type_, QuantizedType)
            else sample[name]
        )
    return inputs


def recorded_run(graph: Graph, sample: dict) -> dict[SSAValue, np.ndarray]:
    """Every operand and result array of an integer run of `graph`."""
    values: dict[SSAValue, np.ndarray] = {}

    def recording(kernel):
        def run(op: Operation, inputs):
            results = kernel(op, inputs)
            values.update(zip(op.operands, inputs, strict=True))
            values.update(zip(op.results, results, strict=True))
            return results

        return run

    recording_kernels = {op_type: recording(kernel) for op_type, kernel in INTEGER_KERNELS.items()}
    inputs = int8_inputs(graph, sample)
    run_function(graph.main, [inputs[name] for name in graph.inputs], recording_kernels)
    return values


def op_code_errors(
    float_graph: Graph, quant_graph: Graph, sample: dict
) -> dict[str, tuple[int, int]]:
    """Per quantized op: (max |integer code - quantize(float kernel on dequantized operands)|,
    the contract's bound: 0 for ops that only move or clamp codes, else 1)."""
    float_names, quant_names = tensor_names(float_graph.main), tensor_names(quant_graph.main)
    float_ops = {
        float_names[op.results[0]]: op for op in float_graph.main.body.block.ops if op.results
    }
    values = recorded_run(quant_graph, sample)
    errors = {}
    for op in quant_graph.main.body.block.ops:
        if isinstance(op, CONVERSIONS) or not op.results:
            continue
        operands = [
            dequantized(values[v] if v in values else v.owner.to_numpy(), element_type(v))
            for v in op.operands
        ]
        name = quant_names[op.results[0]]
        if isinstance(op, axq.RequantizeOp):
            expected = operands
        else:
            expected = FLOAT_KERNELS[type(float_ops[name])](float_ops[name], operands)
        error = max(
            int(
                np.abs(
                    values[result].astype(np.int64)
                    - quantized_codes(want, element_type(result)).astype(np.int64)
                ).max(initial=0)
            )
            for result, want in zip(op.results, expected, strict=True)
        )
        exact = isinstance(op, EXACT_OPS) or (
            isinstance(op, axq.ResizeOp) and op.mode.data == axq.ResizeMode.NEAREST
        )
        errors[name] = (error, 0 if exact else 1)
    return errors


def assert_contract(float_graph: Graph, quant_graph: Graph, samples) -> None:
    for sample in samples:
        errors = op_code_errors(float_graph, quant_graph, sample)
        assert errors and all(error <= bound for error, bound in errors.values()), errors


def assert_integer_core(graph: Graph) -> None:
    """No accelerated op computes in float: every operand and result is quantized."""
    for op in graph.main.body.block.ops:
        if isinstance(op, CONVERSIONS) or op.name == "func.return":
            continue
        for value in (*op.operands, *op.results):
            assert isinstance(element_type(value), QuantizedType), f"{op.name}: {value.type}"


def run_outputs(graph: Graph, sample: dict) -> dict[str, np.ndarray]:
    return graph.run(int8_inputs(graph, sample))


# --------------------------------------------------------------------------- bugs found


def dead_channel_depthwise_model() -> onnx.ModelProto:
    """conv -> relu -> depthwise: relu channel 2 is dead unless x channel 1 exceeds 3."""
    rng = np.random.default_rng(3)
    w1, b1 = rng.standard_normal((4, 3, 1, 1)) * 0.5, rng.standard_normal(4) * 0.1
    w1[2], b1[2] = 0.0, -3.0
    w1[2, 1] = 1.0
    wd = rng.standard_normal((4, 1, 3, 3)) * 0.3
    wd[2] = np.abs(wd[2])
    return onnx_model(
        [
            node("Conv", ["x", "w1", "b1"], ["c"]),
            node("Relu", ["c"], ["r"]),
            node("Conv", ["r", "wd", "bd"], ["y"], group=4, pads=[1, 1, 1, 1]),
        ],
        [("x", [1, 3, 6, 6])],
        ["y"],
        {"w1": w1, "b1": b1, "wd": wd, "bd": np.array([0.1, -0.2, 3.0, 0.05])},
    )


@pytest.mark.parametrize("dw_channel_wise", [False, True])
def test_bias_leaves_accumulator_room_when_a_dead_channel_revives(dw_channel_wise):
    """Bug: a channel constant at calibration (dead ReLU) gets scale eps in the hybrid scheme,
    so its depthwise bias needed the raised weight scale that put q_b at exactly 2**31 - 1;
    the first input that revived the channel overflowed the int32 accumulator (ValueError)."""
    graph = import_onnx(dead_channel_depthwise_model())
    rng = np.random.default_rng(0)
    channel_ranges = np.array([10.0, 1.0, 1.0], np.float32)[None, :, None, None]
    samples = [
        {"x": (rng.uniform(0, 1, (1, 3, 6, 6)) * channel_ranges).astype(np.float32)}
        for _ in range(2)
    ]
    quant = quantized(
        graph, samples, quantization_scheme=HYBRID, quantize_dw_channel_wise=dw_channel_wise
    )
    dw = next(op for op in quant.main.body.block.ops if is_depthwise(op))
    assert element_type(dw.input).scale_array()[2] == np.finfo(np.float32).eps
    bias = dw.bias.owner.to_numpy().astype(np.int64)
    weights = dw.weight.owner.to_numpy().astype(np.int64)
    largest_products = 9 * 255 * np.abs(weights).reshape(4, -1).max(axis=1)
    assert np.all(np.abs(bias) + largest_products < 2**31)
    revived = {"x": np.full((1, 3, 6, 6), 8.0, np.float32)}
    assert graph.run(revived)["y"][0, 2].min() > 7
    assert_contract(graph, quant, [samples[0], revived])


def test_bias_of_a_tiny_weight_channel_leaves_room_for_the_products():
    """Same root cause without the hybrid scheme: weights of 1e-6 under a bias of 10 raise
    the weight scale until q_b = 2**31 - 1, while the weight codes stay 2."""
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((3, 4, 3, 3)) * 0.3
    weight[1], weight[2] = 1e-6, 0.0
    graph = import_onnx(
        onnx_model(
            [node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
            [("x", [1, 4, 6, 6])],
            ["y"],
            {"w": weight, "b": np.array([0.1, 10.0, -2.0])},
        )
    )
    samples = [{"x": rng.uniform(-1, 1, (1, 4, 6, 6)).astype(np.float32)}]
    quant = quantized(graph, samples, quantization_scheme="per_tensor_min_max")
    conv = next(op for op in quant.main.body.block.ops if isinstance(op, axq.Conv2dOp))
    assert conv.weight.owner.to_numpy()[1].min() > 0  # the tiny channel keeps non-zero codes
    assert_contract(graph, quant, [samples[0], {"x": np.ones((1, 4, 6, 6), np.float32)}])


def test_requantization_saturates_when_the_output_range_collapsed():
    """Bug: x * z with |x|, |z| up to 1e4 is always negative at calibration, so the fused
    ReLU gives the product the range [0, 0] (scale eps); s_x s_z / eps is above 2**30 and
    numerics.quantize_multiplier raised on every run. Multipliers >= 2**8 saturate alike."""
    graph = import_onnx(
        onnx_model(
            [node("Mul", ["x", "z"], ["p"]), node("Relu", ["p"], ["y"])],
            [("x", [1, 4]), ("z", [1, 4])],
            ["y"],
        )
    )
    rng = np.random.default_rng(2)
    positive = rng.uniform(1, 1e4, (2, 1, 4)).astype(np.float32)
    samples = [{"x": positive[0], "z": -positive[1]}, {"x": -positive[1], "z": positive[0]}]
    quant = quantized(graph, samples)
    mul = next(op for op in quant.main.body.block.ops if isinstance(op, axq.MulOp))
    lhs, rhs, out = (element_type(value) for value in (mul.lhs, mul.rhs, mul.result))
    real = lhs.scale * rhs.scale / out.scale
    assert real > 2**30 > SATURATING_MULTIPLIER
    revived = {"x": positive[0], "z": positive[1]}
    assert_contract(graph, quant, [*samples, revived])
    largest = dequantized(np.array([127]), out)
    np.testing.assert_array_equal(
        run_outputs(quant, revived)["y"], np.broadcast_to(largest, (1, 4))
    )
    assert not run_outputs(quant, samples[0])["y"].any()


# --------------------------------------------------------------------------- ranges


def _chain_model() -> onnx.ModelProto:
    """conv -> relu -> sigmoid, x - x, softmax and a mul by a negative constant."""
    rng = np.random.default_rng(4)
    return onnx_model(
        [
            node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            node("Relu", ["c"], ["r"]),
            node("Sigmoid", ["r"], ["s"]),
            node("Sub", ["c", "c"], ["zero"]),
            node("Softmax", ["c"], ["p"], axis=1),
            node("Mul", ["zero", "k"], ["y"]),
        ],
        [("x", [1, 3, 5, 5])],
        ["s", "p", "y"],
        {
            "w": rng.standard_normal((4, 3, 3, 3)) * 0.3,
            "b": rng.standard_normal(4) * 0.1,
            "k": np.float32(-3.0),
        },
    )


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("value", [0.0, 1.5, -2.0])
def test_constant_calibration_inputs(scheme, value):
    """Every tensor constant (x - x and the input all zero) at calibration: scale eps."""
    graph = import_onnx(_chain_model())
    samples = [{"x": np.full((1, 3, 5, 5), value, np.float32)}]
    quant = quantized(graph, samples, quantization_scheme=scheme)
    assert_contract(graph, quant, samples + normal_samples(graph, 1, seed=5))
    sub = next(op for op in quant.main.body.block.ops if isinstance(op, axq.SubOp))
    assert element_type(sub.result).scale == np.finfo(np.float32).eps  # x - x is always 0
    assert not run_outputs(quant, samples[0])["y"].any()


def test_all_negative_activations():
    """Inputs and conv outputs that are all negative: zero point 127, ReLU range [0, 0]."""
    rng = np.random.default_rng(6)
    weight = -np.abs(rng.standard_normal((4, 3, 3, 3))) * 0.3
    graph = import_onnx(
        onnx_model(
            [
                node("Relu", ["x"], ["rx"]),
                node("Conv", ["x", "w", "b"], ["c"]),
                node("Relu", ["c"], ["rc"]),
                node("Slice", ["rx", "start", "end", "axes"], ["rx2"]),
                node("Add", ["rc", "rx2"], ["y"]),
            ],
            [("x", [1, 3, 6, 6])],
            ["y", "c"],
            {
                "w": weight,
                "b": -np.abs(rng.standard_normal(4)),
                "start": np.array([0, 1, 1]),
                "end": np.array([1, 5, 5]),
                "axes": np.array([1, 2, 3]),
            },
        )
    )
    samples = [{"x": -np.abs(rng.standard_normal((1, 3, 6, 6))).astype(np.float32)}]
    quant = quantized(graph, samples)
    negative_input = next(op for op in quant.main.body.block.ops if isinstance(op, axq.QuantizeOp))
    assert element_type(negative_input.result).zero_point == 127
    assert_contract(graph, quant, samples + [{"x": -samples[0]["x"]}])


def test_huge_dynamic_range():
    """Values log-uniform in 1e-4..1e4 of either sign, times 1e4 and added back."""
    rng = np.random.default_rng(7)
    graph = import_onnx(
        onnx_model(
            [
                node("Conv", ["x", "w", "b"], ["c"]),
                node("Mul", ["c", "k"], ["m"]),
                node("Add", ["m", "x"], ["y"]),
            ],
            [("x", [1, 3, 4, 4])],
            ["y"],
            {
                "w": rng.standard_normal((3, 3, 1, 1)) * 0.3,
                "b": rng.standard_normal(3),
                "k": np.float32(1e4),
            },
        )
    )

    def sample():
        magnitude = 10.0 ** rng.uniform(-4, 4, (1, 3, 4, 4))
        return {"x": (magnitude * rng.choice([-1, 1], (1, 3, 4, 4))).astype(np.float32)}

    samples = [sample(), sample()]
    for scheme in SCHEMES:
        quant = quantized(graph, samples, quantization_scheme=scheme)
        assert_contract(graph, quant, samples + [sample()])


# --------------------------------------------------------------------------- single ops


def _weights(seed: int, *shape: int, scale: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


_X = [("x", [1, 4, 7, 9])]
_XZ = [("x", [1, 4, 5, 5]), ("z", [1, 4, 5, 5])]
_CHANNELS = [("x", [1, 4, 5, 5]), ("z", [1, 4, 1, 1])]
_SCALES_2X = {"scales": np.array([1.0, 1.0, 2.0, 2.0])}
_SCALES_ODD = {"scales": np.array([1.0, 1.0, 1.5, 0.7])}

# name -> (nodes, inputs, initializers, mean of the N(mean, 1) inputs; != 0 moves zero points)
SINGLE_OP_CASES = {
    "conv_stride_dilation_asymmetric_pads": (
        [node("Conv", ["x", "w", "b"], ["y"], strides=[2, 1], dilations=[1, 2], pads=[2, 0, 1, 3])],
        _X,
        {"w": _weights(0, 6, 4, 3, 3), "b": _weights(1, 6)},
        1.0,
    ),
    "grouped_conv": (
        [node("Conv", ["x", "w", "b"], ["y"], group=2, pads=[1, 1, 1, 1])],
        _X,
        {"w": _weights(2, 6, 2, 3, 3), "b": _weights(3, 6)},
        0.0,
    ),
    "depthwise_multiplier_2": (
        [node("Conv", ["x", "w", "b"], ["y"], group=4, pads=[1, 0, 1, 2], strides=[2, 2])],
        _X,
        {"w": _weights(4, 8, 1, 3, 3), "b": _weights(5, 8)},
        0.5,
    ),
    "conv_zero_weight_channel_relu6": (
        [node("Conv", ["x", "w", "b"], ["c"]), node("Clip", ["c", "lo", "hi"], ["y"])],
        _X,
        {
            "w": _weights(6, 5, 4, 1, 1) * np.array([1, 0, 1, 1, 1])[:, None, None, None],
            "b": _weights(7, 5),
            "lo": np.float32(0),
            "hi": np.float32(6),
        },
        1.0,
    ),
    "conv_hardtanh": (
        [node("Conv", ["x", "w", "b"], ["c"]), node("Clip", ["c", "lo", "hi"], ["y"])],
        _X,
        {
            "w": _weights(8, 5, 4, 1, 1),
            "b": _weights(9, 5),
            "lo": np.float32(-0.5),
            "hi": np.float32(0.5),
        },
        0.0,
    ),
    "avg_pool_count_include_pad": (
        [
            node(
                "AveragePool",
                ["x"],
                ["y"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[2, 2],
                count_include_pad=1,
            )
        ],
        _X,
        {},
        1.0,
    ),
    "avg_pool_excluding_pads": (
        [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])],
        _X,
        {},
        1.0,
    ),
    "avg_pool_ceil_mode": (
        [
            node(
                "AveragePool",
                ["x"],
                ["y"],
                kernel_shape=[3, 3],
                pads=[1, 0, 1, 0],
                strides=[2, 2],
                ceil_mode=1,
                count_include_pad=1,
            )
        ],
        _X,
        {},
        1.0,
    ),
    "global_avg_pool_256x256": (
        [node("GlobalAveragePool", ["x"], ["y"])],
        [("x", [1, 2, 256, 256])],
        {},
        3.0,
    ),
    "global_max_pool": ([node("GlobalMaxPool", ["x"], ["y"])], _X, {}, 0.0),
    "max_pool_pads_ceil_mode": (
        [
            node(
                "MaxPool",
                ["x"],
                ["y"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[2, 2],
                ceil_mode=1,
            )
        ],
        _X,
        {},
        -3.0,
    ),
    "add_same_shape": ([node("Add", ["x", "z"], ["y"])], _XZ, {}, 0.0),
    "add_channel_activation": ([node("Add", ["x", "z"], ["y"])], _CHANNELS, {}, 0.0),
    "add_channel_constant": (
        [node("Add", ["x", "c"], ["y"])],
        _X,
        {"c": _weights(10, 1, 4, 1, 1, scale=5.0)},
        0.0,
    ),
    "add_scalar": ([node("Add", ["x", "c"], ["y"])], _X, {"c": np.float32(3.0)}, 0.0),
    "add_scales_1000_apart": (
        [node("Mul", ["x", "k"], ["xk"]), node("Add", ["xk", "z"], ["y"])],
        _XZ,
        {"k": np.float32(1000.0)},
        0.0,
    ),
    "sub_channel_constant": (
        [node("Sub", ["x", "c"], ["y"])],
        _X,
        {"c": _weights(11, 1, 4, 1, 1, scale=5.0)},
        0.0,
    ),
    "sub_from_scalar": ([node("Sub", ["c", "x"], ["y"])], _X, {"c": np.float32(3.0)}, 0.0),
    "mul_same_shape": ([node("Mul", ["x", "z"], ["y"])], _XZ, {}, 0.0),
    "mul_channel_activation": ([node("Mul", ["x", "z"], ["y"])], _CHANNELS, {}, 0.0),
    "mul_negative_constant": ([node("Mul", ["x", "c"], ["y"])], _X, {"c": np.float32(-0.7)}, 0.0),
    "div_by_channel_constant": (
        [node("Div", ["x", "c"], ["y"])],
        _X,
        {"c": np.array([1.0, -2.0, 0.5, 8.0]).reshape(1, 4, 1, 1)},
        0.0,
    ),
    "prelu_per_channel": (
        [node("PRelu", ["x", "s"], ["y"])],
        _X,
        {"s": np.array([0.25, -0.5, 0.01, 1.5]).reshape(4, 1, 1)},
        0.0,
    ),
    "prelu_scalar": ([node("PRelu", ["x", "s"], ["y"])], _X, {"s": np.array([0.2])}, 0.0),
    "concat_of_different_scales": (
        [node("Mul", ["x", "k"], ["xk"]), node("Concat", ["xk", "z", "x"], ["y"], axis=1)],
        _XZ,
        {"k": np.float32(50.0)},
        0.0,
    ),
    "split_transpose_reshape_slice": (
        [
            node("Split", ["x"], ["a", "b"], axis=2),
            node("Transpose", ["a"], ["t"], perm=[0, 1, 3, 2]),
            node("Reshape", ["b", "shape"], ["r"]),
            node("Slice", ["x", "start", "end", "axes", "steps"], ["s"]),
        ],
        [("x", [1, 4, 6, 6])],
        {
            "shape": np.array([1, -1]),
            "start": np.array([5, 1]),
            "end": np.array([0, 6]),
            "axes": np.array([3, 1]),
            "steps": np.array([-2, 2]),
        },
        0.0,
    ),
    "pad_zero": (
        [node("Pad", ["x", "pads"], ["y"])],
        _X,
        {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1])},
        2.0,
    ),
    "pad_reflect_edge": (
        [
            node("Pad", ["x", "pads"], ["r"], mode="reflect"),
            node("Pad", ["r", "pads"], ["y"], mode="edge"),
        ],
        _X,
        {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1])},
        2.0,
    ),
    "resize_nearest_2x": (
        [node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
        _X,
        _SCALES_2X,
        0.0,
    ),
    "resize_nearest_non_integer": (
        [node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
        _X,
        _SCALES_ODD,
        0.0,
    ),
    "resize_linear_2x": (
        [node("Resize", ["x", "", "scales"], ["y"], mode="linear")],
        _X,
        _SCALES_2X,
        0.0,
    ),
    "resize_linear_non_integer_align_corners": (
        [
            node(
                "Resize",
                ["x", "", "scales"],
                ["y"],
                mode="linear",
                coordinate_transformation_mode="align_corners",
            )
        ],
        _X,
        _SCALES_ODD,
        0.0,
    ),
    "softmax_channels": ([node("Softmax", ["x"], ["y"], axis=1)], _X, {}, 0.0),
    "softmax_rows_of_one": ([node("Softmax", ["x"], ["y"], axis=-1)], [("x", [2, 3, 1])], {}, 0.0),
    "softmax_rows_of_100": ([node("Softmax", ["x"], ["y"], axis=0)], [("x", [100, 3])], {}, 0.0),
    "attention_matmuls": (
        [
            node("MatMul", ["q", "k"], ["s"]),
            node("Softmax", ["s"], ["p"]),
            node("MatMul", ["p", "v"], ["y"]),
        ],
        [("q", [2, 5, 8]), ("k", [2, 8, 5]), ("v", [2, 5, 8])],
        {},
        0.0,
    ),
    "dense_k_4096": (
        [node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        [("x", [2, 4096])],
        {"w": _weights(12, 16, 4096, scale=0.05), "b": _weights(13, 16)},
        0.0,
    ),
    "matmul_constant_3d": (
        [node("MatMul", ["x", "c"], ["y"])],
        [("x", [2, 5, 8])],
        {"c": _weights(16, 2, 8, 3)},
        0.0,
    ),
    "gemm_transposed_a_row_bias": (
        [node("Gemm", ["x", "w", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)],
        [("x", [6, 3])],
        {"w": _weights(17, 6, 4), "c": _weights(18, 3, 1)},
        0.0,
    ),
    "pool_flatten_dense": (
        [
            node("GlobalAveragePool", ["x"], ["g"]),
            node("Flatten", ["g"], ["f"]),
            node("Gemm", ["f", "w", "b"], ["y"], transB=1),
        ],
        _X,
        {"w": _weights(19, 10, 4), "b": _weights(20, 10)},
        0.5,
    ),
    "conv_transpose": (
        [node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])],
        _X,
        {"w": _weights(14, 4, 3, 3, 3), "b": _weights(15, 3)},
        0.0,
    ),
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("case", sorted(SINGLE_OP_CASES))
def test_single_op_models_keep_the_contract(case, scheme):
    nodes, inputs, initializers, shift = SINGLE_OP_CASES[case]
    consumed = {name for n in nodes for name in n.input}
    outputs = [name for n in nodes for name in n.output if name not in consumed]
    # the axq op's contract, also for nodes the placement would leave to the host
    graph = import_onnx(onnx_model(nodes, inputs, outputs, initializers), follow_support=False)
    samples = normal_samples(graph, 2, seed=20, shift=shift)
    quant = quantized(graph, samples, quantization_scheme=scheme)
    assert_contract(graph, quant, samples[:1] + normal_samples(graph, 1, seed=21, shift=shift))


def test_fused_clips_make_the_producer_saturate_where_the_clip_clamps():
    nodes, inputs, initializers, shift = SINGLE_OP_CASES["conv_zero_weight_channel_relu6"]
    graph = import_onnx(onnx_model(nodes, inputs, ["y"], initializers))
    quant = quantized(graph, normal_samples(graph, 2, seed=22, shift=shift))
    conv, clip = (
        next(op for op in quant.main.body.block.ops if isinstance(op, kind))
        for kind in (axq.Conv2dOp, axq.ClipOp)
    )
    assert element_type(conv.result) == element_type(clip.result)
    assert element_type(clip.result).zero_point == -128
    assert not conv.weight.owner.to_numpy()[1].any()  # the all-zero weight channel
    values = recorded_run(quant, normal_samples(graph, 1, seed=23, scale=10.0)[0])
    np.testing.assert_array_equal(values[conv.result], values[clip.result])


def test_pads_of_a_conv_hold_the_input_zero_point():
    """A 1x1 input padded by 2 under a 3x3 kernel of ones: 8 of 9 taps are padding, which
    must add 0 (codes equal to the zero point, -128 here), not 128 steps each."""
    graph = import_onnx(
        onnx_model(
            [node("Conv", ["x", "w", "b"], ["y"], pads=[2, 2, 2, 2])],
            [("x", [1, 1, 1, 1])],
            ["y"],
            {"w": np.ones((1, 1, 3, 3)), "b": np.zeros(1)},
        )
    )
    samples = [{"x": np.array(value, np.float32).reshape(1, 1, 1, 1)} for value in (2.0, 5.0)]
    quant = quantized(graph, samples, quantization_scheme="per_tensor_min_max")
    quantize_input = next(op for op in quant.main.body.block.ops if isinstance(op, axq.QuantizeOp))
    assert element_type(quantize_input.result).zero_point == -128
    np.testing.assert_array_equal(graph.run(samples[1])["y"], np.full((1, 1, 3, 3), 5.0))
    np.testing.assert_allclose(run_outputs(quant, samples[1])["y"], 5.0, atol=5.0 / 255)
    assert_contract(graph, quant, samples)


# --------------------------------------------------------------------------- LUTs


_ONNX_LUTS = {
    UnaryFunction.SIGMOID: ("Sigmoid", {}),
    UnaryFunction.TANH: ("Tanh", {}),
    UnaryFunction.HARDSWISH: ("HardSwish", {}),
    UnaryFunction.HARDSIGMOID: ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    UnaryFunction.LEAKYRELU: ("LeakyRelu", {"alpha": 0.2}),
    UnaryFunction.ELU: ("Elu", {"alpha": 0.5}),
    UnaryFunction.SOFTPLUS: ("Softplus", {}),
    UnaryFunction.EXP: ("Exp", {}),
    UnaryFunction.ERF: ("Erf", {}),
    UnaryFunction.SQRT: ("Sqrt", {}),
    UnaryFunction.RECIPROCAL: ("Reciprocal", {}),
    UnaryFunction.ABS: ("Abs", {}),
    UnaryFunction.NEG: ("Neg", {}),
    UnaryFunction.GELU: ("Gelu", {}),
    UnaryFunction.GELU_TANH: ("Gelu", {"approximate": "tanh"}),
    UnaryFunction.SOFTSIGN: ("Softsign", {}),
    UnaryFunction.MISH: ("Mish", {}),
    UnaryFunction.SELU: ("Selu", {"alpha": 1.5, "gamma": 1.1}),
    UnaryFunction.CELU: ("Celu", {"alpha": 0.7}),
    UnaryFunction.THRESHOLDEDRELU: ("ThresholdedRelu", {"alpha": 0.3}),
    UnaryFunction.LOG: ("Log", {}),
    UnaryFunction.SIN: ("Sin", {}),
    UnaryFunction.COS: ("Cos", {}),
}
_AXQ_ONLY_LUTS = {
    UnaryFunction.IDENTITY: {},
    UnaryFunction.RELU: {},
    UnaryFunction.SILU: {},
    UnaryFunction.CLIP: {"min_value": -1.0, "max_value": 0.5},
    UnaryFunction.POW: {"exponent": 1.5},  # ONNX Pow has a second input; see test_new_ops
}


def lut_graph(function: UnaryFunction) -> Graph:
    """An ONNX node that imports as `function`, or an imported Abs rewritten into it."""
    op_type, attributes = _ONNX_LUTS.get(function, ("Abs", {}))
    graph = import_onnx(
        onnx_model(
            [node(op_type, ["x"], ["y"], **attributes)],
            [("x", [1, 4, 8, 8])],
            ["y"],
            opset={"Gelu": 20, "Mish": 18}.get(op_type, 17),
        )
    )
    if function in _AXQ_ONLY_LUTS:
        lut = next(op for op in graph.main.body.block.ops if isinstance(op, axq.LutOp))
        lut.properties["function"] = UnaryFunctionAttr(function)
        lut.properties["params"] = DictionaryAttr(
            {key: axq.float_attr(value) for key, value in _AXQ_ONLY_LUTS[function].items()}
        )
    return graph


def test_lut_cases_cover_every_unary_function():
    assert set(_ONNX_LUTS) | set(_AXQ_ONLY_LUTS) == set(UnaryFunction)


@pytest.mark.parametrize("calibration_range", [(-3.0, 3.0), (0.5, 4.0), (-8.0, -1.0)])
@pytest.mark.parametrize("function", list(UnaryFunction), ids=lambda f: f.value)
def test_every_lut_function_on_every_int8_code(function, calibration_range):
    graph = lut_graph(function)
    rng = np.random.default_rng(30)
    samples = [{"x": rng.uniform(*calibration_range, (1, 4, 8, 8)).astype(np.float32)}]
    if function == UnaryFunction.LOG and calibration_range[1] < 0:
        with pytest.raises(QuantizationError, match="no finite values"):  # log < 0 is -inf
            quantized(graph, samples, quantization_scheme="per_tensor_min_max")
        return
    quant = quantized(graph, samples, quantization_scheme="per_tensor_min_max")
    lut = next(op for op in quant.main.body.block.ops if isinstance(op, axq.LutOp))
    in_type, out_type = element_type(lut.input), element_type(lut.result)
    every_code = {"x": dequantized(np.arange(-128, 128).reshape(1, 4, 8, 8), in_type)}
    assert_contract(graph, quant, [every_code])
    fn = numerics.UNARY_FUNCTIONS[function.value](**lut.param_values())
    with np.errstate(all="ignore"):
        exact = fn(dequantized(np.arange(-128, 128), in_type).astype(np.float64))
    np.testing.assert_array_equal(numpy_from_dense(lut.table), quantized_codes(exact, out_type))


# --------------------------------------------------------------------------- exactness


def test_dense_with_k_4096_is_exact_at_the_extreme_codes():
    """Worst-case magnitudes |x_c| = 255, |q_w| = 127: the float64 GEMM sums exactly."""
    rng = np.random.default_rng(40)
    depth, outputs = 4096, 8
    x_type = QuantizedType.per_tensor(INT8, 0.02, 127)
    codes = np.where(rng.random((3, depth)) < 0.9, -128, 127).astype(np.int8)
    weight = np.where(rng.random((outputs, depth)) < 0.9, 127, -127).astype(np.int8)
    bias = rng.integers(-(10**6), 10**6, outputs).astype(np.int32)
    w_scales = rng.uniform(1e-3, 2e-3, outputs)
    out_type = QuantizedType.per_tensor(INT8, 30.0, 0)
    block = Block(arg_types=[tensor_type(codes.shape, x_type)])
    zeros = np.zeros(outputs, np.int64)
    w_const = axq.ConstantOp(
        dense_from_numpy(weight), tensor_type(weight.shape, QuantizedType(INT8, w_scales, zeros, 0))
    )
    b_const = axq.ConstantOp(
        dense_from_numpy(bias),
        tensor_type(bias.shape, QuantizedType(INT32, 0.02 * w_scales, zeros, 0)),
    )
    dense = axq.DenseOp(
        block.args[0], w_const.result, b_const.result, tensor_type((3, outputs), out_type)
    )
    got = INTEGER_KERNELS[axq.DenseOp](dense, [codes, weight, bias])[0]
    exact = (codes.astype(np.int64) - 127) @ weight.astype(np.int64).T + bias
    assert np.abs(exact).min() > 2**24  # beyond float32's exact integers
    real = 0.02 * w_scales / 30.0
    expected = [
        numerics.requantize(exact[:, o], *numerics.quantize_multiplier(real[o]), 0)
        for o in range(outputs)
    ]
    np.testing.assert_array_equal(got, np.stack(expected, axis=1))
    with pytest.raises(ValueError, match="float64 accumulation would round"):
        kernels.check_exact_integer_depth(codes, weight, 2**40)


@pytest.mark.parametrize("scheme", ["per_tensor_min_max", "per_tensor_histogram"])
def test_inputs_at_and_beyond_the_clamp_bounds(scheme):
    graph = import_onnx(onnx_model([node("Relu", ["x"], ["y"])], [("x", [1, 64])], ["y"]))
    sample = {"x": np.linspace(-3.0, 5.0, 64, dtype=np.float32).reshape(1, 64)}
    quant = quantized(graph, [sample], quantization_scheme=scheme)
    quantize_input = next(op for op in quant.main.body.block.ops if isinstance(op, axq.QuantizeOp))
    type_ = element_type(quantize_input.result)
    assert type_.zero_point == -128  # the fused ReLU range [0, 5]
    extremes = np.array([[-np.inf, -1e30, -3.0, 0.0, 5.0, 6.0, 1e30, np.inf]], np.float32)
    codes = INTEGER_KERNELS[axq.QuantizeOp](quantize_input, [extremes])[0]
    assert codes.tolist() == [[-128, -128, -128, -128, 127, 127, 127, 127]]
    low, high = dequantized(np.array([-128, 127]), type_)
    assert low == 0.0 and abs(high - 5.0) <= type_.scale
    out = quant.run({"x": np.pad(extremes, ((0, 0), (0, 56)))})["y"][0, :8]
    np.testing.assert_array_equal(out, [0, 0, 0, 0, high, high, high, high])


# --------------------------------------------------------------------------- IO and schemes


def io_model() -> onnx.ModelProto:
    """Input read by a host op and by convs; outputs from a conv, a host op and a dw input."""
    return onnx_model(
        [
            node("Floor", ["x"], ["s"]),
            node("Conv", ["s", "w3", "b3"], ["s2"]),
            node("Conv", ["x", "w1", "b1"], ["c1"]),
            node("Relu", ["c1"], ["r1"]),
            node("Conv", ["r1", "wd", "bd"], ["d"], group=4, pads=[1, 1, 1, 1]),
            node("Add", ["d", "s2"], ["y"]),
            node("Ceil", ["y"], ["z"]),
        ],
        [("x", [1, 4, 6, 6])],
        ["y", "z", "r1"],
        {
            "w1": _weights(50, 4, 4, 1, 1),
            "b1": _weights(51, 4),
            "wd": _weights(52, 4, 1, 3, 3),
            "bd": _weights(53, 4),
            "w3": _weights(54, 4, 4, 1, 1),
            "b3": _weights(55, 4),
        },
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_remove_io_quantization_signature(scheme):
    graph = import_onnx(io_model())
    samples = normal_samples(graph, 2, seed=56)
    with_io = quantized(graph, samples, quantization_scheme=scheme)
    without_io = quantized(graph, samples, quantization_scheme=scheme, remove_io_quantization=True)
    quantize_input = next(
        op
        for op in with_io.main.body.block.ops
        if isinstance(op, axq.QuantizeOp) and op.input in with_io.main.body.block.args
    )
    (arg_type,) = without_io.main.function_type.inputs.data
    assert arg_type == quantize_input.result.type
    result_types = without_io.main.function_type.outputs.data
    assert result_types[1] == TensorType(f32, [1, 4, 6, 6])  # produced by the host op Ceil
    for index in (0, 2):
        assert not element_type(result_types[index]).is_per_axis  # per tensor, even in the hybrid
    returned = with_io.main.get_return_op().operands
    # The host op Floor reads the input too; an int8 signature hands it the dequantized codes.
    codes = int8_inputs(without_io, samples[0])
    float_run = with_io.run({"x": dequantized(codes["x"], element_type(arg_type))})
    int8_run = without_io.run(codes)
    np.testing.assert_array_equal(float_run["z"], int8_run["z"])
    for index, name in ((0, "y"), (2, "r1")):
        out_type = element_type(result_types[index])
        assert int8_run[name].dtype == np.int8 and float_run[name].dtype == np.float32
        restored = dequantized(int8_run[name], out_type)
        if element_type(returned[index].owner.input) == out_type:
            np.testing.assert_array_equal(float_run[name], restored)
        else:  # the hybrid scheme's per-channel relu output, requantized for the caller
            assert np.abs(float_run[name] - restored).max() <= out_type.scale
    assert_contract(graph, without_io, samples[:1])


def depthwise_model() -> onnx.ModelProto:
    """conv -> relu6 -> dw (x2, stride 2, a zero channel) -> relu -> pad -> dw -> avg -> conv."""
    depthwise_weight = _weights(60, 8, 1, 3, 3)
    depthwise_weight[3] = 0.0
    return onnx_model(
        [
            node("Conv", ["x", "w1", "b1"], ["c1"]),
            node("Clip", ["c1", "lo", "hi"], ["r1"]),
            node("Conv", ["r1", "wd", "bd"], ["d"], group=4, pads=[1, 1, 1, 1], strides=[2, 2]),
            node("Relu", ["d"], ["r2"]),
            node("Pad", ["r2", "pads"], ["p2"]),
            node("Conv", ["p2", "wd2", "bd2"], ["d2"], group=8, pads=[0, 1, 2, 1]),
            node(
                "AveragePool",
                ["d2"],
                ["ap"],
                kernel_shape=[2, 2],
                pads=[1, 1, 0, 0],
                count_include_pad=1,
            ),
            node("Conv", ["ap", "w2", "b2"], ["y"]),
        ],
        [("x", [1, 3, 9, 9])],
        ["y"],
        {
            "w1": _weights(61, 4, 3, 1, 1),
            "b1": _weights(62, 4),
            "lo": np.float32(0),
            "hi": np.float32(6),
            "wd": depthwise_weight,
            "bd": _weights(63, 8),
            "wd2": _weights(64, 8, 1, 3, 3),
            "bd2": _weights(65, 8),
            "w2": _weights(66, 5, 8, 1, 1),
            "b2": _weights(67, 5),
            "pads": np.array([0, 0, 1, 1, 0, 0, 0, 0]),
        },
    )


@pytest.mark.parametrize("dw_channel_wise", [False, True])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_on_depthwise_models(scheme, dw_channel_wise, tmp_path):
    graph = import_onnx(depthwise_model())
    rng = np.random.default_rng(68)
    channel_scales = np.array([1.0, 3.0, 0.1], np.float32)[None, :, None, None]
    samples = [
        {"x": rng.standard_normal((1, 3, 9, 9)).astype(np.float32) * channel_scales}
        for _ in range(3)
    ]
    quant = quantized(
        graph, samples, quantization_scheme=scheme, quantize_dw_channel_wise=dw_channel_wise
    )
    depthwise = [op for op in quant.main.body.block.ops if is_depthwise(op)]
    assert len(depthwise) == 2
    for conv in depthwise:
        assert element_type(conv.weight).is_per_axis == dw_channel_wise
        assert element_type(conv.input).is_per_axis == (scheme == HYBRID)
    assert_contract(graph, quant, samples[:1] + [{"x": samples[1]["x"] * 2}])
    first, again = run_outputs(quant, samples[2]), run_outputs(quant, samples[2])
    save_quantized_model(tmp_path, quant.module)
    reloaded = run_outputs(load_quantized_model(tmp_path), samples[2])
    for name, array in first.items():
        assert array.tobytes() == again[name].tobytes() == reloaded[name].tobytes()
    rows = quantization_debug_report(graph, quant, samples[:2], tmp_path / "debug")
    assert [row["name"] for row in rows] == ["c1", "r1", "d", "r2", "p2", "d2", "ap", "y"]
    assert min(row["sqnr_db"] for row in rows) > 25


# --------------------------------------------------------------------------- hypothesis


def _integer_and_float(
    make, codes: list[np.ndarray], types: list[QuantizedType], out_type: QuantizedType
) -> tuple[np.ndarray, np.ndarray]:
    """(integer codes, float result) of one op built by `make(operands, result_type)`."""
    float_block = Block(arg_types=[tensor_type(c.shape, f32) for c in codes])
    floats = [dequantized(c, t) for c, t in zip(codes, types, strict=True)]
    float_op = make(list(float_block.args), tensor_type((1,), f32))
    expected = FLOAT_KERNELS[type(float_op)](float_op, floats)[0]
    int_block = Block(
        arg_types=[tensor_type(c.shape, t) for c, t in zip(codes, types, strict=True)]
    )
    int_op = make(list(int_block.args), tensor_type(expected.shape, out_type))
    int_op.verify()
    return INTEGER_KERNELS[type(int_op)](int_op, codes)[0], expected


def _code_error(got: np.ndarray, expected: np.ndarray, out_type: QuantizedType) -> int:
    return int(
        np.abs(got.astype(np.int64) - quantized_codes(expected, out_type).astype(np.int64)).max()
    )


scales = st.floats(1e-5, 1e3).map(lambda s: float(np.float32(s)))
zero_points = st.integers(-128, 127)
operand_shapes = st.sampled_from([(1, 3, 4, 4), (1, 3, 1, 1), (1,), ()])


def _binary_case(data, op_class):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = data.draw(operand_shapes)
    if op_class is axq.PReluOp and shape == (1, 3, 1, 1):
        shape = (3, 1, 1)
    codes = [
        rng.integers(-128, 128, (1, 3, 4, 4)).astype(np.int8),
        rng.integers(-128, 128, shape).astype(np.int8),
    ]
    types = [
        QuantizedType.per_tensor(INT8, data.draw(scales), data.draw(zero_points)) for _ in codes
    ]
    out_type = QuantizedType.per_tensor(INT8, data.draw(scales), data.draw(zero_points))
    got, expected = _integer_and_float(
        lambda args, result: op_class(*args, result), codes, types, out_type
    )
    return got, expected, types, out_type


@bounded
@given(st.data(), st.sampled_from([axq.MulOp, axq.PReluOp]))
def test_mul_and_prelu_within_one_step_for_any_scales(data, op_class):
    got, expected, _, out_type = _binary_case(data, op_class)
    assert _code_error(got, expected, out_type) <= 1


@bounded
@given(st.data(), st.sampled_from([axq.AddOp, axq.SubOp]))
def test_add_and_sub_within_one_step_down_to_their_common_scale(data, op_class):
    """add/sub rescale both inputs to units of 2 max(s_a, s_b) / 2**20 before adding: exact to
    one output step while s_out >= max(s_a, s_b) / 2**18, and to 1 + that unit below it
    (a documented limitation: the output range is 250,000x narrower than an input's)."""
    got, expected, types, out_type = _binary_case(data, op_class)
    common_unit = 2 * max(t.scale for t in types) / 2**ADD_LEFT_SHIFT
    bound = (
        1 if out_type.scale >= common_unit * 4 else 1 + int(np.ceil(common_unit / out_type.scale))
    )
    assert _code_error(got, expected, out_type) <= bound


@bounded
@given(st.data())
def test_conv_geometry_with_nonzero_input_zero_points(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    group = data.draw(st.integers(1, 3))
    in_per_group, out_per_group = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    strides = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    dilations = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pads = tuple(data.draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)))
    channels, out_channels = group * in_per_group, group * out_per_group
    if in_per_group == 1 and group > 1 and data.draw(st.booleans()):  # hybrid depthwise input
        x_type = QuantizedType(
            INT8, rng.uniform(0.01, 0.1, channels), rng.integers(-128, 128, channels), 1
        )
        seen = x_type.scale_array()[np.arange(out_channels) // out_per_group]
    else:
        x_type = QuantizedType.per_tensor(INT8, 0.05, data.draw(zero_points))
        seen = np.full(out_channels, 0.05)
    w_scales = rng.uniform(1e-3, 2e-2, out_channels)
    codes = [
        rng.integers(-128, 128, (1, channels, 6, 7)).astype(np.int8),
        rng.integers(-127, 128, (out_channels, in_per_group, *kernel)).astype(np.int8),
        rng.integers(-30000, 30000, out_channels).astype(np.int32),
    ]
    types = [
        x_type,
        QuantizedType(INT8, w_scales, np.zeros(out_channels, np.int64), 0),
        QuantizedType(INT32, seen * w_scales, np.zeros(out_channels, np.int64), 0),
    ]

    def make(args, result):
        return axq.Conv2dOp(
            *args, result, strides=strides, pads=pads, dilations=dilations, group=group
        )

    probe, expected = _integer_and_float(make, codes, types, QuantizedType.per_tensor(INT8, 1, 0))
    low, high = float(expected.min()), float(expected.max())
    out_type = QuantizedType.per_tensor(INT8, *numerics.choose_qparams_asymmetric(low, high))
    got, expected = _integer_and_float(make, codes, types, out_type)
    assert probe.shape == got.shape and _code_error(got, expected, out_type) <= 1


@bounded
@given(st.data())
def test_avg_pool_borders_and_ceil_mode(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    strides = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    pads = tuple(min(data.draw(st.integers(0, 2)), kernel[i % 2] - 1) for i in range(4))
    ceil_mode, count_include_pad = data.draw(st.booleans()), data.draw(st.booleans())
    x_type = QuantizedType(INT8, [0.02, 0.05, 0.1], rng.integers(-128, 128, 3), 1)
    codes = [
        rng.integers(
            -128, 128, (1, 3, data.draw(st.integers(4, 9)), data.draw(st.integers(4, 9)))
        ).astype(np.int8)
    ]
    out_type = QuantizedType.per_tensor(INT8, 0.05, data.draw(zero_points))

    def make(args, result):
        return axq.AvgPoolOp(args[0], result, kernel, strides, pads, ceil_mode, count_include_pad)

    got, expected = _integer_and_float(make, codes, [x_type], out_type)
    assert _code_error(got, expected, out_type) <= 1


@bounded
@given(st.data())
def test_resize_keeps_codes_or_interpolates_within_one_step(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    mode = data.draw(st.sampled_from(list(axq.ResizeMode)))
    transform = data.draw(st.sampled_from(list(axq.CoordinateTransform)))
    height, width = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    factors = [data.draw(st.floats(0.3, 4.0)) for _ in range(2)]
    if int(height * factors[0]) < 1 or int(width * factors[1]) < 1:
        return
    in_type = data.draw(
        st.sampled_from(
            [
                QuantizedType.per_tensor(INT8, 0.03, 17),
                QuantizedType(INT8, [0.02, 0.07], [3, -40], 1),
            ]
        )
    )
    codes = [rng.integers(-128, 128, (1, 2, height, width)).astype(np.int8)]

    def make(args, result):
        return axq.ResizeOp(args[0], result, mode, [1.0, 1.0, *factors], transform)

    got, expected = _integer_and_float(make, codes, [in_type], in_type)
    assert _code_error(got, expected, in_type) <= (0 if mode == axq.ResizeMode.NEAREST else 1)


# --------------------------------------------------------------------------- random graphs

_C, _HW = 4, 6
_BLOCKS = (
    "conv",
    "depthwise",
    "relu",
    "relu6",
    "hardtanh",
    "max_pool",
    "avg_pool",
    "Add",
    "Mul",
    "Sub",
    "Sigmoid",
    "Tanh",
    "leaky_relu",
    "concat_conv",
    "pad_pool",
    "resize_pool",
    "split_concat",
    "transpose",
    "prelu",
    "squeeze_excite",
)


def _block(kind: str, a: str, b: str, out: str, rng, data) -> tuple[list, dict]:
    """ONNX nodes of one [1, 4, 6, 6] -> [1, 4, 6, 6] block reading tensors `a` (and `b`)."""

    def weights(*shape):
        return {
            f"{out}_w": rng.standard_normal(shape) * 0.5,
            f"{out}_b": rng.standard_normal(shape[0]) * 0.2,
        }

    conv_inputs = [f"{out}_w", f"{out}_b"]
    if kind == "conv":
        return [node("Conv", [a, *conv_inputs], [out])], weights(_C, _C, 1, 1)
    if kind == "depthwise":
        return (
            [node("Conv", [a, *conv_inputs], [out], group=_C, pads=[1, 1, 1, 1])],
            weights(_C, 1, 3, 3),
        )
    if kind == "relu":
        return [node("Relu", [a], [out])], {}
    if kind in ("relu6", "hardtanh"):
        bounds = (0.0, 6.0) if kind == "relu6" else (-1.0, 1.0)
        return (
            [node("Clip", [a, f"{out}_lo", f"{out}_hi"], [out])],
            {f"{out}_lo": np.float32(bounds[0]), f"{out}_hi": np.float32(bounds[1])},
        )
    if kind in ("max_pool", "avg_pool"):
        op_type = "MaxPool" if kind == "max_pool" else "AveragePool"
        extra = {} if kind == "max_pool" else {"count_include_pad": 1}
        return [node(op_type, [a], [out], kernel_shape=[3, 3], pads=[1, 1, 1, 1], **extra)], {}
    if kind in ("Add", "Mul", "Sub", "Sigmoid", "Tanh"):
        return [node(kind, [a, b] if kind in ("Add", "Mul", "Sub") else [a], [out])], {}
    if kind == "leaky_relu":
        return [node("LeakyRelu", [a], [out], alpha=0.1)], {}
    if kind == "concat_conv":
        return (
            [
                node("Concat", [a, b], [f"{out}_cat"], axis=1),
                node("Conv", [f"{out}_cat", *conv_inputs], [out]),
            ],
            weights(_C, 2 * _C, 1, 1),
        )
    if kind == "pad_pool":
        return (
            [
                node("Pad", [a, f"{out}_pads"], [f"{out}_pad"]),
                node("MaxPool", [f"{out}_pad"], [out], kernel_shape=[3, 3]),
            ],
            {f"{out}_pads": np.array([0, 0, 1, 1, 0, 0, 1, 1])},
        )
    if kind == "resize_pool":
        mode = data.draw(st.sampled_from(["nearest", "linear"]))
        return (
            [
                node("Resize", [a, "", f"{out}_scales"], [f"{out}_up"], mode=mode),
                node("AveragePool", [f"{out}_up"], [out], kernel_shape=[2, 2], strides=[2, 2]),
            ],
            {f"{out}_scales": np.array([1.0, 1.0, 2.0, 2.0])},
        )
    if kind == "split_concat":
        return (
            [
                node("Split", [a], [f"{out}_top", f"{out}_bottom"], axis=2),
                node("Concat", [f"{out}_bottom", f"{out}_top"], [out], axis=2),
            ],
            {},
        )
    if kind == "transpose":
        return [node("Transpose", [a], [out], perm=[0, 1, 3, 2])], {}
    if kind == "prelu":
        return (
            [node("PRelu", [a, f"{out}_slope"], [out])],
            {f"{out}_slope": rng.uniform(-0.5, 0.5, (_C, 1, 1))},
        )
    assert kind == "squeeze_excite"
    return (
        [
            node("GlobalAveragePool", [a], [f"{out}_mean"]),
            node("Sigmoid", [f"{out}_mean"], [f"{out}_gate"]),
            node("Mul", [b, f"{out}_gate"], [out]),
        ],
        {},
    )


@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_random_graphs_keep_the_contract_under_every_option(data):
    """Random DAGs of branching, fusing and type-sharing blocks (reused tensors, concats,
    clips after pools, depthwise convs after sharing ops) through every pass option."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nodes, initializers, tensors = [], {}, ["x"]
    for index in range(data.draw(st.integers(1, 8))):
        block_nodes, block_initializers = _block(
            data.draw(st.sampled_from(_BLOCKS)),
            data.draw(st.sampled_from(tensors)),
            data.draw(st.sampled_from(tensors)),
            f"t{index}",
            rng,
            data,
        )
        nodes += block_nodes
        initializers.update(block_initializers)
        tensors.append(f"t{index}")
    outputs = list(
        dict.fromkeys([tensors[-1], *data.draw(st.lists(st.sampled_from(tensors[1:]), max_size=2))])
    )
    graph = import_onnx(onnx_model(nodes, [("x", [1, _C, _HW, _HW])], outputs, initializers))
    # Calibrate with some input channels constant (dead downstream channels), then run
    # with every channel alive and wider.
    alive = rng.random((1, _C, 1, 1)) > 0.25
    shift = rng.uniform(-3, 3, (1, _C, 1, 1)) * data.draw(st.booleans())
    samples = [
        {
            "x": (
                rng.standard_normal((1, _C, _HW, _HW))
                * rng.uniform(0.1, 5, (1, _C, 1, 1))
                * channels
                + shift
            ).astype(np.float32)
        }
        for channels in (alive, alive, np.full(alive.shape, 1.5))
    ]
    quant = quantized(
        graph,
        samples[:2],
        quantization_scheme=data.draw(st.sampled_from(SCHEMES)),
        quantize_dw_channel_wise=data.draw(st.booleans()),
        remove_io_quantization=data.draw(st.booleans()),
    )
    assert_contract(graph, quant, [samples[0], samples[2]])
    first, again = run_outputs(quant, samples[2]), run_outputs(quant, samples[2])
    assert all(first[name].tobytes() == again[name].tobytes() for name in first)
