"""The output directory: its layout, and writing it so a failure leaves nothing half-written.

Everything a compilation writes goes to a staging folder inside `output_dir`; only when
the compilation has finished are its entries moved into place. A failed compilation leaves
the output directory as it was, plus a complete `compilation_report.json` and
`compilation_log.txt` that say which stage failed and why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from aipuc.errors import ConfigError

INPUT_MODEL = "input_model"
QUANTIZED_MODEL = "quantized_model"
LOWERED = "lowered"
COMPILED_MODEL = "compiled_model"
REPORT_FILE = "compilation_report.json"
LOG_FILE = "compilation_log.txt"
QUANTIZED_IR = "model.mlir"
CALIBRATED_IR = "calibrated.mlir"
CALIBRATION_STATS_FILE = "calibration_stats.json"
MANIFEST_FILE = "manifest.json"


def inside(root: Path, relative: str | os.PathLike[str], what: str) -> Path:
    """`root / relative`, refusing absolute paths and paths that climb out of `root`.

    User-chosen file names (debug dumps, dump folders) are always placed inside the
    output directory; the compiler never writes anywhere else.
    """
    candidate = Path(relative)
    resolved = (root / candidate).resolve()
    if candidate.is_absolute() or not resolved.is_relative_to(root.resolve()):
        raise ConfigError(
            f"{what} '{relative}' must be a relative path inside the output directory; "
            "use a plain name such as 'debug'"
        )
    return root / candidate


class StagedOutput:
    """A staging folder inside `output_dir` whose entries replace the old ones on commit."""

    def __init__(self, output_dir: Path, *, clean: bool):
        self.output_dir = output_dir
        if output_dir.exists() and not output_dir.is_dir():
            raise ConfigError(f"output_dir '{output_dir}' exists and is not a directory")
        try:
            if clean and output_dir.exists():
                shutil.rmtree(output_dir)
            output_dir.mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix=".staging-", dir=output_dir))
        except OSError as error:
            raise ConfigError(
                f"output_dir '{output_dir}' cannot be used: {error.strerror or error}"
            ) from None

    def path(self, *parts: str) -> Path:
        target = self.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, data: object, *parts: str) -> Path:
        target = self.path(*parts)
        write_json_file(target, data)
        return target

    def commit(self) -> None:
        for entry in sorted(self.root.iterdir()):
            destination = self.output_dir / entry.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.exists() or destination.is_symlink():
                destination.unlink()
            entry.rename(destination)
        self.root.rmdir()

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _jsonable(value: object) -> object:
    """JSON for the NumPy scalars and paths that reports carry."""
    if hasattr(value, "tolist"):
        return value.tolist()  # type: ignore[no-any-return]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json_file(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
