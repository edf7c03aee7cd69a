"""The producer finds the consumer only through shared names: prove both sides use the same ones."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.conftest import template_of


def _statements(template: Template, type_: str, key: str) -> list[dict[str, Any]]:
    return [s for r in template.find_resources(type_).values() for s in r["Properties"][key]["Statement"]]


def _trusted_role_arns(consumer: Template) -> set[str]:
    statements = _statements(consumer, "AWS::S3::BucketPolicy", "PolicyDocument")
    statements += _statements(consumer, "AWS::KMS::Key", "KeyPolicy")
    return {
        s["Condition"]["ArnEquals"]["aws:PrincipalArn"] for s in statements if "ArnEquals" in s.get("Condition", {})
    }


def _check_pair(consumer: Template, producer: Template, producer_account: str) -> None:
    # What the consumer creates ...
    (bucket,) = consumer.find_resources("AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": {}}}).values()
    bucket_name = bucket["Properties"]["BucketName"]
    (alias,) = consumer.find_resources("AWS::KMS::Alias").values()
    alias_name = alias["Properties"]["AliasName"]
    consumer_outputs = consumer.find_outputs("*")
    assert consumer_outputs["DataLakeKeyAlias"]["Value"] == alias_name

    # ... and whom it trusts ...
    trusted = _trusted_role_arns(consumer)
    assert len(trusted) == 1
    (trusted_role,) = trusted

    # ... against what the producer uses.
    (role,) = producer.find_resources(
        "AWS::IAM::Role", {"Properties": {"RoleName": trusted_role.split("/")[-1]}}
    ).values()
    assert trusted_role == f"arn:aws:iam::{producer_account}:role/{role['Properties']['RoleName']}"
    (stream,) = producer.find_resources("AWS::KinesisFirehose::DeliveryStream").values()
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == f"arn:aws:s3:::{bucket_name}"
    key_arn = destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"]
    assert key_arn.endswith(":" + alias_name)
    role_statements = _statements(producer, "AWS::IAM::Policy", "PolicyDocument")
    key_statement = next(s for s in role_statements if s.get("Sid") == "DataLakeKeyViaS3")
    assert key_statement["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == alias_name


def test_pipeline_stages_agree_on_names(synthesized, consumer: Template, producer: Template, cfg):
    _check_pair(consumer, producer, cfg.producer.account)


def test_sandbox_same_account_stages_agree_on_names(synthesized):
    sandbox = synthesized.sandbox
    consumer = template_of(sandbox.data_lake)
    producer = template_of(sandbox.producer)
    assert sandbox.data_lake.account == sandbox.producer.account == "444455556666"
    _check_pair(consumer, producer, "444455556666")


def test_stages_hold_no_cross_stack_references(synthesized):
    # Different accounts: an Fn::ImportValue or a cross-stage parameter would fail to deploy.
    for stack in (synthesized.consumer_stage.data_lake, synthesized.producer_stage.producer):
        template = template_of(stack).to_json()
        assert "Fn::ImportValue" not in str(template)
        assert not template.get("Parameters", {}).keys() - {"BootstrapVersion"}


def test_sandbox_deploys_consumer_before_producer(synthesized):
    sandbox = synthesized.sandbox
    assert sandbox.data_lake in sandbox.producer.dependencies
