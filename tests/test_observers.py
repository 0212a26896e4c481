"""Observers: min-max bounds, PyTorch's histogram observer, per-channel ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aipuc.errors import QuantizationError
from aipuc.quantization import observers
from aipuc.quantization.observers import (
    HistogramObserver,
    MinMaxObserver,
    PerChannelMinMaxObserver,
    histc,
)

finite_floats = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
batches = st.lists(
    hnp.arrays(np.float32, st.integers(1, 300), elements=finite_floats), min_size=1, max_size=4
)


def _observe_all(observer, arrays):
    for array in arrays:
        observer.observe(array)
    return observer


@given(batches)
@settings(max_examples=60, deadline=None)
def test_min_max_range_is_the_data_range(arrays):
    low, high = _observe_all(MinMaxObserver(), arrays).range()
    data = np.concatenate(arrays)
    assert low == data.min() and high == data.max()


@given(batches)
@settings(max_examples=40, deadline=None)
def test_histogram_range_lies_within_min_max_and_is_deterministic(arrays):
    low, high = _observe_all(HistogramObserver(), arrays).range()
    data_low, data_high = _observe_all(MinMaxObserver(), arrays).range()
    slack = 1e-6 * max(1.0, abs(data_low), abs(data_high))
    assert data_low - slack <= low <= high <= data_high + slack
    assert _observe_all(HistogramObserver(), arrays).range() == (low, high)


@given(batches)
@settings(max_examples=40, deadline=None)
def test_histogram_keeps_every_observed_value_when_rebinning(arrays):
    observer = _observe_all(HistogramObserver(), arrays)
    total = sum(array.size for array in arrays)
    assert observer.histogram.sum(dtype=np.float64) == pytest.approx(total, rel=1e-5)


def test_histc_matches_numpy_histogram_with_inclusive_top_edge():
    values = np.array([0.0, 0.1, 0.5, 0.99, 1.0, 1.5, -0.2], np.float32)
    counts = histc(values, 4, np.float32(0), np.float32(1))
    expected, _ = np.histogram(values, bins=4, range=(0, 1))
    np.testing.assert_array_equal(counts, expected)


def test_histogram_clips_a_heavy_tail_that_min_max_keeps():
    data = np.random.default_rng(0).standard_t(2, size=200_000).astype(np.float32)
    histogram, minmax = HistogramObserver(), MinMaxObserver()
    histogram.observe(data)
    minmax.observe(data)
    (low, high), (data_low, data_high) = histogram.range(), minmax.range()
    assert 0.7 * data_low < low < 0 < high < 0.5 * data_high


def test_histogram_keeps_far_outliers_when_clipping_them_costs_more():
    """The L2 criterion: one value at 40 costs ~35**2 clipped, more than the rounding noise."""
    data = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    data[0] = 40.0
    observer = HistogramObserver()
    observer.observe(data)
    assert observer.range()[1] > 39


def test_histogram_of_uniform_data_keeps_nearly_the_whole_range():
    data = np.linspace(-1, 1, 50_000, dtype=np.float32)
    observer = HistogramObserver()
    observer.observe(data)
    low, high = observer.range()
    assert low == pytest.approx(-1, abs=0.02) and high == pytest.approx(1, abs=0.02)


def test_constant_tensors_and_non_finite_values():
    observer = HistogramObserver()
    observer.observe(np.array([3.0, np.inf, -np.inf, np.nan, 3.0], np.float32))
    assert observer.range() == (3.0, 3.0)
    with pytest.raises(QuantizationError, match="no finite values"):
        HistogramObserver().range()
    with pytest.raises(QuantizationError, match="no finite values"):
        MinMaxObserver().range()


def test_histogram_widening_moves_old_mass_into_the_new_bins():
    observer = HistogramObserver(bins=8, upsample_rate=4)
    observer.observe(np.array([0.0, 1.0], np.float32))  # bins over [0, 1]
    observer.observe(np.array([-1.0], np.float32))  # range grows to [-1, 1]
    assert (observer.min_val, observer.max_val) == (-1.0, 1.0)
    # 0.0 sat in the first old bin and 1.0 in the last; both land in the matching new bins.
    np.testing.assert_allclose(observer.histogram, [1, 0, 0, 0, 1, 0, 0, 1])


def _literal_search(observer: HistogramObserver) -> tuple[int, int]:
    """PyTorch's `_non_linear_param_search` loop, line by line (no fast-forward)."""
    csum = np.cumsum(observer.histogram, dtype=np.float64).astype(np.float32)
    total = float(np.float32(observer.histogram.sum(dtype=np.float64)))
    alpha, beta = 0.0, 1.0
    start, end = 0, observer.bins - 1
    norm_min = float("inf")
    while alpha < beta:
        next_alpha, next_beta = alpha + observers.SEARCH_STEP, beta - observers.SEARCH_STEP
        left, right = start, end
        while left < end and csum[left] < np.float32(next_alpha * total):
            left += 1
        while right > start and csum[right] > np.float32(next_beta * total):
            right -= 1
        next_start, next_end = start, end
        if left - start > end - right:
            next_start, alpha = left, next_alpha
        else:
            next_end, beta = right, next_beta
        if next_start == start and next_end == end:
            continue
        norm = observer._quantization_error(next_start, next_end)
        if norm > norm_min:
            break
        norm_min, start, end = norm, next_start, next_end
    return start, end


