"""README stays true: the rule table is generated, the quick start commands run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from residency.cli.main import cli
from residency.cli.policies import rules_markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_rule_reference_is_generated_from_the_rules() -> None:
    block = re.search(r"<!-- rules:begin -->\n(.*?)<!-- rules:end -->", README, re.S)
    assert block, "README lost its rule reference markers"
    assert block.group(1) == rules_markdown(), "run `residency rules --format markdown`"


def test_quick_start_has_exactly_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    assert len(blocks) == 2 and all(b.count("\n") == 1 for b in blocks), blocks


def test_every_linked_file_exists() -> None:
    for target in re.findall(r"\]\(((?!https?://)[^)#]+)\)", README):
        assert (ROOT / target).exists(), target


def readme_commands() -> list[list[str]]:
    """Every `residency ...` command in the README's `sh` blocks, as argv after the program
    (commands chained with `&&` are split; `# comments` dropped)."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and Path(words[0]).name == "residency":
                    out.append(words[1:])
    return out


COMMANDS = readme_commands()


def test_readme_shows_every_job() -> None:
    used = {argv[0] for argv in COMMANDS}
    assert {"demo", "check", "scan", "gate", "history", "diff", "report", "graph"} <= used


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_readme_command_parses(argv: list[str]) -> None:
    """The command exists and its options parse as written (nothing runs: no cloud, no file)."""
    ctx = click.Context(cli, info_name="residency")
    command: click.Command = cli
    args = list(argv)
    while isinstance(command, click.Group):
        if command.invoke_without_command and command is not cli and (
                not args or args[0].startswith("-")):
            break  # a group that is also a command (`history` lists runs)
        assert args, f"{argv}: a sub-command is missing"
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`residency {' '.join(argv)}`: no command {name!r}"
        ctx = click.Context(sub, info_name=name, parent=ctx)
        command = sub
    command.make_context(ctx.info_name, args, parent=ctx.parent)
