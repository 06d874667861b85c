"""The run-history schema (SQLAlchemy Core) and its ordered migrations.

Schema 2 stores a run's content as content-addressed chunks: each chunk holds consecutive
rows of one kind (systems, flows, transfers, findings, gaps) as compressed JSON, named by the
digest of its rows, and `run_chunks` lists which chunks make up a run, in order. Runs whose
rows did not change share their chunks, so a nightly run of an unchanged 10,000-flow map
costs a few hundred chunk references. Runs recorded before schema 2 keep their rows in the
per-kind tables (`runs.layout` NULL) and are read from there; nothing is rewritten.

Tables and columns carry the schema version that introduced them in `info["since"]`.
Migration 1 creates everything marked `since=1`; a later change marks its new table or
column `since=N` and appends one function to `MIGRATIONS` (usually `add_since(conn, N)`),
so an empty database and an upgraded one end in the same shape (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

METADATA = sa.MetaData()
_V1 = {"since": 1}

schema_version = sa.Table(
    "schema_version",
    METADATA,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    info=_V1,
)

runs = sa.Table(
    "runs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("command", sa.String(40), nullable=False),
    # what was looked at, e.g. "check:examples/x.yaml" or "scan:aws,gcp"; diffs pair runs by it
    sa.Column("scope", sa.String(500), nullable=False),
    sa.Column("shard", sa.String(20)),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("pack_name", sa.String(200), nullable=False),
    sa.Column("pack_version", sa.String(50), nullable=False),
    sa.Column("pack_last_checked", sa.Date, nullable=False),
    sa.Column("pack_digest", sa.String(100), nullable=False),
    sa.Column("map_source", sa.String(1000)),
    sa.Column("map_digest", sa.String(100)),
    sa.Column("assumed_invalid", sa.JSON, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    # 2: rows in `chunks`; NULL: rows in the per-kind tables (runs recorded before schema 2)
    sa.Column("layout", sa.Integer, info={"since": 2}),
    sa.Index("ix_runs_scope", "scope", "id"),
    info=_V1,
)


def _run_fk() -> sa.Column[int]:
    return sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )


systems = sa.Table(
    "systems",
    METADATA,
    _run_fk(),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("id", sa.String(500), nullable=False),
    sa.Column("party", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("provider", sa.String(50)),
    sa.Column("regions", sa.JSON, nullable=False),
    sa.Column("location_countries", sa.JSON, nullable=False),  # as declared
    sa.Column("unknown_reason", sa.Text),
    sa.Column("countries", sa.JSON),  # as resolved by the pack; NULL when never resolved
    sa.Column("any_country", sa.Boolean),
    sa.Column("unresolved", sa.Text),
    sa.Column("access_from", sa.JSON, nullable=False),
    sa.Column("data_categories", sa.JSON, nullable=False),
    sa.Column("regimes", sa.JSON, nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("classified", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(500)),
    sa.Column("resource_id", sa.String(2000)),
    sa.Column("account", sa.String(200)),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("source_file", sa.String(1000)),
    sa.PrimaryKeyConstraint("run_id", "seq"),
    info=_V1,
)

flows = sa.Table(
    "flows",
    METADATA,
    _run_fk(),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("id", sa.String(500), nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("data_categories", sa.JSON, nullable=False),
    sa.Column("recurring", sa.Boolean, nullable=False),
    sa.Column("safeguards", sa.JSON, nullable=False),
    sa.Column("purpose", sa.Text),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.PrimaryKeyConstraint("run_id", "seq"),
    info=_V1,
)

transfers = sa.Table(
    "transfers",
    METADATA,
    _run_fk(),
    sa.Column("seq", sa.Integer, nullable=False),  # the transfer's position in the report
    sa.Column("pos", sa.Integer, nullable=False),  # the country's position in the transfer
    sa.Column("flow", sa.String(500), nullable=False),
    sa.Column("regime", sa.String(50), nullable=False),
    sa.Column("exporter", sa.String(500), nullable=False),
    sa.Column("importer", sa.String(500), nullable=False),
    sa.Column("exporter_party", sa.String(200), nullable=False),
    sa.Column("importer_party", sa.String(200), nullable=False),
    sa.Column("country", sa.String(10), nullable=False),
    sa.Column("basis_kind", sa.String(20), nullable=False),
    sa.Column("basis_reference", sa.Text),
    sa.Column("basis_source", sa.Text),
    sa.Column("basis_detail", sa.Text),
    sa.Column("data_categories", sa.JSON, nullable=False),
    sa.Column("onward", sa.Boolean, nullable=False),
    sa.Column("recurring", sa.Boolean, nullable=False),
    sa.Column("same_entity", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "seq", "pos"),
    info=_V1,
)

findings = sa.Table(
    "findings",
    METADATA,
    _run_fk(),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("subject", sa.String(1000), nullable=False),
    sa.Column("subject_kind", sa.String(20), nullable=False),
    sa.Column("regime", sa.String(50)),
    sa.Column("countries", sa.JSON, nullable=False),
    sa.Column("instrument", sa.Text),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("hint", sa.Text),
    sa.Column("waived", sa.Boolean, nullable=False),
    sa.Column("waiver_reason", sa.Text),
    sa.PrimaryKeyConstraint("run_id", "seq"),
    sa.Index("ix_findings_fingerprint", "fingerprint"),
    info=_V1,
)

gaps = sa.Table(
    "gaps",
    METADATA,
    _run_fk(),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("scope", sa.String(1000), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "seq"),
    info=_V1,
)

CHILD_TABLES = (systems, flows, transfers, findings, gaps)
_V2 = {"since": 2}

chunks = sa.Table(
    "chunks",
    METADATA,
    sa.Column("digest", sa.String(32), primary_key=True),  # blake2b-128 of the rows, hex
    sa.Column("kind", sa.String(20), nullable=False),  # the child table the rows belong to
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),  # zlib of {"c": columns, "r": rows}
    info=_V2,
)

run_chunks = sa.Table(
    "run_chunks",
    METADATA,
    _run_fk(),
    sa.Column("kind", sa.String(20), nullable=False),
    # the run's chunks of this kind in order: their 16-byte digests, concatenated (one row
    # per run and kind rather than one per chunk keeps an unchanged run to a few KiB)
    sa.Column("digests", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "kind"),
    info=_V2,
)


# ---------------------------------------------------------------------- migrations
def _since(item: sa.Table | sa.Column[object]) -> int:
    return int(item.info.get("since", 1))


def create_as_of(conn: sa.Connection, version: int, metadata: sa.MetaData = METADATA) -> None:
    """Create the tables introduced up to `version` with the columns they had at `version`."""
    md = sa.MetaData()
    for table in metadata.sorted_tables:
        if _since(table) > version:
            continue
        table.to_metadata(md)
        copy = md.tables[table.name]
        for col in list(copy.columns):
            if _since(col) > version:
                copy._columns.remove(col)  # no public API drops a column from a copied Table
    md.create_all(conn, checkfirst=True)


def add_since(conn: sa.Connection, version: int, metadata: sa.MetaData = METADATA) -> None:
    """Create tables and add columns first marked `since=version` (the usual migration body)."""
    create_as_of(conn, version, metadata)  # tables new in this version
    for table in metadata.sorted_tables:
        if _since(table) >= version:
            continue
        for col in table.columns:
            if _since(col) == version:
                spec = sa.schema.CreateColumn(col).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {spec}")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    upgrade: Callable[[sa.Connection], None]


def _m1(conn: sa.Connection) -> None:
    create_as_of(conn, 1)


def _m2(conn: sa.Connection) -> None:
    add_since(conn, 2)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, systems, flows, transfers, findings, gaps", _m1),
    Migration(2, "content-addressed chunks shared between runs (runs.layout)", _m2),
)
LATEST = MIGRATIONS[-1].version
