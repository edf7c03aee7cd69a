"""Account A, per configured table: table (or an existing table's streaming destination) -> stream -> Firehose
(+ its own transform) -> B's bucket; the shared key, network and alarm topic.

Every expectation comes from the configuration under test (``cfg``, ``naming.table(cfg, spec)``,
``cfg.delivery_for(spec)``), so each test holds for every configuration of ``tests/configs.py``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from lambdas.transform.metrics import NAMESPACE_ENV
from producer.capture.alarms import ITERATOR_AGE_THRESHOLD, freshness_threshold_seconds
from producer.capture.delivery import (
    PROCESSOR_BUFFER_INTERVAL,
    PROCESSOR_BUFFER_SIZE,
    PROCESSOR_RETRIES,
    STREAM_READ_ACTIONS,
)
from producer.capture.table import RESOURCE_TYPE, SERVICE_LINKED_ROLE, SERVICE_LINKED_ROLE_SERVICE, SWITCH_DIR
from producer.capture.transform import HANDLER, LAMBDAS_DIR
from shared import naming
from shared.config import FIREHOSE_INVOCATIONS_PER_SHARD, AppConfig, DeliverySettings, TableSpec
from shared.permissions import DELIVERY_BUCKET_ACTIONS, DELIVERY_KEY_ACTIONS, DELIVERY_OBJECT_ACTIONS
from tests import configs
from tests.conftest import synthesize, template_of

RETAIN_EXCEPT_ON_CREATE = "RetainExceptOnCreate"  # how CDK renders RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
PRECISION = "MICROSECOND"
# What each table is watched for: the alarm name after the table's alarm prefix.
ALARMS = {
    "StreamIteratorAge",
    "StreamWriteThrottled",
    "ReplicationThrottled",
    "ReplicationLag",
    "ReplicationFailed",
    "DeliveryFreshness",
    "DeliveryFailing",
    "RawBackupFailing",
    "TransformFailing",
    "TransformRecordsFailed",
    "TransformErrors",
    "TransformThrottles",
}
DELIVERY_SIDS = {
    "ReadChangeStream",
    "DecryptChangeStream",
    "InvokeTransform",
    "DataLakeBucket",
    "DataLakeObjectsOfThisTable",
    "DataLakeKeyViaS3",
    "WriteDeliveryErrorLogs",
}


# --- helpers ----------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _ref(logical_id: str) -> dict[str, Any]:
    return {"Ref": logical_id}


def _render(value: Any) -> Any:
    """A CloudFormation value as text: Fn::Join concatenated, references as <Ref:x> / <GetAtt:x.Attr> markers."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(_render(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<GetAtt:{}.{}>".format(*value["Fn::GetAtt"])
    raise AssertionError(f"unexpected CloudFormation value {value!r}")


def _only(found: dict[str, Any], what: str) -> str:
    assert len(found) == 1, f"expected exactly one {what}, found {sorted(found)}"
    return next(iter(found))


def _find(resources: dict[str, Any], type_: str, **props: Any) -> str:
    """The one resource of ``type_`` whose properties include ``props``."""
    found = {
        lid: r
        for lid, r in resources.items()
        if r["Type"] == type_ and all(r.get("Properties", {}).get(k) == v for k, v in props.items())
    }
    return _only(found, f"{type_} with {props}")


def _of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {lid: r for lid, r in resources.items() if r["Type"] == type_}


def _by_sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    matches = [s for s in statements if s.get("Sid") == sid]
    assert len(matches) == 1, sid
    return matches[0]


def _policies_of(resources: dict[str, Any], role_id: str) -> dict[str, Any]:
    return {
        lid: r
        for lid, r in _of_type(resources, "AWS::IAM::Policy").items()
        if _ref(role_id) in r["Properties"].get("Roles", [])
    }


@dataclass(frozen=True)
class Capture:
    """One configured table and the logical ids of everything built for it, located by its names."""

    spec: TableSpec
    names: naming.TableNames
    delivery: DeliverySettings
    table_id: str | None  # None for an existing table
    stream_id: str
    function_id: str
    delivery_id: str
    role_id: str
    role_policy_id: str
    statements: list[dict[str, Any]]

    @property
    def own_ids(self) -> set[str]:
        return {i for i in (self.table_id, self.stream_id, self.function_id, self.delivery_id, self.role_id) if i}


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resources(producer: Template) -> dict[str, Any]:
    return producer.to_json()["Resources"]


@pytest.fixture(scope="module")
def key_id(synthesized, resources) -> str:
    """The producer's key (producer/keys.py): tables, streams, logs and the alarm topic."""
    stack = synthesized.producer_stage.producer
    key = stack.node.find_child("Key").node.find_child("Key")
    logical_id = stack.resolve(key.node.default_child.logical_id)
    assert resources[logical_id]["Type"] == "AWS::KMS::Key"
    return logical_id


@pytest.fixture(scope="module")
def topic_id(resources) -> str:
    return _only(_of_type(resources, "AWS::SNS::Topic"), "AWS::SNS::Topic")


