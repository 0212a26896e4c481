"""Mutation testing of the numerics and the simulator, on demand (docs/numerics-testing.md).

    .venv/bin/pip install -e '.[dev,mutation]'
    nice -n 10 .venv/bin/python tools/mutation.py             # every group of tools/mutation.toml
    nice -n 10 .venv/bin/python tools/mutation.py numerics    # or some of them
    .venv/bin/python tools/mutation.py --mode survivors       # rerun the survivors (new tests)
    .venv/bin/python tools/mutation.py numerics --mode survivors --only '*requantize*'
    .venv/bin/python tools/mutation.py --mode confirm         # survivors under the CI budget
    .venv/bin/python tools/mutation.py --mode report          # the verdicts so far, running nothing
    .venv/bin/python tools/mutation.py --mode table           # the same as a markdown table

Each group runs in build/mutation/<group>/: a copy of the tree whose pyproject.toml holds
the group's `[tool.mutmut]` (its files, its test selection), with the oracle's Hypothesis
tests at the `mutation` budget (a quarter of CI's). `run` (the default) makes the mutants
and runs the ones without a verdict (mutmut keeps verdicts: an interrupted run resumes,
and the mutants of a function whose source changed are made anew and run again).
`survivors` reruns the survivors, the mutants no test executed (after adding tests) and the
timeouts. `confirm` reruns each survivor with the group's Hypothesis tests that execute its
function, under the CI budget: one that fails counts it as killed "at confirm"; with
`--wide`, the remaining survivors and the mutants no test of the group executes then run
the group's `also` tests.
`--fresh` starts a group over. Changing a group's `tests` in tools/mutation.toml does too,
whether or not `--fresh` is given: mutmut (3.8) drops every verdict of a run whose test
selection changed. To kill survivors, add tests to the selected files instead.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tools" / "mutation.toml"
WORK = ROOT / "build" / "mutation"
COPIED = ["aipuc", "tests", "docs", "README.md"]
MUTMUT = Path(sys.executable).parent / "mutmut"
# mutmut's exit codes per verdict (mutmut.stats.status_by_exit_code)
KILLED, SURVIVED = "killed", "survived"


def groups() -> list[dict]:
    return tomllib.loads(CONFIG.read_text())["group"]


def mutmut_section(group: dict) -> str:
    """The group's `[tool.mutmut]`, replacing the one of pyproject.toml."""
    lines = [
        "[tool.mutmut]",
        'source_paths = ["aipuc/"]',
        'also_copy = ["docs/", "README.md"]',  # read by tests (docs/isa.md is generated)
        f"only_mutate = {json.dumps(group['files'])}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]',
        # workers fork from a server that has run no test: a test that imported torch (the
        # live PyTorch comparisons) leaves threads that deadlock a forked worker
        'process_isolation = "forkserver"',
        f"pytest_add_cli_args_test_selection = {json.dumps(group['tests'])}",
    ]
    return "\n".join(lines) + "\n"


def prepare(group: dict) -> Path:
    """build/mutation/<group>/ with today's sources and the group's mutmut configuration."""
    folder = WORK / group["name"]
    folder.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "Output", ".hypothesis")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, folder / name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject = re.sub(r"\n\[tool\.mutmut\]\n(?:(?!\n\[).)*", "\n", pyproject, flags=re.S)
    (folder / "pyproject.toml").write_text(pyproject + "\n" + mutmut_section(group))
    return folder


