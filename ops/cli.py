"""The ``ddb-lake`` console script: ``preflight``, ``smoke``, ``backfill`` and ``replay`` (docs/operations.md).

Exit codes: 0 success; 1 the command ran and found a problem; 2 bad arguments or configuration; 3 an AWS call
failed (credentials, permissions, a missing resource). Every failure ends with one line saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ops import aws, backfill, preflight, replay, smoke
from ops.common import ExitCode, OpsError, clock, err, load_config, out, utc
from shared import naming
from shared.smoke_targets import smoke_tables

app = typer.Typer(
    name="ddb-lake",
    help="Operate the DynamoDB -> data lake pipeline: preflight, smoke, backfill, replay. "
    "Exit codes: 0 ok, 1 check failed, 2 usage or configuration error, 3 AWS error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class AccountRole(StrEnum):
    tooling = "tooling"
    consumer = "consumer"
    producer = "producer"


class Source(StrEnum):
    raw = "raw"
    errors = "errors"


CdkJson = Annotated[
    Path, typer.Option("--cdk-json", help="The project's cdk.json; its context.datalake is the configuration.")
]


def _profile(role: str) -> object:
    return typer.Option(f"--profile-{role}", help=f"AWS profile for the {role} account (default: the usual chain).")


def _role(role: str) -> object:
    return typer.Option(f"--role-{role}", help=f"Role ARN in the {role} account to assume with those credentials.")


def _run(action: Callable[[], ExitCode]) -> None:
    """Run a command body; any failure becomes one line on stderr and its exit code."""
    try:
        code = action()
    except OpsError as error:
        err.print(f"error: {error}")
        raise typer.Exit(int(error.code)) from None
    except (ClientError, BotoCoreError) as error:
        err.print(f"error: {aws.describe(error)}")
        raise typer.Exit(int(ExitCode.AWS)) from None
    raise typer.Exit(int(code))


# --- preflight -----------------------------------------------------------------------------------------------
@app.command("preflight")
def preflight_command(
    cdk_json: CdkJson = Path("cdk.json"),
    profile_tooling: Annotated[str | None, _profile("tooling")] = None,
    profile_consumer: Annotated[str | None, _profile("consumer")] = None,
    profile_producer: Annotated[str | None, _profile("producer")] = None,
    role_tooling: Annotated[str | None, _role("tooling")] = None,
    role_consumer: Annotated[str | None, _role("consumer")] = None,
    role_producer: Annotated[str | None, _role("producer")] = None,
    only: Annotated[
        list[AccountRole] | None, typer.Option("--only", help="Check only these accounts (repeatable).")
    ] = None,
    assembly: Annotated[
        Path, typer.Option("--assembly", help="Cloud assembly whose templates give the bootstrap version needed.")
    ] = Path("cdk.out"),
) -> None:
    """Check the accounts are ready: CDK bootstrap and trust, connection, Lambda concurrency, Lake Formation."""

    def body() -> ExitCode:
        cfg = load_config(cdk_json)
        credentials = {
            "tooling": aws.Credentials(profile_tooling, role_tooling),
            "consumer": aws.Credentials(profile_consumer, role_consumer),
            "producer": aws.Credentials(profile_producer, role_producer),
        }
        roles = [r.value for r in only or []]
        checks = preflight.run(cfg, credentials, roles, assembly if assembly.exists() else None)
        table = Table(title="ddb-lake preflight", show_lines=False)
        # Fold rather than truncate: a fix cut off with "…" is no fix.
        for column in ("account", "check", "", "details / fix"):
            table.add_column(column, overflow="fold")
        for check in checks:
            mark = Text("✓", style="green") if check.ok else Text("✗", style="bold red")
            detail = check.detail + (f"\nfix: {check.fix}" if check.fix else "")
            table.add_row(f"{check.role} {check.account}", check.name, mark, detail)
        out.print(table)
        failed = [c for c in checks if not c.ok]
        if failed:
            err.print(f"preflight: {len(failed)} of {len(checks)} checks failed: {', '.join(c.name for c in failed)}")
            return ExitCode.FAILED
        out.print(f"preflight: all {len(checks)} checks passed")
        return ExitCode.OK

    _run(body)


# --- smoke ---------------------------------------------------------------------------------------------------
@app.command("smoke")
def smoke_command(
    table: Annotated[str | None, typer.Option("--table", help="One configured table (default: every one).")] = None,
    cdk_json: CdkJson = Path("cdk.json"),
    profile_producer: Annotated[str | None, _profile("producer")] = None,
    profile_consumer: Annotated[str | None, _profile("consumer")] = None,
    role_producer: Annotated[str | None, _role("producer")] = None,
    role_consumer: Annotated[str | None, _role("consumer")] = None,
    use_smoke_roles: Annotated[
        bool,
        typer.Option(
            "--use-smoke-roles",
            help="Assume the deployed smoke roles (each table's writer in A, the reader in B), as the pipeline does.",
        ),
    ] = False,
) -> None:
    """Write, update and delete one test item per table in A; wait for the three changes in B's lake."""

    def body() -> ExitCode:
        cfg = load_config(cdk_json)
        lake_names = naming.lake(cfg)
        producer = aws.session(aws.Credentials(profile_producer, role_producer), cfg.producer.region)
        consumer = aws.session(aws.Credentials(profile_consumer, role_consumer), cfg.consumer.region)
        if use_smoke_roles:
            consumer = aws.assume(consumer, lake_names.smoke_reader_role_arn, cfg.consumer.region)
        writers = {}
        # Only the tables the smoke test covers have a writer role (pipeline/smoke.py creates no other).
        for spec in smoke_tables(cfg):
            if table and spec.name != table:
                continue
            session = producer
            if use_smoke_roles:
                session = aws.assume(producer, naming.table(cfg, spec).smoke_writer_role_arn, cfg.producer.region)
            writers[spec.name] = aws.client(session, "dynamodb", cfg.producer.region)
        # The pipeline's reader role may only invoke B's smoke probe (consumer/smoke.py), which reads the lake.
        reader = aws.client(consumer, "lambda" if use_smoke_roles else "s3", cfg.consumer.region)
        runs = smoke.run_smoke(cfg, writers, reader, clock(), table)
        for run in runs:
            if run.result == "":
                objects = ", ".join(sorted(run.objects))
                out.print(f"{run.label}: ✓ INSERT, MODIFY, REMOVE delivered and correct ({objects})")
            else:
                err.print(f"{run.label}: ✗ {run.result}")
        failed = [run for run in runs if run.result]
        if failed:
            return ExitCode.FAILED
        out.print(f"smoke: {len(runs)} table(s) passed")
        return ExitCode.OK

    _run(body)


