"""`residency gate`: judge a Terraform plan before it is applied (CI and pre-commit)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from residency.cli.common import eval_options, finish, guarded, load_inputs
from residency.cli.history import db_option

_PATH = click.Path(path_type=Path, dir_okay=False)


@click.command()
@click.argument("plans", type=_PATH, nargs=-1, required=True)
@click.option("--waivers", "waivers_path", type=_PATH, default=None,
              help="Accepted findings with owner, reference and expiry (YAML or JSON).")
@click.option("--baseline", "baseline_path", type=_PATH, default=None,
              help="Only findings not in this baseline count.")
@click.option("--write-baseline", "write_baseline_path", type=_PATH, default=None,
              help="Record this run's findings and transfers as the new baseline.")
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
    from residency.plan import PlanContext, load_plans
    from residency.policy.engine import Engine, EngineOptions

    pack, datamap = load_inputs(policies, map_path, assume_invalid, map_required=False)
    inventories = load_plans(list(plans), PlanContext(datamap.classification,
                                                      pack.paired_region, pack.catalogue))
    report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(
        datamap, inventories
    )
    if waivers_path is not None:
        from residency.waivers import apply_waivers, load_waivers

        # expiry and maximum life are judged on the real date: --as-of cannot revive a waiver
        report, _ = apply_waivers(report, load_waivers(waivers_path), dt.date.today())
    if baseline_path is not None:
        from residency.baseline import apply_baseline, load_baseline

        baseline = load_baseline(baseline_path)
        for warning in baseline.warnings():
            click.echo(f"residency: warning: {warning}", err=True)
        report = apply_baseline(report, baseline)
    if write_baseline_path is not None:
        from residency.baseline import write_baseline

        write_baseline(report, write_baseline_path)
    finish(report, fmt=fmt, output=output, fail_on=fail_on, command="gate",
           scope="gate:" + ",".join(str(p) for p in plans), db=db, record=record)
