"""Entry point: a click group whose sub-commands are imported only when used."""

from __future__ import annotations

import importlib
from typing import Any

import click

from residency import __version__

# name -> "module:attribute"; keeps start-up lean (the gate runs on every CI push)
COMMANDS: dict[str, str] = {
    "check": "residency.cli.check:check",
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

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="residency")
def cli() -> None:
    """Where personal data lives, where it flows, and whether each transfer is lawful."""


def main(argv: Any = None) -> None:
    cli.main(args=argv, prog_name="residency")
