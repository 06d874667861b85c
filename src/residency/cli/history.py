"""`residency history | diff | export | evaluate`, and the `--db`/`--record` plumbing.

`check`, `scan` and `gate` opt in with `@db_option` and `record_if_requested(...)`.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from residency._io import check_date
from residency.cli.common import (
    ExitCode,
    eval_options,
    exit_code,
    force_option,
    guarded,
    load_inputs,
    note,
    warn,
    write_output,
    write_report,
)
from residency.errors import InputError
from residency.model import DataMap, Inventory, Report

if TYPE_CHECKING:
    from residency.history.store import RunInfo, Store

F = TypeVar("F", bound=Callable[..., Any])

DB_HELP = ("History database: sqlite:///FILE, a file path, or postgresql://USER@HOST/DB "
           "(default: .residency/history.db; env RESIDENCY_DB).")


def _db(func: F) -> F:
    return click.option("--db", "db", default=None, metavar="URL", envvar="RESIDENCY_DB",
                        help=DB_HELP)(func)


def db_option(func: F) -> F:
    """`--db URL` (records there) and `--record` (records to the default SQLite file)."""
    func = click.option("--record", is_flag=True,
                        help="Record this run in the history database.")(func)
    return _db(func)


def _open(db: str | None) -> Store:
    from residency.history.store import Store

    return Store.open(db)


def record_if_requested(
    report: Report, command: str, scope: str, db: str | None, record: bool,
    shard: str | None = None,
) -> int | None:
    """Store the report when `--db` or `--record` was given; returns the run id.

    A shard's scope gets `#K/N` appended so diffs pair shard 2 with the last shard 2.
    """
    if not db and not record:
        return None
    if shard and "#" not in scope:
        scope = f"{scope}#{shard}"
    with _open(db) as store:
        run_id = store.record(report, command=command, scope=scope, shard=shard)
        note(f"recorded run {run_id} in {store.url}")
    return run_id


def fail_on_new(store: Store, run_id: int) -> bool:
    """`scan --fail-on-new`: see `new_failures`."""
    return bool(new_failures(store, run_id))


def new_failures(store: Store, run_id: int) -> list[str]:
    """Why `--fail-on-new` fails: new unwaived errors or new third countries vs the last
    run of the scope, and every unwaived fail-closed finding (a gap, an unknown location),
    new or not: tonight's unknown is no more known because it was unknown yesterday."""
    from residency.baseline import FAIL_CLOSED_RULES
    from residency.history.diff import diff

    unknown = [f for f in store.findings(run_id) if f.rule in FAIL_CLOSED_RULES and not f.waived]
    out = [f"{f.rule} {f.subject} counts whether new or not" for f in unknown]
    before = store.previous(run_id)
    if before is None:
        return out  # otherwise the first run of a scope is the baseline
    d = diff(store, before.id, run_id)
    seen = {(f.rule, f.subject) for f in unknown}
    out += [f"new {f.rule} {f.subject}" for f in d.new_errors() if (f.rule, f.subject) not in seen]
    out += [f"new third countries for {cat}: {', '.join(cs)}"
            for cat, cs in d.new_third_countries]
    return out


# ---------------------------------------------------------------------- history
@click.group(invoke_without_command=True)
@_db
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--scope", default=None, help="Only runs of this scope.")
@click.pass_context
@guarded
def history(ctx: click.Context, db: str | None, limit: int, scope: str | None) -> None:
    """List recorded runs, newest first (`history prune` drops old ones)."""
    if ctx.invoked_subcommand is not None:
        return
    with _open(db) as store:
        runs = store.runs(limit=limit, scope=scope)
    click.echo(_runs_table(runs), nl=False)


@history.command("prune")
@_db
@click.option("--keep", type=click.IntRange(0), default=None, metavar="N",
              help="Keep the newest N runs whatever their date.")
@click.option("--before", default=None, metavar="DATE",
              help="Drop runs finished before this date (YYYY-MM-DD).")
@guarded
def prune(db: str | None, keep: int | None, before: str | None) -> None:
    """Retention: drop old runs (`--before DATE`, `--keep N`, or both: the newest N are
    kept even when older than DATE)."""
    import datetime as dt

    if keep is None and before is None:
        raise click.UsageError("give --keep N, --before DATE, or both")
    if before is not None:
        try:
            day = check_date(dt.date.fromisoformat(before))
        except ValueError as exc:
            raise click.BadParameter(f"{before!r}: {exc}", param_hint="--before") from None
        cutoff = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    else:
        cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # every run is old enough
    with _open(db) as store:
        dropped = store.delete_before(cutoff, keep or 0)
    note(f"pruned {dropped} run(s) from {store.url}")


def _runs_table(runs: Iterable[RunInfo]) -> str:
    head = ("RUN", "FINISHED (UTC)", "COMMAND", "SCOPE", "SHARD", "AS OF", "PACK",
            "ERR", "WARN", "INFO", "TRANSFERS")
    rows = [head] + [
        (str(r.id), r.finished_at.strftime("%Y-%m-%d %H:%M"), r.command, r.scope,
         r.shard or "", r.as_of.isoformat(), r.pack.version, str(r.count("error")),
         str(r.count("warning")), str(r.count("info")), str(r.count("transfers")))
        for r in runs
    ]
    if len(rows) == 1:
        return "no runs recorded\n"
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                   + "\n" for row in rows)


