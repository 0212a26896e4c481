"""aipuc's observers against golden values recorded from PyTorch (tests/golden), in CI
without torch; with torch installed, the golden file is also re-recorded and must not change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from golden.record_torch_histogram import GOLDEN, HISTOGRAM_CASES, case_batches, digest, record
from oracle import quant

from aipuc import numerics
from aipuc.quantization.observers import HistogramObserver

RECORDED = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(HISTOGRAM_CASES))
def test_histogram_observer_range_equals_torch_golden(name):
    """README: the histogram observer equals PyTorch's HistogramObserver bit for bit."""
    golden = RECORDED["histogram"][name]
    batches = case_batches(name)
    assert [digest(b) for b in batches] == golden["sha256"], (
        "NumPy generated other inputs than the recorded ones; rerun "
        "tests/golden/record_torch_histogram.py with torch installed"
    )
    observer = HistogramObserver()
    for batch in batches:
        observer.observe(batch)
    assert [float(np.float32(v)) for v in observer.range()] == golden["range"]


def test_min_max_qparams_equal_torch_golden():
    """numerics.choose_qparams_asymmetric and the oracle both equal torch's MinMaxObserver."""
    for case in RECORDED["min_max"]:
        expected = (case["scale"], case["zero_point"])
        low, high = (float(np.float32(v)) for v in case["range"])
        assert numerics.choose_qparams_asymmetric(low, high) == expected, case
        assert quant.choose_qparams_asymmetric(low, high) == expected, case


def test_golden_file_is_what_torch_records_now():
    """Where torch is installed the golden values are re-recorded: they must be unchanged."""
    pytest.importorskip("torch", reason="torch is an optional extra (aipuc[torch])")
    current = record()
    assert current["histogram"] == RECORDED["histogram"]
    assert current["min_max"] == RECORDED["min_max"]