@pytest.fixture(scope="module")
def captures(resources, cfg: AppConfig) -> list[Capture]:
    found = []
    for spec, names in naming.tables(cfg):
        role_id = _find(resources, "AWS::IAM::Role", RoleName=names.delivery_role)
        policy_id = _only(_policies_of(resources, role_id), f"policy of {names.delivery_role}")
        functions = {
            lid: r
            for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
            if r["Properties"].get("Environment", {}).get("Variables", {}).get(NAMESPACE_ENV) == names.metrics_namespace
        }
        found.append(
            Capture(
                spec=spec,
                names=names,
                delivery=cfg.delivery_for(spec),
                table_id=None
                if spec.existing_table_name
                else _find(resources, "AWS::DynamoDB::Table", TableName=names.table),
                stream_id=_find(resources, "AWS::Kinesis::Stream", Name=names.stream),
                function_id=_only(functions, f"transform of {spec.name}"),
                delivery_id=_find(
                    resources, "AWS::KinesisFirehose::DeliveryStream", DeliveryStreamName=names.delivery_stream
                ),
                role_id=role_id,
                role_policy_id=policy_id,
                statements=resources[policy_id]["Properties"]["PolicyDocument"]["Statement"],
            )
        )
    return found


@pytest.fixture(scope="module")
def transform_ids(resources) -> set[str]:
    return {
        lid for lid, r in _of_type(resources, "AWS::Lambda::Function").items() if r["Properties"]["Handler"] == HANDLER
    }


def test_every_configured_table_is_captured_and_nothing_else(resources, captures, transform_ids, cfg):
    n = len(cfg.tables)
    assert len(captures) == n
    created = [c for c in captures if c.table_id]
    assert len(_of_type(resources, "AWS::DynamoDB::Table")) == len(created)
    # Per existing table, the switch and the previous version's resource kept read-only (see the upgrade test).
    assert len(_of_type(resources, RESOURCE_TYPE)) == 2 * (n - len(created))
    assert len(_of_type(resources, "AWS::Kinesis::Stream")) == n
    assert len(_of_type(resources, "AWS::KinesisFirehose::DeliveryStream")) == n
    assert len(_of_type(resources, "AWS::CloudWatch::Dashboard")) == n
    # One transform, one stream, one delivery stream, one role per table: nothing is shared between tables.
    assert transform_ids == {c.function_id for c in captures}
    for attribute in ("stream_id", "function_id", "delivery_id", "role_id", "role_policy_id"):
        assert len({getattr(c, attribute) for c in captures}) == n, attribute
    assert len({c.names.delivery_role for c in captures}) == n


# --- key and retention ------------------------------------------------------------------------------------


def test_producer_key_rotates_and_is_retained_except_on_create(resources, key_id):
    key = resources[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == RETAIN_EXCEPT_ON_CREATE
    assert key["UpdateReplacePolicy"] == "Retain"


def test_keys_tables_streams_and_log_groups_are_retained_except_on_create(resources, captures):
    # Every one of them, the project's and CDK's (custom-resource providers' log groups included): a failed
    # first create cleans up, so a named resource can be created again on the retry; a deletion keeps them.
    types = ("AWS::KMS::Key", "AWS::DynamoDB::Table", "AWS::Kinesis::Stream", "AWS::Logs::LogGroup")
    found = {lid: r for lid, r in resources.items() if r["Type"] in types}
    assert {c.stream_id for c in captures} | {c.table_id for c in captures if c.table_id} <= set(found)
    policies = {lid: (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) for lid, r in found.items()}
    assert policies == {lid: (RETAIN_EXCEPT_ON_CREATE, "Retain") for lid in found}


def test_every_log_group_is_encrypted_with_the_producer_key_and_expires(resources, key_id, captures):
    groups = _of_type(resources, "AWS::Logs::LogGroup")
    # Flow logs, and each table's transform and delivery at least.
    assert len(groups) >= 1 + 2 * len(captures)
    assert {lid: r["Properties"].get("KmsKeyId") for lid, r in groups.items()} == {lid: _arn(key_id) for lid in groups}
    assert all(r["Properties"]["RetentionInDays"] > 0 for r in groups.values())


# --- tables -----------------------------------------------------------------------------------------------


def test_created_tables(resources, key_id, captures):
    created = [c for c in captures if c.table_id]
    for c in created:
        table = resources[c.table_id]
        props = table["Properties"]
        spec = c.spec
        assert props["TableName"] == c.names.table
        expected_schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        expected_attributes = [{"AttributeName": spec.partition_key, "AttributeType": spec.partition_key_type}]
        if spec.sort_key:
            expected_schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
            expected_attributes.append({"AttributeName": spec.sort_key, "AttributeType": spec.sort_key_type})
        assert props["KeySchema"] == expected_schema, spec.name
        assert props["AttributeDefinitions"] == expected_attributes, spec.name
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert "ProvisionedThroughput" not in props
        assert props["SSESpecification"] == {"KMSMasterKeyId": _arn(key_id), "SSEEnabled": True, "SSEType": "KMS"}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == RETAIN_EXCEPT_ON_CREATE
        assert table["UpdateReplacePolicy"] == "Retain"
        assert props["KinesisStreamSpecification"] == {
            "StreamArn": _arn(c.stream_id),
            "ApproximateCreationDateTimePrecision": PRECISION,
        }


def _streaming_destination(resources: dict[str, Any], c: Capture) -> tuple[str, dict[str, Any]]:
    """The custom resource turning on ``c``'s existing table's streaming destination."""
    found = {
        lid: r
        for lid, r in _of_type(resources, RESOURCE_TYPE).items()
        if r["Properties"].get("TableName") == c.names.table
    }
    lid = _only(found, f"streaming destination of {c.names.table}")
    return lid, found[lid]


def _switch_functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The streaming switch's two Python handlers, by handler entry point."""
    return {
        r["Properties"]["Handler"]: {"id": lid, **r}
        for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] in ("handler.on_event", "handler.is_complete")
    }


