"""app.py: what a synth prints besides templates, and the context it reads (with the nulls jsii drops)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

import app as app_module
from shared import config
from tests import configs

ROOT = Path(__file__).resolve().parents[2]


def test_empty_notification_lists_are_warned_about():
    cfg = config.from_dict(configs.variant("default"))
    warnings = app_module.warnings(cfg)
    assert any(w.startswith("notifications.approval_emails is empty") for w in warnings)
    assert any(w.startswith("notifications.alarm_emails is empty") for w in warnings)


def test_no_warning_when_someone_is_notified():
    assert app_module.warnings(config.from_dict(configs.variant("realistic"))) == []


def test_feature_flags_are_cdks_only():
    flags = app_module.feature_flags()
    assert flags and all(key.startswith("@aws-cdk") for key in flags)
    assert config.CONTEXT_KEY not in flags


# --- the context as the CLI passes it: nulls reach the model ---------------------------------------------------
def test_cli_context_is_read_with_its_nulls_from_the_environment_and_the_overflow_file(tmp_path, monkeypatch):
    overflow = tmp_path / "context.json"
    overflow.write_text(json.dumps({"datalake.prefix": None, "b": 2}))
    monkeypatch.setenv("CDK_CONTEXT_JSON", json.dumps({"datalake": {"x": None}, "b": 1}))
    monkeypatch.setenv("CONTEXT_OVERFLOW_LOCATION_ENV", str(overflow))
    # The file wins, as in aws-cdk-lib's App.loadContext.
    assert app_module.cli_context() == {"datalake": {"x": None}, "datalake.prefix": None, "b": 2}
    monkeypatch.delenv("CONTEXT_OVERFLOW_LOCATION_ENV")
    monkeypatch.delenv("CDK_CONTEXT_JSON")
    assert app_module.cli_context() == {}


def test_a_null_that_jsii_drops_is_still_an_error():
    raw = configs.default()
    raw["tables"][0]["stream"]["retention_hours"] = None
    app = App(context={config.CONTEXT_KEY: raw})
    # Through jsii the null-valued key is gone: alone, the app would take the default.
    assert "retention_hours" not in app.node.get_all_context()[config.CONTEXT_KEY]["tables"][0]["stream"]
    with pytest.raises(config.ConfigError) as caught:
        app_module.build(app, None, {config.CONTEXT_KEY: raw, "unrelated": None})
    assert caught.value.problems == [
        "datalake.tables[0].stream.retention_hours = null: must be a whole number from 24 to 8760 (how long a "
        "broken delivery may last before changes are lost)"
    ]


def test_the_app_prints_the_newcomers_mistakes_one_line_each_and_nothing_else(tmp_path):
    # Mistakes of issue 16 in one object, through app.py as the CLI runs it: exit 2, the header, one line per
    # mistake, nothing after them. Each sits in its own object: a check that spans an object's keys runs once its
    # keys are valid (a region typo, tried in test_config_errors.py, likewise stops the checks across sections).
    raw = configs.variant("two-tables")
    orders, customers = raw["tables"]
    orders["stream"] = {"mode": "ON_DEMAND", "shard_count": 50}
    customers["stream"]["retention_hours"] = None
    raw["tables"].append({"name": "items", "partition_key": "id", "columns": {"_event_name": "string", "": "bigint"}})
    raw["notifications"] = {"alarm_emails": ["oncall@example.com", "oncall@example.com"]}
    raw["backup"] = {"daily_retention_days": 400, "monthly_retention_days": 30}
    raw["compliance"] = {"packs": ["AwsSolutions", "CIS"]}
    expected = _lines_of(raw)
    result = _run_app(tmp_path, {config.CONTEXT_KEY: raw})
    assert result.returncode == 2, result.stderr
    header, *lines = _app_output(result.stderr)
    assert header == f"invalid configuration in cdk.json context with -c overrides '{config.CONTEXT_KEY}' (7):"
    assert [line.split(" (the 'datalake' object differs")[0] for line in lines] == [f"  - {e}" for e in expected]
    # Each line's text is pinned in test_config_errors.py; here, that each mistake has its line.
    assert [line.split(" ", 1)[0] for line in expected] == [
        "datalake.tables[0].stream.shard_count",
        "datalake.tables[1].stream.retention_hours",
        "datalake.tables[2].columns:",
        "datalake.tables[2].columns:",
        "datalake.notifications.alarm_emails[1]",
        "datalake.backup.daily_retention_days",
        "datalake.compliance.packs[1]",
    ]


def _lines_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    return caught.value.problems


def _run_app(tmp_path: Path, context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    return subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True)


def _app_output(stderr: str) -> list[str]:
    """The app's stderr without what Node itself may print before the app runs (a banner about its version)."""
    lines = [line for line in stderr.splitlines() if not line.startswith("b'")]
    start = next(i for i, line in enumerate(lines) if line.startswith("invalid configuration"))
    assert "Traceback" not in stderr
    return lines[start:]


def test_building_every_branch_uses_no_deprecated_cdk_api(tmp_path):
    # jsii fails a deprecated call under JSII_DEPRECATED=fail (aws-cdk-lib's generated deprecation checks); the
    # sandbox stage once called Stack#addDependency and printed "[WARNING] ... is deprecated" on every synth.
    raw = configs.variant("two-tables")
    raw["notifications"] = {"approval_emails": ["ops@example.com"], "alarm_emails": ["oncall@example.com"]}
    raw["backup"] = {"copy_to_vault_arn": "arn:aws:backup:eu-west-1:444444444444:backup-vault:central"}
    raw["data_lake"] = {
        "replica": {
            "account": "444444444444",
            "region": "eu-central-1",
            "bucket_name": "replica-bucket",
            "key_arn": "arn:aws:kms:eu-central-1:444444444444:key/0b8e2c4d-1f3a-4e5b-9c7d-2a6f8e0b1c3d",
        }
    }
    raw["tooling"]["region"] = "us-east-1"
    raw["source"]["connection_arn"] = configs.CONNECTION.format(region="us-east-1", account=configs.TOOLING)
    context = {**app_module.feature_flags(), config.CONTEXT_KEY: raw, config.SANDBOX_ACCOUNT_KEY: "444455556666"}
    script = (
        "import json, sys\n"
        "from aws_cdk import App\n"
        "import app\n"
        f"app.build(App(context=json.loads(sys.argv[1]), outdir={str(tmp_path)!r}))\n"
        "print('built')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(context)],
        cwd=ROOT,
        env={**os.environ, "JSII_DEPRECATED": "fail"},
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "built", result.stderr[-3000:]
    assert "deprecated" not in result.stderr
