"""Run history: write a finished report in one transaction, read runs back.

SQLite (a file under `.residency/`) by default, PostgreSQL for teams. A run is written in
a single transaction, so a writer killed mid-run leaves no half run behind; SQLite uses
WAL, `BEGIN IMMEDIATE` and a busy timeout so concurrent writers queue instead of failing.
A run's rows are stored as content-addressed chunks (`history/chunks.py`) that later runs
share where nothing changed; runs recorded before schema 2 are read from the old tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from residency.errors import ResidencyError
from residency.history import chunks as c
from residency.history import schema as t
from residency.model import (
    OUTSIDE_INVENTORY,
    Basis,
    CoverageGap,
    Finding,
    Flow,
    Inventory,
    KeyRef,
    Location,
    Origin,
    PackInfo,
    Report,
    ResolvedLocation,
    Role,
    Safeguard,
    Severity,
    System,
    Tia,
    Transfer,
)

DEFAULT_PATH = Path(".residency") / "history.db"
BUSY_TIMEOUT_S = 60
LAYOUT_CHUNKS = 2
_PG_WRITE_LOCK = 7318202  # record and prune exclude each other (orphan chunks)
_PLACEHOLDER_REASON = OUTSIDE_INVENTORY


class HistoryError(ResidencyError):
    """The history database cannot be opened, read or written."""


# ---------------------------------------------------------------------- URLs
def resolve_url(url: str | None, cwd: Path | None = None) -> sa.URL:
    """Turn `--db` into a SQLAlchemy URL: default file, bare path, sqlite or PostgreSQL."""
    base = cwd or Path.cwd()
    if not url:
        return sa.make_url(f"sqlite:///{base / DEFAULT_PATH}")
    if "://" not in url:
        path = Path(url)
        return sa.make_url(f"sqlite:///{path if path.is_absolute() else base / path}")
    try:
        parsed = sa.make_url(url)
        parsed.port  # noqa: B018 - an unparseable port (`:54x32`) raises here, not at connect
    except (sa.exc.ArgumentError, ValueError, TypeError):
        raise HistoryError(f"{mask_url(url)}: not a database URL (expected sqlite:///FILE "
                           "or postgresql://USER@HOST:PORT/DB)") from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise HistoryError(f"{mask_url(url)}: unsupported database (use sqlite or postgresql)")
    return parsed


def mask_url(url: str | sa.URL) -> str:
    """The URL with any password replaced, safe for messages and logs."""
    if isinstance(url, sa.URL):
        return url.render_as_string(hide_password=True)
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # unparseable: drop anything between "://" and "@" rather than risk echoing a secret
        head, sep, rest = url.partition("://")
        return f"{head}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url


# ---------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class RunInfo:
    """One stored run's header."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime
    command: str
    scope: str
    shard: str | None
    as_of: dt.date
    pack: PackInfo
    map_source: str | None
    map_digest: str | None
    counts: tuple[tuple[str, int], ...]

    def count(self, key: str) -> int:
        return dict(self.counts).get(key, 0)


@dataclass(frozen=True, slots=True)
class TransferRow:
    """One transfer to one country, as stored (the unit diffs compare)."""

    flow: str
    regime: str
    exporter: str
    importer: str
    exporter_party: str
    importer_party: str
    country: str
    basis_kind: str
    basis_reference: str | None
    data_categories: tuple[str, ...]
    onward: bool
    same_entity: bool

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.flow, self.regime, self.country, self.exporter, self.importer)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while rows are turned into objects.

    Loading a run builds some 100,000 acyclic objects, and each allocation burst set off a
    full collection: with it on, `diff` of two 10,000-flow runs took twice the CPU.
    Reference counting still frees everything; the collector resumes afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---------------------------------------------------------------------- the store
