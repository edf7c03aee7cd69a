"""The single source of every name that crosses a stage boundary, and of every per-table name.

The consumer (account B) and producer (account A) stages are deployed by different CloudFormation executions
in different accounts, so neither may reference the other's constructs. Both compute the names they share
from the configuration with these functions instead; a test checks that the names the producer uses are
exactly the ones the consumer's policies trust. The configuration checker (``shared.config``) checks every
name here against its service's limit, so a too-long name is a config error, not a failed deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import AppConfig, TableSpec

# Hive-style partition columns and the Firehose timestamp format of each: the layout Firehose writes and the
# layout Athena's partition projection reads (consumer/catalog.py) are both built from this.
DATE_PARTITIONS = (("year", "yyyy"), ("month", "MM"), ("day", "dd"), ("hour", "HH"))
_DATE_PARTS = "".join(f"{column}=!{{timestamp:{fmt}}}/" for column, fmt in DATE_PARTITIONS)
DATA, ERRORS, RAW = "data", "errors", "raw"
# The Iceberg history and state tables of the lakehouse (consumer/lakehouse/), written by its maintenance only.
LAKEHOUSE = "lakehouse"
# Items whose partition key starts with this belong to `ddb-lake smoke`; its role may touch nothing else.
SMOKE_KEY_PREFIX = "ddb-lake-smoke#"

# Service limits of the names below (IAM roles, Firehose delivery streams and Lambda functions: 64;
# S3 buckets: 63; Kinesis streams: 128; DynamoDB tables, CloudWatch alarms and dashboards, Glue tables: 255).
ROLE_NAME_LIMIT = 64
DELIVERY_STREAM_NAME_LIMIT = 64
BUCKET_NAME_LIMIT = 63
STREAM_NAME_LIMIT = 128
LONG_NAME_LIMIT = 255
# Step Functions state machines: 80; EventBridge Scheduler schedules: 64.
STATE_MACHINE_NAME_LIMIT = 80
SCHEDULE_NAME_LIMIT = 64
# SNS topics: 256.
TOPIC_NAME_LIMIT = 256


def _arn(partition: str, service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


@dataclass(frozen=True)
class LakeNames:
    """Account B's shared names: the bucket, its key, the catalog and the workgroup."""

    partition: str
    account: str
    region: str
    bucket: str
    access_log_bucket: str
    results_bucket: str
    key_alias: str
    database: str
    workgroup: str
    smoke_reader_role: str
    # Account B's own alarm topic (the lakehouse's alarms): CloudWatch alarms notify topics of their own account,
    # and the producer's topic admits only account A's alarms.
    alarm_topic: str

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def key_alias_arn(self) -> str:
        return _arn(self.partition, "kms", self.region, self.account, self.key_alias)

    @property
    def smoke_reader_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.smoke_reader_role}"

    def state_machine_arn(self, name: str) -> str:
        """A state machine of account B by name (a table's ``maintenance_state_machine``)."""
        return _arn(self.partition, "states", self.region, self.account, f"stateMachine:{name}")

    def limited(self) -> list[tuple[str, str, int]]:
        return [
            ("data-lake bucket name", self.bucket, BUCKET_NAME_LIMIT),
            ("access-log bucket name", self.access_log_bucket, BUCKET_NAME_LIMIT),
            ("Athena results bucket name", self.results_bucket, BUCKET_NAME_LIMIT),
            ("smoke-test reader role name", self.smoke_reader_role, ROLE_NAME_LIMIT),
            ("consumer alarm topic name", self.alarm_topic, TOPIC_NAME_LIMIT),
        ]


def lake(cfg: AppConfig) -> LakeNames:
    b = cfg.consumer
    # Globally unique and at most 63 characters: prefix (<=20) + account + region (<=14) + fixed parts.
    return LakeNames(
        partition=b.partition,
        account=b.account,
        region=b.region,
        bucket=f"{cfg.prefix}-datalake-{b.account}-{b.region}",
        access_log_bucket=f"{cfg.prefix}-datalake-logs-{b.account}-{b.region}",
        results_bucket=f"{cfg.prefix}-athena-{b.account}-{b.region}",
        key_alias=f"alias/{cfg.prefix}/datalake",
        database=f"{cfg.prefix.replace('-', '_')}_datalake",
        workgroup=f"{cfg.prefix}-datalake",
        smoke_reader_role=f"{cfg.prefix}-smoke-reader-{b.region}",
        alarm_topic=f"{cfg.prefix}-datalake-alarms",
    )


@dataclass(frozen=True)
class ToolingNames:
    """The tooling account's names that the other accounts trust."""

    partition: str
    account: str
    smoke_step_role: str

    @property
    def smoke_step_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.smoke_step_role}"

    def limited(self) -> list[tuple[str, str, int]]:
        return [("smoke-test step role name", self.smoke_step_role, ROLE_NAME_LIMIT)]


def tooling(cfg: AppConfig) -> ToolingNames:
    t = cfg.tooling
    # The pipeline smoke step's CodeBuild role: the only principal the smoke roles in A and B trust; a fixed
    # name, so their trust policies can name it before it exists.
    return ToolingNames(partition=t.partition, account=t.account, smoke_step_role=f"{cfg.prefix}-smoke-step-{t.region}")


