"""cdk-nag AwsSolutions: every stage clean, every acknowledgment explained, generated ones not blanket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from pipeline.nag_acks import PipelineIds, acknowledge_generated_wildcards
from shared.nag import reason_problem


def _violations(scope) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(scope)
    return [f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations]


@pytest.mark.parametrize("stage", ["consumer_stage", "producer_stage", "sandbox"])
def test_stage_has_no_unacknowledged_finding(synthesized, stage):
    assert _violations(getattr(synthesized, stage)) == []


def test_pipeline_stack_has_no_unacknowledged_finding(synthesized):
    assert _violations(synthesized.pipeline_stack) == []


def test_checks_do_find_violations_when_there_are_some():
    # Guards against a false green: the same call on an obviously bad bucket must report it.
    stack = Stack(App(), "Bad")
    s3.Bucket(stack, "Plain", enforce_ssl=False)
    found = _violations(stack)
    assert any("S1" in v for v in found) and any("S10" in v for v in found)


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
