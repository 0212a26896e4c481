"""Lowering speed: wall and CPU seconds of every lowering pass and of emission, per model.

Each model is quantized once (compiler_mode quantize_only, a few synthetic calibration
samples) into the work folder; the timed part is what the driver's lower stage runs:
the `Phase.LOWERING` stages of `aipuc.pipeline` (every lowering pass, the module verified
after each) and the emission of the device program. Loading the quantized IR and writing
the output files are timed separately. Per pass the table gives CPU seconds (process
time): on a shared machine wall time mostly measures the other jobs.

    python benchmarks/lowering_speed.py [--models resnet50] [--repeat 1] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import machine_info, markdown_table, quantized_folder

from aipuc.config import CompilerConfig
from aipuc.ir_files import ir_context
from aipuc.lowering import stage
from aipuc.pipeline import Phase, build_passes, stages
from aipuc.quantization.artifacts import load_quantized_model


def measure(name: str, folder: Path, config: CompilerConfig, work: Path) -> dict[str, object]:
    wall = time.perf_counter()
    graph = load_quantized_model(folder / "quantized_model")
    load = time.perf_counter() - wall
    wall, cpu = time.perf_counter(), time.process_time()
    module, seconds = graph.module, {}
    ctx = ir_context()
    for lowering in stages(Phase.LOWERING):
        for module_pass in build_passes(lowering, config):
            started = time.process_time()
            module_pass.apply(ctx, module)
            applied = time.process_time()
            module.verify()
            seconds[module_pass.name] = seconds.get(module_pass.name, 0) + applied - started
            seconds["verify"] = seconds.get("verify", 0) + time.process_time() - applied
    started = time.process_time()
    program = stage.emit(module)
    seconds["emit"] = time.process_time() - started
    lower_wall, lower_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall = time.perf_counter()
    out = work / name / "lowered"
    stage.write(module, program, out / "lowered", out / "compiled_model", _write_json)
    write = time.perf_counter() - wall
    row: dict[str, object] = {
        "model": name,
        "records": program.records,
        "lower CPU s": round(lower_cpu, 2),
        "lower wall s": round(lower_wall, 2),
    }
    row.update({f"{name} CPU s": round(s, 2) for name, s in seconds.items()})
    row.update({"load s": round(load, 2), "write s": round(write, 2)})
    return row


def _write_json(data, path: Path) -> None:
    import json

    path.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--calibration", type=int, default=2)
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="aipuc_speed_"))
    rows = []
    for name in args.models.split(","):
        folder = quantized_folder(name, work, args.calibration)
        for _ in range(args.repeat):
            rows.append(measure(name, folder, CompilerConfig(), work))
    print(machine_info(), f"load average {os.getloadavg()[0]:.1f}")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print(markdown_table([{c: row.get(c, "") for c in columns} for row in rows], columns))


if __name__ == "__main__":
    main()
