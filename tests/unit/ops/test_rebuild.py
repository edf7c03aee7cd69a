"""ddb-lake rebuild in account B (moto Step Functions and S3): the table's maintenance state machine is started
once per range of at most max_hours_per_run arrival hours, one execution at a time (after any scheduled run in
progress), with the window contract as input; the default range runs from the earliest hour with data to the
current hour; a failed execution stops the rebuild with its error and cause; the exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.stepfunctions.models import stepfunctions_backends

from ops import rebuild
from ops.cli import app
from shared import naming
from shared.config import from_dict
from tests import configs

from .conftest import CONSUMER, REGION, account_session, role_arn, write_cdk_json
from .lake_fakes import create_bucket

NOW = datetime(2026, 12, 3, 9, 41, 7, tzinfo=UTC)  # the current hour is 2026-12-03T09


class Maintenance:
    """The state machine in B, played by moto; on every clock sleep, the running executions finish with the
    outcome ``finish(execution)`` picks. Records the most executions ever running at once."""

    def __init__(self, cfg: Any) -> None:
        names = naming.table(cfg, cfg.table("orders"))
        sfn = account_session(CONSUMER).client("stepfunctions")
        self.arn = sfn.create_state_machine(
            name=names.maintenance_state_machine,
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=role_arn(CONSUMER, "maintenance"),
        )["stateMachineArn"]
        self.sfn = sfn
        self.finish: Any = lambda execution: ("SUCCEEDED", None, None)
        self.most_running = 0

    @property
    def executions(self) -> list[Any]:
        backend = stepfunctions_backends[CONSUMER][REGION]
        (machine,) = [m for m in backend.state_machines if m.arn == self.arn]
        return machine.executions

    def inputs(self) -> list[dict[str, str]]:
        return [json.loads(e.execution_input) for e in self.executions if e.name.startswith("rebuild-")]

    def __call__(self, clock: Any) -> None:
        running = [e for e in self.executions if e.status == "RUNNING"]
        self.most_running = max(self.most_running, len(running))
        for execution in running:
            execution.status, execution.error, execution.cause = self.finish(execution)
            execution.stop_date = clock.now()


def _setup(tmp_path: Any, clock: Any, raw: dict[str, Any]) -> tuple[Any, Any, Any, Maintenance]:
    """cdk.json of ``raw``, the lake bucket and the state machine in B, at NOW."""
    clock._now = NOW
    cfg = from_dict(raw)
    s3 = create_bucket(cfg)
    maintenance = Maintenance(cfg)
    clock.on_sleep = maintenance
    return write_cdk_json(tmp_path / "cdk.json", raw), cfg, s3, maintenance


@pytest.fixture
def setup(tmp_path, clock) -> tuple[Any, Any, Any, Maintenance]:
    return _setup(tmp_path, clock, configs.variant("default"))


def put_data(s3: Any, cfg: Any, *hours: str) -> None:
    bucket = naming.lake(cfg).bucket
    for hour in hours:
        y, m, d, h = hour[:4], hour[5:7], hour[8:10], hour[11:13]
        s3.put_object(Bucket=bucket, Key=f"data/orders/year={y}/month={m}/day={d}/hour={h}/x.gz", Body=b"x")


def invoke(runner, cdk_json, *args: str) -> Any:
    return runner.invoke(
        app, ["rebuild", "--cdk-json", str(cdk_json), "--table", "orders", "--role-consumer", role_arn(CONSUMER), *args]
    )


def test_ranges_cover_every_hour_once_within_the_limit():
    first, last = datetime(2026, 11, 29, 10, tzinfo=UTC), datetime(2026, 12, 3, 9, tzinfo=UTC)
    parts = rebuild.ranges(first, last, 72)
    assert [(f"{a:%d %H}", f"{b:%d %H}") for a, b in parts] == [("29 10", "02 09"), ("02 10", "03 09")]
    assert sum(rebuild.hours_in(a, b) for a, b in parts) == 96
    assert rebuild.ranges(first, first, 72) == [(first, first)]
    assert rebuild.window(first, last) == {"window_start": "2026-11-29-10", "window_end": "2026-12-03-09"}


def test_default_range_from_the_earliest_data_to_now_in_runs_one_at_a_time(runner, setup):
    cdk_json, cfg, s3, maintenance = setup
    put_data(s3, cfg, "2026-12-01T00", "2026-11-29T10", "2026-11-30T23")
    # Not partitions: must not be taken for the earliest data.
    s3.put_object(Bucket=naming.lake(cfg).bucket, Key="data/orders/year=2025/notes.txt", Body=b"")
    s3.put_object(Bucket=naming.lake(cfg).bucket, Key="data/orders/year=2024/month=01/x", Body=b"")
    # A scheduled run is in progress: the rebuild waits for it before starting its own.
    maintenance.sfn.start_execution(stateMachineArn=maintenance.arn, name="scheduled", input="{}")
    result = invoke(runner, cdk_json)
    assert result.exit_code == 0, result.output
    assert maintenance.inputs() == [
        {"window_start": "2026-11-29-10", "window_end": "2026-12-02-09"},
        {"window_start": "2026-12-02-10", "window_end": "2026-12-03-09"},
    ]
    assert maintenance.most_running == 1
    assert next(e.name for e in maintenance.executions) == "scheduled"
    text = " ".join(result.output.split())
    assert "orders: 96 arrival hour(s) 2026-11-29T10..2026-12-03T09 in 2 run(s) of at most 72 hours" in text
    assert "✓ 2026-11-29T10..2026-12-02T09 (72 hours): execution rebuild-2026112910-2026120209-" in text
    assert "rebuilt orders: 96 arrival hour(s) in 2 run(s)" in text


def test_a_failed_execution_stops_with_its_error_and_cause_exit_3(runner, setup):
    cdk_json, _cfg, _s3, maintenance = setup

    def finish(execution: Any) -> tuple[str, str | None, str | None]:
        if "2026120210" in execution.name:
            return "FAILED", "Athena.IcebergCommitError", "ICEBERG_COMMIT_ERROR: conflict\n retried 3 times"
        return "SUCCEEDED", None, None

    maintenance.finish = finish
    result = invoke(runner, cdk_json, "--from", "2026-11-29T10", "--to", "2026-12-03T09")
    assert result.exit_code == 3
    text = " ".join(result.output.split())
    assert (
        "error: 2026-12-02T10..2026-12-03T09: execution arn:aws:states:eu-west-1:222222222222:execution:"
        "ddblake-orders-lakehouse:rebuild-2026120210-2026120309-"
    ) in text
    assert "FAILED: Athena.IcebergCommitError: ICEBERG_COMMIT_ERROR: conflict retried 3 times" in text
    assert "ddb-lake rebuild --table orders --from 2026-12-02T10 --to 2026-12-03T09" in text


def test_an_aborted_execution_leaves_the_rebuild_incomplete_exit_1(runner, setup):
    cdk_json, _cfg, _s3, maintenance = setup
    maintenance.finish = lambda execution: ("ABORTED", None, None)
    result = invoke(runner, cdk_json, "--from", "2026-12-03T00")
    assert result.exit_code == 1
    assert "ended ABORTED; the rebuild is incomplete" in result.output
    assert maintenance.inputs() == [{"window_start": "2026-12-03-00", "window_end": "2026-12-03-09"}]


def test_nothing_to_rebuild_exit_1_and_dry_run(runner, setup):
    cdk_json, cfg, s3, maintenance = setup
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    assert "nothing to rebuild: no objects under s3://ddblake-datalake-222222222222-eu-west-1/data/orders/" in (
        result.output
    )
    put_data(s3, cfg, "2026-12-03T08")
    result = invoke(runner, cdk_json, "--dry-run")
    assert result.exit_code == 0, result.output
    assert 'would start {"window_start": "2026-12-03-08", "window_end": "2026-12-03-09"}' in result.output
    assert maintenance.inputs() == []


def test_bad_range_exit_2_and_missing_state_machine_exit_3(runner, setup, tmp_path):
    cdk_json, *_ = setup
    result = invoke(runner, cdk_json, "--from", "2026-12-03T09", "--to", "2026-12-03T08")
    assert result.exit_code == 2
    assert "error: --from 2026-12-03T09 is after --to 2026-12-03T08" in result.output
    raw = configs.variant("two-tables")
    other = write_cdk_json(tmp_path / "other.json", raw)
    result = runner.invoke(
        app,
        [
            "rebuild",
            "--cdk-json",
            str(other),
            "--table",
            "customers",
            "--from",
            "2026-12-03T09",
            "--role-consumer",
            role_arn(CONSUMER),
        ],
    )
    assert result.exit_code == 3
    assert "ListExecutions: StateMachineDoesNotExist" in result.output
    assert "deploy the consumer stage with the lakehouse first" in " ".join(result.output.split())


def test_ctrl_c_says_the_execution_keeps_running_and_how_to_resume(runner, setup, clock):
    cdk_json, *_ = setup

    def interrupt(clock: Any) -> None:  # Ctrl-C during the first wait for the execution
        raise KeyboardInterrupt

    clock.on_sleep = interrupt
    result = invoke(runner, cdk_json, "--from", "2026-12-03T00")
    assert result.exit_code == 130
    text = " ".join(result.output.split())
    assert "interrupted" in text
    assert "keeps running in AWS and finishes by itself (stop it with: aws stepfunctions stop-execution" in text
    assert "resume with: ddb-lake rebuild --table orders --from 2026-12-03T00 --to 2026-12-03T09" in text


def test_a_window_after_the_current_hour_or_before_first_year_is_refused_exit_2(runner, setup):
    """The state machine's validate_window refuses both too; the CLI says why before any AWS call."""
    cdk_json, cfg, _s3, maintenance = setup
    result = invoke(runner, cdk_json, "--from", "2026-12-03T00", "--to", "2026-12-03T10")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "error: --to 2026-12-03T10 is after the current hour (2026-12-03T09 UTC)" in text
    first = cfg.data_lake.first_year
    result = invoke(runner, cdk_json, "--from", f"{first - 1}-12-31T23", "--to", f"{first}-01-01T00")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"error: --from {first - 1}-12-31T23 is before datalake.data_lake.first_year ({first})" in text
    assert maintenance.inputs() == []


def test_data_before_first_year_is_not_left_out_silently_exit_1(runner, tmp_path, clock):
    raw = configs.variant("default")
    raw["data_lake"] = {"first_year": NOW.year}
    cdk_json, cfg, s3, maintenance = _setup(tmp_path, clock, raw)
    put_data(s3, cfg, f"{NOW.year - 1}-12-31T23", "2026-12-03T08")
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert (
        f"the earliest data ({NOW.year - 1}-12-31T23) is before datalake.data_lake.first_year ({NOW.year}), so Athena "
        "cannot read it"
    ) in text
    assert maintenance.inputs() == []
    result = invoke(runner, cdk_json, "--from", f"{NOW.year}-12-03T08")
    assert result.exit_code == 0, result.output
    assert maintenance.inputs() == [{"window_start": "2026-12-03-08", "window_end": "2026-12-03-09"}]
