"""The configuration: one declared model for the ``datalake`` object of the CDK context.

Each key is declared once below (type, range, default, and the ``allowed`` text that error messages and the
README's configuration table show). Validation collects every problem and raises one :class:`ConfigError` with
one line per bad key (``datalake.tables[0].stream.shard_count = 0: must be ...``), so a mistake never surfaces as
a traceback from deep inside CDK. Checks that need several keys (name lengths, regions, the connection's
account, concurrency) run after the per-key checks and name every key involved. A check within one object (the same
e-mail twice, shard_count with mode ON_DEMAND, daily above monthly backup retention, column keys and types) runs
once that object's own keys are valid, and a region is checked against the regions CDK knows on its own key, so no
error is ever built from another bad value. A null is an error wherever the key cannot be null: app.py reads the
CLI's context itself because jsii drops null-valued keys of context objects (see app.cli_context). No value can make
the loader raise anything but ConfigError (tests/unit/test_config_errors.py feeds it mutated configurations).

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
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
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


class ConfigError(ValueError):
    """One or more configuration values are invalid; ``problems`` holds one line per bad key."""

    def __init__(self, problems: list[str], origin: str = "cdk.json context") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {origin} '{CONTEXT_KEY}' ({len(problems)}):\n{lines}")


def _key(allowed: str, *, item: str | None = None, shape: str | None = None, **kwargs: Any) -> Any:
    """A declared key: ``allowed`` is the one text users see, in errors and in the README table. ``item`` is what
    one entry of a list must be (an error names the entry by its index); ``shape`` is added to an error when the
    value has the wrong form (e.g. an ARN's fields)."""
    extra = {"allowed": allowed} | ({"item": item} if item else {}) | ({"shape": shape} if shape else {})
    return Field(json_schema_extra=extra, **kwargs)


def _int(low: int, high: int, default: int | None, why: str = "") -> Any:
    allowed = f"a whole number from {low} to {high}" + (f" ({why})" if why else "")
    return _key(allowed, default=default, ge=low, le=high)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")


_UNSET: Any = object()


class _Problems(ValueError):
    """What a validator found, one entry per bad key: ``(key, value, message)`` with ``key`` relative to where the
    validator runs ('' for the value itself, 'columns.total', 'alarm_emails[1]') and ``value`` the offending value
    (or _UNSET when the line is about the key, not a value), or a complete line."""

    def __init__(self, problems: list[tuple[str, Any, str] | str]) -> None:
        self.problems = problems
        super().__init__("; ".join(p if isinstance(p, str) else p[2] for p in problems))


def show(value: Any) -> str:
    """A value as an error shows it: JSON's null for None (users write JSON), Python's repr otherwise (it quotes
    strings, so an empty or blank value stays visible)."""
    return "null" if value is None else repr(value)


def _known_region(region: str) -> str:
    if region not in KNOWN_REGIONS:
        close = difflib.get_close_matches(region.strip().lower(), KNOWN_REGIONS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _Problems([("", region, f"not a region this CDK version knows{hint}")])
    return region


# --- leaf types ------------------------------------------------------------------------------------------
Account = Annotated[StrictStr, Field(pattern=r"^\d{12}$")]
# Checked against the regions CDK knows (a typo gets one line with a suggestion, and the checks that compare
# regions never run on it, so no second error is built from the typo).
Region = Annotated[StrictStr, AfterValidator(_known_region)]
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

    @model_validator(mode="after")
    def _shards_only_when_provisioned(self) -> StreamSettings:
        # An on-demand stream sizes itself: a count given with it would be dropped without a word.
        if self.mode == "ON_DEMAND" and "shard_count" in self.model_fields_set:
            raise _Problems(
                [
                    (
                        "shard_count",
                        self.shard_count,
                        "applies only to mode 'PROVISIONED'; with mode 'ON_DEMAND' Kinesis sizes the stream "
                        "itself: remove shard_count or set mode to 'PROVISIONED'",
                    )
                ]
            )
        return self


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


_COLUMN_TYPE_TEXT = (
    "an Athena column type such as 'string', 'bigint', 'double', 'boolean', 'timestamp', 'decimal(38,2)', "
    "'array<string>', 'map<string,bigint>' or 'struct<a:string,b:int>'"
)


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
    columns: dict[StrictStr, StrictStr] = _key(
        "an object: column key as the transform writes it (e.g. 'total', 'shipTo.city') -> Athena type "
        "('string', 'bigint', 'double', 'boolean', 'decimal(38,2)', ...)",
        default_factory=dict,
        item=_COLUMN_TYPE_TEXT,
    )

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return (self.partition_key,) + ((self.sort_key,) if self.sort_key else ())

    @model_validator(mode="after")
    def _columns(self) -> TableSpec:
        problems: list[tuple[str, Any, str] | str] = []
        for key, type_ in self.columns.items():
            key_problem = _column_key_problem(key)
            type_problem = _hive_type_problem(type_)
            if key_problem:
                problems.append(("columns", _UNSET, f"the key {key!r} {key_problem}"))
            elif type_problem:
                problems.append(("columns" + _part(key), type_, f"must be {_COLUMN_TYPE_TEXT} ({type_problem})"))
        if problems:
            raise _Problems(problems)
        return self


# Glue and Athena limit column names (and so the JSON keys they map) to 255 characters
# (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html).
_MAX_COLUMN_KEY = 255


def _column_key_problem(key: str) -> str | None:
    """Why ``key`` can never be a key the transform writes (docs/transform-contract.md, "Column names"), or None."""
    if not key.strip():
        return "is empty: a column key is 1-255 characters, the key as the transform writes it, e.g. 'total'"
    if len(key) > _MAX_COLUMN_KEY:
        return f"is {len(key)} characters: a column key has at most {_MAX_COLUMN_KEY} (Glue's column name limit)"
    if key.startswith("_"):
        # The transform writes a top-level attribute '_x' as '%5Fx': '_' starts only its metadata columns.
        return (
            "starts with '_', which only the transform's metadata columns do (every table has them, see "
            f"docs/transform-contract.md): an item attribute {key!r} is written '%5F{key[1:]}', use that key"
        )
    if "" in key.split("."):
        return (
            "has an empty part between dots: '.' joins a map's keys ('shipTo.city'); a dot inside an attribute "
            "name is written '%2E'"
        )
    if re.search(r"%(?![0-9A-Fa-f]{2})", key):
        return "has a '%' that starts no escape: the transform writes '%' as '%25' and '.' inside a name as '%2E'"
    return None


# Hive DDL types Athena accepts for a JSON table's columns, nested as deep as needed; checked here so a type that
# the views cannot translate (consumer/columns.trino_type) never reaches synth.
_PRIMITIVE_TYPES = frozenset(
    ("string", "boolean", "tinyint", "smallint", "int", "integer", "bigint", "double", "float", "date", "timestamp")
)


def _hive_type_problem(text: str) -> str | None:
    """None if ``text`` is a column type this app declares, else what is wrong with it."""
    try:
        rest = _parse_hive_type(re.sub(r"\s+", "", text.lower()))
    except ValueError as error:
        return str(error)
    return f"unexpected {rest!r} after the type" if rest else None


def _parse_hive_type(text: str) -> str:
    """Read one type at the start of ``text`` (lower case, no spaces); return what follows it."""
    name = re.match(r"[a-z]*", text).group(0)  # type: ignore[union-attr]
    rest = text[len(name) :]
    if name in _PRIMITIVE_TYPES:
        return rest
    if name in ("decimal", "varchar"):
        params = re.match(r"\((\d{1,5})(?:,(\d{1,5}))?\)", rest)
        numbers = [int(n) for n in params.groups() if n is not None] if params else []
        # Athena: precision at most 38, scale optional (default 0), and no more digits after the point than in all
        # (https://docs.aws.amazon.com/athena/latest/ug/data-types.html); VARCHAR's length is 1 to 65535 there too.
        precision, scale = [*numbers, 0, 0][:2]
        if name == "decimal" and not (len(numbers) in (1, 2) and 1 <= precision <= 38 and scale <= precision):
            raise ValueError("decimal is written decimal(precision,scale), precision 1-38, scale 0 to precision")
        if name == "varchar" and not (len(numbers) == 1 and 1 <= numbers[0] <= 65535):
            raise ValueError("varchar is written varchar(length), length 1-65535")
        return rest[params.end() :]  # type: ignore[union-attr]
    if name not in ("array", "map", "struct") or not rest.startswith("<"):
        raise ValueError(f"{name or text!r} is not a type")
    rest, parts = rest[1:], 0
    while True:
        if name == "struct":
            field = re.match(r"[a-z0-9_]+:", rest)
            if not field:
                raise ValueError("a struct's fields are written name:type, the name of [a-z0-9_]")
            rest = rest[field.end() :]
        key = re.match(r"[a-z]*", rest).group(0)  # type: ignore[union-attr]
        # Athena: "MAP<primitive_type, data_type>"; decimal and varchar are primitive types with parameters.
        if name == "map" and parts == 0 and key not in (*_PRIMITIVE_TYPES, "decimal", "varchar"):
            raise ValueError("a map's key type must be a primitive type such as 'string'")
        rest, parts = _parse_hive_type(rest), parts + 1
        if rest.startswith(","):
            rest = rest[1:]
            continue
        if not rest.startswith(">"):
            raise ValueError(f"{name}<...> is not closed with '>'")
        if (name, parts) not in (("array", 1), ("map", 2)) and name != "struct":
            raise ValueError("array<T> takes one type, map<K,V> two")
        return rest[1:]


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
        "2 to 6 distinct zones of the producer region, e.g. ['eu-west-1a', 'eu-west-1b'] (explicit: no lookups)",
        item="a zone name such as 'eu-west-1a'",
    )

    @model_validator(mode="after")
    def _cidr(self) -> NetworkConfig:
        try:
            net = ipaddress.IPv4Network(self.vpc_cidr, strict=True)
            ok = 16 <= net.prefixlen <= 24 and net.is_private
        except ValueError:
            ok = False
        if not ok:
            raise _Problems([("vpc_cidr", self.vpc_cidr, "must be a private IPv4 CIDR with a prefix from /16 to /24")])
        return self


_EMAIL_TEXT = "an e-mail address such as 'ops@example.com'"


class NotificationConfig(_Model):
    approval_emails: tuple[Email, ...] = _key(
        "a list of e-mail addresses subscribed to the approval topic", default=(), item=_EMAIL_TEXT
    )
    alarm_emails: tuple[Email, ...] = _key(
        "a list of e-mail addresses subscribed to the alarm topic", default=(), item=_EMAIL_TEXT
    )

    @model_validator(mode="after")
    def _each_address_once(self) -> NotificationConfig:
        # CDK refuses a second subscription of one address to a topic (SubscriptionAlreadyExistsUnder, a jsii
        # traceback). Case is ignored: domain names are case-insensitive (RFC 5321 section 2.4) and mail providers
        # treat local parts alike in practice, so 'Ops@x.com' next to 'ops@x.com' would get every message twice.
        problems: list[tuple[str, Any, str] | str] = []
        for key in ("approval_emails", "alarm_emails"):
            first: dict[str, int] = {}
            for i, email in enumerate(getattr(self, key)):
                j = first.setdefault(email.lower(), i)
                if j != i:
                    same = f"{key}[{j}]" + (f" ({getattr(self, key)[j]!r})" if getattr(self, key)[j] != email else "")
                    problems.append((f"{key}[{i}]", email, f"the same address as {same}; list each address once"))
        if problems:
            raise _Problems(problems)
        return self


class ReplicaConfig(_Model):
    account: Account = _key("a 12-digit AWS account ID, as a string")
    region: Region = _key("an AWS region name such as 'eu-west-1'")
    bucket_name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = _key(
        "the replica bucket's name (versioned, in that account and region)"
    )
    key_arn: Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")] = _key(
        "the replica bucket's KMS key ARN 'arn:aws:kms:<region>:<account>:key/<id>'"
    )


