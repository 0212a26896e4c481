"""Real architectures as exporters emit them, to measure what runs where.

The zoo (`aipuc.models.ZOO`) is built for quantization benchmarks. These graphs are built
the way `torch.onnx.export` of torchvision / ultralytics-style modules writes them, node for
node: BatchNormalization nodes after convolutions, `Constant` nodes for reshape targets,
`Flatten` before the classifier, an n-ary `Sum` for ResNet residuals (older exporters),
`x * clip(x + 3, 0, 6) / 6` for hard-swish, the decomposed LayerNorm (`ReduceMean`, `Sub`,
`Pow`, `Sqrt`, `Div`) and GELU (`Div`, `Erf`, `Add`, `Mul`, `Mul`), channel shuffle as
`Reshape`-`Transpose`-`Reshape`, a bidirectional `LSTM` in a text recognizer, `LRN` and
ceil-mode pooling in GoogLeNet (as the Caffe-converted model zoo graph has them).

Every builder takes a width and an input size, so tests compile small versions and
`benchmarks/coverage.py` full-size ones. Batch-norm statistics are set from the model's own
activations on a synthetic input (`normalize_batch_norms`), as training would leave them,
so activations keep a realistic range through the depth of the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aipuc.models.builder import (
    EMBEDDINGS,
    IMAGE_IMAGENET,
    IMAGE_UNIT,
    INPUT_KIND_KEY,
    synthetic_input,
)

OPSET = 17


class Exporter:
    """Appends exporter-style nodes; weights from one seeded generator."""

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.count = 0

    def _fresh(self, hint: str) -> str:
        self.count += 1
        return f"/{hint}_{self.count}"

    def weight(self, array: np.ndarray, hint: str = "param") -> str:
        name = f"{hint}.{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def constant(self, array: np.ndarray) -> str:
        """A `Constant` node, as torch.onnx emits for shapes and scalars."""
        name = self._fresh("Constant")
        value = numpy_helper.from_array(np.asarray(array), name + "_value")
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=value))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: int = 1, **attrs) -> str | list[str]:
        name = self._fresh(op)
        names = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=name, **attrs))
        return names[0] if outputs == 1 else names

    # -- layers ---------------------------------------------------------------------------

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad: int | tuple[int, int] | None = None,
        group: int = 1,
        bias: bool = False,
    ) -> str:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (kh // 2, kw // 2) if pad is None else (pad, pad) if isinstance(pad, int) else pad
        fan_in = cin // group * kh * kw
        w = self.rng.standard_normal((cout, cin // group, kh, kw)).astype(np.float32)
        inputs = [x, self.weight(w * np.float32(math.sqrt(2 / fan_in)), "conv.weight")]
        if bias:
            inputs.append(self.weight(self.rng.normal(0, 0.05, cout).astype(np.float32)))
        return self.node(
            "Conv",
            inputs,
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            pads=[ph, pw, ph, pw],
            group=group,
        )

    def bn(self, x: str, channels: int) -> str:
        """BatchNormalization with trained-looking affine parameters; the running statistics
        are placeholders until `normalize_batch_norms`."""
        gamma = np.abs(self.rng.normal(1.0, 0.1, channels)).astype(np.float32)
        beta = self.rng.normal(0.0, 0.1, channels).astype(np.float32)
        params = [gamma, beta, np.zeros(channels, np.float32), np.ones(channels, np.float32)]
        return self.node("BatchNormalization", [x, *(self.weight(p, "bn") for p in params)])

    def conv_bn(self, x: str, cin: int, cout: int, kernel, stride=1, group=1, act="Relu") -> str:
        y = self.bn(self.conv(x, cin, cout, kernel, stride, group=group), cout)
        if act == "Relu":
            return self.node("Relu", [y])
        if act == "hardswish":
            return self.hardswish(y)
        return y

    def hardswish(self, x: str) -> str:
        """`x * clip(x + 3, 0, 6) / 6`, as exporters before opset 14 spell nn.Hardswish."""
        shifted = self.node("Add", [x, self.constant(np.float32(3))])
        clipped = self.node(
            "Clip", [shifted, self.constant(np.float32(0)), self.constant(np.float32(6))]
        )
        return self.node("Div", [self.node("Mul", [x, clipped]), self.constant(np.float32(6))])

    def linear(self, x: str, cin: int, cout: int, gemm: bool = False) -> str:
        w = self.rng.standard_normal((cout, cin)).astype(np.float32) * np.float32(
            1 / math.sqrt(cin)
        )
        b = self.weight(self.rng.normal(0, 0.02, cout).astype(np.float32), "linear.bias")
        if gemm:
            return self.node("Gemm", [x, self.weight(w, "linear.weight"), b], transB=1)
        return self.node("Add", [self.node("MatMul", [x, self.weight(w.T.copy(), "linear.w")]), b])

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self.node("Reshape", [x, self.constant(np.array(shape, np.int64))])

    def model(
        self, inputs: dict[str, Sequence[int]], outputs: Sequence[str], kind: str = IMAGE_IMAGENET
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="pytorch"
        )
        helper.set_model_props(model, {INPUT_KIND_KEY + name: kind for name in inputs})
        _typed_outputs(model)
        return normalize_batch_norms(model)


def _typed_outputs(model: onnx.ModelProto) -> None:
    """Graph outputs with their shapes, as torch.onnx.export declares them (onnx.checker
    requires a shape on every graph output)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    known = {v.name: v.type for v in (*inferred.graph.value_info, *inferred.graph.output)}
    for output in model.graph.output:
        output.type.CopyFrom(known[output.name])


