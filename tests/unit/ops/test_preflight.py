"""ddb-lake preflight against three moto accounts: each check's ✓ and its ✗ with the fix, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.parsers import ResponseParserError

from ops import aws, common, preflight
from ops.cli import app
from shared.config import from_dict
from tests import configs

from .conftest import CONSUMER, PRODUCER, REGION, TOOLING, account_session, role_arn, write_cdk_json

CONNECTION = configs.CONNECTION.format(region=REGION, account=TOOLING)
BOOTSTRAP_TEMPLATE = {
    "Parameters": {
        "TrustedAccounts": {"Type": "CommaDelimitedList", "Default": ""},
        "Version": {"Type": "String", "Default": "21"},
    },
    "Resources": {
        # What the real bootstrap stack holds under this logical id.
        "CdkBootstrapVersion": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Type": "String",
                "Name": preflight.BOOTSTRAP_VERSION_PARAMETER,
                "Value": {"Ref": "Version"},
            },
        }
    },
}


def bootstrap(account: str, version: str = "21", trusted: tuple[str, ...] = (TOOLING,)) -> None:
    cloudformation = account_session(account).client("cloudformation")
    cloudformation.create_stack(
        StackName="CDKToolkit",
        TemplateBody=json.dumps(BOOTSTRAP_TEMPLATE),
        Parameters=[
            {"ParameterKey": "TrustedAccounts", "ParameterValue": ",".join(trusted)},
            {"ParameterKey": "Version", "ParameterValue": version},
        ],
    )


def lake_formation(account: str, iam_only: bool) -> None:
    defaults = [{"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}]
    account_session(account).client("lakeformation").put_data_lake_settings(
        DataLakeSettings={
            "DataLakeAdmins": [],
            "CreateDatabaseDefaultPermissions": defaults if iam_only else [],
            "CreateTableDefaultPermissions": defaults if iam_only else [],
        }
    )


def answer_connection(stubs, status: str = "AVAILABLE") -> None:
    stubs.add(
        "codeconnections",
        "get_connection",
        {
            "Connection": {
                "ConnectionName": "github",
                "ConnectionArn": CONNECTION,
                "ProviderType": "GitHub",
                "OwnerAccountId": TOOLING,
                "ConnectionStatus": status,
            }
        },
    )


def answer_lambda(stubs, quota: int = 1000, unreserved: int = 1000) -> None:
    stubs.add(
        "lambda",
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": unreserved}},
    )


def ready_accounts(stubs) -> None:
    bootstrap(TOOLING, trusted=())
    bootstrap(CONSUMER)
    bootstrap(PRODUCER)
    lake_formation(CONSUMER, iam_only=True)
    answer_connection(stubs)
    answer_lambda(stubs)


def roles() -> list[str]:
    return [
        *("--role-tooling", role_arn(TOOLING)),
        *("--role-consumer", role_arn(CONSUMER)),
        *("--role-producer", role_arn(PRODUCER)),
    ]


def invoke(runner, cdk_json: Path, *args: str) -> Any:
    return runner.invoke(app, ["preflight", "--cdk-json", str(cdk_json), "--assembly", "no-such-dir", *args])


def test_all_checks_pass_exit_0(runner, cdk_json, stubs):
    ready_accounts(stubs)
    result = invoke(runner, cdk_json, *roles())
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    assert "preflight: all 14 checks passed" in result.output
    for name in (
        "credentials",
        "CDK bootstrap stack",
        "CDK bootstrap version",
        "trusts the tooling account",
        "CodeConnections connection",
        "Lambda concurrency",
        "Lake Formation defaults",
    ):
        assert name in result.output


def test_every_problem_is_a_cross_with_its_fix_exit_1(runner, tmp_path, stubs):
    raw = configs.variant("default")
    raw["transform"] = {"reserved_concurrency": 200}
    cdk_json = write_cdk_json(tmp_path / "cdk.json", raw)
    bootstrap(TOOLING, trusted=())
    bootstrap(CONSUMER, version="5")
    bootstrap(PRODUCER, trusted=("999999999999",))
    lake_formation(CONSUMER, iam_only=False)
    answer_connection(stubs, "PENDING")
    answer_lambda(stubs, quota=250, unreserved=250)
    result = invoke(runner, cdk_json, *roles())
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "github is PENDING" in out and "Update pending connection" in out
    assert "version 5, need ≥ 6" in out
    assert "TrustedAccounts = 999999999999" in out
    assert "--trust 111111111111,999999999999" in out
    assert "200 x 1 table(s) = 200 reserved, but the quota is 250 and Lambda keeps 100 unreserved" in out
    assert "at least 300" in out
    assert "Lake Formation governs the new Glue database and tables" in out
    assert f"cdk-hnb659fds-cfn-exec-role-{CONSUMER}-{REGION} a data lake administrator" in out
    assert result.output.rstrip().splitlines()[-1] == (
        "preflight: 5 of 14 checks failed: CodeConnections connection, CDK bootstrap version, "
        "Lake Formation defaults, trusts the tooling account, Lambda concurrency"
    )


def test_credentials_of_another_account_skip_that_accounts_checks(runner, cdk_json, stubs):
    ready_accounts(stubs)
    # No --role-producer: the default credentials are moto's account 123456789012.
    result = invoke(runner, cdk_json, "--role-tooling", role_arn(TOOLING), "--role-consumer", role_arn(CONSUMER))
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"belong to account 123456789012, not {PRODUCER}" in out
    assert f"pass --profile-producer or --role-producer with credentials for account {PRODUCER}" in out
    assert "Lambda concurrency" not in out  # nothing else checked in an account we cannot reach


def test_missing_bootstrap_stack_says_how_to_bootstrap(runner, cdk_json, stubs):
    ready_accounts(stubs)
    result = invoke(runner, cdk_json, *roles(), "--only", "producer")
    assert result.exit_code == 0, result.output
    account_session(PRODUCER).client("cloudformation").delete_stack(StackName="CDKToolkit")
    answer_lambda(stubs)
    result = invoke(runner, cdk_json, *roles(), "--only", "producer")
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"no CDKToolkit stack in {REGION}" in out
    assert f"npx cdk bootstrap aws://{PRODUCER}/{REGION} --trust {TOOLING} --cloudformation-execution-policies" in out


def test_bootstrap_version_required_by_the_synthesized_templates(runner, tmp_path, cdk_json, stubs):
    ready_accounts(stubs)
    stage = tmp_path / "cdk.out" / "assembly-Pipeline-Producer"
    stage.mkdir(parents=True)
    (tmp_path / "cdk.out" / "manifest.json").write_text(
        json.dumps(
            {"artifacts": {"stage": {"type": "cdk:cloud-assembly", "properties": {"directoryName": stage.name}}}}
        )
    )
    (stage / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "Producer": {
                        "type": "aws:cloudformation:stack",
                        "environment": f"aws://{PRODUCER}/{REGION}",
                        "properties": {"requiresBootstrapStackVersion": 22},
                    }
                }
            }
        )
    )
    args = ["preflight", "--cdk-json", str(cdk_json), "--assembly", str(tmp_path / "cdk.out"), *roles()]
    result = runner.invoke(app, [*args, "--only", "producer"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"version 21, need ≥ 22 (required by {stage})" in out


def test_only_checks_the_accounts_asked_for(runner, cdk_json, stubs):
    ready_accounts(stubs)
    result = invoke(runner, cdk_json, *roles(), "--only", "tooling")
    assert result.exit_code == 0, result.output
    assert "preflight: all 4 checks passed" in result.output
    assert "Lake Formation" not in result.output


def test_reservations_this_stack_already_holds_are_not_counted_twice(stubs, monkeypatch):
    # After a deployment the transform's own reservations are out of the unreserved pool: add them back.
    raw = configs.variant("default")
    raw["transform"] = {"reserved_concurrency": 300}
    cfg = from_dict(raw)
    rows: list[tuple[Any, ...]] = []
    target = preflight.Target(cfg.producer, ["producer"], account_session(PRODUCER))
    answer_lambda(stubs, quota=1000, unreserved=600)
    monkeypatch.setattr(preflight, "_our_reservations", lambda session: 300)
    preflight._lambda_concurrency(cfg, target, lambda *row: rows.append(row))
    answer_lambda(stubs, quota=1000, unreserved=350)
    monkeypatch.setattr(preflight, "_our_reservations", lambda session: 0)
    preflight._lambda_concurrency(cfg, target, lambda *row: rows.append(row))
    assert rows[0][1] is True, rows[0]
    assert rows[1][1] is False
    assert "other functions reserve too much: free 50 reserved executions" in rows[1][3]


def test_our_reservations_are_read_from_the_producer_stack(monkeypatch):
    # Without a deployed producer stack there is nothing of ours to add back.
    assert preflight._our_reservations(account_session(PRODUCER)) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not a CDK JSON object"),
        (json.dumps({"context": {"datalake": {"prefix": "X"}}}), "invalid configuration"),
    ],
)
def test_configuration_problems_exit_2(runner, tmp_path, content, message):
    path = tmp_path / "cdk.json"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["preflight", "--cdk-json", str(path)])
    assert result.exit_code == 2
    assert message in result.output


def test_each_check_is_shown_as_soon_as_it_is_known(runner, cdk_json, stubs, monkeypatch):
    ready_accounts(stubs)
    printed: list[str] = []
    original_print = common.out.print
    monkeypatch.setattr(common.out, "print", lambda *a, **k: (printed.append(str(a[0])), original_print(*a, **k)))
    seen_before_bootstrap: list[list[str]] = []
    original_bootstrap = preflight._bootstrap

    def bootstrap_check(*args: Any) -> None:
        seen_before_bootstrap.append(list(printed))
        original_bootstrap(*args)

    monkeypatch.setattr(preflight, "_bootstrap", bootstrap_check)
    result = invoke(runner, cdk_json, *roles())
    assert result.exit_code == 0, result.output
    # When the consumer's bootstrap check starts, the tooling account's rows and the consumer's credentials row
    # are already on the screen.
    before_consumer = seen_before_bootstrap[1]
    assert any(f"tooling {TOOLING} · CodeConnections connection" in line for line in before_consumer)
    assert any(f"consumer {CONSUMER} · credentials" in line for line in before_consumer)
    assert not any("Lake Formation" in line for line in before_consumer)


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (
            EndpointConnectionError(endpoint_url=f"https://sts.{REGION}.amazonaws.com/"),
            f'network: Could not connect to the endpoint URL: "https://sts.{REGION}.amazonaws.com/"',
        ),
        # What a proxy or a wrong AWS_ENDPOINT_URL answering an empty body gives (measured): once a traceback.
        (ResponseParserError("Unable to parse response (no element found)"), "endpoint: not an AWS answer"),
    ],
)
def test_an_unreachable_endpoint_is_a_network_problem_not_credentials(
    runner, cdk_json, stubs, monkeypatch, error, detail
):
    def unreachable(session: Any, region: str | None = None) -> str:
        raise error

    monkeypatch.setattr(aws, "account_of", unreachable)
    result = invoke(runner, cdk_json, *roles(), "--only", "producer")
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert detail in out
    assert "fix: the AWS endpoint could not be reached (or what answered was not AWS): check the network" in out
    assert "credentials for account" not in out


def vault_config(tmp_path) -> Path:
    raw = configs.variant("default")
    raw["backup"] = {"copy_to_vault_arn": f"arn:aws:backup:{REGION}:444444444444:backup-vault:central"}
    return write_cdk_json(tmp_path / "cdk.json", raw)


def answer_backup(stubs, cross_account: str = "true", opt_in: bool = True, managed: bool = True) -> None:
    stubs.add("backup", "describe_global_settings", {"GlobalSettings": {"isCrossAccountBackupEnabled": cross_account}})
    stubs.add(
        "backup",
        "describe_region_settings",
        {
            "ResourceTypeOptInPreference": {"DynamoDB": opt_in, "EBS": True},
            "ResourceTypeManagementPreference": {"DynamoDB": managed, "EFS": True},
        },
    )


def test_backup_copy_to_another_account_needs_both_settings(runner, tmp_path, stubs):
    cdk_json = vault_config(tmp_path)
    ready_accounts(stubs)
    answer_backup(stubs)
    result = invoke(runner, cdk_json, *roles(), "--only", "producer")
    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "cross-account backup: isCrossAccountBackupEnabled = true (needed to copy to arn:aws:backup:" in out
    assert f"DynamoDB advanced backup: in {REGION}: DynamoDB opt-in on, full AWS Backup management on" in out

    answer_lambda(stubs)
    answer_backup(stubs, cross_account="false", managed=False)
    result = invoke(runner, cdk_json, *roles(), "--only", "producer")
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "isCrossAccountBackupEnabled = false" in out
    assert "aws backup update-global-settings --global-settings isCrossAccountBackupEnabled=true" in out
    assert "DynamoDB opt-in on, full AWS Backup management off" in out
    assert (
        f"aws backup update-region-settings --region {REGION} --resource-type-opt-in-preference DynamoDB=true "
        "--resource-type-management-preference DynamoDB=true"
    ) in out
    assert result.output.rstrip().splitlines()[-1] == (
        "preflight: 2 of 7 checks failed: cross-account backup, DynamoDB advanced backup"
    )


def test_backup_settings_are_not_checked_without_a_copy(runner, cdk_json, stubs):
    ready_accounts(stubs)
    result = invoke(runner, cdk_json, *roles(), "--only", "producer")
    assert result.exit_code == 0, result.output
    assert "cross-account backup" not in result.output  # no backup client was even asked (Stubber would fail)
