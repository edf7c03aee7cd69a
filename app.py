#!/usr/bin/env python3
"""CDK entry point: the pipeline stack (tooling account) holding the consumer and producer stages, plus
an optional sandbox stage. cdk-nag's packs run over all of it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from pipeline.sandbox import SandboxStage
from pipeline.stack import PipelineStack
from shared import config, nag

CDK_JSON = Path(__file__).resolve().parent / "cdk.json"
# The one top-level stack (CDK Pipelines may add cross-region support stacks next to it); the Makefile names it.
PIPELINE_STACK_ID = "Pipeline"


def committed_context() -> dict[str, Any] | None:
    """cdk.json's context as committed, to tell a `-c` override from the file (the pipeline sees only the file)."""
    try:
        return json.loads(CDK_JSON.read_text()).get("context", {})
    except (OSError, ValueError):
        return None


def cli_context() -> dict[str, Any]:
    """The context exactly as the CDK CLI handed it to this process, nulls included.

    The CLI passes the merged context (cdk.json, cdk.context.json, ~/.cdk.json, ``-c``) as JSON in
    ``CDK_CONTEXT_JSON``, or in the file named by ``CONTEXT_OVERFLOW_LOCATION_ENV`` when it is too long for the
    environment (aws-cdk-lib 2.275 ``App.loadContext`` reads both, the file last). Read through jsii
    (``node.get_all_context()``), a null-valued key of an object is gone, so ``"retention_hours": null`` would
    silently become the default; read here, it is the error it should be."""
    context: dict[str, Any] = {}
    try:
        text = os.environ.get("CDK_CONTEXT_JSON")
        context.update(json.loads(text) if text else {})
        overflow = os.environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")
        context.update(json.loads(Path(overflow).read_text()) if overflow else {})
    except (OSError, ValueError, TypeError):
        return {}  # then CDK's own copy is all there is (it failed to read the same text too)
    return context


def feature_flags() -> dict[str, Any]:
    """CDK's feature flags as committed in cdk.json: part of the app's code (they change what constructs
    synthesize), not the user's configuration, so tests build their Apps with them too."""
    return {k: v for k, v in (committed_context() or {}).items() if k.startswith("@aws-cdk")}


def warnings(cfg: config.AppConfig) -> list[str]:
    """Valid but probably unintended settings: shown on every synth, never fatal."""
    found = []
    if not cfg.notifications.approval_emails:
        found.append(
            "notifications.approval_emails is empty: the producer approval will notify nobody "
            "(approvers must watch the pipeline)"
        )
    if not cfg.notifications.alarm_emails:
        found.append("notifications.alarm_emails is empty: the producer's alarms will notify nobody")
    return found


def build(
    app: App, file_context: dict[str, Any] | None = None, raw_context: dict[str, Any] | None = None
) -> config.AppConfig:
    """Add every stack and stage to ``app`` from its context; raises ConfigError on a bad configuration.
    ``raw_context`` (:func:`cli_context`) supplies this app's keys with their nulls, which jsii drops."""
    context = app.node.get_all_context()
    ours = {
        k: v
        for k, v in (raw_context or {}).items()
        if k == config.CONTEXT_KEY or k.startswith(config.CONTEXT_KEY + ".")
    }
    context.update(ours)
    cfg = config.load(context, file_context)
    # First, so every stage (CDK Pipelines writes a stage's assembly inside add_stage) is synthesized with it.
    nag.register(app, cfg.compliance.packs)
    PipelineStack(
        app,
        PIPELINE_STACK_ID,
        cfg=cfg,
        env=Environment(account=cfg.tooling.account, region=cfg.tooling.region),
        description="Self-mutating pipeline for the cross-account DynamoDB data lake",
    )
    sandbox_account = context.get(config.SANDBOX_ACCOUNT_KEY)
    if sandbox_account:
        sandbox = cfg.for_sandbox(
            str(sandbox_account), context.get(config.SANDBOX_REGION_KEY), context.get(config.SANDBOX_PREFIX_KEY)
        )
        SandboxStage(app, "Sandbox", cfg=sandbox)
    return cfg


def main() -> None:
    app = App()
    try:
        cfg = build(app, committed_context(), cli_context())
    except config.ConfigError as error:
        # A config mistake is the user's to fix: say which keys, not a traceback from inside CDK.
        print(error, file=sys.stderr)
        sys.exit(2)
    for warning in warnings(cfg):
        print(f"warning: {warning}", file=sys.stderr)
    app.synth()


if __name__ == "__main__":
    main()
