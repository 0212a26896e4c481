#!/usr/bin/env bash
# Mutation testing of the numerics, on demand (docs/numerics-testing.md).
#
#   .venv/bin/pip install -e '.[dev,mutation]'
#   tools/mutation.sh                      # every target below
#   tools/mutation.sh 'aipuc.numerics.*'   # or mutmut's mutant-name globs
#
# mutmut copies the tree to mutants/ (git-ignored), mutates the files of [tool.mutmut]
# only_mutate in pyproject.toml, and runs the tests of pytest_add_cli_args_test_selection that
# cover each mutated function. A new module (e.g. the simulator under aipuc/runtime/sim/) is
# added there and, by its dotted name, to TARGETS.
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
)
if (($#)); then TARGETS=("$@"); fi

MUTMUT=${MUTMUT:-.venv/bin/mutmut}
"$MUTMUT" run --max-children "${JOBS:-$(nproc)}" "${TARGETS[@]}" >/dev/null || true
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" - "${TARGETS[@]}" <<'PY'
"""The score over the selected mutants: killed (a test failed) or timed out, of those run."""
import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

codes = {}
for meta in Path("mutants").rglob("*.meta"):
    codes.update(json.loads(meta.read_text())["exit_code_by_key"])
status = {
    name: status_by_exit_code[code]
    for name, code in codes.items()
    if any(fnmatch.fnmatch(name, target) for target in sys.argv[1:])
}
counts = Counter(status.values())
run = sum(n for s, n in counts.items() if s != "not checked")
detected = counts["killed"] + counts["timeout"]
print(f"{detected} of {run} mutants killed ({100 * detected / max(1, run):.1f} %): {dict(counts)}")
for name, state in sorted(status.items()):
    if state not in ("killed", "timeout", "not checked"):
        print(f"{state}: {name}")
PY
