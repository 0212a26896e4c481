"""Calibration observers: they watch float tensors and propose a quantization range.

The vendor's quantizer is PyTorch-based, so the observers follow PyTorch's
(``torch.ao.quantization.observer``):

- ``MinMaxObserver``: the running minimum and maximum (``MinMaxObserver``).
- ``PerChannelMinMaxObserver``: the same per index of one axis.
- ``HistogramObserver``: PyTorch's ``HistogramObserver``. It keeps a running histogram of
  2048 equal bins over the running [min, max]. When a batch widens the range, the old
  histogram is re-binned into the new range: every old bin is split into 16 equal
  sub-bins (``upsample_rate``) whose mass moves to the new bin holding the sub-bin's
  midpoint. The range is chosen by ``_non_linear_param_search``, a port of Caffe2's
  ``NormMinimization::NonlinearQuantizationParamsSearch``: starting from the full range,
  it moves the lower or the upper end inwards, one bin at a time, by quantiles in steps of
  1e-5 of the total mass (whichever end the next quantile step moves further), and keeps
  going while the L2 error of quantizing the histogram onto 256 levels in the shrunk range
  decreases. The error of one source bin treats its mass as uniformly spread and
  integrates ``x**2`` of the distance to the centre of the destination bin(s) it falls in.

Storage and comparisons follow PyTorch's float32 tensors (histogram, cumulative sums,
range ends, ``histc`` bin positions); the quantization error itself is evaluated in
float64 where PyTorch uses float32, which can only matter on exact ties. Non-finite
values are ignored (PyTorch's histogram observer drops infinities too). Everything is
deterministic: the same batches in the same order give the same range, bit for bit.
"""

from __future__ import annotations

import numpy as np

from aipuc.errors import QuantizationError

HISTOGRAM_BINS = 2048
UPSAMPLE_RATE = 16
QUANTIZED_LEVELS = 256  # int8 destination bins of the error model
SEARCH_STEP = 1e-5


def finite_values(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.float32] | None:
    """The finite values of `x` as float32 with their minimum and maximum; None if none.

    `x` keeps its shape and layout when every value is finite (a strided view is not
    copied), else it becomes the 1-D array of its finite values. min and max are the
    finiteness test: a NaN or infinity shows in one of them.
    """
    values = np.asarray(x, dtype=np.float32)
    if values.size == 0:
        return None
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None
        low, high = values.min(), values.max()
    return values, low, high


class MinMaxObserver:
    """Running minimum and maximum of everything observed."""

    def __init__(self) -> None:
        self.min_val = np.float32(np.inf)
        self.max_val = np.float32(-np.inf)

    def observe(self, x: np.ndarray) -> None:
        found = finite_values(x)
        if found is not None:
            self.min_val = min(self.min_val, found[1])
            self.max_val = max(self.max_val, found[2])

    @property
    def observed(self) -> bool:
        return bool(self.min_val <= self.max_val)

    def range(self) -> tuple[float, float]:
        if not self.observed:
            raise QuantizationError("observer saw no finite values; calibrate on real data")
        return float(self.min_val), float(self.max_val)