def test_existing_tables_are_not_created_but_switched_by_the_provider(resources, captures):
    existing = [c for c in captures if not c.table_id]
    table_names = {r["Properties"]["TableName"] for r in _of_type(resources, "AWS::DynamoDB::Table").values()}
    handlers = _switch_functions(resources)
    machines = _of_type(resources, "AWS::StepFunctions::StateMachine")
    if not existing:
        # No existing table: no switch, no provider, no waiter.
        assert handlers == {} and machines == {} and _of_type(resources, RESOURCE_TYPE) == {}
        return
    # One provider for the stack: onEvent starts, isComplete (polled by CDK's waiter state machine) waits for ACTIVE.
    assert set(handlers) == {"handler.on_event", "handler.is_complete"}
    (machine_id,) = machines
    definition = _render(resources[machine_id]["Properties"]["DefinitionString"])
    framework = {
        lid: r
        for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"].startswith("framework.")
    }
    assert sorted(r["Properties"]["Handler"] for r in framework.values()) == [
        "framework.isComplete",
        "framework.onEvent",
        "framework.onTimeout",
    ]
    (on_event_id,) = [lid for lid, r in framework.items() if r["Properties"]["Handler"] == "framework.onEvent"]
    for lid, r in framework.items():
        env = json.dumps(r["Properties"]["Environment"])
        assert handlers["handler.on_event"]["id"] in env and handlers["handler.is_complete"]["id"] in env
        if lid != on_event_id:
            assert lid in definition  # the waiter calls isComplete and, at the end, onTimeout
    for c in existing:
        assert c.names.table == c.spec.existing_table_name
        assert c.names.table not in table_names
        lid, resource = _streaming_destination(resources, c)
        assert resource["Properties"] == {
            "ServiceToken": _arn(on_event_id),
            "TableName": c.spec.existing_table_name,
            "StreamArn": _arn(c.stream_id),
        }
        # The stream it streams into survives a stack deletion; the switch itself is removed (turned off).
        assert resource["DeletionPolicy"] == "Delete"


# What the previous version (an AwsCustomResource whose Delete disabled the destination) deployed for the two-tables
# configuration's existing table, read from its synthesized template: the logical ID and the ServiceToken's function.
PREVIOUS_VERSION = {
    "customers": ("customersExistingTableEnableStreamingABEFA3EB", "AWS679f53fac002430cb0da5b7982bd22872D164C4C")
}


def test_upgrading_from_the_previous_version_never_disables_streaming(resources, captures):
    """CloudFormation deletes a resource that leaves the template after the update, running its Delete call; the old
    resource therefore stays (same logical ID, ServiceToken and physical ID), read-only, without a Delete call, and
    retained when it is removed one day."""
    for c in (c for c in captures if not c.table_id):
        legacy = {
            lid: r
            for lid, r in _of_type(resources, RESOURCE_TYPE).items()
            if lid.startswith(f"{c.spec.name}ExistingTableEnableStreaming") and "Create" in r["Properties"]
        }
        lid = _only(legacy, f"kept streaming resource of {c.names.table}")
        props = legacy[lid]["Properties"]
        if c.spec.name in PREVIOUS_VERSION:
            assert (lid, props["ServiceToken"]) == (
                PREVIOUS_VERSION[c.spec.name][0],
                _arn(PREVIOUS_VERSION[c.spec.name][1]),
            )
        assert "Delete" not in props
        assert legacy[lid]["DeletionPolicy"] == "Retain"
        stream = _ref(c.stream_id)["Ref"]
        for phase in ("Create", "Update"):
            call = json.loads(_render(props[phase]).replace(f"<Ref:{stream}>", "STREAM"))
            assert call["action"] == "describeKinesisStreamingDestination"
            assert call["parameters"] == {"TableName": c.spec.existing_table_name}
            assert call["physicalResourceId"] == {"id": f"{c.spec.existing_table_name}->STREAM"}
        policies = [
            r for r in _of_type(resources, "AWS::IAM::Policy").values() if lid in json.dumps(r.get("DependsOn", []))
        ] or [r for pid, r in _of_type(resources, "AWS::IAM::Policy").items() if pid.startswith(lid[:-8])]
        actions = {
            a for p in policies for st in p["Properties"]["PolicyDocument"]["Statement"] for a in _as_list(st["Action"])
        }
        assert actions == {"dynamodb:DescribeKinesisStreamingDestination"}


def test_switch_handlers_are_the_plain_folder_on_python_arm(resources, captures):
    if all(c.table_id for c in captures):
        return
    handlers = _switch_functions(resources)
    for r in handlers.values():
        props = r["Properties"]
        assert (props["Runtime"], props["Architectures"]) == ("python3.14", ["arm64"])
        assert props["Timeout"] <= 15 * 60
    assert (SWITCH_DIR / "handler.py").is_file()
    source = (SWITCH_DIR / "handler.py").read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "os", "time", "typing", "boto3", "botocore"}


def test_switch_provider_has_no_resource_policy(resources, captures):
    # Nobody outside account A, and no service, can invoke the provider's functions: CDK adds no
    # AWS::Lambda::Permission for them, so only a principal of A whose IAM allows it (CloudFormation's deploying
    # role) can call the framework's onEvent; the handlers are invoked by the framework's own roles.
    switch = {lid for lid in resources if lid.startswith("StreamingSwitch")}
    targets = [
        json.dumps(r["Properties"]["FunctionName"]) for r in _of_type(resources, "AWS::Lambda::Permission").values()
    ]
    assert [t for t in targets if any(lid in t for lid in switch)] == []


