from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from residency.history import schema
from residency.history.store import HistoryError, Store, mask_url, resolve_url

from .factory import finding, make_report, transfer


def test_record_and_read_back_roundtrip(db_url: str) -> None:
    report = make_report(
        transfers=(transfer("app-db", "US"), transfer("app-db", "IN", basis="none", ref=None)),
        findings=(finding("RES-T001", "app-db"),),
    )
    with Store.open(db_url) as store:
        run_id = store.record(report, command="check", scope="check:map.yaml", shard="1/2")
        assert store.load_report(run_id) == report
        info = store.run(run_id)
        assert (info.command, info.scope, info.shard) == ("check", "check:map.yaml", "1/2")
        assert info.pack == report.pack and info.as_of == report.as_of
        assert info.count("error") == 1 and info.count("transfers") == 2
        assert info.finished_at.tzinfo is not None
        assert [r.id for r in store.runs()] == [run_id]


def test_inventory_rebuilds_model_objects_without_placeholders(db_url: str) -> None:
    from residency.model import Location, Origin, Role, System

    placeholder = System("ghost", "unknown", Role.PROCESSOR, Location(
        unknown_reason="ghost is outside the scanned inventory and the map"),
        origin=Origin.COLLECTED)
    report = make_report()
    report = type(report)(**{**{f: getattr(report, f) for f in report.__dataclass_fields__},
                             "systems": (*report.systems, placeholder)})
    with Store.open(db_url) as store:
        run_id = store.record(report, command="scan", scope="scan:aws")
        inv = store.load_inventory(run_id)
    assert [s.id for s in inv.systems] == ["app", "db", "odd"]
    assert inv.systems[1] == report.systems[1]
    assert inv.flows == report.flows and inv.gaps == report.gaps


def test_migrates_empty_database_and_reopens_idempotently(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert store.schema_version() == schema.LATEST
        inspector = sa.inspect(store.engine)
        for table in schema.METADATA.sorted_tables:
            got = {c["name"] for c in inspector.get_columns(table.name)}
            assert got == {c.name for c in table.columns}, table.name
        store.record(make_report(), command="check", scope="s")
    with Store.open(db_url) as store:
        assert store.schema_version() == schema.LATEST
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(
                schema.schema_version)).scalar() == len(schema.MIGRATIONS)
        assert len(store.runs()) == 1


def test_next_migration_is_one_function(tmp_path: Path) -> None:
    """A column or table marked since=2 is added by `add_since(conn, 2)` on an old database."""
    md = sa.MetaData()
    for table in schema.METADATA.sorted_tables:
        table.to_metadata(md)
    md.tables["runs"].append_column(sa.Column("note", sa.Text, info={"since": 2}))
    sa.Table("labels", md, sa.Column("run_id", sa.Integer), sa.Column("label", sa.Text),
             info={"since": 2})
    upgraded = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with upgraded.begin() as conn:
        schema.create_as_of(conn, 1, md)
        assert "note" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert "labels" not in sa.inspect(conn).get_table_names()
        schema.add_since(conn, 2, md)
    with fresh.begin() as conn:
        schema.create_as_of(conn, 2, md)

    def shape(engine: sa.Engine) -> dict[str, set[str]]:
        insp = sa.inspect(engine)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}

    assert shape(upgraded) == shape(fresh)
    assert "note" in shape(fresh)["runs"]
    upgraded.dispose()
    fresh.dispose()


def test_refuses_a_newer_schema(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(schema.schema_version.insert().values(
            version=99, description="future", applied_at=dt.datetime.now(dt.UTC)))
    with pytest.raises(HistoryError, match="schema version 99 is newer"):
        Store.open(db_url)


def test_default_database_is_created_under_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open() as store:
        store.record(make_report(), command="check", scope="s")
    assert (tmp_path / ".residency" / "history.db").is_file()


def test_url_forms() -> None:
    assert resolve_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("runs.db", Path("/x")).database == "/x/runs.db"
    with pytest.raises(HistoryError, match="unsupported database"):
        resolve_url("mysql://u:hunter2@h/db")
    assert "hunter2" not in mask_url("postgresql://u:hunter2@h/db")


def test_unreachable_database_error_is_one_line_and_masks_the_password() -> None:
    with pytest.raises(HistoryError) as err:
        Store.open("postgresql://user:s3cret@127.0.0.1:9/db")
    message = str(err.value)
    assert "s3cret" not in message and "\n" not in message
    assert "127.0.0.1:9/db" in message


def test_unknown_run_is_an_error(db_url: str) -> None:
    with Store.open(db_url) as store, pytest.raises(HistoryError, match="no run 42"):
        store.run(42)


def test_retention_keeps_the_newest(db_url: str) -> None:
    with Store.open(db_url) as store:
        ids = [store.record(make_report(), command="check", scope="s") for _ in range(3)]
        future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        assert store.delete_before(future, keep_last=1) == 2
        assert [r.id for r in store.runs()] == [ids[-1]]
        assert store.load_report(ids[-1]) == make_report()


def test_large_run_writes_in_seconds(db_url: str) -> None:
    # 100k on SQLite; PostgreSQL round trips make 100k take ~9 s here, so 30k keeps CI quick
    n = 100_000 if db_url.startswith("sqlite") else 30_000
    report = make_report(n_transfers=n)
    with Store.open(db_url) as store:
        start = time.perf_counter()
        run_id = store.record(report, command="scan", scope="scan:big")
        elapsed = time.perf_counter() - start
        assert store.run(run_id).count("transfers") == n
    assert elapsed < 20, f"{n} transfers took {elapsed:.1f}s"


def test_a_lock_sqlite_does_not_queue_is_tried_again() -> None:
    import sqlite3

    from residency.history.store import retry_locked

    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")

    retry_locked(step, sqlite3.OperationalError, timeout=5)
    assert len(calls) == 3


def test_other_errors_and_a_lock_past_the_timeout_are_raised() -> None:
    import sqlite3

    from residency.history.store import retry_locked

    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: runs")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_locked(broken, sqlite3.OperationalError, timeout=5)
    assert len(calls) == 1

    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retry_locked(locked, sqlite3.OperationalError, timeout=0.1)


def test_every_safeguard_field_survives_a_round_trip() -> None:
    """The store serialises `Safeguard` by its dataclass fields: a field added to the model
    (derogation conditions, Module 4's combined data) is never dropped on reload."""
    import dataclasses
    import datetime as dt

    from residency.history.store import _safeguard, _safeguard_json
    from residency.model import Safeguard, Tia

    sg = Safeguard(type="derogation", article="49(1)", conditions=frozenset({
        "authority_informed", "limited_data_subjects"}), combines_eu_data=True,
        signed=dt.date(2025, 1, 2), tia=Tia("T-1", dt.date(2025, 1, 1)))
    back = _safeguard(_safeguard_json(sg))
    assert back == sg
    assert {f.name for f in dataclasses.fields(Safeguard)} <= set(_safeguard_json(sg))