RoleName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")]
OBJECT_LOCK_MAX_DAYS = 36500
# The earliest arrival year the raw tables ever projected (earlier versions projected 2025-2050), so the default
# keeps every hour an existing lake holds queryable.
EARLIEST_FIRST_YEAR = 2025


def _first_year(year: int) -> int:
    """From EARLIEST_FIRST_YEAR to the current year (UTC): the projection ends at NOW, so a later first year would
    hide every hour until then (a typo such as 2062 for 2026 would make the lake look empty)."""
    current = datetime.now(UTC).year
    if not EARLIEST_FIRST_YEAR <= year <= current:
        raise _Problems(
            [("", year, f"must be a whole number from {EARLIEST_FIRST_YEAR} to the current year ({current}, UTC)")]
        )
    return year


FirstYear = Annotated[StrictInt, AfterValidator(_first_year)]


class DataLakeConfig(_Model):
    noncurrent_version_expiration_days: StrictInt = _int(1, 3650, 90)
    access_log_expiration_days: StrictInt = _int(1, 3650, 365)
    replica: ReplicaConfig | None = _key("null or an object (see data_lake.replica.*)", default=None)
    first_year: FirstYear = _key(
        f"a whole number from {EARLIEST_FIRST_YEAR} to the current year (UTC): the first arrival year the raw "
        "tables project; hours before it are not queryable (docs/lake-queries.md)",
        default=EARLIEST_FIRST_YEAR,
    )
    # Integrity of the lake (consumer/buckets.py, docs/security.md).
    break_glass_role_name: RoleName | None = _key(
        "null (no exception besides the deploying CloudFormation role) or the name (no path) of a role in the "
        "consumer account exempt from the lake's integrity denies; see docs/security.md",
        default=None,
    )
    replay_role_name: RoleName | None = _key(
        "null (replays need the break-glass role) or the name (no path) of a role in the consumer account that may "
        "write under data/<table>/ of every table (ddb-lake replay --role-consumer)",
        default=None,
    )
    object_lock_retention_days: StrictInt | None = _key(
        f"null (no Object Lock), 0 (Object Lock on, no default retention: S3 cannot turn it off again) or a whole "
        f"number from 1 to {OBJECT_LOCK_MAX_DAYS} (governance-mode default retention of every new object version)",
        default=None,
        ge=0,
        le=OBJECT_LOCK_MAX_DAYS,
    )


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
    ) = _key(
        "null or a backup vault ARN in another account to copy every recovery point to",
        default=None,
        shape="'arn:aws:backup:<region>:<12-digit account>:backup-vault:<vault name>'",
    )

    @model_validator(mode="after")
    def _daily_within_monthly(self) -> BackupConfig:
        # Both rules back up on the 1st of a month: a monthly point kept shorter than the daily one of the same
        # day would add nothing, so the setting is almost certainly a swap of the two.
        daily, monthly = self.daily_retention_days, self.monthly_retention_days
        why = "monthly recovery points are meant to outlive daily ones"
        if daily > monthly and "daily_retention_days" in self.model_fields_set:
            raise _Problems(
                [
                    (
                        "daily_retention_days",
                        daily,
                        f"must not exceed {CONTEXT_KEY}.backup.monthly_retention_days ({monthly}); {why}",
                    )
                ]
            )
        if daily > monthly:  # only monthly was set: it is what to change, measured against the daily default
            raise _Problems(
                [
                    (
                        "monthly_retention_days",
                        monthly,
                        f"must be at least {CONTEXT_KEY}.backup.daily_retention_days ({daily}, the default); {why}",
                    )
                ]
            )
        return self


