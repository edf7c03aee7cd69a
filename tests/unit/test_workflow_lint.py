"""The CI workflow lints clean and keeps the steps the project relies on."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML ships with cfn-lint, a pinned dev dependency

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "ci.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def test_actionlint_passes() -> None:
    assert ACTIONLINT.is_file(), f"actionlint not installed next to {sys.executable}"
    result = subprocess.run(
        [str(ACTIONLINT), "-oneline", str(WORKFLOW)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_triggers_and_permissions(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert "permissions" not in job  # nothing widens the read-only token


def test_runs_make_test_then_make_synth(steps: list[dict[str, Any]]) -> None:
    runs = [step.get("run", "").strip() for step in steps]
    assert "make test" in runs
    assert "make synth" in runs
    assert runs.index("make test") < runs.index("make synth")
    # Nothing may swallow the exit code of either command.
    for step in steps:
        if step.get("run", "").strip() in {"make test", "make synth"}:
            assert "continue-on-error" not in step
            assert "if" not in step


def test_uploads_reports_always(steps: list[dict[str, Any]]) -> None:
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(uploads) == 1
    (upload,) = uploads
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert paths == ["cdk.out/validation-report.json", "reports/nag/*.xml", "reports/pytest.xml"]


def test_caches_and_toolchain(steps: list[dict[str, Any]]) -> None:
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    assert python["with"]["cache"] == "pip"
    assert any(s.get("uses", "").startswith("actions/setup-node@") for s in steps)
    cached = {s["with"]["path"]: s["with"]["key"] for s in steps if s.get("uses", "").startswith("actions/cache@")}
    assert set(cached) == {"node_modules", "~/.cache/aws/jsii"}
    assert all("hashFiles('package-lock.json'" in key for key in cached.values())


def test_actions_pinned_to_a_major_at_least(steps: list[dict[str, Any]]) -> None:
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", step["uses"]), step["uses"]
