"""Shared CLI plumbing: options, the error boundary and the exit-code mapping."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from residency._io import atomic_output, check_date, write_atomic
from residency._output import begin_run
from residency.errors import ResidencyError
from residency.model import DataMap, Report, Severity
from residency.redact import one_line

if TYPE_CHECKING:
    from residency.policy.pack import PolicyPack

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    CLEAN = 0
    FINDINGS = 1
    ERROR = 2


FAIL_ON = ("error", "warning", "info", "never")
DEFAULT_MAP = Path("residency.yaml")
BIG_REPORT = 500_000  # transfers + findings beyond which `finish` skips interpreter teardown


def exit_code(report: Report, fail_on: str) -> ExitCode:
    """0 when nothing (unwaived) is at or above the threshold, 1 otherwise."""
    if fail_on == "never":
        return ExitCode.CLEAN
    threshold = Severity(fail_on).rank
    worst = report.max_severity()
    return ExitCode.FINDINGS if worst is not None and worst.rank >= threshold else ExitCode.CLEAN


QUIET = "residency.quiet"  # key in click's shared Context.meta, set by the group from -q


def is_quiet() -> bool:
    """`-q` (or `quiet:` / RESIDENCY_QUIET) is in effect for this command."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET))


def warn(message: str) -> None:
    """A warning on stderr, unless -q (the output and the exit code still say it all)."""
    if not is_quiet():
        click.echo(f"residency: warning: {one_line(message)}", err=True)


def note(message: str) -> None:
    """Progress and other chatter on stderr, unless -q."""
    if not is_quiet():
        click.echo(f"residency: {one_line(message)}", err=True)


def show_progress() -> bool:
    """Whether to draw a progress bar: stderr is a terminal and -q is not in effect."""
    return not is_quiet() and sys.stderr.isatty()


def guarded(func: F) -> F:
    """Turn any ResidencyError into one line on stderr and exit 2 (never a traceback)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ResidencyError as exc:
            click.echo(f"residency: error: {one_line(str(exc))}", err=True)
            sys.exit(ExitCode.ERROR)

    return wrapper  # type: ignore[return-value]


def parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return check_date(dt.date.fromisoformat(value))
    except ValueError as exc:
        problem = str(exc) if str(exc).startswith("date ") else "is not a date (YYYY-MM-DD)"
        raise click.BadParameter(f"{value!r}: {problem}") from None


def write_output(text: str, output: Path | None) -> None:
    """Print, or write to a file atomically (never half a file)."""
    if output is None:
        click.echo(text, nl=False)
        return
    write_atomic(output, text)


def write_report(report: Report, fmt: str, output: Path | None) -> None:
    """Render with the named formatter to stdout or atomically to a file (streamed)."""
    from residency.formats import get_formatter

    formatter = get_formatter(fmt)
    if output is None:
        formatter.write(report, sys.stdout)
        return
    with atomic_output(output) as fh:
        formatter.write(report, fh)  # type: ignore[arg-type]  # text mode: a TextIO


def _start_run(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    begin_run(force=value)
    return value


def force_option(func: F) -> F:
    """`--force`: replace an existing output residency did not write. Not passed to the
    command: it sets the run's context variable read by `residency._output`."""
    return click.option(
        "--force", is_flag=True, is_eager=True, expose_value=False, callback=_start_run,
        help="Replace an existing output file residency did not write (TIA drafts: write "
        "into a folder holding other files, never over them). Never replaces an input.",
    )(func)


def policy_options(func: F) -> F:
    return click.option(
        "--policies", "policies", type=click.Path(path_type=Path, file_okay=False),
        default=None, help="Policy pack directory (default: the shipped pack, or "
        "$RESIDENCY_POLICIES).",
    )(func)