# ---------------------------------------------------------------------- diff
@click.command()
@click.argument("run_a", type=int, required=False)
@click.argument("run_b", type=int, required=False)
@_db
@click.option("--format", "fmt", type=click.Choice(("text", "json", "markdown")),
              default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--notify", default=None, metavar="URL",
              help="POST a JSON summary to this webhook (5 s timeout; failures only warn).")
@click.option("--notify-format", type=click.Choice(("generic", "slack")), default="generic",
              show_default=True)
@force_option
@guarded
def diff(run_a: int | None, run_b: int | None, db: str | None, fmt: str,
         output: Path | None, notify: str | None, notify_format: str) -> None:
    """Compare two runs (default: the last two of the same scope; one RUN: it vs its previous)."""
    from residency.history import diff as d
    from residency.history.store import HistoryError

    with _open(db) as store:
        if run_a is None:
            older, newer = store.last_pair()
            run_a, run_b = older.id, newer.id
        elif run_b is None:
            before = store.previous(run_a)
            if before is None:
                raise HistoryError(f"{store.url}: run {run_a} has no earlier run of its scope")
            run_a, run_b = before.id, run_a
        result = d.diff(store, run_a, run_b)
    write_output(d.RENDERERS[fmt](result), output)
    if notify:
        _notify(notify, d.notify_payload(result, notify_format))


def _notify(url: str, payload: dict[str, Any]) -> None:
    from residency.history.notify import NotifyError, post_json

    try:
        post_json(url, payload)
    except NotifyError as exc:
        warn(f"notification not sent: {exc}")


# ---------------------------------------------------------------------- export
@click.command()
@click.option("--run", "run_id", type=int, required=True, help="The run to export.")
@click.option("--format", "fmt", type=click.Choice(("csv", "parquet", "xlsx")), required=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True,
              help="Directory (csv, parquet) or .xlsx file.")
@_db
@force_option
@guarded
def export(run_id: int, fmt: str, output: Path, db: str | None) -> None:
    """Export a run's inventory, transfers and findings as CSV, Parquet or Excel."""
    from residency.history.export import export_report

    with _open(db) as store:
        report = store.load_report(run_id)
    for path in export_report(report, fmt, output, stem=f"run-{run_id}"):
        click.echo(str(path))


# ---------------------------------------------------------------------- evaluate
def _parse_runs(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of run ids") \
            from None
    if not ids:
        raise click.BadParameter("give at least one run id")
    return ids


@click.command()
@click.option("--runs", "run_ids", required=True, callback=_parse_runs, metavar="3,4,5",
              help="Runs (e.g. the shards of one scan) to merge and evaluate together.")
@db_option
@eval_options
@guarded
def evaluate(
    run_ids: tuple[int, ...],
    db: str | None,
    record: bool,
    map_path: Path,
    policies: Path | None,
    as_of: dt.date,
    assume_invalid: tuple[str, ...],
    fmt: str,
    output: Path | None,
    fail_on: str,
) -> None:
    """Merge stored shard inventories into one graph and evaluate them as one scan."""
    from residency.history.shard import missing_shards
    from residency.policy.engine import Engine, EngineOptions

    pack, datamap = load_inputs(policies, map_path, assume_invalid, map_required=False)
    has_map = bool(datamap.systems or datamap.parties or datamap.source)
    with _open(db) as store:
        infos = [store.run(i) for i in run_ids]
        missing = missing_shards((i.id, i.scope, i.shard) for i in infos)  # exit 2 if muddled
        inventories = [store.load_inventory(i) for i in run_ids]
        merged = merge_inventories([*inventories, Inventory(gaps=tuple(missing))], datamap)
        if not has_map and any(s.origin.value == "declared" for s in merged.systems):
            raise InputError(str(map_path), None, "the runs include declared systems; pass "
                             "the data map they were scanned with (--map FILE)")
        report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(
            datamap, [merged])
        if db or record:
            scopes = sorted({i.scope.partition("#")[0] for i in infos})  # "scan:aws#2/4"
            run_id = store.record(report, command="evaluate",
                                  scope="evaluate:" + "+".join(scopes))
            note(f"recorded run {run_id} in {store.url}")
    write_report(report, fmt, output)
    sys.exit(exit_code(report, fail_on))


def merge_inventories(inventories: Iterable[Inventory], datamap: DataMap) -> Inventory:
    """One inventory from shard runs: the map's own systems and flows win, then first seen."""
    seen_s = {s.id for s in datamap.systems}
    seen_f = {f.id for f in datamap.flows}
    systems, flows, gaps = [], [], []
    seen_g: set[tuple[str, str, str]] = set()
    for inv in inventories:
        for s in inv.systems:
            if s.id not in seen_s:
                seen_s.add(s.id)
                systems.append(s)
        for f in inv.flows:
            if f.id not in seen_f:
                seen_f.add(f.id)
                flows.append(f)
        for g in inv.gaps:
            if (g.provider, g.scope, g.reason) not in seen_g:
                seen_g.add((g.provider, g.scope, g.reason))
                gaps.append(g)
    return Inventory(tuple(systems), tuple(flows), tuple(gaps))


__all__ = ["ExitCode", "db_option", "diff", "evaluate", "export", "fail_on_new", "history",
           "merge_inventories", "new_failures", "record_if_requested"]
