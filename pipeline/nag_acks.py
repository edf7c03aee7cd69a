"""cdk-nag acknowledgments for the IAM policies CDK Pipelines generates, derived from the policies themselves.

CDK Pipelines writes roles whose statements use wildcards (artifact objects, its own CodeBuild log
groups, ...). Their finding ids embed token hashes, so a hand-copied list breaks on the next CDK upgrade.
Instead, every generated policy is read after ``build_pipeline()``: each wildcard statement is matched
against the shapes CDK Pipelines is known to produce, and only a match is acknowledged, with a reason
naming the role and the shape. Anything else stays a finding and stops the synth for a human to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from shared.nag import acknowledge

IAM5 = "AwsSolutions-IAM5"


def flatten_reference(node: Any) -> str:
    """The string cdk-nag builds from a resolved CloudFormation value (mirrors its flattenCfnReference)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    # cdk-nag falls back to JSON.stringify, which no shape below accepts anyway.
    return repr(node)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any]

    def findings(self) -> list[str]:
        found = [f"{IAM5}[Action::{a}]" for a in self.actions if "*" in a]
        found += [f"{IAM5}[Resource::{r}]" for r in self.resources if "*" in r]
        return found


@dataclass(frozen=True)
class PipelineIds:
    """Logical ids of the pipeline's own resources that generated statements may target."""

    artifact_bucket: str
    keys: tuple[str, ...]
    # Physical names of CodePipeline's cross-region replication buckets (one support stack per other region).
    replication_buckets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    """A wildcard statement shape CDK Pipelines generates, and why it is acceptable."""

    name: str
    matches: Callable[[Statement, PipelineIds], bool]
    why: str


def _all(pattern: str, resources: Iterable[str]) -> bool:
    items = list(resources)
    return bool(items) and all(re.fullmatch(pattern, r) for r in items)


def _actions_in(statement: Statement, service: str) -> bool:
    return all(a.startswith(service + ":") for a in statement.actions)


SHAPES: tuple[Shape, ...] = (
    Shape(
        "artifact-bucket",
        lambda s, ids: (
            _actions_in(s, "s3")
            and _all(
                "|".join(
                    [rf"<{re.escape(ids.artifact_bucket)}\.Arn>(/\*)?"]
                    + [rf"arn:[^:]+:s3:::{re.escape(b)}(/\*)?" for b in ids.replication_buckets]
                ),
                s.resources,
            )
        ),
        "the wildcards cover the S3 read/write action families and the object keys of this pipeline's own "
        "artifact bucket and its cross-region replication buckets (the only resources in the statement: "
        "private, KMS-encrypted, keys generated per execution).",
    ),
    Shape(
        "cross-region-replication-keys",
        lambda s, ids: (
            bool(ids.replication_buckets)
            and _actions_in(s, "kms")
            and _all(r"arn:[^:]+:kms:[a-z0-9-]+:\d{12}:key/\*", s.resources)
            and "kms:ResourceAliases" in str(s.condition.get("ForAnyValue:StringEquals", {}))
        ),
        "CodePipeline encrypts artifacts it copies to another region with the replication key of that region's "
        "support stack; the key lives in another stack and region, so its ARN cannot be named here: the statement "
        "covers the keys of that region and the tooling account only, and only those carrying the support stack's "
        "alias (kms:ResourceAliases), for the pipeline's own service role (assumable only by CodePipeline).",
    ),
    Shape(
        "pipeline-key",
        lambda s, ids: (
            _actions_in(s, "kms") and any(_all(rf"<{re.escape(key)}\.Arn>", s.resources) for key in ids.keys)
        ),
        "the wildcards are the GenerateDataKey*/ReEncrypt* variants on one key of this pipeline (artifact or "
        "approval-topic key), whose ARN is the only resource in the statement.",
    ),
    Shape(
        "own-codebuild-logs",
        lambda s, ids: (
            _actions_in(s, "logs")
            and _all(r"arn:[^:]+:logs:[^:]+:\d{12}:log-group:/aws/codebuild/<[A-Za-z0-9]+>(:\*)?", s.resources)
        ),
        "CodeBuild writes a project's logs to the log group named after it; the statement names only the log groups "
        "of the projects this role serves, and the wildcard is their log streams.",
    ),
    Shape(
        "own-codebuild-reports",
        lambda s, ids: (
            _actions_in(s, "codebuild")
            and _all(r"arn:[^:]+:codebuild:[^:]+:\d{12}:report-group/<[A-Za-z0-9]+>-\*", s.resources)
        ),
        "CodeBuild's default report groups are named '<project>-<report>'; the statement names only the prefixes "
        "of the projects this role serves, and the wildcard is the report name within them.",
    ),
    Shape(
        "bootstrap-roles",
        lambda s, ids: (
            s.actions == ("sts:AssumeRole",)
            and _all(r"arn:\*:iam::\d{12}:role/\*", s.resources)
            and "iam:ResourceTag/aws-cdk:bootstrap-role" in str(s.condition)
        ),
        "it may assume only roles tagged as CDK bootstrap roles (aws-cdk:bootstrap-role condition) in the "
        "tooling account, which is how self-mutation deploys the pipeline stack.",
    ),
    Shape(
        "self-mutation-read",
        lambda s, ids: set(s.actions) <= {"cloudformation:DescribeStacks", "s3:ListBucket"} and s.resources == ("*",),
        "read-only calls the CDK CLI makes while self-mutating (DescribeStacks to diff, ListBucket on the "
        "bootstrap bucket); neither grants a change.",
    ),
)


