"""The console script itself: installed under its name, lists its commands, documents its exit codes."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ops.cli import app
from ops.common import ExitCode

ROOT = Path(__file__).resolve().parents[3]


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"ddb-lake": "ops.cli:main"}


def test_help_lists_the_commands_and_exit_codes(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("preflight", "smoke", "backfill", "replay"):
        assert command in result.output
    assert "0 ok, 1 check failed, 2 usage or configuration error, 3 AWS error" in " ".join(result.output.split())
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3]


def test_unknown_option_is_a_usage_error(runner):
    result = runner.invoke(app, ["smoke", "--no-such-option"])
    assert result.exit_code == 2
