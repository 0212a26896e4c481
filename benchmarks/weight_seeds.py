"""Output SQNR over many random-weight instances of one zoo architecture, two configs paired.

One random-weight network amplifies every rounding difference (docs/benchmarks.md: float
sensitivity), so a change that makes one op more accurate can move one network's output SQNR
either way. This measures a change the way the noise allows: the zoo builder with `--seeds`
weight seeds, each quantized twice (the default config and the default plus `--change`), the
mean per-sample SQNR of each against float32 onnxruntime on `--held-out` samples, and the
paired difference's mean and standard error over the seeds.

    python benchmarks/weight_seeds.py --model efficientnet_b0 --seeds 16 --held-out 24 \\
        --change '{"simplify_mac_before_after_lut": false}'
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from common import machine_info, markdown_table, ort_session, sqnr_db

import aipuc
from aipuc.models import ZOO, sample_inputs

CALIBRATION = 4
HELD_OUT_SEED_OFFSET = 2000  # apart from calibration (0..) and zoo_sqnr's held-out (1000..)
TABLE_COLUMNS = ("weight seed", "default dB", "changed dB", "difference dB")


def mean_sample_sqnr(
    model_name: str, weight_seed: int, held_out: int, fields: Mapping[str, object], work: Path
) -> float:
    """Mean over held-out samples of the per-sample output SQNR of `run_quantized`."""
    model = ZOO[model_name].build(seed=weight_seed)  # type: ignore[call-arg]
    calibration = [sample_inputs(model, seed) for seed in range(CALIBRATION)]
    config = aipuc.CompilerConfig(output_dir=work, compiler_mode="quantize_only", **fields)
    compiled = aipuc.compile(model, config, calibration=calibration)
    session = ort_session(model)
    names = [output.name for output in model.graph.output]
    values = []
    for index in range(held_out):
        sample = sample_inputs(model, HELD_OUT_SEED_OFFSET + index)
        reference = np.concatenate([np.ravel(a) for a in session.run(names, sample)])
        outputs = compiled.run_quantized(sample)
        values.append(sqnr_db(reference, np.concatenate([np.ravel(outputs[n]) for n in names])))
    return float(np.mean(values))


def run_benchmark(
    model_name: str, seeds: Sequence[int], held_out: int, change: Mapping[str, object]
) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="aipuc-seeds-") as scratch:
        for seed in seeds:
            default, changed = (
                mean_sample_sqnr(model_name, seed, held_out, fields, Path(scratch, f"{seed}-{i}"))
                for i, fields in enumerate(({}, change))
            )
            rows.append(
                {
                    "weight seed": seed,
                    "default dB": default,
                    "changed dB": changed,
                    "difference dB": changed - default,
                }
            )
    return rows


def summary(rows: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """Paired difference over the seeds: mean, standard error, how many seeds it favours."""
    differences = np.array([row["difference dB"] for row in rows], np.float64)
    error = differences.std(ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else 0.0
    return {
        "mean difference dB": float(differences.mean()),
        "standard error dB": float(error),
        "seeds where the change is better": int((differences > 0).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_b0", choices=sorted(ZOO))
    parser.add_argument("--seeds", type=int, default=16, help="weight seeds 1..N")
    parser.add_argument("--held-out", type=int, default=24)
    parser.add_argument(
        "--change",
        type=json.loads,
        default={"simplify_mac_before_after_lut": False},
        help="CompilerConfig fields (JSON) of the changed config",
    )
    args = parser.parse_args()
    rows = run_benchmark(args.model, range(1, args.seeds + 1), args.held_out, args.change)
    print(f"{args.model}, {args.seeds} weight seeds, change {json.dumps(args.change)}")
    print(machine_info())
    print(markdown_table(rows, TABLE_COLUMNS))
    print(json.dumps(summary(rows)))


if __name__ == "__main__":
    main()