# --- backfill ------------------------------------------------------------------------------------------------
class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} items/s" if speed else "- items/s")


@app.command("backfill")
def backfill_command(
    table_name: Annotated[str, typer.Option("--table-name", help="The DynamoDB table to read.")],
    stream_name: Annotated[
        str | None, typer.Option("--stream-name", help="The table's Kinesis change stream (not with --dry-run).")
    ] = None,
    segments: Annotated[int, typer.Option("--segments", min=1, max=1_000_000, help="Parallel scan segments.")] = 4,
    max_records_per_second: Annotated[
        int,
        typer.Option("--max-records-per-second", min=1, help="Put at most this many records per second in total."),
    ] = 500,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, help="Attempts per record before the run stops.")
    ] = 8,
    resume: Annotated[str | None, typer.Option("--resume", help="Token printed by an earlier, stopped run.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Scan and count only; put nothing.")] = False,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile (default: the usual chain).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Default: AWS_REGION or the profile's.")] = None,
) -> None:
    """Put every item of a table on its change stream as a synthetic INSERT marked ddbLakeOrigin=backfill."""

    def body() -> ExitCode:
        if not dry_run and not stream_name:
            raise OpsError("--stream-name is required (unless --dry-run)", ExitCode.USAGE)
        token = backfill.ResumeToken.decode(resume) if resume else None
        session = aws.session(aws.Credentials(profile), region)
        dynamodb = aws.client(session, "dynamodb")
        kinesis = None if dry_run else aws.client(session, "kinesis")
        if kinesis is not None:
            try:
                kinesis.describe_stream_summary(StreamName=stream_name)
            except (ClientError, BotoCoreError) as error:
                raise OpsError(f"cannot use stream {stream_name}: {aws.describe(error)}", ExitCode.AWS) from None
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        job = backfill.Backfill(
            dynamodb,
            kinesis,
            table_name,
            stream_name,
            segments=segments,
            rate=max_records_per_second,
            clock=clock(),
            resume=token,
            max_attempts=max_attempts,
            dry_run=dry_run,
        )
        count = job.describe()
        with Progress(*columns, console=err, get_time=clock().monotonic) as progress:
            # DynamoDB updates ItemCount about every six hours: an estimate for the ETA, not a promise.
            total = count if count and token is None else None
            task = progress.add_task(f"{'counting' if dry_run else 'backfilling'} {table_name}", total=total)
            job.on_progress = lambda n: progress.advance(task, n)
            result = job.run()
        return _backfill_report(result, table_name, stream_name, segments, dry_run)

    _run(body)


