"""Progress of the compilation's long steps.

Stages report through a `ProgressCallback`, `progress(task, done, total)`, and never draw
anything themselves: the library is silent unless its caller passes a callback, and the
command line passes `ProgressBars` (none with `aipuc compile -q`). A stage wraps its loops
in `track` and its single long steps in `step`:

    for op in track(progress, "lower", ops): ...
    with step(progress, "write IR"): save_module(path, module)
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TypeVar

ProgressCallback = Callable[[str, int, int], None]
"""progress(task, done, total): `done` of `total` units of `task` are finished."""

T = TypeVar("T")


def track(progress: ProgressCallback | None, task: str, items: Sequence[T]) -> Iterator[T]:
    """The items of `items`, reporting each one done as `task` (nothing if `progress` is None)."""
    total = len(items)
    if progress is not None:
        progress(task, 0, total)
    for done, item in enumerate(items, start=1):
        yield item
        if progress is not None:
            progress(task, done, total)


@contextmanager
def step(progress: ProgressCallback | None, task: str) -> Iterator[None]:
    """A single long step: reported as 0 of 1 when it starts and 1 of 1 when it ends."""
    if progress is not None:
        progress(task, 0, 1)
    yield
    if progress is not None:
        progress(task, 1, 1)


def each(progress: ProgressCallback | None, task: str) -> Callable[[int, int], None] | None:
    """A `(done, total)` callback reporting as `task`, for APIs that count for themselves."""
    if progress is None:
        return None
    return lambda done, total: progress(task, done, total)


class ProgressBars:
    """The command line's `ProgressCallback`: a tqdm bar per running task on a terminal,
    whose elapsed time keeps ticking while a long step runs (nothing on screen stands still
    for more than `TICK_SECONDS`); elsewhere (logs, pipes, where an error must stay one
    line) a line per quarter of a task that counts units (calibration samples) only."""

    TICK_SECONDS = 1.0

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self._bars: dict[str, object] = {}
        self._lock = threading.Lock()  # the ticker redraws from its own thread
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, task: str, done: int, total: int) -> None:
        if self.interactive:
            self._draw(task, done, total)
        elif total > 1 and done and (done == total or done % max(1, total // 4) == 0):
            print(f"  {task}: {done}/{total}", file=self.stream, flush=True)

    def _draw(self, task: str, done: int, total: int) -> None:
        from tqdm import tqdm

        with self._lock:
            bar = self._bars.get(task)
            if bar is None:
                bar = self._bars[task] = tqdm(
                    total=total, desc=f"  {task}", file=self.stream, leave=True, dynamic_ncols=True
                )
            assert isinstance(bar, tqdm)
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
                del self._bars[task]
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="aipuc-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        """Redraw the open bars every TICK_SECONDS, so their elapsed time moves on."""
        while not self._stop.wait(self.TICK_SECONDS):
            with self._lock:
                for bar in self._bars.values():
                    bar.refresh()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop the ticker; end the bars of tasks that did not finish (a failed compilation)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            for bar in self._bars.values():
                bar.close()  # type: ignore[attr-defined]
            self._bars.clear()