class PerChannelMinMaxObserver:
    """Running minimum and maximum per index of `axis` (the channel axis)."""

    def __init__(self, axis: int = 1) -> None:
        self.axis = axis
        self.min_val: np.ndarray | None = None
        self.max_val: np.ndarray | None = None

    def observe(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        others = tuple(axis for axis in range(x.ndim) if axis != self.axis % x.ndim)
        batch_min = x.min(axis=others, initial=np.inf)
        batch_max = x.max(axis=others, initial=-np.inf)
        if not (np.isfinite(batch_min).all() and np.isfinite(batch_max).all()):
            finite = np.isfinite(x)
            batch_min = np.where(finite, x, np.inf).min(axis=others, initial=np.inf)
            batch_max = np.where(finite, x, -np.inf).max(axis=others, initial=-np.inf)
        if self.min_val is None or self.max_val is None:
            self.min_val, self.max_val = batch_min, batch_max
            return
        if batch_min.shape != self.min_val.shape:
            raise QuantizationError(
                f"per-channel observer saw {batch_min.shape[0]} channels after "
                f"{self.min_val.shape[0]}; calibration samples must share one shape"
            )
        self.min_val = np.minimum(self.min_val, batch_min)
        self.max_val = np.maximum(self.max_val, batch_max)

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        """float64 arrays (min per channel, max per channel); unseen channels give [0, 0]."""
        if self.min_val is None or self.max_val is None:
            raise QuantizationError("per-channel observer saw no data")
        seen = self.min_val <= self.max_val
        return (
            np.where(seen, self.min_val, 0).astype(np.float64),
            np.where(seen, self.max_val, 0).astype(np.float64),
        )


def histc(x: np.ndarray, bins: int, low: np.float32, high: np.float32) -> np.ndarray:
    """``torch.histc``: equal bins over [low, high], values outside dropped, float32 counts.

    Bin positions are computed in float32 as PyTorch's CPU kernel does; the top edge is
    inclusive; an empty range is widened to [low - 1, high + 1], or by one float32 step
    where 1 is below that (|low| >= 2**24). Ranges so wide that float32 would overflow
    (span * bins > float32 max) are binned in float64 instead.

    One difference: `torch.histc` given an explicit min == max bins over the data's own
    range (torch 2.13). The observer asks for an empty range only for a constant batch,
    whose own range is that same point, so both widen it alike.
    """
    low, high = _histc_range(low, high)
    return _bin_counts(x[(x >= low) & (x <= high)], bins, low, high)


def _histc_range(low, high) -> tuple[np.float32, np.float32]:
    """histc's range: [low, high] in float32, an empty one widened as histc documents."""
    low, high = np.float32(low), np.float32(high)
    if low == high:
        widening = max(np.float32(1), np.spacing(np.abs(low)))
        low, high = low - widening, high + widening
    return low, high


def _bin_counts(values: np.ndarray, bins: int, low: np.float32, high: np.float32) -> np.ndarray:
    """histc's counts of `values` (any shape, all within [low, high]) over its range."""
    span = np.float64(high) - np.float64(low)
    if span * bins < np.finfo(np.float32).max:
        # ((x - low) * bins / (high - low)) in float32, one buffer for the three steps
        scaled = np.subtract(values, low, dtype=np.float32, order="C")
        np.multiply(scaled, np.float32(bins), out=scaled)
        np.divide(scaled, high - low, out=scaled)
        position = scaled.astype(np.intp)
    else:
        position = ((values.astype(np.float64) - np.float64(low)) * bins / span).astype(np.intp)
    np.minimum(position, bins - 1, out=position)
    return np.bincount(position.ravel(), minlength=bins).astype(np.float32)


class HistogramObserver:
    """PyTorch's HistogramObserver: running 2048-bin histogram, L2-optimal clipping range."""

    def __init__(
        self,
        bins: int = HISTOGRAM_BINS,
        upsample_rate: int = UPSAMPLE_RATE,
        quantized_levels: int = QUANTIZED_LEVELS,
    ) -> None:
        self.bins = bins
        self.upsample_rate = upsample_rate
        self.quantized_levels = quantized_levels
        self.histogram = np.zeros(bins, dtype=np.float32)
        self.min_val = np.float32(np.inf)
        self.max_val = np.float32(-np.inf)

    @property
    def observed(self) -> bool:
        return bool(self.min_val <= self.max_val)

    def observe(self, x: np.ndarray) -> None:
        found = finite_values(x)
        if found is None:
            return
        values, batch_min, batch_max = found
        # Every value lies in the range binned below, so histc's selection is skipped.
        if not self.observed:
            self.min_val, self.max_val = batch_min, batch_max
            self.histogram = _bin_counts(values, self.bins, *_histc_range(batch_min, batch_max))
            return
        new_min = min(self.min_val, batch_min)
        new_max = max(self.max_val, batch_max)
        update = _bin_counts(values, self.bins, *_histc_range(new_min, new_max))
        if new_min == self.min_val and new_max == self.max_val:
            self.histogram = self.histogram + update
            return
        self.histogram = update + self._rebinned(new_min, new_max)
        self.min_val, self.max_val = new_min, new_max

    def _rebinned(self, new_min: np.float32, new_max: np.float32) -> np.ndarray:
        """The running histogram moved onto the bins of [new_min, new_max] (a wider range)."""
        if self.min_val == self.max_val:
            # All mass sits at one value: it lands in that value's new bin.
            one = histc(np.array([self.min_val], np.float32), self.bins, new_min, new_max)
            return one * np.float32(self.histogram.sum(dtype=np.float64))
        fine_bins = self.bins * self.upsample_rate
        mass = np.repeat(self.histogram, self.upsample_rate) / np.float32(self.upsample_rate)
        orig_min, orig_max = float(self.min_val), float(self.max_val)
        sub_width = (orig_max - orig_min) / fine_bins
        midpoints = np.linspace(orig_min, orig_max, fine_bins + 1)[:-1].astype(
            np.float32
        ) + np.float32(0.5 * sub_width)
        edges = np.linspace(float(new_min), float(new_max), self.bins + 1).astype(np.float32)
        bucket = np.searchsorted(edges, midpoints, side="right") - 1
        bucket = np.clip(bucket, 0, self.bins - 1)
        return np.bincount(bucket, weights=mass, minlength=self.bins).astype(np.float32)

    def _quantization_error(self, start_bin: int, end_bin: int) -> float:
        """L2 error of quantizing the histogram onto 256 levels spanning bins start..end."""
        bin_width = (float(self.max_val) - float(self.min_val)) / self.bins
        dst_bin_width = bin_width * (end_bin - start_bin + 1) / self.quantized_levels
        if dst_bin_width == 0.0:
            return 0.0
        src_begin = (np.arange(self.bins, dtype=np.float64) - start_bin) * bin_width
        src_end = src_begin + bin_width
        last = self.quantized_levels - 1
        dst_of_begin = np.clip(np.floor(src_begin / dst_bin_width), 0, last)
        dst_of_end = np.clip(np.floor(src_end / dst_bin_width), 0, last)
        density = self.histogram.astype(np.float64) / bin_width
        half = dst_bin_width / 2

        def norm(delta_begin, delta_end):
            return density * (delta_end**3 - delta_begin**3) / 3

        error = norm(src_begin - (dst_of_begin + 0.5) * dst_bin_width, half)
        error += (dst_of_end - dst_of_begin - 1) * norm(-half, half)
        error += norm(-half, src_end - (dst_of_end + 0.5) * dst_bin_width)
        return float(error.sum())

    def _non_linear_param_search(self) -> tuple[int, int]:
        """First and last bin of the chosen range (PyTorch's search, step for step)."""
        csum = np.cumsum(self.histogram, dtype=np.float64).astype(np.float32).tolist()
        total = float(np.float32(self.histogram.sum(dtype=np.float64)))
        alpha, beta = 0.0, 1.0
        start_bin, end_bin = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + SEARCH_STEP, beta - SEARCH_STEP
            alpha_mass = float(np.float32(next_alpha * total))
            beta_mass = float(np.float32(next_beta * total))
            left = start_bin
            while left < end_bin and csum[left] < alpha_mass:
                left += 1
            right = end_bin
            while right > start_bin and csum[right] > beta_mass:
                right -= 1
            next_start, next_end = start_bin, end_bin
            if left - start_bin > end_bin - right:
                next_start, alpha = left, next_alpha
            else:
                next_end, beta = right, next_beta
            if next_start == start_bin and next_end == end_bin:
                if start_bin == end_bin:
                    break  # nothing can move any more: every later step is a no-op
                # Fast-forward the no-op steps: only beta moves until the top bin would.
                top = csum[end_bin]
                while alpha < beta and not top > float(np.float32((beta - SEARCH_STEP) * total)):
                    beta -= SEARCH_STEP
                continue
            norm = self._quantization_error(next_start, next_end)
            if norm > norm_min:
                break
            norm_min = norm
            start_bin, end_bin = next_start, next_end
        return start_bin, end_bin

    def min_max_range(self) -> tuple[float, float]:
        """The running minimum and maximum: what a MinMaxObserver of the same data gives."""
        if not self.observed:
            raise QuantizationError("observer saw no finite values; calibrate on real data")
        return float(self.min_val), float(self.max_val)

    def range(self) -> tuple[float, float]:
        """The clipping range [lo, hi] that minimises the L2 quantization error."""
        if not self.observed:
            raise QuantizationError("observer saw no finite values; calibrate on real data")
        start_bin, end_bin = self._non_linear_param_search()
        # float32 as PyTorch computes it, unless the span itself overflows float32.
        span = np.float64(self.max_val) - np.float64(self.min_val)
        dtype = np.float32 if span <= np.finfo(np.float32).max else np.float64
        min_val, max_val = dtype(self.min_val), dtype(self.max_val)
        bin_width = (max_val - min_val) / dtype(self.bins)
        low = min_val + bin_width * dtype(start_bin)
        high = min(min_val + bin_width * dtype(end_bin + 1), max_val)
        return float(np.float32(low)), float(np.float32(high))
