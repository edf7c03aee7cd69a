"""``ddb-lake preflight``: what must be true in the three accounts before the first deployment can succeed.

Every check becomes one row (✓ or ✗ with the fix), reported the moment it is known (``on_check``); an AWS error
in a check is that check's ✗, so one run shows everything that is wrong. A check that cannot reach AWS says so
(network, endpoint), not "credentials". Account roles: ``tooling`` (the pipeline), ``consumer`` (B, the lake) and
``producer`` (A, the tables).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ops import aws
from ops.common import OpsError
from shared import config
from shared.config import AppConfig, Environment

ROLES = ("tooling", "consumer", "producer")
BOOTSTRAP_STACK = "CDKToolkit"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# aws-cdk-lib's DefaultStackSynthesizer asserts at least this version in every template it writes.
MIN_BOOTSTRAP_VERSION = 6
# The producer stack's name as the pipeline deploys it (stage "Producer", stack "ChangeCapture").
PRODUCER_STACK = "Producer-ChangeCapture"
IAM_ONLY = "IAM_ALLOWED_PRINCIPALS"
HEALTHY_STACK = re.compile(r"^(CREATE|UPDATE|IMPORT)_COMPLETE$|^UPDATE_ROLLBACK_COMPLETE$")


@dataclass
class Check:
    role: str  # tooling, consumer or producer (several, joined, when they share an account)
    account: str
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Target:
    """One account and region, and every role the configuration gives it."""

    env: Environment
    roles: list[str] = field(default_factory=list)
    session: boto3.Session | None = None

    @property
    def label(self) -> str:
        return "+".join(self.roles)


def required_bootstrap_versions(assembly: Path) -> dict[tuple[str, str], tuple[int, str]]:
    """(account, region) -> (version, where it was read): the highest ``requiresBootstrapStackVersion`` of the
    stacks ``cdk synth`` wrote for that environment, nested stage assemblies included."""
    found: dict[tuple[str, str], tuple[int, str]] = {}

    def walk(folder: Path) -> None:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            return
        for artifact in manifest.get("artifacts", {}).values():
            props = artifact.get("properties", {})
            if artifact.get("type") == "cdk:cloud-assembly" and props.get("directoryName"):
                walk(folder / props["directoryName"])
                continue
            env = str(artifact.get("environment", ""))
            version = props.get("requiresBootstrapStackVersion")
            if artifact.get("type") == "aws:cloudformation:stack" and env.startswith("aws://") and version:
                account, region = env.removeprefix("aws://").split("/", 1)
                if version > found.get((account, region), (0, ""))[0]:
                    found[(account, region)] = (int(version), str(folder))

    walk(assembly)
    return found


def targets(cfg: AppConfig, only: Iterable[str]) -> list[Target]:
    wanted = set(only) or set(ROLES)
    by_env: dict[tuple[str, str], Target] = {}
    for role in ROLES:
        env: Environment = getattr(cfg, role)
        if role in wanted:
            by_env.setdefault((env.account, env.region), Target(env)).roles.append(role)
    return list(by_env.values())


def run(
    cfg: AppConfig,
    credentials: dict[str, aws.Credentials],
    only: Iterable[str] = (),
    assembly: Path | None = None,
    on_check: Callable[[Check], None] = lambda check: None,
    on_start: Callable[[str], None] = lambda what: None,
) -> list[Check]:
    """Every check of the accounts asked for; ``on_check`` sees each one as soon as it is known, ``on_start``
    is told what is being checked next (the CLI's spinner)."""
    required = required_bootstrap_versions(assembly) if assembly else {}
    checks: list[Check] = []
    for target in targets(cfg, only):
        add = _adder(checks, target, on_check)
        role = target.roles[0]
        creds = credentials.get(role, aws.Credentials())
        where = f"{target.label} {target.env.account}"
        steps: list[tuple[str, Callable[[], None]]] = [
            ("CDK bootstrap", lambda t=target, a=add: _bootstrap(cfg, t, required, a))
        ]
        if "tooling" in target.roles:
            steps.append(("CodeConnections connection", lambda t=target, a=add: _connection(cfg, t, a)))
        if "producer" in target.roles:
            steps.append(("Lambda concurrency", lambda t=target, a=add: _lambda_concurrency(cfg, t, a)))
            if cfg.backup.enabled and cfg.backup.copy_to_vault_arn:
                steps.append(("AWS Backup settings", lambda t=target, a=add: _backup_copy(cfg, t, a)))
        if "consumer" in target.roles:
            steps.append(("Lake Formation defaults", lambda t=target, a=add: _lake_formation(cfg, t, a)))
        on_start(f"{where}: credentials")
        if not _identity(cfg, target, creds, add):
            continue
        for name, step in steps:
            on_start(f"{where}: {name}")
            step()
    return checks


Add = Callable[[str, bool, str, str], None]


def _adder(checks: list[Check], target: Target, on_check: Callable[[Check], None]) -> Add:
    def add(name: str, ok: bool, detail: str, fix: str = "") -> None:
        check = Check(target.label, target.env.account, name, ok, detail, "" if ok else fix)
        checks.append(check)
        on_check(check)

    return add


def _failed(add: Add, name: str, error: Exception, permission: str) -> None:
    fix = (
        aws.hint(error, "", "")
        if aws.is_connection_error(error)
        else f"allow {permission} to the credentials used for this account"
    )
    add(name, False, aws.describe(error), fix)


def _identity(cfg: AppConfig, target: Target, creds: aws.Credentials, add: Add) -> bool:
    env, role = target.env, target.roles[0]
    name = "credentials"
    option = f"--profile-{role} or --role-{role}"
    try:
        target.session = aws.session(creds, env.region)
        account = aws.account_of(target.session)
    except OpsError as error:
        add(name, False, str(error), aws.credentials_fix(env.account, option))
        return False
    except aws.ERRORS as error:
        add(name, False, aws.describe(error), aws.hint(error, env.account, option))
        return False
    if account != env.account:
        add(
            name,
            False,
            f"{creds.describe()} belong to account {account}, not {env.account}",
            f"pass {option} with credentials for account {env.account}",
        )
        return False
    add(name, True, f"account {account} via {creds.describe()}")
    return True


def _bootstrap_command(cfg: AppConfig, env: Environment, trusted: Iterable[str] = ()) -> str:
    command = f"npx cdk bootstrap aws://{env.account}/{env.region}"
    if env.account != cfg.tooling.account:
        accounts = ",".join(sorted({cfg.tooling.account, *trusted}))
        command += f" --trust {accounts} --cloudformation-execution-policies <policy ARN>"
    return command


def _bootstrap(cfg: AppConfig, target: Target, required: dict[tuple[str, str], tuple[int, str]], add: Add) -> None:
    env, session = target.env, target.session
    assert session is not None
    try:
        stacks = aws.client(session, "cloudformation").describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            add(
                "CDK bootstrap stack",
                False,
                f"no {BOOTSTRAP_STACK} stack in {env.region}",
                f"bootstrap it: {_bootstrap_command(cfg, env)}",
            )
        else:
            _failed(add, "CDK bootstrap stack", error, "cloudformation:DescribeStacks")
        return
    except aws.ERRORS as error:
        _failed(add, "CDK bootstrap stack", error, "cloudformation:DescribeStacks")
        return
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    healthy = bool(HEALTHY_STACK.match(status))
    add(
        "CDK bootstrap stack",
        healthy,
        f"{BOOTSTRAP_STACK} is {status} in {env.region}",
        f"repair or re-run: {_bootstrap_command(cfg, env)}",
    )
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    _bootstrap_version(cfg, target, required, add)
    if env.account != cfg.tooling.account:
        trusted = set(re.findall(r"\d{12}", params.get("TrustedAccounts", "")))
        ok = cfg.tooling.account in trusted
        add(
            "trusts the tooling account",
            ok,
            f"TrustedAccounts = {','.join(sorted(trusted)) or '(none)'}",
            f"re-bootstrap listing every account to trust: {_bootstrap_command(cfg, env, trusted)}",
        )


def _bootstrap_version(
    cfg: AppConfig, target: Target, required: dict[tuple[str, str], tuple[int, str]], add: Add
) -> None:
    env, session = target.env, target.session
    assert session is not None
    need, source = required.get((env.account, env.region), (MIN_BOOTSTRAP_VERSION, "aws-cdk-lib's minimum"))
    if source != "aws-cdk-lib's minimum":
        source = f"required by {source}"
    name = "CDK bootstrap version"
    try:
        value = aws.client(session, "ssm").get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
    except aws.ERRORS as error:
        if aws.error_code(error) == "ParameterNotFound":
            add(name, False, f"{BOOTSTRAP_VERSION_PARAMETER} is missing", _bootstrap_command(cfg, env))
        else:
            _failed(add, name, error, "ssm:GetParameter on " + BOOTSTRAP_VERSION_PARAMETER)
        return
    try:
        version = int(value)
    except ValueError:
        version = -1
    add(
        name,
        version >= need,
        f"version {value}, need ≥ {need} ({source})",
        f"upgrade with the project's pinned CLI: {_bootstrap_command(cfg, env)}",
    )


def _connection(cfg: AppConfig, target: Target, add: Add) -> None:
    assert target.session is not None
    arn = cfg.source.connection_arn
    name = "CodeConnections connection"
    service = cfg.source.connection_service
    try:
        answer = aws.client(target.session, service, cfg.source.connection_region).get_connection(ConnectionArn=arn)
    except aws.ERRORS as error:
        if aws.error_code(error) == "ResourceNotFoundException":
            add(name, False, f"{arn} does not exist", "create it (README, one-time setup) and put its ARN in cdk.json")
        else:
            _failed(add, name, error, f"{service}:GetConnection on {arn}")
        return
    connection = answer.get("Connection", {})
    status = connection.get("ConnectionStatus", "UNKNOWN")
    fixes = {
        "PENDING": "complete the handshake: console → Developer Tools → Settings → Connections → "
        f"{connection.get('ConnectionName', arn)} → Update pending connection",
        "ERROR": "the connection is broken: delete and re-create it, then update source.connection_arn",
    }
    add(name, status == "AVAILABLE", f"{connection.get('ConnectionName', arn)} is {status}", fixes.get(status, ""))


def _our_reservations(session: boto3.Session) -> int:
    """Concurrency already reserved by this project's functions (a re-run after a deployment must not count
    its own reservations twice); 0 when the producer stack is not deployed or cannot be read."""
    cloudformation = aws.client(session, "cloudformation")
    functions = aws.client(session, "lambda")
    total = 0
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=PRODUCER_STACK)
        for page in pages:
            for resource in page["StackResourceSummaries"]:
                if resource["ResourceType"] == "AWS::Lambda::Function" and resource.get("PhysicalResourceId"):
                    answer = functions.get_function_concurrency(FunctionName=resource["PhysicalResourceId"])
                    total += answer.get("ReservedConcurrentExecutions") or 0
    except aws.ERRORS:
        return 0
    return total


