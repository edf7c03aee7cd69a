"""The ``ddb-lake`` console script: ``preflight``, ``smoke``, ``backfill``, ``replay`` and ``rebuild``
(docs/operations.md).

Exit codes, the same for every command: 0 success; 1 the command ran and found a problem; 2 bad arguments or
configuration (typer's own usage errors too); 3 an AWS call failed (credentials of the wrong account,
permissions, a missing resource, an unreachable endpoint); 130 interrupted (Ctrl-C). Every failure ends with one
line saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.live import Live
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
from rich.spinner import Spinner
from rich.text import Text

from ops import aws, backfill, lake, preflight, rebuild, replay, smoke
from ops.common import ExitCode, OpsError, clock, err, hard_exit, load_config, out, utc
from shared import naming
from shared.smoke_targets import smoke_tables

DISTRIBUTION = "ddb-cross-account-datalake"
app = typer.Typer(
    name="ddb-lake",
    help="Operate the DynamoDB -> data lake pipeline: preflight, smoke, backfill, replay, rebuild. "
    "Exit codes: 0 ok, 1 check failed, 2 usage or configuration error, 3 AWS error (130: Ctrl-C).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: flags shown as flags (--dry-run, not --dry-run <bool>) and option names never cut at 80
    # columns (rich's boxed panels truncated --max-records-per-second).
    rich_markup_mode=None,
)


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout without pip install -e .
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        out.print(f"ddb-lake {_version()}")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Operate the DynamoDB -> data lake pipeline."""


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
    except aws.ERRORS as error:
        err.print(f"error: {aws.describe(error)}")
        raise typer.Exit(int(ExitCode.AWS)) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    raise typer.Exit(int(code))


def _consumer_session(cfg: Any, profile: str | None, role: str | None) -> Any:
    """Account B's session, after checking the credentials belong to it."""
    credentials = aws.Credentials(profile, role)
    session = aws.session(credentials, cfg.consumer.region)
    aws.require_account(
        session, cfg.consumer.account, "consumer", credentials.describe(), "--profile-consumer or --role-consumer"
    )
    return session


# --- preflight -----------------------------------------------------------------------------------------------
@app.command("preflight", short_help="Check the accounts are ready for the first deployment.")
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
        # Each check is printed the moment it is known, a spinner says what is being checked meanwhile.
        with _live(Spinner("dots", "checking…")) as live:
            checks = preflight.run(
                cfg,
                credentials,
                roles,
                assembly if assembly.exists() else None,
                on_check=_print_check,
                on_start=lambda what: live.update(Spinner("dots", f"checking {what}…")),
            )
        failed = [c for c in checks if not c.ok]
        if failed:
            err.print(f"preflight: {len(failed)} of {len(checks)} checks failed: {', '.join(c.name for c in failed)}")
            return ExitCode.FAILED
        out.print(f"preflight: all {len(checks)} checks passed")
        return ExitCode.OK

    _run(body)


def _live(renderable: Any) -> Live:
    """A transient display on stderr. Rich routes stdout through it only if stdout is a terminal too: with
    ``> file`` the results must go to the file, not to the terminal's stderr."""
    return Live(renderable, console=err, transient=True, redirect_stdout=out.is_terminal)


def _print_check(check: preflight.Check) -> None:
    mark = Text("✓", style="green") if check.ok else Text("✗", style="bold red")
    out.print(Text.assemble(mark, f" {check.role} {check.account} · {check.name}: {check.detail}"))
    if check.fix:
        out.print(f"    fix: {check.fix}")


# --- smoke ---------------------------------------------------------------------------------------------------
@app.command("smoke", short_help="Prove a change travels from A's table to B's lake.")
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
        smoke.plan(cfg, table, clock().now())  # refuses a table it cannot test before any AWS call
        lake_names = naming.lake(cfg)
        producer_creds = aws.Credentials(profile_producer, role_producer)
        consumer_creds = aws.Credentials(profile_consumer, role_consumer)
        producer = aws.session(producer_creds, cfg.producer.region)
        consumer = aws.session(consumer_creds, cfg.consumer.region)
        if use_smoke_roles:
            consumer = aws.assume(consumer, lake_names.smoke_reader_role_arn, cfg.consumer.region)
        # The smoke item is written into whatever account the credentials reach: check both before anything.
        aws.require_account(
            consumer,
            cfg.consumer.account,
            "consumer",
            f"the smoke reader role assumed with {consumer_creds.describe()}"
            if use_smoke_roles
            else consumer_creds.describe(),
            "--profile-consumer or --role-consumer",
        )
        writers = {}
        # Only the tables the smoke test covers have a writer role (pipeline/smoke.py creates no other).
        for spec in smoke_tables(cfg):
            if table and spec.name != table:
                continue
            session = producer
            if use_smoke_roles:
                session = aws.assume(producer, naming.table(cfg, spec).smoke_writer_role_arn, cfg.producer.region)
            aws.require_account(
                session,
                cfg.producer.account,
                "producer",
                f"the smoke writer role of {spec.name} assumed with {producer_creds.describe()}"
                if use_smoke_roles
                else producer_creds.describe(),
                "--profile-producer or --role-producer",
            )
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


