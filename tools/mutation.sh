#!/usr/bin/env bash
# Mutation testing of the numerics and the simulator, on demand (docs/numerics-testing.md).
#
#   .venv/bin/pip install -e '.[dev,mutation]'
#   tools/mutation.sh                       # every target below (resumes an interrupted run)
#   tools/mutation.sh 'aipuc.numerics.*'    # or some of them, by mutmut's mutant-name globs
#   MODE=survivors tools/mutation.sh        # rerun only the survivors (after adding tests)
#   MODE=report tools/mutation.sh           # only print the score and the survivors
#   rm -rf mutants                          # start over (after changing the test selection)
#
# mutmut copies the tree to mutants/ (git-ignored), mutates the files of [tool.mutmut]
# only_mutate in pyproject.toml, and runs, for each mutant, the tests of
# pytest_add_cli_args_test_selection that execute the mutated function, fastest first, until
# one fails. Verdicts are kept in mutants/: a second run tests only the mutants without one
# (mutmut resets those of functions whose source changed), so a run on two shared cores can
# be spread over several sittings. A new module is added to only_mutate and, by its dotted
# name, to TARGETS.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(
    'aipuc.numerics.*'
    'aipuc.quantization.observers.*'
    'aipuc.runtime.integer_reference.*'
    # the exact GEMM of kernels.py (the float kernels are checked by onnxruntime instead)
    'aipuc.runtime.kernels.x_exact_int_matmul*'
    'aipuc.runtime.kernels.x_check_exact_integer_depth*'
    'aipuc.runtime.kernels.x__max_magnitude*'
    'aipuc.runtime.kernels.x__to_int64*'
    'aipuc.runtime.kernels.x__float32_exact_terms*'
    'aipuc.runtime.kernels.x__elementwise_exact_dtype*'
    'aipuc.runtime.kernels.x__gemm*'
    'aipuc.runtime.kernels.x__add_bias*'
    # the stream simulator: record decoding, memories, each unit's execution, the device
    'aipuc.runtime.sim.*'
)
if (($#)); then TARGETS=("$@"); fi

MUTMUT=${MUTMUT:-.venv/bin/mutmut}
PYTHON=${PYTHON:-.venv/bin/python}
MODE=${MODE:-resume}

# mutants (prints names) | score (prints the score and the survivors)
verdicts() {
    "$PYTHON" - "$1" "${TARGETS[@]}" <<'PY'
"""The selected mutants' verdicts: killed (a test failed) or timed out count as detected."""
import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

what, targets = sys.argv[1], sys.argv[2:]
codes = {}
for meta in Path("mutants").rglob("*.meta"):
    codes.update(json.loads(meta.read_text())["exit_code_by_key"])
status = {
    name: status_by_exit_code[code]
    for name, code in codes.items()
    if any(fnmatch.fnmatch(name, target) for target in targets)
}
if what in ("unchecked", "survivors"):
    wanted = "not checked" if what == "unchecked" else "survived"
    sys.stdout.write("".join(f"{name}\n" for name, state in status.items() if state == wanted))
else:
    counts = Counter(status.values())
    run = sum(n for s, n in counts.items() if s != "not checked")
    detected = counts["killed"] + counts["timeout"]
    print(f"{detected} of {run} mutants killed ({100 * detected / max(1, run):.1f} %), "
          f"{counts['not checked']} not run yet: {dict(counts)}")
    for name, state in sorted(status.items()):
        if state not in ("killed", "timeout", "not checked"):
            print(f"{state}: {name}")
PY
}

if [[ $MODE != report ]]; then
    if [[ ! -d mutants ]]; then
        names=("${TARGETS[@]}")  # the first run creates the mutants
    else
        mapfile -t names < <(verdicts "$([[ $MODE == survivors ]] && echo survivors || echo unchecked)")
    fi
    if ((${#names[@]})); then
        "$MUTMUT" run --max-children "${JOBS:-$(nproc)}" "${names[@]}" >/dev/null || true
    fi
fi
verdicts score