@dataclass(frozen=True)
class TableNames:
    """Every name of one captured table, in both accounts."""

    key: str  # the table's name in the configuration: the unit everything else is named after
    partition: str
    producer_account: str
    producer_region: str
    table: str
    stream: str
    delivery_stream: str
    delivery_role: str
    smoke_writer_role: str
    alarm_prefix: str
    dashboard: str
    metrics_namespace: str
    glue_table: str
    lines_table: str
    history_view: str
    current_view: str
    raw_history_view: str
    raw_current_view: str
    iceberg_history_table: str
    iceberg_state_table: str
    maintenance_state_machine: str
    maintenance_schedule: str

    @property
    def table_arn(self) -> str:
        return _arn(self.partition, "dynamodb", self.producer_region, self.producer_account, f"table/{self.table}")

    @property
    def stream_arn(self) -> str:
        return _arn(self.partition, "kinesis", self.producer_region, self.producer_account, f"stream/{self.stream}")

    @property
    def delivery_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.producer_account}:role/{self.delivery_role}"

    @property
    def smoke_writer_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.producer_account}:role/{self.smoke_writer_role}"

    @property
    def token(self) -> str:
        """The table's name as an identifier of letters and digits only (statement IDs, top-level construct IDs):
        names are [a-z0-9_], so '_' -> 'X' keeps two names that differ only by '_' apart."""
        return self.key.replace("_", "X")

    def root(self, kind: str) -> str:
        """``data/<table>/``, ``errors/<table>/`` or ``raw/<table>/``: one folder per table and kind, so policies
        can scope each table's role to its own folders and each Athena table reads one folder."""
        return f"{kind}/{self.key}/"

    @property
    def roots(self) -> tuple[str, ...]:
        """Every prefix this table's Firehose writes under."""
        return tuple(self.root(kind) for kind in (DATA, ERRORS, RAW))

    @property
    def data_prefix(self) -> str:
        """Hive-style partitions (arrival time, UTC), so Athena partition projection addresses each hour."""
        return self.root(DATA) + _DATE_PARTS

    @property
    def lakehouse_root(self) -> str:
        """``lakehouse/<table>/``: the folder of both of the table's Iceberg tables."""
        return f"{LAKEHOUSE}/{self.key}/"

    @property
    def iceberg_history_prefix(self) -> str:
        return f"{self.lakehouse_root}history/"

    @property
    def iceberg_state_prefix(self) -> str:
        return f"{self.lakehouse_root}state/"

    @property
    def error_prefix(self) -> str:
        return self.root(ERRORS) + "!{firehose:error-output-type}/" + _DATE_PARTS

    @property
    def raw_prefix(self) -> str:
        return self.root(RAW) + _DATE_PARTS

    @property
    def optimize_schedule(self) -> str:
        """The daily schedule of the lakehouse's table maintenance (OPTIMIZE, VACUUM), account B."""
        return f"{self.maintenance_schedule}-optimize"

    @property
    def lakehouse_dashboard(self) -> str:
        return self.maintenance_state_machine

    @property
    def lakehouse_alarm_prefix(self) -> str:
        """Account B's lakehouse alarms of this table: ``<alarm_prefix>Lakehouse<what>``."""
        return f"{self.alarm_prefix}Lakehouse"

    @property
    def lakehouse_metrics_namespace(self) -> str:
        """The namespace the maintenance state machine publishes its per-run metrics to (account B)."""
        return f"{self.metrics_namespace}/Lakehouse"

    def limited(self) -> list[tuple[str, str, int]]:
        return [
            ("DynamoDB table name", self.table, LONG_NAME_LIMIT),
            ("Kinesis stream name", self.stream, STREAM_NAME_LIMIT),
            ("Firehose delivery stream name", self.delivery_stream, DELIVERY_STREAM_NAME_LIMIT),
            ("delivery role name", self.delivery_role, ROLE_NAME_LIMIT),
            ("smoke-test writer role name", self.smoke_writer_role, ROLE_NAME_LIMIT),
            ("dashboard name", self.dashboard, LONG_NAME_LIMIT),
            ("alarm name", self.alarm_prefix + "ReplicationThrottled", LONG_NAME_LIMIT),
            ("lakehouse state machine name", self.maintenance_state_machine, STATE_MACHINE_NAME_LIMIT),
            ("lakehouse schedule name", self.maintenance_schedule, SCHEDULE_NAME_LIMIT),
            ("lakehouse maintenance schedule name", self.optimize_schedule, SCHEDULE_NAME_LIMIT),
        ]


def table(cfg: AppConfig, spec: TableSpec) -> TableNames:
    a = cfg.producer
    base = f"{cfg.prefix}-{spec.name}"
    return TableNames(
        key=spec.name,
        partition=a.partition,
        producer_account=a.account,
        producer_region=a.region,
        table=spec.existing_table_name or base,
        stream=f"{base}-changes",
        delivery_stream=f"{base}-to-datalake",
        # IAM is global per account: table and region keep two tables or two producer regions from colliding.
        delivery_role=f"{base}-delivery-{a.region}",
        smoke_writer_role=f"{base}-smoke-{a.region}",
        alarm_prefix=f"{base}-",
        dashboard=f"{base}-datalake-delivery",
        metrics_namespace=f"DdbDataLake/{base}",
        glue_table=spec.name,
        lines_table=f"{spec.name}_lines",
        # What users query: the lakehouse's views over the Iceberg tables (consumer/lakehouse/)...
        history_view=f"{spec.name}_history",
        current_view=f"{spec.name}_current",
        # ... and the same questions answered from the raw JSON change log, up to the minute.
        raw_history_view=f"{spec.name}_raw_history",
        raw_current_view=f"{spec.name}_raw_current",
        iceberg_history_table=f"{spec.name}_iceberg_history",
        iceberg_state_table=f"{spec.name}_iceberg_state",
        # Account B (consumer) names; the state machine and its schedule run there.
        maintenance_state_machine=f"{base}-lakehouse",
        maintenance_schedule=f"{base}-lakehouse",
    )


def tables(cfg: AppConfig) -> list[tuple[TableSpec, TableNames]]:
    return [(spec, table(cfg, spec)) for spec in cfg.tables]
