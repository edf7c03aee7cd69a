"""Proof on a real engine: the SQL the stack deploys, run on DuckDB over the files Firehose would write, returns
exactly what the change stream says it must.

For every table of every configuration (and of one more configuration whose columns are as awkward as
DynamoDB allows), a realistic change stream (tests/integration/lake_stream.py) goes through the real transform
handler in Firehose-sized batches and is written as GZIP JSON Lines under the table's data prefix. DuckDB reads
the files as the deployed Glue tables declare and runs the deployed views' and named queries' SQL, translated
mechanically from Athena's dialect (tests/integration/duck.py). Every row and every number must equal the
ground truth the generator computed from the changes themselves.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

import app as app_module
from consumer.queries import TableQueries, quote
from consumer.stage import ConsumerStage
from consumer.views import decode_view
from shared import config, nag, naming
from shared.config import FIREHOSE_PROCESSOR_BUFFER_SECONDS, AppConfig, TableSpec
from shared.naming import TableNames
from tests import configs
from tests.conftest import template_of
from tests.integration import lake_stream
from tests.integration.duck import Lake, duckdb_type, glue_tables, named_queries

# Columns as awkward as DynamoDB allows: names differing only in case, an escaped leading '_', a dot inside a
# name next to a nested map of the same spelling, a non-ASCII name, 38-digit numbers, a nested decimal.
AWKWARD_COLUMNS = {
    "Status": "string",
    "status": "string",
    "%5Fversion": "bigint",
    "a%2Eb": "string",
    "a.b": "string",
    "größe": "string",
    "pointsMicros": "decimal(38,0)",
    "amount": "decimal(38,2)",
    "shipTo.geo.lat": "decimal(9,6)",
    "ratio": "double",
    "isGift": "boolean",
}


def awkward() -> dict[str, Any]:
    raw = configs.default()
    raw["tables"][0].update(
        name="events_v2",
        partition_key="_id",
        partition_key_type="S",
        sort_key="order.no",
        sort_key_type="N",
        columns=AWKWARD_COLUMNS,
    )
    raw["tables"].append(
        {"name": "blobs", "partition_key": "Id", "partition_key_type": "B", "columns": {"Id": "string"}}
    )
    return raw


@dataclass
class Proof:
    cfg: AppConfig
    spec: TableSpec
    names: TableNames
    stream: lake_stream.Stream
    lake: Lake
    columns: list[str]  # the table's column names, in order
    name_of: dict[str, str]  # JSON key -> column name, from the Glue table's mapping.* properties
    decimal_scale: dict[str, int]
    written: list[tuple[lake_stream.Put, bytes]]

    def row(self, put: lake_stream.Put) -> dict[str, Any]:
        """The ground truth row of one kept copy, by column name."""
        by_key = lake_stream.expected_row(put.change, put, self.names, self.cfg.producer.region)
        row = dict.fromkeys(self.columns)
        for key, value in by_key.items():
            row[self.name_of[key]] = value
        return row

    def query(self, name: str, parameters: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        sql = named_queries(self.lake.template)[name]["QueryString"]
        columns, rows = self.lake.query(sql, parameters)
        return [dict(zip(columns, r, strict=True)) for r in rows]

    def select(self, relation: str) -> list[dict[str, Any]]:
        cursor = self.lake.con.execute(f'SELECT * FROM "{naming.lake(self.cfg).database}"."{relation}"')
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]


def _exact(value: Any) -> Any:
    """Values compared exactly: a Decimal by its digits and scale, never through a float."""
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, float):
        return ("double", repr(value))
    return value


def _exact_row(row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, _exact(v)) for k, v in sorted(row.items()))


def _prove(cfg: AppConfig, template: dict[str, Any], root: Path) -> list[Proof]:
    lake_names = naming.lake(cfg)
    lake = Lake(template, lake_names.bucket, root)
    proofs = []
    for spec, names in naming.tables(cfg):
        stream = lake_stream.generate(spec)
        written = lake_stream.transform(stream, names, cfg.producer.region, cfg.producer.account)
        lake_stream.write_lake(root, written, names, cfg, spec)
        lake.register(lake_names.database, names.glue_table, names.lines_table)
        lake.register_view(names.raw_history_view)
        lake.register_view(names.raw_current_view)
        table = glue_tables(template)[names.glue_table]["TableInput"]
        serde = table["StorageDescriptor"]["SerdeInfo"]["Parameters"]
        declared = table["StorageDescriptor"]["Columns"]
        proofs.append(
            Proof(
                cfg=cfg,
                spec=spec,
                names=names,
                stream=stream,
                lake=lake,
                columns=[c["Name"] for c in declared],
                name_of={serde[f"mapping.{c['Name']}"]: c["Name"] for c in declared},
                decimal_scale={
                    c["Name"]: int(c["Type"].split(",")[1].rstrip(")"))
                    for c in declared
                    if c["Type"].startswith("decimal")
                },
                written=written,
            )
        )
    return proofs


@pytest.fixture(scope="module")
def matrix_proofs(synthesized, consumer, tmp_path_factory) -> list[Proof]:
    return _prove(synthesized.cfg, consumer.to_json(), tmp_path_factory.mktemp(f"lake-{synthesized.name}"))


def consumer_template(raw: dict[str, Any], outdir: Path) -> tuple[AppConfig, dict[str, Any]]:
    """The consumer stage alone, built as app.py builds it (feature flags, cdk-nag registered and enforced)."""
    app = App(context={**app_module.feature_flags(), config.CONTEXT_KEY: raw}, outdir=str(outdir))
    cfg = config.load(app.node.get_all_context())
    nag.register(app, cfg.compliance.packs)
    stage = ConsumerStage(app, "Consumer", cfg=cfg)
    app.synth()
    return cfg, template_of(stage.data_lake).to_json()


@pytest.fixture(scope="session")
def awkward_proofs(tmp_path_factory) -> list[Proof]:
    cfg, template = consumer_template(awkward(), tmp_path_factory.mktemp("cdk.out-awkward"))
    return _prove(cfg, template, tmp_path_factory.mktemp("lake-awkward"))


def _the_stream_has_every_hard_case(proofs: list[Proof]) -> None:
    for proof in proofs:
        stream = proof.stream
        changes = stream.changes
        assert {c.event_name for c in changes} == {"INSERT", "MODIFY", "REMOVE"}
        assert any(c.ttl for c in changes) and any(not c.ttl and c.event_name == "REMOVE" for c in changes)
        assert {c.origin for c in changes} == {"stream", "backfill"}
        shards = {p.shard for p in stream.deliveries}
        assert set(lake_stream.PARENT_SHARDS) <= shards and len(shards & set(lake_stream.CHILD_SHARDS)) >= 3
        # Duplicates of both kinds: the same Kinesis record again, and the same change under a new sequence number.
        copies: dict[str, set[tuple[str | None, int | None]]] = {}
        for put in stream.deliveries:
            copies.setdefault(put.change.event_id, set()).add((put.shard, put.sequence))
        assert len(stream.deliveries) > sum(len(c) for c in copies.values()) > len(changes)
        # Re-inserted after a delete.
        by_item: dict[int, list[str]] = {}
        for change in changes:
            by_item.setdefault(change.item, []).append(change.event_name)
        assert any("REMOVE" in names and names[-1] == "INSERT" for names in by_item.values())
        # Two changes of one item in one microsecond, sequence numbers of 55 and 56 digits.
        same = {}
        for put in lake_stream.kept_copies(stream).values():
            same.setdefault((put.change.item, put.change.time_us), []).append(put)
        pairs = [sorted(p.sequence or 0 for p in puts) for puts in same.values() if len(puts) == 2]
        assert any(len(str(low)) == 55 and len(str(high)) == 56 for low, high in pairs)
        # Within one millisecond across the reshard, the later change has the smaller sequence number: ordering by a
        # millisecond timestamp and then the sequence number would pick the wrong one.
        current = lake_stream.current(stream)
        history = lake_stream.history(stream)
        wrong = 0
        for key, winner in current.items():
            by_ms = max(history[key], key=lambda p: (p.change.time_us // 1000, lake_stream.sequence_key(p)))
            wrong += by_ms is not winner and by_ms.change.origin == winner.change.origin
        assert wrong >= 1
        # Late by far more than the buffers: arrival hours after the change.
        assert any(p.arrival_ms - p.change.time_us // 1000 > 2 * 3600 * 1000 for p in stream.deliveries)
        _only_the_last_tie_breakers_decide(stream)


def _only_the_last_tie_breakers_decide(stream: lake_stream.Stream) -> None:
    """The cases where only the sequence number's full width, its absence, or the event ID orders changes, each
    set up so that the wrong rule gives a different answer (checked here on the ground truth itself)."""
    kept = lake_stream.kept_copies(stream)
    history = lake_stream.history(stream)
    current = lake_stream.current(stream)
    # Equal time and equal sequence number: the event ID decides, both in the history (ascending) and for the
    # current state (the greatest).
    ties = [
        puts
        for puts in history.values()
        if any(
            a is not b and a.change.time_us == b.change.time_us and a.sequence == b.sequence is not None
            for a in puts
            for b in puts
        )
    ]
    assert ties
    for puts in ties:
        tied = [p for p in puts if p.change.time_us == puts[-1].change.time_us]
        assert [p.change.event_id for p in tied] == sorted(p.change.event_id for p in tied)
        assert current[lake_stream._key_of(puts[0].change)] is tied[-1]
    # Copies without a sequence number (replayed) next to copies with one: the one with the number is kept.
    mixed = [
        e
        for e in {p.change.event_id for p in stream.deliveries if p.sequence is None}
        if any(p.change.event_id == e and p.sequence is not None for p in stream.deliveries)
    ]
    assert mixed and all(kept[e].sequence is not None for e in mixed)
    # A change known only from a replay ties in time with one that has a sequence number and a smaller event ID:
    # it orders first and does not win.
    replay_only = [p for p in kept.values() if p.sequence is None]
    assert replay_only
    for put in replay_only:
        puts = history[lake_stream._key_of(put.change)]
        rivals = [p for p in puts if p.change.time_us == put.change.time_us and p is not put]
        assert rivals and all(r.change.event_id < put.change.event_id for r in rivals)
        assert puts.index(put) < min(puts.index(r) for r in rivals)
        assert current[lake_stream._key_of(put.change)] is not put
    # 129-digit and 128-digit sequence numbers: among the kept copies, and ordering one item's changes of equal
    # time, where the 129-digit one wins although its event ID is the smaller.
    lengths = {len(str(p.sequence)) for p in kept.values() if p.sequence is not None}
    assert {128, 129} <= lengths
    wide = [w for w in current.values() if w.sequence == lake_stream.SEQUENCE_129]
    assert len(wide) == 1
    (rival,) = [p for p in kept.values() if p.sequence == lake_stream.SEQUENCE_128]
    assert rival.change.time_us == wide[0].change.time_us and rival.change.event_id > wide[0].change.event_id
    # Copies of one change with a 129-digit and a 128-digit number: the 128-digit copy is kept.
    (event,) = {p.change.event_id for p in stream.deliveries if p.sequence == lake_stream.SEQUENCE_129 + 2}
    assert kept[event].sequence == lake_stream.SEQUENCE_128 + 3


def _history_view_is_every_distinct_change_numbered_in_order(proofs: list[Proof]) -> None:
    for proof in proofs:
        expected = []
        for puts in lake_stream.history(proof.stream).values():
            for n, put in enumerate(puts, start=1):
                expected.append({**proof.row(put), "_change_number": n})
        actual = proof.select(proof.names.raw_history_view)
        assert sorted(map(_exact_row, actual)) == sorted(map(_exact_row, expected)), proof.names.key


def _current_view_is_the_latest_state_with_deleted_items_removed(proofs: list[Proof]) -> None:
    for proof in proofs:
        expected = [proof.row(put) for put in lake_stream.current(proof.stream).values()]
        actual = proof.select(proof.names.raw_current_view)
        assert sorted(map(_exact_row, actual)) == sorted(map(_exact_row, expected)), proof.names.key
        # The cases the rule exists for.
        live_items = {c.item for c in proof.stream.changes if c.origin == "stream"}
        winners = {put.change.item: put.change for put in lake_stream.current(proof.stream).values()}
        assert all(w.origin == "stream" for item, w in winners.items() if item in live_items)
        assert any(w.origin == "backfill" for w in winners.values())


def _key_parameters(proof: Proof, put: lake_stream.Put) -> tuple[str, ...]:
    queries = TableQueries(spec=proof.spec, names=proof.names, lake=naming.lake(proof.cfg))
    row = proof.row(put)
    return tuple(row[name] for name in queries.item_history().parameters)


def _item_history_query_returns_each_items_changes_in_order(proofs: list[Proof]) -> None:
    for proof in proofs:
        name = f"{proof.names.glue_table}: one item's history"
        for puts in lake_stream.history(proof.stream).values():
            expected = [{**proof.row(put), "_change_number": n} for n, put in enumerate(puts, start=1)]
            actual = proof.query(name, _key_parameters(proof, puts[0]))
            assert list(map(_exact_row, actual)) == list(map(_exact_row, expected))


def _current_state_query_is_the_current_view_ordered_by_key(proofs: list[Proof]) -> None:
    for proof in proofs:
        keys = TableQueries(spec=proof.spec, names=proof.names, lake=naming.lake(proof.cfg)).item_history().parameters
        expected = sorted(
            (proof.row(put) for put in lake_stream.current(proof.stream).values()),
            key=lambda row: tuple(row[k].encode() for k in keys),
        )
        actual = proof.query(f"{proof.names.glue_table}: current state")
        assert list(map(_exact_row, actual)) == list(map(_exact_row, expected))


def _changes_per_hour_query_counts_distinct_changes_by_change_time(proofs: list[Proof]) -> None:
    start, end = lake_stream.WINDOW
    for proof in proofs:
        # Bound by the names the query declares, in its order (the documented start, end, start, end).
        buffer = proof.cfg.delivery_for(proof.spec).buffer_interval_seconds
        declared = TableQueries(spec=proof.spec, names=proof.names, lake=naming.lake(proof.cfg))
        names = declared.changes_per_hour(buffer).parameters
        assert names == ("window_start", "window_end", "window_start", "window_end")
        values = {"window_start": start, "window_end": end}
        rows = proof.query(f"{proof.names.glue_table}: changes per hour", tuple(values[n] for n in names))
        actual = [(r["change_hour"], r["_event_name"], r["changes"]) for r in rows]
        assert actual == lake_stream.changes_per_hour(proof.stream)
        assert {hour for hour, _, _ in actual} == {"2026-11-21T04", "2026-11-21T05", "2026-11-21T06", "2026-11-21T07"}


def _lines_table_holds_every_line_whole(proofs: list[Proof]) -> None:
    for proof in proofs:
        lines = [r["line"] for r in proof.select(proof.names.lines_table)]
        assert sorted(lines) == sorted(line.decode().rstrip("\n") for _, line in proof.written)
        # Attributes nobody declared are there, exactly as the transform wrote them.
        assert all('"undeclaredMeta.source":"generator"' in line for line in lines)


def _views_declare_exactly_the_columns_their_sql_returns(proofs: list[Proof]) -> None:
    # Athena reads a view's columns from its Glue definition: names and types must be what the SQL returns.
    tables = glue_tables(proofs[0].lake.template)
    for proof in proofs:
        for view in (proof.names.raw_history_view, proof.names.raw_current_view):
            con = proof.lake.con
            declared = [
                (c["Name"], con.execute(f"SELECT typeof(CAST(NULL AS {duckdb_type(c['Type'])}))").fetchone()[0])
                for c in tables[view]["TableInput"]["StorageDescriptor"]["Columns"]
            ]
            database = naming.lake(proof.cfg).database
            described = proof.lake.con.execute(f'DESCRIBE "{database}"."{view}"').fetchall()
            assert declared == [(row[0], row[1]) for row in described], view


def _saved_queries_are_named_and_described_for_their_table(proofs: list[Proof]) -> None:
    queries = named_queries(proofs[0].lake.template)
    for proof in proofs:
        table = proof.names.glue_table
        for suffix in ("one item's history", "current state", "changes per hour"):
            query = queries[f"{table}: {suffix}"]
            assert table in query["Description"] and query["Description"][:1].isupper(), query["Description"]


# Each check on every table of the configuration under test, and on the awkward configuration.
AWKWARD_CHECKS = (
    _saved_queries_are_named_and_described_for_their_table,
    _views_declare_exactly_the_columns_their_sql_returns,
    _the_stream_has_every_hard_case,
    _history_view_is_every_distinct_change_numbered_in_order,
    _current_view_is_the_latest_state_with_deleted_items_removed,
    _item_history_query_returns_each_items_changes_in_order,
    _current_state_query_is_the_current_view_ordered_by_key,
    _changes_per_hour_query_counts_distinct_changes_by_change_time,
    _lines_table_holds_every_line_whole,
)


def test_every_check_on_the_awkward_configuration(awkward_proofs):
    # One test for the one synthesis: `make mutation` runs, for each mutant of the SQL, the tests that called the
    # mutated code, and everything the proof's fixture calls is attributed to the first test that uses it.
    for check in AWKWARD_CHECKS:
        check(awkward_proofs)


def test_the_stream_has_every_hard_case(matrix_proofs):
    _the_stream_has_every_hard_case(matrix_proofs)


def test_history_view_is_every_distinct_change_numbered_in_order(matrix_proofs):
    _history_view_is_every_distinct_change_numbered_in_order(matrix_proofs)


def test_current_view_is_the_latest_state_with_deleted_items_removed(matrix_proofs):
    _current_view_is_the_latest_state_with_deleted_items_removed(matrix_proofs)


def test_item_history_query_returns_each_items_changes_in_order(matrix_proofs):
    _item_history_query_returns_each_items_changes_in_order(matrix_proofs)


def test_current_state_query_is_the_current_view_ordered_by_key(matrix_proofs):
    _current_state_query_is_the_current_view_ordered_by_key(matrix_proofs)


def test_changes_per_hour_query_counts_distinct_changes_by_change_time(matrix_proofs):
    _changes_per_hour_query_counts_distinct_changes_by_change_time(matrix_proofs)


def test_lines_table_holds_every_line_whole(matrix_proofs):
    _lines_table_holds_every_line_whole(matrix_proofs)


def test_the_sequence_width_is_kinesis_maximum_in_every_deployed_query(awkward_proofs):
    # The width as a number, not the module's constant: 129 digits (Kinesis pattern 0|([1-9]\d{0,128})). The proofs
    # above fail for any narrower width; this names the cause.
    proof = awkward_proofs[0]
    texts = [q["QueryString"] for q in named_queries(proof.lake.template).values()]
    views = glue_tables(proof.lake.template)
    texts += [
        decode_view(views[name]["TableInput"]["ViewOriginalText"])["originalSql"]
        for name in (proof.names.raw_history_view, proof.names.raw_current_view)
    ]
    for sql in texts:
        widths = set(re.findall(r'lpad\("_sequence_number", (\d+), \'0\'\)', sql))
        assert widths <= {"129"}, widths
    assert any("lpad" in sql for sql in texts)


def test_quote_doubles_quotes_inside_identifiers():
    assert quote('a"b') == '"a""b"' and quote("_x") == '"_x"'


@pytest.mark.parametrize("buffer_interval_seconds", [0, 120, 900])
def test_partition_margins_cover_both_buffers_and_an_hour(buffer_interval_seconds):
    # docs/lake-queries.md: arrival hours from start - (1 hour + 60 s + the S3 buffer interval) to end + 1 hour.
    spec = config.from_dict(configs.default()).tables[0]
    cfg = config.from_dict(configs.default())
    queries = TableQueries(spec=spec, names=naming.table(cfg, spec), lake=naming.lake(cfg))
    before = 3600 + FIREHOSE_PROCESSOR_BUFFER_SECONDS + buffer_interval_seconds
    assert queries.partition_margins(buffer_interval_seconds) == (before, 3600)
    sql = queries.changes_per_hour(buffer_interval_seconds).sql
    assert f"- INTERVAL '{before}' SECOND" in sql and "+ INTERVAL '3600' SECOND" in sql


def test_saved_query_construct_ids_are_stable():
    # They become the saved queries' logical IDs: renaming one replaces the deployed query.
    cfg = config.from_dict(configs.default())
    spec = cfg.tables[0]
    queries = TableQueries(spec=spec, names=naming.table(cfg, spec), lake=naming.lake(cfg)).named_queries(120)
    assert [q.construct_id for q in queries] == ["ItemHistory", "CurrentState", "ChangesPerHour"]


def test_decimal_columns_keep_every_digit(awkward_proofs):
    proof = awkward_proofs[0]
    rows = proof.select(proof.names.raw_history_view)
    points = [r["pointsmicros"] for r in rows if r["pointsmicros"] is not None]
    # Digits counted on the text: abs() would round to the default context's 28 digits.
    assert any(len(str(p).lstrip("-")) == 38 for p in points), "no 38-digit value was generated"
    assert all(isinstance(p, Decimal) for p in points)
    amounts = [r["amount"] for r in rows if r["amount"] is not None]
    assert any(len(str(a).lstrip("-").replace(".", "")) == 38 for a in amounts)
    assert all(a.as_tuple().exponent == -proof.decimal_scale["amount"] for a in amounts)


def test_only_projected_partitions_are_read(matrix_proofs):
    """The lake reads what Athena's projection generates: a year before data_lake.first_year, a year after the
    current one and a month without its leading zero are invisible, a projected hour is read at once (so the first
    three are not invisible merely because the files came late)."""
    proof = matrix_proofs[0]
    root, names, first = proof.lake.root, proof.names, proof.cfg.data_lake.first_year
    lines = f'"{naming.lake(proof.cfg).database}"."{names.lines_table}"'

    def count() -> int:
        return proof.lake.con.execute(f"SELECT count(*) FROM {lines}").fetchone()[0]

    before = count()
    body = proof.written[0][1]  # one transformed line
    data = root / names.root(naming.DATA)
    outside = [
        f"year={first - 1}/month=12/day=31/hour=23",
        f"year={datetime.now(UTC).year + 1}/month=01/day=01/hour=00",
        f"year={first}/month=1/day=01/hour=00",
    ]
    written = []
    try:
        for partition in outside:
            path = data / partition / "late.gz"
            path.parent.mkdir(parents=True)
            path.write_bytes(gzip.compress(body))
            written.append(path)
        assert count() == before
        inside = data / f"year={first}/month=01/day=01/hour=00" / "late.gz"
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_bytes(gzip.compress(body))
        written.append(inside)
        assert count() == before + 1
    finally:
        for path in written:
            path.unlink()
    assert count() == before
