"""`residency report`: TIA drafts, the Art. 30 transfer register, what-if impact, the HTML report.

Reports are documents, not gates: they exit 0 whatever the findings (use `check` to gate).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from residency._fork import Ahead, Halves, Receipt, held, ordered_map
from residency.cli.common import (
    force_option,
    guarded,
    parse_date,
    policy_options,
    warn,
    write_output,
)
from residency.model import DataMap, Party, Report
from residency.policy.pack import PolicyPack

if TYPE_CHECKING:
    from residency.reports.tia import StoredDraft, TiaPlan

F = TypeVar("F", bound=Callable[..., Any])


def source_options(func: F) -> F:
    """--map, --as-of and --assume-invalid, as `check` has them (plus --policies, --force)."""
    func = click.option("--assume-invalid", multiple=True, metavar="ID",
                        help="Treat this adequacy decision or instrument as revoked "
                        "(repeatable).")(func)
    func = click.option("--as-of", callback=parse_date, default=None, metavar="DATE",
                        help="Evaluate the law on this date (default: today).")(func)
    func = click.option("--map", "map_path", type=click.Path(path_type=Path, dir_okay=False),
                        default=Path("residency.yaml"), show_default=True,
                        help="The declared data map (YAML or JSON).")(func)
    return force_option(policy_options(func))


@dataclass(frozen=True, slots=True)
class _Run:
    pack: PolicyPack
    datamap: DataMap
    report: Report
    parties: dict[str, Party]


def _evaluate(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    halves: Halves | None = None,
) -> _Run:
    from residency.datamap import load_map
    from residency.policy.engine import Engine, EngineOptions
    from residency.reports._common import collect_parties

    pack = PolicyPack.load(policies)
    unknown = [i for i in assume_invalid
               if not pack.find_decision(i) and not pack.find_instrument(i)]
    if unknown:
        raise click.BadParameter(f"unknown decision or instrument id(s): {', '.join(unknown)}",
                                 param_hint="--assume-invalid")
    datamap = load_map(map_path, pack)
    report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid)), halves).run(datamap)
    return _Run(pack, datamap, report, collect_parties(report, pack, datamap))


@click.group(short_help="TIA drafts, Art. 30 register, what-if impact, HTML report.")
@click.pass_context
def report(ctx: click.Context) -> None:
    """Transfer-impact reports: TIA drafts, Art. 30 register, what-if impact, HTML."""
    from residency._io import paused_gc

    # every report builds the engine's millions of acyclic records, then rows and pages
    # from them: the cyclic collector's full passes over them find nothing (as in `check`)
    ctx.with_resource(paused_gc())


@report.command()
@source_options
@click.option("--transfer", "transfers", multiple=True, metavar="FLOW_ID",
              help="Draft only for this flow (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Draft for every transfer (the default).")
@click.option("--per", type=click.Choice(("transfer", "importer")), default="transfer",
              show_default=True, help="One draft per flow, or one per importer.")
@click.option("--format", "fmt", type=click.Choice(("markdown", "html")), default="markdown",
              show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory for one file per draft (default: stdout).")
@guarded
def tia(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    transfers: tuple[str, ...], all_: bool, per: str, fmt: str, output: Path | None,
) -> None:
    """Transfer impact assessment drafts on the six steps of EDPB Recommendations 01/2020.

    Drafts are made where a TIA is due (an Art. 46 tool relied on); with --output the
    directory also gets index.md, listing every transfer with its draft or why none is needed.
    """
    from residency._io import paused_gc

    if all_ and transfers:
        raise click.UsageError("use either --transfer or --all")
    with paused_gc():  # drafts are acyclic records, freed as each is written
        _tia(map_path, policies, as_of, assume_invalid, transfers, per, fmt, output)


def _tia(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    transfers: tuple[str, ...], per: str, fmt: str, output: Path | None,
) -> None:
    from residency.reports._common import graph_of
    from residency.reports.tia import plan_tia

    def setup(halves: Halves | None = None) -> _TiaFiles:
        run = _evaluate(map_path, policies, as_of, assume_invalid, halves)
        plan = plan_tia(run.report, run.pack, graph_of(run.report, run.parties),
                        flows=transfers or None,
                        per="importer" if per == "importer" else "transfer")
        return _TiaFiles(run, plan, fmt)

    # A large map's drafts: a second process, started now, loads and plans the same drafts
    # on the other core, renders every other one and, once the directory is checked,
    # writes the new ones itself (`_fork.Ahead`).
    # The two also split the engine's judge between them (`_fork.Halves`).
    ahead = halves = None
    if output is not None and not transfers and _large_file(map_path):
        halves = Halves()
        ahead = Ahead(lambda: setup(halves).share(), every=2, store=_store_draft,
                      halves=halves)
    try:
        running = ahead is not None and ahead.running
        with held() if running else contextlib.nullcontext():
            files = setup(halves if running else None)
        files.ahead = ahead
        _write_tia(files, fmt, output)
    finally:
        if ahead is not None:
            ahead.close()  # whatever happened here, the second process does not outlive it
        if halves is not None:
            halves.close()


def _write_tia(files: _TiaFiles, fmt: str, output: Path | None) -> None:
    from residency.reports.tia import INDEX_NAME, render_index, write_drafts

    if output is None:
        write_output("\n---\n\n".join(files.texts()), None)
        return
    plan = files.plan
    index = render_index(plan, fmt)
    result = write_drafts(output, _WithIndex(files, INDEX_NAME, index))
    for path in result.written:
        click.echo(str(path), err=True)
    click.echo(f"{output / INDEX_NAME}: {len(files)} draft(s), {len(plan.needs)} transfer(s) "
               "listed", err=True)
    for kept in result.kept:
        warn(f"{kept.draft}: changed since residency wrote it; kept, the new draft is "
             f"{kept.new}")


def _store_draft(name: str, data: bytes, order: bytes) -> bytes | None:
    """In the `Ahead` process: write a new draft into the directory the parent checked."""
    from residency.reports.tia import store_new_draft

    stored = store_new_draft(Path(os.fsdecode(order)), name, data)
    return None if stored is None else stored.encode()


class _TiaFiles(Mapping[str, "str | StoredDraft"]):
    """File name → draft, each built and rendered when it is written, so a map of 100,000
    flows never holds every draft at once."""

    PARALLEL_AT = 2_000

    def __init__(self, run: _Run, plan: TiaPlan, fmt: str) -> None:
        self.run, self.plan, self.fmt = run, plan, fmt
        self.groups = {plan.builder.doc_name(list(g), fmt): g for g in plan.groups}
        if len(self.groups) != len(plan.groups):  # unique by construction; never lose one
            from residency.reports import ReportError

            raise ReportError("two TIA drafts map to the same file name; none written")
        self._order = list(self.groups)
        self.ahead: Ahead | None = None
        self._results: Iterator[bytes | Receipt] | None = None
        self._next = 0

    def __getitem__(self, name: str) -> str | StoredDraft:
        """Drafts asked for in order come from a second core: every other one from the
        `Ahead` process started before the map was read (already written, once
        `store_drafts_in` was called, if new), else two in three from one forked now."""
        if self._results is None:
            if self.ahead is not None:
                self._results = self.ahead.results(self._order, self.render_bytes, self.basis)
            elif len(self.groups) >= self.PARALLEL_AT:
                self._results = ordered_map(self._order, self.render_bytes)
        if self._results is not None and self._next < len(self._order) \
                and self._order[self._next] == name:
            self._next += 1
            result = next(self._results)
            if isinstance(result, Receipt):
                from residency.reports.tia import StoredDraft

                return StoredDraft.decode(result.data)
            return result.decode()
        return self._render(name)

    def texts(self) -> Iterator[str]:
        """Every draft's text, in order (nothing is stored: no directory was given)."""
        for name in self._order:
            value = self[name]
            yield value if isinstance(value, str) else self._render(name)

    def store_drafts_in(self, directory: Path) -> None:
        """The drafts directory has been checked: the `Ahead` process may write there."""
        if self.ahead is not None:
            self.ahead.order(os.fsencode(directory.absolute()), self.basis)

    @property
    def basis(self) -> bytes:
        """What the drafts rest on: the map's and the pack's digests."""
        return f"{self.run.datamap.digest}|{self.run.report.pack.digest}".encode()

    def share(self) -> tuple[bytes, list[str], Callable[[str], bytes]]:
        """What an `Ahead` process hands back: its basis, the drafts' order, their renderer."""
        return self.basis, self._order, self.render_bytes

    def render_bytes(self, name: str) -> bytes:
        return self._render(name).encode()

    def _render(self, name: str) -> str:
        from residency.reports.tia import render_markdown

        doc = self.plan.builder.document(list(self.groups[name]))
        if self.fmt == "html":
            from residency.reports.tia import render_draft_html

            return render_draft_html(doc)  # the draft alone, not the whole report
        return render_markdown(doc)

    def __iter__(self) -> Iterator[str]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)


