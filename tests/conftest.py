"""Synthesize the whole app once per configuration per test session (lazily: only tests that ask for it pay);
the infrastructure and integration tests read from it.

``synthesized`` is parametrized over every configuration of ``tests/configs.py``: a template test runs once per
configuration and must derive its expectations from ``synthesized.cfg``. pytest keeps one configuration's
synthesis alive at a time and runs all tests of that configuration together.
"""

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
from tests import configs

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_ACCOUNT = "444455556666"
SANDBOX_PREFIX = "alice"


def template_of(stack: Stack) -> Template:
    """The template as written into the stage's cloud assembly (no re-synthesis)."""
    assembly = Stage.of(stack).synth()
    return Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)


@dataclass
class Synthesized:
    name: str
    app: App
    outdir: Path
    cfg: config.AppConfig
    pipeline_stack: PipelineStack
    sandbox: SandboxStage | None

    @property
    def consumer_stage(self) -> Stage:
        return self.pipeline_stack.consumer_stage

    @property
    def producer_stage(self) -> Stage:
        return self.pipeline_stack.producer_stage

    def template(self, stack: Stack) -> Template:
        return template_of(stack)


def synthesize(raw: dict[str, Any], outdir: Path, name: str = "custom", **context: Any) -> Synthesized:
    """Build and synthesize the app for ``raw`` (a ``datalake`` object); raises if any cdk-nag pack finds anything."""
    app = App(context={**app_module.feature_flags(), config.CONTEXT_KEY: raw, **context}, outdir=str(outdir))
    cfg = app_module.build(app)
    app.synth()
    pipeline_stack = app.node.find_child("Pipeline")
    sandbox = app.node.try_find_child("Sandbox")
    assert isinstance(pipeline_stack, PipelineStack)
    assert sandbox is None or isinstance(sandbox, SandboxStage)
    return Synthesized(name=name, app=app, outdir=outdir, cfg=cfg, pipeline_stack=pipeline_stack, sandbox=sandbox)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``make test`` runs two pytest-xdist workers (``--dist loadgroup``). Every test of one configuration goes to the
    worker that synthesizes it, and every other test stays with its module (module fixtures such as the lake proofs
    are built once), so nothing is synthesized twice."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec else {}
        if "synthesized" in params:
            group = f"config-{params['synthesized']}"
        elif "sandboxed" in getattr(item, "fixturenames", ()):
            group = "config-sandbox"
        else:
            # A module's tests stay together, split only by the values of its module- or session-scoped fixtures
            # (e.g. one lakehouse proof per configuration): each such fixture is still built once.
            definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
            shared = [
                f"{name}={value}"
                for name, value in params.items()
                if name in definitions and definitions[name][-1].scope in ("module", "package", "session")
            ]
            group = (item.module.__name__ if item.module else item.nodeid) + (f"[{','.join(shared)}]" if shared else "")
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", params=list(configs.VARIANTS))
def synthesized(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    name = request.param
    return synthesize(configs.variant(name), tmp_path_factory.mktemp(f"cdk.out-{name}"), name)


@pytest.fixture(scope="session")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default configuration plus the sandbox stage (one developer account, its own prefix)."""
    context = {config.SANDBOX_ACCOUNT_KEY: SANDBOX_ACCOUNT, config.SANDBOX_PREFIX_KEY: SANDBOX_PREFIX}
    return synthesize(configs.variant("default"), tmp_path_factory.mktemp("cdk.out-sandbox"), "sandbox", **context)


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
