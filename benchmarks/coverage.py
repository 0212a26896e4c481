"""Placement of real architectures: what runs on the accelerator, what on the host, and why.

Builds each architecture of `aipuc.models.architectures` at full size (as exporters emit
them), compiles it with the default config, and prints one markdown row per model: MACs and
nodes on each side, accelerated segments, the whole-model SQNR, whether the instruction
stream equals the integer reference bit for bit, and every host node with its reason.

    .venv/bin/python benchmarks/coverage.py                 # every architecture
    .venv/bin/python benchmarks/coverage.py crnn unet       # some of them
    .venv/bin/python benchmarks/coverage.py --quantize-only # placement and SQNR, no lowering

docs/coverage.md records its output.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

import numpy as np

import aipuc
from aipuc.config import CompilerConfig
from aipuc.models.architectures import ARCHITECTURES, input_feeds

CALIBRATION_SAMPLES = 9
"""8 calibrate, 1 is held apart to measure the SQNR."""


def measure(name: str, quantize_only: bool) -> dict:
    started = time.perf_counter()
    model = ARCHITECTURES[name]()
    samples = [input_feeds(model, seed) for seed in range(CALIBRATION_SAMPLES)]
    mode = "quantize_only" if quantize_only else "quantize_and_lower"
    with tempfile.TemporaryDirectory() as folder:
        config = CompilerConfig(output_dir=folder, compiler_mode=mode)
        compiled = aipuc.compile(model, config, samples)
        bit_exact = None
        if not quantize_only:
            sample = samples[-1]
            streamed, reference = compiled.run(sample), compiled.run_quantized(sample)
            bit_exact = all(np.array_equal(streamed[k], reference[k]) for k in reference)
        report = compiled.report
    placement = report["placement"]
    total = placement["macs_on_accelerator"] + placement["macs_on_host"]
    return {
        "name": name,
        "macs": total,
        "share": 100 * placement["macs_on_accelerator"] / max(total, 1),
        "nodes": (placement["nodes_on_accelerator"], placement["nodes_on_host"]),
        "segments": placement["segments"],
        "sqnr": report["quantization"]["output_sqnr_db"],
        "bit_exact": bit_exact,
        "host": placement["host_nodes"],
        "seconds": time.perf_counter() - started,
    }


def _host_summary(nodes: list[dict]) -> str:
    if not nodes:
        return "none"
    groups = Counter((n["op_type"], n["part"], n["reason"]) for n in nodes)
    return "; ".join(
        f"{count} x {op} ({part}): {reason}" for (op, part, reason), count in groups.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*ARCHITECTURES, []], default=[])
    parser.add_argument("--quantize-only", action="store_true")
    args = parser.parse_args()
    print(
        "| architecture | MACs | on the accelerator | nodes accel / host | segments "
        "| SQNR (dB) | stream == reference | seconds |"
    )
    print("|---|---:|---:|---:|---:|---|---|---:|")
    rows = [measure(name, args.quantize_only) for name in args.names or ARCHITECTURES]
    for row in rows:
        sqnr = ", ".join(f"{v:.1f}" for v in row["sqnr"].values()) or "-"
        exact = {None: "not run", True: "yes", False: "**NO**"}[row["bit_exact"]]
        print(
            f"| {row['name']} | {row['macs']:,} | {row['share']:.2f}% | {row['nodes'][0]} / "
            f"{row['nodes'][1]} | {row['segments']} | {sqnr} | {exact} | {row['seconds']:.0f} |"
        )
    print()
    for row in rows:
        print(f"- {row['name']}, host nodes: {_host_summary(row['host'])}")


if __name__ == "__main__":
    main()