class Store:
    """A handle on one history database; open with `Store.open(url)`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.url = mask_url(engine.url)

    # -------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, url: str | None = None, *, cwd: Path | None = None) -> Store:
        """Connect, creating the database (and its directory) or upgrading its schema."""
        target = resolve_url(url, cwd)
        store = cls(_make_engine(target))
        try:
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> Any:
        """A write transaction: `BEGIN IMMEDIATE` on SQLite so writers queue on the lock."""
        return self.engine.execution_options(residency_write=True).begin()

    def _guard(self, what: str) -> _Guard:
        return _Guard(self.url, what)

    def _migrate(self) -> None:
        with self._guard("cannot open"):
            if self.engine.dialect.name == "sqlite":
                # idempotent, so a lock lost to a concurrent opener is simply tried again
                retry_locked(self._migrate_once, sa.exc.OperationalError)
            else:
                self._migrate_once()

    def _migrate_once(self) -> None:
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                # concurrent first opens must not both create the tables
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7318201)"))
            t.schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar()
            current = current or 0
            if current > t.LATEST:
                raise HistoryError(f"{self.url}: schema version {current} is newer than this "
                                   f"residency supports ({t.LATEST}); upgrade residency")
            for mig in t.MIGRATIONS:
                if mig.version > current:
                    mig.upgrade(conn)
                    conn.execute(t.schema_version.insert().values(
                        version=mig.version, description=mig.description,
                        applied_at=_now()))

    def schema_version(self) -> int:
        with self._guard("cannot read"), self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar()
                       or 0)

    # -------------------------------------------------------------- writing
    def record(
        self,
        report: Report,
        *,
        command: str,
        scope: str,
        shard: str | None = None,
        started_at: dt.datetime | None = None,
    ) -> int:
        """Store a finished report as a new run, all or nothing; returns the run id."""
        finished = _now()
        counts = report.counts() | {
            "systems": len(report.systems),
            "transfers": len(report.transfers),
            "gaps": len(report.gaps),
            "findings": len(report.findings),
        }
        with self._guard("cannot record a run in"), self._write() as conn:
            _pg_lock(conn)
            run_id = int(conn.execute(
                t.runs.insert().values(
                    started_at=started_at or finished, finished_at=finished, command=command,
                    scope=scope, shard=shard, as_of=report.as_of, pack_name=report.pack.name,
                    pack_version=report.pack.version,
                    pack_last_checked=report.pack.last_checked,
                    pack_digest=report.pack.digest, map_source=report.map_source,
                    map_digest=report.map_digest,
                    assumed_invalid=list(report.assumed_invalid), counts=counts,
                    layout=LAYOUT_CHUNKS,
                ).returning(t.runs.c.id)
            ).scalar_one())
            for kind, rows in _content(report):
                _store_chunks(conn, run_id, kind, rows)
        return run_id

    def delete_before(self, cutoff: dt.datetime, keep_last: int = 0) -> int:
        """Retention: drop runs finished before `cutoff`, keeping the newest `keep_last`."""
        with self._guard("cannot prune"), self._write() as conn:
            _pg_lock(conn)
            newest = sa.select(t.runs.c.id).order_by(t.runs.c.id.desc()).limit(keep_last)
            keep = set(conn.execute(newest).scalars()) if keep_last else set()
            old = sa.select(t.runs.c.id).where(t.runs.c.finished_at < cutoff)
            doomed = [r for r in conn.execute(old).scalars() if r not in keep]
            for i in range(0, len(doomed), _IN_BATCH):
                some = doomed[i:i + _IN_BATCH]
                for table in (*t.CHILD_TABLES, t.run_chunks):
                    conn.execute(table.delete().where(table.c.run_id.in_(some)))
                conn.execute(t.runs.delete().where(t.runs.c.id.in_(some)))
            if doomed:
                _drop_orphan_chunks(conn)
        return len(doomed)

    # -------------------------------------------------------------- reading runs
    def runs(self, limit: int | None = None, scope: str | None = None) -> list[RunInfo]:
        """Stored runs, newest first."""
        query = sa.select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)
        if scope is not None:
            query = query.where(t.runs.c.scope == scope)
        with self._guard("cannot read"), self.engine.connect() as conn:
            return [_run_info(r) for r in conn.execute(query).mappings()]

    def run(self, run_id: int) -> RunInfo:
        with self._guard("cannot read"), self.engine.connect() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise HistoryError(f"{self.url}: no run {run_id} (see `residency history`)")
        return _run_info(row)

    def previous(self, run_id: int) -> RunInfo | None:
        """The run before `run_id` with the same scope, if any."""
        scope = self.run(run_id).scope
        query = (sa.select(t.runs).where(t.runs.c.scope == scope, t.runs.c.id < run_id)
                 .order_by(t.runs.c.id.desc()).limit(1))
        with self._guard("cannot read"), self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _run_info(row) if row is not None else None

    def last_pair(self) -> tuple[RunInfo, RunInfo]:
        """The newest run and the one before it with the same scope."""
        latest = self.runs(limit=1)
        if not latest:
            raise HistoryError(f"{self.url}: no runs recorded yet")
        before = self.previous(latest[0].id)
        if before is None:
            raise HistoryError(f"{self.url}: run {latest[0].id} is the only run of scope "
                               f"{latest[0].scope!r}; nothing to compare with")
        return before, latest[0]

    # -------------------------------------------------------------- reading content
    def transfer_rows(self, run_id: int) -> list[TransferRow]:
        rows = self._children(t.transfers, run_id, t.transfers.c.seq, t.transfers.c.pos)
        with gc_paused():
            return self._transfer_rows(rows)

    @staticmethod
    def _transfer_rows(rows: list[Mapping[Any, Any]]) -> list[TransferRow]:
        return [
            TransferRow(r["flow"], r["regime"], r["exporter"], r["importer"],
                        r["exporter_party"], r["importer_party"], r["country"],
                        r["basis_kind"], r["basis_reference"], tuple(r["data_categories"]),
                        r["onward"], r["same_entity"])
            for r in rows
        ]

    def findings(self, run_id: int) -> list[Finding]:
        rows = self._children(t.findings, run_id, t.findings.c.seq)
        with gc_paused():
            return [_finding(r) for r in rows]

    def systems(self, run_id: int, *, placeholders: bool = False) -> list[System]:
        """A run's systems alone (what `diff` compares), without its flows and gaps."""
        self.run(run_id)
        systems = [s for s, _ in self._systems(run_id)]
        return systems if placeholders else [s for s in systems if not _is_placeholder(s)]

    def load_inventory(self, run_id: int, *, placeholders: bool = False) -> Inventory:
        """A run's systems, flows and gaps as model objects (for merging shard runs).

        Systems the engine invented for flow ends outside the inventory are left out
        unless asked for: another shard usually holds the real system.
        """
        self.run(run_id)
        systems = [s for s, _ in self._systems(run_id)]
        if not placeholders:
            systems = [s for s in systems if not _is_placeholder(s)]
        flows = [_flow(r) for r in self._children(t.flows, run_id, t.flows.c.seq)]
        gaps = [CoverageGap(r["provider"], r["scope"], r["reason"])
                for r in self._children(t.gaps, run_id, t.gaps.c.seq)]
        return Inventory(tuple(systems), tuple(flows), tuple(gaps))

    def load_report(self, run_id: int) -> Report:
        """The stored run rebuilt as the `Report` that was recorded."""
        info = self.run(run_id)
        with self._guard("cannot read"), self.engine.connect() as conn:
            head = conn.execute(sa.select(t.runs.c.assumed_invalid)
                                .where(t.runs.c.id == run_id)).scalar_one()
        pairs = self._systems(run_id)
        inv = self.load_inventory(run_id, placeholders=True)
        return Report(
            as_of=info.as_of, pack=info.pack, systems=tuple(s for s, _ in pairs),
            resolved=tuple((s.id, r) for s, r in pairs if r is not None),
            flows=inv.flows, transfers=tuple(self._transfers(run_id)),
            findings=tuple(self.findings(run_id)), gaps=inv.gaps,
            assumed_invalid=tuple(head), map_source=info.map_source,
            map_digest=info.map_digest,
        )

    def _children(self, table: sa.Table, run_id: int, *order: sa.ColumnElement[Any]
                  ) -> list[Mapping[Any, Any]]:
        """A run's rows of one kind, in stored order, from its chunks or (runs recorded
        before schema 2) from the kind's own table."""
        with self._guard("cannot read"), self.engine.connect() as conn, gc_paused():
            layout = conn.execute(sa.select(t.runs.c.layout)
                                  .where(t.runs.c.id == run_id)).scalar()
            if layout != LAYOUT_CHUNKS:
                return list(conn.execute(
                    sa.select(table).where(table.c.run_id == run_id).order_by(*order))
                    .mappings())
            rows: list[dict[str, Any]] = []
            for body in _bodies(conn, run_id, table.name):
                rows += c.rows_of(body)
            return _numbered(table.name, run_id, rows)

    def _systems(self, run_id: int) -> list[tuple[System, ResolvedLocation | None]]:
        return [_system(r) for r in self._children(t.systems, run_id, t.systems.c.seq)]

    def _transfers(self, run_id: int) -> Iterator[Transfer]:
        rows = self._children(t.transfers, run_id, t.transfers.c.seq, t.transfers.c.pos)
        group: list[Mapping[Any, Any]] = []
        for row in rows:
            if group and row["seq"] != group[0]["seq"]:
                yield _transfer(group)
                group = []
            group.append(row)
        if group:
            yield _transfer(group)


