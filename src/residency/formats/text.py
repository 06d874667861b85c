"""Text: a readable table for terminals and CI logs (rich, without colour when piped)."""

from __future__ import annotations

import io

from residency.formats.interface import Formatter
from residency.model import Report, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


class TextFormatter(Formatter):
    """A table of findings for people; beyond MAX_ROWS it says how many more there are and
    counts them per rule (a terminal table of 50,000 rows helps nobody and takes minutes)."""

    suffix = ".txt"
    MAX_ROWS = 500

    def __init__(self, width: int = 140, color: bool = False) -> None:
        self.width = width
        self.color = color

    def render(self, report: Report) -> str:
        from rich.console import Console
        from rich.table import Table

        buf = io.StringIO()
        console = Console(file=buf, width=self.width, no_color=not self.color,
                          force_terminal=self.color, highlight=False)
        c = report.counts()
        console.print(
            f"residency check as of {report.as_of} · policy pack {report.pack.name} "
            f"{report.pack.version} ({report.pack.digest}) · {len(report.systems)} systems, "
            f"{len(report.flows)} flows, {len(report.transfers)} transfers"
        )
        if report.assumed_invalid:
            console.print(f"what-if: treating as invalid {', '.join(report.assumed_invalid)}")
        if report.findings:
            table = Table(show_lines=False, expand=False)
            for col in ("severity", "rule", "subject", "regime", "countries", "message"):
                table.add_column(col, overflow="fold")
            for f in report.findings[: self.MAX_ROWS]:
                table.add_row(
                    f.severity.value + (" (waived)" if f.waived else ""),
                    f.rule,
                    f.subject,
                    f.regime or "",
                    ",".join(f.countries),
                    f.message,
                    style=_STYLE[f.severity] if self.color and not f.waived else None,
                )
            console.print(table)
            hidden = report.findings[self.MAX_ROWS:]
            if hidden:
                per_rule: dict[str, int] = {}
                for f in hidden:
                    per_rule[f.rule] = per_rule.get(f.rule, 0) + 1
                console.print(
                    f"... and {len(hidden)} more findings not shown ("
                    + ", ".join(f"{r}: {n}" for r, n in sorted(per_rule.items()))
                    + "); use --format json or markdown for every finding"
                )
        else:
            console.print("no findings")
        for g in report.gaps:
            console.print(f"coverage gap: {g.provider} {g.scope}: {g.reason}")
        console.print(f"{c['error']} errors, {c['warning']} warnings, {c['info']} info")
        return buf.getvalue()
