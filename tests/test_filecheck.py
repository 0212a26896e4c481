"""Runs every filecheck test (`lit -v filecheck/`) so that one `pytest` also covers them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FILECHECK_DIR = Path(__file__).resolve().parents[1] / "filecheck"


def _lit_command() -> list[str]:
    """lit from the environment running pytest, so it finds that env's xdsl-opt and filecheck."""
    script = Path(sys.executable).parent / "lit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys, lit.main; sys.exit(lit.main.main())"]


def test_filecheck():
    result = subprocess.run(
        [*_lit_command(), "-v", str(FILECHECK_DIR)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"lit failed:\n{result.stdout}\n{result.stderr}"