class _Guard:
    """Turn driver errors into one-line HistoryErrors naming the (masked) URL."""

    def __init__(self, url: str, what: str) -> None:
        self.url = url
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, sa.exc.DBAPIError):
            detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else \
                type(exc.orig).__name__
            raise HistoryError(f"{self.url}: {self.what} the history database: {detail}") \
                from None
        if isinstance(exc, sa.exc.SQLAlchemyError):
            raise HistoryError(f"{self.url}: {self.what} the history database: "
                               f"{str(exc).splitlines()[0]}") from None


# ---------------------------------------------------------------------- engine set-up
def _make_engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        return sa.create_engine(url, pool_pre_ping=True,
                                connect_args={"connect_timeout": 10})
    except (ImportError, sa.exc.NoSuchModuleError):
        raise HistoryError(f"{mask_url(url)}: the PostgreSQL driver is missing; install "
                           "residency[history]") from None


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"{path.parent}: cannot create the history directory: "
                               f"{exc.strerror}") from None
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # take transaction control from the driver so BEGIN IMMEDIATE is possible
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        retry_locked(lambda: cur.execute("PRAGMA journal_mode=WAL"), sqlite3.OperationalError)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("residency_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def retry_locked(step: Callable[[], object], error: type[Exception],
                 timeout: float = BUSY_TIMEOUT_S) -> None:
    """Run `step`, again while SQLite answers "database is locked", for up to `timeout`.

    SQLite's busy handler does not cover every lock: switching a file to WAL, or opening it
    while another process's last connection checkpoints it on close, can fail at once. Seen
    in CI as "cannot open the history database: database is locked" with two concurrent
    writers; the busy timeout alone did not queue them."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            step()
            return
        except error as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


# ---------------------------------------------------------------------- chunks
_BATCH = 5000
_IN_BATCH = 500  # values in one IN (...) list


def _pg_lock(conn: sa.Connection) -> None:
    """On PostgreSQL, writers and prune take turns (SQLite's BEGIN IMMEDIATE already does):
    prune must not delete a chunk a concurrent writer has just found and refers to."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})"))


