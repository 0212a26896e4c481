"""apply-pword-padding: exact on the integer graph, visible in the IR, bit-exact on the stream.

Exactness is checked against the unpadded graph's integer reference (the pass must not change
a single output code), not against anything the pass computes.
"""

from __future__ import annotations

import numpy as np
import pytest
from lowering_harness import (
    quantize,
    samples_of,
    zoo_model,
)
from xdsl.parser import Parser

from aipuc.config import CompilerConfig
from aipuc.dialects import axq
from aipuc.graph import Graph
from aipuc.ir_files import ir_context, load_module
from aipuc.lowering.emit_elf import EmitOptions, emit_program
from aipuc.lowering.runner import StreamRunner
from aipuc.outputs import QUANTIZED_IR, QUANTIZED_MODEL
from aipuc.pipeline import Phase, run_stage, stages
from aipuc.transforms.apply_pword_padding import ApplyPwordPaddingPass


def _padded(module):
    padded = module.clone()
    ApplyPwordPaddingPass().apply(ir_context(), padded)
    padded.verify()
    return padded


def _out_channels(module) -> list[int]:
    return [
        axq.shape_of(op.result)[1]
        for op in module.walk()
        if isinstance(op, axq.Conv2dOp) and not axq.is_depthwise(op)
    ]


def _tensor(shape, element: str) -> str:
    return f"tensor<{'x'.join(map(str, shape))}x{element}>"


def _constant(name: str, array: np.ndarray, dtype, qtype: str) -> str:
    data = np.ascontiguousarray(array, dtype).tobytes().hex().upper()
    storage = "i8" if dtype == np.int8 else "i32"
    return (
        f'%{name} = axq.constant {{value = dense<"0x{data}"> : '
        f"{_tensor(array.shape, storage)}}} : {_tensor(array.shape, qtype)}"
    )


def _conv(name, x, w, b, types, pads) -> str:
    properties = (
        f"strides = array<i64: 1, 1>, pads = array<i64: {pads}>, "
        "dilations = array<i64: 1, 1>, group = 1 : i64"
    )
    operands = ", ".join(types[:3])
    return f"%{name} = axq.conv2d %{x}, %{w}, %{b} {{{properties}}} : ({operands}) -> {types[3]}"


def _channel_softmax_module():
    """conv 8->40, softmax over the 40 channels, conv 40->32 (3x3) as a quantized graph.

    (The graph cleaner keeps ONNX softmaxes outside attention on the host, so the graph is
    written in axq directly.)"""
    rng = np.random.default_rng(7)
    w1, b1 = rng.integers(-127, 128, (40, 8, 1, 1)), rng.integers(-2000, 2000, 40)
    w2, b2 = rng.integers(-127, 128, (32, 40, 3, 3)), rng.integers(-2000, 2000, 32)
    qx, qc, qs = "!axq.q<i8, 0.02:-5>", "!axq.q<i8, 0.05:-3>", "!axq.q<i8, 0.00390625:-128>"
    qw, qb1, qb2 = "!axq.q<i8, 0.01:0>", "!axq.q<i32, 0.0002:0>", "!axq.q<i32, 3.90625e-05:0>"
    fx, x, c1 = _tensor((1, 8, 6, 6), "f32"), _tensor((1, 8, 6, 6), qx), _tensor((1, 40, 6, 6), qc)
    s, c2 = _tensor((1, 40, 6, 6), qs), _tensor((1, 32, 6, 6), qc)
    fy = _tensor((1, 32, 6, 6), "f32")
    body = [
        f"%xq = axq.quantize %x : {fx} -> {x}",
        _constant("w1", w1, np.int8, qw),
        _constant("b1", b1, np.int32, qb1),
        _conv(
            "c1",
            "xq",
            "w1",
            "b1",
            [x, _tensor(w1.shape, qw), _tensor((40,), qb1), c1],
            "0, 0, 0, 0",
        ),
        f"%s = axq.softmax %c1 {{axis = 1 : i64}} : {c1} -> {s}",
        _constant("w2", w2, np.int8, qw),
        _constant("b2", b2, np.int32, qb2),
        _conv(
            "c2", "s", "w2", "b2", [s, _tensor(w2.shape, qw), _tensor((32,), qb2), c2], "1, 1, 1, 1"
        ),
        f"%y = axq.dequantize %c2 : {c2} -> {fy}",
        f"func.return %y : {fy}",
    ]
    signature = f'(%x: {fx} {{axq.name = "x"}}) -> ({fy} {{axq.name = "y"}})'
    text = "builtin.module {\n func.func @main" + signature + " {\n" + "\n".join(body) + "\n}\n}"
    return Parser(ir_context(), text).parse_module()


def _stream(module, sample):
    """`module` through the lowering stages and the simulator."""
    lowered, config = module.clone(), CompilerConfig()
    for stage in stages(Phase.LOWERING):
        run_stage(stage, config, ir_context(), lowered)
    options = EmitOptions(stream_tasklist=config.stream_tasklist, elf_in_ddr=config.elf_in_ddr)
    return StreamRunner(lowered, emit_program(lowered, options)).run(sample)


@pytest.fixture(scope="module")
def mobilenet_unpadded(tmp_path_factory):
    """MobileNetV2 at 32x32 quantized without the pass (24, 40, 96, 144... channels)."""
    model = zoo_model("mobilenetv2", size=32)
    folder = tmp_path_factory.mktemp("mnv2")
    quantize(model, samples_of(model), folder, apply_pword_padding=False)
    return load_module(folder / QUANTIZED_MODEL / QUANTIZED_IR), model


def test_padding_is_exact_on_the_integer_graph(mobilenet_unpadded):
    module, model = mobilenet_unpadded
    padded = _padded(module)
    assert sum(c % 64 for c in _out_channels(padded)) < sum(c % 64 for c in _out_channels(module))
    for sample in samples_of(model, 3):
        want = Graph(module).run(sample)
        got = Graph(padded).run(sample)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_channel_softmax_masks_padded_lanes():
    """The softmax over 40 channels runs on 64 lanes with 24 neutral ones: its codes, and
    the stream's, equal the unpadded graph's."""
    module = _channel_softmax_module()
    padded = _padded(module)
    softmax = next(op for op in padded.walk() if isinstance(op, axq.SoftmaxOp))
    assert axq.shape_of(softmax.input)[1] == 64
    assert softmax.valid_length is not None and softmax.valid_length.value.data == 40
    assert _out_channels(padded) == [64, 32]
    rng = np.random.default_rng(3)
    for _ in range(3):
        sample = {"x": rng.normal(0, 1, (1, 8, 6, 6)).astype(np.float32)}
        want = Graph(module).run(sample)["y"]
        np.testing.assert_array_equal(Graph(padded).run(sample)["y"], want)
        np.testing.assert_array_equal(_stream(padded, sample)["y"], want)


def test_the_field_switches_the_pass(mobilenet_unpadded, tmp_path):
    unpadded, model = mobilenet_unpadded
    quantize(model, samples_of(model), tmp_path)
    padded = load_module(tmp_path / QUANTIZED_MODEL / QUANTIZED_IR)
    assert _out_channels(padded) == _out_channels(_padded(unpadded))
    assert _out_channels(padded) != _out_channels(unpadded)
