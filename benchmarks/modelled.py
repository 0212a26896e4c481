"""Modelled throughput of the zoo: aipuc's cycle model next to the vendor's published FPS.

Each model is compiled end to end (calibration, quantization, lowering) with the default
config plus any `--set field=value`; the table shows the compilation report's `performance`
entry: the sequential schedule on one core at `frequency`, modelled from aipuc.hardware,
not measured. The vendor figures are host-measured on 4 cores with overlap (design.md), for
the same model families, so they are a sanity anchor, not a like-for-like comparison.

    python benchmarks/modelled.py [--models resnet50,resnet18] [--calibration 4] \
        [--set enable_icr=false] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import machine_info, markdown_table

import aipuc
from aipuc.config import CompilerConfig
from aipuc.models import ZOO, build_model, sample_inputs
from aipuc.runtime.sim.cycles import MVM_LOSSES

VENDOR_FPS = {  # published, 4 cores, host-measured (design.md)
    "resnet50": ("ResNet-50", 1900),
    "resnet18": ("ResNet-18", 3900),
    "mobilenetv2": ("MobileNetV2", 3700),
    "yolov5s_head": ("YOLOv5s-640", 865),
}

COLUMNS = [
    "model",
    "cycles",
    "latency ms",
    "FPS",
    "MVM util.",
    "MVM util. with IMC loads",
    "DMA / DPU / MVM share",
    "roofline bound",
    "ratio to bound",
    "vendor FPS (family)",
]


def row(name: str, performance: dict) -> dict[str, str]:
    units, mvm, roofline = performance["units"], performance["mvm"], performance["roofline"]
    family, fps = VENDOR_FPS.get(name, ("", None))
    shares = " / ".join(f"{units[unit]['busy']:.0%}" for unit in ("dma", "dpu", "mvm"))
    cells = [
        name,
        f"{performance['cycles']:,}",
        f"{performance['latency_ms']:.2f}",
        f"{performance['fps']:,.0f}",
        f"{mvm['utilization']:.1%}" if mvm["utilization"] is not None else "n/a",
        f"{mvm['utilization_with_loads']:.1%}" if mvm["utilization"] is not None else "n/a",
        shares,
        f"{roofline['bound']} {roofline['bound_cycles']:,}",
        f"{roofline['ratio']}",
        f"{fps:,} ({family})" if fps else "",
    ]
    return dict(zip(COLUMNS, cells, strict=True))


LOSS_COLUMNS = ["model", "useful MACs", *MVM_LOSSES]


def loss_row(name: str, performance: dict) -> dict[str, str]:
    mvm = performance["mvm"]
    shares = [mvm["utilization"], *(mvm["losses"][loss] for loss in MVM_LOSSES)]
    cells = [name, *("n/a" if share is None else f"{share:.1%}" for share in shares)]
    return dict(zip(LOSS_COLUMNS, cells, strict=True))


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO))
    parser.add_argument("--calibration", type=int, default=4, help="calibration samples")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--work-dir", type=Path, help="keep the output folders here")
    args = parser.parse_args(argv)
    fields = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows, losses = [], []
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work_dir or Path(scratch)
        for name in args.models.split(","):
            model = build_model(name)
            samples = [sample_inputs(model, seed=seed) for seed in range(args.calibration)]
            config = CompilerConfig(output_dir=str(work / name), **fields)
            started = time.perf_counter()
            compiled = aipuc.compile(model, config, samples)
            seconds = time.perf_counter() - started
            print(f"{name}: compiled in {seconds:.1f} s", file=sys.stderr, flush=True)
            rows.append(row(name, compiled.report["performance"]))
            losses.append(loss_row(name, compiled.report["performance"]))
    print(machine_info())
    print(f"config: defaults{''.join(f', {k}={v}' for k, v in fields.items())}\n")
    print(markdown_table(rows, COLUMNS))
    print("\nWhere the MVM's record cycles go (shares of its capacity, cycles x 512 x 64):\n")
    print(markdown_table(losses, LOSS_COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