AHEAD_AT_BYTES = 8 * 2**20
"""A map file this large (some 30,000 flows) gets its TIA drafts from two processes."""


def _large_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size >= AHEAD_AT_BYTES
    except OSError:
        return False  # the loader reports it


class _WithIndex(Mapping[str, "str | StoredDraft"]):
    def __init__(self, files: _TiaFiles, name: str, index: str) -> None:
        self.files, self.name, self.index = files, name, index

    def __getitem__(self, name: str) -> str | StoredDraft:
        return self.index if name == self.name else self.files[name]

    def store_drafts_in(self, directory: Path) -> None:
        self.files.store_drafts_in(directory)

    def __iter__(self) -> Iterator[str]:
        yield from self.files
        yield self.name

    def __len__(self) -> int:
        return len(self.files) + 1


@report.command(short_help="The Art. 30 transfer register (csv, xlsx, markdown).")
@source_options
@click.option("--format", "fmt", type=click.Choice(("csv", "xlsx", "markdown")), default="csv",
              show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write here (required for xlsx).")
@guarded
def register(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    fmt: str, output: Path | None,
) -> None:
    """The Art. 30(1)(e)/30(2)(c) transfer register: one row per flow × regime × country."""
    from residency._io import write_atomic
    from residency.reports.register import build_register, render_register

    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE")
    run = _evaluate(map_path, policies, as_of, assume_invalid)
    data = render_register(build_register(run.report, run.pack, run.parties), fmt)
    if output is not None:
        write_atomic(output, data)
    else:
        write_output(data if isinstance(data, str) else data.decode(), None)


@report.command()
@policy_options
@force_option
@click.option("--map", "map_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("residency.yaml"), show_default=True)
@click.option("--assume-invalid", multiple=True, metavar="ID",
              help="Decision or instrument to treat as revoked (repeatable).")
@click.option("--as-of", callback=parse_date, default=None, metavar="DATE",
              help="Scenario date; alone, it is compared with today.")
@click.option("--format", "fmt", type=click.Choice(("text", "markdown", "json")),
              default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@guarded
def impact(
    policies: Path | None, map_path: Path, assume_invalid: tuple[str, ...], as_of: dt.date,
    fmt: str, output: Path | None,
) -> None:
    """What-if: which transfers lose their basis, by importer and data category."""
    from residency.datamap import load_map
    from residency.reports.impact import build_impact, render_impact

    pack = PolicyPack.load(policies)
    unknown = [i for i in assume_invalid
               if not pack.find_decision(i) and not pack.find_instrument(i)]
    if unknown:
        raise click.BadParameter(f"unknown decision or instrument id(s): {', '.join(unknown)}",
                                 param_hint="--assume-invalid")
    result = build_impact(pack, load_map(map_path, pack), as_of, assume_invalid)
    write_output(render_impact(result, fmt), output)


@report.command("html")
@source_options
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True)
@guarded
def html_(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    output: Path,
) -> None:
    """The whole report (summary, findings, transfers, diagram, TIA drafts) as one HTML file."""
    from residency.reports._common import graph_of
    from residency.reports.html import write_html
    from residency.reports.tia import plan_tia

    run = _evaluate(map_path, policies, as_of, assume_invalid)
    plan = plan_tia(run.report, run.pack, graph_of(run.report, run.parties))
    # streamed: drafts are built as the page reaches them, the page is never held whole
    write_html(output, run.report, run.parties, plan.documents(), pack=run.pack,
               tia_total=len(plan.groups))


# ---------------------------------------------------------------------- H4: DPO documents
def _stream(write: Callable[[Any], None], output: Path | None, *, binary: bool = False) -> None:
    """Stream a document to stdout, or atomically to `output` (never over a user's file)."""
    import sys

    from residency._output import atomic_output

    if output is None:
        write(sys.stdout)
        return
    with atomic_output(output, binary=binary) as fh:
        write(fh)


@report.command(short_help="The full Art. 30 record of processing (xlsx, csv, markdown, html).")
@source_options
@click.option("--format", "fmt", type=click.Choice(("csv", "xlsx", "markdown", "html")),
              default="markdown", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write here (required for xlsx).")
@guarded
def ropa(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    fmt: str, output: Path | None,
) -> None:
    """The Art. 30(1) controller and 30(2) processor records, with the gaps to complete."""
    from residency.reports.ropa import build_ropa, write_ropa

    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE")
    run = _evaluate(map_path, policies, as_of, assume_invalid)
    record = build_ropa(run.report, run.pack, run.datamap, run.parties)
    _stream(lambda fh: write_ropa(record, fmt, fh), output, binary=fmt == "xlsx")
    gaps = sum(len(r.gaps) for r in record.records)
    if gaps:
        warn(f"{gaps} Art. 30 item(s) missing from the map: listed as gaps in the record")


@report.command("subject-access", short_help="Recipients, third countries and safeguards "
                "for a DSAR reply (Art. 15(1)(c), 15(2)).")
@source_options
@click.option("--subject", required=True, metavar="TYPE",
              help="Type of data subject, as the map's processing activities name it.")
@click.option("--categories", multiple=True, metavar="CATEGORY",
              help="Only these data categories (repeatable; default: all held).")
@click.option("--format", "fmt", type=click.Choice(("markdown", "html", "json")),
              default="markdown", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@guarded
def subject_access(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    subject: str, categories: tuple[str, ...], fmt: str, output: Path | None,
) -> None:
    """The Art. 15(1)(c) and 15(2) part of a subject-access reply, from categories only."""
    from residency.reports.subject_access import build_subject_access, render_subject_access

    run = _evaluate(map_path, policies, as_of, assume_invalid)
    answer = build_subject_access(run.report, run.pack, run.datamap, run.parties, subject,
                                  tuple(c for v in categories for c in v.split(",") if c))
    write_output(render_subject_access(answer, fmt), output)
    if answer.gaps:
        warn(f"{len(answer.gaps)} statement(s) need the organisation's wording or a fix: "
             "marked in the answer")


@report.command(short_help="The register and every transfer as W3C DPV JSON-LD.")
@source_options
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@guarded
def dpv(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    output: Path | None,
) -> None:
    """Processing activities, parties and transfers as Data Privacy Vocabulary (DPV 2.x)."""
    from residency.reports.dpv import load_dpv_map, write_dpv

    run = _evaluate(map_path, policies, as_of, assume_invalid)
    mapping = load_dpv_map(run.pack)
    _stream(lambda fh: write_dpv(run.report, run.pack, run.datamap, run.parties, mapping, fh),
            output)
