"""`make mutation`: mutation testing of the modules that carry correctness promises (docs/testing.md).

One mutmut run per module of ``[tool.mutation]`` in pyproject.toml, each with only the tests that own that module,
each in its own copy of the working tree under ``reports/mutation/<module>/`` (mutmut writes its ``mutants/`` tree
there; the checkout is never touched). Usage::

    python -m tests.mutation [MODULE ...]     # all modules by default; e.g. `make mutation MODULES=config`
    python -m tests.mutation --recheck MODULE # after adding tests: the last run's survivors against today's tests

Prints one line per module (mutants tried, killed, survived, ...) and writes them to
``reports/mutation/summary.json``. Inspect a survivor with ``cd reports/mutation/<module> && mutmut show <name>``.
Not part of ``make test`` or CI: a full run takes tens of minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "mutation"
# What mutmut copies next to the mutated packages so that the tests can import and read everything they use.
_SOURCE_PATHS = ["lambdas", "consumer", "shared"]
_ALSO_COPY = [
    "app.py",
    "cdk.json",
    "package.json",
    "package-lock.json",
    "producer",
    "pipeline",
    "ops",
    "docs",
    "benchmarks",
    "README.md",
    "Makefile",
]


def modules() -> list[dict[str, Any]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutation"]["modules"]


def _copy_tree(dest: Path) -> None:
    """The working tree as it is (tracked and new files, ignored ones left out) into ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file() and not src.is_symlink():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _configure(work: Path, module: dict[str, Any]) -> None:
    """mutmut reads [tool.mutmut] from the pyproject.toml of the directory it runs in: this module's settings."""
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    with (work / "pyproject.toml").open("a") as f:
        f.write(
            "\n[tool.mutmut]\n"
            f"source_paths = {_toml_list(_SOURCE_PATHS)}\n"
            f"only_mutate = {_toml_list(module['mutate'])}\n"
            f"also_copy = {_toml_list(_ALSO_COPY)}\n"
            f"pytest_add_cli_args = {_toml_list(['-p', 'no:cacheprovider', '-q'])}\n"
            f"pytest_add_cli_args_test_selection = {_toml_list(module['tests'])}\n"
            "use_git_change_detection = false\n"
        )


def run_module(module: dict[str, Any], max_children: int) -> dict[str, Any]:
    name = module["name"]
    work = OUT / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _copy_tree(work)
    _configure(work, module)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    log = work / "mutmut.log"
    with log.open("w") as out:
        code = subprocess.run(
            [mutmut, "run", "--max-children", str(max_children)], cwd=work, env=env, stdout=out, stderr=out
        ).returncode
        stats = _stats(work, env, mutmut, out)
    return {"module": name, "exit_code": code, **stats}


def _stats(work: Path, env: dict[str, str], mutmut: str, out: Any) -> dict[str, Any]:
    subprocess.run([mutmut, "export-cicd-stats"], cwd=work, env=env, stdout=out, stderr=out, check=False)
    survivors = subprocess.run([mutmut, "results"], cwd=work, env=env, capture_output=True, text=True).stdout
    (work / "survivors.txt").write_text(survivors)
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    return json.loads(stats_file.read_text()) if stats_file.exists() else {}


def recheck(module: dict[str, Any], max_children: int) -> dict[str, Any]:
    """Run the survivors of the last full run of ``module`` again, with the tests as they are now."""
    work = OUT / module["name"]
    shutil.rmtree(work / "tests")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    _configure(work, module)
    # Which tests cover which function is collected again, so that new tests are run for the mutants they reach.
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    listed = subprocess.run([mutmut, "results"], cwd=work, env=env, capture_output=True, text=True).stdout
    names = [line.split(":")[0].strip() for line in listed.splitlines() if line.endswith(": survived")]
    with (work / "mutmut-recheck.log").open("w") as out:
        code = subprocess.run(
            [mutmut, "run", "--max-children", str(max_children), *names], cwd=work, env=env, stdout=out, stderr=out
        ).returncode
        return {"module": module["name"], "exit_code": code, "rechecked": len(names), **_stats(work, env, mutmut, out)}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--recheck"]:
        argv = argv[1:]
        runner = recheck
    else:
        runner = run_module
    wanted = set(argv)
    known = {m["name"] for m in modules()}
    if wanted - known:
        print(f"unknown module(s) {sorted(wanted - known)}; known: {sorted(known)}", file=sys.stderr)
        return 2
    max_children = int(os.environ.get("MUTATION_JOBS", "2"))
    results = []
    OUT.mkdir(parents=True, exist_ok=True)
    for module in modules():
        if wanted and module["name"] not in wanted:
            continue
        result = runner(module, min(max_children, module.get("jobs", max_children)))
        results.append(result)
        tried = result.get("total", 0)
        killed = result.get("killed", 0)
        score = f"{100 * killed / tried:.1f} %" if tried else "-"
        print(
            f"{result['module']:<10} tried {tried:>5}  killed {killed:>5} ({score})  survived "
            f"{result.get('survived', 0):>4}  timeout {result.get('timeout', 0)}  no tests {result.get('no_tests', 0)}"
            f"  (details: reports/mutation/{result['module']}/survivors.txt, mutmut.log)",
            flush=True,
        )
    summary = OUT / "summary.json"
    previous = json.loads(summary.read_text()) if summary.exists() else {}
    previous.update({r["module"]: r for r in results})
    summary.write_text(json.dumps(previous, indent=2) + "\n")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