# Athena writes at most 100 partitions per INSERT ("Use CTAS and INSERT INTO to work around the 100 partition
# limit": https://docs.aws.amazon.com/athena/latest/ug/ctas-insert-into.html). The history table is partitioned by
# day of change time: a run of at most 30 days of arrival hours (plus a late window of at most 7 days) writes live
# changes of at most ceil((720 + 168) / 24) + 2 = 39 change days (one more for a window not starting at midnight,
# one for changes arriving the day after they happened), far below 100, leaving room for the days of replayed and
# backfilled changes (docs/lakehouse.md, "Limits").
ATHENA_MAX_PARTITIONS_PER_INSERT = 100
LAKEHOUSE_MAX_HOURS_PER_RUN = 24 * 30
LAKEHOUSE_MAX_LATE_WINDOW_HOURS = 24 * 7
# The largest delay of an object after its arrival hour (both buffers at their maxima, DeliverySettings) plus one
# hour of margin, in whole hours: 1 + ceil((60 + 900) / 3600) = 2.
MAX_BUFFER_INTERVAL_SECONDS = 900
LAKEHOUSE_MIN_LATE_WINDOW_HOURS = 1 + -(-(FIREHOSE_PROCESSOR_BUFFER_SECONDS + MAX_BUFFER_INTERVAL_SECONDS) // 3600)


class LakehouseConfig(_Model):
    # Defaults and bounds are argued in docs/lakehouse.md ("Deployment and maintenance").
    enabled: StrictBool = _key(
        "true or false: Iceberg history and state tables per table, kept current by scheduled Athena SQL",
        default=True,
    )
    schedule_minutes: StrictInt = _int(5, 1440, 15, "minutes between maintenance runs")
    # Firehose names an object after its oldest record's arrival hour and writes it once both buffers (transform
    # and S3) are full (https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html): it lands up to 60 + 900 s
    # after its hour ended, plus the hour of margin the change-time queries keep for replication lag and clock skew
    # (consumer/queries.py, ARRIVAL_MARGIN_SECONDS): LAKEHOUSE_MIN_LATE_WINDOW_HOURS covers every buffer setting.
    late_window_hours: StrictInt = _int(
        LAKEHOUSE_MIN_LATE_WINDOW_HOURS,
        LAKEHOUSE_MAX_LATE_WINDOW_HOURS,
        3,
        "arrival hours each run reads again for objects Firehose writes late; at least buffers + 1 hour",
    )
    max_hours_per_run: StrictInt = _int(
        LAKEHOUSE_MIN_LATE_WINDOW_HOURS + 2,
        LAKEHOUSE_MAX_HOURS_PER_RUN,
        72,
        "arrival hours one run reads at most; at least late_window_hours + 2 (a catch-up must advance); at most 30 "
        f"days (Athena writes at most {ATHENA_MAX_PARTITIONS_PER_INSERT} partitions per INSERT)",
    )


class ComplianceConfig(_Model):
    packs: tuple[Literal[NAG_PACKS], ...] = _key(  # type: ignore[valid-type]
        f"a non-empty list of {list(NAG_PACKS)}", default=NAG_PACKS, min_length=1, item=f"one of {list(NAG_PACKS)}"
    )

    @model_validator(mode="after")
    def _each_pack_once(self) -> ComplianceConfig:
        # A pack registered twice on the App would report every finding twice.
        repeated = [(f"packs[{i}]", p, "listed twice") for i, p in enumerate(self.packs) if p in self.packs[:i]]
        if repeated:
            raise _Problems(repeated)  # type: ignore[arg-type]
        return self


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
        origin = "sandbox (-c sandbox_account/sandbox_region/sandbox_prefix)"
        region = region or self.producer.region
        try:
            _known_region(region)
        except _Problems as error:  # one line naming the context key the user set, not two derived ones
            raise ConfigError([f"{SANDBOX_REGION_KEY} = {show(region)}: {error}"], origin) from None
        # Only what was set: a default written out would count as set (e.g. shard_count with ON_DEMAND).
        raw = self.model_dump(mode="json", exclude_unset=True)
        env = {"account": account, "region": region}
        raw.update(consumer=env, producer=env, prefix=prefix or self.prefix)
        raw["network"]["availability_zones"] = [
            region + z[len(self.producer.region) :] for z in self.network.availability_zones
        ]
        return from_dict(raw, origin=origin)

    @model_validator(mode="after")
    def _whole(self) -> AppConfig:
        problems: list[tuple[str, Any, str] | str] = list(_cross_checks(self))
        if problems:
            raise _Problems(problems)
        return self


# --- checks that span several keys ------------------------------------------------------------------------
def _cross_checks(cfg: AppConfig) -> Iterator[str]:
    c = CONTEXT_KEY
    # Every region is known here (an unknown one fails its own key first), so no line below is built from a typo.
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
    lake = cfg.data_lake
    if lake.replay_role_name is not None and lake.replay_role_name == lake.break_glass_role_name:
        yield (
            f"{c}.data_lake.replay_role_name = {lake.replay_role_name!r}: must differ from "
            f"{c}.data_lake.break_glass_role_name; routine replays must not need the role exempt from every "
            "integrity control"
        )
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
    """A catch-up must advance (the late window covers the buffers by its own lower bound)."""
    c = CONTEXT_KEY
    lake = cfg.lakehouse
    if not lake.enabled:
        return
    # Each run starts late_window_hours before the last hour merged (the state's progress row) and reads at most
    # max_hours_per_run hours, so a catch-up advances max_hours_per_run - 1 - late_window_hours hours per run.
    low = lake.late_window_hours + 2
    if lake.max_hours_per_run < low:
        yield (
            f"{c}.lakehouse.max_hours_per_run = {lake.max_hours_per_run}: must be at least "
            f"{c}.lakehouse.late_window_hours + 2 ({low}); each run re-reads the late window, so a smaller one never "
            "catches up"
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
def _part(key: Any) -> str:
    """One step of a key path: '[0]' for a list index, '.name' for a plain key, "['shipTo.city']" for any other."""
    if isinstance(key, int):
        return f"[{key}]"
    return f".{key}" if re.fullmatch(r"[A-Za-z0-9_-]+", str(key)) else f"[{key!r}]"


def _dotted(loc: tuple[Any, ...]) -> str:
    return CONTEXT_KEY + "".join(_part(part) for part in loc)


def _field_at(loc: tuple[Any, ...]) -> tuple[FieldInfo | None, bool]:
    """The declared field at ``loc``, and whether ``loc`` points inside it (an entry of its list or mapping)."""
    model: Any = AppConfig
    field: FieldInfo | None = None
    inside = False
    for part in loc:
        fields = getattr(model, "model_fields", None) if model is not None else None
        if isinstance(part, str) and fields and part in fields:
            field, model, inside = fields[part], _model_of(fields[part].annotation), False
        elif field is not None and (isinstance(part, int) or model is None):
            inside = True  # a list index, or a key of a mapping (columns)
        else:
            return None, False
    return field, inside


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found:
            return found
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    parent = _field_at(loc[:-1])[0] if len(loc) > 1 else None
    model = _model_of(parent.annotation) if parent else AppConfig
    return list(model.model_fields) if model else []


def _problem(error: Any) -> list[str]:
    loc = tuple(error["loc"])
    if len(loc) > 2 and loc[-1] == "[key]" and _field_at(loc[:-2])[1] is False and _field_at(loc[:-2])[0]:
        # A key of a str -> str mapping (columns) that is not a string; pydantic marks it with a '[key]' step.
        return [f"{_dotted(loc[:-2])}: the key {show(loc[-2])} must be a string"]
    where = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        if re.fullmatch(r"[A-Za-z0-9_-]+", str(loc[-1])):
            return [f"{where}: unknown key{hint}; allowed keys are {allowed}"]
        return [f"{_dotted(loc[:-1])}: unknown key {show(loc[-1])}{hint}; allowed keys are {allowed}"]
    if kind == "missing":
        field = _field_at(loc)[0]
        allowed = (field.json_schema_extra or {}).get("allowed", "set") if field else "set"  # type: ignore[union-attr]
        return [f"{where}: missing; must be {allowed}"]
    cause = (error.get("ctx") or {}).get("error")
    if kind == "value_error" and isinstance(cause, _Problems):
        lines = []
        for problem in cause.problems:
            if isinstance(problem, str):
                lines.append(problem)
                continue
            key, value, message = problem
            at = f"{where}.{key}" if key and not key.startswith("[") else where + key  # 'columns' + _part(...)
            lines.append(f"{at}: {message}" if value is _UNSET else f"{at} = {show(value)}: {message}")
        return lines
    field, inside = _field_at(loc)
    model = _model_of(field.annotation) if field else None
    if model is not None and kind in ("model_type", "dict_type", "model_attributes_type"):
        return [f"{where} = {show(error['input'])}: must be an object with keys {list(model.model_fields)}"]
    extra: dict[str, Any] = (field.json_schema_extra or {}) if field else {}  # type: ignore[assignment]
    allowed = extra.get("item") if inside and "item" in extra else extra.get("allowed")
    if not allowed:
        allowed = error["msg"][0].lower() + error["msg"][1:]
    shape = f"; shaped {extra['shape']}" if "shape" in extra and kind == "string_pattern_mismatch" else ""
    return [f"{where} = {show(error['input'])}: must be {allowed}{shape}{_literal_hint(error)}"]


def _literal_hint(error: Any) -> str:
    """' (did you mean 'ON_DEMAND'?)' for a near miss of a fixed choice, such as 'on_demand'."""
    if error["type"] != "literal_error" or not isinstance(error["input"], str):
        return ""
    choices = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
    by_case = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(error["input"].strip().lower(), list(by_case), n=1, cutoff=0.6)
    return f" (did you mean '{by_case[close[0]]}'?)" if close else ""


def from_dict(raw: Mapping[str, Any], origin: str = "cdk.json context") -> AppConfig:
    """Validate ``raw`` (the ``datalake`` context object) and build the config, or raise ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} = {show(raw)}: must be an object (see cdk.json)"], origin)
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
    problems = []
    for key in sorted(k for k in context if k.startswith(CONTEXT_KEY + ".")):
        path = key.split(".")[1:]
        node: Any = merged
        for depth, part in enumerate(path):
            if isinstance(node, list) and not (part.isdigit() and int(part) < len(node)):
                # A list is indexed, never grown: a wrong index would otherwise end in a traceback.
                where = _dotted(tuple(int(p) if p.isdigit() else p for p in path[:depth]))
                problems.append(
                    f"-c {key}: {where} is a list of {len(node)} item(s); the part after it must be an index "
                    f"from 0 to {len(node) - 1}, not {part!r}"
                    if node
                    else f"-c {key}: {where} is an empty list; set the whole list instead, e.g. -c {where}='[...]'"
                )
                break
            if not part:
                problems.append(f"-c {key}: a dotted key has no empty parts; e.g. -c {CONTEXT_KEY}.prefix=team")
                break
            slot: Any = int(part) if isinstance(node, list) else part
            if depth == len(path) - 1:
                current = node[slot] if isinstance(node, list) else node.get(part)
                # A string leaf stays a string: '-c datalake.producer.account=012345678901' is not a number.
                node[slot] = context[key] if isinstance(current, str) else _parse_override(context[key])
                break
            child = node[slot] if isinstance(node, list) else node.get(part)
            if not isinstance(child, dict | list):
                child = node[slot] = {}
            node = child
    if problems:
        raise ConfigError(problems, "the -c overrides")
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
    if CONTEXT_KEY not in context:
        raise ConfigError([f"{CONTEXT_KEY}: missing; add the '{CONTEXT_KEY}' object to cdk.json's context"])
    base = _parse_override(context[CONTEXT_KEY])
    if not isinstance(base, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} = {show(base)}: must be an object (see cdk.json)"])
    overrides = sorted(k for k in context if k.startswith(CONTEXT_KEY + "."))
    whole_from_command_line = file_context is not None and _without_nulls(
        _parse_override(file_context.get(CONTEXT_KEY))
    ) != _without_nulls(base)
    merged = merge_overrides(base, context)
    try:
        return from_dict(merged)
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
    """The object without null-valued keys, to compare cdk.json's object with the one the app got: jsii drops
    null-valued keys of context objects (``App(context=...)``, ``node.get_all_context()``), so an app that reads
    its context only through CDK never sees them (app.py reads the CLI's own context to keep them)."""
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
