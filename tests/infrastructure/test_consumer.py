"""Account B: the data-lake bucket, its key, its log bucket, and whom they trust, for every configured table."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Template

from shared import naming
from shared.permissions import DELIVERY_S3_ACTIONS
from tests.infrastructure.test_integrity import Request, _resolve, bucket_policy_alone

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}
RETAIN_EXCEPT_ON_CREATE = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}


def _bucket(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": name}})
    assert len(found) == 1, f"expected one bucket named {name}, found {list(found)}"
    return next(iter(found.items()))


def _policy_statements(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}})
    assert len(policies) == 1
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


def _key(template: Template) -> tuple[str, dict[str, Any]]:
    keys = template.find_resources("AWS::KMS::Key")
    assert len(keys) == 1
    return next(iter(keys.items()))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Arns(dict):
    """Logical ID -> what its ARN resolves to: the bucket's own ARN, any other resource its logical ID."""

    def __missing__(self, logical_id: str) -> str:
        return f"arn:aws:cloudformation:::{logical_id}"


def may_put_object(
    statements: list[dict[str, Any]],
    role_arn: str,
    key: str,
    bucket_id: str,
    bucket: str,
    headers: dict[str, Any] | None = None,
) -> bool:
    """What the bucket policy alone decides for an s3:PutObject by ``role_arn`` over TLS with the given SSE headers
    (none: Firehose's and replay's writes): some Allow matches and no Deny does, under IAM's condition semantics
    (the evaluator of tests/infrastructure/test_integrity.py, which also evaluates the integrity denies)."""
    arns = _Arns({bucket_id: f"arn:aws:s3:::{bucket}"})
    request = Request(role_arn, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", _resolve(headers or {}, arns))
    # The lake bucket's name holds its account (shared/naming.py): "<prefix>-datalake-<account>-<region>".
    (account,) = re.findall(r"-(\d{12})-", bucket)
    return bucket_policy_alone(_resolve(statements, arns), request, resource_account=account)


@pytest.fixture(scope="module")
def lake(cfg) -> naming.LakeNames:
    return naming.lake(cfg)


@pytest.fixture(scope="module")
def tables(cfg) -> list[naming.TableNames]:
    return [names for _, names in naming.tables(cfg)]


@pytest.fixture(scope="module")
def data_lake(consumer: Template, lake):
    return _bucket(consumer, lake.bucket)


@pytest.fixture(scope="module")
def log_bucket(consumer: Template, lake):
    return _bucket(consumer, lake.access_log_bucket)


def test_bucket_name_is_globally_unique_and_valid(cfg, lake):
    assert cfg.consumer.account in lake.bucket and cfg.consumer.region in lake.bucket
    assert len(lake.bucket) <= 63 and lake.bucket == lake.bucket.lower()


def test_data_lake_is_versioned_and_retained_except_on_create(data_lake):
    _, bucket = data_lake
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    # A failed first create cleans up, so the retry does not fail with "already exists".
    assert {k: bucket[k] for k in RETAIN_EXCEPT_ON_CREATE} == RETAIN_EXCEPT_ON_CREATE


def test_data_lake_uses_the_cmk_with_bucket_keys(data_lake, consumer: Template):
    key_id, _ = _key(consumer)
    rule = data_lake[1]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
            },
        }
    ]


def test_data_lake_blocks_public_access_and_acls(data_lake):
    props = data_lake[1]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_data_lake_logs_to_the_log_bucket(data_lake, log_bucket, lake):
    logging = data_lake[1]["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": log_bucket[0]}
    assert logging["LogFilePrefix"] == lake.bucket + "/"


def test_data_lake_lifecycle(data_lake, cfg):
    rules = data_lake[1]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": cfg.data_lake.noncurrent_version_expiration_days}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # Current data is never expired by the lake itself.
    assert "ExpirationInDays" not in rule


