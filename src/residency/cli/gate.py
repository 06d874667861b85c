"""`residency gate`: judge a Terraform plan before it is applied (CI and pre-commit)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from residency.cli.common import (
    eval_options,
    finish,
    guarded,
    load_inputs,
    postprocess,
    postprocess_options,
    stable_path,
)
from residency.cli.history import db_option

_PATH = click.Path(path_type=Path, dir_okay=False)


@click.command()
@click.argument("plans", type=_PATH, nargs=-1, required=True)
@postprocess_options
@eval_options
@db_option
@guarded
def gate(
    plans: tuple[Path, ...],
    map_path: Path,
    policies: Path | None,
    as_of: dt.date,
    assume_invalid: tuple[str, ...],
    fmt: str,
    output: Path | None,
    fail_on: str,
    waivers_path: Path | None,
    baseline_path: Path | None,
    write_baseline_path: Path | None,
    db: str | None,
    record: bool,
) -> None:
    """Check PLANS (`terraform show -json` output) for where data will live and be copied."""
    from residency._io import paused_gc
    from residency.plan import PlanContext, load_plans
    from residency.policy.engine import Engine, EngineOptions

    # One short run over acyclic records (plan, systems, findings): the cyclic collector
    # would only rescan them, as it would a bare `json.load`; reference counting frees.
    with paused_gc():
        pack, datamap = load_inputs(policies, map_path, assume_invalid, map_required=False)
        inventories = load_plans(list(plans), PlanContext(datamap.classification,
                                                          pack.paired_region, pack.catalogue))
        report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(
            datamap, inventories
        )
        report = postprocess(report, waivers_path, baseline_path, write_baseline_path)
        finish(report, fmt=fmt, output=output, fail_on=fail_on, command="gate",
               scope="gate:" + ",".join(stable_path(p) for p in plans), db=db, record=record)
