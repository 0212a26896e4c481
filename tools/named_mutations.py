"""The mutations named in issue 11, each applied to a scratch copy of the tree and tested.

    .venv/bin/python tools/named_mutations.py            # every mutation below
    .venv/bin/python tools/named_mutations.py add_shift  # or some of them, by name
    .venv/bin/python tools/named_mutations.py --quick    # stop at each one's first catching test

For each mutation the tracked files are copied to a temporary folder, the one-line fault is
applied there (the original line must occur exactly once), and the default CI suite runs on the
copy (`pytest` from the copy, `PYTHONPATH` pointing at it: the copy's `aipuc` is the one
imported, checked first). The numerics selection (the `tests` and `also` files of the
numerics groups of tools/mutation.toml) runs first, whole, so every catching test there is
listed; only if none fails does the rest of the default suite run. A mutation nobody catches
exits non-zero. The results are recorded in docs/numerics-testing.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMERICS_GROUPS = ("numerics", "observers", "integer_reference", "exact_gemm")


@dataclass(frozen=True)
class Mutation:
    path: str
    original: str
    mutated: str
    what: str


MUTATIONS = {
    "multiplier_floor": Mutation(
        "aipuc/numerics.py",
        "multiplier = np.rint(np.ldexp(fraction, 31)).astype(np.int64)",
        "multiplier = np.floor(np.ldexp(fraction, 31)).astype(np.int64)",
        "quantize_multiplier rounds the Q31 mantissa with floor instead of half to even",
    ),
    "add_shift_8": Mutation(
        "aipuc/runtime/integer_reference.py",
        "ADD_LEFT_SHIFT = 20",
        "ADD_LEFT_SHIFT = 8",
        "add/sub align their operands with << 8 instead of << 20",
    ),
    "histogram_bins_1024": Mutation(
        "aipuc/quantization/observers.py",
        "HISTOGRAM_BINS = 2048",
        "HISTOGRAM_BINS = 1024",
        "the histogram observer uses 1024 bins instead of torch's 2048",
    ),
    "zero_point_floor": Mutation(
        "aipuc/numerics.py",
        "zero_point = np.clip(qmin - np.rint(lo / scale).astype(np.int64)",
        "zero_point = np.clip(qmin - np.floor(lo / scale).astype(np.int64)",
        "choose_qparams rounds lo / scale with floor instead of rint",
    ),
    "shift_ties_down": Mutation(
        "aipuc/numerics.py",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)) - 1, 0)",
        "rounding_right_shift: ties towards -inf instead of +inf",
    ),
    "shift_ties_even": Mutation(
        "aipuc/numerics.py",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0))"
        " - 1 + (np.right_shift(x, shift) & 1), 0)",
        "rounding_right_shift: ties to even instead of towards +inf",
    ),
    "shift_ties_away": Mutation(
        "aipuc/numerics.py",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0))"
        " - (x < 0), 0)",
        "rounding_right_shift: ties away from zero instead of towards +inf",
    ),
    "shift_floor": Mutation(
        "aipuc/numerics.py",
        "half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)",
        "half = np.where(shift > 0, 0, 0)",
        "rounding_right_shift: a plain >> (floor) instead of rounding",
    ),
}


def scratch_copy(mutation: Mutation, folder: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    target = folder / mutation.path
    text = target.read_text()
    if text.count(mutation.original) != 1:
        sys.exit(
            f"{mutation.path}: '{mutation.original}' must occur exactly once; update {__file__}"
        )
    target.write_text(text.replace(mutation.original, mutation.mutated))


def failures(
    folder: Path, tests: list[str], what: str, quick: bool = False
) -> tuple[list[str], str]:
    """The failing test ids of `pytest tests` run on the copy (`quick`: up to the first),
    and a summary."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    first = ["-x"] if quick else []
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rf", *first, *tests]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    passed = re.findall(r"(\d+) passed", done.stdout)
    summary = f"{what}: {len(failed)} failed, {passed[-1] if passed else 0} passed"
    return failed, summary


def numerics_selection() -> list[str]:
    """The test files of the mutation groups these mutations fall in, each once."""
    config = tomllib.loads((ROOT / "tools" / "mutation.toml").read_text())
    files = [
        test
        for group in config["group"]
        if group["name"] in NUMERICS_GROUPS
        for test in group["tests"] + group.get("also", [])
    ]
    return list(dict.fromkeys(files))


def check(name: str, mutation: Mutation, quick: bool) -> bool:
    with tempfile.TemporaryDirectory(prefix=f"aipuc-{name}-") as tmp:
        folder = Path(tmp)
        scratch_copy(mutation, folder)
        imported = subprocess.run(
            [sys.executable, "-c", "import aipuc; print(aipuc.__file__)"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(folder)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not imported.startswith(str(folder)):
            sys.exit(f"the copy's aipuc is not the one imported ({imported})")
        selection = numerics_selection()
        failed, summary = failures(folder, selection, "the numerics selection", quick)
        if not failed:  # the rest of the default suite
            rest = [f"--ignore={t}" for t in selection]
            failed, summary = failures(
                folder, ["tests", *rest], "the rest of the default suite", quick
            )
    print(f"{name}: {mutation.what}")
    print(f"    {summary}")
    for test in failed:
        print(f"    caught by {test}")
    return bool(failed)


def main(names: list[str]) -> int:
    quick = "--quick" in names
    names = [name for name in names if name != "--quick"]
    unknown = set(names) - set(MUTATIONS)
    if unknown:
        sys.exit(
            f"unknown mutation(s) {', '.join(sorted(unknown))}; choose from {', '.join(MUTATIONS)}"
        )
    missed = [name for name in names or MUTATIONS if not check(name, MUTATIONS[name], quick)]
    if missed:
        print(f"NOT CAUGHT: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
