"""ResNet-18/50 with torchvision's structure and node names, BatchNormalization left unfolded
(the compiler folds it), at 1x3x224x224."""

from __future__ import annotations

import onnx

from aipuc.models.builder import IMAGE_IMAGENET, GraphBuilder, Tensor

INPUT_SHAPE = (1, 3, 224, 224)
NUM_CLASSES = 1000


def _downsample(b: GraphBuilder, x: Tensor, cout: int, stride: int) -> Tensor:
    with b.scope("downsample"):
        return b.batchnorm(b.conv(x, cout, 1, stride=stride, name="0"), name="1")


def _basic_block(b: GraphBuilder, x: Tensor, planes: int, stride: int) -> Tensor:
    y = b.relu(b.batchnorm(b.conv(x, planes, 3, stride=stride, name="conv1"), "bn1"), "relu1")
    y = b.batchnorm(b.conv(y, planes, 3, name="conv2"), "bn2")
    identity = x
    if stride != 1 or x.channels != planes:
        identity = _downsample(b, x, planes, stride)
    return b.relu(b.add(y, identity), "relu2")


def _bottleneck(b: GraphBuilder, x: Tensor, planes: int, stride: int) -> Tensor:
    cout = planes * 4
    y = b.relu(b.batchnorm(b.conv(x, planes, 1, name="conv1"), "bn1"), "relu1")
    y = b.relu(b.batchnorm(b.conv(y, planes, 3, stride=stride, name="conv2"), "bn2"), "relu2")
    y = b.batchnorm(b.conv(y, cout, 1, name="conv3"), "bn3")
    identity = x
    if stride != 1 or x.channels != cout:
        identity = _downsample(b, x, cout, stride)
    return b.relu(b.add(y, identity), "relu3")


def _resnet(name: str, bottleneck: bool, layers: tuple[int, ...], seed: int) -> onnx.ModelProto:
    b = GraphBuilder(name, seed)
    x = b.input("input", INPUT_SHAPE, IMAGE_IMAGENET)
    x = b.relu(b.batchnorm(b.conv(x, 64, 7, stride=2, name="conv1"), "bn1"))
    x = b.maxpool(x, 3, 2, 1)
    block = _bottleneck if bottleneck else _basic_block
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for j in range(n):
            with b.scope(f"layer{i + 1}.{j}"):
                x = block(b, x, planes, 2 if i > 0 and j == 0 else 1)
    x = b.flatten(b.global_avg_pool(x))
    b.output(b.gemm(x, NUM_CLASSES), "logits")
    return b.model(f"{name}: torchvision-structured ResNet with seeded random weights")


def resnet18(seed: int = 18) -> onnx.ModelProto:
    return _resnet("resnet18", False, (2, 2, 2, 2), seed)


def resnet50(seed: int = 50) -> onnx.ModelProto:
    return _resnet("resnet50", True, (3, 4, 6, 3), seed)