def _content(report: Report) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
    """(kind, rows) for each child table; rows without run_id and seq (their place in the
    run is their order), so an unchanged row is the same bytes in every run."""
    resolved = dict(report.resolved)
    yield "systems", (_system_row(0, 0, s, resolved.get(s.id)) for s in report.systems)
    yield "flows", (_flow_row(0, 0, f) for f in report.flows)
    yield "transfers", _transfer_rows(0, report.transfers)
    yield "findings", (_finding_row(0, 0, f) for f in report.findings)
    yield "gaps", ({"provider": g.provider, "scope": g.scope, "reason": g.reason}
                   for g in report.gaps)


def _store_chunks(conn: sa.Connection, run_id: int, kind: str,
                  rows: Iterator[dict[str, Any]]) -> None:
    first = next(rows, None)
    if first is None:
        return
    columns = [k for k in first if k not in ("run_id", "seq")]

    def values() -> Iterator[list[Any]]:
        for row in _chain_one(first, rows):
            yield [row[k] for k in columns]

    cut = list(c.cut(kind, columns, values()))
    digests = sorted({ch.digest for ch in cut})
    have: set[str] = set()
    for i in range(0, len(digests), _IN_BATCH):
        have.update(conn.execute(sa.select(t.chunks.c.digest).where(
            t.chunks.c.digest.in_(digests[i:i + _IN_BATCH]))).scalars())
    new = {ch.digest: ch for ch in cut if ch.digest not in have}
    _bulk(conn, t.chunks, ({"digest": ch.digest, "kind": kind, "rows": ch.rows,
                            "body": ch.body()} for ch in new.values()), batch_size=64)
    conn.execute(t.run_chunks.insert().values(
        run_id=run_id, kind=kind, digests=c.pack_digests(ch.digest for ch in cut)))


