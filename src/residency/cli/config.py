"""Commands for hook runners that pass any number of files (`residency check-files`).

pre-commit hands a hook every staged file that matches; `check --map` takes one map, so the
`residency-check` hook runs this instead. Each map is judged on its own, exactly as `check`
would; the exit code is the worst one (2 for an unreadable map beats 1 for findings).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from residency._io import paused_gc
from residency.cli.common import FAIL_ON, ExitCode, exit_code, parse_date, write_report
from residency.errors import ResidencyError
from residency.redact import one_line


@click.command("check-files")
@click.argument("maps", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--policies", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Policy pack directory (default: the shipped pack, or $RESIDENCY_POLICIES).")
@click.option("--as-of", callback=parse_date, default=None, metavar="DATE",
              help="Evaluate the law on this date (default: today).")
@click.option("--assume-invalid", multiple=True, metavar="ID",
              help="Treat this adequacy decision or instrument as revoked (repeatable).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="error", show_default=True,
              help="Lowest severity that makes the exit code 1.")
def check_files(
    maps: tuple[Path, ...],
    policies: Path | None,
    as_of: dt.date,
    assume_invalid: tuple[str, ...],
    fail_on: str,
) -> None:
    """Run `check` on each data map in MAPS (the pre-commit hook's entry); none: exit 0."""
    from residency.cli.common import load_inputs
    from residency.datamap import load_map
    from residency.policy.engine import Engine, EngineOptions
    from residency.policy.pack import PolicyPack

    pack: PolicyPack | None = None
    worst = ExitCode.CLEAN
    for path in maps:
        if len(maps) > 1:
            click.echo(f"== {path}")
        try:
            with paused_gc():
                if pack is None:  # the pack (and --assume-invalid) once, every map on it
                    pack, datamap = load_inputs(policies, path, assume_invalid,
                                                map_required=True)
                else:
                    datamap = load_map(path, pack)
                report = Engine(pack, EngineOptions(as_of, frozenset(assume_invalid))).run(
                    datamap)
        except ResidencyError as exc:  # this map is unreadable; the others are still judged
            sys.stdout.flush()
            click.echo(f"residency: error: {one_line(str(exc))}", err=True)
            worst = ExitCode.ERROR
            continue
        write_report(report, "text", None)
        worst = max(worst, exit_code(report, fail_on))
    sys.stdout.flush()
    sys.exit(worst)
