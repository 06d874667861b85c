"""Schema 2: runs share content-addressed chunks; schema-1 databases stay readable."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from residency.cli.main import cli
from residency.history import chunks, schema
from residency.history.diff import diff, render_text
from residency.history.store import Store
from residency.model import KeyRef, Report

from .factory import KEY, finding, make_report, transfer

DATA = Path(__file__).parent / "data"
OLD_DB = DATA / "history-v1.db"
"""Two runs recorded by the schema-1 code (commit 34b87a6, tests/history/factory.py of then,
without keys): run 1 sends app-db to US and IN, run 2 to US and JP."""


def _count(store: Store, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)
                                .where(*where)).scalar_one())


def _unreferenced_chunks(store: Store) -> int:
    with store.engine.connect() as conn:
        used = {d for packed in conn.execute(sa.select(schema.run_chunks.c.digests)).scalars()
                for d in chunks.unpack_digests(packed)}
        return sum(d not in used for d in conn.execute(
            sa.select(schema.chunks.c.digest)).scalars())


def _old_reports() -> tuple[Report, Report]:
    """What the fixture's two runs held, rebuilt with today's factory minus the keys."""
    def without_keys(r: Report) -> Report:
        systems = tuple(dataclasses.replace(s, keys=()) for s in r.systems)
        return dataclasses.replace(r, systems=systems)

    a = make_report(transfers=(transfer("app-db", "US"),
                               transfer("app-db", "IN", basis="none", ref=None)),
                    findings=(finding("RES-T001", "app-db"),))
    b = make_report(transfers=(transfer("app-db", "US"),
                               transfer("app-db", "JP", basis="none", ref=None)),
                    findings=(finding("RES-T001", "app-db", countries=("JP",)),))
    return without_keys(a), without_keys(b)


def test_schema_1_database_is_upgraded_and_its_runs_read_back(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    shutil.copy(OLD_DB, db)
    with Store.open(str(db)) as store:
        assert store.schema_version() == schema.LATEST
        old_a, old_b = _old_reports()
        assert store.load_report(1) == old_a and store.load_report(2) == old_b
        d = diff(store, 1, 2)
        assert {r.country for r in d.new_transfers} == {"JP"}
        assert {r.country for r in d.resolved_transfers} == {"IN"}
        # a new run lands in chunks beside the old ones, and diffs against them
        new = store.record(make_report(transfers=(transfer("app-db", "US"),)),
                           command="check", scope="check:map.yaml")
        assert _count(store, schema.transfers) == 4  # the old runs' rows, untouched
        assert _count(store, schema.run_chunks, schema.run_chunks.c.run_id == new) > 0
        d = diff(store, 2, new)
        assert [r.country for r in d.resolved_transfers] == ["JP"]
        assert [c.system for c in d.changed_keys] == ["db"]  # no keys recorded before
        # prune removes an old-layout run's rows as well
        assert store.delete_before(dt.datetime.now(dt.UTC) + dt.timedelta(days=1), 1) == 2
        assert _count(store, schema.transfers) == 0 and _count(store, schema.systems) == 0
        assert [r.id for r in store.runs()] == [new]


def test_identical_runs_share_every_chunk(db_url: str) -> None:
    report = make_report(n_transfers=2000, findings=(finding("RES-T001", "bulk-1"),))
    with Store.open(db_url) as store:
        first = store.record(report, command="scan", scope="s")
        stored = _count(store, schema.chunks)
        second = store.record(report, command="scan", scope="s")
        assert _count(store, schema.chunks) == stored  # nothing new stored
        assert store.load_report(second) == report == store.load_report(first)
        with store.engine.connect() as conn:
            listed = conn.execute(sa.select(schema.run_chunks.c.digests).where(
                schema.run_chunks.c.run_id == second,
                schema.run_chunks.c.kind == "transfers")).scalar_one()
        refs = len(chunks.unpack_digests(listed))
        assert 2000 // chunks.MAX_ROWS < refs < 2000 // 4  # chunks, not rows, are listed


def test_a_changed_row_costs_only_its_chunk(db_url: str) -> None:
    rows = tuple(transfer(f"bulk-{i}", "US") for i in range(3000))
    changed = (*rows[:1500], transfer("bulk-1500", "IN"), *rows[1501:])
    inserted = (*rows[:700], transfer("new-flow", "BR"), *rows[700:])
    with Store.open(db_url) as store:
        a = store.record(make_report(rows), command="scan", scope="s")
        before = _count(store, schema.chunks, schema.chunks.c.kind == "transfers")
        b = store.record(make_report(changed), command="scan", scope="s")
        after_change = _count(store, schema.chunks, schema.chunks.c.kind == "transfers")
        c = store.record(make_report(inserted), command="scan", scope="s")
        after_insert = _count(store, schema.chunks, schema.chunks.c.kind == "transfers")
        assert before > 10
        # the changed row's chunk again (two if the new row's hash is itself a boundary)
        assert 1 <= after_change - before <= 2
        assert 1 <= after_insert - after_change <= 2  # boundaries follow content, not position
        moved = diff(store, a, b)  # bulk-1500 now goes to IN instead of US
        assert [(r.flow, r.country) for r in moved.new_transfers] == [("bulk-1500", "IN")]
        assert [(r.flow, r.country) for r in moved.resolved_transfers] == [("bulk-1500", "US")]
        assert [r.country for r in diff(store, a, c).new_transfers] == ["BR"]
        assert store.load_report(c).transfers == make_report(inserted).transfers


def test_prune_keeps_shared_chunks_and_drops_orphans(db_url: str) -> None:
    base = tuple(transfer(f"bulk-{i}", "US") for i in range(1500))
    with Store.open(db_url) as store:
        old = store.record(make_report((*base, transfer("gone", "IN"))),
                           command="scan", scope="s")
        keep = store.record(make_report(base), command="scan", scope="s")
        total = _count(store, schema.chunks)
        assert store.delete_before(dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                                   keep_last=1) == 1
        assert 0 < _count(store, schema.chunks) < total  # the old run's own chunks went
        assert _count(store, schema.run_chunks, schema.run_chunks.c.run_id == old) == 0
        assert store.load_report(keep) == make_report(base)
        assert _unreferenced_chunks(store) == 0


def test_keys_are_stored_and_a_moved_key_is_a_difference(db_url: str) -> None:
    moved = dataclasses.replace(KEY, arn="arn:aws:kms:eu-west-1:111:key/mrk-1",
                                region="eu-west-1", replica_regions=())
    report = make_report()
    db = next(s for s in report.systems if s.id == "db")
    assert db.keys == (KEY,)
    later = dataclasses.replace(report, systems=tuple(
        dataclasses.replace(s, keys=(moved,)) if s.id == "db" else s for s in report.systems))
    with Store.open(db_url) as store:
        a = store.record(report, command="scan", scope="s")
        b = store.record(later, command="scan", scope="s")
        assert store.load_report(a).systems == report.systems  # every KeyRef field back
        d = diff(store, a, b)
        assert not d.empty and [c.system for c in d.changed_keys] == ["db"]
        assert d.changed_keys[0].before == (KEY,) and d.changed_keys[0].after == (moved,)
        text = render_text(d)
        assert "Changed encryption keys" in text and "eu-west-1" in text
        assert diff(store, b, b).empty


def test_unknown_key_fields_of_a_later_version_are_ignored() -> None:
    from residency.history.store import _key

    assert _key({"key": "k", "region": "us-east-1", "future": 1}) == KeyRef(
        "k", region="us-east-1")


def test_cli_diff_shows_the_moved_key(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    report = make_report()
    later = dataclasses.replace(report, systems=tuple(
        dataclasses.replace(s, keys=(dataclasses.replace(KEY, region="ap-south-1"),))
        if s.id == "db" else s for s in report.systems))
    with Store.open(str(db)) as store:
        store.record(report, command="scan", scope="s")
        store.record(later, command="scan", scope="s")
    res = CliRunner().invoke(cli, ["diff", "--db", str(db)])
    assert "ap-south-1" in res.output and "Changed encryption keys" in res.output
    res = CliRunner().invoke(cli, ["diff", "--db", str(db), "--format", "json"])
    assert '"changed_keys"' in res.output
