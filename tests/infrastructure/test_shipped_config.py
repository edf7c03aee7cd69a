"""The configuration actually committed in cdk.json: the pipeline runs `make test` on the user's own values, so every
assertion here must hold for ANY valid configuration. It loads, synthesizes with every configured cdk-nag pack,
and each stage carries one change capture per configured table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import app as app_module
from shared import config, naming
from tests.conftest import synthesize

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory):
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    # synthesize() raises if any registered pack has an unacknowledged finding in any stage.
    return synthesize(context[config.CONTEXT_KEY], tmp_path_factory.mktemp("cdk.out-committed"), "committed")


def test_committed_configuration_is_valid():
    assert app_module.committed_context() is not None
    cfg = config.load(app_module.committed_context() or {})
    assert cfg.tables


def test_committed_configuration_synthesizes_one_capture_per_table(committed):
    cfg = committed.cfg
    producer = committed.producer_stage.producer
    assert sorted(producer.captures) == sorted(t.name for t in cfg.tables)
    for spec in cfg.tables:
        assert producer.captures[spec.name].names == naming.table(cfg, spec)


def test_committed_configuration_targets_the_configured_accounts(committed):
    cfg = committed.cfg
    assert (committed.pipeline_stack.account, committed.pipeline_stack.region) == (
        cfg.tooling.account,
        cfg.tooling.region,
    )
    for stack, env in (
        (committed.consumer_stage.data_lake, cfg.consumer),
        (committed.producer_stage.producer, cfg.producer),
    ):
        assert (stack.account, stack.region) == (env.account, env.region)


def test_committed_configuration_leaves_no_nag_finding(committed):
    report = json.loads((committed.outdir / "validation-report.json").read_text())
    assert [
        v
        for plugin in report["pluginReports"]
        if plugin["pluginName"] != "CloudFormation Validate"
        for v in plugin["violations"]
    ] == []
