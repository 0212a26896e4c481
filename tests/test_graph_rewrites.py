"""The config-gated graph passes: each field switches its effect, the float rewrites keep the
float function, the integer rewrites keep every integer code, and validation names every
violation."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import onnxruntime
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lowering_harness import assert_stream_equals_reference, stream_facts
from onnx import TensorProto, helper, numpy_helper
from xdsl.parser import Parser

import aipuc
from aipuc import numerics
from aipuc.compiled import quantize_inputs
from aipuc.config import CompilerConfig
from aipuc.dialects import axq
from aipuc.driver import import_float_graph, load_onnx
from aipuc.errors import ModelError
from aipuc.frontend.loader import load_model
from aipuc.graph import Graph
from aipuc.ir_files import ir_context
from aipuc.models import build_model, sample_inputs
from aipuc.passes import PASSES
from aipuc.pipeline import Phase, run_stage, stages
from aipuc.quantization.calibration import annotate, calibrate
from aipuc.runtime.integer_reference import INTEGER_KERNELS
from aipuc.runtime.interpreter import run_function
from aipuc.transforms.apply_arithmetic_simplification import clamps_nothing


def _compile(tmp_path, model, samples, name: str, **fields):
    config = CompilerConfig(
        output_dir=str(tmp_path / name),
        run_graph_cleaner=False,
        compiler_mode="quantize_only",
        **fields,
    )
    return aipuc.compile(model, config, samples)


def _ir(compiled) -> str:
    return (compiled.output_dir / "quantized_model/model.mlir").read_text()


def _apply(pass_name: str, module) -> None:
    PASSES[pass_name]()().apply(ir_context(), module)
    module.verify()


def _count(module, op_type: type) -> int:
    return sum(isinstance(op, op_type) for op in module.walk())


@pytest.fixture(scope="module")
def default_build(tmp_path_factory, showcase, showcase_samples):
    return _compile(tmp_path_factory.mktemp("default"), showcase, showcase_samples, "on")


# --------------------------------------------------------------------------- switches


SWITCHED = {
    # field: (text only with the pass on, text only with it off)
    "rewrite_dense_to_conv2d": ("-> tensor<1x10x1x1x!axq.q", "axq.dense"),
    "simplify_mac_before_after_lut": ("unary_function gelu", "unary_function erf"),
    "apply_arithmetic_simplification": ("", "axq.clip"),
    "rewrite_concat_to_resadd": ("axq.pad", "axq.concat"),
}


@pytest.mark.parametrize("field", sorted(SWITCHED))
def test_switching_a_field_off_removes_its_effect(
    field, tmp_path, showcase, showcase_samples, default_build
):
    only_on, only_off = SWITCHED[field]
    on, off = (
        _ir(default_build),
        _ir(_compile(tmp_path, showcase, showcase_samples, "off", **{field: False})),
    )
    assert only_off in off and only_off not in on
    assert only_on in on and (not only_on or only_on not in off)


def test_the_default_build_runs_every_rewrite(default_build):
    text = _ir(default_build)
    for gone in ("axq.dense", "axq.concat", "axq.clip", "sigmoid", "erf", "axq.mul"):
        assert gone not in text, gone
    assert text.count("axq.lut") == 3  # SiLU, hard-swish, GELU: one table each


# --------------------------------------------------------------------------- float rewrites


@pytest.mark.parametrize(
    "pass_name",
    ["rewrite-dense-to-conv2d", "simplify-mac-before-after-lut", "apply-arithmetic-simplification"],
)
def test_float_rewrites_keep_the_float_function(pass_name, showcase, showcase_samples):
    config = CompilerConfig(run_graph_cleaner=False)
    graph = import_float_graph(load_onnx(showcase, config), config)
    before = [graph.run(sample)["logits"] for sample in showcase_samples]
    ops_before = sum(1 for _ in graph.module.walk())
    _apply(pass_name, graph.module)
    assert sum(1 for _ in graph.module.walk()) != ops_before
    for sample, expected in zip(showcase_samples, before, strict=True):
        np.testing.assert_allclose(graph.run(sample)["logits"], expected, rtol=1e-4, atol=1e-5)


def test_affine_table_parameters_wrap_the_function():
    x = np.linspace(-6, 6, 101)
    params = {"alpha": 0.1, "pre_scale": 0.5, "pre_shift": -1.0, "post_scale": 3.0, "post_shift": 2}
    expected = 3.0 * np.where(0.5 * x - 1 >= 0, 0.5 * x - 1, 0.1 * (0.5 * x - 1)) + 2
    np.testing.assert_allclose(numerics.unary_function("leakyrelu", params)(x), expected)
    plain = numerics.unary_function("tanh", {})
    np.testing.assert_array_equal(plain(x), np.tanh(x))


def _gated_model(gate: str) -> onnx.ModelProto:
    """x * gate(x) over 256 values, as exporters emit SiLU (Sigmoid) and hard-swish."""
    attributes = {"alpha": 1 / 6, "beta": 0.5} if gate == "HardSigmoid" else {}
    nodes = [
        helper.make_node(gate, ["x"], ["g"], name="gate", **attributes),
        helper.make_node("Mul", ["x", "g"], ["y"], name="product"),
    ]
    graph = helper.make_graph(
        nodes,
        "gated",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
    )
    return load_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("gate, function", [("Sigmoid", "silu"), ("HardSigmoid", "hardswish")])
def test_one_table_computes_the_gated_product_with_one_rounding(gate, function):
    """Over every int8 input code the fused table is within half an output step of the
    function. Over inputs spread across the calibrated range, the gate table and the
    integer multiply (two roundings, and an input range the product needs whole) are
    further from the function than the one table (whose input keeps only where it is not
    flat)."""
    model = _gated_model(gate)
    rng = np.random.default_rng(0)
    samples = [{"x": (rng.standard_normal((1, 256)) * 3).astype(np.float32)} for _ in range(4)]
    bound = np.max(np.abs(samples[0]["x"]))  # inside every range calibration gave
    spread = np.linspace(-bound, bound, 256, dtype=np.float32).reshape(1, 256)
    function_of = numerics.UNARY_FUNCTIONS[function]()
    errors = {}
    for fused in (True, False):
        config = CompilerConfig(simplify_mac_before_after_lut=fused, remove_io_quantization=True)
        module = _quantized(model, samples, config)
        assert (_count(module, axq.LutOp), _count(module, axq.MulOp)) == (
            (1, 0) if fused else (1, 1)
        )
        graph = Graph(module)
        x_type = axq.element_type(graph.main.body.block.args[0])
        y_type = axq.element_type(graph.main.get_return_op().operands[0])

        def run(codes, graph=graph, x_type=x_type, y_type=y_type):
            x = numerics.dequantize(codes, x_type.scale, x_type.zero_point)
            y = graph.run({"x": codes})["y"]
            return x, numerics.dequantize(y, y_type.scale, y_type.zero_point)

        if fused:
            x, y = run(np.arange(-128, 128, dtype=np.int8).reshape(1, 256))
            within = np.abs(x) <= bound  # inside the output's range
            assert np.abs(y - function_of(x))[within].max() <= y_type.scale / 2 * (1 + 1e-6)
        _, y = run(numerics.quantize(spread, x_type.scale, x_type.zero_point))
        errors[fused] = np.sqrt(np.mean((y - function_of(spread)) ** 2))
    assert errors[True] < errors[False]


# --------------------------------------------------------------------------- integer rewrites


def _quantized(model: onnx.ModelProto, samples, config: CompilerConfig):
    """The module axq-quantize gives (after the float stage), and the held-out inputs."""
    graph = import_float_graph(load_onnx(model, config), config)
    ctx = ir_context()
    for stage in stages(Phase.FLOAT):
        run_stage(stage, config, ctx, graph.module)
    module = graph.module.clone()
    annotate(module, calibrate(graph, samples))
    run_stage(stages(Phase.QUANTIZED)[0], config, ctx, module)
    return module


def _integer_outputs(module, samples) -> list[dict[str, np.ndarray]]:
    graph = Graph(module)
    return [graph.run(quantize_inputs(module, sample)) for sample in samples]


@pytest.mark.parametrize(
    "pass_name, op_type, model_name",
    [
        ("rewrite-concat-to-resadd", axq.ConcatOp, "showcase"),
        ("apply-arithmetic-simplification", axq.ClipOp, "showcase"),
        ("apply-arithmetic-simplification", axq.ClipOp, "tiny_cnn"),
        ("rewrite-dense-to-conv2d", axq.DenseOp, "tiny_cnn"),
        ("rewrite-dense-to-conv2d", axq.DenseOp, "showcase"),
        ("rewrite-dense-to-conv2d", axq.DenseOp, "attention_block"),
    ],
)
def test_integer_rewrites_keep_every_code(pass_name, op_type, model_name, showcase):
    model = showcase if model_name == "showcase" else load_model(build_model(model_name))
    config = CompilerConfig(
        run_graph_cleaner=False,
        apply_arithmetic_simplification=False,
        rewrite_dense_to_conv2d=False,
    )
    inputs = [sample_inputs(model, seed) for seed in range(6)]
    module = _quantized(model, inputs[:3], config)
    expected = _integer_outputs(module, inputs[3:])
    before = _count(module, op_type)
    _apply(pass_name, module)
    assert _count(module, op_type) < before  # the pass did something
    for got, want in zip(_integer_outputs(module, inputs[3:]), expected, strict=True):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_dense_to_conv2d_before_calibration_keeps_tiny_cnn_bit_identical():
    """docs/benchmarks.md: run in the float stage (before calibration), the rewrite leaves
    tiny_cnn's integer outputs unchanged (the conv sees the dense's inputs and ranges)."""
    model = load_model(build_model("tiny_cnn"))
    inputs = [sample_inputs(model, seed) for seed in range(5)]
    outputs, denses = [], []
    for rewrite in (False, True):
        config = CompilerConfig(rewrite_dense_to_conv2d=rewrite)
        module = _quantized(model, inputs[:3], config)
        denses.append(_count(module, axq.DenseOp))
        outputs.append(_integer_outputs(module, inputs[3:]))
    assert denses[0] > denses[1] == 0  # the rewrite ran
    for got, want in zip(outputs[1], outputs[0], strict=True):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def _typed(shape, qtype: str) -> str:
    return f"tensor<{'x'.join(map(str, shape))}x!axq.q<i8, {qtype}>>"


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(1e-4, 50.0),
    zero_point=st.integers(-128, 127),
    axis=st.sampled_from([1, 2, 3]),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_resadd_is_the_concatenation_for_any_type(scale, zero_point, axis, sizes, seed):
    """Integer semantics: pads of zero and adds at one type reproduce every concat code."""
    if axis == 1:
        sizes = [64 * size for size in sizes[:-1]] + [sizes[-1]]
    qtype = f"{scale!r}:{zero_point}"
    shapes = [[1, 2, 2, 2] for _ in sizes]
    for shape, size in zip(shapes, sizes, strict=True):
        shape[axis] = size
    out = [1, 2, 2, 2]
    out[axis] = sum(sizes)
    args = ", ".join(f"%a{i}: {_typed(s, qtype)}" for i, s in enumerate(shapes))
    operands = ", ".join(f"%a{i}" for i in range(len(shapes)))
    types = ", ".join(_typed(s, qtype) for s in shapes)
    text = f"""builtin.module {{
      func.func @main({args}) -> {_typed(out, qtype)} {{
        %y = axq.concat {operands} {{axis = {axis} : i64}} : ({types}) -> {_typed(out, qtype)}
        func.return %y : {_typed(out, qtype)}
      }}
    }}"""
    module = Parser(ir_context(), text).parse_module()
    rng = np.random.default_rng(seed)
    codes = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
    expected = np.concatenate(codes, axis=axis)

    def run() -> np.ndarray:
        return run_function(Graph(module).main, codes, INTEGER_KERNELS)[0]

    np.testing.assert_array_equal(run(), expected)
    _apply("rewrite-concat-to-resadd", module)
    assert _count(module, axq.ConcatOp) == 0
    np.testing.assert_array_equal(run(), expected)


def _f64(value: float) -> str:
    """An f64 attribute in MLIR text (infinities as their bits)."""
    if math.isfinite(value):
        return f"{value!r} : f64"
    return ("0x7FF0000000000000" if value > 0 else "0xFFF0000000000000") + " : f64"


@settings(max_examples=100, deadline=None)
@given(
    scale=st.floats(1e-4, 1.0),
    zero_point=st.integers(-128, 127),
    low=st.sampled_from([-math.inf, -10.0, -1.0, 0.0, 0.5]),
    high=st.sampled_from([0.5, 1.0, 6.0, 100.0, math.inf]),
)
def test_a_clip_is_removed_exactly_when_it_clamps_no_code(scale, zero_point, low, high):
    """Over all 256 codes: the pass removes a quantized clip iff the clip is the identity."""
    tensor = _typed([256], f"{scale!r}:{zero_point}")
    text = f"""builtin.module {{
      func.func @main(%x: {tensor}) -> {tensor} {{
        %y = axq.clip %x {{min = {_f64(low)}, max = {_f64(high)}}} : {tensor} -> {tensor}
        func.return %y : {tensor}
      }}
    }}"""
    module = Parser(ir_context(), text).parse_module()
    [clip] = [op for op in module.walk() if isinstance(op, axq.ClipOp)]
    codes = np.arange(-128, 128, dtype=np.int8)
    [clamped] = INTEGER_KERNELS[axq.ClipOp](clip, [codes])
    assert clamps_nothing(clip) == bool(np.array_equal(clamped, codes))
    _apply("apply-arithmetic-simplification", module)
    assert (_count(module, axq.ClipOp) == 0) == clamps_nothing(clip)


# --------------------------------------------------------------------------- validation


def _unsupported_model() -> onnx.ModelProto:
    """A MatMul whose batch dimensions broadcast and a transposed convolution with groups."""
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["a", "b"], ["product"], name="broadcast_matmul"),
        helper.make_node("ConvTranspose", ["x", "w"], ["up"], name="grouped_up", group=2),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "unsupported",
        [
            value("a", TensorProto.FLOAT, [2, 4, 8]),
            value("b", TensorProto.FLOAT, [1, 8, 4]),
            value("x", TensorProto.FLOAT, [1, 4, 5, 5]),
        ],
        [value("product", TensorProto.FLOAT, None), value("up", TensorProto.FLOAT, None)],
        [weight],
    )
    return load_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_validation_names_every_violation(tmp_path):
    """Without the graph cleaner the core is the model as given: validation names what the
    AIPU cannot run (with it, these nodes would run on the host)."""
    model = _unsupported_model()
    samples = [sample_inputs(model, seed) for seed in range(2)]
    with pytest.raises(ModelError) as raised:
        _compile(tmp_path, model, samples, "checked")
    message = str(raised.value)
    assert message.startswith("2 hardware constraint violation(s) in the accelerated core")
    assert "node 'broadcast_matmul' (axq.matmul): batched MatMul of [2, 4, 8]" in message
    assert "node 'grouped_up' (axq.conv_transpose2d): group=2" in message
    report = json.loads((tmp_path / "checked/compilation_report.json").read_text())
    assert report["error"]["code"] == "E_VALIDATE"
    unchecked = _compile(tmp_path, model, samples, "unchecked", validate_operators=False)
    assert "axq.matmul" in _ir(unchecked) and "axq.conv_transpose2d" in _ir(unchecked)


# --------------------------------------------------------------------------- linear bias fold


def _token_linears() -> onnx.ModelProto:
    """Two Linears on [1, 16, 32] tokens as exporters write them (MatMul + Add of the bias),
    a ReLU between them; the second one's Add is the graph output."""
    rng = np.random.default_rng(5)
    w1 = (rng.standard_normal((32, 48)) / math.sqrt(32)).astype(np.float32)
    w2 = (rng.standard_normal((48, 32)) / math.sqrt(48)).astype(np.float32)
    b1, b2 = (rng.normal(0, 0.3, size).astype(np.float32) for size in (48, 32))
    nodes = [
        helper.make_node("MatMul", ["tokens", "w1"], ["h1"], name="fc1.matmul"),
        helper.make_node("Add", ["h1", "b1"], ["a1"], name="fc1.add"),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu"),
        helper.make_node("MatMul", ["r1", "w2"], ["h2"], name="fc2.matmul"),
        helper.make_node("Add", ["h2", "b2"], ["out"], name="fc2.add"),
    ]
    graph = helper.make_graph(
        nodes,
        "token_linears",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, [1, 16, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, 32])],
        [
            numpy_helper.from_array(a, n)
            for a, n in ((w1, "w1"), (w2, "w2"), (b1, "b1"), (b2, "b2"))
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _sqnr_db(reference: np.ndarray, value: np.ndarray) -> float:
    noise = np.sum((reference.astype(np.float64) - value) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise))


