"""The Makefile is the single entry point: `make help` lists every target, and every target has a recipe; what
`make synth` prints around the app's own output (quiet on success, one line after a configuration error), and its
Python check."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from app import PIPELINE_STACK_ID

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()


def _phony() -> set[str]:
    (line,) = [line for line in MAKEFILE.splitlines() if line.startswith(".PHONY:")]
    return set(line.split(":", 1)[1].split())


def _targets_with_recipe() -> set[str]:
    targets = set()
    lines = MAKEFILE.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^([a-z][a-z-]*):", line)
        if match and ((i + 1 < len(lines) and lines[i + 1].startswith("\t")) or line.split(":", 1)[1].strip()):
            targets.add(match.group(1))
    return targets


def test_every_phony_target_has_a_rule():
    assert _phony() <= _targets_with_recipe(), _phony() - _targets_with_recipe()


def test_help_lists_every_target():
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.startswith("make ")}
    assert listed == _phony() - {"help"}


# --- what `make synth` prints: the recipe run in a scratch copy with a stand-in `cdk` -------------------------
FAKE_CDK = """#!/usr/bin/env bash
echo "$@" > "$FAKE_CDK_ARGS"
case "$FAKE_CDK_RUN" in
  config)
    printf "invalid configuration in cdk.json context 'datalake' (1):\\n  - datalake.prefix = 'X': must be ...\\n" >&2
    printf '\\033[31m.venv/bin/python app.py: Subprocess exited with error 2\\033[39m\\n' >&2
    exit 1 ;;
  crash)
    printf 'Traceback (most recent call last):\\nRuntimeError: boom\\n' >&2
    printf '.venv/bin/python app.py: Subprocess exited with error 1\\n' >&2
    exit 1 ;;
esac
"""
TEMPLATES_LINE = "Templates:      cdk.out/*.template.json, cdk.out/assembly-*/ (one folder per stage)"


def _scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the Makefile with its installs marked done and a fake `cdk` first on PATH."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "Makefile").write_text(MAKEFILE)
    for name in ("pyproject.toml", "package.json", "package-lock.json"):
        (work / name).write_text("")
    for stamp in (".venv/.installed", "node_modules/.installed"):
        (work / stamp).parent.mkdir()
        (work / stamp).touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cdk").write_text(FAKE_CDK)
    (bin_dir / "cdk").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CDK_ARGS": str(tmp_path / "args")}
    return work, env


def _make(work: Path, env: dict[str, str], *args: str, run: str = "ok") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=work,
        env={**env, "FAKE_CDK_RUN": run},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_configuration_error_is_followed_by_one_line_only(tmp_path):
    work, env = _scratch(tmp_path)
    result = _make(work, env, "synth", run="config")
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "invalid configuration in cdk.json context 'datalake' (1):",
        "  - datalake.prefix = 'X': must be ...",
    ]
    (after,) = lines[2:]
    # "make[1]: ..." when the test itself runs under make (make test).
    assert re.match(r"make(\[\d+\])?: \*\*\* ", after) and "synth" in after, lines
    assert result.stdout == ""


def test_a_crash_before_any_template_says_so_without_the_clis_line(tmp_path):
    work, env = _scratch(tmp_path)
    result = _make(work, env, "synth", run="crash")
    assert result.returncode != 0
    assert "RuntimeError: boom" in result.stderr
    assert "synth failed before any template was written" in result.stderr
    assert "Subprocess exited" not in result.stderr


def test_a_successful_synth_prints_only_where_the_output_is(tmp_path):
    work, env = _scratch(tmp_path)
    result = _make(work, env, "synth")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == TEMPLATES_LINE
    # The one top-level stack app.py defines is named (see the next test), and no online notices are fetched.
    assert (tmp_path / "args").read_text().split() == ["synth", "--quiet", "--no-notices", PIPELINE_STACK_ID]


def test_naming_the_pipeline_stack_silences_the_clis_stack_list(tmp_path):
    # The pinned CLI on a cloud assembly with a second top-level stack, as CDK Pipelines adds for a tooling region
    # that differs from the stages'. Without a stack name this CLI prints "Successfully synthesized to ..." and
    # "Supply a stack id (Pipeline, cross-region-stack-...) to display its template." (run once by hand, not here:
    # each CLI run costs seconds); with the stack the Makefile names, nothing.
    from aws_cdk import App, CfnResource, Environment, Stack

    from app import feature_flags

    assembly = tmp_path / "assembly"
    app = App(outdir=str(assembly), context=feature_flags())
    for stack_id, region in (
        (PIPELINE_STACK_ID, "us-east-1"),
        ("cross-region-stack-111111111111-eu-west-1", "eu-west-1"),
    ):
        stack = Stack(app, stack_id, env=Environment(account="111111111111", region=region))
        CfnResource(stack, "Handle", type="AWS::CloudFormation::WaitConditionHandle")
    app.synth()
    env = {
        **os.environ,
        "PATH": f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
        "CDK_DISABLE_VERSION_CHECK": "1",
    }

    command = [str(ROOT / "node_modules/.bin/cdk"), "synth", "--quiet", "--no-notices", "--app", str(assembly)]
    result = subprocess.run(
        [*command, PIPELINE_STACK_ID], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


def test_a_missing_python_is_named(tmp_path):
    work, env = _scratch(tmp_path)
    (work / "pyproject.toml").touch()  # newer than the stamp: the install (and its Python check) runs
    os.utime(work / ".venv/.installed", (0, 0))
    result = _make(work, env, "PYTHON=python3.99", ".venv/.installed")
    assert result.returncode != 0
    assert "error: PYTHON=python3.99 was not found on PATH; this project needs Python >= 3.11" in result.stderr
    assert "command not found" not in result.stderr


def test_an_old_python_is_named_with_its_version(tmp_path):
    work, env = _scratch(tmp_path)
    os.utime(work / ".venv/.installed", (0, 0))
    old = tmp_path / "bin" / "python3.9"
    old.write_text('#!/usr/bin/env bash\n[ "$1" = --version ] && echo "Python 3.9.18"\nexit 1\n')
    old.chmod(0o755)
    result = _make(work, env, "PYTHON=python3.9", ".venv/.installed")
    assert result.returncode != 0
    assert "error: PYTHON=python3.9 is Python 3.9.18; this project needs Python >= 3.11" in result.stderr