def test_existing_table_switch_may_touch_only_its_tables_and_streams(resources, captures, cfg):
    existing = [c for c in captures if not c.table_id]
    if not existing:
        return
    partition, account = cfg.producer.partition, cfg.producer.account
    slr = f"arn:{partition}:iam::{account}:role/aws-service-role/{SERVICE_LINKED_ROLE_SERVICE}/{SERVICE_LINKED_ROLE}"
    roles = {json.dumps(r["Properties"]["Role"]) for r in _switch_functions(resources).values()}
    (role,) = roles
    role_id = json.loads(role)["Fn::GetAtt"][0]
    (policy_id,) = _policies_of(resources, role_id)
    statements = resources[policy_id]["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" and "*" not in json.dumps(s["Action"]) for s in statements)
    by_resource: dict[str, list[str]] = {}
    for s in statements:
        by_resource.setdefault(json.dumps(s["Resource"], sort_keys=True), []).extend(_as_list(s["Action"]))
    expected = {
        json.dumps(c.names.table_arn): [
            "dynamodb:DescribeKinesisStreamingDestination",
            "dynamodb:DisableKinesisStreamingDestination",
            "dynamodb:EnableKinesisStreamingDestination",
            "dynamodb:UpdateKinesisStreamingDestination",
        ]
        for c in existing
    }
    # Listed by the DynamoDB guide for the caller of EnableKinesisStreamingDestination (see producer/capture/table.py).
    expected |= {
        json.dumps(_arn(c.stream_id), sort_keys=True): [
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:PutRecords",
        ]
        for c in existing
    }
    expected[json.dumps(slr)] = ["iam:CreateServiceLinkedRole"]
    # The one unscoped grant: listing stream names (the DynamoDB guide asks for it; no resource-level scoping).
    expected[json.dumps("*")] = ["kinesis:ListStreams"]
    (group_id,) = [lid for lid in _of_type(resources, "AWS::Logs::LogGroup") if lid.startswith("StreamingSwitch")]
    expected[json.dumps(_arn(group_id), sort_keys=True)] = ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert {k: sorted(v) for k, v in by_resource.items()} == expected
    link = next(s for s in statements if s["Resource"] == slr)
    assert link["Condition"] == {"StringEquals": {"iam:AWSServiceName": SERVICE_LINKED_ROLE_SERVICE}}


# --- streams ----------------------------------------------------------------------------------------------


def test_streams(resources, key_id, captures):
    for c in captures:
        stream = resources[c.stream_id]
        props = stream["Properties"]
        settings = c.spec.stream
        assert props["Name"] == c.names.stream
        assert props["StreamModeDetails"] == {"StreamMode": settings.mode}
        if settings.mode == "PROVISIONED":
            assert props["ShardCount"] == settings.shard_count, c.spec.name
        else:
            assert "ShardCount" not in props, c.spec.name
        assert props["RetentionPeriodHours"] == settings.retention_hours
        assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": _arn(key_id)}
        assert stream["DeletionPolicy"] == RETAIN_EXCEPT_ON_CREATE
        assert stream["UpdateReplacePolicy"] == "Retain"


# --- network ----------------------------------------------------------------------------------------------


def test_vpc_has_only_isolated_subnets_in_configured_zones(resources, cfg):
    for type_ in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::VPCGatewayAttachment"):
        assert not _of_type(resources, type_), type_
    assert not _of_type(resources, "AWS::EC2::VPCEndpoint")
    (vpc,) = _of_type(resources, "AWS::EC2::VPC").values()
    assert vpc["Properties"]["CidrBlock"] == cfg.network.vpc_cidr
    subnets = _of_type(resources, "AWS::EC2::Subnet")
    assert sorted(s["Properties"]["AvailabilityZone"] for s in subnets.values()) == sorted(
        cfg.network.availability_zones
    )
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    # Isolated: the route tables hold only the implicit local route.
    assert not _of_type(resources, "AWS::EC2::Route")