def _purpose(policy: IConstruct, root: IConstruct) -> str:
    path = policy.node.path[len(root.node.path) + 1 :]
    known = (
        ("UpdatePipeline/SelfMutation", "the self-mutation CodeBuild project"),
        ("Build/Synth", "the Synth CodeBuild project (make test, make synth)"),
        ("CdkNagGate", "a per-stage cdk-nag gate CodeBuild project"),
        ("Assets/FileRole", "the asset-publishing CodeBuild project"),
        ("CodePipelineActionRole", "a CodePipeline action role"),
        ("Pipeline/Role", "the CodePipeline service role"),
    )
    for marker, purpose in known:
        if marker in path:
            return f"{purpose} ({path})"
    return path


def acknowledge_generated_wildcards(root: IConstruct, ids: PipelineIds) -> dict[str, list[str]]:
    """Acknowledge the known-shape IAM5 findings on every generated policy under ``root``.

    A finding id is acknowledged on a policy only if every statement of that policy producing it has a
    known shape. Returns {policy path: acknowledged finding ids}.
    """
    acknowledged: dict[str, list[str]] = {}
    for node in root.node.find_all():
        if not isinstance(node, iam.CfnPolicy):
            continue
        document = Stack.of(node).resolve(node.policy_document)
        policy = node.node.scope
        assert policy is not None
        done: dict[str, str] = {}
        unknown: set[str] = set()
        for raw in document.get("Statement", []):
            if raw.get("Effect") != "Allow":
                continue
            statement = Statement(
                actions=tuple(_as_list(raw.get("Action", []))),
                resources=tuple(flatten_reference(r) for r in _as_list(raw.get("Resource", []))),
                condition=raw.get("Condition") or {},
            )
            findings = statement.findings()
            if not findings:
                continue
            shape = next((s for s in SHAPES if s.matches(statement, ids)), None)
            if shape is None:
                unknown.update(findings)  # Unknown shape: leave the finding for a human.
                continue
            for finding in findings:
                done.setdefault(finding, shape.why)
        for finding in unknown:
            done.pop(finding, None)
        for finding, why in done.items():
            acknowledge(policy, finding, f"Generated by CDK Pipelines for {_purpose(policy, root)}: {why}")
        if done:
            acknowledged[policy.node.path] = sorted(done)
    return acknowledged
