"""`residency graph`: the flow diagram (Mermaid, DOT, SVG, GraphML or JSON)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from residency.cli.common import guarded, write_output
from residency.cli.report import _evaluate, source_options

GRAPH_FORMATS = ("mermaid", "dot", "svg", "graphml", "json")


@click.command()
@source_options
@click.option("--format", "fmt", type=click.Choice(GRAPH_FORMATS), default="mermaid",
              show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the diagram here instead of stdout.")
@guarded
def graph(
    map_path: Path, policies: Path | None, as_of: dt.date, assume_invalid: tuple[str, ...],
    fmt: str, output: Path | None,
) -> None:
    """Draw systems (with countries) and flows coloured by verdict."""
    from residency._io import paused_gc
    from residency.reports.diagram import build_diagram, render_diagram

    with paused_gc():  # acyclic records, as in `check`
        run = _evaluate(map_path, policies, as_of, assume_invalid)
        write_output(render_diagram(build_diagram(run.report, run.parties, run.pack), fmt),
                     output)