@pytest.mark.parametrize("seed", range(4))
def test_fast_search_equals_the_literal_pytorch_loop(seed):
    rng = np.random.default_rng(seed)
    observer = HistogramObserver(bins=128)
    observer.observe(rng.standard_t(3, 5000).astype(np.float32))
    observer.observe(np.abs(rng.standard_normal(2000)).astype(np.float32) * 3)
    assert observer._non_linear_param_search() == _literal_search(observer)


def test_per_channel_min_max_follows_each_channel():
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal((2, 2, 5, 3, 3)).astype(np.float32)
    observer = PerChannelMinMaxObserver(axis=1)
    observer.observe(first)
    observer.observe(second)
    both = np.concatenate([first, second])
    low, high = observer.range()
    np.testing.assert_array_equal(low, both.min(axis=(0, 2, 3)))
    np.testing.assert_array_equal(high, both.max(axis=(0, 2, 3)))
    with pytest.raises(QuantizationError, match="channels"):
        observer.observe(np.zeros((1, 4, 3, 3), np.float32))


def test_histogram_observer_matches_pytorch_bit_for_bit():
    """The range equals torch's HistogramObserver on the same batches (when torch is there)."""
    torch = pytest.importorskip("torch", reason="torch is an optional extra (aipuc[torch])")
    from torch.ao.quantization.observer import HistogramObserver as TorchHistogramObserver

    rng = np.random.default_rng(0)
    for trial in range(12):
        reference = TorchHistogramObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        observer = HistogramObserver()
        for _ in range(3):
            x = rng.standard_normal((1, 8, 16, 16)) * rng.uniform(0.1, 5) + rng.uniform(-2, 2)
            x = x.astype(np.float32)
            if trial % 3 == 0:
                x = np.maximum(x, 0)
            if trial % 4 == 1:
                x[0, 0, 0, 0] = 50.0
            reference(torch.from_numpy(x))
            observer.observe(x)
        expected = tuple(float(v) for v in reference._non_linear_param_search())
        assert tuple(float(np.float32(v)) for v in observer.range()) == expected


def test_histogram_min_max_range_is_the_min_max_observers():
    """Calibration reads the min-max range off the histogram observer's running min/max."""
    rng = np.random.default_rng(4)
    histogram, minmax = HistogramObserver(), MinMaxObserver()
    for scale in (1.0, 3.0, 0.5):
        batch = (rng.standard_normal((1, 6, 5, 5)) * scale).astype(np.float32)
        batch[0, 1, 2, 3] = np.inf if scale == 3.0 else np.nan
        histogram.observe(batch)
        minmax.observe(batch)
    assert histogram.min_max_range() == minmax.range()
    assert all(np.isfinite(histogram.min_max_range()))


