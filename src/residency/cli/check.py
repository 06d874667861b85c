"""`residency check`: evaluate the declared map against the policy pack."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from residency._io import paused_gc
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
from residency.policy.engine import Engine, EngineOptions


@click.command()
@postprocess_options
@eval_options
@db_option
@guarded
def check(
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
    """Judge every flow of the data map under GDPR Chapter V (and UK GDPR, Swiss FADP)."""
    with paused_gc():  # millions of acyclic records: no cyclic collection needed
        pack, datamap = load_inputs(policies, map_path, assume_invalid, map_required=True)
        report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(datamap)
        report = postprocess(report, waivers_path, baseline_path, write_baseline_path)
        finish(report, fmt=fmt, output=output, fail_on=fail_on, command="check",
               scope=f"check:{stable_path(map_path)}", db=db, record=record)
