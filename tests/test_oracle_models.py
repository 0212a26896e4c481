"""Whole quantized models: the oracle, walking the axq IR op by op with its own arithmetic,
equals the integer reference (`Graph.run`, and `CompiledModel.run_quantized` end to end) bit
for bit, on every intermediate tensor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from oracle import graph as oracle_graph
from oracle.quant import quantize
from xdsl.ir import Operation, SSAValue

import aipuc
from aipuc.config import CompilerConfig
from aipuc.frontend.loader import load_model
from aipuc.frontend.onnx_import import import_onnx
from aipuc.graph import Graph
from aipuc.models import build_model, sample_inputs
from aipuc.models.builder import IMAGE_IMAGENET, GraphBuilder
from aipuc.quantization.artifacts import quantize_graph
from aipuc.runtime.integer_reference import INTEGER_KERNELS
from aipuc.runtime.interpreter import run_function


def builder_model() -> onnx.ModelProto:
    """Ops tiny_cnn lacks: SiLU and Sigmoid tables, split, nearest upsampling, sub, mul,
    transpose, matmul, softmax, concat and a Gemm."""
    b = GraphBuilder("oracle_builder", 3)
    x = b.input("input", (1, 3, 8, 8), IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 8, 3, act="silu", name="stem")
    left, right = b.split(x, [4, 4], axis=1, name="split")
    left = b.maxpool(b.upsample2x(left), 2, 2, 0, name="pool")
    mixed = b.mul(b.sub(left, right), b.sigmoid(right), name="gate")
    tokens = b.reshape(mixed, (1, 4, 64))
    scores = b.softmax(b.matmul(tokens, b.transpose(tokens, (0, 2, 1))), axis=-1)
    both = b.concat([b.flatten(scores), b.flatten(b.global_avg_pool(x))], axis=1)
    b.output(b.gemm(both, 5), "logits")
    return b.model("oracle test graph")


def _initializer(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def onnx_ops_model() -> onnx.ModelProto:
    """Ops the builder does not emit: PRelu, AveragePool (pads, ceil_mode,
    count_include_pad), linear Resize, constant Pad, ConvTranspose, LeakyRelu, Clip."""
    rng = np.random.default_rng(7)
    weights = {
        "w": rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.3,
        "b": rng.standard_normal(6).astype(np.float32) * 0.1,
        "slope": rng.uniform(0.05, 0.3, (6, 1, 1)).astype(np.float32),
        "wt": rng.standard_normal((6, 4, 3, 3)).astype(np.float32) * 0.2,
        "bt": rng.standard_normal(4).astype(np.float32) * 0.1,
        "sizes_roi": np.zeros(0, np.float32),
        "resize_scales": np.array([1, 1, 2, 1.5], np.float32),
        "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
        "pad_value": np.array(0.25, np.float32),
    }
    make = helper.make_node
    nodes = [
        make("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1], strides=[1, 2]),
        make("PRelu", ["conv", "slope"], ["prelu"]),
        make(
            "AveragePool",
            ["prelu"],
            ["pool"],
            kernel_shape=[3, 2],
            strides=[2, 2],
            pads=[1, 0, 1, 1],
            ceil_mode=1,
            count_include_pad=0,
        ),
        make(
            "Resize",
            ["pool", "sizes_roi", "resize_scales"],
            ["resized"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        make("Pad", ["resized", "pads", "pad_value"], ["padded"], mode="constant"),
        make("ConvTranspose", ["padded", "wt", "bt"], ["up"], strides=[2, 2], pads=[1, 1, 1, 1]),
        make("LeakyRelu", ["up"], ["leaky"], alpha=0.2),
        make("Clip", ["leaky", "low", "high"], ["y"]),
    ]
    weights["low"], weights["high"] = np.array(-1.0, np.float32), np.array(2.0, np.float32)
    graph = helper.make_graph(
        nodes,
        "oracle_onnx_ops",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_initializer(name, array) for name, array in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def recorded_product_run(
    graph: Graph, arguments: Sequence[np.ndarray]
) -> dict[SSAValue, np.ndarray]:
    """Every op result of the integer reference, by SSA value."""
    recorded: dict[SSAValue, np.ndarray] = {}

    def wrap(kernel):
        def run(op: Operation, inputs):
            results = kernel(op, inputs)
            recorded.update(zip(op.results, results, strict=True))
            return results

        return run

    kernels = {op_type: wrap(kernel) for op_type, kernel in INTEGER_KERNELS.items()}
    run_function(graph.main, list(arguments), kernels)
    return recorded


def assert_oracle_equals_product(graph: Graph, sample: dict[str, np.ndarray]) -> None:
    arguments = [sample[name] for name in graph.inputs]
    product = recorded_product_run(graph, arguments)
    outputs, values = oracle_graph.run(graph.main, arguments)
    assert product, "the integer reference ran no kernel"
    for value, got in product.items():
        expected = values[value]
        owner = value.owner
        where = f"{owner.name} at {owner.location}" if isinstance(owner, Operation) else value
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        assert got.tobytes() == expected.tobytes(), f"{where}: oracle and product differ"
    for got, expected in zip(graph.run(sample).values(), outputs, strict=True):
        assert got.tobytes() == expected.tobytes()


MODELS = {
    "tiny_cnn": lambda: build_model("tiny_cnn"),
    "builder": builder_model,
    "onnx_ops": onnx_ops_model,
}
OPS = {  # the quantized ops each model must contain, so its coverage cannot silently shrink
    "tiny_cnn": {"conv2d", "clip", "max_pool", "add", "concat", "global_pool", "dense"},
    "builder": {"lut", "mul", "sub", "split", "resize", "max_pool", "transpose", "matmul"}
    | {"softmax", "global_pool", "requantize", "concat", "dense", "reshape"},
    "onnx_ops": {"prelu", "avg_pool", "resize", "pad", "conv_transpose2d", "lut", "clip"},
}
OPTIONS = [
    {"quantization_scheme": "per_tensor_histogram"},
    {"quantization_scheme": "hybrid_per_tensor_per_channel", "quantize_dw_channel_wise": True},
    {"quantization_scheme": "per_tensor_min_max", "remove_io_quantization": True},
]


def _samples(model: onnx.ModelProto, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            value.name: rng.standard_normal(
                [d.dim_value for d in value.type.tensor_type.shape.dim]
            ).astype(np.float32)
            for value in model.graph.input
        }
        for _ in range(count)
    ]


def _int8_signature(graph: Graph, sample: dict) -> dict:
    """With remove_io_quantization the graph reads codes: quantize the sample with the
    oracle (the caller's job)."""
    codes = {}
    for argument, (name, (_, dtype)) in zip(graph.main.args, graph.inputs.items(), strict=True):
        if dtype != np.int8:
            codes[name] = sample[name]
            continue
        type_ = oracle_graph.qtype_of(argument)
        scale, zero_point = type_.only_scale, type_.zero_points[0]
        values = [quantize(float(v), scale, zero_point) for v in sample[name].ravel()]
        codes[name] = np.array(values, np.int8).reshape(sample[name].shape)
    return codes


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o["quantization_scheme"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_whole_model_oracle_equals_integer_reference(name, options):
    model = load_model(MODELS[name]())
    graph = import_onnx(model)
    quant, _ = quantize_graph(graph, _samples(model, 2, 0), **options)
    assert OPS[name] <= {op.name.removeprefix("axq.") for op in quant.main.walk()}
    (sample,) = _samples(model, 1, 1)
    assert_oracle_equals_product(quant, _int8_signature(quant, sample))


@pytest.mark.long
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", ["attention_block", "tiny_cnn"])
def test_zoo_models_oracle_equals_integer_reference(name, seed):
    model = load_model(build_model(name))
    quant, _ = quantize_graph(import_onnx(model), [sample_inputs(model, seed=s) for s in (7, 8)])
    assert_oracle_equals_product(quant, sample_inputs(model, seed=seed))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_oracle_equals_run_quantized_equals_the_stream(tmp_path, name):
    """End to end: the whole pipeline compiles the model to an instruction stream. On the
    quantized core, the oracle, the integer reference and the stream on the simulator (from
    disk) give the same bytes; with the host's float pre/postamble around the core,
    `run_quantized` and `run` give the same bytes."""
    model = MODELS[name]()
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path)), _samples(model, 2, 0))
    (sample,) = _samples(model, 1, 1)
    loaded = aipuc.load(tmp_path)
    core = compiled.core
    oracle, _ = oracle_graph.run(core.main, [sample[name] for name in core.inputs])
    reference = core.run(sample)
    streamed = loaded.stream_runner.run(sample)
    assert list(reference) == list(streamed) == core.outputs
    for expected, got, stream in zip(oracle, reference.values(), streamed.values(), strict=True):
        assert got.dtype == expected.dtype and stream.dtype == expected.dtype
        assert got.tobytes() == expected.tobytes(), "the integer reference differs from the oracle"
        assert stream.tobytes() == expected.tobytes(), "the stream differs from the oracle"
    quantized, run = compiled.run_quantized(sample), loaded.run(sample)
    assert list(quantized) == list(run) == [o.name for o in model.graph.output]
    for output, value in quantized.items():
        assert value.tobytes() == run[output].tobytes(), output
