"""`residency scan`: collect live cloud inventories, join them to the map, evaluate."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from residency.cli.common import eval_options, exit_code, guarded, write_output
from residency.cli.scan_aws import aws_options, build_aws
from residency.cli.scan_azure import azure_options, build_azure
from residency.cli.scan_gcp import build_gcp, gcp_options
from residency.collectors.interface import CollectContext, Collector
from residency.errors import InputError
from residency.formats import get_formatter
from residency.model import DataMap, Inventory
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack


@click.command()
@aws_options
@gcp_options
@azure_options
@click.option("--workers", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent API calls across accounts × regions × services.")
@click.option("--classified-only", is_flag=True, help="Skip resources with no classification.")
@click.option("--inventory-out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the inventory (.json, .csv or .parquet).")
@eval_options
@guarded
def scan(
    map_path: Path,
    policies: Path | None,
    as_of: dt.date,
    assume_invalid: tuple[str, ...],
    fmt: str,
    output: Path | None,
    fail_on: str,
    workers: int,
    classified_only: bool,
    inventory_out: Path | None,
    **provider_opts: Any,
) -> None:
    """Scan AWS, Google Cloud and Azure for where classified data lives and is replicated."""
    from residency.datamap import load_map

    pack = PolicyPack.load(policies)
    datamap = load_map(map_path, pack) if map_path.exists() or map_path.name != "residency.yaml" \
        else DataMap((), (), ())
    collectors: list[Collector] = [
        c
        for c in (build_aws(pack, **provider_opts), build_gcp(pack, **provider_opts),
                  build_azure(pack, **provider_opts))
        if c is not None
    ]
    if not collectors:
        raise click.UsageError("nothing to scan: give --aws, --gcp PROJECT or --azure")
    inventories = _collect(collectors, CollectContext(datamap.classification, classified_only,
                                                      workers))
    report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(
        datamap, inventories
    )
    if inventory_out is not None:
        from residency.formats.inventory import write_inventory

        write_inventory(report, inventory_out)
    write_output(get_formatter(fmt).render(report), output)
    sys.exit(exit_code(report, fail_on))


def _collect(collectors: list[Collector], ctx: CollectContext) -> list[Inventory]:
    """Run collectors with a progress bar on a terminal, quietly in CI or when piped."""
    if not sys.stderr.isatty():
        return [c.collect(ctx) for c in collectors]
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    out = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  transient=True) as bar:
        for c in collectors:
            task = bar.add_task(f"scanning {c.provider}", total=None)

            def progress(
                label: str, advance: int, _task: Any = task, _name: str = c.provider
            ) -> None:
                bar.update(_task, advance=advance, description=f"{_name}: {label}")

            out.append(c.collect(CollectContext(ctx.classification, ctx.classified_only,
                                                ctx.workers, progress)))
    return out


__all__ = ["InputError", "scan"]
