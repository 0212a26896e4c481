"""Lowering speed: seconds of every lowering pass and of emission, per model.

Each model is quantized once (compiler_mode quantize_only, a few synthetic calibration
samples) into the work folder; the timed part is a `compiler_mode=lower_only` compilation of
that folder through the public `aipuc.compile`, exactly as a user runs it. The per-pass
seconds are the compilation report's (`stages[].passes`: wall seconds of each pass, without
the verification after it); the stage rows are the driver's stages (load, each lowering
stage with its verifications, emit with writing the files). The whole run is also timed in
CPU seconds (process time): on a shared machine wall time partly measures the other jobs.

    python benchmarks/lowering_speed.py [--models resnet50] [--repeat 1] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import machine_info, markdown_table, quantized_folder

import aipuc
from aipuc.config import CompilerConfig


def measure(name: str, folder: Path, work: Path) -> dict[str, object]:
    """One lower_only compilation of the quantize_only output `folder`; a table row."""
    output_dir = work / name / "lowered"
    config = CompilerConfig(output_dir=str(output_dir), compiler_mode="lower_only")
    wall, cpu = time.perf_counter(), time.process_time()
    aipuc.compile(str(folder), config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = json.loads((output_dir / "compilation_report.json").read_text())
    row: dict[str, object] = {
        "model": name,
        "records": next(s["records"] for s in report["stages"] if s["stage"] == "emit"),
        "CPU s": round(cpu, 2),
        "wall s": round(wall, 2),
    }
    for stage in report["stages"]:
        row[f"{stage['stage']} s"] = round(stage["seconds"], 2)
        for run in stage.get("passes", []):
            row[f"{run['pass']} s"] = round(row.get(f"{run['pass']} s", 0) + run["seconds"], 2)
    return row


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--calibration", type=int, default=2)
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="aipuc_speed_"))
    rows = []
    for name in args.models.split(","):
        folder = quantized_folder(name, work, args.calibration)
        rows.extend(measure(name, folder, work) for _ in range(args.repeat))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = markdown_table([{c: row.get(c, "") for c in columns} for row in rows], columns)
    text = f"{machine_info()}, load average {os.getloadavg()[0]:.1f}\n\n{table}"
    print(text)
    return text


if __name__ == "__main__":
    main()