def _backfill_report(result: backfill.Result, table: str, stream: str | None, segments: int, dry_run: bool) -> ExitCode:
    if dry_run:
        out.print(
            f"dry run: {result.items:,} items in {table} ({result.record_bytes / 2**20:,.1f} MiB of change "
            f"records, {segments} segment(s)); nothing was put"
        )
    else:
        skipped = f", {result.skipped:,} already sent before" if result.skipped else ""
        out.print(f"sent {result.items:,} items of {table} to {stream} in {segments} segment(s){skipped}")
    code = ExitCode.OK
    if result.too_large:
        shown = ", ".join(backfill.canonical(k) for k in result.too_large[:10])
        err.print(
            f"{len(result.too_large)} item(s) exceed Kinesis's 1 MiB record limit as change records and were not "
            f"sent: {shown}"
        )
        code = ExitCode.FAILED
    if not dry_run and not result.complete:
        assert result.token is not None
        reason = result.error or "stopped"
        if result.undelivered:
            reason = f"{result.undelivered} record(s) still failing after the last attempt ({result.error})"
        err.print(f"backfill incomplete: {reason}")
        done = sum(s.done for s in result.token.segments)
        err.print(f"segments finished: {done} of {segments}; resume token:")
        out.print(result.token.encode())
        err.print(
            f"resume with: ddb-lake backfill --table-name {table} --stream-name {stream} "
            f"--segments {segments} --resume <token>"
        )
        code = ExitCode.FAILED
    return code


# --- replay --------------------------------------------------------------------------------------------------
def _instant(option: str, text: str) -> datetime:
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise OpsError(f"{option} {text!r}: not an ISO 8601 time such as 2026-11-29T10:00Z", ExitCode.USAGE) from None


@app.command("replay")
def replay_command(
    table: Annotated[str, typer.Option("--table", help="A configured table.")],
    source: Annotated[Source, typer.Option("--from", help="raw: the raw backup; errors: the error envelopes.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601 (UTC unless an offset is given), inclusive.")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601, exclusive.")],
    error_type: Annotated[
        str, typer.Option("--error-type", help="With --from errors: the errors/<table>/<type>/ folder.")
    ] = replay.DEFAULT_ERROR_TYPE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Transform and count; write nothing.")] = False,
    cdk_json: CdkJson = Path("cdk.json"),
    profile_consumer: Annotated[str | None, _profile("consumer")] = None,
    role_consumer: Annotated[str | None, _role("consumer")] = None,
) -> None:
    """Transform kept source records again (account B) and write them under data/<table>/, idempotently."""

    def body() -> ExitCode:
        cfg = load_config(cdk_json)
        try:
            spec = cfg.table(table)
        except KeyError as error:
            raise OpsError(str(error.args[0]), ExitCode.USAGE) from None
        window = (_instant("--start", start), _instant("--end", end))
        if window[0] >= window[1]:
            raise OpsError(f"--start {start} is not before --end {end}", ExitCode.USAGE)
        names, lake_names = naming.table(cfg, spec), naming.lake(cfg)
        session = aws.session(aws.Credentials(profile_consumer, role_consumer), cfg.consumer.region)
        s3 = aws.client(session, "s3", cfg.consumer.region)
        prefix = replay.source_prefix(names, source.value, error_type)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
        ) as progress:
            task = progress.add_task(f"replaying s3://{lake_names.bucket}/{prefix}", total=None)

            def on_object(total: int | None) -> None:
                if total is None:
                    progress.advance(task)
                else:
                    progress.update(task, total=total)

            summary = replay.replay(
                s3,
                lake_names,
                names,
                source.value,
                *window,
                error_type=error_type,
                dry_run=dry_run,
                on_object=on_object,
            )
        return _replay_report(summary, lake_names.bucket, prefix, window, dry_run)

    _run(body)


def _replay_report(
    summary: replay.Summary, bucket: str, prefix: str, window: tuple[datetime, datetime], dry_run: bool
) -> ExitCode:
    span = f"{window[0]:%Y-%m-%dT%H:%MZ}..{window[1]:%Y-%m-%dT%H:%MZ}"
    if not summary.objects:
        err.print(f"nothing to replay: no objects under s3://{bucket}/{prefix} in the partitions of {span}")
        return ExitCode.FAILED
    written = [o for o in summary.objects if o.target_key]
    verb = "would write" if dry_run else "wrote"
    out.print(
        f"replayed {len(summary.objects)} object(s) of s3://{bucket}/{prefix} ({span}): {summary.ok:,} records "
        f"transformed, {summary.failed:,} failed; {verb} {len(written)} object(s)"
    )
    for item in written:
        out.print(f"  {item.source_key} -> {item.target_key} ({item.ok} lines)")
    for reason, count in summary.reasons.most_common(10):
        err.print(f"  {count} x {reason}")
    for problem in summary.unreadable:
        err.print(f"  unreadable: {problem}")
    if summary.failed or summary.unreadable:
        err.print(
            f"replay incomplete: {summary.failed} record(s) failed the transform and "
            f"{len(summary.unreadable)} object(s) could not be read to the end"
        )
        return ExitCode.FAILED
    return ExitCode.OK


def main() -> None:
    app(prog_name="ddb-lake")


if __name__ == "__main__":
    main()
