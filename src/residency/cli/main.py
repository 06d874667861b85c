"""Entry point: a click group whose sub-commands are imported only when used."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from residency import __version__
from residency.errors import ResidencyError
from residency.redact import install_logging_filter, one_line, redact

# name -> "module:attribute"; keeps start-up lean (the gate runs on every CI push)
COMMANDS: dict[str, str] = {
    "check": "residency.cli.check:check",
    "check-files": "residency.cli.config:check_files",
    "config": "residency.cli.settings:config",
    "demo": "residency.cli.demo:demo",
    "diff": "residency.cli.history:diff",
    "evaluate": "residency.cli.history:evaluate",
    "export": "residency.cli.history:export",
    "history": "residency.cli.history:history",
    "gate": "residency.cli.gate:gate",
    "policies": "residency.cli.policies:policies",
    "rules": "residency.cli.policies:rules",
    "scan": "residency.cli.scan:scan",
    "report": "residency.cli.report:report",
    "graph": "residency.cli.graph:graph",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def invoke(self, ctx: click.Context) -> Any:
        return guarded_invoke(lambda: super(LazyGroup, self).invoke(ctx))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="residency")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda _c, _p, v: _DEBUG.append(True) if v else None,
              help="On an internal error, print the (redacted) traceback.")
@click.option("--quiet", "-q", is_flag=True, envvar="RESIDENCY_QUIET",
              help="Only the result and errors: no warnings, notes or progress on stderr.")
@click.option("--verbose", "-v", count=True, envvar="RESIDENCY_VERBOSE",
              help="Log to stderr: -v INFO, -vv DEBUG (redacted like every message).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, envvar="RESIDENCY_CONFIG",
              help="Settings file (default: the nearest .residency.yaml, or pyproject.toml "
              "with [tool.residency], from here up to the repository root).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: int, config_path: Path | None) -> None:
    """Where personal data lives, where it flows, and whether each transfer is lawful.

    Every option can also be set in .residency.yaml or as RESIDENCY_<COMMAND>_<OPTION>;
    `residency config` shows what is in effect and where it comes from.
    """
    from residency.cli.settings import configure

    configure(ctx, quiet, verbose, config_path)


# Exit codes are a contract (README "Exit codes"): 0 clean, 1 findings, 2 usage or input
# error, 3 the tool itself failed. A crash must never read as "findings".
EXIT_INPUT = 2
EXIT_INTERNAL = 3
_DEBUG: list[bool] = []

# top-level module -> the extra that installs it
_EXTRAS = {
    "sqlalchemy": "history", "psycopg": "history", "jinja2": "reports", "pandas": "reports",
    "openpyxl": "reports", "pyarrow": "reports", "boto3": "aws", "botocore": "aws",
    "google": "gcp", "azure": "azure", "moto": "demo", "werkzeug": "demo", "flask": "demo",
}


def main(argv: Any = None) -> None:
    """The console-script entry point."""
    _setup_logging()
    cli.main(args=argv, prog_name="residency")


def guarded_invoke(run: Callable[[], Any]) -> Any:
    """The one exit-code boundary every command runs behind: nothing leaves as a traceback."""
    try:
        return run()
    except ResidencyError as exc:
        _fail(EXIT_INPUT, f"error: {exc}")
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            _internal(exc)
        _fail(EXIT_INPUT, f"error: this command needs the optional dependency {exc.name!r}: "
              f"pip install 'residency[{extra}]'")
    except KeyboardInterrupt:
        _fail(130, "interrupted")
    except BrokenPipeError:
        # the reader of our stdout went away (`| head`): not an error of ours
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except RecursionError as exc:
        _fail(EXIT_INPUT, f"error: input nested too deeply to process ({exc})")
    except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
        raise  # click's own exits and usage errors (exit 2) keep their meaning
    except Exception as exc:  # the boundary: report, never a traceback unless --debug
        _internal(exc)


def _internal(exc: BaseException) -> NoReturn:
    if _DEBUG or os.environ.get("RESIDENCY_DEBUG"):
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(redact(text))
    _fail(EXIT_INTERNAL, f"internal error: {type(exc).__name__}: {exc} (a bug in residency: "
          "rerun with --debug for the traceback and report it)")


def _fail(code: int, message: str) -> NoReturn:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"residency: {one_line(message)}\n")
        sys.stderr.flush()
    sys.exit(code)


def _setup_logging() -> None:
    """Library loggers (botocore, urllib3, azure) reach stderr through one redacting handler."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("residency: %(levelname)s: %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    install_logging_filter(root)
