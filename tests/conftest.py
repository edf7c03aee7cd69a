"""Synthesize the whole app once per test session (lazily: only tests that ask for it pay); the infrastructure
and integration tests read from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Stage
from aws_cdk.assertions import Template

import app as app_module
from pipeline.sandbox import SandboxStage
from pipeline.stack import PipelineStack
from shared import config

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_ACCOUNT = "444455556666"


def cdk_context(**overrides: Any) -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(overrides)
    return context


def template_of(stack: Stack) -> Template:
    """The template as written into the stage's cloud assembly (no re-synthesis)."""
    assembly = Stage.of(stack).synth()
    return Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)


@dataclass
class Synthesized:
    app: App
    outdir: Path
    cfg: config.AppConfig
    pipeline_stack: PipelineStack
    sandbox: SandboxStage

    @property
    def consumer_stage(self) -> Stage:
        return self.pipeline_stack.consumer_stage

    @property
    def producer_stage(self) -> Stage:
        return self.pipeline_stack.producer_stage

    def template(self, stack: Stack) -> Template:
        return template_of(stack)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = cdk_context(**{config.SANDBOX_ACCOUNT_KEY: SANDBOX_ACCOUNT})
    app = App(context=context, outdir=str(outdir))
    app_module.build(app)
    # Raises if any stage has an unacknowledged cdk-nag finding (the plugin runs over the whole tree).
    app.synth()
    pipeline_stack = app.node.find_child("Pipeline")
    sandbox = app.node.find_child("Sandbox")
    assert isinstance(pipeline_stack, PipelineStack)
    assert isinstance(sandbox, SandboxStage)
    return Synthesized(app=app, outdir=outdir, cfg=config.load(context), pipeline_stack=pipeline_stack, sandbox=sandbox)


@pytest.fixture(scope="session")
def cfg(synthesized: Synthesized) -> config.AppConfig:
    return synthesized.cfg


@pytest.fixture(scope="session")
def consumer(synthesized: Synthesized) -> Template:
    return template_of(synthesized.consumer_stage.data_lake)


@pytest.fixture(scope="session")
def producer(synthesized: Synthesized) -> Template:
    return template_of(synthesized.producer_stage.producer)


@pytest.fixture(scope="session")
def pipeline(synthesized: Synthesized) -> Template:
    return Template.from_json(
        json.loads((synthesized.outdir / f"{synthesized.pipeline_stack.artifact_id}.template.json").read_text())
    )
