"""The declared columns of a source table's Athena table: names, exact JSON keys and types.

Everything that reads the lake uses this one list: the Glue table's columns and SerDe mappings
(consumer/catalog.py), the views and named queries (consumer/queries.py), and the DuckDB proof
(tests/integration/). Names are derived deterministically from the attribute path; JSON keys are exactly what
the transform writes (docs/transform-contract.md, "Column names").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from shared import naming
from shared.config import TableSpec

PARTITION_COLUMNS: tuple[str, ...] = tuple(column for column, _ in naming.DATE_PARTITIONS)

# Key values stay strings: exact digits of N keys and the base64 of B keys survive; casts are the analyst's.
_KEY_COLUMN_TYPES = {"S": "string", "N": "string", "B": "string"}

# The transform's metadata columns and their types (docs/transform-contract.md, "Metadata columns"); a test
# keeps the names equal to lambdas/transform/record.py's METADATA_COLUMNS, in order.
METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_event_name", "string"),
    ("_event_id", "string"),
    ("_table_name", "string"),
    ("_aws_region", "string"),
    # ISO-8601 text with microseconds, fixed width: compared as text (docs/lake-queries.md, "Ordering").
    ("_approximate_creation_time", "string"),
    # Decimal text of up to 129 digits: too long for BIGINT and DECIMAL(38).
    ("_sequence_number", "string"),
    ("_shard_id", "string"),
    ("_is_deleted", "boolean"),
    ("_is_ttl_delete", "boolean"),
    ("_origin", "string"),
)

# Names the views and queries add next to the table's columns (consumer/queries.py, and the lakehouse's
# consumer/lakehouse/sql.py: change time, arrival hour, whole line): no item column may take them, or a view or an
# Iceberg table would have two columns of one name.
QUERY_COLUMNS = ("_change_number", "_copy", "_state_rank", "_change_time", "_arrival_hour", "_line")
# Glue and Athena limit column names to 255 characters
# (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html).
MAX_NAME_LENGTH = 255

ColumnKind = Literal["metadata", "key", "item"]


@dataclass(frozen=True)
class Column:
    """One declared column: its Athena name, the exact JSON key the transform writes, and its Hive type."""

    name: str
    json_key: str
    type: str
    kind: ColumnKind


def escape_top_level(attribute: str) -> str:
    """The JSON key the transform writes for a top-level attribute (docs/transform-contract.md, "Column names");
    a test keeps it equal to lambdas/transform/flatten.py's top_level_column."""
    key = attribute.replace("%", "%25").replace(".", "%2E")
    return "%5F" + key[1:] if key.startswith("_") else key


def _unescape(json_key: str) -> str:
    """The attribute path of a JSON key, components joined with '.' (the reverse of the transform's escaping)."""
    return ".".join(
        re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part) for part in json_key.split(".")
    )


def athena_name(text: str) -> str:
    """Athena's column alphabet: lower case, every other character than [a-z0-9_] becomes '_' (Athena lower-cases
    names and accepts only these characters unquoted: docs page above)."""
    lowered = unicodedata.normalize("NFC", text).lower()
    return re.sub(r"[^a-z0-9_]", "_", lowered) or "_"


def _unique(candidate: str, taken: set[str]) -> str:
    """``candidate`` itself, or with the smallest suffix ``_2``, ``_3``, ... that is free, within 255 characters."""
    name = candidate[:MAX_NAME_LENGTH]
    n = 1
    while name in taken:
        n += 1
        suffix = f"_{n}"
        name = candidate[: MAX_NAME_LENGTH - len(suffix)] + suffix
    taken.add(name)
    return name


def table_columns(spec: TableSpec) -> tuple[Column, ...]:
    """Every declared column of ``spec``'s table, in a fixed order: metadata, keys, configured columns.

    Names are derived deterministically from the attribute path; a name already taken (by a metadata, partition
    or query column, or an earlier column) gets the smallest free suffix, so ``Status`` and ``status`` become
    ``status`` and ``status_2``. A JSON key declared twice (e.g. a key attribute also listed in ``columns``) is one
    column: the first declaration wins.
    """
    taken: set[str] = {*PARTITION_COLUMNS, *QUERY_COLUMNS}
    seen_keys: set[str] = set()
    columns: list[Column] = []

    def add(text: str, json_key: str, type_: str, kind: ColumnKind) -> None:
        if json_key in seen_keys:
            return
        seen_keys.add(json_key)
        columns.append(Column(_unique(athena_name(text), taken), json_key, type_, kind))

    for name, type_ in METADATA_COLUMNS:
        add(name, name, type_, "metadata")
    key_types = ((spec.partition_key, spec.partition_key_type), (spec.sort_key, spec.sort_key_type))
    for attribute, key_type in key_types:
        if attribute:
            add(attribute, escape_top_level(attribute), _KEY_COLUMN_TYPES[key_type], "key")
    for json_key, type_ in spec.columns.items():
        add(_unescape(json_key), json_key, re.sub(r"\s+", "", type_.strip().lower()), "item")
    return tuple(columns)


def key_columns(spec: TableSpec) -> tuple[Column, ...]:
    return tuple(c for c in table_columns(spec) if c.kind == "key")


# Hive DDL type names -> Trino type names, for the column lists of the views (a view's columns are in the
# engine's type system: https://docs.aws.amazon.com/athena/latest/ug/data-types.html lists both).
_SIMPLE_TYPES = {
    "string": "varchar",
    "int": "integer",
    "integer": "integer",
    "float": "real",
    "timestamp": "timestamp(3)",
}


def trino_type(hive_type: str) -> str:
    """``decimal(38,2)`` -> ``decimal(38,2)``, ``string`` -> ``varchar``, ``array<struct<a:int>>`` ->
    ``array(row(a integer))``."""
    text = re.sub(r"\s+", "", hive_type.lower())
    parsed, rest = _parse_type(text)
    if rest:
        raise ValueError(f"cannot read the Hive type {hive_type!r}")
    return parsed


def _parse_type(text: str) -> tuple[str, str]:
    match = re.match(r"[a-z]+", text)
    if not match:
        raise ValueError(f"cannot read the Hive type at {text!r}")
    name, rest = match.group(0), text[match.end() :]
    if name in ("array", "map", "struct") and rest.startswith("<"):
        args: list[str] = []
        rest = rest[1:]
        while True:
            if name == "struct":
                field, _, rest = rest.partition(":")
                inner, rest = _parse_type(rest)
                args.append(f"{field} {inner}")
            else:
                inner, rest = _parse_type(rest)
                args.append(inner)
            if rest.startswith(","):
                rest = rest[1:]
                continue
            if rest.startswith(">"):
                rest = rest[1:]
                break
            raise ValueError(f"cannot read the Hive type at {rest!r}")
        return f"{'row' if name == 'struct' else name}({', '.join(args)})", rest
    params = re.match(r"\(\d+(,\d+)?\)", rest)
    if params:
        return name + params.group(0), rest[params.end() :]
    return _SIMPLE_TYPES.get(name, name), rest
