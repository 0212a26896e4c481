"""The interpreters run BLAS on one thread, scoped to the run (see aipuc.runtime.threads)."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

import aipuc
from aipuc.models import build_model, sample_inputs
from aipuc.runtime import kernels


def _blas_threads() -> list[int]:
    return [entry["num_threads"] for entry in threadpool_info() if entry["user_api"] == "blas"]


def test_the_float_interpreter_runs_blas_on_one_thread_and_restores_it(monkeypatch):
    model = build_model("tiny_cnn")
    graph = aipuc.import_model(model)
    seen: list[list[int]] = []
    conv2d = kernels.conv2d

    def probe(*args, **kwargs):
        seen.append(_blas_threads())
        return conv2d(*args, **kwargs)

    monkeypatch.setattr(kernels, "conv2d", probe)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and all(threads == 2 for threads in before), before  # NumPy's BLAS
        graph.run(sample_inputs(model, seed=0))
        assert _blas_threads() == before
    assert seen and all(threads == [1] * len(before) for threads in seen), seen