def _bodies(conn: sa.Connection, run_id: int, kind: str) -> Iterator[bytes]:
    """The bodies of a run's chunks of one kind, in the run's order."""
    packed = conn.execute(sa.select(t.run_chunks.c.digests).where(
        t.run_chunks.c.run_id == run_id, t.run_chunks.c.kind == kind)).scalar()
    order = c.unpack_digests(packed or b"")
    found: dict[str, bytes] = {}
    wanted = sorted(set(order))
    for i in range(0, len(wanted), _IN_BATCH):
        rows = conn.execute(sa.select(t.chunks.c.digest, t.chunks.c.body).where(
            t.chunks.c.digest.in_(wanted[i:i + _IN_BATCH])))
        found.update((d, b) for d, b in rows)  # a Result has keys(): not a pair iterable
    for digest in order:
        body = found.get(digest)
        if body is None:  # never expected: prune and writers take turns
            raise HistoryError(f"run {run_id}: stored chunk {digest} of its {kind} is missing")
        yield body


def _drop_orphan_chunks(conn: sa.Connection) -> None:
    """Delete the chunks no remaining run lists (after runs were pruned)."""
    used: set[str] = set()
    for packed in conn.execute(sa.select(t.run_chunks.c.digests)).scalars():
        used.update(c.unpack_digests(packed))
    orphans = [d for d in conn.execute(sa.select(t.chunks.c.digest)).scalars()
               if d not in used]
    for i in range(0, len(orphans), _IN_BATCH):
        conn.execute(t.chunks.delete().where(t.chunks.c.digest.in_(orphans[i:i + _IN_BATCH])))


def _chain_one(first: dict[str, Any], rest: Iterator[dict[str, Any]]
               ) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _numbered(kind: str, run_id: int, rows: list[dict[str, Any]]) -> list[Mapping[Any, Any]]:
    """Give chunk rows back the run_id and seq the old tables had (transfers: a new seq
    at each country position 0)."""
    seq = -1
    transfers = kind == "transfers"
    for row in rows:
        if not transfers or row["pos"] == 0:
            seq += 1
        row["run_id"] = run_id
        row["seq"] = seq
    return list(rows)