@app.command("backfill", short_help="Put a table's existing items on its change stream (A).")
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
    cdk_json: CdkJson = Path("cdk.json"),
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile for the producer account (default: the usual chain).")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="Role ARN in the producer account to assume with those credentials.")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else the configured producer region.",
        ),
    ] = None,
) -> None:
    """Put every item of a table on its change stream as a synthetic INSERT marked ddbLakeOrigin=backfill."""

    def body() -> ExitCode:
        if not dry_run and not stream_name:
            raise OpsError("--stream-name is required (unless --dry-run)", ExitCode.USAGE)
        token = backfill.ResumeToken.decode(resume) if resume else None
        cfg = load_config(cdk_json)
        where = aws.resolve_region(region, profile, cfg.producer.region)
        credentials = aws.Credentials(profile, role)
        session = aws.session(credentials, where)
        aws.require_account(session, cfg.producer.account, "producer", credentials.describe(), "--profile or --role")
        dynamodb = aws.client(session, "dynamodb", config=aws.BULK_CONFIG)
        kinesis = None if dry_run else aws.client(session, "kinesis", config=aws.BULK_CONFIG)
        if kinesis is not None:
            try:
                kinesis.describe_stream_summary(StreamName=stream_name)
            except aws.ERRORS as error:
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
        job.on_stopping = lambda: err.print(
            "stopping: waiting for the requests in flight, then printing the resume token (Ctrl-C again to abort "
            "without waiting)"
        )
        try:
            with Progress(*columns, console=err, get_time=clock().monotonic) as progress:
                # DynamoDB updates ItemCount about every six hours: an estimate for the ETA, not a promise.
                total = count if count and token is None else None
                task = progress.add_task(f"{'counting' if dry_run else 'backfilling'} {table_name}", total=total)
                job.on_progress = lambda n: progress.advance(task, n)
                result = job.run()
        except backfill.Aborted as aborted:
            _backfill_aborted(aborted, table_name, stream_name, segments, dry_run)
        return _backfill_report(result, table_name, stream_name, segments, dry_run, job.interrupted)

    _run(body)


def _resume_hint(table: str, stream: str | None, segments: int) -> str:
    return (
        f"resume with: ddb-lake backfill --table-name {table} --stream-name {stream} "
        f"--segments {segments} --resume <token>"
    )


def _backfill_aborted(aborted: backfill.Aborted, table: str, stream: str | None, segments: int, dry_run: bool) -> None:
    """Second Ctrl-C: leave at once, with the last recorded token (exact but for what was in flight)."""
    err.print("aborted")
    if not dry_run:
        err.print(
            f"up to {aborted.in_flight} record(s) were in flight and may have been delivered; this token sends them "
            "again (a repeated backfill INSERT of an item only adds a duplicate change of the same state); token:"
        )
        out.print(aborted.token.encode())
        err.print(_resume_hint(table, stream, segments))
    hard_exit(int(ExitCode.INTERRUPTED))
    raise typer.Exit(int(ExitCode.INTERRUPTED))  # only reached where hard_exit is replaced (tests)


def _backfill_report(
    result: backfill.Result, table: str, stream: str | None, segments: int, dry_run: bool, interrupted: bool = False
) -> ExitCode:
    if dry_run and interrupted and not result.complete:
        out.print(f"dry run interrupted: {result.items:,} items of {table} counted so far; nothing was put")
        return ExitCode.INTERRUPTED
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
        elif interrupted:
            reason = "stopped by Ctrl-C after the requests in flight"
        err.print(f"backfill incomplete: {reason}")
        done = sum(s.done for s in result.token.segments)
        err.print(f"segments finished: {done} of {segments}; resume token:")
        out.print(result.token.encode())
        err.print(_resume_hint(table, stream, segments))
        code = ExitCode.FAILED if result.undelivered or not interrupted else ExitCode.INTERRUPTED
    elif interrupted:
        err.print("interrupted, but every item had already been sent: nothing to resume")
    return code


# --- replay --------------------------------------------------------------------------------------------------
def _spec(cfg: Any, table: str) -> Any:
    try:
        return cfg.table(table)
    except KeyError as error:
        raise OpsError(str(error.args[0]), ExitCode.USAGE) from None


