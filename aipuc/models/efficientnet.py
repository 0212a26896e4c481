"""EfficientNet-B0 with torchvision's structure: MBConv blocks with SiLU (Sigmoid + Mul) and
squeeze-excitation (a [1,C,1,1] gate broadcast against [1,C,H,W]), at 1x3x224x224."""

from __future__ import annotations

import onnx

from aipuc.models.builder import IMAGE_IMAGENET, GraphBuilder, Tensor

INPUT_SHAPE = (1, 3, 224, 224)
NUM_CLASSES = 1000
# (expansion, kernel, first stride, output channels, repeats) of the seven B0 stages
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # fmt: skip


def _squeeze_excitation(b: GraphBuilder, x: Tensor, squeeze: int) -> Tensor:
    with b.scope("se"):
        s = b.global_avg_pool(x)
        s = b.silu(b.conv(s, squeeze, 1, bias=True, name="fc1"))
        s = b.sigmoid(b.conv(s, x.channels, 1, bias=True, name="fc2"))
        return b.mul(x, s, "scale")


def _mbconv(b: GraphBuilder, x: Tensor, expand: int, k: int, stride: int, cout: int) -> Tensor:
    hidden = x.channels * expand
    y = x
    if expand != 1:
        y = b.conv_bn_act(y, hidden, 1, act="silu", name="expand")
    y = b.conv_bn_act(y, hidden, k, stride=stride, groups=hidden, act="silu", name="dw")
    y = _squeeze_excitation(b, y, max(1, x.channels // 4))
    y = b.conv_bn_act(y, cout, 1, act=None, name="project")
    if stride == 1 and x.channels == cout:
        y = b.add(x, y)
    return y


def efficientnet_b0(seed: int = 7) -> onnx.ModelProto:
    b = GraphBuilder("efficientnet_b0", seed)
    x = b.input("input", INPUT_SHAPE, IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 32, 3, stride=2, act="silu", name="features.0")
    for stage, (expand, k, stride, cout, n) in enumerate(_STAGES, start=1):
        for i in range(n):
            with b.scope(f"features.{stage}.{i}"):
                x = _mbconv(b, x, expand, k, stride if i == 0 else 1, cout)
    x = b.conv_bn_act(x, 1280, 1, act="silu", name="features.8")
    x = b.flatten(b.global_avg_pool(x))
    b.output(b.gemm(x, NUM_CLASSES, name="classifier"), "logits")
    return b.model("efficientnet_b0: torchvision-structured EfficientNet-B0, seeded random weights")
