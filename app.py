#!/usr/bin/env python3
"""CDK entry point: the pipeline stack (tooling account) holding the consumer and producer stages, plus
an optional sandbox stage. cdk-nag's AwsSolutions checks run over all of it."""

from __future__ import annotations

import sys

from aws_cdk import App, Environment

from pipeline.sandbox import SandboxStage
from pipeline.stack import PipelineStack
from shared import config, nag


def build(app: App) -> App:
    """Add every stack and stage to ``app`` from its context; raises ConfigError on a bad configuration."""
    context = app.node.get_all_context()
    cfg = config.load(context)
    # First, so every stage (CDK Pipelines writes a stage's assembly inside add_stage) is synthesized with it.
    nag.register(app)
    PipelineStack(
        app,
        "Pipeline",
        cfg=cfg,
        env=Environment(account=cfg.tooling.account, region=cfg.tooling.region),
        description="Self-mutating pipeline for the cross-account DynamoDB data lake",
    )
    sandbox_account = context.get(config.SANDBOX_ACCOUNT_KEY)
    if sandbox_account:
        SandboxStage(app, "Sandbox", cfg=cfg.for_sandbox(str(sandbox_account), context.get(config.SANDBOX_REGION_KEY)))
    return app


def main() -> None:
    app = App()
    try:
        build(app)
    except config.ConfigError as error:
        # A config mistake is the user's to fix: say which keys, not a traceback from inside CDK.
        print(error, file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
