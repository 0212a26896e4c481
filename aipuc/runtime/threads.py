"""BLAS threading for the interpreters.

The float interpreter (calibration) and the integer reference run one sample at a time, so
their GEMMs are mid-sized (tens of MFLOP). NumPy's OpenBLAS splits each over its worker
threads, which spin while they wait: on two idle cores that gains well under 2x, but on a
busy machine (CI, a shared host, the user's other work) the spinning threads contend with
everything else and the same GEMMs run 3-30x slower (measured on these 2-core machines:
ResNet-18's integer reference 1.8 s against 0.18 s single-threaded, its calibration 24 s
against 10 s). The interpreters therefore run their GEMMs on one thread; the limit is
scoped, so the caller's own NumPy keeps its settings.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded BLAS libraries once


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS (OpenBLAS, MKL, ...) on one thread inside the block; as before after it."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
