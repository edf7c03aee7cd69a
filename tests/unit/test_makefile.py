"""The Makefile is the single entry point: `make help` lists every target, and every target has a recipe."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

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
