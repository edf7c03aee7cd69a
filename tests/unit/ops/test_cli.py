"""The console script itself: installed under its name, --version, help that fits 80 columns with flags shown as
flags, one exit-code convention for every command, regions checked offline, credentials checked against the
configured account before anything is touched, and timeouts an interactive tool can live with."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from ops import aws
from ops.cli import app
from ops.common import ExitCode
from shared.config import from_dict
from tests import configs

from .conftest import CONSUMER, PRODUCER, role_arn, write_cdk_json
from .lake_fakes import create_bucket, create_table

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = ("preflight", "smoke", "backfill", "replay", "rebuild")


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"ddb-lake": "ops.cli:main"}


def test_help_lists_the_commands_and_exit_codes(runner):
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"^  {command} +\S", result.output, re.M)
    commands = result.output.split("Commands:")[1]
    assert "..." not in commands and max(len(line) for line in result.output.splitlines()) <= 80
    text = " ".join(result.output.split())
    assert "0 ok, 1 check failed, 2 usage or configuration error, 3 AWS error (130: Ctrl-C)" in text
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ddb-lake {version('ddb-cross-account-datalake')}"


def _help(runner, command: str) -> str:
    # An 80-column terminal: click sizes help with shutil.get_terminal_size(), which reads COLUMNS.
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0
    return result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_with_whole_option_names_and_flags_as_flags(command):
    text = _help(CliRunner(), command)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "…" not in text and "<bool>" not in text
    declared = {o for p in app.registered_commands if p.name == command for o in _options_of(p.callback)}
    shown = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    assert declared <= shown, declared - shown  # every option name whole
    if "--dry-run" in declared:
        line = next(line for line in text.splitlines() if line.strip().startswith("--dry-run"))
        assert not re.search(r"--dry-run\s+<", line)  # a flag: no value


def _options_of(callback) -> set[str]:
    import inspect
    import typing

    names = set()
    for parameter in inspect.signature(callback).parameters.values():
        for extra in getattr(typing.get_type_hints(callback, include_extras=True)[parameter.name], "__metadata__", ()):
            names |= {d for d in getattr(extra, "param_decls", ()) or () if d.startswith("--")}
            default = getattr(extra, "default", None)
            names |= {d for d in (getattr(default, "param_decls", ()) or ()) if d.startswith("--")}
    return names


def test_a_flag_takes_no_value(runner, cdk_json):
    result = runner.invoke(app, ["replay", "--table", "orders", "--from", "raw", "--dry-run", "true"])
    assert result.exit_code == 2


# --- one exit-code convention --------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_a_usage_error_in_every_command(runner, command):
    result = runner.invoke(app, [command, "--no-such-option"])
    assert result.exit_code == ExitCode.USAGE


BAD_ARGUMENTS = {
    # Rejected by typer/click's own parsing.
    "preflight": (["--only", "nobody"], "Invalid value for '--only'"),
    # Rejected by the command itself (before any AWS call): the same code.
    "smoke": (["--table", "nope"], "error: no table named 'nope'"),
    "backfill": (["--table-name", "t", "--dry-run", "--region", "eu-centrl-1"], "did you mean eu-central-1?"),
    "replay": (
        ["--table", "orders", "--from", "raw", "--start", "yesterday", "--end", "2026-11-29T11:00Z"],
        "--start 'yesterday': not an ISO 8601 time",
    ),
    "rebuild": (["--table", "orders", "--from", "2026-11-29 10"], "--from '2026-11-29 10': not an hour"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_argument_value_exits_2_in_every_command(runner, cdk_json, command):
    args, message = BAD_ARGUMENTS[command]
    result = runner.invoke(app, [command, "--cdk-json", str(cdk_json), *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in " ".join(result.output.split())


def test_error_type_with_raw_is_a_usage_error(runner, cdk_json):
    window = ["--start", "2026-11-29T10:00Z", "--end", "2026-11-29T11:00Z"]
    result = runner.invoke(
        app, ["replay", "--cdk-json", str(cdk_json), "--table", "orders", "--from", "raw", *window, "--error-type", "x"]
    )
    assert result.exit_code == 2
    assert "error: --error-type applies only to --from errors" in result.output


# --- regions -------------------------------------------------------------------------------------------------
def test_aws_region_is_honoured_and_takes_precedence(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    assert aws.resolve_region(None, None, "eu-west-1") == "us-east-2"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert aws.resolve_region(None, None, "eu-west-1") == "us-east-2"  # as in the AWS CLI and SDKs
    monkeypatch.delenv("AWS_REGION")
    assert aws.resolve_region(None, None, "eu-west-1") == "eu-west-3"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert aws.resolve_region(None, None, "eu-west-1") == "eu-west-1"  # the configured producer region
    assert aws.resolve_region("ap-south-1", None, "eu-west-1") == "ap-south-1"


def test_backfill_reads_the_table_in_the_aws_region(runner, tmp_path, monkeypatch):
    raw = configs.variant("default")
    raw["producer"]["account"] = "123456789012"  # moto's account for the default credentials
    cdk_json = write_cdk_json(tmp_path / "cdk.json", raw)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    boto3.client("dynamodb", region_name="us-east-2").create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = runner.invoke(app, ["backfill", "--cdk-json", str(cdk_json), "--table-name", "t", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run: 0 items in t" in result.output


def test_an_unknown_region_is_refused_before_any_call(runner, tmp_path, monkeypatch):
    raw = configs.variant("default")
    raw["producer"]["account"] = "123456789012"
    cdk_json = write_cdk_json(tmp_path / "cdk.json", raw)
    calls: list[str] = []
    monkeypatch.setattr(aws, "client", lambda *a, **k: calls.append(a[1]))
    monkeypatch.setenv("AWS_REGION", "eu-centrl-1")
    result = runner.invoke(app, ["backfill", "--cdk-json", str(cdk_json), "--table-name", "t", "--dry-run"])
    assert result.exit_code == 2
    assert "error: AWS_REGION 'eu-centrl-1' is not an AWS region; did you mean eu-central-1?" in result.output
    assert calls == []


def test_clients_give_up_quickly_on_an_unreachable_endpoint():
    session = boto3.Session(region_name="eu-west-1")
    config = aws.client(session, "sts").meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 30
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    bulk = aws.client(session, "kinesis", config=aws.BULK_CONFIG).meta.config
    assert bulk.connect_timeout <= 5 and bulk.retries["total_max_attempts"] == 8


# --- the configured account ----------------------------------------------------------------------------------
def test_smoke_refuses_credentials_of_another_account(runner, tmp_path, clock):
    raw = configs.variant("default")
    cdk_json = write_cdk_json(tmp_path / "cdk.json", raw)
    cfg = from_dict(raw)
    create_bucket(cfg)
    create_table(cfg, cfg.table("orders"))
    # The consumer is right; the producer credentials are the default chain: moto's account 123456789012, where a
    # table of the same name exists and must stay untouched.
    boto3.client("dynamodb").create_table(
        TableName="ddblake-orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = runner.invoke(app, ["smoke", "--cdk-json", str(cdk_json), "--role-consumer", role_arn(CONSUMER)])
    assert result.exit_code == 3
    assert (
        f"error: the credentials (the default credentials) are account 123456789012's, not the producer account "
        f"{PRODUCER}'s: "
        f"pass --profile-producer or --role-producer with credentials for account {PRODUCER}"
    ) in " ".join(result.output.split())
    assert boto3.client("dynamodb").scan(TableName="ddblake-orders")["Items"] == []


def test_replay_and_rebuild_refuse_credentials_of_another_account(runner, cdk_json):
    window = ["--start", "2026-11-29T10:00Z", "--end", "2026-11-29T11:00Z"]
    for args in (["replay", "--table", "orders", "--from", "raw", *window], ["rebuild", "--table", "orders"]):
        result = runner.invoke(app, [*args, "--cdk-json", str(cdk_json), "--role-consumer", role_arn(PRODUCER)])
        assert result.exit_code == 3
        assert (
            f"are account {PRODUCER}'s, not the consumer account {CONSUMER}'s: pass --profile-consumer or "
            f"--role-consumer with credentials for account {CONSUMER}"
        ) in " ".join(result.output.split())


def test_backfill_refuses_credentials_of_another_account(runner, cdk_json):
    result = runner.invoke(app, ["backfill", "--cdk-json", str(cdk_json), "--table-name", "t", "--dry-run"])
    assert result.exit_code == 3
    assert f"are account 123456789012's, not the producer account {PRODUCER}'s: pass --profile or --role" in (
        " ".join(result.output.split())
    )


@pytest.mark.parametrize("command", ["preflight", "smoke", "replay"])
def test_ctrl_c_in_any_command_exits_130(runner, cdk_json, monkeypatch, command):
    def interrupted(path: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ops.cli.load_config", interrupted)
    args = {"replay": ["--table", "o", "--from", "raw", "--start", "2026-11-29", "--end", "2026-11-30"]}
    result = runner.invoke(app, [command, "--cdk-json", str(cdk_json), *args.get(command, [])])
    assert result.exit_code == 130
    assert result.output.strip() == "interrupted"
