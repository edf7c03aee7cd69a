"""The producer finds the consumer only through shared names: prove that, for every configured table, the names
and ARNs the producer's templates use are exactly the ones the consumer's bucket and key policies trust, for the
pipeline's two stages and for the same-account sandbox."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Template

from shared import naming
from shared.config import AppConfig
from shared.permissions import DELIVERY_BUCKET_ACTIONS, DELIVERY_KEY_ACTIONS, DELIVERY_OBJECT_ACTIONS
from tests.conftest import SANDBOX_ACCOUNT, SANDBOX_PREFIX, template_of


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(resources: dict[str, Any], type_: str, key: str) -> list[dict[str, Any]]:
    return [s for r in resources.values() if r["Type"] == type_ for s in r["Properties"][key]["Statement"]]


def _principal_arns(statement: dict[str, Any]) -> list[str]:
    return _as_list(statement.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn", []))


@dataclass
class Consumer:
    """What account B's template creates and whom it trusts, with the bucket's references resolved to its name."""

    resources: dict[str, Any]
    partition: str
    bucket_id: str
    bucket_name: str
    key_id: str
    alias: str
    bucket_statements: list[dict[str, Any]]
    key_statements: list[dict[str, Any]]

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket_name}"

    def text(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if value == {"Fn::GetAtt": [self.bucket_id, "Arn"]}:
            return self.bucket_arn
        if "Fn::Join" in value:
            delimiter, parts = value["Fn::Join"]
            return delimiter.join(self.text(p) for p in parts)
        raise AssertionError(f"unexpected reference in a consumer policy: {value!r}")

    def allows(self) -> list[dict[str, Any]]:
        """The bucket policy's Allow statements for the producer's roles (those naming aws:PrincipalArn)."""
        return [s for s in self.bucket_statements if s["Effect"] == "Allow" and _principal_arns(s)]


def _consumer(template: Template, cfg: AppConfig) -> Consumer:
    resources = template.to_json()["Resources"]
    # The data-lake bucket: the one whose policy trusts the producer's roles (found without the shared names).
    trusting = {
        r["Properties"]["Bucket"]["Ref"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and any(_principal_arns(s) for s in r["Properties"]["PolicyDocument"]["Statement"])
    }
    (bucket_id,) = trusting
    (key_id,) = [lid for lid, r in resources.items() if r["Type"] == "AWS::KMS::Key"]
    (alias,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::KMS::Alias"]
    assert alias["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (bucket_policy,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return Consumer(
        resources=resources,
        partition=cfg.consumer.partition,
        bucket_id=bucket_id,
        bucket_name=resources[bucket_id]["Properties"]["BucketName"],
        key_id=key_id,
        alias=alias["AliasName"],
        bucket_statements=bucket_policy["PolicyDocument"]["Statement"],
        key_statements=resources[key_id]["Properties"]["KeyPolicy"]["Statement"],
    )


def _role_arn(partition: str, account: str, role: dict[str, Any]) -> str:
    return f"arn:{partition}:iam::{account}:role/{role['Properties']['RoleName']}"


def _check_pair(consumer_stack: Stack, producer_stack: Stack, cfg: AppConfig) -> None:
    consumer = _consumer(template_of(consumer_stack), cfg)
    producer = template_of(producer_stack).to_json()["Resources"]
    producer_account, consumer_account = producer_stack.account, consumer_stack.account
    partition = cfg.producer.partition
    lake = naming.lake(cfg)
    tables = naming.tables(cfg)
    assert (consumer.bucket_name, consumer.alias, consumer_account) == (lake.bucket, lake.key_alias, lake.account)

    # The consumer's side: which roles it trusts, and where each may write.
    trusted = {names.delivery_role_arn for _, names in tables}
    (bucket_level,) = [
        s for s in consumer.allows() if [consumer.text(r) for r in _as_list(s["Resource"])] == [consumer.bucket_arn]
    ]
    assert set(_principal_arns(bucket_level)) == trusted
    assert sorted(_as_list(bucket_level["Action"])) == sorted(DELIVERY_BUCKET_ACTIONS)
    object_statements = [s for s in consumer.allows() if s is not bucket_level]
    assert len(object_statements) == len(tables)
    (key_statement,) = [s for s in consumer.key_statements if _principal_arns(s)]
    assert set(_principal_arns(key_statement)) == trusted
    assert key_statement["Principal"] == {"AWS": f"arn:{partition}:iam::{producer_account}:root"}
    assert sorted(_as_list(key_statement["Action"])) == sorted(DELIVERY_KEY_ACTIONS)
    key_conditions = key_statement["Condition"]["StringEquals"]
    assert key_conditions["kms:EncryptionContext:aws:s3:arn"] == consumer.bucket_arn

    # The producer writes with no SSE headers: B's bucket default (its key, by ARN) must do the encrypting, and
    # each encryption deny must apply only when its header is present (a negated operator is true for an absent
    # key, with or without ...IfExists).
    encryption = consumer.resources[consumer.bucket_id]["Properties"]["BucketEncryption"]
    (rule,) = encryption["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [consumer.key_id, "Arn"]},
    }
    for deny in (s for s in consumer.bucket_statements if s["Effect"] == "Deny" and "s3:PutObject" in s["Action"]):
        negated = [k for op, keys in deny["Condition"].items() if op.startswith("StringNot") for k in keys]
        present = [k for k, v in deny["Condition"].get("Null", {}).items() if v == "false"]
        assert not any(op.endswith("IfExists") for op in deny["Condition"]), deny
        assert set(negated) <= set(present), deny

    for spec, names in tables:
        # ... the producer's role for this table is the one ARN the consumer trusts for it ...
        (role_id,) = [
            lid
            for lid, r in producer.items()
            if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == names.delivery_role
        ]
        role_arn = _role_arn(partition, producer_account, producer[role_id])
        assert role_arn == names.delivery_role_arn
        # ... named in exactly one object statement (its own), alone, for its own folders only.
        (mine,) = [s for s in object_statements if role_arn in _principal_arns(s)]
        assert _principal_arns(mine) == [role_arn], spec.name
        granted = sorted(consumer.text(r) for r in _as_list(mine["Resource"]))
        assert granted == sorted(f"{lake.bucket_arn}/{root}*" for root in names.roots), spec.name
        assert sorted(_as_list(mine["Action"])) == sorted(DELIVERY_OBJECT_ACTIONS)

        # The producer's role asks for exactly what the consumer grants it, on the same ARNs.
        (policy,) = [
            r["Properties"]["PolicyDocument"]["Statement"]
            for r in producer.values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        ]
        by_sid = {s.get("Sid"): s for s in policy}
        assert by_sid["DataLakeBucket"]["Resource"] == consumer.bucket_arn
        assert set(_as_list(by_sid["DataLakeBucket"]["Action"])) <= set(_as_list(bucket_level["Action"]))
        objects = by_sid["DataLakeObjectsOfThisTable"]
        assert sorted(_as_list(objects["Resource"])) == granted
        assert set(_as_list(objects["Action"])) <= set(_as_list(mine["Action"]))
        key = by_sid["DataLakeKeyViaS3"]
        assert key["Resource"] == f"arn:{consumer.partition}:kms:{consumer_stack.region}:{consumer_account}:key/*"
        # The key of the consumer's account, through S3, for the consumer's bucket: no alias condition.
        assert key["Condition"] == {"StringEquals": {**key_conditions, "aws:ResourceAccount": consumer_account}}
        for sid in ("DataLakeBucket", "DataLakeObjectsOfThisTable"):
            assert by_sid[sid]["Condition"] == {"StringEquals": {"aws:ResourceAccount": consumer_account}}
        assert set(_as_list(key["Action"])) <= set(_as_list(key_statement["Action"]))

        # The delivery stream writes into the consumer's bucket, under folders its role was granted.
        (delivery,) = [
            r["Properties"]
            for r in producer.values()
            if r["Type"] == "AWS::KinesisFirehose::DeliveryStream"
            and r["Properties"]["DeliveryStreamName"] == names.delivery_stream
        ]
        destination = delivery["ExtendedS3DestinationConfiguration"]
        backup = destination["S3BackupConfiguration"]
        assert destination["RoleARN"] == backup["RoleARN"] == {"Fn::GetAtt": [role_id, "Arn"]}
        for configuration in (destination, backup):
            assert configuration["BucketARN"] == consumer.bucket_arn
            assert "KMSEncryptionConfig" not in configuration.get("EncryptionConfiguration", {})
            for prefix in (configuration["Prefix"], configuration["ErrorOutputPrefix"]):
                obj = f"{consumer.bucket_arn}/{prefix}part-0001.gz"
                assert any(fnmatch.fnmatchcase(obj, g) for g in granted), (spec.name, prefix)
                for other in object_statements:
                    if other is not mine:
                        assert not any(
                            fnmatch.fnmatchcase(obj, consumer.text(g)) for g in _as_list(other["Resource"])
                        ), (spec.name, prefix)


def test_pipeline_stages_agree_on_names(synthesized, cfg):
    assert synthesized.producer_stage.account == cfg.producer.account
    assert synthesized.consumer_stage.account == cfg.consumer.account
    _check_pair(synthesized.consumer_stage.data_lake, synthesized.producer_stage.producer, cfg)


def test_sandbox_same_account_stages_agree_on_names(sandboxed):
    sandbox = sandboxed.sandbox
    assert sandbox is not None
    assert sandbox.data_lake.account == sandbox.producer.account == SANDBOX_ACCOUNT
    sandbox_cfg = sandboxed.cfg.for_sandbox(SANDBOX_ACCOUNT, prefix=SANDBOX_PREFIX)
    assert sandbox_cfg.prefix == SANDBOX_PREFIX
    _check_pair(sandbox.data_lake, sandbox.producer, sandbox_cfg)


def test_stages_hold_no_cross_stack_references(synthesized):
    # Different accounts: an Fn::ImportValue or a cross-stage parameter would fail to deploy.
    _assert_no_cross_stack_references([synthesized.consumer_stage.data_lake, synthesized.producer_stage.producer])


def test_sandbox_stacks_hold_no_cross_stack_references(sandboxed):
    assert sandboxed.sandbox is not None
    _assert_no_cross_stack_references([sandboxed.sandbox.data_lake, sandboxed.sandbox.producer])


def _assert_no_cross_stack_references(stacks: list[Stack]) -> None:
    for stack in stacks:
        template = template_of(stack).to_json()
        assert "Fn::ImportValue" not in str(template), stack.node.path
        assert not template.get("Parameters", {}).keys() - {"BootstrapVersion"}, stack.node.path


def test_sandbox_deploys_consumer_before_producer(sandboxed):
    sandbox = sandboxed.sandbox
    assert sandbox is not None
    assert sandbox.data_lake in sandbox.producer.dependencies


def test_sandbox_names_carry_the_developers_prefix(sandboxed):
    sandbox = sandboxed.sandbox
    assert sandbox is not None
    names = [
        r["Properties"].get("BucketName", "")
        for r in template_of(sandbox.data_lake).find_resources("AWS::S3::Bucket").values()
    ]
    assert f"{SANDBOX_PREFIX}-datalake-{SANDBOX_ACCOUNT}-{sandboxed.cfg.producer.region}" in names
    # Stack names too: a second developer's sandbox in the same account never updates the first one's stacks.
    assert {sandbox.data_lake.stack_name, sandbox.producer.stack_name} == {
        f"{SANDBOX_PREFIX}-sandbox-datalake",
        f"{SANDBOX_PREFIX}-sandbox-capture",
    }
