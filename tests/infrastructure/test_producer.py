"""Account A: table -> stream -> Firehose (+ transform) -> B's bucket, its network, role and alarms."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from producer import monitoring
from producer.transform import HANDLER
from shared import naming


def _one(template: Template, type_: str, props: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(type_, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {type_}, found {list(found)}"
    return next(iter(found.items()))


@pytest.fixture(scope="module")
def delivery(producer: Template) -> dict[str, Any]:
    return _one(producer, "AWS::KinesisFirehose::DeliveryStream")[1]["Properties"]


@pytest.fixture(scope="module")
def destination(delivery) -> dict[str, Any]:
    return delivery["ExtendedS3DestinationConfiguration"]


@pytest.fixture(scope="module")
def transform(producer: Template, synthesized) -> tuple[str, dict[str, Any]]:
    return _one(producer, "AWS::Lambda::Function", {"Handler": HANDLER})


@pytest.fixture(scope="module")
def role_statements(producer: Template, cfg) -> list[dict[str, Any]]:
    role_id, _ = _one(producer, "AWS::IAM::Role", {"RoleName": naming.delivery_role_name(cfg)})
    policies = producer.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    assert len(policies) == 1
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


def _by_sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    matches = [s for s in statements if s.get("Sid") == sid]
    assert len(matches) == 1, sid
    return matches[0]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- keys and table ---------------------------------------------------------------------------------------


def test_producer_key_rotates_and_is_retained(producer: Template):
    _, key = _one(producer, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_table(producer: Template, cfg):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    stream_id, _ = _one(producer, "AWS::Kinesis::Stream")
    _, table = _one(producer, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["TableName"] == naming.table_name(cfg)
    assert props["KeySchema"] == [
        {"AttributeName": cfg.table.partition_key, "KeyType": "HASH"},
        {"AttributeName": cfg.table.sort_key, "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert props["KinesisStreamSpecification"] == {
        "StreamArn": {"Fn::GetAtt": [stream_id, "Arn"]},
        "ApproximateCreationDateTimePrecision": "MICROSECOND",
    }


def test_stream(producer: Template, cfg):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    _, stream = _one(producer, "AWS::Kinesis::Stream")
    props = stream["Properties"]
    assert props["Name"] == naming.stream_name(cfg)
    assert props["ShardCount"] == cfg.stream.shard_count == 10
    assert props["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert props["RetentionPeriodHours"] == cfg.stream.retention_hours
    assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": {"Fn::GetAtt": [key_id, "Arn"]}}


# --- network and transform --------------------------------------------------------------------------------


def test_vpc_has_only_isolated_subnets_in_configured_zones(producer: Template, cfg):
    assert not producer.find_resources("AWS::EC2::InternetGateway")
    assert not producer.find_resources("AWS::EC2::NatGateway")
    assert not producer.find_resources("AWS::EC2::VPCGatewayAttachment")
    assert not producer.find_resources("AWS::EC2::VPCEndpoint")
    subnets = producer.find_resources("AWS::EC2::Subnet")
    zones = sorted(s["Properties"]["AvailabilityZone"] for s in subnets.values())
    assert zones == sorted(cfg.network.availability_zones)
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())


def test_no_route_leads_anywhere(producer: Template):
    # Isolated: the route tables hold only the implicit local route.
    assert not producer.find_resources("AWS::EC2::Route")


def test_vpc_flow_logs_to_encrypted_log_group_with_retention(producer: Template):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    _, flow_log = _one(producer, "AWS::EC2::FlowLog")
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    group_ref = flow_log["Properties"]["LogGroupName"]["Ref"]
    group = producer.find_resources("AWS::Logs::LogGroup")[group_ref]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert group["RetentionInDays"] > 0


def test_transform_security_group_allows_nothing(producer: Template, transform):
    (sg_ref,) = transform[1]["Properties"]["VpcConfig"]["SecurityGroupIds"]
    sg = producer.find_resources("AWS::EC2::SecurityGroup")[sg_ref["Fn::GetAtt"][0]]["Properties"]
    assert "SecurityGroupIngress" not in sg
    # CloudFormation adds allow-all egress to a group without egress rules; CDK's sentinel (an ICMP type that
    # does not exist, to a broadcast address) is what "no egress" looks like.
    assert sg["SecurityGroupEgress"] == [
        {
            "CidrIp": "255.255.255.255/32",
            "Description": "Disallow all traffic",
            "FromPort": 252,
            "IpProtocol": "icmp",
            "ToPort": 86,
        }
    ]
    assert not producer.find_resources("AWS::EC2::SecurityGroupEgress")
    assert not producer.find_resources("AWS::EC2::SecurityGroupIngress")


def test_transform_function(producer: Template, transform, cfg):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    props = transform[1]["Properties"]
    assert props["Runtime"].startswith("python3.")
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == cfg.transform.memory_mb
    assert props["Timeout"] == cfg.transform.timeout_seconds >= 60
    # Firehose runs up to 5 invocations per shard.
    assert props["ReservedConcurrentExecutions"] == 5 * cfg.stream.shard_count
    assert props["TracingConfig"] == {"Mode": "Active"}
    subnets = producer.find_resources("AWS::EC2::Subnet")
    assert sorted(r["Ref"] for r in props["VpcConfig"]["SubnetIds"]) == sorted(subnets)
    group = producer.find_resources("AWS::Logs::LogGroup")[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert group["Properties"]["RetentionInDays"] > 0


def test_transform_role_has_no_managed_policies(producer: Template, transform):
    role_id = transform[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = producer.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role


def test_transform_asset_is_the_lambdas_folder_as_is(transform):
    # Plain Python: the handler module path resolves inside the asset folder, no bundling step.
    from pathlib import Path

    from producer.transform import LAMBDAS_DIR

    module = HANDLER.rsplit(".", 1)[0].replace(".", "/") + ".py"
    assert (Path(LAMBDAS_DIR) / module).is_file()


# --- Firehose ---------------------------------------------------------------------------------------------


def test_firehose_reads_the_stream(delivery, producer: Template, cfg):
    stream_id, _ = _one(producer, "AWS::Kinesis::Stream")
    assert delivery["DeliveryStreamName"] == naming.delivery_stream_name(cfg)
    assert delivery["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {"Fn::GetAtt": [stream_id, "Arn"]}


def test_firehose_writes_to_the_consumer_bucket_with_its_key(destination, cfg):
    assert destination["BucketARN"] == naming.data_lake_bucket_arn(cfg)
    assert destination["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": naming.data_lake_key_alias_arn(cfg)}
    }


def test_firehose_buffering_and_compression(destination, cfg):
    assert destination["BufferingHints"] == {"IntervalInSeconds": 120, "SizeInMBs": 1}
    assert (cfg.delivery.buffer_interval_seconds, cfg.delivery.buffer_size_mib) == (120, 1)
    assert destination["CompressionFormat"] == "GZIP"


def test_firehose_prefixes_are_hive_style_per_table(destination, cfg):
    dates = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    assert destination["Prefix"] == f"data/{cfg.table.name}/{dates}"
    assert destination["ErrorOutputPrefix"] == f"errors/{cfg.table.name}/!{{firehose:error-output-type}}/{dates}"
    backup = destination["S3BackupConfiguration"]
    assert destination["S3BackupMode"] == "Enabled"
    assert backup["Prefix"] == f"raw/{cfg.table.name}/{dates}"
    assert backup["BucketARN"] == naming.data_lake_bucket_arn(cfg)
    assert backup["EncryptionConfiguration"] == destination["EncryptionConfiguration"]


def test_firehose_calls_the_transform_with_explicit_buffers(destination, transform):
    processing = destination["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    (processor,) = processing["Processors"]
    assert processor["Type"] == "Lambda"
    params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert params["LambdaArn"] == {"Fn::GetAtt": [transform[0], "Arn"]}
    assert params["BufferSizeInMBs"] == "1"
    assert params["BufferIntervalInSeconds"] == "60"
    assert int(params["NumberOfRetries"]) >= 1


def test_firehose_logs_to_an_encrypted_group(destination, producer: Template):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    for config in (destination, destination["S3BackupConfiguration"]):
        logging = config["CloudWatchLoggingOptions"]
        assert logging["Enabled"] is True
        group = producer.find_resources("AWS::Logs::LogGroup")[logging["LogGroupName"]["Ref"]]["Properties"]
        assert group["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_delivery_role_trusts_only_firehose_of_this_account(producer: Template, cfg):
    _, role = _one(producer, "AWS::IAM::Role", {"RoleName": naming.delivery_role_name(cfg)})
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": cfg.producer.account}}


def test_delivery_role_is_least_privilege(role_statements, producer: Template, transform, cfg):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    stream_id, _ = _one(producer, "AWS::Kinesis::Stream")
    bucket = naming.data_lake_bucket_arn(cfg)
    assert {s["Sid"] for s in role_statements} == {
        "ReadChangeStream",
        "DecryptChangeStream",
        "InvokeTransform",
        "DataLakeBucket",
        "DataLakeObjectsOfThisTable",
        "DataLakeKeyViaS3",
        "WriteDeliveryErrorLogs",
    }
    read = _by_sid(role_statements, "ReadChangeStream")
    assert read["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert all(
        a.startswith("kinesis:Get") or a.startswith("kinesis:Describe") or a == "kinesis:ListShards"
        for a in read["Action"]
    )
    decrypt = _by_sid(role_statements, "DecryptChangeStream")
    assert decrypt["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]} and decrypt["Action"] == "kms:Decrypt"
    invoke = _by_sid(role_statements, "InvokeTransform")
    assert invoke["Resource"] == {"Fn::GetAtt": [transform[0], "Arn"]}
    assert _by_sid(role_statements, "DataLakeBucket")["Resource"] == bucket
    objects = _by_sid(role_statements, "DataLakeObjectsOfThisTable")
    assert sorted(objects["Action"]) == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"]
    assert sorted(objects["Resource"]) == sorted(
        f"{bucket}/{kind}/{cfg.table.name}/*" for kind in ("data", "errors", "raw")
    )
    # Nothing destructive, nothing outside the two accounts' named resources.
    actions = {a for s in role_statements for a in _as_list(s["Action"])}
    assert not any(a.startswith("s3:Delete") or a.endswith(":*") for a in actions)


def test_delivery_role_may_use_b_key_only_by_alias_via_s3(role_statements, cfg):
    statement = _by_sid(role_statements, "DataLakeKeyViaS3")
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == f"arn:aws:kms:{cfg.consumer.region}:{cfg.consumer.account}:key/*"
    assert statement["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": naming.data_lake_key_alias(cfg)},
        "StringEquals": {
            "kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": naming.data_lake_bucket_arn(cfg),
        },
    }


def test_the_s3_actions_the_role_has_are_the_ones_the_bucket_policy_allows(role_statements):
    from shared.permissions import DELIVERY_S3_ACTIONS

    s3_actions = {a for s in role_statements for a in _as_list(s["Action"]) if a.startswith("s3:")}
    assert s3_actions == set(DELIVERY_S3_ACTIONS)


def test_delivery_stream_is_created_after_its_role_policy(producer: Template):
    stream = next(iter(producer.find_resources("AWS::KinesisFirehose::DeliveryStream").values()))
    policies = producer.find_resources("AWS::IAM::Policy")
    delivery_policy = [pid for pid in policies if pid.startswith("DeliveryRole")]
    assert delivery_policy and set(delivery_policy) <= set(stream.get("DependsOn", []))


# --- monitoring -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alarms(producer: Template) -> dict[str, dict[str, Any]]:
    """Alarms by the metric they watch (metric name, or the metric a Metrics Insights query selects)."""
    found = producer.find_resources("AWS::CloudWatch::Alarm")
    by_metric = {}
    for alarm in found.values():
        props = alarm["Properties"]
        if "MetricName" in props:
            by_metric[props["MetricName"]] = props
        else:
            (query,) = props["Metrics"]
            by_metric[query["Expression"].split('"')[1]] = props
    assert len(by_metric) == len(found)
    return by_metric


def test_alarm_topic_is_encrypted(producer: Template):
    key_id, _ = _one(producer, "AWS::KMS::Key")
    _, topic = _one(producer, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_every_alarm_notifies_the_topic(producer: Template, alarms):
    topic_id, _ = _one(producer, "AWS::SNS::Topic")
    assert alarms
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]


def test_alarm_set(alarms):
    assert set(alarms) == {
        "GetRecords.IteratorAgeMilliseconds",
        "WriteProvisionedThroughputExceeded",
        "ThrottledPutRecordCount",
        "AgeOfOldestUnreplicatedRecord",
        "FailedToReplicateRecordCount",
        "DeliveryToS3.DataFreshness",
        "DeliveryToS3.Success",
        "BackupToS3.Success",
        "ExecuteProcessing.Success",
        "Errors",
        "Throttles",
        "RecordsFailed",
    }


def test_transform_failures_alarm_reads_the_functions_own_metrics(alarms, transform, cfg):
    from lambdas.transform.metrics import NAMESPACE_ENV

    namespace = transform[1]["Properties"]["Environment"]["Variables"][NAMESPACE_ENV]
    assert cfg.table.name in namespace and cfg.prefix in namespace
    alarm = alarms["RecordsFailed"]
    assert alarm["Namespace"] == namespace
    # The transform publishes EMF metrics without dimensions; the alarm must not ask for any.
    assert "Dimensions" not in alarm
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_iterator_age_alarm_fires_long_before_retention(alarms, cfg, producer: Template):
    stream_id, _ = _one(producer, "AWS::Kinesis::Stream")
    alarm = alarms["GetRecords.IteratorAgeMilliseconds"]
    assert alarm["Dimensions"] == [{"Name": "StreamName", "Value": {"Ref": stream_id}}]
    fires_after_ms = alarm["Threshold"] + alarm["EvaluationPeriods"] * alarm["Period"] * 1000
    assert fires_after_ms <= cfg.stream.retention_hours * 3600 * 1000 / 4
    # Nobody reading the stream at all is as bad as reading it late.
    assert alarm["TreatMissingData"] == "breaching"


def test_replication_alarms_watch_this_table_whatever_the_delegated_operation(alarms, cfg):
    for name, statistic in (
        ("ThrottledPutRecordCount", "SUM"),
        ("AgeOfOldestUnreplicatedRecord", "MAX"),
        ("FailedToReplicateRecordCount", "SUM"),
    ):
        (query,) = alarms[name]["Metrics"]
        assert query["Expression"] == (
            f'SELECT {statistic}("{name}") FROM SCHEMA("AWS/DynamoDB", DelegatedOperation, TableName) '
            f"WHERE TableName = '{naming.table_name(cfg)}'"
        )
        assert query["ReturnData"] is True and query["Period"] == 300
    assert alarms["FailedToReplicateRecordCount"]["Threshold"] == 0


def test_alarm_topic_accepts_only_this_tables_alarms(producer: Template, cfg):
    (policy,) = producer.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allow = next(s for s in statements if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": cfg.producer.account}
    source = allow["Condition"]["ArnLike"]["aws:SourceArn"]
    assert source == (
        f"arn:aws:cloudwatch:{cfg.producer.region}:{cfg.producer.account}:alarm:{cfg.prefix}-{cfg.table.name}-*"
    )
    alarm_names = [a["Properties"]["AlarmName"] for a in producer.find_resources("AWS::CloudWatch::Alarm").values()]
    assert all(name.startswith(f"{cfg.prefix}-{cfg.table.name}-") for name in alarm_names)
    # TLS-only stays in force.
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_firehose_alarms(alarms, cfg):
    freshness = alarms["DeliveryToS3.DataFreshness"]
    assert freshness["Threshold"] >= 2 * cfg.delivery.buffer_interval_seconds
    assert freshness["ComparisonOperator"] == "GreaterThanThreshold"
    for name in ("DeliveryToS3.Success", "ExecuteProcessing.Success", "BackupToS3.Success"):
        assert alarms[name]["Threshold"] == 1
        assert alarms[name]["ComparisonOperator"] == "LessThanThreshold"
        assert alarms[name]["Dimensions"][0]["Name"] == "DeliveryStreamName"


def test_quiet_periods_do_not_alarm(alarms):
    for name, alarm in alarms.items():
        if name != "GetRecords.IteratorAgeMilliseconds":
            assert alarm["TreatMissingData"] == "notBreaching", name


def test_dashboard_shows_every_alarm(producer: Template, alarms):
    _, dashboard = _one(producer, "AWS::CloudWatch::Dashboard")
    body = str(dashboard["Properties"]["DashboardBody"])
    for name in alarms:
        assert name in body


def test_freshness_threshold_never_below_a_healthy_pipeline(cfg):
    import dataclasses

    for interval in (0, 60, 120, 900):
        tuned = dataclasses.replace(cfg, delivery=dataclasses.replace(cfg.delivery, buffer_interval_seconds=interval))
        threshold = monitoring.freshness_threshold_seconds(tuned)
        assert threshold >= 2 * interval
        assert threshold >= interval + 60 + 60  # processor buffer + a minute to transform and write
