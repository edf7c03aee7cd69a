"""cdk-nag: every stage clean under every pack the configuration registers, every acknowledgment explained and
as narrow as the finding it answers, generated ones not blanket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from pipeline.nag_acks import PipelineIds, acknowledge_generated_wildcards
from shared import naming
from shared.nag import PACKS, reason_problem
from tests.conftest import template_of

SCOPES = ["consumer_stage", "producer_stage", "pipeline_stack"]


def _violations(scope: IConstruct, pack: str = "AwsSolutions") -> list[str]:
    report = PACKS[pack]().validate_scope(scope)
    return [f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations]


@pytest.mark.parametrize("scope", SCOPES)
def test_scope_passes_every_registered_pack(synthesized, scope):
    packs = synthesized.cfg.compliance.packs
    assert packs, "no pack registered"
    construct = getattr(synthesized, scope)
    assert {pack: _violations(construct, pack) for pack in packs} == {pack: [] for pack in packs}


def test_sandbox_passes_every_registered_pack(sandboxed):
    packs = sandboxed.cfg.compliance.packs
    assert sandboxed.sandbox is not None
    assert {pack: _violations(sandboxed.sandbox, pack) for pack in packs} == {pack: [] for pack in packs}


@pytest.mark.parametrize("pack", list(PACKS))
def test_each_pack_does_find_violations_when_there_are_some(pack):
    # Guards against a false green: the same call on an obviously bad bucket and function must report them.
    stack = Stack(App(), "Bad")
    s3.Bucket(stack, "Plain", enforce_ssl=False)
    lambda_.Function(
        stack,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    assert _violations(stack, pack)


def _acknowledgments(outdir: Path) -> list[tuple[str, str, str]]:
    found = []
    for path in outdir.rglob("*.template.json"):
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                found.append((f"{path.name}:{logical_id}", rule["id"], rule.get("reason", "")))
    return found


def test_every_acknowledgment_carries_a_specific_reason(synthesized):
    acks = _acknowledgments(synthesized.outdir)
    # Each stage acknowledges something (KDF1, S1, ...): an empty list would mean the audit trail is gone.
    files = {where.split(":")[0] for where, _, _ in acks}
    assert any("Consumer" in f for f in files) and any("Producer" in f for f in files)
    assert any(f.startswith("Pipeline.") for f in files)
    bad = [(where, rule, reason) for where, rule, reason in acks if reason_problem(reason)]
    assert bad == []


def test_every_sandbox_acknowledgment_carries_a_specific_reason(sandboxed):
    acks = [a for a in _acknowledgments(sandboxed.outdir) if "Sandbox" in a[0]]
    assert acks
    assert [(where, rule, reason) for where, rule, reason in acks if reason_problem(reason)] == []


def _stack_acknowledgments(stack: Stack) -> dict[str, set[str]]:
    resources = template_of(stack).to_json()["Resources"]
    return {
        lid: {rule["id"] for rule in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])}
        for lid, r in resources.items()
    }


def test_producer_acknowledgments_are_per_table_and_name_the_exact_resource(synthesized, cfg):
    stack = synthesized.producer_stage.producer
    acks = _stack_acknowledgments(stack)
    resources = template_of(stack).to_json()["Resources"]
    lake = naming.lake(cfg)
    key_wildcard = f"AwsSolutions-IAM5[Resource::arn:{lake.partition}:kms:{lake.region}:{lake.account}:key/*]"
    tables = naming.tables(cfg)
    for _, names in tables:
        (role_id,) = [lid for lid, r in resources.items() if r["Properties"].get("RoleName") == names.delivery_role]
        folders = {f"AwsSolutions-IAM5[Resource::{lake.bucket_arn}/{root}*]" for root in names.roots}
        # Its own three folders and B's key by alias: nothing of another table, no blanket IAM5.
        iam5 = {a for a in acks[role_id] if a.startswith("AwsSolutions-IAM5")}
        assert iam5 == folders | {key_wildcard}, names.key
        for _, other in tables:
            if other is not names:
                assert not any(other.root("data")[:-1] in a for a in acks[role_id])
    every = set().union(*acks.values())
    assert "AwsSolutions-IAM5" not in every and "AwsSolutions-IAM5[Resource::*]" in every
    # Firehose cannot encrypt a delivery stream whose source is Kinesis: acknowledged on each, and on nothing else.
    kdf1 = {lid for lid, ids in acks.items() if "AwsSolutions-KDF1" in ids}
    assert kdf1 == {lid for lid, r in resources.items() if r["Type"] == "AWS::KinesisFirehose::DeliveryStream"}
    assert len(kdf1) == len(tables)


def test_pipeline_acknowledgments_name_the_role_they_are_for(synthesized):
    acknowledged = synthesized.pipeline_stack.acknowledged
    assert acknowledged, "no generated acknowledgments: CDK Pipelines' roles changed shape"
    for path, findings in acknowledged.items():
        assert all(f.startswith("AwsSolutions-IAM5[") for f in findings), path


def _role_with(stack: Stack, *statements: iam.PolicyStatement) -> iam.Role:
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    for statement in statements:
        role.add_to_policy(statement)
    return role


def test_generated_acknowledgments_cover_known_shapes_only():
    stack = Stack(App(), "Generated")
    bucket = s3.Bucket(stack, "Artifacts", enforce_ssl=True)
    known = iam.PolicyStatement(
        actions=["s3:GetObject*", "s3:List*"], resources=[bucket.bucket_arn, bucket.arn_for_objects("*")]
    )
    # Same action wildcard, but on every bucket: must not ride along on the known statement's acknowledgment.
    unknown = iam.PolicyStatement(actions=["s3:GetObject*", "s3:DeleteObject*"], resources=["*"])
    _role_with(stack, known, unknown)
    ids = PipelineIds(artifact_bucket=stack.get_logical_id(bucket.node.default_child), keys=())
    acknowledged = acknowledge_generated_wildcards(stack, ids)
    assert list(acknowledged.values()) == [
        sorted(["AwsSolutions-IAM5[Action::s3:List*]", f"AwsSolutions-IAM5[Resource::<{ids.artifact_bucket}.Arn>/*]"])
    ]
    remaining = " ".join(_violations(stack))
    assert "IAM5" in remaining


def test_generated_acknowledgments_clear_a_pure_known_shape():
    stack = Stack(App(), "Generated")
    bucket = s3.Bucket(stack, "Artifacts", enforce_ssl=True, server_access_logs_prefix="x")
    _role_with(
        stack,
        iam.PolicyStatement(actions=["s3:GetObject*"], resources=[bucket.bucket_arn, bucket.arn_for_objects("*")]),
    )
    ids = PipelineIds(artifact_bucket=stack.get_logical_id(bucket.node.default_child), keys=())
    acknowledge_generated_wildcards(stack, ids)
    assert not [v for v in _violations(stack) if "IAM5" in v]