def test_vpc_flow_logs_to_an_encrypted_log_group(resources, key_id):
    (flow_log,) = _of_type(resources, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    group = resources[flow_log["Properties"]["LogGroupName"]["Ref"]]
    assert group["Properties"]["KmsKeyId"] == _arn(key_id)
    assert group["Properties"]["RetentionInDays"] > 0


def test_transform_security_group_allows_nothing(resources, captures):
    groups = {
        resources[c.function_id]["Properties"]["VpcConfig"]["SecurityGroupIds"][0]["Fn::GetAtt"][0] for c in captures
    }
    for c in captures:
        assert len(resources[c.function_id]["Properties"]["VpcConfig"]["SecurityGroupIds"]) == 1
    (group_id,) = groups
    group = resources[group_id]["Properties"]
    assert "SecurityGroupIngress" not in group
    # CloudFormation adds allow-all egress to a group without egress rules; CDK's sentinel (an ICMP type that
    # does not exist, to a broadcast address) is what "no egress" looks like.
    assert group["SecurityGroupEgress"] == [
        {
            "CidrIp": "255.255.255.255/32",
            "Description": "Disallow all traffic",
            "FromPort": 252,
            "IpProtocol": "icmp",
            "ToPort": 86,
        }
    ]
    assert not _of_type(resources, "AWS::EC2::SecurityGroupEgress")
    assert not _of_type(resources, "AWS::EC2::SecurityGroupIngress")


# --- transform functions ----------------------------------------------------------------------------------


def test_transform_functions(resources, key_id, captures, cfg):
    subnets = sorted(_of_type(resources, "AWS::EC2::Subnet"))
    log_groups = set()
    for c in captures:
        props = resources[c.function_id]["Properties"]
        assert props["Handler"] == HANDLER
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["MemorySize"] == cfg.transform.memory_mb
        assert props["Timeout"] == cfg.transform.timeout_seconds
        if cfg.transform.reserved_concurrency is None:
            assert "ReservedConcurrentExecutions" not in props, c.spec.name
        else:
            assert props["ReservedConcurrentExecutions"] == cfg.transform.reserved_concurrency, c.spec.name
        assert props["Environment"] == {"Variables": {NAMESPACE_ENV: c.names.metrics_namespace}}
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert sorted(r["Ref"] for r in props["VpcConfig"]["SubnetIds"]) == subnets
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        group = resources[group_id]
        assert group["Properties"]["KmsKeyId"] == _arn(key_id)
        assert group["DeletionPolicy"] == RETAIN_EXCEPT_ON_CREATE
        log_groups.add(group_id)
        # Its own role: no managed policies, logs only to its own group.
        role_id = props["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
        (policy,) = _policies_of(resources, role_id).values()
        log_statements = [
            s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "logs:" in json.dumps(s["Action"])
        ]
        assert log_statements == [
            {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow", "Resource": _arn(group_id)}
        ]
    assert len(log_groups) == len(captures)
    assert len({resources[c.function_id]["Properties"]["Role"]["Fn::GetAtt"][0] for c in captures}) == len(captures)


def test_transform_asset_is_the_lambdas_folder_as_is():
    # Plain Python: the handler module path resolves inside the asset folder, no bundling step.
    module = HANDLER.rsplit(".", 1)[0].replace(".", "/") + ".py"
    assert (Path(LAMBDAS_DIR) / module).is_file()


def test_reserved_concurrency_reaches_every_transform_when_set(tmp_path):
    """One extra synthesis: every configuration of the matrix leaves the reservation unset."""
    raw = configs.variant("two-tables")
    # Enough for Firehose's calls on the busiest provisioned stream (the configuration refuses less).
    reserved = FIREHOSE_INVOCATIONS_PER_SHARD * max(t["stream"]["shard_count"] for t in raw["tables"]) + 1
    raw["transform"] = {"reserved_concurrency": reserved}
    synthesized = synthesize(raw, tmp_path / "cdk.out", "reserved-concurrency")
    assert synthesized.cfg.transform.reserved_concurrency == reserved
    resources = template_of(synthesized.producer_stage.producer).to_json()["Resources"]
    transforms = [r["Properties"] for r in _of_type(resources, "AWS::Lambda::Function").values()]
    transforms = [p for p in transforms if p["Handler"] == HANDLER]
    assert len(transforms) == len(synthesized.cfg.tables) == 2
    assert all(p["ReservedConcurrentExecutions"] == reserved for p in transforms)


# --- delivery streams -------------------------------------------------------------------------------------


def _no_kms_key(configuration: dict[str, Any]) -> bool:
    # Account B's bucket default encryption applies: Firehose must not name a key (an alias would resolve in A).
    encryption = configuration.get("EncryptionConfiguration", {})
    return "KMSEncryptionConfig" not in encryption and encryption in ({}, {"NoEncryptionConfig": "NoEncryption"})


def test_delivery_streams(resources, key_id, captures, cfg):
    lake = naming.lake(cfg)
    for c in captures:
        stream = resources[c.delivery_id]
        props = stream["Properties"]
        assert props["DeliveryStreamName"] == c.names.delivery_stream
        assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
        assert props["KinesisStreamSourceConfiguration"] == {
            "KinesisStreamARN": _arn(c.stream_id),
            "RoleARN": _arn(c.role_id),
        }
        destination = props["ExtendedS3DestinationConfiguration"]
        assert destination["RoleARN"] == _arn(c.role_id)
        assert destination["BucketARN"] == lake.bucket_arn
        assert destination["BufferingHints"] == {
            "IntervalInSeconds": c.delivery.buffer_interval_seconds,
            "SizeInMBs": c.delivery.buffer_size_mib,
        }
        assert destination["CompressionFormat"] == c.delivery.compression
        assert destination["Prefix"] == c.names.data_prefix
        assert destination["ErrorOutputPrefix"] == c.names.error_prefix
        assert _no_kms_key(destination), c.spec.name
        # The raw records, for replays: the table's raw prefix, always compressed, never a KMS key either.
        assert destination["S3BackupMode"] == "Enabled"
        backup = destination["S3BackupConfiguration"]
        assert backup["BucketARN"] == lake.bucket_arn
        assert backup["RoleARN"] == _arn(c.role_id)
        assert backup["Prefix"] == c.names.raw_prefix
        assert backup["ErrorOutputPrefix"] == c.names.error_prefix
        assert backup["CompressionFormat"] == "GZIP"
        assert backup["BufferingHints"] == destination["BufferingHints"]
        assert _no_kms_key(backup), c.spec.name
        # Firehose checks its permissions when the stream is created: the role's policy comes first.
        assert c.role_policy_id in stream.get("DependsOn", [])


def test_delivery_calls_its_own_transform_with_explicit_buffers(resources, captures):
    for c in captures:
        processing = resources[c.delivery_id]["Properties"]["ExtendedS3DestinationConfiguration"][
            "ProcessingConfiguration"
        ]
        assert processing["Enabled"] is True
        (processor,) = processing["Processors"]
        assert processor["Type"] == "Lambda"
        params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
        assert params == {
            "RoleArn": _arn(c.role_id),
            "LambdaArn": _arn(c.function_id),
            "BufferIntervalInSeconds": str(int(PROCESSOR_BUFFER_INTERVAL.to_seconds())),
            "BufferSizeInMBs": str(int(PROCESSOR_BUFFER_SIZE.to_mebibytes())),
            "NumberOfRetries": str(PROCESSOR_RETRIES),
        }
        # A batch stays far below Lambda's 6 MB synchronous payload; failures are retried.
        assert int(params["BufferSizeInMBs"]) <= 3 and int(params["NumberOfRetries"]) >= 1


def test_delivery_logs_to_its_own_encrypted_group(resources, key_id, captures):
    groups = set()
    for c in captures:
        destination = resources[c.delivery_id]["Properties"]["ExtendedS3DestinationConfiguration"]
        for configuration in (destination, destination["S3BackupConfiguration"]):
            logging = configuration["CloudWatchLoggingOptions"]
            assert logging["Enabled"] is True
            group_id = logging["LogGroupName"]["Ref"]
            assert resources[group_id]["Properties"]["KmsKeyId"] == _arn(key_id)
            groups.add(group_id)
        assert _by_sid(c.statements, "WriteDeliveryErrorLogs") == {
            "Sid": "WriteDeliveryErrorLogs",
            "Action": "logs:PutLogEvents",
            "Effect": "Allow",
            "Resource": _arn(destination["CloudWatchLoggingOptions"]["LogGroupName"]["Ref"]),
        }
    assert len(groups) == len(captures)


# --- delivery roles ---------------------------------------------------------------------------------------


def test_delivery_roles_trust_only_firehose_of_this_account(resources, captures, cfg):
    for c in captures:
        role = resources[c.role_id]["Properties"]
        assert role["RoleName"] == c.names.delivery_role
        assert "ManagedPolicyArns" not in role and "Policies" not in role
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": cfg.producer.account}}


def test_delivery_roles_are_least_privilege_and_per_table(resources, key_id, captures, cfg):
    lake = naming.lake(cfg)
    for c in captures:
        statements = c.statements
        assert {s.get("Sid") for s in statements} == DELIVERY_SIDS
        assert all(s["Effect"] == "Allow" for s in statements)
        read = _by_sid(statements, "ReadChangeStream")
        assert read["Resource"] == _arn(c.stream_id)
        assert sorted(_as_list(read["Action"])) == sorted(STREAM_READ_ACTIONS)
        assert all(a.startswith(("kinesis:Get", "kinesis:Describe", "kinesis:List")) for a in read["Action"])
        decrypt = _by_sid(statements, "DecryptChangeStream")
        assert decrypt["Resource"] == _arn(key_id) and decrypt["Action"] == "kms:Decrypt"
        assert decrypt["Condition"] == {
            "StringEquals": {"kms:ViaService": f"kinesis.{cfg.producer.region}.amazonaws.com"}
        }
        invoke = _by_sid(statements, "InvokeTransform")
        assert invoke["Resource"] == _arn(c.function_id)
        assert sorted(_as_list(invoke["Action"])) == ["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"]
        bucket = _by_sid(statements, "DataLakeBucket")
        assert bucket["Resource"] == lake.bucket_arn
        assert sorted(_as_list(bucket["Action"])) == sorted(DELIVERY_BUCKET_ACTIONS)
        objects = _by_sid(statements, "DataLakeObjectsOfThisTable")
        assert sorted(_as_list(objects["Action"])) == sorted(DELIVERY_OBJECT_ACTIONS)
        assert sorted(_as_list(objects["Resource"])) == sorted(f"{lake.bucket_arn}/{root}*" for root in c.names.roots)
        # Nothing destructive, no action wildcards.
        actions = {a for s in statements for a in _as_list(s["Action"])}
        assert not any(a.startswith("s3:Delete") or "*" in a for a in actions)
        # Nothing of another table: its stream, function, table or S3 folders.
        text = json.dumps(statements)
        for other in captures:
            if other is c:
                continue
            assert not any(f'"{lid}"' in text for lid in other.own_ids), (c.spec.name, other.spec.name)
            assert not any(f"/{root}" in text for root in other.names.roots), (c.spec.name, other.spec.name)


def test_delivery_roles_use_the_lake_key_only_in_the_lake_account_via_s3_for_the_bucket(captures, cfg):
    """Conditions KMS documents for a key of another account (no kms:ResourceAliases)."""
    lake = naming.lake(cfg)
    for c in captures:
        statement = _by_sid(c.statements, "DataLakeKeyViaS3")
        assert sorted(_as_list(statement["Action"])) == sorted(DELIVERY_KEY_ACTIONS)
        assert statement["Resource"] == f"arn:{lake.partition}:kms:{lake.region}:{lake.account}:key/*"
        assert statement["Condition"] == {
            "StringEquals": {
                "aws:ResourceAccount": lake.account,
                "kms:ViaService": f"s3.{lake.region}.amazonaws.com",
                "kms:EncryptionContext:aws:s3:arn": lake.bucket_arn,
            },
        }
        assert "kms:ResourceAliases" not in json.dumps(c.statements)


def test_delivery_roles_s3_statements_pin_the_lake_account(captures, cfg):
    lake = naming.lake(cfg)
    for c in captures:
        s3_statements = [s for s in c.statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
        assert {s["Sid"] for s in s3_statements} == {"DataLakeBucket", "DataLakeObjectsOfThisTable"}
        for statement in s3_statements:
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceAccount": lake.account}}


# --- alarms, topic, dashboards ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alarms(resources, captures) -> dict[str, dict[str, dict[str, Any]]]:
    """Per table, its alarms by name after the table's alarm prefix (props plus the logical id under '_id')."""
    every = _of_type(resources, "AWS::CloudWatch::Alarm")
    per_table: dict[str, dict[str, dict[str, Any]]] = {}
    claimed: set[str] = set()
    for c in captures:
        mine = {
            r["Properties"]["AlarmName"][len(c.names.alarm_prefix) :]: {**r["Properties"], "_id": lid}
            for lid, r in every.items()
            if r["Properties"]["AlarmName"].startswith(c.names.alarm_prefix)
        }
        claimed |= {a["_id"] for a in mine.values()}
        per_table[c.spec.name] = mine
    assert claimed == set(every), "alarms that belong to no configured table"
    return per_table


def test_every_table_has_its_alarms(alarms, captures):
    for c in captures:
        assert set(alarms[c.spec.name]) == ALARMS, c.spec.name


def test_every_alarm_notifies_the_topic(alarms, topic_id):
    for mine in alarms.values():
        for name, alarm in mine.items():
            assert alarm["AlarmActions"] == [_ref(topic_id)], name
            assert alarm["OKActions"] == [_ref(topic_id)], name


def test_alarms_watch_their_own_tables_resources(alarms, captures):
    for c in captures:
        mine = alarms[c.spec.name]
        for name in ("StreamIteratorAge", "StreamWriteThrottled"):
            assert mine[name]["Dimensions"] == [{"Name": "StreamName", "Value": _ref(c.stream_id)}], name
        for name in ("DeliveryFreshness", "DeliveryFailing", "RawBackupFailing", "TransformFailing"):
            assert mine[name]["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": _ref(c.delivery_id)}], name
            assert mine[name]["Namespace"] == "AWS/Firehose"
        for name in ("TransformErrors", "TransformThrottles"):
            assert mine[name]["Dimensions"] == [{"Name": "FunctionName", "Value": _ref(c.function_id)}], name
        # The transform publishes EMF metrics without dimensions into the table's own namespace.
        failed = mine["TransformRecordsFailed"]
        assert failed["Namespace"] == c.names.metrics_namespace and "Dimensions" not in failed
        assert failed["MetricName"] == "RecordsFailed"
        assert failed["Threshold"] == 0 and failed["ComparisonOperator"] == "GreaterThanThreshold"


def test_replication_alarms_watch_the_table_whatever_the_delegated_operation(alarms, captures):
    for c in captures:
        mine = alarms[c.spec.name]
        for name, metric, statistic in (
            ("ReplicationThrottled", "ThrottledPutRecordCount", "SUM"),
            ("ReplicationLag", "AgeOfOldestUnreplicatedRecord", "MAX"),
            ("ReplicationFailed", "FailedToReplicateRecordCount", "SUM"),
        ):
            (query,) = mine[name]["Metrics"]
            assert query["Expression"] == (
                f'SELECT {statistic}("{metric}") FROM SCHEMA("AWS/DynamoDB", DelegatedOperation, TableName) '
                f"WHERE TableName = '{c.names.table}'"
            )
            assert query["ReturnData"] is True and query["Period"] == 300
        assert mine["ReplicationFailed"]["Threshold"] == 0


def test_iterator_age_alarm_fires_long_before_retention(alarms, captures):
    for c in captures:
        alarm = alarms[c.spec.name]["StreamIteratorAge"]
        assert alarm["MetricName"] == "GetRecords.IteratorAgeMilliseconds"
        assert alarm["Threshold"] == ITERATOR_AGE_THRESHOLD.to_milliseconds()
        fires_after_ms = alarm["Threshold"] + alarm["EvaluationPeriods"] * alarm["Period"] * 1000
        assert fires_after_ms <= c.spec.stream.retention_hours * 3600 * 1000 / 4
        # Nobody reading the stream at all is as bad as reading it late.
        assert alarm["TreatMissingData"] == "breaching"


def test_delivery_alarms_follow_the_tables_buffering(alarms, captures):
    for c in captures:
        mine = alarms[c.spec.name]
        interval = c.delivery.buffer_interval_seconds
        freshness = mine["DeliveryFreshness"]
        assert freshness["Threshold"] == freshness_threshold_seconds(interval)
        assert freshness["Threshold"] >= 2 * interval
        assert freshness["ComparisonOperator"] == "GreaterThanThreshold"
        for name, metric in (
            ("DeliveryFailing", "DeliveryToS3.Success"),
            ("RawBackupFailing", "BackupToS3.Success"),
            ("TransformFailing", "ExecuteProcessing.Success"),
        ):
            assert mine[name]["MetricName"] == metric
            assert mine[name]["Threshold"] == 1 and mine[name]["ComparisonOperator"] == "LessThanThreshold"


def test_quiet_periods_do_not_alarm(alarms):
    for mine in alarms.values():
        for name, alarm in mine.items():
            if name != "StreamIteratorAge":
                assert alarm["TreatMissingData"] == "notBreaching", name


def test_freshness_threshold_never_below_a_healthy_pipeline():
    for interval in (0, 60, 120, 300, 900):
        threshold = freshness_threshold_seconds(interval)
        assert threshold >= 2 * interval
        assert threshold >= interval + PROCESSOR_BUFFER_INTERVAL.to_seconds() + 60


def test_alarm_topic_is_encrypted_and_admits_every_tables_alarms(resources, key_id, topic_id, alarms, captures, cfg):
    assert resources[topic_id]["Properties"]["KmsMasterKeyId"] == _arn(key_id)
    (policy,) = _of_type(resources, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": cfg.producer.account}
    p = cfg.producer
    sources = _as_list(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert sorted(sources) == sorted(
        f"arn:{p.partition}:cloudwatch:{p.region}:{p.account}:alarm:{c.names.alarm_prefix}*" for c in captures
    )
    # Every alarm's ARN matches its own table's pattern and no other table's.
    for c in captures:
        for alarm in alarms[c.spec.name].values():
            arn = f"arn:{p.partition}:cloudwatch:{p.region}:{p.account}:alarm:{alarm['AlarmName']}"
            assert [s for s in sources if fnmatch.fnmatchcase(arn, s)] == [
                f"arn:{p.partition}:cloudwatch:{p.region}:{p.account}:alarm:{c.names.alarm_prefix}*"
            ]
    # TLS-only stays in force.
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_alarm_emails_are_subscribed(resources, topic_id, cfg):
    subscriptions = _of_type(resources, "AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions.values()) == sorted(cfg.notifications.alarm_emails)
    assert all(
        s["Properties"]["Protocol"] == "email" and s["Properties"]["TopicArn"] == _ref(topic_id)
        for s in subscriptions.values()
    )


def test_one_dashboard_per_table_with_its_own_alarms(resources, alarms, captures):
    dashboards = _of_type(resources, "AWS::CloudWatch::Dashboard")
    for c in captures:
        dashboard_id = _find(resources, "AWS::CloudWatch::Dashboard", DashboardName=c.names.dashboard)
        body = json.loads(_render(dashboards[dashboard_id]["Properties"]["DashboardBody"]))
        (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
        assert sorted(status["properties"]["alarms"]) == sorted(
            f"<GetAtt:{a['_id']}.Arn>" for a in alarms[c.spec.name].values()
        )
        titles = {w["properties"]["title"] for w in body["widgets"] if w["type"] == "metric"}
        assert titles == ALARMS


def test_tables_whose_names_differ_only_by_underscore_keep_apart(tmp_path):
    """CDK strips '_' from top-level IDs: 'or_ders' and 'orders' must still get distinct outputs and statements."""
    raw = configs.variant("default")
    raw["tables"].append({**raw["tables"][0], "name": "or_ders"})
    synthesized = synthesize(raw, tmp_path / "cdk.out", "underscore")
    outputs = template_of(synthesized.producer_stage.producer).to_json()["Outputs"]
    table_outputs = sorted(o["Value"] for k, o in outputs.items() if "TableName" in k)
    assert table_outputs == sorted(naming.table(synthesized.cfg, t).table for t in synthesized.cfg.tables)


def test_outputs_name_every_tables_resources(producer: Template, captures):
    values = [o["Value"] for o in producer.to_json()["Outputs"].values()]
    for c in captures:
        assert c.names.table in values
        assert c.names.delivery_stream in values
        assert _arn(c.stream_id) in values
        assert _arn(c.role_id) in values


# --- issue 18: narrow key grants and confused-deputy conditions --------------------------------------------------
def test_producer_key_serves_cloudwatch_logs_only_for_this_stacks_log_groups(synthesized, resources, key_id):
    stack = synthesized.producer_stage.producer
    statements = resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s.get("Principal") == {"Service": f"logs.{stack.region}.amazonaws.com"}]
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": (
                f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{stack.stack_name}-*"
            )
        }
    }
    # The pattern holds because CloudFormation names every one of them "<stack name>-<logical ID>-<suffix>": none may
    # carry a name of its own while it is encrypted with this key.
    groups = _of_type(resources, "AWS::Logs::LogGroup")
    assert groups and all("LogGroupName" not in g["Properties"] for g in groups.values())


def test_vpc_flow_log_role_trusts_only_this_accounts_flow_logs(synthesized, resources):
    stack = synthesized.producer_stage.producer
    (flow_log,) = _of_type(resources, "AWS::EC2::FlowLog").values()
    role = resources[flow_log["Properties"]["DeliverLogsPermissionArn"]["Fn::GetAtt"][0]]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": stack.account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{stack.region}:{stack.account}:vpc-flow-log/*"},
    }


def test_backup_key_grants_only_via_aws_backup_and_dynamodb(synthesized, resources, cfg):
    if not cfg.backup.enabled:
        return
    stack = synthesized.producer_stage.producer
    (selection,) = _of_type(resources, "AWS::Backup::BackupSelection").values()
    role_id = selection["Properties"]["BackupSelection"]["IamRoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        r
        for r in _of_type(resources, "AWS::IAM::ManagedPolicy").values()
        if {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    kms = [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert kms
    for statement in kms:
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == [
            f"backup.{stack.region}.amazonaws.com",
            f"dynamodb.{stack.region}.amazonaws.com",
        ], statement["Sid"]
