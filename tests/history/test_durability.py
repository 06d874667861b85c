"""A writer killed mid-run leaves no half run; concurrent writers all land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from residency.history import schema
from residency.history.store import Store

from .factory import make_report

TESTS = Path(__file__).resolve().parents[1]

KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import sqlalchemy as sa
    from residency.history.store import Store
    from history.factory import make_report

    store = Store.open(sys.argv[1])
    store.record(make_report(n_transfers=10), command="scan", scope="scan:aws")
    print("FIRST", flush=True)

    def pause(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO RUN_CHUNKS"):
            print("SYNC", flush=True)  # mid-transaction: the run row and chunks are written
            time.sleep(120)

    sa.event.listen(store.engine, "after_cursor_execute", pause)
    store.record(make_report(n_transfers=20_000), command="scan", scope="scan:aws")
    print("UNREACHABLE", flush=True)
""")

WRITER = textwrap.dedent("""
    import sys
    from residency.history.store import Store
    from history.factory import make_report

    for _ in range(int(sys.argv[2])):
        with Store.open(sys.argv[1]) as store:
            store.record(make_report(n_transfers=3000), command="scan", scope=sys.argv[3])
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
        "PYTHONPATH", "")])}


def _rows(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _stored_transfers(store: Store) -> int:
    return sum(len(store.transfer_rows(r.id)) for r in store.runs())


def _unreferenced_chunks(store: Store) -> int:
    from residency.history.chunks import unpack_digests

    with store.engine.connect() as conn:
        used = {d for packed in conn.execute(sa.select(schema.run_chunks.c.digests)).scalars()
                for d in unpack_digests(packed)}
        return sum(d not in used for d in conn.execute(
            sa.select(schema.chunks.c.digest)).scalars())


def test_writer_killed_mid_transaction_leaves_only_complete_runs(db_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, db_url], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "FIRST"
        assert proc.stdout.readline().strip() == "SYNC", proc.stderr.read() if proc.stderr \
            else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    with Store.open(db_url) as store:
        runs = store.runs()
        assert [r.count("transfers") for r in runs] == [10]
        assert _stored_transfers(store) == 10
        assert _unreferenced_chunks(store) == 0  # the killed run's chunks rolled back too
        assert store.load_report(runs[0].id) == make_report(n_transfers=10)
        # still writable: the killed writer's lock died with it
        store.record(make_report(), command="scan", scope="scan:aws")
        assert len(store.runs()) == 2


def test_two_concurrent_writers_both_land(db_url: str) -> None:
    per_writer = 3
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, db_url, str(per_writer), scope],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for scope in ("scan:shard-1", "scan:shard-2")]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]  # wait for both first
    for proc, err in zip(procs, errors, strict=True):
        assert proc.returncode == 0, err
    with Store.open(db_url) as store:
        runs = store.runs()
        assert len(runs) == 2 * per_writer
        assert {r.scope for r in runs} == {"scan:shard-1", "scan:shard-2"}
        assert all(r.count("transfers") == 3000 for r in runs)
        assert _stored_transfers(store) == 2 * per_writer * 3000
        # six identical reports: the transfer rows are stored once and referenced six times
        with store.engine.connect() as conn:
            kinds = conn.execute(sa.select(schema.chunks.c.kind, sa.func.sum(
                schema.chunks.c.rows)).group_by(schema.chunks.c.kind)).all()
        assert dict(kinds)["transfers"] == 3000
        assert _rows(store, schema.transfers) == 0  # nothing in the pre-chunk table