@pytest.mark.parametrize("which", ["data_lake", "log_bucket"])
def test_buckets_deny_insecure_transport(which, request, consumer: Template):
    bucket_id, _ = request.getfixturevalue(which)
    denies = [s for s in _policy_statements(consumer, bucket_id) if s["Effect"] == "Deny"]
    tls = [s for s in denies if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert tls and tls[0]["Principal"] == {"AWS": "*"} and tls[0]["Action"] == "s3:*"
    old_tls = [s for s in denies if "NumericLessThan" in s.get("Condition", {})]
    assert old_tls and old_tls[0]["Condition"]["NumericLessThan"] == {"s3:TlsVersion": 1.2}


def test_bucket_policy_lets_exactly_the_delivery_roles_write_each_its_own_prefixes(
    data_lake, consumer: Template, cfg, tables
):
    bucket_id, _ = data_lake
    allows = [s for s in _policy_statements(consumer, bucket_id) if s["Effect"] == "Allow"]
    for statement in allows:
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{cfg.producer.account}:root"}
    bucket_level = [s for s in allows if s["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}]
    assert len(bucket_level) == 1
    assert sorted(_as_list(bucket_level[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"])) == sorted(
        t.delivery_role_arn for t in tables
    )
    object_level = [s for s in allows if s is not bucket_level[0]]
    assert len(object_level) == len(tables)
    for names in tables:
        (own,) = [
            s for s in object_level if s["Condition"] == {"ArnEquals": {"aws:PrincipalArn": names.delivery_role_arn}}
        ]
        # Only this table's data, errors and raw prefixes, nothing else in the lake.
        assert own["Resource"] == [
            {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{kind}/{names.key}/*"]]}
            for kind in ("data", "errors", "raw")
        ]
    actions = {a for s in allows for a in _as_list(s["Action"])}
    assert actions == set(DELIVERY_S3_ACTIONS)


def test_a_tables_role_cannot_write_another_tables_prefixes(data_lake, consumer: Template, lake, tables):
    bucket_id, _ = data_lake
    statements = _policy_statements(consumer, bucket_id)
    other = naming.TableNames(**{**tables[0].__dict__, "key": "other", "delivery_role": "ddblake-other-x"})
    for writer in [*tables, other]:
        for target in tables:
            for kind in (naming.DATA, naming.ERRORS, naming.RAW):
                key = f"{target.root(kind)}year=2026/month=11/day=29/hour=10/part-1.gz"
                expected = writer.key == target.key
                assert may_put_object(statements, writer.delivery_role_arn, key, bucket_id, lake.bucket) is expected, (
                    writer.key,
                    key,
                )
        # Nowhere outside the table folders.
        assert not may_put_object(statements, writer.delivery_role_arn, "athena-results/x", bucket_id, lake.bucket)


SSE, SSE_KEY = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"


def test_bucket_policy_takes_header_less_writes_and_refuses_other_encryption(
    data_lake, consumer: Template, lake, tables
):
    bucket_id, _ = data_lake
    key_id, _ = _key(consumer)
    lake_key = {"Fn::GetAtt": [key_id, "Arn"]}
    statements = _policy_statements(consumer, bucket_id)
    names = tables[0]
    key = f"{names.root(naming.DATA)}year=2026/month=11/day=29/hour=10/part-1.gz"

    def put(headers: dict[str, Any]) -> bool:
        return may_put_object(statements, names.delivery_role_arn, key, bucket_id, lake.bucket, headers)

    # Firehose sends no SSE headers: the bucket default (the lake key) applies, and the write is allowed.
    assert put({})
    assert put({SSE: "aws:kms", SSE_KEY: lake_key})
    # SSE-S3, another key, or SSE-KMS without a key (S3 would use aws/s3) are refused.
    assert not put({SSE: "AES256"})
    assert not put({SSE: "aws:kms", SSE_KEY: "arn:aws:kms:eu-west-1:999999999999:key/other"})
    assert not put({SSE: "aws:kms"})
    assert not put({SSE: "aws:kms:dsse", SSE_KEY: lake_key})
    for deny in (s for s in statements if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"):
        assert deny["Principal"] == {"AWS": "*"}
        assert deny["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]}


def test_key_rotates_is_retained_and_aliased(consumer: Template, lake):
    _, key = _key(consumer)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert {k: key[k] for k in RETAIN_EXCEPT_ON_CREATE} == RETAIN_EXCEPT_ON_CREATE
    consumer.has_resource_properties("AWS::KMS::Alias", {"AliasName": lake.key_alias})


def test_key_policy_lets_producer_use_key_only_as_a_delivery_role_via_s3_for_this_bucket(
    consumer: Template, cfg, lake, tables
):
    _, key = _key(consumer)
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    producer = [s for s in statements if s.get("Sid") == "AllowProducerDeliveryRoleViaS3ForDataLakeBucket"]
    assert len(producer) == 1
    statement = producer[0]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{cfg.producer.account}:root"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    condition = statement["Condition"]
    assert sorted(_as_list(condition["ArnEquals"]["aws:PrincipalArn"])) == sorted(t.delivery_role_arn for t in tables)
    assert condition["StringEquals"] == {
        "kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com",
        # Bucket Keys: the encryption context is the bucket ARN, not an object ARN.
        "kms:EncryptionContext:aws:s3:arn": lake.bucket_arn,
    }
    # Account B administers its key; no principal of another account gets anything else.
    others = [s for s in statements if s is not statement]
    assert all(cfg.producer.account not in str(s["Principal"]) or cfg.same_account for s in others)


def test_log_bucket(log_bucket, cfg):
    _, bucket = log_bucket
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["ExpirationInDays"] == cfg.data_lake.access_log_expiration_days
    assert {k: bucket[k] for k in RETAIN_EXCEPT_ON_CREATE} == RETAIN_EXCEPT_ON_CREATE


def test_log_bucket_accepts_logs_only_from_the_data_lake(log_bucket, data_lake, consumer: Template):
    statements = _policy_statements(consumer, log_bucket[0])
    logging = [s for s in statements if s["Effect"] == "Allow"]
    assert logging and all(s["Principal"] == {"Service": "logging.s3.amazonaws.com"} for s in logging)
    sources = [a for s in logging for a in _as_list(s["Condition"]["ArnLike"]["aws:SourceArn"])]
    assert {"Fn::GetAtt": [data_lake[0], "Arn"]} in sources


def test_outputs(consumer: Template, lake):
    outputs = consumer.find_outputs("*")
    assert {"DataLakeBucketName", "DataLakeBucketArn", "DataLakeKeyArn", "DataLakeKeyAlias"} <= set(outputs)
    assert outputs["DataLakeKeyAlias"]["Value"] == lake.key_alias


def test_consumer_stage_targets_account_b(synthesized, cfg):
    stack = synthesized.consumer_stage.data_lake
    assert (stack.account, stack.region) == (cfg.consumer.account, cfg.consumer.region)


def test_no_s3_bucket_allows_public_principals_to_read(consumer: Template):
    for policy in consumer.find_resources("AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != {"AWS": "*"} and statement["Principal"] != "*"
