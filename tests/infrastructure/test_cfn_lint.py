"""Every synthesized template passes cfn-lint's CloudFormation schema and rule checks (errors only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_templates_have_no_cfn_lint_errors(synthesized):
    templates = sorted(str(p) for p in synthesized.outdir.rglob("*.template.json"))
    # Pipeline, Consumer, Producer and the two Sandbox stacks: the schema check covers e.g. Firehose accepting
    # the data-lake key by alias ARN.
    assert len(templates) == 5, templates
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    # E3703 ("prefer Fn::Sub over Fn::Join") fires on the cross-account role ARNs CDK Pipelines writes into its
    # deploy actions: a style preference about generated code, not a schema error.
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", "--ignore-checks", "E3703", "--", *templates],
        capture_output=True,
        text=True,
        timeout=300,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f"{f['Rule']['Id']} {f['Filename']}: {f['Message']}" for f in findings if f["Level"] == "Error"]
    assert errors == []