# ---------------------------------------------------------------------- rows <-> model


def _bulk(conn: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]],
          batch_size: int = _BATCH) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite drops the zone


def _run_info(r: Mapping[Any, Any]) -> RunInfo:
    return RunInfo(
        id=r["id"], started_at=_utc(r["started_at"]), finished_at=_utc(r["finished_at"]),
        command=r["command"], scope=r["scope"], shard=r["shard"], as_of=r["as_of"],
        pack=PackInfo(r["pack_name"], r["pack_version"], r["pack_last_checked"],
                      r["pack_digest"]),
        map_source=r["map_source"], map_digest=r["map_digest"],
        counts=tuple(sorted((str(k), int(v)) for k, v in r["counts"].items())),
    )


def _system_row(run_id: int, seq: int, s: System, res: ResolvedLocation | None
                ) -> dict[str, Any]:
    return {
        "run_id": run_id, "seq": seq, "id": s.id, "party": s.party, "role": s.role.value,
        "provider": s.location.provider, "regions": list(s.location.regions),
        "location_countries": sorted(s.location.countries),
        "unknown_reason": s.location.unknown_reason,
        "countries": sorted(res.countries) if res else None,
        "any_country": res.any_country if res else None,
        "unresolved": res.unresolved if res else None,
        "access_from": sorted(s.access_from), "data_categories": sorted(s.data_categories),
        "regimes": sorted(s.regimes), "origin": s.origin.value, "classified": s.classified,
        "name": s.name, "resource_id": s.resource_id, "account": s.account,
        "tags": [list(kv) for kv in s.tags], "source_file": s.source_file,
        "keys": [_fields_json(k) for k in s.keys],
    }


def _system(r: Mapping[Any, Any]) -> tuple[System, ResolvedLocation | None]:
    system = System(
        id=r["id"], party=r["party"], role=Role(r["role"]),
        location=Location(frozenset(r["location_countries"]), r["provider"],
                          tuple(r["regions"]), r["unknown_reason"]),
        data_categories=frozenset(r["data_categories"]),
        access_from=frozenset(r["access_from"]), regimes=frozenset(r["regimes"]),
        origin=Origin(r["origin"]), classified=r["classified"], name=r["name"],
        resource_id=r["resource_id"], account=r["account"],
        tags=tuple((k, v) for k, v in r["tags"]), source_file=r["source_file"],
        keys=tuple(_key(k) for k in r.get("keys") or ()),  # runs before schema 2: none
    )
    resolved = None
    if r["countries"] is not None:
        resolved = ResolvedLocation(frozenset(r["countries"]), bool(r["any_country"]),
                                    r["unresolved"])
    return system, resolved


def _fields_json(obj: Any) -> dict[str, Any]:
    """A flat frozen dataclass as JSON (tuples as lists), by its fields."""
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj)}


def _key(d: Mapping[str, Any]) -> KeyRef:
    names = {f.name for f in dataclasses.fields(KeyRef)}
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in d.items() if k in names}  # unknown: a later version
    return KeyRef(**kwargs)


