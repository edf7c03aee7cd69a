"""The five cdk-nag packs (AwsSolutions, HIPAA Security, NIST 800-53 R5, PCI DSS 3.2.1, Serverless): each one
really fails a synth, every stage of every configuration passes all of them, the fixes they asked for are in the
templates (AWS Backup for created tables, optional replication of the lake, encrypted and retained logs for the
functions cdk-nag cannot see), and the acknowledgment table in docs/compliance.md matches the default synthesis."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from consumer.replica import OWNER_OVERRIDE, REPLICA_OBJECT_ACTIONS, replica_problems, role_name
from pipeline.nag import assembly, findings
from producer.backup import BACKUP_POLICY, copy_destination_account
from shared import config
from shared.config import NAG_PACKS
from shared.nag import PACKS, register
from tests import configs
from tests.conftest import Synthesized, synthesize, template_of

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compliance.md"
BEGIN, END = "<!-- acknowledgment-counts:begin -->", "<!-- acknowledgment-counts:end -->"
REPLICA = {
    "account": "555566667777",
    "region": "eu-central-1",
    "bucket_name": "ddblake-lake-replica-555566667777",
    "key_arn": "arn:aws:kms:eu-central-1:555566667777:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
COPY_VAULT = "arn:aws:backup:eu-central-1:555566667777:backup-vault:central-tables"


def _all_packs(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "compliance": {"packs": list(NAG_PACKS)}}


# --- each pack really gates ---------------------------------------------------------------------------------
def _bucket_without_tls(stack: Stack) -> None:
    s3.Bucket(stack, "Plain", enforce_ssl=False)


def _function_without_dlq(stack: Stack) -> None:
    lambda_.Function(
        stack,
        "NoDlq",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )


BAD = {
    "AwsSolutions": (_bucket_without_tls, "AwsSolutions-S10"),
    "HIPAA.Security": (_bucket_without_tls, "HIPAA.Security-S3BucketSSLRequestsOnly"),
    "NIST.800.53.R5": (_bucket_without_tls, "NIST.800.53.R5-S3BucketSSLRequestsOnly"),
    "PCI.DSS.321": (_bucket_without_tls, "PCI.DSS.321-S3BucketSSLRequestsOnly"),
    "Serverless": (_function_without_dlq, "Serverless-LambdaDLQ"),
}


def test_every_configurable_pack_has_a_deliberate_violation():
    assert set(BAD) == set(PACKS) == set(NAG_PACKS)


@pytest.mark.parametrize("pack", list(BAD))
def test_each_pack_fails_the_synth_on_one_non_compliant_resource(pack, tmp_path):
    build, rule = BAD[pack]
    app = App(outdir=str(tmp_path))
    register(app, [pack])
    build(Stack(app, "NonCompliant"))
    with pytest.raises(RuntimeError, match="ValidationFailed") as failed:
        app.synth()
    assert rule in str(failed.value)
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == pack]
    assert plugin["conclusion"] == "failure"
    assert rule in {v["ruleName"] for v in plugin["violations"]}


# --- every stage of every configuration passes every pack ---------------------------------------------------
def _group(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:2]) if parts[0] == "Pipeline" and parts[1:2] in (["Consumer"], ["Producer"]) else parts[0]


def _violations_by_stage(app: App, pack: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = collections.defaultdict(list)
    for violation in PACKS[pack]().validate_scope(app).violations:
        for resource in violation.violating_resources:
            found[_group(resource.construct_path)].append(f"{violation.rule_name} {resource.construct_path}")
    return dict(found)


@pytest.mark.parametrize("pack", NAG_PACKS)
def test_every_stage_and_support_stack_passes_the_pack(synthesized: Synthesized, pack):
    # The app holds the pipeline stack with both stages and, when the tooling region differs, CodePipeline's
    # cross-region support stacks.
    assert _violations_by_stage(synthesized.app, pack) == {}


@pytest.mark.parametrize("pack", NAG_PACKS)
def test_the_sandbox_passes_the_pack(sandboxed: Synthesized, pack):
    assert _violations_by_stage(sandboxed.app, pack) == {}


def test_packs_run_by_default():
    assert config.ComplianceConfig().packs == NAG_PACKS


# --- AWS Backup ---------------------------------------------------------------------------------------------
def _one(template, kind: str) -> dict[str, Any]:
    (resource,) = template.find_resources(kind).values()
    return resource["Properties"]


def test_backup_plan_selects_exactly_the_created_tables(synthesized: Synthesized, producer):
    cfg, stack = synthesized.cfg, synthesized.producer_stage.producer
    created = [t.name for t in cfg.tables if not t.existing_table_name]
    assert created, "every configuration of the matrix creates at least one table"
    selection = _one(producer, "AWS::Backup::BackupSelection")["BackupSelection"]
    expected = [
        {"Fn::GetAtt": [stack.get_logical_id(stack.captures[name].table.node.default_child), "Arn"]} for name in created
    ]
    assert selection["Resources"] == expected
    # An existing table is owned elsewhere, and so are its backups.
    text = json.dumps(producer.find_resources("AWS::Backup::BackupSelection"))
    for table in cfg.tables:
        if table.existing_table_name:
            assert table.existing_table_name not in text


def test_backup_rules_keep_what_the_configuration_says(cfg, producer):
    plan = _one(producer, "AWS::Backup::BackupPlan")["BackupPlan"]
    rules = {r["RuleName"]: r for r in plan["BackupPlanRule"]}
    assert set(rules) == {"Daily", "Monthly"}
    assert rules["Daily"]["Lifecycle"] == {"DeleteAfterDays": cfg.backup.daily_retention_days}
    assert rules["Monthly"]["Lifecycle"] == {"DeleteAfterDays": cfg.backup.monthly_retention_days}
    assert rules["Daily"]["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert rules["Monthly"]["ScheduleExpression"] == "cron(0 4 1 * ? *)"
    assert all("CopyActions" not in r for r in rules.values())  # no copy configured in the matrix
    assert plan["BackupPlanName"] == f"{cfg.prefix}-tables"


def test_backup_vault_uses_its_own_rotating_key_and_denies_early_deletion(cfg, producer):
    vault = _one(producer, "AWS::Backup::BackupVault")
    key_id = vault["EncryptionKeyArn"]["Fn::GetAtt"][0]
    keys = producer.find_resources("AWS::KMS::Key")
    assert keys[key_id]["Properties"]["EnableKeyRotation"] is True
    assert keys[key_id]["DeletionPolicy"] == "RetainExceptOnCreate"
    # Not the key of the tables, streams and logs.
    table_keys = {
        t["Properties"]["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0]
        for t in producer.find_resources("AWS::DynamoDB::Table").values()
    }
    assert key_id not in table_keys
    (deny,) = vault["AccessPolicy"]["Statement"]
    assert deny["Effect"] == "Deny" and "backup:DeleteRecoveryPoint" in deny["Action"]
    assert vault["BackupVaultName"] == f"{cfg.prefix}-tables"


def test_backup_role_is_aws_backups_with_key_access_to_the_two_keys_only(producer):
    selection = _one(producer, "AWS::Backup::BackupSelection")["BackupSelection"]
    role_id = selection["IamRoleArn"]["Fn::GetAtt"][0]
    role = producer.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "backup.amazonaws.com"}
    assert BACKUP_POLICY in json.dumps(role["ManagedPolicyArns"])
    policies = producer.find_resources("AWS::IAM::ManagedPolicy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    (policy,) = policies.values()
    resources = {json.dumps(s["Resource"]) for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert len(resources) == 2 and all("GetAtt" in r for r in resources)
    assert not producer.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})


# --- functions cdk-nag cannot see, and every log group --------------------------------------------------------
def _templates(outdir: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in outdir.rglob("*.template.json")}


def test_every_function_logs_to_an_encrypted_retained_group_of_its_stack(synthesized: Synthesized):
    # cdk-nag sees only CfnFunction; this covers CDK's provider functions (plain CfnResource) as well.
    for name, template in _templates(synthesized.outdir).items():
        resources = template.get("Resources", {})
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
            assert isinstance(group, dict) and "Ref" in group, f"{name}:{logical_id} logs to an unmanaged group"
            log_group = resources[group["Ref"]]
            assert log_group["Type"] == "AWS::Logs::LogGroup"
            assert "KmsKeyId" in log_group["Properties"] and "RetentionInDays" in log_group["Properties"]
            assert log_group["DeletionPolicy"] in ("Retain", "RetainExceptOnCreate")


def test_every_log_group_is_encrypted_and_expires(synthesized: Synthesized):
    for name, template in _templates(synthesized.outdir).items():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Logs::LogGroup":
                props = resource["Properties"]
                assert "KmsKeyId" in props and "RetentionInDays" in props, f"{name}:{logical_id}"


def test_provider_functions_run_a_current_runtime(synthesized: Synthesized):
    allowed = re.compile(r"^(nodejs(2[2-9]|[3-9]\d)\.x|python3\.1[3-9])$")
    for name, template in _templates(synthesized.outdir).items():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Lambda::Function":
                assert allowed.match(resource["Properties"]["Runtime"]), f"{name}:{logical_id}"


# --- replication of the lake ----------------------------------------------------------------------------------
def test_no_replication_without_a_replica(cfg, consumer):
    assert cfg.data_lake.replica is None
    for bucket in consumer.find_resources("AWS::S3::Bucket").values():
        assert "ReplicationConfiguration" not in bucket["Properties"]


def _with_replica(account: str) -> dict[str, Any]:
    raw = _all_packs(configs.variant("default"))
    raw["data_lake"] = {"replica": {**REPLICA, "account": account}}
    raw["backup"] = {"copy_to_vault_arn": COPY_VAULT.replace("555566667777", account)}
    return raw


@pytest.fixture(scope="module", params=["other-account", "same-account"])
def replicated(request, tmp_path_factory) -> Synthesized:
    """The default configuration plus a replica and a backup copy vault: synthesized with all five packs, so
    the synth itself fails on any unacknowledged finding these add."""
    account = REPLICA["account"] if request.param == "other-account" else configs.CONSUMER
    return synthesize(_with_replica(account), tmp_path_factory.mktemp(f"replica-{request.param}"), request.param)


def test_replication_of_kms_objects_with_the_replica_key(replicated: Synthesized):
    cfg = replicated.cfg
    consumer = template_of(replicated.consumer_stage.data_lake)
    (bucket,) = [
        b for b in consumer.find_resources("AWS::S3::Bucket").values() if "ReplicationConfiguration" in b["Properties"]
    ]
    assert bucket["Properties"]["BucketName"] == f"{cfg.prefix}-datalake-{cfg.consumer.account}-{cfg.consumer.region}"
    replication = bucket["Properties"]["ReplicationConfiguration"]
    (rule,) = replication["Rules"]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    destination = rule["Destination"]
    assert destination["Bucket"] == f"arn:aws:s3:::{cfg.data_lake.replica.bucket_name}"
    assert destination["EncryptionConfiguration"] == {"ReplicaKmsKeyID": cfg.data_lake.replica.key_arn}
    other = cfg.data_lake.replica.account != cfg.consumer.account
    assert ("AccessControlTranslation" in destination) is other
    if other:
        assert destination["AccessControlTranslation"] == {"Owner": "Destination"}
        assert destination["Account"] == cfg.data_lake.replica.account
    role_id = replication["Role"]["Fn::GetAtt"][0]
    bucket_arn = f"arn:aws:s3:::{bucket['Properties']['BucketName']}"
    role = consumer.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["RoleName"] == role_name(cfg)
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    # Confused deputy: S3 assumes it only to replicate this account's lake bucket.
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": cfg.consumer.account},
        "ArnLike": {"aws:SourceArn": bucket_arn},
    }
    (policy,) = consumer.find_resources(
        "AWS::IAM::ManagedPolicy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    ).values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    writes = statements["WriteReplicas"]
    assert set(REPLICA_OBJECT_ACTIONS) <= set(writes["Action"])
    assert (OWNER_OVERRIDE in writes["Action"]) is other
    assert statements["EncryptReplicasViaS3"]["Resource"] == cfg.data_lake.replica.key_arn
    assert statements["EncryptReplicasViaS3"]["Condition"]["StringEquals"] == {
        "kms:ViaService": f"s3.{cfg.data_lake.replica.region}.amazonaws.com"
    }
    assert statements["DecryptSourceViaS3"]["Action"] == "kms:Decrypt"


def test_backup_copies_to_the_configured_vault_and_shares_only_the_vault_key(replicated: Synthesized):
    cfg = replicated.cfg
    producer = template_of(replicated.producer_stage.producer)
    plan = _one(producer, "AWS::Backup::BackupPlan")["BackupPlan"]
    for rule in plan["BackupPlanRule"]:
        (copy,) = rule["CopyActions"]
        assert copy["DestinationBackupVaultArn"] == cfg.backup.copy_to_vault_arn
        assert copy["Lifecycle"] == rule["Lifecycle"]
    vault = _one(producer, "AWS::Backup::BackupVault")
    key_id = vault["EncryptionKeyArn"]["Fn::GetAtt"][0]
    destination = copy_destination_account(cfg.backup.copy_to_vault_arn)
    assert destination != cfg.producer.account
    for logical_id, key in producer.find_resources("AWS::KMS::Key").items():
        shared = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if destination in json.dumps(s)]
        # Shared with the destination account, and only the vault key (never the tables' key).
        assert bool(shared) is (logical_id == key_id), logical_id


def test_a_replica_key_in_another_region_is_refused():
    raw = _with_replica(REPLICA["account"])
    raw["data_lake"]["replica"]["key_arn"] = REPLICA["key_arn"].replace("eu-central-1", "eu-west-1")
    (problem,) = replica_problems(config.from_dict(raw))
    assert problem.startswith("datalake.data_lake.replica.key_arn") and "eu-central-1" in problem


# --- the acknowledgment table in docs/compliance.md ----------------------------------------------------
@pytest.fixture(scope="module")
def default_outdir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cdk.out-compliance-default")
    synthesize(_all_packs(configs.variant("default")), out, "default")
    return out


def acknowledgment_counts(outdir: Path) -> dict[tuple[str, str], int]:
    """(pack, stage) -> acknowledgments recorded in the cloud assembly (``aws:cdk:acknowledged-rules``): one per
    construct an id is acknowledged on, read with the same code as the per-stage JUnit reports."""
    groups, metadata = assembly.read(outdir)
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for finding in findings.dedupe(findings.from_metadata(metadata, {})):
        group = assembly.group_of(groups, finding.path)
        assert group is not None, finding
        counts[(finding.pack, group.name)] += 1
    return dict(counts)


def render_table(counts: dict[tuple[str, str], int]) -> str:
    stages = sorted({stage for _, stage in counts}, key=lambda s: (s == "Pipeline", s))
    lines = [
        "| pack | " + " | ".join(stages) + " | total |",
        "|---|" + "---:|" * (len(stages) + 1),
    ]
    for pack in NAG_PACKS:
        row = [counts.get((pack, stage), 0) for stage in stages]
        lines.append(f"| {pack} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    totals = [sum(counts.get((pack, stage), 0) for pack in NAG_PACKS) for stage in stages]
    lines.append("| **total** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return "\n".join(lines)


def test_documented_acknowledgment_counts_match_the_default_synthesis(default_outdir):
    text = DOC.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{DOC} needs the table between {BEGIN} and {END}"
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = render_table(acknowledgment_counts(default_outdir))
    assert documented == expected, f"regenerate the table in {DOC.name} between the markers:\n{expected}"


def test_the_default_synthesis_acknowledges_something_in_every_stage(default_outdir):
    counts = acknowledgment_counts(default_outdir)
    assert {stage for _, stage in counts} == {"Consumer", "Producer", "Pipeline"}
    assert {pack for pack, _ in counts} == set(NAG_PACKS)