def test_observers_read_strided_views_like_their_copies():
    """An NHWC view of an NCHW tensor is observed in place: the same histogram and ranges."""
    rng = np.random.default_rng(5)
    batches = [rng.standard_t(3, (1, 7, 6, 8)).astype(np.float32) for _ in range(3)]
    batches[1][0, 2, 1, 1] = np.nan
    views = [np.moveaxis(b, 3, 1) for b in batches]  # non-contiguous (1, 8, 7, 6)
    copies = [np.ascontiguousarray(v).ravel() for v in views]
    for kind in (HistogramObserver, lambda: PerChannelMinMaxObserver(axis=1)):
        strided, flat = kind(), kind()
        for view, copy in zip(views, copies, strict=True):
            strided.observe(view)
            flat.observe(copy.reshape(view.shape))
        if isinstance(strided, HistogramObserver):
            np.testing.assert_array_equal(strided.histogram, flat.histogram)
        for a, b in zip(strided.range(), flat.range(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_per_channel_min_max_skips_non_finite_values():
    data = np.arange(24, dtype=np.float32).reshape(1, 3, 2, 4)
    data[0, 0, 0, 0] = np.nan
    data[0, 1, 1, 3] = np.inf
    data[0, 2] = -np.inf
    observer = PerChannelMinMaxObserver(axis=1)
    observer.observe(data)
    low, high = observer.range()
    np.testing.assert_array_equal(low, [1.0, 8.0, 0.0])  # channel 2 saw nothing finite
    np.testing.assert_array_equal(high, [7.0, 14.0, 0.0])


def test_per_channel_min_max_defaults_to_axis_1_and_rounds_to_float32():
    """The default channel axis is NCHW's 1; float64 data is observed as float32 (0.1 ->
    0.10000000149011612), as torch's observers see it."""
    observer = PerChannelMinMaxObserver()
    observer.observe(np.array([[[0.1, 2.0], [-0.3, 1.0], [5.0, 4.0]]]))
    low, high = observer.range()
    assert low.tolist() == [float(np.float32(0.1)), float(np.float32(-0.3)), 4.0]
    assert high.tolist() == [2.0, 1.0, 5.0]


def test_per_channel_min_max_skips_an_infinity_of_one_sign():
    """Only +inf in a batch (every minimum finite): the maxima still skip it."""
    observer = PerChannelMinMaxObserver(axis=1)
    observer.observe(np.array([[[1.0, np.inf], [2.0, 3.0]]], np.float32))
    assert [v.tolist() for v in observer.range()] == [[1.0, 2.0], [1.0, 3.0]]


def test_per_channel_min_max_of_an_empty_batch_sees_no_channel():
    """A batch with no element per channel leaves every channel unseen ([0, 0]), and the
    next batch's values are the range."""
    observer = PerChannelMinMaxObserver(axis=1)
    observer.observe(np.zeros((1, 2, 0), np.float32))
    assert [v.tolist() for v in observer.range()] == [[0.0, 0.0], [0.0, 0.0]]
    observer.observe(np.array([[[-1.0], [3.0]]], np.float32))
    assert [v.tolist() for v in observer.range()] == [[-1.0, 3.0], [-1.0, 3.0]]


def test_histogram_range_of_a_span_beyond_float32_is_finite():
    """max - min above float32's largest value: the search runs in float64 and the range stays
    a finite sub-range of the data's (in float32 it overflows to NaN)."""
    observer = HistogramObserver()
    observer.observe(np.array([-3e38, 0.0, 1.0, 3e38], np.float32))
    low, high = observer.range()
    assert np.isfinite([low, high]).all()
    assert np.float32(-3e38) <= low < 0 < high <= np.float32(3e38)


def test_observers_see_float64_data_as_float32():
    """float64 batches are observed as the float32 values torch's observers see: 0.1 becomes
    0.10000000149011612 in the min-max and the histogram ranges."""
    data = np.array([0.1, -0.3, 0.1])
    observer = MinMaxObserver()
    observer.observe(data)
    assert observer.range() == (-0.30000001192092896, 0.10000000149011612)
    histogram = HistogramObserver()
    histogram.observe(data)
    assert histogram.min_max_range() == (-0.30000001192092896, 0.10000000149011612)


def test_one_finite_value_among_non_finite_ones_is_observed():
    """A batch whose only finite value is 2.5 (beside inf and NaN) is that value's range."""
    for observer in (MinMaxObserver(), HistogramObserver()):
        observer.observe(np.array([np.inf, 2.5, np.nan, -np.inf], np.float32))
        assert observer.range() == (2.5, 2.5), type(observer).__name__
