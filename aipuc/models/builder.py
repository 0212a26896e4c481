"""A small eager graph builder for the model zoo.

Each helper appends ONNX nodes with readable, unique names (``layer1.0.conv1``) and also evaluates
the op in NumPy on a synthetic calibration input. The eager value gives every tensor a static shape
and lets BatchNormalization get running statistics that really normalise its input, as a trained
network's would; He-initialised weights alone let activations drift by orders of magnitude over the
depth of ResNet-50. The NumPy kernels serve those statistics only, not as a reference interpreter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the lowest IR version that carries opset 17: every onnxruntime since 1.12 loads it
BN_EPS = 1e-5

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# How an input is meant to be fed; stored in the model's metadata so sample_inputs can honour it.
IMAGE_IMAGENET = "image_imagenet"  # RGB in [0, 1], then normalised by the ImageNet mean/std
IMAGE_UNIT = "image_unit"  # RGB in [0, 1], as YOLO exports expect
EMBEDDINGS = "embeddings"  # token embeddings, about N(0, 1)
INPUT_KIND_KEY = "aipuc.input_kind."

_CALIBRATION_SEED = 20240917


def synthetic_image(shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """RGB images in [0, 1] with natural-image statistics: 1/f spectrum, correlated channels,
    8-bit levels. White noise would give unrealistically flat, high-frequency activations."""
    n, c, h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freq = np.sqrt(fy**2 + fx**2)
    freq[0, 0] = 1.0 / max(h, w)
    spec_shape = (n, c + 1, h, w // 2 + 1)
    spec = rng.standard_normal(spec_shape) + 1j * rng.standard_normal(spec_shape)
    fields = np.fft.irfft2(spec / freq, s=(h, w))
    fields /= fields.std(axis=(-2, -1), keepdims=True)
    luminance, chroma = fields[:, :1], fields[:, 1:]
    mean = IMAGENET_MEAN[:c, None, None].astype(np.float64)
    std = IMAGENET_STD[:c, None, None].astype(np.float64)
    img = np.clip(mean + std * (0.9 * luminance + 0.45 * chroma), 0.0, 1.0)
    return (np.round(img * 255.0) / 255.0).astype(np.float32)


def synthetic_input(kind: str, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Realistic data for one input of the given kind."""
    if kind == IMAGE_IMAGENET:
        img = synthetic_image(shape, rng)
        return ((img - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]).astype(
            np.float32
        )
    if kind == IMAGE_UNIT:
        return synthetic_image(shape, rng)
    return rng.standard_normal(tuple(shape), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Tensor:
    """A named graph value with its eager value on the calibration input."""

    name: str
    value: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def channels(self) -> int:
        return self.value.shape[1]


Operand = Tensor | np.ndarray | float


def _f32(a: np.ndarray | float) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """NCHW convolution as one batched matmul per kernel offset (no im2col buffer)."""
    n, _, h, wd = x.shape
    cout, cig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    wg = w.reshape(groups, cout // groups, cig, kh, kw)
    out = np.zeros((n, groups, cout // groups, ho * wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            out += wg[..., i, j] @ win.reshape(n, groups, cig, ho * wo)
    return out.reshape(n, cout, ho, wo)


def _maxpool2d(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    out = np.full((n, c, ho, wo), -np.inf, np.float32)
    for i in range(k):
        for j in range(k):
            np.maximum(
                out, xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride], out=out
            )
    return out


def _channel_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = (0, 2, 3)
    return y.mean(axis=axes, dtype=np.float64), y.var(axis=axes, dtype=np.float64)


class GraphBuilder:
    """Emits one ONNX graph; weights come from one seeded generator, in emission order."""

    def __init__(self, name: str, seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self._scope: list[str] = []
        self._names: set[str] = set()
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[TensorProto] = []
        self._shared: dict[str, Tensor] = {}
        self._inputs: list[onnx.ValueInfoProto] = []
        self._outputs: list[onnx.ValueInfoProto] = []
        self._metadata: dict[str, str] = {}

    # -- naming, parameters, graph IO ---------------------------------------------------------

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix the names of everything emitted inside, like a PyTorch module path."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"duplicate tensor name {name!r}")
        self._names.add(name)
        return name

    def _unique(self, name: str) -> str:
        """Scoped name of a new node (and of its output), suffixed _2, _3, ... on reuse."""
        base = ".".join([*self._scope, name])
        candidate, i = base, 1
        while candidate in self._names:
            i += 1
            candidate = f"{base}_{i}"
        return self._claim(candidate)

    def _initializer(self, name: str, array: np.ndarray) -> Tensor:
        self._initializers.append(numpy_helper.from_array(array, self._claim(name)))
        return Tensor(name, array)

    def param(self, node: str, suffix: str, array: np.ndarray | float) -> Tensor:
        """An initializer owned by a node, named like a state-dict entry: ``fc.weight``."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        return self._initializer(f"{node}.{suffix}", array)

    def shared(self, name: str, array: np.ndarray | float) -> Tensor:
        """A global constant used by many nodes (e.g. the bounds of every ReLU6)."""
        if name not in self._shared:
            self._shared[name] = self._initializer(name, _f32(array))
        return self._shared[name]

    def _he(self, shape: tuple[int, ...], fan_in: int, gain: float) -> np.ndarray:
        std = np.float32(math.sqrt(gain / fan_in))
        return self.rng.standard_normal(shape, dtype=np.float32) * std

    def _small(self, n: int, std: float = 0.01) -> np.ndarray:
        return self.rng.normal(0.0, std, n).astype(np.float32)

    def _bn_affine(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Trained-looking gamma (positive, around 1) and beta (small)."""
        gamma = np.abs(self.rng.normal(1.0, 0.1, c)).astype(np.float32)
        return gamma, self._small(c, 0.1)

    def input(self, name: str, shape: Sequence[int], kind: str) -> Tensor:
        value = synthetic_input(kind, shape, np.random.default_rng(_CALIBRATION_SEED))
        self._inputs.append(
            helper.make_tensor_value_info(self._claim(name), TensorProto.FLOAT, shape)
        )
        self._metadata[INPUT_KIND_KEY + name] = kind
        return Tensor(name, value)

    def output(self, t: Tensor, name: str) -> None:
        """Declare a graph output under its own name: exporters name outputs independently of the
        node producing them, so the producer's output is renamed (it must have no consumers)."""
        if name != t.name:
            if any(t.name in n.input for n in self._nodes):
                raise ValueError(f"{t.name!r} has consumers and cannot be renamed to {name!r}")
            producer = next(n for n in self._nodes if t.name in n.output)
            producer.output[list(producer.output).index(t.name)] = self._claim(name)
        self._outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, t.shape))

    def model(self, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self._nodes, self.name, self._inputs, self._outputs, initializer=self._initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="aipuc.models",
            doc_string=doc,
        )
        helper.set_model_props(model, self._metadata)
        return model

    # -- node emission ------------------------------------------------------------------------

    def _emit(
        self,
        op: str,
        node: str,
        inputs: Sequence[Tensor | None],
        value: np.ndarray,
        **attrs: object,
    ) -> Tensor:
        """Append one single-output node whose output tensor carries the node's name."""
        names = ["" if t is None else t.name for t in inputs]
        self._nodes.append(helper.make_node(op, names, [node], name=node, **attrs))
        return Tensor(node, _f32(value))

    def _operand(self, node: str, b: Operand) -> Tensor:
        return b if isinstance(b, Tensor) else self.param(node, "const", _f32(b))

    def _binary(self, op: str, a: Tensor, b: Operand, name: str, fn) -> Tensor:
        node = self._unique(name)
        bt = self._operand(node, b)
        return self._emit(op, node, [a, bt], fn(a.value, bt.value))

    def add(self, a: Tensor, b: Operand, name: str = "add") -> Tensor:
        return self._binary("Add", a, b, name, np.add)

    def sub(self, a: Tensor, b: Operand, name: str = "sub") -> Tensor:
        return self._binary("Sub", a, b, name, np.subtract)

    def mul(self, a: Tensor, b: Operand, name: str = "mul") -> Tensor:
        return self._binary("Mul", a, b, name, np.multiply)

    def div(self, a: Tensor, b: Operand, name: str = "div") -> Tensor:
        return self._binary("Div", a, b, name, np.divide)

    def pow(self, a: Tensor, b: Operand, name: str = "pow") -> Tensor:
        return self._binary("Pow", a, b, name, np.power)

    def matmul(self, a: Tensor, b: Operand, name: str = "matmul") -> Tensor:
        return self._binary("MatMul", a, b, name, np.matmul)

    def _unary(self, op: str, x: Tensor, name: str, value: np.ndarray, **attrs) -> Tensor:
        return self._emit(op, self._unique(name), [x], value, **attrs)

    def relu(self, x: Tensor, name: str = "relu") -> Tensor:
        return self._unary("Relu", x, name, np.maximum(x.value, 0))

    def relu6(self, x: Tensor, name: str = "relu6") -> Tensor:
        """ReLU6 as PyTorch exports it: Clip with min/max as initializer inputs."""
        node = self._unique(name)
        lo, hi = self.shared("relu6.min", 0.0), self.shared("relu6.max", 6.0)
        return self._emit("Clip", node, [x, lo, hi], np.clip(x.value, 0, 6))

    def sigmoid(self, x: Tensor, name: str = "sigmoid") -> Tensor:
        return self._unary("Sigmoid", x, name, 1.0 / (1.0 + np.exp(-x.value)))

    def silu(self, x: Tensor, name: str = "silu") -> Tensor:
        """SiLU as exporters emit it: x * Sigmoid(x)."""
        return self.mul(x, self.sigmoid(x, f"{name}.sigmoid"), f"{name}.mul")

    def sqrt(self, x: Tensor, name: str = "sqrt") -> Tensor:
        return self._unary("Sqrt", x, name, np.sqrt(x.value))

    def erf(self, x: Tensor, name: str = "erf") -> Tensor:
        return self._unary("Erf", x, name, np.vectorize(math.erf, otypes=[np.float32])(x.value))

    def softmax(self, x: Tensor, axis: int = -1, name: str = "softmax") -> Tensor:
        e = np.exp(x.value - x.value.max(axis=axis, keepdims=True))
        return self._unary("Softmax", x, name, e / e.sum(axis=axis, keepdims=True), axis=axis)

    def reduce_mean(self, x: Tensor, axes: Sequence[int], name: str = "reduce_mean") -> Tensor:
        value = x.value.mean(axis=tuple(axes), keepdims=True)
        return self._unary("ReduceMean", x, name, value, axes=list(axes), keepdims=1)

    def transpose(self, x: Tensor, perm: Sequence[int], name: str = "transpose") -> Tensor:
        return self._unary("Transpose", x, name, x.value.transpose(perm), perm=list(perm))

    def flatten(self, x: Tensor, name: str = "flatten") -> Tensor:
        return self._unary("Flatten", x, name, x.value.reshape(x.shape[0], -1), axis=1)

    def global_avg_pool(self, x: Tensor, name: str = "avgpool") -> Tensor:
        return self._unary("GlobalAveragePool", x, name, x.value.mean(axis=(2, 3), keepdims=True))

    def maxpool(self, x: Tensor, k: int, stride: int, pad: int, name: str = "maxpool") -> Tensor:
        return self._unary(
            "MaxPool",
            x,
            name,
            _maxpool2d(x.value, k, stride, pad),
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
        )

    def reshape(self, x: Tensor, shape: Sequence[int], name: str = "reshape") -> Tensor:
        node = self._unique(name)
        target = self.param(node, "shape", np.array(shape, np.int64))
        return self._emit("Reshape", node, [x, target], x.value.reshape(shape))

    def concat(self, xs: Sequence[Tensor], axis: int, name: str = "concat") -> Tensor:
        value = np.concatenate([x.value for x in xs], axis=axis)
        return self._emit("Concat", self._unique(name), xs, value, axis=axis)

    def split(
        self, x: Tensor, sizes: Sequence[int], axis: int, name: str = "split"
    ) -> list[Tensor]:
        node = self._unique(name)
        split = self.param(node, "split", np.array(sizes, np.int64))
        outs = [self._claim(f"{node}.out{i}") for i in range(len(sizes))]
        self._nodes.append(
            helper.make_node("Split", [x.name, split.name], outs, name=node, axis=axis)
        )
        values = np.split(x.value, np.cumsum(sizes)[:-1], axis=axis)
        return [Tensor(o, v) for o, v in zip(outs, values, strict=True)]

    def upsample2x(self, x: Tensor, name: str = "upsample") -> Tensor:
        """nn.Upsample(scale_factor=2, mode="nearest") as PyTorch exports it."""
        node = self._unique(name)
        scales = self.param(node, "scales", np.array([1, 1, 2, 2], np.float32))
        value = x.value.repeat(2, axis=2).repeat(2, axis=3)
        return self._emit(
            "Resize",
            node,
            [x, None, scales],
            value,
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )

    # -- layers with weights ------------------------------------------------------------------

    def conv(
        self,
        x: Tensor,
        cout: int,
        k: int,
        *,
        stride: int = 1,
        groups: int = 1,
        pad: int | None = None,
        bias: bool = False,
        gain: float = 2.0,
        bias_init: np.ndarray | None = None,
        fold_bn: bool = False,
        name: str = "conv",
    ) -> Tensor:
        """Conv2d with He-normal weights (``gain / fan_in`` variance).

        ``fold_bn`` emits what a fused export carries: a Conv whose weights and bias already
        include a calibrated BatchNormalization. ``bias_init`` sets a deliberate bias (e.g. a
        detector's objectness prior) instead of a small random one.
        """
        node = self._unique(name)
        cin = x.channels
        pad = k // 2 if pad is None else pad
        w = self._he((cout, cin // groups, k, k), (cin // groups) * k * k, gain)
        y = _conv2d(x.value, w, stride, pad, groups)
        b = None
        if fold_bn:
            mean, var = _channel_stats(y)
            gamma, beta = self._bn_affine(cout)
            scale = gamma / np.sqrt(var + BN_EPS)
            w = (w * scale[:, None, None, None]).astype(np.float32)
            b = (beta - mean * scale).astype(np.float32)
            y = y * scale[:, None, None].astype(np.float32)
        elif bias_init is not None:
            b = _f32(bias_init)
        elif bias:
            b = self._small(cout)
        inputs = [x, self.param(node, "weight", w)]
        if b is not None:
            inputs.append(self.param(node, "bias", b))
            y = y + b[:, None, None]
        return self._emit(
            "Conv",
            node,
            inputs,
            y,
            dilations=[1, 1],
            group=groups,
            kernel_shape=[k, k],
            pads=[pad] * 4,
            strides=[stride, stride],
        )

    def batchnorm(self, x: Tensor, name: str = "bn") -> Tensor:
        """BatchNormalization whose running statistics are those of its input on calibration
        data, so its output is about N(beta, gamma^2) per channel, as in a trained network."""
        node = self._unique(name)
        c = x.channels
        gamma, beta = self._bn_affine(c)
        mean, var = _channel_stats(x.value)
        mean, var = mean.astype(np.float32), np.maximum(var, 1e-4).astype(np.float32)
        inputs = [
            x,
            self.param(node, "weight", gamma),
            self.param(node, "bias", beta),
            self.param(node, "running_mean", mean),
            self.param(node, "running_var", var),
        ]
        scale = gamma / np.sqrt(var + BN_EPS)
        value = (x.value - mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]
        return self._emit("BatchNormalization", node, inputs, value, epsilon=BN_EPS, momentum=0.9)

    def conv_bn_act(
        self,
        x: Tensor,
        cout: int,
        k: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: str | None,
        name: str,
    ) -> Tensor:
        """Conv -> BatchNormalization -> activation ("relu", "relu6", "silu" or None), with the
        nodes named ``<name>.conv``, ``<name>.bn``, ``<name>.<act>``."""
        with self.scope(name):
            y = self.batchnorm(self.conv(x, cout, k, stride=stride, groups=groups))
            if act is None:
                return y
            return {"relu": self.relu, "relu6": self.relu6, "silu": self.silu}[act](y)

    def gemm(self, x: Tensor, cout: int, name: str = "fc") -> Tensor:
        """nn.Linear as exported for a 2-D input: Gemm with transB=1."""
        node = self._unique(name)
        cin = x.shape[1]
        w = self._he((cout, cin), cin, 1.0)
        b = self._small(cout)
        inputs = [x, self.param(node, "weight", w), self.param(node, "bias", b)]
        return self._emit("Gemm", node, inputs, x.value @ w.T + b, transB=1)

    def linear(self, x: Tensor, cout: int, gain: float = 1.0, name: str = "linear") -> Tensor:
        """nn.Linear as exported for a 3-D input: MatMul with the transposed weight, then Add."""
        with self.scope(name):
            path = ".".join(self._scope)
            cin = x.shape[-1]
            w = self.param(path, "weight", self._he((cin, cout), cin, gain))
            b = self.param(path, "bias", self._small(cout, 0.02))
            y = self._emit("MatMul", self._unique("matmul"), [x, w], x.value @ w.value)
            return self.add(y, b)

    def layer_norm(self, x: Tensor, name: str = "layernorm", eps: float = 1e-5) -> Tensor:
        """LayerNorm over the last axis spelled in primitive ops, as exporters emitted it before
        opset 17 and many models still carry: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div,
        Mul, Add."""
        with self.scope(name):
            path = ".".join(self._scope)
            c = x.shape[-1]
            gamma, beta = self._bn_affine(c)
            centered = self.sub(x, self.reduce_mean(x, [-1], "mean"))
            var = self.reduce_mean(self.pow(centered, 2.0), [-1], "var")
            y = self.div(centered, self.sqrt(self.add(var, eps, "add_eps")))
            y = self.mul(y, self.param(path, "weight", gamma), "scale")
            return self.add(y, self.param(path, "bias", beta), "shift")

    def gelu(self, x: Tensor, name: str = "gelu") -> Tensor:
        """Exact GELU as PyTorch exports it: x * (erf(x / sqrt 2) + 1) * 0.5."""
        with self.scope(name):
            y = self.erf(self.div(x, math.sqrt(2.0)))
            return self.mul(self.mul(x, self.add(y, 1.0, "add_one")), 0.5, "half")
