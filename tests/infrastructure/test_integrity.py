"""The lake's history cannot be erased or forged (issue 18): account B's bucket policy, EVALUATED for every
configuration, for the principals that exist around the lake.

The evaluator below follows IAM's documented evaluation logic for one request in the bucket owner's account or from
another account (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and
.../reference_policies_evaluation-logic-cross-account.html): an explicit Deny in any policy wins; otherwise a
principal of the bucket's account needs an Allow in its identity policy OR the bucket policy, a principal of another
account needs both, an anonymous request needs the bucket policy. Condition operators follow
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html: a negated
operator is true for an absent key, any other operator false; ...IfExists is true for an absent key; Null tests
presence; ArnLike compares each of the six colon-separated ARN parts with '*' and '?' wildcards. Not modelled (and
not used by this project's policies): SCPs, permission boundaries, session policies, NotPrincipal/NotAction. An
unknown operator or policy element fails the test instead of being guessed.

"Identity ALL" stands for a principal whose own IAM policies allow everything (an administrator, or a role someone
broadened later): the denies must hold even then.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cfnlint.data.schemas as cfnlint_schemas
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from consumer.buckets import (
    BUCKET_POLICY_LIMIT,
    DataLakeBucket,
    deployment_role_arn,
    policy_bytes,
)
from consumer.replica import DataLakeReplication
from shared import config, naming
from shared.naming import DATA, ERRORS, RAW
from tests import configs
from tests.conftest import Synthesized

ALL = "identity allows everything"
# What issue 18 says must be protected, written out here (not imported), so dropping one from the policy fails.
PROTECTED_BUCKET_ACTIONS = (
    "s3:PutLifecycleConfiguration",  # also DeleteBucketLifecycle
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutReplicationConfiguration",  # also DeleteBucketReplication
    # And the other settings the template holds.
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketLogging",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
)
PROTECTED_OBJECT_ACTIONS = ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectRetention")
CHANGE_LOG_WRITE_ACTIONS = ("s3:PutObject", "s3:ReplicateObject")
CHANGE_LOG_DELETE_ACTIONS = ("s3:DeleteObject", "s3:ReplicateDelete")
HOUR = "year=2026/month=11/day=29/hour=10/"
KEY_ARN = "arn:aws:kms:eu-west-1:222222222222:key/11111111-2222-3333-4444-555555555555"


# --- the evaluator -----------------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM's wildcards: '*' any run of characters (also '/'), '?' one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _arn_like(pattern: str, value: str) -> bool:
    parts, values = pattern.split(":", 5), value.split(":", 5)
    return len(parts) == len(values) == 6 and all(_glob(p, v) for p, v in zip(parts, values, strict=True))


def _condition(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    values = [str(v) for v in _as_list(expected)]
    if operator == "Null":
        assert values in (["true"], ["false"]), (operator, key, expected)
        return (key not in context) == (values == ["true"])
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    negated = base.startswith(("StringNot", "ArnNot"))
    if key not in context:
        return if_exists or negated or qualifier == "ForAllValues"
    actual = [str(v) for v in _as_list(context[key])]
    match = {
        "StringEquals": lambda p, v: p == v,
        "StringNotEquals": lambda p, v: p == v,
        "StringLike": _glob,
        "StringNotLike": _glob,
        "ArnEquals": lambda p, v: p == v,
        "ArnNotEquals": lambda p, v: p == v,
        "ArnLike": _arn_like,
        "ArnNotLike": _arn_like,
        "Bool": lambda p, v: p.lower() == v.lower(),
        "NumericLessThan": lambda p, v: float(v) < float(p),
    }.get(base)
    assert match is not None, f"the evaluator does not know {operator}"
    assert qualifier in ("", "ForAnyValue", "ForAllValues"), operator
    hits = [any(match(p, v) for p in values) for v in actual]
    if qualifier == "ForAllValues":
        return all(hits)
    found = any(hits)
    return not found if negated else found


@dataclass(frozen=True)
class Request:
    principal: str | None  # the principal's ARN (a role session's aws:PrincipalArn is its role's ARN); None: anonymous
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> str | None:
        return self.principal.split(":")[4] if self.principal else None


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*" or principal == {"AWS": "*"}:
        return True
    assert isinstance(principal, dict) and set(principal) <= {"AWS", "Service"}, principal
    for arn in _as_list(principal.get("AWS", [])):
        if request.principal and (
            arn == request.principal or (arn.endswith(":root") and arn.split(":")[4] == request.account)
        ):
            return True
    return False


def _matches(statement: dict[str, Any], request: Request, context: dict[str, Any], *, resource_policy: bool) -> bool:
    assert not {"NotPrincipal", "NotAction", "NotResource"} & set(statement), statement
    if resource_policy and not _principal_matches(statement["Principal"], request):
        return False
    if not any(_glob(a, request.action, case=False) for a in _as_list(statement["Action"])):
        return False
    if not any(_arn_like(r, request.resource) or r == "*" for r in _as_list(statement["Resource"])):
        return False
    return all(
        _condition(operator, key, value, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, value in keys.items()
    )


def allowed(
    bucket_policy: Sequence[dict[str, Any]],
    request: Request,
    *,
    resource_account: str,
    identity: str | Sequence[dict[str, Any]],
) -> bool:
    context: dict[str, Any] = {
        "aws:SecureTransport": "true",
        "s3:TlsVersion": "1.3",
        "aws:ResourceAccount": resource_account,
        **request.context,
    }
    if request.principal:
        context |= {"aws:PrincipalArn": request.principal, "aws:PrincipalAccount": request.account}
    in_bucket = [s for s in bucket_policy if _matches(s, request, context, resource_policy=True)]
    in_identity = (
        []
        if identity == ALL or request.principal is None
        else [s for s in identity if _matches(s, request, context, resource_policy=False)]
    )
    if any(s["Effect"] == "Deny" for s in [*in_bucket, *in_identity]):
        return False
    by_bucket = any(s["Effect"] == "Allow" for s in in_bucket)
    by_identity = request.principal is not None and (
        identity == ALL or any(s["Effect"] == "Allow" for s in in_identity)
    )
    if request.account == resource_account:
        return by_bucket or by_identity
    return by_bucket and by_identity


def bucket_policy_alone(bucket_policy: Sequence[dict[str, Any]], request: Request, *, resource_account: str) -> bool:
    """What the bucket policy by itself decides: some Allow and no Deny (a cross-account request's whole answer when
    the caller's own policy allows it)."""
    return allowed(bucket_policy, request, resource_account=resource_account, identity=[]) or (
        request.account != resource_account
        and allowed(bucket_policy, request, resource_account=resource_account, identity=ALL)
    )


# --- the evaluator's own checks: it must be able to say no, and yes, for the right reason ----------------------------
def test_the_evaluator_follows_iam_semantics():
    role = "arn:aws:iam::111111111111:role/r"
    deny_unless = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::b/*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/r*"]}},
    }
    allow_account = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::b/*",
    }
    put = Request(role, "s3:PutObject", "arn:aws:s3:::b/k")
    assert allowed([deny_unless], put, resource_account="111111111111", identity=ALL)
    assert not allowed([deny_unless], put, resource_account="111111111111", identity=[])
    other = Request("arn:aws:iam::111111111111:role/x", "s3:PutObject", "arn:aws:s3:::b/k")
    assert not allowed([deny_unless], other, resource_account="111111111111", identity=ALL)
    # An absent key makes the negated operator true: anonymous is denied.
    assert not allowed(
        [deny_unless, allow_account],
        Request(None, "s3:PutObject", "arn:aws:s3:::b/k"),
        resource_account="x",
        identity=ALL,
    )
    # Cross-account needs both sides.
    a = Request("arn:aws:iam::222222222222:role/w", "s3:PutObject", "arn:aws:s3:::b/k")
    assert allowed([allow_account], a, resource_account="111111111111", identity=ALL)
    assert not allowed([allow_account], a, resource_account="111111111111", identity=[])
    assert not allowed([], a, resource_account="111111111111", identity=ALL)
    # ArnLike compares ARN parts: a wildcard in the resource part does not reach into the account.
    assert _arn_like("arn:aws:iam::1:role/*", "arn:aws:iam::1:role/a/b")
    assert not _arn_like("arn:aws:iam::1:role/*", "arn:aws:iam::2:role/a")
    assert _condition("Null", "k", "true", {}) and not _condition("Null", "k", "false", {})
    assert _condition("StringEqualsIfExists", "k", "v", {}) and not _condition("StringEquals", "k", "v", {})


# --- the principals around the lake ------------------------------------------------------------------------------
@dataclass
class Lake:
    cfg: config.AppConfig
    names: naming.LakeNames
    tables: list[naming.TableNames]
    policy: list[dict[str, Any]]
    deploy_role: str
    identities: dict[str, list[dict[str, Any]]]  # delivery role ARN -> its identity policy statements (account A)

    def role(self, name: str) -> str:
        return f"arn:{self.names.partition}:iam::{self.names.account}:role/{name}"

    @property
    def break_glass(self) -> str | None:
        name = self.cfg.data_lake.break_glass_role_name
        return self.role(name) if name else None

    @property
    def replay(self) -> str | None:
        name = self.cfg.data_lake.replay_role_name
        return self.role(name) if name else None

    def obj(self, key: str) -> str:
        return f"{self.names.bucket_arn}/{key}"

    def may(self, principal: str | None, action: str, resource: str, identity: Any = ALL) -> bool:
        return allowed(
            self.policy, Request(principal, action, resource), resource_account=self.names.account, identity=identity
        )

    def denied(self, principal: str, action: str, resource: str) -> bool:
        """An explicit Deny of the bucket policy matches: no identity policy anywhere can undo it."""
        request = Request(principal, action, resource)
        context = {"aws:PrincipalArn": principal, "aws:PrincipalAccount": request.account}
        return any(s["Effect"] == "Deny" and _matches(s, request, context, resource_policy=True) for s in self.policy)

    def keys(self, names: naming.TableNames) -> dict[str, str]:
        """One object key under each of the table's prefixes, as Firehose, replay and the lakehouse write them."""
        return {
            DATA: f"{names.root(DATA)}{HOUR}ddb-1.gz",
            ERRORS: f"{names.root(ERRORS)}processing-failed/{HOUR}ddb-1.gz",
            RAW: f"{names.root(RAW)}{HOUR}ddb-1.gz",
            "history": f"{names.iceberg_history_prefix}data/part-00000.parquet",
            "state": f"{names.iceberg_state_prefix}metadata/00001.metadata.json",
        }


def _resolve(value: Any, arns: dict[str, str]) -> Any:
    """A policy value with CloudFormation's functions replaced by what they resolve to."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return arns[value["Fn::GetAtt"][0]]
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(p, arns) for p in parts)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return {"AWS::Partition": "aws"}[value["Ref"]]
    if isinstance(value, dict):
        return {k: _resolve(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, arns) for v in value]
    return value


def _deploy_role(synthesized: Synthesized) -> str:
    """The role CloudFormation deploys the consumer stack with, as the cloud assembly hands it over."""
    stack = synthesized.consumer_stage.data_lake
    artifact = synthesized.consumer_stage.synth().get_stack_by_name(stack.stack_name)
    return artifact.cloud_formation_execution_role_arn.replace("${AWS::Partition}", stack.partition)


@pytest.fixture(scope="module")
def lake(synthesized: Synthesized, consumer: Template, producer: Template) -> Lake:
    cfg = synthesized.cfg
    names = naming.lake(cfg)
    buckets = consumer.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": names.bucket}})
    ((bucket_id, _),) = buckets.items()
    (key_id,) = consumer.find_resources("AWS::KMS::Key")
    (policy,) = consumer.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}}
    ).values()
    statements = _resolve(
        policy["Properties"]["PolicyDocument"]["Statement"], {bucket_id: names.bucket_arn, key_id: KEY_ARN}
    )
    tables = [t for _, t in naming.tables(cfg)]
    resources = producer.to_json()["Resources"]
    identities: dict[str, list[dict[str, Any]]] = {}
    for t in tables:
        (role_id,) = [
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == t.delivery_role
        ]
        attached = [
            s
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]
        ]
        # Resources of account A's own stream, function and log group are tokens here: none of them is in the lake.
        identities[t.delivery_role_arn] = [
            {**s, "Resource": [r if isinstance(r, str) else "arn:aws:unresolved:::" for r in _as_list(s["Resource"])]}
            for s in attached
        ]
    return Lake(cfg, names, tables, statements, _deploy_role(synthesized), identities)


def _b_principals(lake: Lake) -> dict[str, str]:
    """Principals of account B that are no exception to anything (their IAM allows everything)."""
    role, p, b = lake.role, lake.names.partition, lake.names.account
    return {
        "administrator role": role("Administrator"),
        "IAM user": f"arn:{p}:iam::{b}:user/alice",
        "lakehouse maintenance role": role(f"{lake.cfg.prefix}-lakehouse-maintenance"),
        # Names that merely resemble an exception: ArnNotLike compares the whole ARN.
        "look-alike of the deploying role": lake.deploy_role + "-copy",
        "look-alike in a path": role("team/" + lake.deploy_role.rsplit("/", 1)[1]),
    }


# --- 1. history and the controls that keep it --------------------------------------------------------------------
def test_nobody_but_the_deployment_and_break_glass_changes_history_or_its_controls(lake: Lake):
    targets = [(a, lake.names.bucket_arn) for a in PROTECTED_BUCKET_ACTIONS] + [
        (a, lake.obj(key)) for a in PROTECTED_OBJECT_ACTIONS for t in lake.tables for key in lake.keys(t).values()
    ]
    refused = {**_b_principals(lake), **({"replay role": lake.replay} if lake.replay else {})}
    for action, resource in targets:
        for who, principal in refused.items():
            assert not lake.may(principal, action, resource), (who, action, resource)
        for t in lake.tables:  # a delivery role, even if account A broadened it
            assert not lake.may(t.delivery_role_arn, action, resource), (t.key, action, resource)
        assert not lake.may(None, action, resource), ("anonymous", action)
        assert not lake.may("arn:aws:iam::999999999999:role/Admin", action, resource), ("another account", action)
        if lake.break_glass:
            assert lake.may(lake.break_glass, action, resource), ("break-glass", action, resource)


def test_the_policy_outlives_the_stack(consumer: Template, lake: Lake):
    (bucket_id,) = consumer.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": lake.names.bucket}})
    (policy,) = consumer.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}}
    ).values()
    assert (policy["DeletionPolicy"], policy["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


def test_deploying_again_still_works(lake: Lake):
    """The role CloudFormation deploys with may still write every bucket setting the template holds."""
    for action in PROTECTED_BUCKET_ACTIONS:
        assert lake.may(lake.deploy_role, action, lake.names.bucket_arn), action
    # It never needs to delete a version, and may not.
    for action in PROTECTED_OBJECT_ACTIONS:
        assert not lake.may(lake.deploy_role, action, lake.obj(lake.keys(lake.tables[0])[DATA])), action
    qualifier = lake.deploy_role.split(":role/")[1]
    assert qualifier.startswith("cdk-") and qualifier.endswith(
        f"-cfn-exec-role-{lake.names.account}-{lake.names.region}"
    )


def test_the_pipeline_deploys_the_consumer_with_the_excepted_role(
    synthesized: Synthesized, pipeline: Template, lake: Lake
):
    stack_name = synthesized.consumer_stage.data_lake.stack_name
    (codepipeline,) = pipeline.find_resources("AWS::CodePipeline::Pipeline").values()
    # The action that creates the change set names the role CloudFormation executes it with.
    creates = [
        action["Configuration"]
        for stage in codepipeline["Properties"]["Stages"]
        for action in stage["Actions"]
        if action["ActionTypeId"]["Category"] == "Deploy"
        and action["Configuration"].get("StackName") == stack_name
        and action["Configuration"]["ActionMode"] == "CHANGE_SET_REPLACE"
    ]
    roles = {_resolve(c["RoleArn"], {}) for c in creates}
    assert creates and roles == {lake.deploy_role}


def test_a_custom_bootstrap_qualifier_moves_the_exception_with_it():
    """Users who bootstrapped with --qualifier set @aws-cdk/core:bootstrapQualifier (the deployment needs it to find its
    roles and assets); the exception follows it, no lookup involved."""
    for context, qualifier in (({}, "hnb659fds"), ({"@aws-cdk/core:bootstrapQualifier": "lake42"}, "lake42")):
        stack = Stack(App(context=context), "S", env=Environment(account="222222222222", region="eu-west-1"))
        assert deployment_role_arn(stack, "aws") == (
            f"arn:aws:iam::222222222222:role/cdk-{qualifier}-cfn-exec-role-222222222222-eu-west-1"
        )


# --- 2. the change log: append-only, each table's prefixes written by its own delivery role -------------------------
def test_each_table_is_written_only_by_its_own_delivery_role(lake: Lake):
    for target in lake.tables:
        for kind in (DATA, ERRORS, RAW):
            resource = lake.obj(lake.keys(target)[kind])
            ghost = naming.TableNames(**{**target.__dict__, "key": "ghost", "delivery_role": "ddblake-ghost-x"})
            # A role of no configured table is explicitly denied; in one account (where a role's own policy would
            # suffice) so is every other table's role. Across accounts, they lack the bucket's Allow (below).
            assert lake.denied(ghost.delivery_role_arn, "s3:PutObject", resource)
            for writer in lake.tables if lake.cfg.same_account else ():
                assert lake.denied(writer.delivery_role_arn, "s3:PutObject", resource) is (writer.key != target.key)
            for writer in lake.tables:
                own = writer.key == target.key
                identity = lake.identities[writer.delivery_role_arn]
                assert lake.may(writer.delivery_role_arn, "s3:PutObject", resource, identity) is own, (
                    writer.key,
                    resource,
                )
                # Broadening the role in account A does not reach another table's prefixes.
                assert lake.may(writer.delivery_role_arn, "s3:PutObject", resource) is own, (writer.key, resource)
            for who, principal in _b_principals(lake).items():
                for action in CHANGE_LOG_WRITE_ACTIONS:
                    assert not lake.may(principal, action, resource), (who, action, resource)
            assert not lake.may(lake.deploy_role, "s3:PutObject", resource)
            if lake.replay:
                assert lake.may(lake.replay, "s3:PutObject", resource) is (kind == DATA), ("replay", resource)
            if lake.break_glass:
                assert lake.may(lake.break_glass, "s3:PutObject", resource)


def test_prefixes_of_unconfigured_tables_are_written_by_nobody(lake: Lake):
    ghost = naming.TableNames(**{**lake.tables[0].__dict__, "key": "ghost", "delivery_role": "ddblake-ghost-x"})
    for kind in (DATA, ERRORS, RAW):
        resource = lake.obj(lake.keys(ghost)[kind])
        for principal in [
            *_b_principals(lake).values(),
            ghost.delivery_role_arn,
            *(t.delivery_role_arn for t in lake.tables),
        ]:
            identity = lake.identities.get(principal, ALL)
            assert not lake.may(principal, "s3:PutObject", resource, identity), (principal, resource)


def test_delivery_roles_delete_nothing_anywhere(lake: Lake):
    for writer in lake.tables:
        for target in lake.tables:
            for key in lake.keys(target).values():
                for action in (*CHANGE_LOG_DELETE_ACTIONS, "s3:DeleteObjectVersion"):
                    assert not lake.may(writer.delivery_role_arn, action, lake.obj(key)), (writer.key, action, key)
        # And their own identity policy never asked for it.
        statements = lake.identities[writer.delivery_role_arn]
        assert not any(_glob(a, "s3:DeleteObject", case=False) for s in statements for a in _as_list(s["Action"]))


def test_the_change_log_is_append_only(lake: Lake):
    principals = [*_b_principals(lake).values(), lake.deploy_role, *([lake.replay] if lake.replay else [])]
    for t in lake.tables:
        for kind in (DATA, ERRORS, RAW):
            resource = lake.obj(lake.keys(t)[kind])
            for principal in principals:
                for action in (*CHANGE_LOG_DELETE_ACTIONS, "s3:DeleteObjectVersion"):
                    assert not lake.may(principal, action, resource), (principal, action, resource)
            if lake.break_glass:
                for action in (*CHANGE_LOG_DELETE_ACTIONS, "s3:DeleteObjectVersion"):
                    assert lake.may(lake.break_glass, action, resource), ("break-glass", action, resource)
            # Reading stays as it was: B's own principals by their IAM, the delivery role its own prefixes.
            assert lake.may(_b_principals(lake)["administrator role"], "s3:GetObject", resource)
            assert lake.may(t.delivery_role_arn, "s3:GetObject", resource, lake.identities[t.delivery_role_arn])


def _bare_lake(raw: dict[str, Any]) -> Lake:
    """The lake bucket's policy for ``raw`` without synthesizing the app: for layouts no configuration of the matrix
    has (several tables in one account)."""
    cfg = config.from_dict(raw)
    names = naming.lake(cfg)
    stack = Stack(App(), "Lake", env=Environment(account=cfg.consumer.account, region=cfg.consumer.region))
    tables = [t for _, t in naming.tables(cfg)]
    deploy_role = deployment_role_arn(stack, names.partition)
    lake = DataLakeBucket(
        stack,
        "DataLake",
        lake=names,
        producer_account=cfg.producer.account,
        tables=tables,
        key=kms.Key(stack, "Key"),
        access_logs=s3.Bucket(stack, "Logs"),
        noncurrent_version_expiration_days=90,
        deployment_role_arn=deploy_role,
        break_glass_role_arn=None,
        replay_role_arn=None,
        object_lock_retention_days=None,
    )
    template = Template.from_stack(stack)
    bucket_id = stack.get_logical_id(lake.bucket.node.default_child)
    (key_id,) = template.find_resources("AWS::KMS::Key")
    (policy,) = template.find_resources("AWS::S3::BucketPolicy").values()
    arns = {bucket_id: names.bucket_arn, key_id: KEY_ARN}
    statements = _resolve(policy["Properties"]["PolicyDocument"]["Statement"], arns)
    return Lake(cfg, names, tables, statements, deploy_role, {})


def test_in_one_account_no_table_writes_another_tables_prefixes():
    """Producer and consumer in one account (the sandbox): a delivery role's own IAM policy would suffice there, so
    the bucket policy's per-table denies carry the weight, even for a role someone broadened."""
    raw = configs.variant("two-tables")
    raw["consumer"]["account"] = raw["producer"]["account"]
    lake = _bare_lake(raw)
    assert lake.cfg.same_account and len(lake.tables) == 2
    for target in lake.tables:
        for kind in (DATA, ERRORS, RAW):
            resource = lake.obj(lake.keys(target)[kind])
            for writer in lake.tables:
                assert lake.may(writer.delivery_role_arn, "s3:PutObject", resource) is (writer.key == target.key)


# --- 3. the lakehouse keeps working -------------------------------------------------------------------------------
def test_the_lakehouse_prefix_stays_writable_and_deletable_but_keeps_its_versions(lake: Lake):
    maintenance = _b_principals(lake)["lakehouse maintenance role"]
    for t in lake.tables:
        for kind in ("history", "state"):
            resource = lake.obj(lake.keys(t)[kind])
            # Iceberg commits write new files; compaction, snapshot expiry and orphan-file removal delete current
            # objects (a delete marker in a versioned bucket).
            for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
                assert lake.may(maintenance, action, resource), (action, resource)
            assert not lake.may(maintenance, "s3:DeleteObjectVersion", resource), resource
            # No delivery role writes there.
            for writer in lake.tables:
                identity = lake.identities[writer.delivery_role_arn]
                assert not lake.may(writer.delivery_role_arn, "s3:PutObject", resource, identity), (
                    writer.key,
                    resource,
                )


# --- 4. Object Lock -----------------------------------------------------------------------------------------------
def test_object_lock_follows_the_configuration(consumer: Template, lake: Lake):
    (bucket,) = consumer.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": lake.names.bucket}}).values()
    props = bucket["Properties"]
    days = lake.cfg.data_lake.object_lock_retention_days
    if days is None:
        assert "ObjectLockEnabled" not in props and "ObjectLockConfiguration" not in props
        return
    assert props["ObjectLockEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    expected: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
    if days > 0:
        expected["Rule"] = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": days}}
    assert props["ObjectLockConfiguration"] == expected
    # Governance mode is only as strong as who may bypass it: nobody but the break-glass role (and the deployment).
    for principal in _b_principals(lake).values():
        assert not lake.may(principal, "s3:BypassGovernanceRetention", lake.obj(lake.keys(lake.tables[0])[DATA]))


def test_turning_object_lock_on_later_updates_the_bucket_in_place():
    """The registry schema of AWS::S3::Bucket (as shipped with the pinned cfn-lint) marks only the name properties
    create-only: ObjectLockEnabled and ObjectLockConfiguration change without replacing the lake bucket."""
    root = Path(cfnlint_schemas.__file__).parent
    digest = json.loads((root / "providers" / "us-east-1.json").read_text())["AWS::S3::Bucket"]
    schema = json.loads((root / "resources" / f"{digest}.json").read_text())
    create_only = set(schema["createOnlyProperties"])
    assert {"/properties/ObjectLockEnabled", "/properties/ObjectLockConfiguration"} & create_only == set()
    assert "/properties/BucketName" in create_only  # the schema is the one that says so


# --- 5. the policy fits S3's limit ----------------------------------------------------------------------------------
def test_the_bucket_policy_fits_s3s_size_limit(synthesized: Synthesized, lake: Lake):
    size = policy_bytes(synthesized.consumer_stage.data_lake.bucket, lake.names.bucket_arn)
    assert 0 < size <= BUCKET_POLICY_LIMIT


def test_too_many_tables_for_one_bucket_policy_is_a_config_error():
    raw = configs.variant("default")
    base = raw["tables"][0]
    raw["tables"] = [{**base, "name": f"table_number_{i:02d}_abcdefghij"} for i in range(30)]
    cfg = config.from_dict(raw)
    lake = naming.lake(cfg)
    stack = Stack(App(), "Lake", env=Environment(account=cfg.consumer.account, region=cfg.consumer.region))
    with pytest.raises(config.ConfigError) as caught:
        DataLakeBucket(
            stack,
            "DataLake",
            lake=lake,
            producer_account=cfg.producer.account,
            tables=[t for _, t in naming.tables(cfg)],
            key=kms.Key(stack, "Key"),
            access_logs=s3.Bucket(stack, "Logs"),
            noncurrent_version_expiration_days=90,
            deployment_role_arn=deployment_role_arn(stack, lake.partition),
            break_glass_role_arn=None,
            replay_role_arn=None,
            object_lock_retention_days=None,
        )
    (problem,) = caught.value.problems
    assert (
        problem.startswith("datalake.tables = 30 tables: the data-lake bucket policy would be") and "20480" in problem
    )


# --- 6. the configuration keys ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"break_glass_role_name": "ops", "replay_role_name": "ops"},
            "datalake.data_lake.replay_role_name = 'ops': must differ from datalake.data_lake.break_glass_role_name",
        ),
        ({"break_glass_role_name": "bad name"}, "datalake.data_lake.break_glass_role_name = 'bad name': must be null"),
        ({"object_lock_retention_days": -1}, "datalake.data_lake.object_lock_retention_days = -1: must be null"),
        ({"object_lock_retention_days": 36501}, "datalake.data_lake.object_lock_retention_days = 36501: must be null"),
    ],
)
def test_bad_integrity_settings_are_refused_with_the_key(changes: dict[str, Any], expected: str):
    raw = configs.variant("default")
    raw["data_lake"] = changes
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


# --- 7. replication of a locked lake ---------------------------------------------------------------------------
@pytest.mark.parametrize("retention", [None, 0, 30])
def test_replicating_a_locked_lake_reads_each_versions_lock(retention: int | None):
    raw = configs.variant("default")
    raw["data_lake"] = {
        "object_lock_retention_days": retention,
        "replica": {
            "account": "555566667777",
            "region": "eu-west-1",
            "bucket_name": "ddblake-lake-replica-555566667777",
            "key_arn": "arn:aws:kms:eu-west-1:555566667777:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        },
    }
    cfg = config.from_dict(raw)
    stack = Stack(App(), "Lake", env=Environment(account=cfg.consumer.account, region=cfg.consumer.region))
    bucket = s3.Bucket(stack, "Bucket", bucket_name=naming.lake(cfg).bucket, versioned=True)
    replication = DataLakeReplication(stack, "Replication", cfg=cfg, bucket=bucket, key=kms.Key(stack, "Key"))
    assert replication.role is not None
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    (reads,) = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "ReadSourceObjectVersions"
    ]
    lock_reads = {"s3:GetObjectRetention", "s3:GetObjectLegalHold"}
    assert (lock_reads <= set(reads["Action"])) is (retention is not None)
