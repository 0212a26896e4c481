"""Wall-clock timings that tests must not assert: the NumPy conv kernels and the ONNX import.

A per-pixel or per-channel Python loop in `kernels.conv2d` would take seconds on these shapes
(the vectorised kernels take milliseconds), and ResNet-50's import was ~1 s when measured.
Prints one Markdown table; timings vary with machine load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import onnx
from common import machine_info, markdown_table

from aipuc.frontend.onnx_import import import_onnx
from aipuc.models import build_model
from aipuc.runtime import kernels


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The fastest of `repeats` runs after one warm-up (BLAS threads, caches), in seconds."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(size: int, repeats: int, model: str) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, size, size)).astype(np.float32)
    rows = []
    for group in (1, 64):
        w = rng.standard_normal((64, 64 // group, 3, 3)).astype(np.float32)
        seconds = best_of(
            repeats, lambda w=w, group=group: kernels.conv2d(x, w, pads=(1, 1, 1, 1), group=group)
        )
        rows.append(
            {"what": f"conv2d 3x3, 64 channels, group {group}, {size}x{size}", "s": seconds}
        )
    proto = onnx.shape_inference.infer_shapes(build_model(model), strict_mode=True)
    rows.append(
        {"what": f"import_onnx({model})", "s": best_of(repeats, lambda: import_onnx(proto))}
    )
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=56, help="conv input height and width")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="resnet50", help="zoo model to import")
    args = parser.parse_args(argv)
    rows = measure(args.size, args.repeats, args.model)
    for row in rows:
        row["seconds"] = f"{row.pop('s'):.4f}"
    text = f"{markdown_table(rows, ['what', 'seconds'])}\n\n{machine_info()}"
    print(text)
    return text


if __name__ == "__main__":
    main()
