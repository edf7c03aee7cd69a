"""What the smoke test covers and how long it waits: one place for the CLI, the roles in accounts A and B, and the
pipeline step, so that the three always agree (their names are in shared.naming). Standard library only."""

from __future__ import annotations

from shared import naming
from shared.config import FIREHOSE_PROCESSOR_BUFFER_SECONDS, AppConfig, TableSpec

# Kinesis read latency, the Lambda call, S3 eventual listing: what the two buffers do not account for.
SMOKE_MARGIN_SECONDS = 120
# The lakehouse's first maintenance run, which the smoke probe starts when the Iceberg tables do not exist yet (a
# first deployment checked before the first scheduled run): two CREATE TABLEs, the window, INSERT, MERGE and the lag
# statement over an almost empty lake, each an Athena query of seconds, with the state machine's retries.
LAKEHOUSE_FIRST_RUN_SECONDS = 600


def smoke_problem(cfg: AppConfig, spec: TableSpec) -> str | None:
    """Why ``ddb-lake smoke`` cannot test this table, or None when it can."""
    if spec.partition_key_type != "S":
        # The writer role is limited to partition keys starting with the smoke prefix: only a string can.
        return (
            f"partition key {spec.partition_key!r} is of type {spec.partition_key_type}, so no item can carry "
            f"the smoke key prefix {naming.SMOKE_KEY_PREFIX!r}"
        )
    if cfg.delivery_for(spec).compression == "HADOOP_SNAPPY":
        return "its objects are HADOOP_SNAPPY-compressed, which ddb-lake cannot read (GZIP or UNCOMPRESSED only)"
    return None


def smoke_tables(cfg: AppConfig) -> list[TableSpec]:
    """The tables the smoke test (and its roles) cover."""
    return [spec for spec in cfg.tables if smoke_problem(cfg, spec) is None]


def smoke_timeout_seconds(cfg: AppConfig, spec: TableSpec) -> int:
    """How long a change may take to appear in the lake: each record may wait for a full processor buffer
    and a full S3 buffer, twice (a change written just after a flush waits for the next one), plus a margin."""
    interval = cfg.delivery_for(spec).buffer_interval_seconds
    return 2 * (FIREHOSE_PROCESSOR_BUFFER_SECONDS + interval) + SMOKE_MARGIN_SECONDS


def smoke_views_seconds(cfg: AppConfig) -> int:
    """How much longer than the delivery the view check may wait: the lakehouse's first run, when it is on."""
    return LAKEHOUSE_FIRST_RUN_SECONDS if cfg.lakehouse.enabled else 0
