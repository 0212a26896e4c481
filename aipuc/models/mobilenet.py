"""MobileNetV2 with torchvision's structure: inverted residuals with depthwise convs and ReLU6
exported as Clip(0, 6), at 1x3x224x224."""

from __future__ import annotations

import onnx

from aipuc.models.builder import IMAGE_IMAGENET, GraphBuilder, Tensor

INPUT_SHAPE = (1, 3, 224, 224)
NUM_CLASSES = 1000
# (expansion t, output channels c, repeats n, first stride s), as in the paper and torchvision
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


def _inverted_residual(b: GraphBuilder, x: Tensor, t: int, cout: int, stride: int) -> Tensor:
    hidden = x.channels * t
    y = x
    if t != 1:
        y = b.conv_bn_act(y, hidden, 1, act="relu6", name="expand")
    y = b.conv_bn_act(y, hidden, 3, stride=stride, groups=hidden, act="relu6", name="dw")
    y = b.conv_bn_act(y, cout, 1, act=None, name="project")
    if stride == 1 and x.channels == cout:
        y = b.add(x, y)
    return y


def mobilenetv2(seed: int = 2) -> onnx.ModelProto:
    b = GraphBuilder("mobilenetv2", seed)
    x = b.input("input", INPUT_SHAPE, IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 32, 3, stride=2, act="relu6", name="features.0")
    index = 1
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            with b.scope(f"features.{index}"):
                x = _inverted_residual(b, x, t, c, s if i == 0 else 1)
            index += 1
    x = b.conv_bn_act(x, 1280, 1, act="relu6", name=f"features.{index}")
    x = b.flatten(b.global_avg_pool(x))
    b.output(b.gemm(x, NUM_CLASSES, name="classifier"), "logits")
    return b.model("mobilenetv2: torchvision-structured MobileNetV2 with seeded random weights")
