"""Account B: the data-lake bucket, its key, its log bucket, and whom they trust."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from shared import naming
from shared.permissions import DELIVERY_S3_ACTIONS

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


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


@pytest.fixture(scope="module")
def data_lake(consumer: Template, cfg):
    return _bucket(consumer, naming.data_lake_bucket_name(cfg))


@pytest.fixture(scope="module")
def log_bucket(consumer: Template, cfg):
    return _bucket(consumer, naming.access_log_bucket_name(cfg))


def test_bucket_name_is_globally_unique_and_valid(cfg):
    name = naming.data_lake_bucket_name(cfg)
    assert cfg.consumer.account in name and cfg.consumer.region in name
    assert len(name) <= 63 and name == name.lower()


def test_data_lake_is_versioned_and_retained(data_lake):
    _, bucket = data_lake
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


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


def test_data_lake_logs_to_the_log_bucket(data_lake, log_bucket, cfg):
    logging = data_lake[1]["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": log_bucket[0]}
    assert logging["LogFilePrefix"] == naming.data_lake_bucket_name(cfg) + "/"


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
    tls = [s for s in denies if s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}]
    assert tls and tls[0]["Principal"] == {"AWS": "*"} and tls[0]["Action"] == "s3:*"
    old_tls = [s for s in denies if "NumericLessThan" in s["Condition"]]
    assert old_tls and old_tls[0]["Condition"]["NumericLessThan"] == {"s3:TlsVersion": 1.2}


def test_bucket_policy_lets_exactly_the_delivery_role_write(data_lake, consumer: Template, cfg):
    bucket_id, _ = data_lake
    allows = [s for s in _policy_statements(consumer, bucket_id) if s["Effect"] == "Allow"]
    assert {s["Sid"] for s in allows} == {"AllowProducerFirehoseBucketAccess", "AllowProducerFirehoseObjectWrites"}
    for statement in allows:
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{cfg.producer.account}:root"}
        assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": naming.delivery_role_arn(cfg)}}
    actions = {a for s in allows for a in s["Action"]}
    assert (
        actions
        == set(DELIVERY_S3_ACTIONS)
        == {
            "s3:AbortMultipartUpload",
            "s3:GetBucketLocation",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:ListBucketMultipartUploads",
            "s3:PutObject",
            "s3:PutObjectAcl",
        }
    )
    bucket_level = next(s for s in allows if s["Sid"] == "AllowProducerFirehoseBucketAccess")
    assert bucket_level["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    objects = next(s for s in allows if s["Sid"] == "AllowProducerFirehoseObjectWrites")
    # Only this table's data, errors and raw prefixes, nothing else in the lake.
    assert objects["Resource"] == [
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{kind}/{cfg.table.name}/*"]]}
        for kind in ("data", "errors", "raw")
    ]


def test_key_rotates_is_retained_and_aliased(consumer: Template, cfg):
    _, key = _key(consumer)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    consumer.has_resource_properties("AWS::KMS::Alias", {"AliasName": naming.data_lake_key_alias(cfg)})


def test_key_policy_lets_producer_use_key_only_as_delivery_role_via_s3_for_this_bucket(consumer: Template, cfg):
    _, key = _key(consumer)
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    producer = [s for s in statements if s.get("Sid") == "AllowProducerDeliveryRoleViaS3ForDataLakeBucket"]
    assert len(producer) == 1
    statement = producer[0]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{cfg.producer.account}:root"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": naming.delivery_role_arn(cfg)},
        "StringEquals": {
            "kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com",
            # Bucket Keys: the encryption context is the bucket ARN, not an object ARN.
            "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{naming.data_lake_bucket_name(cfg)}",
        },
    }
    # Account B keeps administering its key; no other principal gets anything.
    others = [s for s in statements if s is not statement]
    assert [s["Principal"] for s in others] == [{"AWS": f"arn:aws:iam::{cfg.consumer.account}:root"}]


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
    assert bucket["DeletionPolicy"] == "Retain"


def test_log_bucket_accepts_logs_only_from_the_data_lake(log_bucket, data_lake, consumer: Template):
    statements = _policy_statements(consumer, log_bucket[0])
    logging = [s for s in statements if s["Effect"] == "Allow"]
    assert len(logging) == 1
    assert logging[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert logging[0]["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": [data_lake[0], "Arn"]}


def test_outputs(consumer: Template, cfg):
    outputs = consumer.find_outputs("*")
    assert {"DataLakeBucketName", "DataLakeBucketArn", "DataLakeKeyArn", "DataLakeKeyAlias"} <= set(outputs)
    assert outputs["DataLakeKeyAlias"]["Value"] == naming.data_lake_key_alias(cfg)


def test_consumer_stage_targets_account_b(synthesized, cfg):
    stack = synthesized.consumer_stage.data_lake
    assert (stack.account, stack.region) == (cfg.consumer.account, cfg.consumer.region)


def test_no_s3_bucket_allows_public_principals_to_read(consumer: Template):
    for policy in consumer.find_resources("AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != {"AWS": "*"} and statement["Principal"] != "*"


def test_athena_table_reads_the_data_prefix_with_partition_projection(consumer: Template, cfg):
    (database,) = consumer.find_resources("AWS::Glue::Database").values()
    db_name = database["Properties"]["DatabaseInput"]["Name"]
    (table,) = consumer.find_resources("AWS::Glue::Table").values()
    props = table["Properties"]
    assert props["DatabaseName"] == db_name
    table_input = props["TableInput"]
    assert table_input["Name"] == cfg.table.name
    location = f"s3://{naming.data_lake_bucket_name(cfg)}/data/{cfg.table.name}/"
    storage = table_input["StorageDescriptor"]
    assert storage["Location"] == location
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    params = table_input["Parameters"]
    assert params["projection.enabled"] == "true"
    # The projected layout is exactly the prefix Firehose writes (naming.data_prefix with its expressions).
    template = params["storage.location.template"]
    assert template == location + "year=${year}/month=${month}/day=${day}/hour=${hour}/"
    firehose_layout = (
        naming.data_prefix(cfg)
        .replace("!{timestamp:yyyy}", "${year}")
        .replace("!{timestamp:MM}", "${month}")
        .replace("!{timestamp:dd}", "${day}")
        .replace("!{timestamp:HH}", "${hour}")
    )
    assert template == f"s3://{naming.data_lake_bucket_name(cfg)}/{firehose_layout}"
    assert [k["Name"] for k in table_input["PartitionKeys"]] == ["year", "month", "day", "hour"]
    columns = [c["Name"] for c in storage["Columns"]]
    assert columns[-2:] == [cfg.table.partition_key, cfg.table.sort_key]


def test_athena_metadata_columns_are_the_transforms(consumer: Template):
    from consumer.catalog import METADATA_COLUMNS
    from lambdas.transform.record import METADATA_COLUMNS as TRANSFORM_COLUMNS

    assert [name for name, _ in METADATA_COLUMNS] == list(TRANSFORM_COLUMNS)
    (table,) = consumer.find_resources("AWS::Glue::Table").values()
    declared = table["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in declared[: len(METADATA_COLUMNS)]] == list(METADATA_COLUMNS)
