"""Typed, validated configuration built from the ``datalake`` key of the CDK context.

Every stack takes an :class:`AppConfig`; nothing reads context elsewhere. Validation collects every
problem first and raises one :class:`ConfigError` naming each bad key, its value and what is allowed,
so a typo never surfaces as a traceback from deep inside CDK.

Overrides: the whole object lives under ``context.datalake`` in ``cdk.json``; any leaf can be overridden
on the command line with a dotted key, e.g. ``-c datalake.stream.shard_count=4`` or
``-c datalake.notifications.alarm_emails='["oncall@example.com"]'`` (values are parsed as JSON when they
parse, else taken as strings).
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CONTEXT_KEY = "datalake"
SANDBOX_ACCOUNT_KEY = "sandbox_account"
SANDBOX_REGION_KEY = "sandbox_region"

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![/.])$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:(codestar-connections|codeconnections):"
    r"[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:connection/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"
)
_TABLE_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")

STREAM_MODES = ("PROVISIONED", "ON_DEMAND")
COMPRESSIONS = ("GZIP", "HADOOP_SNAPPY", "UNCOMPRESSED")
KEY_TYPES = ("S", "N", "B")
INVOCATIONS_PER_SHARD = 5
# Lambda refuses a reservation that leaves less than this unreserved in the account.
MIN_UNRESERVED_CONCURRENCY = 100
# Firehose waits at most 5 minutes for a transform invocation; a longer Lambda timeout only hides hangs.
LAMBDA_TIMEOUT_RANGE = (60, 300)


class ConfigError(ValueError):
    """One or more configuration values are invalid; ``problems`` holds one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in cdk.json context '{CONTEXT_KEY}' ({len(problems)}):\n{lines}")


@dataclass(frozen=True)
class Environment:
    account: str
    region: str

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


@dataclass(frozen=True)
class SourceConfig:
    repository: str
    branch: str
    connection_arn: str


@dataclass(frozen=True)
class TableConfig:
    name: str
    partition_key: str
    partition_key_type: str
    sort_key: str | None
    sort_key_type: str


@dataclass(frozen=True)
class StreamConfig:
    mode: str
    shard_count: int
    retention_hours: int


@dataclass(frozen=True)
class DeliveryConfig:
    buffer_interval_seconds: int
    buffer_size_mib: int
    compression: str


@dataclass(frozen=True)
class TransformConfig:
    memory_mb: int
    timeout_seconds: int
    account_concurrency_quota: int


@dataclass(frozen=True)
class NetworkConfig:
    vpc_cidr: str
    availability_zones: tuple[str, ...]


@dataclass(frozen=True)
class NotificationConfig:
    approval_emails: tuple[str, ...]
    alarm_emails: tuple[str, ...]


@dataclass(frozen=True)
class DataLakeConfig:
    noncurrent_version_expiration_days: int
    access_log_expiration_days: int


@dataclass(frozen=True)
class AppConfig:
    prefix: str
    tooling: Environment
    consumer: Environment
    producer: Environment
    source: SourceConfig
    table: TableConfig
    stream: StreamConfig
    delivery: DeliveryConfig
    transform: TransformConfig
    network: NetworkConfig
    notifications: NotificationConfig
    data_lake: DataLakeConfig

    @property
    def same_account(self) -> bool:
        return self.consumer.account == self.producer.account

    @property
    def reserved_transform_concurrency(self) -> int | None:
        """Firehose runs up to 5 transform invocations per source shard, so a provisioned stream's need is
        known and reserved. An on-demand stream's shard count changes on its own: no fixed reservation fits,
        so the function uses the account's unreserved pool."""
        if self.stream.mode != "PROVISIONED":
            return None
        return INVOCATIONS_PER_SHARD * self.stream.shard_count

    def for_sandbox(self, account: str, region: str | None = None) -> AppConfig:
        """The same app, both halves in one developer account (same-account mode)."""
        env = Environment(account=account, region=region or self.producer.region)
        problems = _env_problems("sandbox", env.account, env.region)
        if problems:
            raise ConfigError(problems)
        zones = tuple(env.region + z[len(self.producer.region) :] for z in self.network.availability_zones)
        return dataclasses.replace(
            self,
            tooling=env,
            consumer=env,
            producer=env,
            network=dataclasses.replace(self.network, availability_zones=zones),
        )


# --- loading ----------------------------------------------------------------------------------------------