def selected(group: dict, name: str) -> bool:
    patterns = group.get("mutants") or [
        file.removesuffix(".py").replace("/", ".") + ".*" for file in group["files"]
    ]
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def verdicts(group: dict) -> dict[str, str]:
    """mutmut's verdict of each of the group's mutants, with the survivors' confirmation."""
    from mutmut.stats import status_by_exit_code

    folder = WORK / group["name"]
    codes: dict[str, int | None] = {}
    for meta in (folder / "mutants").rglob("*.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    confirmed = confirmations(group)
    status = {}
    for name, code in codes.items():
        if selected(group, name):
            state = status_by_exit_code[code]
            if state in (SURVIVED, "no tests") and confirmed.get(name, {}).get("killed"):
                state = "killed at confirm"
            status[name] = state
    return status


def confirmations(group: dict) -> dict[str, dict]:
    path = WORK / group["name"] / "confirmed.json"
    return json.loads(path.read_text()) if path.exists() else {}


def generate(folder: Path) -> None:
    """mutmut's mutant generation alone (the first step of `mutmut run`), on today's sources.

    A mutated file newer than its mutants is mutated again: mutmut compares each function's
    source hash with the one it kept, drops the verdicts of the mutants of a changed function
    (they become "not checked", renumbered) and keeps the others'; unmutated modules are
    copied afresh. `run` needs it first: it runs mutmut only on the mutants without a verdict,
    and without it those of changed functions would not be known yet."""
    before = function_hashes(folder)
    code = "from mutmut.__main__ import create_mutants; create_mutants(1)"
    with (folder / "mutmut.log").open("a") as out:
        subprocess.run([sys.executable, "-c", code], cwd=folder, stdout=out, stderr=out, check=True)
    if function_hashes(folder) != before:
        # mutmut records which tests execute each function once, and afterwards only for new
        # tests: a new function would count as executed by no test ("no tests"), a changed
        # one keep its old callers. Without the record, mutmut records it all again.
        (folder / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)


def function_hashes(folder: Path) -> dict[str, dict[str, str]]:
    """mutmut's source hash of each mutated function, per file."""
    return {
        str(meta): json.loads(meta.read_text()).get("hash_by_function_name", {})
        for meta in (folder / "mutants").rglob("*.meta")
    }


def run_mutmut(
    group: dict, folder: Path, jobs: int, again: tuple[str, ...], only: list[str]
) -> None:
    """mutmut on the mutants without a verdict, and on those whose verdict is in `again`;
    with `only` (mutant-name globs), on those of them that match."""
    names = group.get("mutants", [])
    if (folder / "mutants").exists():
        generate(folder)
        wanted = ("not checked", *again)
        names = [
            name
            for name, state in verdicts(group).items()
            if state in wanted and (not only or any(fnmatch.fnmatch(name, o) for o in only))
        ]
        if not names:
            return
        confirmed = confirmations(group)
        if any(confirmed.pop(name, None) for name in names):
            text = json.dumps(confirmed, indent=1, sort_keys=True)
            (folder / "confirmed.json").write_text(text)
    env = dict(os.environ, AIPUC_HYPOTHESIS_PROFILE="mutation")
    command = [str(MUTMUT), "run", "--max-children", str(jobs), *names]
    with (folder / "mutmut.log").open("a") as out:
        subprocess.run(command, cwd=folder, env=env, stdout=out, stderr=out, check=False)


def run_tests(folder: Path, name: str, tests: list[str]) -> dict:
    """`pytest -x tests` on the mutant `name` under the CI budget: killed if one fails."""
    if not tests:
        return {"killed": False, "by": "no budgeted test executes it"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    env = dict(os.environ, AIPUC_HYPOTHESIS_PROFILE="ci", MUTANT_UNDER_TEST=name)
    done = subprocess.run(
        command, cwd=folder / "mutants", env=env, capture_output=True, text=True, check=False
    )
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, flags=re.M)
    return {"killed": done.returncode != 0, "by": failed[:1] or done.stdout[-300:]}


def confirm(group: dict, folder: Path, jobs: int, wide: bool, only: list[str]) -> None:
    """Rerun each survivor with the tests of the group that execute its function and whose
    budget the profile sets (the oracle's Hypothesis tests: the others ran whole already),
    under the CI budget; `wide`: then the remaining ones with the group's `also` files;
    with `only` (mutant-name globs), those of them that match."""
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    done = confirmations(group)
    stats = json.loads((folder / "mutants" / "mutmut-stats.json").read_text())
    covering = stats["tests_by_mangled_function_name"]
    budgeted = {
        file for file in group["tests"] if "oracle_settings(" in (folder / file).read_text()
    }

    def tests(name: str) -> list[str]:
        found = covering.get(mangled_name_from_mutant_name(name), [])
        return sorted(test for test in found if test.split("::")[0] in budgeted)

    def chosen(names: list[str]) -> list[str]:
        return [n for n in names if not only or any(fnmatch.fnmatch(n, o) for o in only)]

    def rerun(jobs_list: list[tuple[str, list[str]]]) -> None:
        with ThreadPoolExecutor(jobs) as pool:
            for (name, files), verdict in zip(
                jobs_list, pool.map(lambda job: run_tests(folder, *job), jobs_list), strict=True
            ):
                done[name] = dict(verdict, wide=files == group.get("also"))
                text = json.dumps(done, indent=1, sort_keys=True)
                (folder / "confirmed.json").write_text(text)

    states = verdicts(group)
    survivors = chosen([n for n, s in states.items() if s == SURVIVED and n not in done])
    rerun([(n, tests(n)) for n in survivors])
    also = group.get("also", [])
    if wide and also:  # after the first pass: its survivors are among the remaining ones
        remaining = [n for n, v in done.items() if not v["killed"] and not v.get("wide")]
        untested = [n for n, s in states.items() if s == "no tests" and n not in done]
        rerun([(n, also) for n in chosen(remaining + untested)])


def report(group: dict) -> None:
    status = verdicts(group)
    counts = Counter(status.values())
    run = sum(n for state, n in counts.items() if state != "not checked")
    detected = counts[KILLED] + counts["timeout"] + counts["killed at confirm"]
    print(
        f"{group['name']}: {len(status)} mutants, {run} run, {detected} killed "
        f"({100 * detected / max(1, run):.1f} %): {dict(sorted(counts.items()))}"
    )
    for name, state in sorted(status.items()):
        if state not in (KILLED, "timeout", "killed at confirm"):
            print(f"  {state}: {name}")


def table(chosen: list[dict]) -> None:
    """The per-group results as the markdown table of docs/numerics-testing.md."""
    print("| group | mutants | run | killed | timeout | survived | no test | score |")
    print("|---|---|---|---|---|---|---|---|")
    for group in chosen:
        counts = Counter(verdicts(group).values())
        run = sum(n for state, n in counts.items() if state != "not checked")
        killed = counts[KILLED] + counts["killed at confirm"]
        detected = killed + counts["timeout"]
        print(
            f"| {group['name']} | {sum(counts.values())} | {run} | {killed} | "
            f"{counts['timeout']} | {counts[SURVIVED]} | {counts['no tests']} | "
            f"{100 * detected / max(1, run):.1f} % |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="group names (default: all)")
    parser.add_argument(
        "--mode", choices=["run", "survivors", "confirm", "report", "table"], default="run"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--wide", action="store_true", help="rerun the survivors with the `also` files too"
    )
    parser.add_argument("--fresh", action="store_true", help="drop the groups' verdicts first")
    parser.add_argument("--only", nargs="+", default=[], help="only the mutants these globs match")
    args = parser.parse_args()
    chosen = [g for g in groups() if not args.groups or g["name"] in args.groups]
    if unknown := set(args.groups) - {g["name"] for g in groups()}:
        parser.error(f"unknown group(s) {sorted(unknown)}: see {CONFIG.relative_to(ROOT)}")
    if args.mode == "table":
        table(chosen)
        return 0
    for group in chosen:
        if args.mode != "report":
            if args.fresh:
                shutil.rmtree(WORK / group["name"], ignore_errors=True)
            folder = prepare(group)
            again = ("survived", "no tests", "timeout") if args.mode == "survivors" else ()
            if args.mode == "confirm":
                confirm(group, folder, args.jobs, args.wide, args.only)
            else:
                run_mutmut(group, folder, args.jobs, again, args.only)
        report(group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
