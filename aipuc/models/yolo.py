"""A small YOLO detector at 1x3x640x640: a YOLOv8-style backbone stub (Conv/SiLU with folded BN,
C2f blocks that Split on channels, SPPF) and PAN neck (nearest Resize x2, Concat on C), then a
YOLOv5 anchor head whose decode postamble (Reshape/Transpose, Sigmoid, Split, grid and anchor
arithmetic, Concat of the three scales) is the host-side tail real detector exports carry.
Widths 16-256 as in YOLOv5n/v8n."""

from __future__ import annotations

import math

import numpy as np
import onnx

from aipuc.models.builder import IMAGE_UNIT, GraphBuilder, Tensor

INPUT_SIZE = 640
INPUT_SHAPE = (1, 3, INPUT_SIZE, INPUT_SIZE)
NUM_CLASSES = 80
NUM_OUTPUTS = NUM_CLASSES + 5  # x, y, w, h, objectness, class scores
STRIDES = (8, 16, 32)
# YOLOv5's COCO anchors (width, height in pixels), three per scale
ANCHORS = (((10, 13), (16, 30), (33, 23)), ((30, 61), (62, 45), (59, 119)),
           ((116, 90), (156, 198), (373, 326)))  # fmt: skip
NUM_DETECTIONS = sum(3 * (INPUT_SIZE // s) ** 2 for s in STRIDES)


def _conv(b: GraphBuilder, x: Tensor, cout: int, k: int, stride: int = 1, *, name: str) -> Tensor:
    """Ultralytics' Conv after fusing: Conv (BN folded in) -> SiLU."""
    with b.scope(name):
        return b.silu(b.conv(x, cout, k, stride=stride, fold_bn=True))


def _c2f(b: GraphBuilder, x: Tensor, cout: int, shortcut: bool, *, name: str) -> Tensor:
    """YOLOv8's C2f with one bottleneck: 1x1 conv, Split in halves, bottleneck, Concat, 1x1."""
    half = cout // 2
    with b.scope(name):
        parts = b.split(_conv(b, x, cout, 1, name="cv1"), [half, half], axis=1)
        y = _conv(b, _conv(b, parts[1], half, 3, name="m.cv1"), half, 3, name="m.cv2")
        if shortcut:
            y = b.add(parts[1], y, "m.add")
        return _conv(b, b.concat([*parts, y], axis=1), cout, 1, name="cv2")


def _sppf(b: GraphBuilder, x: Tensor, *, name: str) -> Tensor:
    """Spatial pyramid pooling, fast: three chained 5x5 max pools, concatenated."""
    with b.scope(name):
        y = [_conv(b, x, x.channels // 2, 1, name="cv1")]
        for i in range(3):
            y.append(b.maxpool(y[-1], 5, 1, 2, name=f"m{i}"))
        return _conv(b, b.concat(y, axis=1), x.channels, 1, name="cv2")


def _decode(b: GraphBuilder, p: Tensor, stride: int, anchors) -> Tensor:
    """YOLOv5 Detect in export mode: boxes in input pixels, [1, 3*G*G, 85]."""
    g = INPUT_SIZE // stride
    y = b.reshape(p, [1, 3, NUM_OUTPUTS, g, g])
    y = b.sigmoid(b.transpose(y, [0, 1, 3, 4, 2]))
    xy, wh, conf = b.split(y, [2, 2, NUM_OUTPUTS - 4], axis=4)
    gy, gx = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    grid = np.stack([gx, gy], axis=-1)[None, None].astype(np.float32) - 0.5
    xy = b.mul(b.add(b.mul(xy, 2.0, "xy.scale"), grid, "xy.grid"), float(stride), "xy.stride")
    anchor_grid = np.array(anchors, np.float32).reshape(1, 3, 1, 1, 2)
    wh = b.mul(b.pow(b.mul(wh, 2.0, "wh.scale"), 2.0, "wh.square"), anchor_grid, "wh.anchor")
    y = b.concat([xy, wh, conf], axis=4, name="boxes")
    return b.reshape(y, [1, 3 * g * g, NUM_OUTPUTS], name="flatten")


def _detect_bias(stride: int) -> np.ndarray:
    """YOLOv5's bias priors: about 8 objects per 640 image, classes roughly uniform."""
    bias = np.zeros((3, NUM_OUTPUTS), np.float32)
    bias[:, 4] = math.log(8 / (INPUT_SIZE / stride) ** 2)
    bias[:, 5:] = math.log(0.6 / (NUM_CLASSES - 0.99))
    return bias.reshape(-1)


def yolov5s_head(seed: int = 5) -> onnx.ModelProto:
    b = GraphBuilder("yolov5s_head", seed)
    x = b.input("input", INPUT_SHAPE, IMAGE_UNIT)
    with b.scope("backbone"):
        x = _conv(b, x, 16, 3, 2, name="stem")  # /2
        x = _c2f(b, _conv(b, x, 32, 3, 2, name="down1"), 32, True, name="c2f1")  # /4
        p3 = _c2f(b, _conv(b, x, 64, 3, 2, name="down2"), 64, True, name="c2f2")  # /8
        p4 = _c2f(b, _conv(b, p3, 128, 3, 2, name="down3"), 128, True, name="c2f3")  # /16
        p5 = _c2f(b, _conv(b, p4, 256, 3, 2, name="down4"), 256, True, name="c2f4")  # /32
        p5 = _sppf(b, p5, name="sppf")
    with b.scope("neck"):
        n4 = _c2f(b, b.concat([b.upsample2x(p5, "up5"), p4], axis=1), 128, False, name="td4")
        n3 = _c2f(b, b.concat([b.upsample2x(n4, "up4"), p3], axis=1), 64, False, name="out3")
        down = _conv(b, n3, 64, 3, 2, name="down3")
        n4 = _c2f(b, b.concat([down, n4], axis=1), 128, False, name="out4")
        down = _conv(b, n4, 128, 3, 2, name="down4")
        n5 = _c2f(b, b.concat([down, p5], axis=1), 256, False, name="out5")
    scales = []
    for i, (feature, stride) in enumerate(zip((n3, n4, n5), STRIDES, strict=True)):
        with b.scope(f"head.p{i + 3}"):
            p = b.conv(feature, 3 * NUM_OUTPUTS, 1, gain=1.0, bias_init=_detect_bias(stride))
            scales.append(_decode(b, p, stride, ANCHORS[i]))
    b.output(b.concat(scales, axis=1), "detections")
    return b.model("yolov5s_head: YOLO backbone stub, PAN neck, anchor head with decode tail")