def _lambda_concurrency(cfg: AppConfig, target: Target, add: Add) -> None:
    assert target.session is not None
    name = "Lambda concurrency"
    per_table = cfg.transform.reserved_concurrency or 0
    needed = per_table * len(cfg.tables)
    try:
        limits = aws.client(target.session, "lambda").get_account_settings()["AccountLimit"]
    except aws.ERRORS as error:
        _failed(add, name, error, "lambda:GetAccountSettings")
        return
    quota = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    floor = config.MIN_UNRESERVED_CONCURRENCY
    if needed == 0:
        add(name, True, f"nothing reserved (transform.reserved_concurrency is null); quota {quota}")
        return
    what = f"{per_table} x {len(cfg.tables)} table(s) = {needed} reserved"
    if needed + floor > quota:
        add(
            name,
            False,
            f"{what}, but the quota is {quota} and Lambda keeps {floor} unreserved",
            f"ask for a higher 'Concurrent executions' quota (Service Quotas → AWS Lambda) of at least "
            f"{needed + floor}, or lower transform.reserved_concurrency",
        )
        return
    ours = _our_reservations(target.session)
    free = unreserved - floor + ours
    add(
        name,
        needed <= free,
        f"{what}; quota {quota}, unreserved {unreserved} (of which {ours} this stack's)",
        f"other functions reserve too much: free {needed - free} reserved executions in account "
        f"{target.env.account}, or raise the quota",
    )


