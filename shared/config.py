"""The configuration: one declared model for the ``datalake`` object of the CDK context.

Each key is declared once below (type, range, default, and the ``allowed`` text that error messages and the
README's configuration table show). Validation collects every problem and raises one :class:`ConfigError` with
one line per bad key (``datalake.tables[0].stream.shard_count = 0: must be ...``), so a mistake never surfaces as
a traceback from deep inside CDK. Checks that need several keys (name lengths, regions, the connection's
account, concurrency) run after the per-key checks and name every key involved.

Overrides: the whole object lives under ``context.datalake`` in ``cdk.json``; any leaf can be overridden on the
command line with a dotted key, e.g. ``-c datalake.tables.0.stream.shard_count=4`` or
``-c datalake.notifications.alarm_emails='["oncall@example.com"]'`` (values are parsed as JSON when they parse,
else taken as strings). A problem caused by an override says so.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator
from pydantic.fields import FieldInfo

from shared import naming

CONTEXT_KEY = "datalake"
SANDBOX_ACCOUNT_KEY = "sandbox_account"
SANDBOX_REGION_KEY = "sandbox_region"
SANDBOX_PREFIX_KEY = "sandbox_prefix"
OUR_CONTEXT_KEYS = (CONTEXT_KEY, SANDBOX_ACCOUNT_KEY, SANDBOX_REGION_KEY, SANDBOX_PREFIX_KEY)

# Lambda refuses a reservation that leaves less than this unreserved in the account
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
MIN_UNRESERVED_CONCURRENCY = 100
FIREHOSE_INVOCATIONS_PER_SHARD = 5
# How long the transform's Firehose processor buffers records (60 s: Firehose's default) before calling it. The
# delivery stream, the smoke test's timeout and the change-time queries' partition margins all rest on it.
FIREHOSE_PROCESSOR_BUFFER_SECONDS = 60
NAG_PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321", "Serverless")

_ATHENA_TYPE = re.compile(
    r"^(string|boolean|tinyint|smallint|int|integer|bigint|double|float|date|timestamp"
    r"|decimal\(([1-9]|[12]\d|3[0-8]),\s*([0-9]|[12]\d|3[0-8])\)|varchar\(\d{1,5}\)|(array|map|struct)<.+>)$"
)


class ConfigError(ValueError):
    """One or more configuration values are invalid; ``problems`` holds one line per bad key."""

    def __init__(self, problems: list[str], origin: str = "cdk.json context") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {origin} '{CONTEXT_KEY}' ({len(problems)}):\n{lines}")


def _key(allowed: str, **kwargs: Any) -> Any:
    """A declared key: ``allowed`` is the one text users see, in errors and in the README table."""
    return Field(json_schema_extra={"allowed": allowed}, **kwargs)


def _int(low: int, high: int, default: int | None, why: str = "") -> Any:
    allowed = f"a whole number from {low} to {high}" + (f" ({why})" if why else "")
    return _key(allowed, default=default, ge=low, le=high)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")


# --- leaf types ------------------------------------------------------------------------------------------
Account = Annotated[StrictStr, Field(pattern=r"^\d{12}$")]
Region = Annotated[StrictStr, Field(pattern=r"^[a-z]{2,4}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
Email = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")]
Attribute = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]{1,255}$")]
KeyType = Literal["S", "N", "B"]
_ATTRIBUTE_TEXT = "an attribute name of 1-255 characters [A-Za-z0-9_.-]"
_KEY_TYPE_TEXT = "one of ['S', 'N', 'B']"


class Environment(_Model):
    # As a JSON number an account ID would lose its leading zeros, so only strings are accepted.
    account: Account = _key("a 12-digit AWS account ID, as a string")
    region: Region = _key("an AWS region name such as 'eu-west-1'")

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


class SourceConfig(_Model):
    repository: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")] = _key("'owner/name'")
    branch: Annotated[
        StrictStr, Field(pattern=r"^(?!refs/)(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![/.])$")
    ] = _key("a git branch name such as 'main' (without 'refs/heads/')", default="main")
    connection_arn: Annotated[
        StrictStr,
        Field(
            pattern=r"^arn:aws(-cn|-us-gov)?:(codestar-connections|codeconnections):[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:"
            r"connection/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"
        ),
    ] = _key(
        "a CodeConnections ARN 'arn:aws:codeconnections:<region>:<account>:connection/<uuid>' (or codestar-connections)"
    )

    @property
    def connection_service(self) -> str:
        return self.connection_arn.split(":")[2]

    @property
    def connection_region(self) -> str:
        return self.connection_arn.split(":")[3]

    @property
    def connection_account(self) -> str:
        return self.connection_arn.split(":")[4]


class StreamSettings(_Model):
    mode: Literal["PROVISIONED", "ON_DEMAND"] = _key("one of ['PROVISIONED', 'ON_DEMAND']", default="PROVISIONED")
    shard_count: StrictInt = _int(1, 500, 10, "provisioned mode")
    retention_hours: StrictInt = _int(24, 8760, 24, "how long a broken delivery may last before changes are lost")


Compression = Literal["GZIP", "HADOOP_SNAPPY", "UNCOMPRESSED"]
_COMPRESSION_TEXT = "one of ['GZIP', 'HADOOP_SNAPPY', 'UNCOMPRESSED']"


class DeliverySettings(_Model):
    buffer_interval_seconds: StrictInt = _int(0, 900, 120)
    buffer_size_mib: StrictInt = _int(1, 128, 1)
    compression: Compression = _key(_COMPRESSION_TEXT, default="GZIP")


class DeliveryOverrides(_Model):
    """Per-table overrides of the app-level ``delivery`` defaults; null falls back."""

    buffer_interval_seconds: StrictInt | None = _key("null or a whole number from 0 to 900", default=None, ge=0, le=900)
    buffer_size_mib: StrictInt | None = _key("null or a whole number from 1 to 128", default=None, ge=1, le=128)
    compression: Compression | None = _key(f"null or {_COMPRESSION_TEXT}", default=None)


class TableSpec(_Model):
    """One captured DynamoDB table: the unit of configuration, of the producer and of the lake."""

    name: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = _key(
        "1-40 characters of lower-case letters, digits and '_', starting with a letter "
        "(names the table's stream, delivery, S3 prefixes and Athena table)"
    )
    existing_table_name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] | None = _key(
        "null (the stack creates '<prefix>-<name>') or the name of an existing table in the producer account "
        "and region, owned elsewhere, whose changes are captured",
        default=None,
    )
    partition_key: Attribute = _key(_ATTRIBUTE_TEXT)
    partition_key_type: KeyType = _key(_KEY_TYPE_TEXT, default="S")
    sort_key: Attribute | None = _key(f"null or {_ATTRIBUTE_TEXT}", default=None)
    sort_key_type: KeyType = _key(_KEY_TYPE_TEXT, default="S")
    stream: StreamSettings = _key("an object (see stream.*)", default_factory=StreamSettings)
    delivery: DeliveryOverrides = _key("an object (see tables[].delivery.*)", default_factory=DeliveryOverrides)
    columns: dict[Annotated[StrictStr, Field(min_length=1, max_length=255)], StrictStr] = _key(
        "an object: column key as the transform writes it (e.g. 'total', 'shipTo.city') -> Athena type "
        "('string', 'bigint', 'double', 'boolean', 'decimal(38,2)', ...)",
        default_factory=dict,
    )

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return (self.partition_key,) + ((self.sort_key,) if self.sort_key else ())

    @model_validator(mode="after")
    def _column_types(self) -> TableSpec:
        bad = {k: v for k, v in self.columns.items() if not _ATHENA_TYPE.match(v.strip().lower())}
        if bad:
            key, value = next(iter(bad.items()))
            raise ValueError(
                f"@columns.{key}={value!r}@must be an Athena column type such as 'string', 'bigint', 'double', "
                "'boolean', 'timestamp' or 'decimal(38,2)'"
            )
        return self


class TransformConfig(_Model):
    memory_mb: StrictInt = _int(128, 10240, 512)
    timeout_seconds: StrictInt = _int(60, 300, 120, "Firehose waits at most 5 minutes for a transform call")
    reserved_concurrency: StrictInt | None = _key(
        "null (no reservation) or a whole number from 1 to 1000000: executions reserved for EACH table's transform",
        default=None,
        ge=1,
        le=1_000_000,
    )
    account_concurrency_quota: StrictInt = _int(10, 1_000_000, 1000, "account A's Lambda quota; reservations must fit")


class NetworkConfig(_Model):
    vpc_cidr: StrictStr = _key("a private IPv4 CIDR with a prefix from /16 to /24", default="10.40.0.0/24")
    availability_zones: tuple[StrictStr, ...] = _key(
        "2 to 6 distinct zones of the producer region, e.g. ['eu-west-1a', 'eu-west-1b'] (explicit: no lookups)"
    )

    @model_validator(mode="after")
    def _cidr(self) -> NetworkConfig:
        try:
            net = ipaddress.IPv4Network(self.vpc_cidr, strict=True)
            ok = 16 <= net.prefixlen <= 24 and net.is_private
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"@vpc_cidr={self.vpc_cidr!r}@must be a private IPv4 CIDR with a prefix from /16 to /24")
        return self


class NotificationConfig(_Model):
    approval_emails: tuple[Email, ...] = _key("a list of e-mail addresses subscribed to the approval topic", default=())
    alarm_emails: tuple[Email, ...] = _key("a list of e-mail addresses subscribed to the alarm topic", default=())


class ReplicaConfig(_Model):
    account: Account = _key("a 12-digit AWS account ID, as a string")
    region: Region = _key("an AWS region name such as 'eu-west-1'")
    bucket_name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = _key(
        "the replica bucket's name (versioned, in that account and region)"
    )
    key_arn: Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")] = _key(
        "the replica bucket's KMS key ARN 'arn:aws:kms:<region>:<account>:key/<id>'"
    )


class DataLakeConfig(_Model):
    noncurrent_version_expiration_days: StrictInt = _int(1, 3650, 90)
    access_log_expiration_days: StrictInt = _int(1, 3650, 365)
    replica: ReplicaConfig | None = _key("null or an object (see data_lake.replica.*)", default=None)


class AthenaConfig(_Model):
    bytes_scanned_cutoff_mib: StrictInt = _int(10, 10_485_760, 10_240, "per query; Athena's minimum is 10 MB")
    results_expiration_days: StrictInt = _int(1, 3650, 30)


class BackupConfig(_Model):
    enabled: StrictBool = _key("true or false: an AWS Backup plan for every table the stack creates", default=True)
    daily_retention_days: StrictInt = _int(1, 3650, 35)
    monthly_retention_days: StrictInt = _int(30, 36500, 365)
    copy_to_vault_arn: (
        Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:backup:[a-z0-9-]+:\d{12}:backup-vault:[A-Za-z0-9_.-]+$")]
        | None
    ) = _key("null or a backup vault ARN in another account to copy every recovery point to", default=None)


# Athena writes at most 100 partitions per INSERT ("Use CTAS and INSERT INTO to work around the 100 partition
# limit": https://docs.aws.amazon.com/athena/latest/ug/ctas-insert-into.html). The history table is partitioned by
# day of change time, so one run's window must span fewer change days than that (see _lakehouse_checks).
ATHENA_MAX_PARTITIONS_PER_INSERT = 100
# Day partitions one run's changes can span beyond its arrival hours: one for a window that does not start at
# midnight, one for changes that arrive the day after they happened (buffers, replication lag, clock skew).
_LAKEHOUSE_EDGE_DAYS = 2


class LakehouseConfig(_Model):
    # Defaults and bounds are argued in docs/lakehouse.md ("Deployment and maintenance").
    enabled: StrictBool = _key(
        "true or false: Iceberg history and state tables per table, kept current by scheduled Athena SQL",
        default=True,
    )
    schedule_minutes: StrictInt = _int(5, 1440, 15, "minutes between maintenance runs")
    late_window_hours: StrictInt = _int(
        1, 168, 3, "arrival hours each run reads again for objects Firehose writes late; at least buffers + 1 hour"
    )
    max_hours_per_run: StrictInt = _int(
        1,
        24 * (ATHENA_MAX_PARTITIONS_PER_INSERT - _LAKEHOUSE_EDGE_DAYS),
        72,
        f"arrival hours one run reads at most; Athena writes at most {ATHENA_MAX_PARTITIONS_PER_INSERT} partitions "
        "per INSERT",
    )


class ComplianceConfig(_Model):
    packs: tuple[Literal[NAG_PACKS], ...] = _key(  # type: ignore[valid-type]
        f"a non-empty list of {list(NAG_PACKS)}", default=NAG_PACKS, min_length=1
    )


class AppConfig(_Model):
    prefix: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")] = _key(
        "3-20 characters of lower-case letters, digits and '-', starting with a letter (part of bucket names)",
        default="ddblake",
    )
    tooling: Environment = _key("an object with 'account' and 'region'")
    consumer: Environment = _key("an object with 'account' and 'region'")
    producer: Environment = _key("an object with 'account' and 'region'")
    source: SourceConfig = _key("an object (see source.*)")
    tables: tuple[TableSpec, ...] = _key("a non-empty list of table objects (see tables[].*)", min_length=1)
    delivery: DeliverySettings = _key("an object (see delivery.*)", default_factory=DeliverySettings)
    transform: TransformConfig = _key("an object (see transform.*)", default_factory=TransformConfig)
    network: NetworkConfig = _key("an object (see network.*)")
    notifications: NotificationConfig = _key("an object (see notifications.*)", default_factory=NotificationConfig)
    data_lake: DataLakeConfig = _key("an object (see data_lake.*)", default_factory=DataLakeConfig)
    athena: AthenaConfig = _key("an object (see athena.*)", default_factory=AthenaConfig)
    backup: BackupConfig = _key("an object (see backup.*)", default_factory=BackupConfig)
    compliance: ComplianceConfig = _key("an object (see compliance.*)", default_factory=ComplianceConfig)
    lakehouse: LakehouseConfig = _key("an object (see lakehouse.*)", default_factory=LakehouseConfig)

    @property
    def same_account(self) -> bool:
        return self.consumer.account == self.producer.account

    def delivery_for(self, table: TableSpec) -> DeliverySettings:
        """The table's delivery settings: its overrides on top of the app-level defaults."""
        overrides = {k: v for k, v in table.delivery.model_dump().items() if v is not None}
        return self.delivery.model_copy(update=overrides)

    def table(self, name: str) -> TableSpec:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"no table named {name!r}; configured: {[t.name for t in self.tables]}")

    def for_sandbox(self, account: str, region: str | None = None, prefix: str | None = None) -> AppConfig:
        """The same app, both halves in one developer account (same-account mode), optionally under a
        per-developer prefix so several developers (or a redeploy after a deletion) never collide."""
        region = region or self.producer.region
        raw = self.model_dump(mode="json")
        env = {"account": account, "region": region}
        raw.update(consumer=env, producer=env, prefix=prefix or self.prefix)
        raw["network"]["availability_zones"] = [
            region + z[len(self.producer.region) :] for z in self.network.availability_zones
        ]
        return from_dict(raw, origin="sandbox (-c sandbox_account/sandbox_region/sandbox_prefix)")

    @model_validator(mode="after")
    def _whole(self) -> AppConfig:
        problems = list(_cross_checks(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --- checks that span several keys ------------------------------------------------------------------------
def _cross_checks(cfg: AppConfig) -> Iterator[str]:
    c = CONTEXT_KEY
    known = KNOWN_REGIONS
    for where in ("tooling", "consumer", "producer"):
        region = getattr(cfg, where).region
        if region not in known:
            close = difflib.get_close_matches(region, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            yield f"{c}.{where}.region = {region!r}: not a region this CDK version knows{hint}"
    if cfg.consumer.region != cfg.producer.region:
        # Firehose, the bucket and the key policy's kms:ViaService are wired for one region; not validated
        # across regions, so refused rather than deployed half-working.
        yield (
            f"{c}.consumer.region = {cfg.consumer.region!r}: must equal {c}.producer.region "
            f"({cfg.producer.region!r}); delivering into a data lake in another region is not supported"
        )
    if len({cfg.tooling.partition, cfg.consumer.partition, cfg.producer.partition}) > 1:
        yield f"{c}.tooling/consumer/producer regions: must all be in one AWS partition"
    s = cfg.source
    if (s.connection_account, s.connection_region) != (cfg.tooling.account, cfg.tooling.region):
        yield (
            f"{c}.source.connection_arn = {s.connection_arn!r}: the connection must be in the tooling account and "
            f"region ({cfg.tooling.account}, {cfg.tooling.region}); it is in ({s.connection_account}, "
            f"{s.connection_region})"
        )
    zones = cfg.network.availability_zones
    if not (
        2 <= len(zones) <= 6
        and len(set(zones)) == len(zones)
        and all(re.fullmatch(re.escape(cfg.producer.region) + r"[a-z]", z) for z in zones)
    ):
        yield (
            f"{c}.network.availability_zones = {list(zones)!r}: must list 2 to 6 distinct zones of the producer "
            f"region '{cfg.producer.region}', e.g. ['{cfg.producer.region}a', '{cfg.producer.region}b']"
        )
    names = [t.name for t in cfg.tables]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        yield f"{c}.tables[].name = {duplicate!r}: appears more than once; table names must be unique"
    existing = [t.existing_table_name for t in cfg.tables if t.existing_table_name]
    for duplicate in sorted({n for n in existing if existing.count(n) > 1}):
        yield f"{c}.tables[].existing_table_name = {duplicate!r}: a table streams to one destination only once"
    for i, table in enumerate(cfg.tables):
        if table.sort_key is not None and table.sort_key == table.partition_key:
            yield f"{c}.tables[{i}].sort_key = {table.sort_key!r}: must differ from partition_key"
    yield from _name_lengths(cfg)
    yield from _lakehouse_checks(cfg)
    reserved = cfg.transform.reserved_concurrency
    for table in cfg.tables if reserved is not None else ():
        # "Firehose allows up to 5 outstanding Lambda invocations per shard" (S3 destination)
        # https://docs.aws.amazon.com/firehose/latest/dev/limits.html: less starves it and batches go to errors/.
        needed = FIREHOSE_INVOCATIONS_PER_SHARD * table.stream.shard_count
        if table.stream.mode == "PROVISIONED" and reserved < needed:
            yield (
                f"{c}.transform.reserved_concurrency = {reserved}: table {table.name!r} has {table.stream.shard_count} "
                f"shards and Firehose runs up to {FIREHOSE_INVOCATIONS_PER_SHARD} transform calls per shard: reserve "
                f"at least {needed}, or set it to null"
            )
    if reserved is not None:
        total = reserved * len(cfg.tables)
        reservable = cfg.transform.account_concurrency_quota - MIN_UNRESERVED_CONCURRENCY
        if total > reservable:
            yield (
                f"{c}.transform.reserved_concurrency = {reserved}: {len(cfg.tables)} table(s) reserve {total} "
                f"concurrent executions, but {c}.transform.account_concurrency_quota = "
                f"{cfg.transform.account_concurrency_quota} leaves at most {max(reservable, 0)} reservable (Lambda "
                f"keeps {MIN_UNRESERVED_CONCURRENCY} unreserved); lower it, raise the quota, or set it to null"
            )


def _lakehouse_checks(cfg: AppConfig) -> Iterator[str]:
    """The late window must cover the buffers, and one run's window must fit Athena's partitions per INSERT."""
    c = CONTEXT_KEY
    lake = cfg.lakehouse
    if not lake.enabled:
        return
    for table in cfg.tables:
        # Firehose names an object after its oldest record's arrival hour and writes it once both buffers
        # (transform and S3) are full (https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html): it lands
        # up to that long after its hour ended, plus the hour of margin the change-time queries also keep for
        # replication lag and clock skew (consumer/queries.py, ARRIVAL_MARGIN_SECONDS).
        buffers = FIREHOSE_PROCESSOR_BUFFER_SECONDS + cfg.delivery_for(table).buffer_interval_seconds
        needed = 1 + -(-buffers // 3600)
        if lake.late_window_hours < needed:
            yield (
                f"{c}.lakehouse.late_window_hours = {lake.late_window_hours}: table {table.name!r} buffers up to "
                f"{buffers} s (transform {FIREHOSE_PROCESSOR_BUFFER_SECONDS} s + its S3 buffer interval) and an "
                f"hour is kept for replication lag, so objects land up to {needed} hours late: set at least {needed}"
            )
    # Change days one run writes: the window's own days, the late window's, and the edges (see above).
    days = -(-(lake.max_hours_per_run + lake.late_window_hours) // 24) + _LAKEHOUSE_EDGE_DAYS
    if days > ATHENA_MAX_PARTITIONS_PER_INSERT:
        yield (
            f"{c}.lakehouse.max_hours_per_run = {lake.max_hours_per_run}: with {c}.lakehouse.late_window_hours = "
            f"{lake.late_window_hours} one run can write {days} day partitions of history, over Athena's "
            f"{ATHENA_MAX_PARTITIONS_PER_INSERT} per INSERT; lower either"
        )


def _name_lengths(cfg: AppConfig) -> Iterator[str]:
    """Every derived name must fit its service's limit; the error names the keys that make it up."""
    c = CONTEXT_KEY
    for what, value, limit in [*naming.lake(cfg).limited(), *naming.tooling(cfg).limited()]:
        if len(value) > limit:
            yield (
                f"{c}.prefix = {cfg.prefix!r}: the {what} '{value}' is {len(value)} characters, over the limit of "
                f"{limit}; shorten {c}.prefix"
            )
    for i, table in enumerate(cfg.tables):
        for what, value, limit in naming.table(cfg, table).limited():
            if len(value) > limit:
                yield (
                    f"{c}.tables[{i}].name = {table.name!r}: the {what} '{value}' is {len(value)} characters, over "
                    f"the limit of {limit}; shorten {c}.prefix ({len(cfg.prefix)}) or {c}.tables[{i}].name "
                    f"({len(table.name)})"
                )


# The regions aws-cdk-lib 2.275 has facts for (aws_cdk.region_info.RegionInfo.regions; a unit test keeps this
# equal): a region missing there fails deep inside synth ("Mapping doesn't contain top-level key ..."). Written
# out so that loading the configuration (also done by the ddb-lake CLI) needs no jsii/Node.
KNOWN_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-isoe-west-1",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
    "us-west-1",
    "us-west-2",
)


# --- errors: pydantic's, in the project's one-line-per-key form ---------------------------------------------
def _dotted(loc: tuple[Any, ...]) -> str:
    out = CONTEXT_KEY
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    model: Any = AppConfig
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return field if part in ("[key]",) else None
        field = fields[part]
        model = _model_of(field.annotation)
    return field


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found:
            return found
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    parent = _field_at(loc[:-1]) if len(loc) > 1 else None
    model = _model_of(parent.annotation) if parent else AppConfig
    return list(model.model_fields) if model else []


def _problem(error: Any) -> list[str]:
    loc = tuple(error["loc"])
    where = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return [f"{where}: unknown key{hint}; allowed keys are {allowed}"]
    if kind == "missing":
        field = _field_at(loc)
        allowed = (field.json_schema_extra or {}).get("allowed", "set") if field else "set"  # type: ignore[union-attr]
        return [f"{where}: missing; must be {allowed}"]
    if kind == "value_error":
        lines = []
        for line in str(error["ctx"]["error"]).split("\n"):
            if line.startswith("@"):  # "@key=value@message": a model validator naming one of its own keys
                _, key_value, message = line.split("@", 2)
                key, value = key_value.split("=", 1)
                lines.append(f"{where}.{key} = {value}: {message}")
            else:
                lines.append(line)
        return lines
    field = _field_at(loc)
    model = _model_of(field.annotation) if field else None
    if model is not None and kind in ("model_type", "dict_type", "model_attributes_type"):
        return [f"{where} = {error['input']!r}: must be an object with keys {list(model.model_fields)}"]
    allowed = (field.json_schema_extra or {}).get("allowed") if field else None  # type: ignore[union-attr]
    if not allowed:
        allowed = error["msg"][0].lower() + error["msg"][1:]
    return [f"{where} = {error['input']!r}: must be {allowed}"]


def from_dict(raw: Mapping[str, Any], origin: str = "cdk.json context") -> AppConfig:
    """Validate ``raw`` (the ``datalake`` context object) and build the config, or raise ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} = {raw!r}: must be an object (see cdk.json)"], origin)
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as error:
        problems: list[str] = []
        items = error.errors(include_url=False)
        # A list whose items failed is also "too short after validation": only the items' errors say why.
        deeper = {item["loc"][:n] for item in items for n in range(len(item["loc"]))}
        for item in items:
            if item["type"] == "too_short" and item["loc"] in deeper:
                continue
            for line in _problem(item):
                if line not in problems:
                    problems.append(line)
        raise ConfigError(problems, origin) from None


# --- loading from the CDK context ------------------------------------------------------------------------
def _parse_override(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def merge_overrides(base: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``datalake.a.b=value`` context keys on top of the ``datalake`` object (a number in the path indexes a
    list, e.g. ``datalake.tables.0.stream.shard_count``)."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key in sorted(k for k in context if k.startswith(CONTEXT_KEY + ".")):
        path = key.split(".")[1:]
        node: Any = merged
        for part in path[:-1]:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict | list):
                child = node[part] = {}
            node = child
        leaf = path[-1]
        value = context[key]
        if isinstance(node, list) and leaf.isdigit() and int(leaf) < len(node):
            node[int(leaf)] = _parse_override(value)
            continue
        # A string leaf stays a string: '-c datalake.producer.account=012345678901' is not a number.
        node[leaf] = value if isinstance(node.get(leaf), str) else _parse_override(value)
    return merged


def context_problems(context: Mapping[str, Any]) -> list[str]:
    """Context keys that look like ours but are not (``sandbox_regoin``, ``sandbox-account``): errors, because
    silently ignoring them deploys something other than what was asked for."""
    problems = []
    for key in context:
        if key in OUR_CONTEXT_KEYS or key.startswith(CONTEXT_KEY + ".") or key.startswith(("@aws-cdk", "aws:cdk")):
            continue
        normalised = key.lower().replace("-", "_")
        close = difflib.get_close_matches(normalised, OUR_CONTEXT_KEYS, n=1, cutoff=0.75)
        if close or normalised.startswith(("sandbox", "datalake")):
            suggestion = close[0] if close else "one of " + ", ".join(OUR_CONTEXT_KEYS)
            problems.append(f"context key {key!r}: not a key of this app; did you mean {suggestion!r}?")
    return problems


def load(context: Mapping[str, Any], file_context: Mapping[str, Any] | None = None) -> AppConfig:
    """Build the config from all CDK context values (``app.node.get_all_context()``).

    ``file_context`` is the context object of ``cdk.json`` as committed; with it, a problem caused by a ``-c``
    override says so, because the pipeline never sees local overrides.
    """
    problems = context_problems(context)
    if problems:
        raise ConfigError(problems, "the CDK context")
    base = _parse_override(context.get(CONTEXT_KEY))
    if base is None:
        raise ConfigError([f"{CONTEXT_KEY}: missing; add the '{CONTEXT_KEY}' object to cdk.json's context"])
    if not isinstance(base, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} = {base!r}: must be an object (see cdk.json)"])
    overrides = sorted(k for k in context if k.startswith(CONTEXT_KEY + "."))
    whole_from_command_line = file_context is not None and _without_nulls(
        _parse_override(file_context.get(CONTEXT_KEY))
    ) != _without_nulls(base)
    try:
        return from_dict(merge_overrides(base, context))
    except ConfigError as error:
        if not overrides and not whole_from_command_line:
            raise
        lines = []
        for line in error.problems:
            culprit = next((o for o in overrides if _covers(o, line)), None)
            if culprit:
                line += f" (set on the command line: -c {culprit}=...)"
            elif whole_from_command_line:
                line += f" (the '{CONTEXT_KEY}' object differs from cdk.json: set on the command line)"
            lines.append(line)
        raise ConfigError(lines, "cdk.json context with -c overrides") from None


def _without_nulls(value: Any) -> Any:
    """The object without null-valued keys: the CDK context drops them on its way through jsii, so only the rest
    tells a command-line object from cdk.json's."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_nulls(v) for v in value]
    return value


def _covers(override: str, problem: str) -> bool:
    key = problem.split(" ", 1)[0].rstrip(":")
    normalised = re.sub(r"\[(\d+)\]", r".\1", key)
    return normalised == override or normalised.startswith(override + ".") or override.startswith(normalised + ".")


def reference_rows() -> list[tuple[str, str, str]]:
    """(key, default, allowed) for every key a user sets: the README's configuration table is checked against this.
    An optional object (default null) gets a row of its own; its keys are then "required when set"."""
    rows: list[tuple[str, str, str]] = []

    def allowed(field: FieldInfo) -> str:
        return str((field.json_schema_extra or {}).get("allowed", ""))  # type: ignore[union-attr]

    def walk(model: type[BaseModel], prefix: str, required: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            nested = _model_of(field.annotation)
            if nested is None:
                default = _default_text(field)
                rows.append((key, required if default == "required" else default, allowed(field)))
            elif nested is Environment:  # one row per leaf: these are the keys a newcomer edits first
                walk(nested, key + ".", required)
            elif not field.is_required() and field.get_default(call_default_factory=True) is None:
                rows.append((key, "null", allowed(field)))
                walk(nested, key + ".", "required when set")
            else:
                walk(nested, key + ("[]." if name == "tables" else "."), required)

    walk(AppConfig, "", "required")
    return rows


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return "{}"
    if isinstance(default, tuple):
        default = list(default)
    return json.dumps(default)
