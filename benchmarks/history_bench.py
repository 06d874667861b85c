"""History storage per run and `history`/`diff` times on a database of many recorded runs.

    .venv/bin/python benchmarks/history_bench.py [--flows 10000] [--runs 100] [--repeat 3]

Evaluates a check_generate.py map once, then records `--runs` runs of it, each with a
nightly drift (1% of transfers lose their basis, 1% of findings resolve, a different
random choice each run), into a fresh SQLite file and, if RESIDENCY_TEST_POSTGRES_URL is
set, a fresh PostgreSQL schema. Prints bytes per run (database size after the first run and
per further run), record time, and the wall time of `residency history` and `residency diff`
(newest pair, and the first run against the last) as whole processes, median of
`--repeat`. For comparison it also writes `--legacy-runs` runs in the schema-1 layout (one
table row per stored row), which is how every run was stored before chunks.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from residency.datamap import load_map
from residency.history import schema
from residency.history import store as st
from residency.model import Basis, Report
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PG_ENV = "RESIDENCY_TEST_POSTGRES_URL"


def base_report(flows: int) -> Report:
    path = OUT / f"check-{flows}.json"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "check_generate.py"), str(flows), "-o",
                        str(path)], check=True)
    pack = PolicyPack.load(None)
    return Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(load_map(path, pack))


def drifted(report: Report, seed: int) -> Report:
    """1% of transfers lose their basis and 1% of findings resolve (a run's drift)."""
    rnd = random.Random(seed)
    transfers = list(report.transfers)
    for i in rnd.sample(range(len(transfers)), len(transfers) // 100):
        t = transfers[i]
        transfers[i] = dataclasses.replace(t, bases=tuple((c, Basis("none")) for c, _ in t.bases))
    gone = set(rnd.sample(range(len(report.findings)), len(report.findings) // 100))
    findings = tuple(f for i, f in enumerate(report.findings) if i not in gone)
    return dataclasses.replace(report, transfers=tuple(transfers), findings=findings)


def size(url: str, engine: sa.Engine) -> int:
    if url.startswith("sqlite"):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int(pages) * int(page)
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )).scalar_one())


def legacy_record(store: st.Store, report: Report) -> None:
    """A run written the schema-1 way (rows in the per-kind tables), for comparison."""
    with store._write() as conn:
        run_id = int(conn.execute(schema.runs.insert().values(
            started_at=st._now(), finished_at=st._now(), command="check", scope="legacy",
            as_of=report.as_of, pack_name=report.pack.name, pack_version=report.pack.version,
            pack_last_checked=report.pack.last_checked, pack_digest=report.pack.digest,
            assumed_invalid=[], counts={}).returning(schema.runs.c.id)).scalar_one())
        resolved = dict(report.resolved)
        st._bulk(conn, schema.systems, ({k: v for k, v in st._system_row(
            run_id, i, s, resolved.get(s.id)).items() if k != "keys"}
            for i, s in enumerate(report.systems)))
        st._bulk(conn, schema.flows, (st._flow_row(run_id, i, f)
                                      for i, f in enumerate(report.flows)))
        st._bulk(conn, schema.transfers, st._transfer_rows(run_id, report.transfers))
        st._bulk(conn, schema.findings, (st._finding_row(run_id, i, f)
                                         for i, f in enumerate(report.findings)))


def timed(cmd: list[str], repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def bench(label: str, url: str, report: Report, args: argparse.Namespace) -> None:
    exe = str(Path(sys.executable).with_name("residency"))
    with st.Store.open(url) as store:
        empty = size(url, store.engine)
        start = time.perf_counter()
        store.record(report, command="check", scope="bench")
        first_s = time.perf_counter() - start
        first = size(url, store.engine) - empty
        start = time.perf_counter()
        for k in range(1, args.runs):
            store.record(drifted(report, k), command="check", scope="bench")
        rest_s = (time.perf_counter() - start) / max(args.runs - 1, 1)
        total = size(url, store.engine) - empty
        ids = [r.id for r in store.runs()]
    legacy = 0
    if args.legacy_runs and url.startswith("sqlite"):  # its own file, same engine settings
        old_url = url.replace("history.db", "legacy.db")
        with st.Store.open(old_url) as old:
            before = size(old_url, old.engine)
            for k in range(args.legacy_runs):
                legacy_record(old, drifted(report, 1000 + k))
            legacy = (size(old_url, old.engine) - before) // args.legacy_runs
    per_run = (total - first) // max(args.runs - 1, 1)
    hist = timed([exe, "history", "--db", url], args.repeat)
    newest = timed([exe, "diff", "--db", url], args.repeat)
    span = timed([exe, "diff", str(min(ids)), str(max(ids)), "--db", url], args.repeat)
    print(f"{label}: {args.runs} runs of {len(report.flows)} flows "
          f"({len(report.transfers)} transfers, {len(report.findings)} findings)")
    print(f"  first run            {first / 2**20:8.2f} MiB  recorded in {first_s:.2f} s")
    print(f"  each further run     {per_run / 2**10:8.1f} KiB  recorded in {rest_s:.2f} s")
    print(f"  database, {args.runs} runs  {total / 2**20:8.2f} MiB")
    if legacy:
        print(f"  schema-1 layout run  {legacy / 2**20:8.2f} MiB  (for comparison)")
    print(f"  residency history    {hist:8.2f} s")
    print(f"  residency diff       {newest:8.2f} s  (newest pair)")
    print(f"  residency diff A B   {span:8.2f} s  (run {min(ids)} against {max(ids)})",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--legacy-runs", type=int, default=3)
    args = ap.parse_args()
    report = base_report(args.flows)
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        bench("sqlite", f"sqlite:///{Path(tmp) / 'history.db'}", report, args)
    base = os.environ.get(PG_ENV)
    if not base:
        print(f"postgresql: skipped ({PG_ENV} not set)")
        return
    name = f"hb_{uuid.uuid4().hex[:10]}"
    url = sa.make_url(base).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        bench("postgresql", url.update_query_dict({"options": f"-csearch_path={name}"})
              .render_as_string(hide_password=False), report, args)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


if __name__ == "__main__":
    main()
