"""The model zoo: ONNX models built in code with seeded random weights, so tests, examples and
benchmarks need no download. Every build is deterministic (byte-identical ModelProto)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from aipuc.errors import ModelError
from aipuc.models import attention, efficientnet, mobilenet, resnet, tiny, yolo
from aipuc.models.builder import (
    EMBEDDINGS,
    IMAGE_IMAGENET,
    INPUT_KIND_KEY,
    synthetic_input,
)

__all__ = ["ZOO", "ZooEntry", "build_model", "sample_inputs"]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    build: Callable[[], onnx.ModelProto]
    input_shapes: dict[str, tuple[int, ...]]
    output_shapes: dict[str, tuple[int, ...]]


def _classifier(
    name: str,
    description: str,
    build: Callable[[], onnx.ModelProto],
    input_shape: tuple[int, ...],
    classes: int,
) -> ZooEntry:
    return ZooEntry(name, description, build, {"input": input_shape}, {"logits": (1, classes)})


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        _classifier(
            "tiny_cnn",
            "tiny conv net for fast tests: conv-bn-relu, depthwise, maxpool, add, concat, gemm",
            tiny.tiny_cnn,
            tiny.INPUT_SHAPE,
            tiny.NUM_CLASSES,
        ),
        _classifier(
            "resnet18",
            "ResNet-18 (torchvision structure, BN unfolded), 1.8 GMAC",
            resnet.resnet18,
            resnet.INPUT_SHAPE,
            resnet.NUM_CLASSES,
        ),
        _classifier(
            "resnet50",
            "ResNet-50 (torchvision structure, bottlenecks, BN unfolded), 4.1 GMAC",
            resnet.resnet50,
            resnet.INPUT_SHAPE,
            resnet.NUM_CLASSES,
        ),
        _classifier(
            "mobilenetv2",
            "MobileNetV2: inverted residuals, depthwise convs, ReLU6 as Clip(0, 6)",
            mobilenet.mobilenetv2,
            mobilenet.INPUT_SHAPE,
            mobilenet.NUM_CLASSES,
        ),
        _classifier(
            "efficientnet_b0",
            "EfficientNet-B0: MBConv with SiLU (Sigmoid+Mul) and squeeze-excitation",
            efficientnet.efficientnet_b0,
            efficientnet.INPUT_SHAPE,
            efficientnet.NUM_CLASSES,
        ),
        ZooEntry(
            "yolov5s_head",
            "YOLO detector at 640: C2f/SPPF backbone stub, PAN neck, anchor head with decode tail",
            yolo.yolov5s_head,
            {"input": yolo.INPUT_SHAPE},
            {"detections": (1, yolo.NUM_DETECTIONS, yolo.NUM_OUTPUTS)},
        ),
        ZooEntry(
            "attention_block",
            "BERT-style encoder block: 4-head self-attention, GELU MLP, primitive-op LayerNorm",
            attention.attention_block,
            {"input": attention.INPUT_SHAPE},
            {"output": attention.INPUT_SHAPE},
        ),
    )
}


def build_model(name: str) -> onnx.ModelProto:
    """Build the zoo model ``name``."""
    if name not in ZOO:
        raise ModelError(f"unknown zoo model {name!r}; valid names: {', '.join(ZOO)}")
    return ZOO[name].build()


def sample_inputs(model: onnx.ModelProto | str, seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic inputs for ``model`` (a ModelProto or a zoo name), keyed by input name.

    The kind of data (normalised images, [0, 1] images, embeddings) comes from the model's
    ``aipuc.input_kind.<input>`` metadata; without it, 3-channel NCHW inputs get
    ImageNet-normalised images and everything else N(0, 1) data.
    """
    if isinstance(model, str):
        model = build_model(model)
    kinds = {
        p.key[len(INPUT_KIND_KEY) :]: p.value
        for p in model.metadata_props
        if p.key.startswith(INPUT_KIND_KEY)
    }
    initializers = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            raise ModelError(f"input {value.name!r} is {dtype}; sample_inputs makes float32 only")
        dims = tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            raise ModelError(f"input {value.name!r} has a dynamic shape; fix it before sampling")
        shape = tuple(d.dim_value for d in dims)
        default = IMAGE_IMAGENET if len(shape) == 4 and shape[1] == 3 else EMBEDDINGS
        feeds[value.name] = synthetic_input(kinds.get(value.name, default), shape, rng)
    return feeds