def _is_placeholder(s: System) -> bool:
    reason = s.location.unknown_reason or ""
    return s.party == "unknown" and s.origin is Origin.COLLECTED and _PLACEHOLDER_REASON in reason


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _undate(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _safeguard_json(sg: Safeguard) -> dict[str, Any]:
    """Every field of the model's `Safeguard`, by its dataclass fields (one definition:
    a field added to the model is stored without a change here)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Safeguard):
        value = getattr(sg, f.name)
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, Tia):
            value = {"ref": value.ref, "date": _date(value.date)}
        out[f.name] = value
    return out


_SG_DATES = frozenset({"signed", "expires", "approved"})


def _safeguard(d: dict[str, Any]) -> Safeguard:
    names = {f.name for f in dataclasses.fields(Safeguard)}
    kwargs: dict[str, Any] = {}
    for key, raw in d.items():
        if key not in names:
            continue  # a field a later version stored: ignored by this one
        value: Any = raw
        if key in _SG_DATES:
            value = _undate(raw)
        elif key == "tia":
            value = Tia(raw["ref"], _undate(raw.get("date"))) if raw else None
        elif isinstance(raw, list):
            value = frozenset(raw)
        kwargs[key] = value
    return Safeguard(**kwargs)


def _flow_row(run_id: int, seq: int, f: Flow) -> dict[str, Any]:
    return {
        "run_id": run_id, "seq": seq, "id": f.id, "source": f.source, "target": f.target,
        "data_categories": sorted(f.data_categories), "recurring": f.recurring,
        "safeguards": [_safeguard_json(sg) for sg in f.safeguards], "purpose": f.purpose,
        "origin": f.origin.value, "kind": f.kind,
    }


def _flow(r: Mapping[Any, Any]) -> Flow:
    return Flow(
        id=r["id"], source=r["source"], target=r["target"],
        data_categories=frozenset(r["data_categories"]), recurring=r["recurring"],
        safeguards=tuple(_safeguard(d) for d in r["safeguards"]), purpose=r["purpose"],
        origin=Origin(r["origin"]), kind=r["kind"],
    )


def _transfer_rows(run_id: int, transfers: Sequence[Transfer]) -> Iterator[dict[str, Any]]:
    for seq, tr in enumerate(transfers):
        bases = dict(tr.bases)
        cats = list(tr.data_categories)
        for pos, country in enumerate(tr.countries):
            basis = bases.get(country, Basis("none"))
            yield {
                "run_id": run_id, "seq": seq, "pos": pos, "flow": tr.flow,
                "regime": tr.regime, "exporter": tr.exporter, "importer": tr.importer,
                "exporter_party": tr.exporter_party, "importer_party": tr.importer_party,
                "country": country, "basis_kind": basis.kind,
                "basis_reference": basis.reference, "basis_source": basis.source,
                "basis_detail": basis.detail, "data_categories": cats, "onward": tr.onward,
                "recurring": tr.recurring, "same_entity": tr.same_entity,
            }


def _transfer(rows: list[Mapping[Any, Any]]) -> Transfer:
    r = rows[0]
    return Transfer(
        flow=r["flow"], regime=r["regime"], exporter=r["exporter"], importer=r["importer"],
        exporter_party=r["exporter_party"], importer_party=r["importer_party"],
        countries=tuple(x["country"] for x in rows),
        bases=tuple((x["country"], Basis(x["basis_kind"], x["basis_reference"],
                                         x["basis_source"], x["basis_detail"])) for x in rows),
        data_categories=tuple(r["data_categories"]), onward=r["onward"],
        recurring=r["recurring"], same_entity=r["same_entity"],
    )


def _finding_row(run_id: int, seq: int, f: Finding) -> dict[str, Any]:
    return {
        "run_id": run_id, "seq": seq, "fingerprint": f.fingerprint, "rule": f.rule,
        "severity": f.severity.value, "subject": f.subject, "subject_kind": f.subject_kind,
        "regime": f.regime, "countries": list(f.countries), "instrument": f.instrument,
        "message": f.message, "hint": f.hint, "waived": f.waived,
        "waiver_reason": f.waiver_reason,
    }


_SEVERITY = {s.value: s for s in Severity}


def _finding(r: Mapping[Any, Any]) -> Finding:
    return Finding(
        rule=r["rule"], severity=_SEVERITY[r["severity"]], message=r["message"],
        subject=r["subject"], subject_kind=r["subject_kind"], regime=r["regime"],
        countries=tuple(r["countries"]), instrument=r["instrument"], hint=r["hint"],
        waived=r["waived"], waiver_reason=r["waiver_reason"],
    )


__all__ = ["DEFAULT_PATH", "HistoryError", "RunInfo", "Store", "TransferRow", "mask_url",
           "resolve_url"]