class _Reader:
    """Reads typed leaves from the raw dict, recording (not raising) each problem with its dotted key."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def section(self, name: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, Mapping):
            self.problems.append(f"{CONTEXT_KEY}.{name} = {value!r}: must be an object with keys {list(allowed)}")
            return {}
        for unknown in sorted(set(value) - set(allowed)):
            self.problems.append(f"{CONTEXT_KEY}.{name}.{unknown}: unknown key; allowed keys are {list(allowed)}")
        return value

    def text(
        self,
        section: Mapping[str, Any],
        where: str,
        key: str,
        check: Callable[[str], bool],
        allowed: str,
        default: Any = None,
    ) -> str:
        value = section.get(key, default)
        if not isinstance(value, str) or not check(value):
            self.problems.append(f"{where}.{key} = {value!r}: must be {allowed}")
            return "" if not isinstance(value, str) else value
        return value

    def integer(
        self, section: Mapping[str, Any], where: str, key: str, low: int, high: int, default: int | None
    ) -> int:
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems.append(f"{where}.{key} = {value!r}: must be a whole number from {low} to {high}")
            return low
        return value

    def choice(self, section: Mapping[str, Any], where: str, key: str, choices: tuple[str, ...], default: str) -> str:
        value = section.get(key, default)
        if value not in choices:
            self.problems.append(f"{where}.{key} = {value!r}: must be one of {list(choices)}")
            return choices[0]
        return value

    def emails(self, section: Mapping[str, Any], where: str, key: str) -> tuple[str, ...]:
        value = section.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and _EMAIL.match(v) for v in value):
            self.problems.append(f"{where}.{key} = {value!r}: must be a list of e-mail addresses (name@domain.tld)")
            return ()
        return tuple(value)


def _env_problems(where: str, account: Any, region: Any) -> list[str]:
    problems = []
    # As a JSON number an account ID would lose its leading zeros, so only strings are accepted.
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        problems.append(f"{where}.account = {account!r}: must be a 12-digit AWS account ID, as a string")
    if not isinstance(region, str) or not _REGION.match(region):
        problems.append(f"{where}.region = {region!r}: must be an AWS region name such as 'eu-west-1'")
    return problems


def _environment(reader: _Reader, name: str) -> Environment:
    section = reader.section(name, ("account", "region"))
    account, region = section.get("account", ""), section.get("region", "")
    reader.problems.extend(_env_problems(f"{CONTEXT_KEY}.{name}", account, region))
    return Environment(account=str(account), region=str(region))


def _cidr_ok(value: str) -> bool:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return 16 <= net.prefixlen <= 24 and net.is_private


def from_dict(raw: Mapping[str, Any]) -> AppConfig:
    """Validate ``raw`` (the ``datalake`` context object) and build the config, or raise ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} = {raw!r}: must be an object (see cdk.json)"])
    r = _Reader(raw)
    top_keys = (
        "prefix",
        "tooling",
        "consumer",
        "producer",
        "source",
        "table",
        "stream",
        "delivery",
        "transform",
        "network",
        "notifications",
        "data_lake",
    )
    for unknown in sorted(set(raw) - set(top_keys)):
        r.problems.append(f"{CONTEXT_KEY}.{unknown}: unknown key; allowed keys are {list(top_keys)}")
    c = CONTEXT_KEY

    prefix = r.text(
        raw,
        c,
        "prefix",
        lambda v: bool(_PREFIX.match(v)),
        "3-20 characters of lower-case letters, digits and '-', starting with a letter "
        "(it becomes part of S3 bucket names)",
    )
    tooling, consumer, producer = (_environment(r, n) for n in ("tooling", "consumer", "producer"))

    s = r.section("source", ("repository", "branch", "connection_arn"))
    source = SourceConfig(
        repository=r.text(s, f"{c}.source", "repository", lambda v: bool(_REPOSITORY.match(v)), "'owner/name'"),
        branch=r.text(s, f"{c}.source", "branch", lambda v: bool(_BRANCH.match(v)), "a valid git branch name", "main"),
        connection_arn=r.text(
            s,
            f"{c}.source",
            "connection_arn",
            lambda v: bool(_CONNECTION_ARN.match(v)),
            "a CodeConnections ARN 'arn:aws:codeconnections:<region>:<account>:connection/<uuid>'",
        ),
    )

    t = r.section("table", ("name", "partition_key", "partition_key_type", "sort_key", "sort_key_type"))
    where = f"{c}.table"
    sort_key = t.get("sort_key")
    if sort_key is not None and (not isinstance(sort_key, str) or not _ATTRIBUTE.match(sort_key)):
        r.problems.append(f"{where}.sort_key = {sort_key!r}: must be null or an attribute name [A-Za-z0-9_.-]")
        sort_key = None
    table = TableConfig(
        name=r.text(
            t,
            where,
            "name",
            lambda v: bool(_TABLE_ID.match(v)),
            "1-40 characters of lower-case letters, digits and '_', starting with a letter "
            "(it names the table and its S3/Athena prefix)",
        ),
        partition_key=r.text(
            t, where, "partition_key", lambda v: bool(_ATTRIBUTE.match(v)), "an attribute name [A-Za-z0-9_.-]"
        ),
        partition_key_type=r.choice(t, where, "partition_key_type", KEY_TYPES, "S"),
        sort_key=sort_key,
        sort_key_type=r.choice(t, where, "sort_key_type", KEY_TYPES, "S"),
    )

    st = r.section("stream", ("mode", "shard_count", "retention_hours"))
    stream = StreamConfig(
        mode=r.choice(st, f"{c}.stream", "mode", STREAM_MODES, "PROVISIONED"),
        shard_count=r.integer(st, f"{c}.stream", "shard_count", 1, 500, 10),
        retention_hours=r.integer(st, f"{c}.stream", "retention_hours", 24, 8760, 24),
    )

    d = r.section("delivery", ("buffer_interval_seconds", "buffer_size_mib", "compression"))
    delivery = DeliveryConfig(
        buffer_interval_seconds=r.integer(d, f"{c}.delivery", "buffer_interval_seconds", 0, 900, 120),
        buffer_size_mib=r.integer(d, f"{c}.delivery", "buffer_size_mib", 1, 128, 1),
        compression=r.choice(d, f"{c}.delivery", "compression", COMPRESSIONS, "GZIP"),
    )

    fn = r.section("transform", ("memory_mb", "timeout_seconds", "account_concurrency_quota"))
    transform = TransformConfig(
        memory_mb=r.integer(fn, f"{c}.transform", "memory_mb", 128, 10240, 512),
        timeout_seconds=r.integer(fn, f"{c}.transform", "timeout_seconds", *LAMBDA_TIMEOUT_RANGE, 120),
        account_concurrency_quota=r.integer(fn, f"{c}.transform", "account_concurrency_quota", 10, 1_000_000, 1000),
    )
    reservable = transform.account_concurrency_quota - MIN_UNRESERVED_CONCURRENCY
    needed = INVOCATIONS_PER_SHARD * stream.shard_count
    if stream.mode == "PROVISIONED" and needed > reservable and not r.problems:
        r.problems.append(
            f"{c}.stream.shard_count = {stream.shard_count}: the transform reserves {INVOCATIONS_PER_SHARD} "
            f"concurrent executions per shard ({needed}), but {c}.transform.account_concurrency_quota = "
            f"{transform.account_concurrency_quota} leaves at most {max(reservable, 0)} reservable (Lambda keeps "
            f"{MIN_UNRESERVED_CONCURRENCY} unreserved); lower the shard count, raise the account's Lambda "
            "concurrency quota and this setting, or use stream mode ON_DEMAND"
        )

    n = r.section("network", ("vpc_cidr", "availability_zones"))
    vpc_cidr = r.text(
        n,
        f"{c}.network",
        "vpc_cidr",
        _cidr_ok,
        "a private IPv4 CIDR with a prefix from /16 to /24",
        "10.40.0.0/24",
    )
    zones = n.get("availability_zones", [])
    region_ok = bool(_REGION.match(producer.region))
    zones_ok = not region_ok or (
        isinstance(zones, list)
        and 2 <= len(zones) <= 6
        and len(set(zones)) == len(zones)
        and all(isinstance(z, str) and re.fullmatch(re.escape(producer.region) + r"[a-z]", z) for z in zones)
    )
    if not zones_ok:  # (a bad producer region is reported once, above)
        r.problems.append(
            f"{c}.network.availability_zones = {zones!r}: must list 2 to 6 distinct zones of the producer "
            f"region '{producer.region}', e.g. ['{producer.region}a', '{producer.region}b']"
        )
    network = NetworkConfig(
        vpc_cidr=vpc_cidr, availability_zones=tuple(zones) if zones_ok and isinstance(zones, list) else ()
    )

    no = r.section("notifications", ("approval_emails", "alarm_emails"))
    notifications = NotificationConfig(
        approval_emails=r.emails(no, f"{c}.notifications", "approval_emails"),
        alarm_emails=r.emails(no, f"{c}.notifications", "alarm_emails"),
    )

    dl = r.section("data_lake", ("noncurrent_version_expiration_days", "access_log_expiration_days"))
    data_lake = DataLakeConfig(
        noncurrent_version_expiration_days=r.integer(
            dl, f"{c}.data_lake", "noncurrent_version_expiration_days", 1, 3650, 90
        ),
        access_log_expiration_days=r.integer(dl, f"{c}.data_lake", "access_log_expiration_days", 1, 3650, 365),
    )

    if r.problems:
        raise ConfigError(r.problems)
    return AppConfig(
        prefix=prefix,
        tooling=tooling,
        consumer=consumer,
        producer=producer,
        source=source,
        table=table,
        stream=stream,
        delivery=delivery,
        transform=transform,
        network=network,
        notifications=notifications,
        data_lake=data_lake,
    )


def _parse_override(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def merge_overrides(base: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``datalake.a.b=value`` context keys on top of the ``datalake`` object."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    dotted = sorted(k for k in context if k.startswith(CONTEXT_KEY + "."))
    for key in dotted:
        path = key.split(".")[1:]
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        value = context[key]
        # A string leaf stays a string: '-c datalake.producer.account=012345678901' is not a number.
        node[path[-1]] = value if isinstance(node.get(path[-1]), str) else _parse_override(value)
    return merged


def load(context: Mapping[str, Any]) -> AppConfig:
    """Build the config from all CDK context values (``app.node.get_all_context()``)."""
    base = _parse_override(context.get(CONTEXT_KEY))
    if base is None:
        raise ConfigError([f"{CONTEXT_KEY}: missing; add the '{CONTEXT_KEY}' object to cdk.json's context"])
    if not isinstance(base, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} = {base!r}: must be an object (see cdk.json)"])
    return from_dict(merge_overrides(base, context))
