"""Record PyTorch's observer results on seeded inputs, for tests that run without torch.

    .venv/bin/python tests/golden/record_torch_histogram.py   # needs torch (aipuc[torch])

writes tests/golden/torch_observers.json: for every case of HISTOGRAM_CASES, the SHA-256 of
each input batch (so a change in NumPy's generators is caught, not mistaken for a mismatch)
and the range torch's HistogramObserver chooses (`_non_linear_param_search`); for every
range of MIN_MAX_RANGES, the scale and zero point of torch's MinMaxObserver (qint8).
tests/test_golden_observers.py checks aipuc against the file, and re-records it whenever
torch is installed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("torch_observers.json")


def _batch(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    if kind == "normal":
        return rng.standard_normal(size) * rng.uniform(0.1, 5) + rng.uniform(-2, 2)
    if kind == "relu":
        return np.maximum(rng.standard_normal(size) * rng.uniform(0.1, 5), 0)
    if kind == "outlier":
        x = rng.standard_normal(size)
        x[rng.integers(size)] = rng.choice([-1, 1]) * rng.uniform(20, 60)
        return x
    if kind == "heavy_tail":
        return rng.standard_t(2, size)
    if kind == "uniform":
        return rng.uniform(-1, 3, size)
    if kind == "exponential":
        return rng.exponential(rng.uniform(0.01, 100), size)
    if kind == "bimodal":
        return np.concatenate([rng.normal(-3, 0.3, size // 2), rng.normal(5, 1, size - size // 2)])
    if kind == "integers":
        return rng.integers(-5, 11, size).astype(np.float64)  # many values on bin edges
    if kind == "tiny":
        return rng.standard_normal(size) * 1e-4
    if kind == "huge":
        return rng.standard_normal(size) * 1e4
    if kind == "constant":
        return np.full(size, rng.uniform(-2, 2))
    # narrow ranges far from 0 (float32 steps of 1/16 and 1/128): the rebinned sub-bins'
    # midpoints round onto the new bins' edges
    if kind == "offset":
        return 1e6 + rng.uniform(0, 1, size)
    if kind == "offset_below":
        return 1e6 - rng.uniform(0, 2, size)
    if kind == "negative_offset":
        return -1e5 + rng.uniform(0, 1, size)
    if kind == "negative_offset_wider":
        return -1e5 + rng.uniform(-1, 2, size)
    if kind == "two_values":  # mass only in the first and the last bin
        return np.repeat([0.0, rng.integers(1, 50)], [size - size // 4, size // 4])
    raise ValueError(f"unknown batch kind {kind}")


# name -> (seed, batch kinds in observation order, batch size)
HISTOGRAM_CASES: dict[str, tuple[int, list[str], int]] = {
    **{f"normal_{s}": (s, ["normal"] * 3, 2048) for s in range(4)},
    **{f"relu_{s}": (10 + s, ["relu"] * 3, 2048) for s in range(3)},
    **{f"outlier_{s}": (20 + s, ["outlier", "normal", "outlier"], 2048) for s in range(3)},
    "heavy_tail": (30, ["heavy_tail"], 20000),
    "uniform": (31, ["uniform", "uniform"], 4096),
    "exponential": (32, ["exponential", "exponential"], 3000),
    "bimodal": (33, ["bimodal"], 5000),
    "integers": (34, ["integers", "integers"], 1000),
    "tiny": (35, ["tiny", "tiny"], 2048),
    "huge": (36, ["huge", "normal"], 2048),
    "constant_then_wider": (37, ["constant", "normal"], 512),
    "widening": (38, ["tiny", "normal", "huge"], 1024),
    "narrowing": (39, ["huge", "normal", "tiny"], 1024),
    "two_values": (41, ["two_values"], 512),
    "offset_widening_below": (42, ["offset", "offset_below"], 1024),
    "negative_offset_widening": (45, ["negative_offset", "negative_offset_wider"], 2048),
}

MIN_MAX_RANGES: list[tuple[float, float]] = [
    (-1.3, 2.7),
    (0.0, 0.0),
    (0.5, 2.55),
    (-8.0, -1.0),
    (-37.3, 217.7),
    (-36.5, 218.5),
    (-1e-30, 1e-30),
    (-1e-7, 3e-7),
    (-65504.0, 65504.0),
    (-1e30, 5e29),
    (0.1, 0.30000001),
    (-0.01, 1000.0),
    *[(-float(a), float(b)) for a, b in np.random.default_rng(40).exponential(3, (20, 2))],
]


def case_batches(name: str) -> list[np.ndarray]:
    """The float32 input batches of a histogram case (seeded NumPy)."""
    seed, kinds, size = HISTOGRAM_CASES[name]
    rng = np.random.default_rng(seed)
    return [_batch(rng, kind, size).astype(np.float32) for kind in kinds]


def digest(batch: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(batch, np.float32).tobytes()).hexdigest()


def record() -> dict:
    """The golden values, computed by torch."""
    import torch
    from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver

    histogram = {}
    for name in HISTOGRAM_CASES:
        observer = HistogramObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        batches = case_batches(name)
        for batch in batches:
            observer(torch.from_numpy(batch))
        low, high = (float(v) for v in observer._non_linear_param_search())
        histogram[name] = {"sha256": [digest(b) for b in batches], "range": [low, high]}
    min_max = []
    for low, high in MIN_MAX_RANGES:
        observer = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine)
        observer(torch.tensor([low, high], dtype=torch.float32))
        scale, zero_point = observer.calculate_qparams()
        min_max.append({"range": [low, high], "scale": float(scale), "zero_point": int(zero_point)})
    return {"torch": torch.__version__, "histogram": histogram, "min_max": min_max}


def main() -> None:
    GOLDEN.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