def input_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic inputs of the kind each input is meant to be fed (images, embeddings)."""
    kinds = {p.key: p.value for p in model.metadata_props}
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        kind = kinds.get(INPUT_KIND_KEY + value.name, IMAGE_IMAGENET)
        feeds[value.name] = synthetic_input(kind, shape, rng)
    return feeds


def normalize_batch_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """Running mean and variance of every BatchNormalization set to the statistics of its
    input on a synthetic sample, in graph order (each sees the ones before it normalised)."""
    import onnxruntime

    feeds = input_feeds(model)
    stats = {t.name: t for t in model.graph.initializer}
    for node in [n for n in model.graph.node if n.op_type == "BatchNormalization"]:
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        probe.graph.output.append(
            helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None)
        )
        session = onnxruntime.InferenceSession(
            probe.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        x = session.run([node.input[0]], feeds)[0].astype(np.float64)
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) + 1e-5
        for name, array in ((node.input[3], mean), (node.input[4], var)):
            stats[name].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))
    return model


# ------------------------------------------------------------------------------ architectures


def resnet50(width: int = 64, blocks: Sequence[int] = (3, 4, 6, 3), size: int = 224):
    """ResNet-50 v1 (bottlenecks, stride on the 3x3), residuals as n-ary `Sum` like the ONNX
    model zoo's export; MaxPool stem, GlobalAveragePool, Flatten, Gemm."""
    e = Exporter("resnet50_sum")
    x = e.conv_bn("input", 3, width, 7, 2)
    x = e.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = width
    for stage, count in enumerate(blocks):
        mid = width * 2**stage
        for index in range(count):
            stride = 2 if index == 0 and stage > 0 else 1
            y = e.conv_bn(x, cin, mid, 1)
            y = e.conv_bn(y, mid, mid, 3, stride)
            y = e.conv_bn(y, mid, mid * 4, 1, act=None)
            shortcut = x if index else e.conv_bn(x, cin, mid * 4, 1, stride, act=None)
            x = e.node("Relu", [e.node("Sum", [y, shortcut])])
            cin = mid * 4
    x = e.node("Flatten", [e.node("GlobalAveragePool", [x])])
    return _classifier(e, x, cin, {"input": [1, 3, size, size]})


def _classifier(e: Exporter, features: str, channels: int, inputs, classes: int = 1000):
    """The Gemm classifier, its result named `output`."""
    e.linear(features, channels, classes, gemm=True)
    e.nodes[-1].output[0] = "output"
    return e.model(inputs, ["output"])


