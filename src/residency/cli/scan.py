"""`residency scan`: collect live cloud inventories, join them to the map, evaluate."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from residency._io import paused_gc
from residency.cli.common import (
    ExitCode,
    eval_options,
    exit_code,
    guarded,
    load_inputs,
    postprocess,
    postprocess_options,
    show_progress,
    write_report,
)
from residency.cli.history import db_option, new_failures, record_if_requested
from residency.cli.scan_aws import aws_options, build_aws
from residency.cli.scan_azure import azure_options, build_azure
from residency.cli.scan_gcp import build_gcp, gcp_options
from residency.cli.scan_saas import build_saas, saas_options
from residency.collectors.interface import CollectContext, Collector
from residency.history.shard import in_shard, parse_shard
from residency.model import Inventory
from residency.policy.engine import Engine, EngineOptions


def _check_shard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        parse_shard(value)
    return value


@click.command()
@aws_options
@gcp_options
@azure_options
@saas_options
@click.option("--workers", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent API calls across accounts × regions × services.")
@click.option("--classified-only", is_flag=True, help="Skip resources with no classification.")
@click.option("--inventory-out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the inventory (.json, .csv or .parquet).")
@click.option("--shard", default=None, metavar="K/N", callback=_check_shard,
              help="Scan only the accounts/projects/subscriptions of shard K of N.")
@click.option("--fail-on-new", "only_new", is_flag=True,
              help="Exit 1 only for new error findings or new third countries since the last "
              "recorded run of the same scope (needs --db or --record).")
@postprocess_options
@eval_options
@db_option
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
    shard: str | None,
    only_new: bool,
    db: str | None,
    record: bool,
    waivers_path: Path | None,
    baseline_path: Path | None,
    write_baseline_path: Path | None,
    **provider_opts: Any,
) -> None:
    """Scan AWS, Google Cloud and Azure for where classified data lives and is replicated."""
    if only_new and not (db or record):
        raise click.UsageError("--fail-on-new compares with history: add --db URL or --record")
    pack, datamap = load_inputs(policies, map_path, assume_invalid, map_required=False)
    collectors: list[Collector] = [
        c
        for c in (build_aws(pack, **provider_opts), build_gcp(pack, **provider_opts),
                  build_azure(pack, **provider_opts), build_saas(pack, **provider_opts))
        if c is not None
    ]
    if not collectors:
        raise click.UsageError("nothing to scan: give --aws, --gcp PROJECT, --azure, "
                               "--saas VENDOR=TENANT or --saas-attested FILE")
    scope_filter = (lambda key: in_shard(key, shard)) if shard else None
    ctx = CollectContext(datamap.classification, classified_only, workers,
                         scope_filter=scope_filter)
    inventories = _collect(collectors, ctx)
    with paused_gc():
        report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(
            datamap, inventories
        )
    report = postprocess(report, waivers_path, baseline_path, write_baseline_path)
    if inventory_out is not None:
        from residency.formats.inventory import write_inventory

        write_inventory(report, inventory_out)
    write_report(report, fmt, output)
    scope = "scan:" + ",".join(sorted(c.provider for c in collectors))
    run_id = record_if_requested(report, "scan", scope, db, record, shard)
    if only_new and run_id is not None:
        from residency.history.store import Store

        with Store.open(db) as store:
            reasons = new_failures(store, run_id)
        for reason in reasons[:20]:
            click.echo(f"residency: --fail-on-new: {reason}", err=True)
        sys.exit(ExitCode.FINDINGS if reasons else ExitCode.CLEAN)
    sys.exit(exit_code(report, fail_on))


def _collect(collectors: list[Collector], ctx: CollectContext) -> list[Inventory]:
    """Run collectors with a progress bar on a terminal, quietly in CI or when piped."""
    if not show_progress():
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
                                                ctx.workers, progress, ctx.scope_filter)))
    return out
