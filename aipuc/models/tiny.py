"""A tiny CNN (1x3x32x32, ten classes) touching the common conv-net ops, for fast tests."""

from __future__ import annotations

import onnx

from aipuc.models.builder import IMAGE_IMAGENET, GraphBuilder

INPUT_SHAPE = (1, 3, 32, 32)
NUM_CLASSES = 10


def tiny_cnn(seed: int = 1) -> onnx.ModelProto:
    b = GraphBuilder("tiny_cnn", seed)
    x = b.input("input", INPUT_SHAPE, IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 16, 3, act="relu", name="stem")
    x = b.conv_bn_act(x, 16, 3, groups=16, act="relu", name="dw")
    x = b.maxpool(x, 2, 2, 0, name="pool")
    residual = b.relu(b.add(x, b.conv_bn_act(x, 16, 1, act=None, name="branch_a")), "merge_a")
    branch_b = b.conv_bn_act(x, 16, 3, act="relu", name="branch_b")
    x = b.concat([residual, branch_b], axis=1)
    x = b.flatten(b.global_avg_pool(x))
    b.output(b.gemm(x, NUM_CLASSES), "logits")
    return b.model("tiny_cnn: conv-bn-relu, depthwise, maxpool, add, concat, pool, gemm; for tests")
