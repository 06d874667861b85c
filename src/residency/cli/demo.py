"""`residency demo`: run the whole product offline on the embedded service-desk example."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from residency.cli.common import FAIL_ON, exit_code, guarded, note, parse_date

if TYPE_CHECKING:
    from residency.demo.runner import DemoResult


@click.command()
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
              default=Path("residency-demo"), show_default=True,
              help="Directory for the report, the TIA drafts and the history database "
              "(created; refused if it holds anything a previous demo did not write).")
@click.option("--as-of", callback=parse_date, default=None, metavar="DATE",
              help="Evaluate the law on this date (default: today).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="error", show_default=True,
              help="Lowest severity that makes the exit code 1, as for `scan`.")
@guarded
def demo(output: Path, as_of: dt.date, fail_on: str) -> None:
    """Seed a service-desk estate into local AWS, Google Cloud and Azure peers, scan, check,
    record and report it: the whole product, offline, in one command."""
    from residency.demo.runner import run_demo

    result = run_demo(output, as_of, progress=note)
    _print_summary(result)
    sys.exit(exit_code(result.report, fail_on))


def _print_summary(result: DemoResult) -> None:
    """Findings by rule and severity, transfers by regime, coverage gaps, where to look."""
    from rich.console import Console
    from rich.table import Table

    from residency.formats.text import terminal_style

    report = result.report
    width, color = terminal_style(sys.stdout, os.environ)
    console = Console(highlight=False, soft_wrap=False, width=width, no_color=not color,
                      force_terminal=color, color_system="standard" if color else None)
    findings = Table(title="Findings by rule", title_justify="left")
    findings.add_column("rule", min_width=8)
    findings.add_column("severity", min_width=8)
    findings.add_column("count", justify="right")
    findings.add_column("for example", overflow="ellipsis", no_wrap=True, max_width=44)
    by_rule = Counter((f.rule, f.severity) for f in report.findings if not f.waived)
    example: dict[str, str] = {}
    for f in report.findings:
        example.setdefault(f.rule, f.subject)
    for (rule, sev), n in sorted(by_rule.items(), key=lambda kv: (-kv[0][1].rank, kv[0][0])):
        findings.add_row(rule, sev.value, str(n), example[rule])
    console.print(findings)
    transfers = Table(title="Transfers by regime", title_justify="left")
    transfers.add_column("regime", min_width=7)
    for col in ("transfers", "with a basis", "without"):
        transfers.add_column(col, justify="right")
    transfers.add_column("countries lacking a basis")
    for regime in sorted({t.regime for t in report.transfers}):
        ts = [t for t in report.transfers if t.regime == regime and not t.same_entity]
        lacking = sorted({c for t in ts for c, b in t.bases if b.kind == "none"})
        ok = sum(t.lawful for t in ts)
        transfers.add_row(regime, str(len(ts)), str(ok), str(len(ts) - ok), ", ".join(lacking))
    console.print(transfers)
    gaps = Table(title="Coverage gaps: unreadable, so RES-S001, never passed as clean",
                 title_justify="left")
    gaps.add_column("cloud", min_width=5)
    gaps.add_column("scope", overflow="fold")
    gaps.add_column("answer", min_width=12)
    for g in report.gaps:
        gaps.add_row(g.provider, g.scope, g.reason.split(":", 1)[0])
    console.print(gaps if report.gaps else "Coverage gaps: none")
    c = report.counts()
    console.print(
        f"{len(report.systems)} systems, {len(report.flows)} flows, {len(report.transfers)} "
        f"transfers: {c['error']} errors, {c['warning']} warnings, {c['info']} info "
        f"({result.seconds:.1f} s)")
    # paths and the command to paste: one line each, whatever the width (never wrapped)
    click.echo(f"Report:      {result.html}")
    click.echo(f"TIA drafts:  {result.html.parent / 'tia'} ({len(result.tias)} drafts)")
    click.echo(f"History:     residency history --db {shlex.quote(str(result.history))}")