def _instant(option: str, text: str) -> datetime:
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise OpsError(f"{option} {text!r}: not an ISO 8601 time such as 2026-11-29T10:00Z", ExitCode.USAGE) from None


@app.command("replay", short_help="Transform kept source records into the lake again (B).")
def replay_command(
    table: Annotated[str, typer.Option("--table", help="A configured table.")],
    source: Annotated[Source, typer.Option("--from", help="raw: the raw backup; errors: the error envelopes.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601 (UTC unless an offset is given), inclusive.")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601, exclusive.")],
    error_type: Annotated[
        str | None,
        typer.Option(
            "--error-type",
            help=f"Only with --from errors: the errors/<table>/<type>/ folder (default: {replay.DEFAULT_ERROR_TYPE}).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Transform and count; write nothing.")] = False,
    cdk_json: CdkJson = Path("cdk.json"),
    profile_consumer: Annotated[str | None, _profile("consumer")] = None,
    role_consumer: Annotated[str | None, _role("consumer")] = None,
) -> None:
    """Transform kept source records again (account B) and write them under data/<table>/, idempotently."""

    def body() -> ExitCode:
        if error_type is not None and source is Source.raw:
            raise OpsError(
                "--error-type applies only to --from errors (the raw backup has no error types)", ExitCode.USAGE
            )
        folder = error_type or replay.DEFAULT_ERROR_TYPE
        cfg = load_config(cdk_json)
        spec = _spec(cfg, table)
        window = (_instant("--start", start), _instant("--end", end))
        if window[0] >= window[1]:
            raise OpsError(f"--start {start} is not before --end {end}", ExitCode.USAGE)
        names, lake_names = naming.table(cfg, spec), naming.lake(cfg)
        session = _consumer_session(cfg, profile_consumer, role_consumer)
        s3 = aws.client(session, "s3", cfg.consumer.region)
        prefix = replay.source_prefix(names, source.value, folder)
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
                error_type=folder,
                now=clock().now,
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
    if written and not dry_run:
        # Why the current hour: docs/operations.md, "Where replayed objects go".
        err.print(
            "written into the current arrival hour: the lakehouse maintenance's next scheduled run applies them to "
            "the history and state tables"
        )
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


# --- rebuild -------------------------------------------------------------------------------------------------
@app.command("rebuild", short_help="Rebuild a table's Iceberg history and state (B).")
def rebuild_command(
    table: Annotated[str, typer.Option("--table", help="A configured table.")],
    first: Annotated[
        str | None,
        typer.Option("--from", help="First arrival hour, YYYY-MM-DDTHH UTC (default: the earliest hour with data)."),
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last arrival hour, inclusive (default: the current hour).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the ranges and their inputs; start nothing.")
    ] = False,
    cdk_json: CdkJson = Path("cdk.json"),
    profile_consumer: Annotated[str | None, _profile("consumer")] = None,
    role_consumer: Annotated[str | None, _role("consumer")] = None,
) -> None:
    """Rebuild a table's Iceberg history and state from the raw log (account B); safe to re-run."""

    def body() -> ExitCode:
        cfg = load_config(cdk_json)
        spec = _spec(cfg, table)
        names, lake_names = naming.table(cfg, spec), naming.lake(cfg)
        start = rebuild.parse_hour("--from", first) if first else None
        now_hour = lake.hour_floor(clock().now())
        end = rebuild.parse_hour("--to", last) if last else now_hour
        if start is not None and start > end:
            raise OpsError(f"--from {first} is after --to {last or f'{end:%Y-%m-%dT%H}'}", ExitCode.USAGE)
        # The state machine refuses these too (validate_window); said here before any AWS call.
        if end > now_hour:
            raise OpsError(
                f"--to {last} is after the current hour ({now_hour:%Y-%m-%dT%H} UTC): a window's end becomes the "
                "state's progress, and scheduled runs would skip every hour until then",
                ExitCode.USAGE,
            )
        first_year = cfg.data_lake.first_year
        if start is not None and start.year < first_year:
            raise OpsError(
                f"--from {first} is before datalake.data_lake.first_year ({first_year}): Athena's raw tables project "
                f"no earlier hour; use --from {first_year}-01-01T00 or lower data_lake.first_year and deploy",
                ExitCode.USAGE,
            )
        session = _consumer_session(cfg, profile_consumer, role_consumer)
        s3 = aws.client(session, "s3", cfg.consumer.region)
        root = names.root(naming.DATA)
        if start is None:
            start = rebuild.earliest_hour(s3, lake_names.bucket, root)
            if start is None:
                err.print(f"nothing to rebuild: no objects under s3://{lake_names.bucket}/{root}")
                return ExitCode.FAILED
            if start > end:
                err.print(f"nothing to rebuild: the earliest data ({start:%Y-%m-%dT%H}) is after --to {last}")
                return ExitCode.FAILED
            if start.year < first_year:
                # Objects Athena cannot see: rebuilding from first_year would silently leave them out.
                err.print(
                    f"the earliest data ({start:%Y-%m-%dT%H}) is before datalake.data_lake.first_year ({first_year}), "
                    "so Athena cannot read it: lower data_lake.first_year and deploy, or pass "
                    f"--from {first_year}-01-01T00 to leave it out"
                )
                return ExitCode.FAILED
        size = rebuild.max_hours_per_run(cfg)
        parts = rebuild.ranges(start, end, size)
        arn = rebuild.state_machine_arn(cfg, names)
        total = rebuild.hours_in(start, end)
        span = f"{start:%Y-%m-%dT%H}..{end:%Y-%m-%dT%H}"
        err.print(
            f"{names.key}: {total} arrival hour(s) {span} in {len(parts)} run(s) of at most {size} hours of {arn}"
        )
        if dry_run:
            for a, b in parts:
                out.print(f"would start {json.dumps(rebuild.window(a, b))}")
            return ExitCode.OK
        sfn = aws.client(session, "stepfunctions", cfg.consumer.region)
        return _rebuild_ranges(sfn, arn, names.key, parts, total, end)

    _run(body)


def _rebuild_ranges(
    sfn: Any, arn: str, table: str, parts: list[tuple[datetime, datetime]], total: int, end: datetime
) -> ExitCode:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    ticks = clock()
    current: tuple[datetime, datetime] | None = None
    execution = ""
    try:
        # Results go to stdout while the bar runs: through the display only if stdout is the terminal (see _live).
        with Progress(*columns, console=err, get_time=ticks.monotonic, redirect_stdout=out.is_terminal) as progress:
            task = progress.add_task(f"{table}: hours rebuilt", total=total)
            for a, b in parts:
                current, execution = (a, b), ""
                label = f"{a:%Y-%m-%dT%H}..{b:%Y-%m-%dT%H}"
                rebuild.wait_idle(
                    sfn,
                    arn,
                    ticks,
                    lambda name, label=label: progress.update(
                        task, description=f"{table} {label}: waiting for the running execution {name}"
                    ),
                )
                execution = rebuild.start(sfn, arn, a, b)
                progress.update(task, description=f"{table} {label}: running")
                outcome = rebuild.wait(sfn, execution, a, b, ticks)
                name = execution.rsplit(":", 1)[-1]
                if outcome.status != "SUCCEEDED":
                    progress.stop()
                    return _rebuild_failed(outcome, table, end)
                progress.advance(task, rebuild.hours_in(a, b))
                out.print(f"✓ {label} ({rebuild.hours_in(a, b)} hours): execution {name} SUCCEEDED")
    except ClientError as error:
        if aws.error_code(error) == "StateMachineDoesNotExist":
            raise OpsError(
                f"{aws.describe(error)}: deploy the consumer stage with the lakehouse first (its maintenance state "
                "machine is what rebuild runs)",
                ExitCode.AWS,
            ) from None
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        if current is not None:
            if execution:
                err.print(
                    f"execution {execution} keeps running in AWS and finishes by itself "
                    f"(stop it with: aws stepfunctions stop-execution --execution-arn {execution})"
                )
            err.print(f"resume with: {_rebuild_command(table, current[0], end)}")
        return ExitCode.INTERRUPTED
    out.print(f"rebuilt {table}: {total} arrival hour(s) in {len(parts)} run(s)")
    return ExitCode.OK


def _rebuild_command(table: str, start: datetime, end: datetime) -> str:
    return f"ddb-lake rebuild --table {table} --from {start:%Y-%m-%dT%H} --to {end:%Y-%m-%dT%H}"


def _rebuild_failed(outcome: rebuild.Outcome, table: str, end: datetime) -> ExitCode:
    label = f"{outcome.start:%Y-%m-%dT%H}..{outcome.end:%Y-%m-%dT%H}"
    resume = f"re-run (safe: the ranges already applied change nothing): {_rebuild_command(table, outcome.start, end)}"
    if outcome.status == "FAILED":
        cause = " ".join(outcome.cause.split())
        err.print(f"error: {label}: execution {outcome.execution_arn} FAILED: {outcome.error or 'no error'}: {cause}")
        err.print(resume)
        return ExitCode.AWS
    # ABORTED (someone stopped it) or TIMED_OUT: no error of its own; the range was not (or not wholly) applied.
    err.print(f"{label}: execution {outcome.execution_arn} ended {outcome.status}; the rebuild is incomplete")
    err.print(resume)
    return ExitCode.FAILED


def main() -> None:
    app(prog_name="ddb-lake")


if __name__ == "__main__":
    main()
