"""`residency check`: evaluate the declared map against the policy pack."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from residency._io import paused_gc
from residency.cli.common import eval_options, exit_code, guarded, write_report
from residency.datamap import load_map
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack


@click.command()
@eval_options
@guarded
def check(
    map_path: Path,
    policies: Path | None,
    as_of: dt.date,
    assume_invalid: tuple[str, ...],
    fmt: str,
    output: Path | None,
    fail_on: str,
) -> None:
    """Judge every flow of the data map under GDPR Chapter V (and UK GDPR, Swiss FADP)."""
    pack = PolicyPack.load(policies)
    unknown = [
        i for i in assume_invalid if not pack.find_decision(i) and not pack.find_instrument(i)
    ]
    if unknown:
        raise click.BadParameter(f"unknown decision or instrument id(s): {', '.join(unknown)}",
                                 param_hint="--assume-invalid")
    datamap = load_map(map_path, pack)
    with paused_gc():
        report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(datamap)
        write_report(report, fmt, output)
    sys.exit(exit_code(report, fail_on))
