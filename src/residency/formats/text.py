"""Text: a readable table for terminals and CI logs (rich, without colour when piped)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import TextIO

from residency.formats.interface import Formatter
from residency.model import Report, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
DEFAULT_WIDTH = 140  # files and pipes: stable across machines (goldens, CI logs)


def terminal_style(stream: TextIO | None, environ: Mapping[str, str]) -> tuple[int, bool]:
    """(width, colour) for writing to `stream`, as terminal users expect.

    Colour only on a terminal (not TERM=dumb), never with NO_COLOR (no-color.org), and with
    FORCE_COLOR (force-color.org) also into a pipe or file; NO_COLOR wins over FORCE_COLOR.
    Width on a terminal: COLUMNS if set, else the terminal's own. Into a pipe or file always
    DEFAULT_WIDTH: a CI log or a saved report reads the same on every machine, and a
    COLUMNS=80 that a parent process leaked (GNU readline exports it) cannot fold the paths.
    """
    try:
        tty = stream is not None and stream.isatty()
    except (OSError, ValueError):  # a closed or detached stream
        tty = False
    if environ.get("NO_COLOR"):
        color = False
    elif environ.get("FORCE_COLOR"):
        color = True
    else:
        color = tty and environ.get("TERM", "") not in ("dumb", "unknown")
    if not tty or stream is None:
        return DEFAULT_WIDTH, color
    width = _positive_int(environ.get("COLUMNS"))
    if width is None:
        try:
            width = os.get_terminal_size(stream.fileno()).columns or None
        except (OSError, ValueError, AttributeError):
            width = None
    return width or DEFAULT_WIDTH, color


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if 0 < value <= 10_000 else None


class TextFormatter(Formatter):
    """A table of findings for people; beyond MAX_ROWS it says how many more there are and
    counts them per rule (a terminal table of 50,000 rows helps nobody and takes minutes)."""

    suffix = ".txt"
    MAX_ROWS = 500

    def __init__(self, width: int | None = None, color: bool | None = None) -> None:
        """`None`: decided by `write` from its stream and the environment (`render` alone:
        DEFAULT_WIDTH, no colour)."""
        self.width = width
        self.color = color

    def write(self, report: Report, stream: TextIO) -> None:
        width, color = terminal_style(stream, os.environ)
        stream.write(self._render(report, self.width or width,
                                  color if self.color is None else self.color))

    def render(self, report: Report) -> str:
        return self._render(report, self.width or DEFAULT_WIDTH, bool(self.color))

    def _render(self, report: Report, width: int, color: bool) -> str:
        from rich.console import Console
        from rich.table import Table

        buf = io.StringIO()
        console = Console(file=buf, width=width, no_color=not color, force_terminal=color,
                          color_system="standard" if color else None, highlight=False)
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
                    style=_STYLE[f.severity] if color and not f.waived else None,
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