def shufflenet_v2(widths: Sequence[int] = (24, 116, 232, 464), repeats=(4, 8, 4), size=224):
    """ShuffleNet V2 (torchvision): channel split by `Split`, channel shuffle as
    Reshape [N, 2, C/2, H, W] - Transpose (0, 2, 1, 3, 4) - Reshape, a final mean over H, W
    as `ReduceMean`."""
    e = Exporter("shufflenet_v2")
    x = e.conv_bn("input", 3, widths[0], 3, 2)
    x = e.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin, hw = widths[0], size // 4

    def shuffle(y: str, channels: int, side: int) -> str:
        y = e.reshape(y, [1, 2, channels // 2, side, side])
        y = e.node("Transpose", [y], perm=[0, 2, 1, 3, 4])
        return e.reshape(y, [1, channels, side, side])

    for cout, count in zip(widths[1:], repeats, strict=True):
        half = cout // 2
        left = e.conv_bn(e.conv_bn(x, cin, cin, 3, 2, group=cin, act=None), cin, half, 1)
        right = e.conv_bn(x, cin, half, 1)
        right = e.conv_bn(right, half, half, 3, 2, group=half, act=None)
        right = e.conv_bn(right, half, half, 1)
        hw //= 2
        x = shuffle(e.node("Concat", [left, right], axis=1), cout, hw)
        for _ in range(count - 1):
            keep, branch = e.node("Split", [x, e.constant(np.array([half, half]))], 2, axis=1)
            branch = e.conv_bn(branch, half, half, 1)
            branch = e.conv_bn(branch, half, half, 3, 1, group=half, act=None)
            branch = e.conv_bn(branch, half, half, 1)
            x = shuffle(e.node("Concat", [keep, branch], axis=1), cout, hw)
        cin = cout
    x = e.conv_bn(x, cin, 1024, 1)
    x = e.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    return _classifier(e, x, 1024, {"input": [1, 3, size, size]})


def squeezenet(size: int = 224, classes: int = 1000):
    """SqueezeNet 1.1: Fire modules (squeeze 1x1, expand 1x1 and 3x3, Concat), ceil-mode
    MaxPools, Dropout, a convolutional classifier, GlobalAveragePool and Flatten."""
    e = Exporter("squeezenet1_1")
    x = e.node("Relu", [e.conv("input", 3, 64, 3, 2, pad=0, bias=True)])
    pool = {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}
    x = e.node("MaxPool", [x], **pool)
    cin = 64
    fires = [(16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool"]
    fires += [(48, 192), (48, 192), (64, 256), (64, 256)]
    for fire in fires:
        if fire == "pool":
            x = e.node("MaxPool", [x], **pool)
            continue
        squeeze, expand = fire
        s = e.node("Relu", [e.conv(x, cin, squeeze, 1, bias=True)])
        a = e.node("Relu", [e.conv(s, squeeze, expand, 1, bias=True)])
        b = e.node("Relu", [e.conv(s, squeeze, expand, 3, bias=True)])
        x, cin = e.node("Concat", [a, b], axis=1), 2 * expand
    x = e.node("Dropout", [x], 2)[0]
    x = e.node("Relu", [e.conv(x, cin, classes, 1, bias=True)])
    x = e.node("GlobalAveragePool", [x])
    e.node("Flatten", [x])
    e.nodes[-1].output[0] = "output"
    return e.model({"input": [1, 3, size, size]}, ["output"])


def mobilenet_v3_small(size: int = 224, width: float = 1.0, blocks: int = 11):
    """MobileNetV3-Small: hard-swish decomposed as `x * clip(x + 3, 0, 6) / 6`, squeeze-and-
    excitation (GlobalAveragePool, 1x1 convs, HardSigmoid, Mul by the channel vector),
    5x5 depthwise convolutions, a Gemm classifier with hard-swish and Dropout. `blocks`
    keeps the first rows of torchvision's block table."""
    e = Exporter("mobilenet_v3_small")

    def ch(c: int) -> int:
        return max(8, int(c * width + 4) // 8 * 8)

    # (kernel, expansion, out, SE, activation, stride), as torchvision's table
    table = [
        (3, 16, 16, True, "Relu", 2),
        (3, 72, 24, False, "Relu", 2),
        (3, 88, 24, False, "Relu", 1),
        (5, 96, 40, True, "hardswish", 2),
        (5, 240, 40, True, "hardswish", 1),
        (5, 240, 40, True, "hardswish", 1),
        (5, 120, 48, True, "hardswish", 1),
        (5, 144, 48, True, "hardswish", 1),
        (5, 288, 96, True, "hardswish", 2),
        (5, 576, 96, True, "hardswish", 1),
        (5, 576, 96, True, "hardswish", 1),
    ]
    cin = ch(16)
    x = e.conv_bn("input", 3, cin, 3, 2, act="hardswish")
    for kernel, expansion, out, se, act, stride in table[:blocks]:
        mid, out = ch(expansion), ch(out)
        y = x if mid == cin else e.conv_bn(x, cin, mid, 1, act=act)
        y = e.conv_bn(y, mid, mid, kernel, stride, group=mid, act=act)
        if se:
            squeeze = ch(mid // 4)
            s = e.node("GlobalAveragePool", [y])
            s = e.node("Relu", [e.conv(s, mid, squeeze, 1, bias=True)])
            s = e.node("HardSigmoid", [e.conv(s, squeeze, mid, 1, bias=True)], alpha=1 / 6)
            y = e.node("Mul", [s, y])
        y = e.conv_bn(y, mid, out, 1, act=None)
        x = e.node("Add", [y, x]) if stride == 1 and cin == out else y
        cin = out
    x = e.conv_bn(x, cin, ch(576), 1, act="hardswish")
    x = e.node("Flatten", [e.node("GlobalAveragePool", [x])])
    x = e.hardswish(e.linear(x, ch(576), 1024, gemm=True))
    x = e.node("Dropout", [x])
    e.linear(x, 1024, 1000, gemm=True)
    e.nodes[-1].output[0] = "output"
    return e.model({"input": [1, 3, size, size]}, ["output"])


def unet(base: int = 16, depth: int = 3, size: int = 128, classes: int = 2):
    """A small U-Net: double conv-BN-ReLU blocks, MaxPool down, ConvTranspose 2x2 (and a
    bilinear `Resize` on the last level, as many exports do) up, skip `Concat`s, a 1x1 head
    and a Sigmoid."""
    e = Exporter("unet")

    def double(x: str, cin: int, cout: int) -> str:
        return e.conv_bn(e.conv_bn(x, cin, cout, 3), cout, cout, 3)

    skips, x, cin = [], "input", 3
    for level in range(depth):
        x = double(x, cin, base * 2**level)
        cin = base * 2**level
        skips.append((x, cin))
        x = e.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = double(x, cin, cin * 2)
    cin *= 2
    for level, (skip, channels) in enumerate(reversed(skips)):
        if level == depth - 1:
            scales = e.constant(np.array([1, 1, 2, 2], np.float32))
            up = e.node("Resize", [x, "", scales], mode="linear")
            up = e.conv(up, cin, channels, 1, bias=True)
        else:
            w = e.rng.standard_normal((cin, channels, 2, 2)).astype(np.float32)
            w *= np.float32(math.sqrt(1 / cin))
            up = e.node("ConvTranspose", [x, e.weight(w)], kernel_shape=[2, 2], strides=[2, 2])
        x = double(e.node("Concat", [skip, up], axis=1), 2 * channels, channels)
        cin = channels
    e.node("Sigmoid", [e.conv(x, cin, classes, 1, bias=True)])
    e.nodes[-1].output[0] = "output"
    return e.model({"input": [1, 3, size, size]}, ["output"])


def _layer_norm(e: Exporter, x: str, dim: int) -> str:
    """LayerNorm as exporters before opset 17 decompose it."""
    mean = e.node("ReduceMean", [x], axes=[-1])
    d = e.node("Sub", [x, mean])
    var = e.node("ReduceMean", [e.node("Pow", [d, e.constant(np.float32(2))])], axes=[-1])
    std = e.node("Sqrt", [e.node("Add", [var, e.constant(np.float32(1e-5))])])
    y = e.node("Div", [d, std])
    gamma = np.abs(e.rng.normal(1.0, 0.1, dim)).astype(np.float32)
    beta = e.rng.normal(0.0, 0.05, dim).astype(np.float32)
    return e.node("Add", [e.node("Mul", [y, e.weight(gamma)]), e.weight(beta)])


def _gelu(e: Exporter, x: str) -> str:
    """`x * 0.5 * (1 + erf(x / sqrt 2))`, torch's exact GELU before opset 20."""
    erf = e.node("Erf", [e.node("Div", [x, e.constant(np.float32(math.sqrt(2)))])])
    inner = e.node("Mul", [x, e.node("Add", [erf, e.constant(np.float32(1))])])
    return e.node("Mul", [inner, e.constant(np.float32(0.5))])


def transformer_encoder(dim: int = 256, heads: int = 4, layers: int = 4, tokens: int = 64):
    """A pre-norm transformer encoder (ViT / BERT style): decomposed LayerNorm, multi-head
    attention with the head split Reshape + Transpose (0, 2, 1, 3), scaled scores, Softmax,
    the merge, a GELU MLP, residual Adds, a final LayerNorm."""
    e = Exporter("transformer_encoder")
    head = dim // heads
    x = "input"
    for _ in range(layers):
        h = _layer_norm(e, x, dim)

        def split(t: str, perm: Sequence[int]) -> str:
            return e.node("Transpose", [e.reshape(t, [1, tokens, heads, head])], perm=list(perm))

        q = split(e.linear(h, dim, dim), (0, 2, 1, 3))
        k = split(e.linear(h, dim, dim), (0, 2, 3, 1))
        v = split(e.linear(h, dim, dim), (0, 2, 1, 3))
        scores = e.node("Div", [e.node("MatMul", [q, k]), e.constant(np.float32(head**0.5))])
        attention = e.node("MatMul", [e.node("Softmax", [scores], axis=-1), v])
        merged = e.reshape(e.node("Transpose", [attention], perm=[0, 2, 1, 3]), [1, tokens, dim])
        x = e.node("Add", [x, e.linear(merged, dim, dim)])
        h = _gelu(e, e.linear(_layer_norm(e, x, dim), dim, 4 * dim))
        x = e.node("Add", [x, e.linear(h, 4 * dim, dim)])
    _layer_norm(e, x, dim)
    e.nodes[-1].output[0] = "output"
    return e.model({"input": [1, tokens, dim]}, ["output"], kind=EMBEDDINGS)


def crnn(width: int = 128, hidden: int = 128, classes: int = 37, channels=(64, 128, 256, 512)):
    """A CRNN text recognizer (32-pixel-high grayscale lines): VGG-style conv-BN-ReLU blocks,
    MaxPools 2x2 then 2x2 with stride (2, 1) that keep the sequence long, a 2x1 conv that
    removes the height, `Squeeze`, the sequence transposed to [T, N, C], a bidirectional
    `LSTM`, a Linear classifier per step and LogSoftmax."""
    e = Exporter("crnn")
    c1, c2, c3, c4 = channels
    x = e.node("MaxPool", [e.conv_bn("input", 1, c1, 3)], kernel_shape=[2, 2], strides=[2, 2])
    x = e.node("MaxPool", [e.conv_bn(x, c1, c2, 3)], kernel_shape=[2, 2], strides=[2, 2])
    tall = {"kernel_shape": [2, 2], "strides": [2, 1], "pads": [0, 1, 0, 1]}
    x = e.node("MaxPool", [e.conv_bn(e.conv_bn(x, c2, c3, 3), c3, c3, 3)], **tall)
    x = e.node("MaxPool", [e.conv_bn(e.conv_bn(x, c3, c4, 3), c4, c4, 3)], **tall)
    x = e.bn(e.conv(x, c4, c4, (2, 1), pad=0), c4)
    x = e.node("Relu", [x])
    x = e.node("Squeeze", [x, e.constant(np.array([2], np.int64))])
    sequence = e.node("Transpose", [x], perm=[2, 0, 1])  # [T, N, C]
    scale = np.float32(1 / math.sqrt(hidden))
    w = e.rng.uniform(-scale, scale, (2, 4 * hidden, c4)).astype(np.float32)
    r = e.rng.uniform(-scale, scale, (2, 4 * hidden, hidden)).astype(np.float32)
    b = e.rng.uniform(-scale, scale, (2, 8 * hidden)).astype(np.float32)
    y = e.node(
        "LSTM",
        [sequence, e.weight(w), e.weight(r), e.weight(b)],
        hidden_size=hidden,
        direction="bidirectional",
    )
    y = e.reshape(e.node("Transpose", [y], perm=[0, 2, 1, 3]), [0, 0, -1])
    e.node("LogSoftmax", [e.linear(y, 2 * hidden, classes)], axis=2)
    e.nodes[-1].output[0] = "output"
    return e.model({"input": [1, 1, 32, width]}, ["output"], kind=IMAGE_UNIT)


def googlenet(size: int = 224, width: float = 1.0, classes: int = 1000):
    """GoogLeNet (Inception v1) as the Caffe model (the ONNX model zoo's bvlc_googlenet)
    writes it: biased convolutions with ReLU, ceil-mode MaxPools, `LRN` after the stem's
    first pool and after its 3x3 conv, nine inception modules (1x1 | 1x1-3x3 | 1x1-5x5 |
    MaxPool 3x3 stride 1 - 1x1 projection, concatenated on channels), an `AveragePool` over
    the whole last map, Dropout, Flatten and a Gemm. `width` scales every channel count."""
    e = Exporter("googlenet")

    def ch(c: int) -> int:
        return max(4, round(c * width))

    def conv_relu(x: str, cin: int, cout: int, kernel: int, stride: int = 1) -> str:
        return e.node("Relu", [e.conv(x, cin, cout, kernel, stride, bias=True)])

    def pool(x: str, side: int) -> tuple[str, int]:
        y = e.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
        return y, -(-(side - 3) // 2) + 1

    def lrn(x: str) -> str:
        return e.node("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)

    x = conv_relu("input", 3, ch(64), 7, 2)
    x, side = pool(x, (size + 1) // 2)
    x = conv_relu(lrn(x), ch(64), ch(64), 1)
    x = lrn(conv_relu(x, ch(64), ch(192), 3))
    x, side = pool(x, side)
    cin = ch(192)
    # (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) of 3a, 3b, 4a..4e, 5a, 5b
    table = [
        (64, 96, 128, 16, 32, 32),
        (128, 128, 192, 32, 96, 64),
        "pool",
        (192, 96, 208, 16, 48, 64),
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),
        "pool",
        (256, 160, 320, 32, 128, 128),
        (384, 192, 384, 48, 128, 128),
    ]
    for row in table:
        if row == "pool":
            x, side = pool(x, side)
            continue
        one, r3, three, r5, five, proj = map(ch, row)
        branches = [
            conv_relu(x, cin, one, 1),
            conv_relu(conv_relu(x, cin, r3, 1), r3, three, 3),
            conv_relu(conv_relu(x, cin, r5, 1), r5, five, 5),
            conv_relu(
                e.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
                cin,
                proj,
                1,
            ),
        ]
        x, cin = e.node("Concat", branches, axis=1), one + three + five + proj
    x = e.node("AveragePool", [x], kernel_shape=[side, side], strides=[1, 1])
    x = e.node("Flatten", [e.node("Dropout", [x, e.constant(np.float32(0.4))])])
    return _classifier(e, x, cin, {"input": [1, 3, size, size]}, classes)


ARCHITECTURES: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet50_sum": resnet50,
    "shufflenet_v2": shufflenet_v2,
    "squeezenet1_1": squeezenet,
    "mobilenet_v3_small": mobilenet_v3_small,
    "unet": unet,
    "transformer_encoder": transformer_encoder,
    "crnn": crnn,
    "googlenet": googlenet,
}
"""Full-size builders (their default arguments); tests call them with small widths."""
