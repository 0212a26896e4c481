"""Progress reporting: the stages' callbacks and the command line's bars."""

from __future__ import annotations

import io
import time

import onnx

from aipuc.cli import main
from aipuc.models import build_model
from aipuc.progress import ProgressBars, each, step, track


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_track_step_and_each_report_to_a_callback():
    calls: list[tuple[str, int, int]] = []
    assert list(track(_recorder(calls), "a", "xyz")) == list("xyz")
    with step(_recorder(calls), "b"):
        calls.append(("inside", 0, 0))
    counter = each(_recorder(calls), "c")
    assert counter is not None
    counter(1, 4)
    assert calls == [
        ("a", 0, 3), ("a", 1, 3), ("a", 2, 3), ("a", 3, 3),
        ("b", 0, 1), ("inside", 0, 0), ("b", 1, 1),
        ("c", 1, 4),
    ]  # fmt: skip
    assert list(track(None, "silent", [1, 2])) == [1, 2] and each(None, "silent") is None


def _recorder(calls):
    return lambda task, done, total: calls.append((task, done, total))


def test_bars_on_a_terminal_and_lines_elsewhere():
    terminal = _Terminal()
    bars = ProgressBars(terminal)
    for done in range(5):
        bars("calibrate", done, 4)
    bars("import", 0, 1)
    bars.close()  # an unfinished task's bar ends too
    drawn = terminal.getvalue()
    assert "calibrate" in drawn and "4/4" in drawn and "100%" in drawn and "import" in drawn

    log = io.StringIO()
    bars = ProgressBars(log)
    for done in range(9):
        bars("calibrate", done, 8)
    bars("import", 0, 1)
    bars("import", 1, 1)
    assert log.getvalue().splitlines() == [
        "  calibrate: 2/8",
        "  calibrate: 4/8",
        "  calibrate: 6/8",
        "  calibrate: 8/8",
    ]


def test_a_long_step_keeps_its_bar_moving(monkeypatch):
    """On a terminal, an open bar is redrawn every TICK_SECONDS while its step runs."""
    monkeypatch.setattr(ProgressBars, "TICK_SECONDS", 0.01)
    terminal = _Terminal()
    bars = ProgressBars(terminal)
    bars("lower", 0, 1)
    drawn = len(terminal.getvalue())
    deadline = time.monotonic() + 30
    while len(terminal.getvalue()) == drawn and time.monotonic() < deadline:
        time.sleep(0.01)  # nothing reports progress meanwhile: only the ticker draws
    assert len(terminal.getvalue()) > drawn
    bars.close()
    assert bars._ticker is not None and not bars._ticker.is_alive()


def test_compile_reports_progress_unless_quiet(tmp_path, capsys, monkeypatch):
    model_path = tmp_path / "tiny.onnx"
    onnx.save(build_model("tiny_cnn"), model_path)
    argv = ["compile", str(model_path), "--synthetic-calibration", "9", "-o", str(tmp_path / "o")]
    assert main(argv) == 0
    # 9 samples: 8 calibrate (a line per quarter); 1 is held apart to measure the SQNR, a
    # single step (no line; its bar is checked on the terminal below)
    lines = [f"  calibrate: {done}/8" for done in (2, 4, 6, 8)]
    assert capsys.readouterr().err.splitlines() == lines
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(argv) == 0
    for task in (
        "load",
        "calibrate",
        "quantize",
        "write quantized_model/",
        "SQNR",
        "lower",
        "emit",
    ):
        assert f"  {task}: 100%" in terminal.getvalue(), task
    terminal.truncate(0)
    assert main([*argv, "-q"]) == 0
    assert terminal.getvalue() == "" and capsys.readouterr().err == ""
