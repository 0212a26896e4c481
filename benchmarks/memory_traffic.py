"""Memory planning on the zoo: DMA bytes to and from DDR and L2 with and without promotion,
and each pool's planned peak against its lower bound.

Each model is quantized once (quantize_only, a few synthetic calibration samples) into the
work folder, then lowered (lower_only) with each memory configuration. Bytes moved are
counted from the emitted instruction stream: every DMA record (and fill) adds its bytes to
the memory it reads and to the memory it writes. With `--check` the stream is also run on
one held-out sample and compared bit for bit with the integer reference.

    python benchmarks/memory_traffic.py [--models tiny_cnn,resnet18] [--configs default,off]
        [--check] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine_info, markdown_table, quantized_folder

import aipuc
from aipuc.config import CompilerConfig
from aipuc.models import ZOO, build_model, sample_inputs

CONFIGS: dict[str, dict[str, object]] = {
    "default": {},
    "no promotion": {"enable_buffer_promotion": False},
    "split": {"split_buffer_promotion": True},
    "L1 1 MiB": {"l1_constraint": 1 << 20},
    "L2 4 MiB": {"l2_constraint": 4 << 20},
    "unpaged": {"page_memory": False},
}


def run(name: str, label: str, folder: Path, work: Path, check: bool) -> dict[str, object]:
    out = work / name / label.replace(" ", "_")
    config = CompilerConfig(output_dir=str(out), compiler_mode="lower_only", **CONFIGS[label])
    started = time.perf_counter()
    compiled = aipuc.compile(folder, config)
    seconds = time.perf_counter() - started
    report = json.loads((out / "compilation_report.json").read_text())
    moved = {  # the cycle model's bytes over the records model.elf runs: each DMA at both ends
        memory: entry["read"] + entry["written"]
        for memory, entry in report["performance"]["bytes"].items()
    }
    row: dict[str, object] = {
        "model": name,
        "config": label,
        "DDR MB": moved["ddr"] / 1e6,
        "L2 MB": moved["l2"] / 1e6,
    }
    for pool, entry in report["lowering"]["memory"].items():
        bound = entry["lower_bound"]
        ratio = entry["peak"] / bound if bound else 1.0
        row[f"{pool} peak/bound"] = f"{entry['peak'] / 1e6:.3f}/{bound / 1e6:.3f} ({ratio:.3f})"
    row["lower s"] = round(seconds, 1)
    if check:
        x = sample_inputs(build_model(name), seed=99)
        streamed, reference = compiled.run(x), compiled.run_quantized(x)
        same = all(np.array_equal(streamed[k], v) for k, v in reference.items())
        row["bit-exact"] = "yes" if same else "NO"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--calibration", type=int, default=2)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="aipuc_memory_"))
    rows = []
    for name in args.models.split(","):
        folder = quantized_folder(name, work, args.calibration)
        for label in args.configs.split(","):
            rows.append(run(name, label, folder, work, args.check))
            print(json.dumps(rows[-1]), flush=True)
    print(machine_info(), f"load average {os.getloadavg()[0]:.1f}")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print(markdown_table([{c: row.get(c, "") for c in columns} for row in rows], columns))


if __name__ == "__main__":
    main()