def _lake_formation(cfg: AppConfig, target: Target, add: Add) -> None:
    assert target.session is not None
    name = "Lake Formation defaults"
    try:
        settings: dict[str, Any] = aws.client(target.session, "lakeformation").get_data_lake_settings()
    except aws.ERRORS as error:
        _failed(add, name, error, "lakeformation:GetDataLakeSettings")
        return
    settings = settings.get("DataLakeSettings", {})
    governed = [
        key
        for key in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions")
        if not any(
            grant.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ONLY
            and "ALL" in grant.get("Permissions", [])
            for grant in settings.get(key, [])
        )
    ]
    region = target.env.region
    add(
        name,
        not governed,
        "IAM access control for new databases and tables"
        if not governed
        else f"{' and '.join(governed)} lack {IAM_ONLY}: Lake Formation governs the new Glue database and tables",
        "either tick 'Use only IAM access control' for new databases and tables (Lake Formation → Data Catalog "
        f"settings), or make cdk-hnb659fds-cfn-exec-role-{target.env.account}-{region} a data lake administrator "
        "and grant Athena users Lake Formation permissions on the database",
    )


def _backup_copy(cfg: AppConfig, target: Target, add: Add) -> None:
    """A copy to a vault in another account needs two account settings AWS Backup keeps outside any stack:
    cross-account backup turned on for the organization (set in its management account; DescribeGlobalSettings
    answers in members too and fails outside an organization), and AWS Backup's advanced DynamoDB features
    (opt-in and full management), without which AWS Backup cannot copy DynamoDB backups across accounts.
    https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DescribeGlobalSettings.html
    https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DescribeRegionSettings.html
    https://docs.aws.amazon.com/aws-backup/latest/devguide/advanced-ddb-backup.html
    https://docs.aws.amazon.com/aws-backup/latest/devguide/create-cross-account-backup.html"""
    assert target.session is not None
    backup = aws.client(target.session, "backup")
    vault = cfg.backup.copy_to_vault_arn
    name = "cross-account backup"
    try:
        settings = backup.describe_global_settings().get("GlobalSettings", {})
    except aws.ERRORS as error:
        _failed(add, name, error, "backup:DescribeGlobalSettings")
    else:
        enabled = str(settings.get("isCrossAccountBackupEnabled", "")).lower() == "true"
        add(
            name,
            enabled,
            f"isCrossAccountBackupEnabled = {settings.get('isCrossAccountBackupEnabled', '(not set)')} "
            f"(needed to copy to {vault})",
            "in the organization's management account: AWS Backup → Settings → Cross-account management → "
            "Cross-account backup → Turn on (aws backup update-global-settings --global-settings "
            "isCrossAccountBackupEnabled=true)",
        )
    name = "DynamoDB advanced backup"
    region = target.env.region
    try:
        answer = backup.describe_region_settings()
    except aws.ERRORS as error:
        _failed(add, name, error, "backup:DescribeRegionSettings")
        return
    opt_in = answer.get("ResourceTypeOptInPreference", {}).get("DynamoDB") is True
    managed = answer.get("ResourceTypeManagementPreference", {}).get("DynamoDB") is True
    add(
        name,
        opt_in and managed,
        f"in {region}: DynamoDB opt-in {'on' if opt_in else 'off'}, full AWS Backup management "
        f"{'on' if managed else 'off'} (both needed to copy DynamoDB backups to another account)",
        f"aws backup update-region-settings --region {region} --resource-type-opt-in-preference DynamoDB=true "
        "--resource-type-management-preference DynamoDB=true (or AWS Backup → Settings → Advanced features for "
        "Amazon DynamoDB backups → Enable)",
    )