def eval_options(func: F) -> F:
    """Options every evaluating command shares (check, scan, gate)."""
    from residency.formats import FORMATS

    func = click.option(
        "--sarif-root", type=click.Path(path_type=Path, file_okay=False), default=None,
        expose_value=False,
        callback=lambda _c, _p, v: os.environ.__setitem__("RESIDENCY_SARIF_ROOT", str(v))
        if v else None,
        help="Repository root that SARIF file paths are relative to (default: "
        "$RESIDENCY_SARIF_ROOT, else the git work tree).")(func)
    func = click.option("--fail-on", type=click.Choice(FAIL_ON), default="error",
                        show_default=True, help="Lowest severity that makes the exit code 1.")(func)
    func = click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
                        default=None, help="Write the report here instead of stdout.")(func)
    func = click.option("--format", "fmt", type=click.Choice(tuple(FORMATS)), default="text",
                        show_default=True)(func)
    func = click.option("--assume-invalid", multiple=True, metavar="ID",
                        help="Treat this adequacy decision or instrument as revoked "
                        "(what-if; repeatable).")(func)
    func = click.option("--as-of", callback=parse_date, default=None, metavar="DATE",
                        help="Evaluate the law on this date (default: today).")(func)
    func = click.option("--map", "map_path", type=click.Path(path_type=Path, dir_okay=False),
                        default=DEFAULT_MAP, show_default=True,
                        help="The declared data map (YAML or JSON).")(func)
    return force_option(policy_options(func))


def load_inputs(
    policies: Path | None,
    map_path: Path,
    assume_invalid: tuple[str, ...],
    *,
    map_required: bool,
) -> tuple[PolicyPack, DataMap]:
    """The policy pack and the data map every evaluating command starts from.

    `scan`, `gate` and `evaluate` may run without a map (no `residency.yaml` in the
    current directory); `check` needs one. `--assume-invalid` ids must exist in the pack.
    """
    from residency.datamap import load_map
    from residency.policy.pack import PolicyPack

    pack = PolicyPack.load(policies)
    unknown = [
        i for i in assume_invalid if not pack.find_decision(i) and not pack.find_instrument(i)
    ]
    if unknown:
        raise click.BadParameter(
            f"unknown decision or instrument id(s): {', '.join(unknown)}",
            param_hint="--assume-invalid",
        )
    if not map_required and map_path == DEFAULT_MAP and not map_path.exists():
        return pack, DataMap((), (), ())
    return pack, load_map(map_path, pack)


def finish(
    report: Report,
    *,
    fmt: str,
    output: Path | None,
    fail_on: str,
    command: str,
    scope: str,
    db: str | None = None,
    record: bool = False,
    shard: str | None = None,
) -> NoReturn:
    """Write the report, record it when asked, and exit with the mapped code."""
    write_report(report, fmt, output)
    if db or record:
        from residency.cli.history import record_if_requested

        record_if_requested(report, command, scope, db, record, shard)
    code = exit_code(report, fail_on)
    if len(report.transfers) + len(report.findings) > BIG_REPORT:
        # Everything is written and flushed; freeing millions of objects one by one would
        # take several more seconds for nothing, so leave without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


_FILE = click.Path(path_type=Path, dir_okay=False)


def postprocess_options(func: F) -> F:
    """Waivers and baselines, the same on every evaluating command (check, scan, gate)."""
    func = click.option("--write-baseline", "write_baseline_path", type=_FILE, default=None,
                        help="Record this run's findings and transfers as the new baseline.")(func)
    func = click.option("--baseline", "baseline_path", type=_FILE, default=None,
                        help="Only findings not in this baseline count.")(func)
    return click.option("--waivers", "waivers_path", type=_FILE, default=None,
                        help="Accepted findings with owner, reference and expiry (YAML or "
                        "JSON).")(func)


def postprocess(
    report: Report,
    waivers_path: Path | None,
    baseline_path: Path | None,
    write_baseline_path: Path | None,
) -> Report:
    """The one post-processing step after the engine: waivers, then the baseline."""
    if waivers_path is not None:
        from residency.waivers import apply_waivers, load_waivers

        # expiry and maximum life are judged on the real date: --as-of cannot revive a waiver
        report, _ = apply_waivers(report, load_waivers(waivers_path), dt.date.today())
    if baseline_path is not None:
        from residency.baseline import apply_baseline, load_baseline

        baseline = load_baseline(baseline_path)
        for warning in baseline.warnings():
            warn(warning)
        report = apply_baseline(report, baseline)
    if write_baseline_path is not None:
        from residency.baseline import write_baseline

        write_baseline(report, write_baseline_path)
    return report


def stable_path(path: Path) -> str:
    """A path as history scopes and baselines name it: relative to the repository root
    (the nearest `.git` above it) when inside one, else absolute, so the same file gets the
    same scope whatever directory the command runs from."""
    resolved = path.resolve()
    for parent in (resolved.parent, *resolved.parents):
        if (parent / ".git").exists():
            return resolved.relative_to(parent).as_posix()
    return resolved.as_posix()