def test_a_linears_bias_add_rides_in_the_mvm_bias_table(tmp_path):
    """MatMul + Add(bias) on [B, T, C]: apply-arithmetic-simplification folds the bias into the
    1x1 conv that rewrite-dense-to-conv2d made of the MatMul (int32 bias, no DPU add). Against
    onnxruntime float the fused graph is at least as close as the unfused one (one
    requantization less), and the stream equals run_quantized bit for bit."""
    model = _token_linears()
    rng = np.random.default_rng(0)
    samples = [{"tokens": rng.standard_normal((1, 16, 32)).astype(np.float32)} for _ in range(6)]
    session = onnxruntime.InferenceSession(model.SerializeToString())
    floats = [session.run(None, sample)[0] for sample in samples[3:]]
    fused = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path / "fused")), samples[:3])
    unfused = aipuc.compile(
        model,
        CompilerConfig(
            output_dir=str(tmp_path / "unfused"),
            compiler_mode="quantize_only",
            apply_arithmetic_simplification=False,
        ),
        samples[:3],
    )
    assert "axq.add" not in _ir(fused) and _ir(unfused).count("axq.add") == 2
    assert stream_facts(fused.output_dir).records["DPU"] == 0  # the ReLU is the requantization's
    sqnr = {
        name: _sqnr_db(
            np.concatenate(floats),
            np.concatenate([compiled.run_quantized(s)["out"] for s in samples[3:]]),
        )
        for name, compiled in (("fused", fused), ("unfused", unfused))
    }
    assert sqnr["fused"] >= sqnr["unfused"] and sqnr["fused"] > 30.0, sqnr
    references = [fused.run_quantized(sample) for sample in samples[3:]]
    assert_stream_equals_reference(fused.output_dir, references, samples[3:])
