"""cfn-lint on exactly what `make synth` writes, for every configuration: zero errors, zero warnings.

`make synth` runs the app through the CDK CLI, which gives it context a test's bare ``App()`` lacks: path
metadata above all, by which cfn-lint recognises CDK output (without it, E3703 fires on the cross-account role ARNs
CDK Pipelines writes as Fn::Join). Each configuration is therefore synthesized again with the CLI's context, and
one configuration is compared with a real `cdk synth` run, so the linted templates are known to be the CLI's.
The only exceptions are the single rules listed, with their reasons, in .cfnlintrc.yaml.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App

import app as app_module
from shared import config
from tests import configs
from tests.conftest import Synthesized, synthesize

ROOT = Path(__file__).resolve().parents[2]
CFN_LINT_CONFIG = ROOT / ".cfnlintrc.yaml"
# What the CDK CLI (aws-cdk 2.1148.1, contextFromSettings) passes to the app on `cdk synth` when cdk.json sets
# none of pathMetadata, assetMetadata, versionReporting or bundlingStacks (it sets none).
CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
}


def templates_in(outdir: Path) -> list[Path]:
    """The templates `make synth` leaves for CloudFormation: cdk.out/*.template.json and one folder per stage."""
    return sorted([*outdir.glob("*.template.json"), *outdir.glob("assembly-*/*.template.json")])


@pytest.fixture(scope="module")
def as_the_cli_writes(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configuration under test, synthesized with the same app context plus what the CLI adds."""
    outdir = tmp_path_factory.mktemp(f"cli-{synthesized.name}")
    app = App(context={**synthesized.app.node.get_all_context(), **CLI_CONTEXT}, outdir=str(outdir))
    app_module.build(app)
    app.synth()
    return outdir


def cfn_lint(templates: list[Path]) -> list[dict[str, Any]]:
    """cfn-lint's findings (errors and warnings; informational ones are off by default) with the project's config."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--config-file", str(CFN_LINT_CONFIG), "--format", "json", "--", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Exit status is a bit mask of the levels found (2 error, 4 warning, 8 info); anything else, or no JSON, is a crash.
    assert result.stdout.strip().startswith("[") and result.returncode & ~0b1110 == 0, result.stderr
    return json.loads(result.stdout)


def test_templates_have_no_cfn_lint_errors_or_warnings(synthesized: Synthesized, as_the_cli_writes: Path):
    templates = templates_in(as_the_cli_writes)
    assert templates == sorted(as_the_cli_writes.rglob("*.template.json"))
    cfg = synthesized.cfg
    # Pipeline, Consumer, Producer, one CodePipeline support stack per other stage region.
    support_regions = {cfg.consumer.region, cfg.producer.region} - {cfg.tooling.region}
    assert len(templates) == 3 + len(support_regions), templates
    findings = cfn_lint(templates)
    problems = [
        f"{f['Level']} {f['Rule']['Id']} {Path(f['Filename']).name}: {f['Message']}"
        for f in findings
        if f["Level"] in ("Error", "Warning")
    ]
    assert problems == []


def test_sandbox_templates_have_no_cfn_lint_errors_or_warnings(sandboxed: Synthesized, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cli-sandbox")
    app = App(context={**sandboxed.app.node.get_all_context(), **CLI_CONTEXT}, outdir=str(outdir))
    app_module.build(app)
    app.synth()
    templates = sorted(outdir.glob("assembly-Sandbox/*.template.json"))
    assert len(templates) == 2, templates  # the data lake and the producer, in one account
    problems = [f for f in cfn_lint(templates) if f["Level"] in ("Error", "Warning")]
    assert problems == []


def test_cfn_lint_exceptions_are_single_non_error_rules():
    settings = yaml.safe_load(CFN_LINT_CONFIG.read_text())
    ignored = settings.get("ignore_checks", [])
    # A prefix ('W', 'E3') would silence a family; an error rule means CloudFormation may reject the template.
    assert all(re.fullmatch(r"[WI]\d{4}", rule) for rule in ignored), ignored
    text = CFN_LINT_CONFIG.read_text()
    # Each exception is preceded by its reason.
    assert all(re.search(rf"#[^\n]*\n(\s*#[^\n]*\n)*\s*- {rule}\b", text) for rule in ignored), ignored


def test_the_linted_templates_are_what_the_cdk_cli_writes(tmp_path_factory: pytest.TempPathFactory):
    # The real `make synth` path (cdk.json's app command and settings, the pinned CLI) for one configuration,
    # against the suite's synthesis of the same configuration with CLI_CONTEXT.
    name = "realistic"
    raw = configs.variant(name)
    ours = synthesize(raw, tmp_path_factory.mktemp(f"ours-{name}"), name, **CLI_CONTEXT).outdir
    cli_out = tmp_path_factory.mktemp(f"cdk-cli-{name}")
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    context = f"{config.CONTEXT_KEY}={json.dumps(raw)}"
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--output", str(cli_out), "--context", context],
        cwd=ROOT,
        env={**os.environ, "CDK_DISABLE_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # A sandbox stage appears only if the user's cdk.json names a sandbox account: the pipeline's templates count.
    cli = {
        str(p.relative_to(cli_out)): json.loads(p.read_text())
        for p in templates_in(cli_out)
        if not p.parent.name.startswith("assembly-Sandbox")
    }
    mine = {str(p.relative_to(ours)): json.loads(p.read_text()) for p in templates_in(ours)}
    assert sorted(cli) == sorted(mine)
    assert [template for template in cli if cli[template] != mine[template]] == []
