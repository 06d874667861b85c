"""Settings from a configuration file and the environment, handed to click as `default_map`.

Precedence, highest first: the command line; the environment (the command's own
`RESIDENCY_<COMMAND>_<OPTION>`, then `RESIDENCY_<OPTION>` for the options in `SHARED`); the
configuration file (the command's section, then a top-level key); the option's default.

The file is `.residency.yaml` (or `.residency.yml`, or a `[tool.residency]` table in
`pyproject.toml`), the nearest one at or above the working directory. The search stops at the
first directory holding `.git` (a repository's settings never leak in from a parent folder)
or at the filesystem root. `--config FILE` / `RESIDENCY_CONFIG` name one instead.

Names come from the long flag: `--format` is `format:` in the file and `RESIDENCY_GATE_FORMAT`
in the environment. click's `auto_envvar_prefix` is not used because it names a variable after
the Python parameter (`--format` is `fmt`, `--map` is `map_path`: `RESIDENCY_CHECK_MAP_PATH`)
and would read `RESIDENCY_VERSION` as `--version`. Environment values still go through click's
own `default_map`, so click converts and checks them exactly as it does a flag; this module
checks them first only to name the variable or the file and key in the one-line error.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from residency._io import read_bytes, read_document
from residency.cli.common import QUIET
from residency.errors import InputError
from residency.redact import redact

log = logging.getLogger(__name__)

PREFIX = "RESIDENCY"
CONFIG_NAMES = (".residency.yaml", ".residency.yml")
PYPROJECT = "pyproject.toml"
META = "residency.settings"  # key in click's shared Context.meta: the loaded `Config`

# Options that mean the same on every command that has them: these alone may be set once for
# all commands (a top-level key, `RESIDENCY_<OPTION>`). `--output` and `--format` differ per
# command (a file, a folder; sarif, xlsx), so they are set per command.
SHARED = frozenset({"fail_on", "map", "policies", "as_of", "assume_invalid", "db",
                    "sarif_root", "waivers", "baseline"})
# The group's own options a file may set (their variables are read by click: RESIDENCY_QUIET)
GROUP_KEYS = ("quiet", "verbose")

_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)  # by the number of -v (-q: ERROR)
_NO_DEFAULT = click.Option(["--unset"]).default  # click's "no default given" sentinel


class ConfigError(InputError):
    """The configuration file or a `RESIDENCY_*` variable is invalid (exit 2)."""


@dataclass(frozen=True, slots=True)
class Entry:
    key: str  # as written, dotted from the top: `gate.fail-on`, `tool.residency.fail_on`
    value: Any


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded configuration file (or none): top-level keys and per-command sections."""

    path: Path | None
    searched_from: Path
    stopped_at: str  # where the upward search ended, and why
    top: Mapping[str, Entry] = field(default_factory=dict)
    sections: Mapping[str, Entry] = field(default_factory=dict)  # command -> raw mapping

    def where(self) -> str:
        if self.path is None:
            return f"none found (searched {self.searched_from} up to {self.stopped_at})"
        return str(self.path)


@dataclass(frozen=True, slots=True)
class Setting:
    """One option's effective value for one command, and where it came from."""

    command: str  # "gate", "report html"
    option: str  # "--fail-on"
    name: str  # click's parameter name ("fail_on"; "fmt" for --format)
    value: Any
    source: str  # "default", "env RESIDENCY_FAIL_ON", "/repo/.residency.yaml: gate.fail_on"
    variables: tuple[str, ...]  # the variables read for it, in precedence order
    from_click_env: bool = False  # an explicit `envvar=` click reads itself (RESIDENCY_DB)

    @property
    def is_default(self) -> bool:
        return self.source == "default"


# ---------------------------------------------------------------------- the file
def find_config(start: Path) -> tuple[Path | None, bytes | None, str]:
    """The nearest settings file at or above `start`: (path, its bytes, where the search
    stopped). A pyproject.toml counts only if it has a `[tool.residency]` table."""
    for directory in (start, *start.parents):
        for name in CONFIG_NAMES:
            if (directory / name).is_file():
                return directory / name, None, str(directory)
        pyproject = directory / PYPROJECT
        if pyproject.is_file():
            data = read_bytes(pyproject, ConfigError)
            if b"residency" in data and _table(_toml(data, pyproject), pyproject) is not None:
                return pyproject, data, str(directory)
        if (directory / ".git").exists():
            return None, None, f"{directory} (the repository root: .git)"
    return None, None, f"{start.anchor or '/'} (the filesystem root)"


def load_config(explicit: Path | None, cwd: Path, commands: tuple[str, ...]) -> Config:
    """Read and check the file's shape: every top-level key is a shared option, a group
    option or a command; the values of a section are checked when its command runs."""
    if explicit is not None:
        path: Path | None = explicit
        data, stopped = None, "(given by --config or RESIDENCY_CONFIG)"
    else:
        path, data, stopped = find_config(cwd)
    if path is None:
        return Config(None, cwd, stopped)
    doc: Any
    if path.suffix.lower() == ".toml":
        doc = _toml(data if data is not None else read_bytes(path, ConfigError), path)
        prefix = ""
        if path.name == PYPROJECT:
            doc = _table(doc, path)
            prefix = "tool.residency."
    else:
        doc = read_document(path, ConfigError)
        prefix = ""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(str(path), prefix.rstrip(".") or None,
                          f"expected a mapping of settings, got {type(doc).__name__}")
    top: dict[str, Entry] = {}
    sections: dict[str, Entry] = {}
    allowed = sorted({*SHARED, *GROUP_KEYS, *(_key(c) for c in commands)})
    for name, entry in _entries(doc, prefix, str(path)):
        if name in {_key(c) for c in commands}:
            if not isinstance(entry.value, dict):
                raise ConfigError(str(path), entry.key, "a command's section must be a "
                                  f"mapping of its options, got {entry.value!r}")
            sections[name] = entry
        elif name in SHARED or name in GROUP_KEYS:
            top[name] = entry
        else:
            raise ConfigError(str(path), entry.key, _unknown(
                name, allowed, "not an option every command shares, nor a command (set "
                "other options in the command's section, e.g. `gate: {format: sarif}`)"))
    return Config(path, cwd, stopped, top, sections)


def _toml(data: bytes, path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:  # a duplicate key is an error here too
        raise ConfigError(str(path), None, f"invalid TOML: {exc}") from None


def _table(doc: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """pyproject.toml's `[tool.residency]`, or None when it has none."""
    tool = doc.get("tool", {})
    table = tool.get("residency") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(str(path), "tool.residency", "must be a table")
    return table


def _key(name: str) -> str:
    return name.replace("-", "_")


def _entries(doc: dict[str, Any], prefix: str, where: str) -> Iterator[tuple[str, Entry]]:
    """Keys normalised (`fail-on` = `fail_on`); writing both spellings is a duplicate."""
    seen: dict[str, str] = {}
    for raw, value in doc.items():
        if not isinstance(raw, str):
            raise ConfigError(where, f"{prefix}{raw}", "keys must be strings")
        name = _key(raw)
        if name in seen:
            raise ConfigError(where, f"{prefix}{raw}", f"duplicate key (also written "
                              f"{prefix}{seen[name]})")
        seen[name] = raw
        yield name, Entry(f"{prefix}{raw}", value)


def _unknown(name: str, choices: list[str], hint: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    return "unknown key" + (f"; did you mean {close[0]!r}?" if close else f": {hint}")


# ---------------------------------------------------------------------- resolution
def env_name(path: tuple[str, ...], flag: str) -> str:
    """`RESIDENCY_GATE_FAIL_ON`, `RESIDENCY_REPORT_HTML_OUTPUT`, `RESIDENCY_FAIL_ON`."""
    return "_".join((PREFIX, *path, flag)).upper().replace("-", "_")


def flag_name(option: click.Option) -> str:
    """The option's name as users write it: its first long flag, `_` for `-`."""
    longs = [o for o in option.opts if o.startswith("--")]
    return _key(longs[0][2:]) if longs else (option.name or "")


def resolve(
    path: tuple[str, ...],
    command: click.Command,
    config: Config,
    environ: Mapping[str, str],
) -> list[Setting]:
    """Every option of `command` (and of its sub-commands, for a group) with its value and
    source. Values from the environment and the file are checked here, so a bad one is
    exit 2 naming the variable, or the file and key, before the command starts."""
    section = _section(path, config)
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        names = command.list_commands(ctx)
        own = {flag_name(p): p for p in command.params if isinstance(p, click.Option)}
        for name, entry in section.items():
            if name not in {_key(n) for n in names} and name not in own:
                raise ConfigError(str(config.path), entry.key,
                                  _unknown(name, [*names, *own], f"{' '.join(path)} has the "
                                           f"sub-commands {', '.join(names)}"))
        # a group that is also a command (`history` lists runs): its own options first
        plain = {k: v for k, v in section.items() if k in own}
        gctx = click.Context(command, info_name=path[-1], resilient_parsing=True)
        out: list[Setting] = [_setting(path, flag, option, gctx, config, plain, environ)
                              for flag, option in own.items()]
        for name in names:
            sub = command.get_command(ctx, name)
            if sub is not None:
                out += resolve((*path, name), sub, config, environ)
        return out
    ctx = click.Context(command, info_name=path[-1], resilient_parsing=True)
    options = {flag_name(p): p for p in command.params if isinstance(p, click.Option)}
    for name, entry in section.items():
        if name not in options:
            raise ConfigError(str(config.path), entry.key, _unknown(
                name, sorted(options), f"`residency {' '.join(path)}` has no option "
                f"--{name.replace('_', '-')}"))
    return [_setting(path, flag, option, ctx, config, section, environ)
            for flag, option in options.items()]


def _section(path: tuple[str, ...], config: Config) -> dict[str, Entry]:
    """The file's entries for this command path (`report: {html: {...}}` for report html)."""
    if not path:
        return {}
    entry = config.sections.get(_key(path[0]))
    for part in path[1:]:
        if entry is None:
            return {}
        inner = dict(_entries(entry.value, entry.key + ".", str(config.path)))
        entry = inner.get(_key(part))
        if entry is not None and not isinstance(entry.value, dict):
            raise ConfigError(str(config.path), entry.key, "a command's section must be a "
                              f"mapping of its options, got {entry.value!r}")
    if entry is None:
        return {}
    return dict(_entries(entry.value, entry.key + ".", str(config.path)))


def _setting(
    path: tuple[str, ...],
    flag: str,
    option: click.Option,
    ctx: click.Context,
    config: Config,
    section: dict[str, Entry],
    environ: Mapping[str, str],
) -> Setting:
    command, opt = " ".join(path), f"--{flag.replace('_', '-')}"
    assert option.name is not None
    explicit = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar or ())
    shared = [env_name((), flag)] if flag in SHARED else []
    variables = tuple(dict.fromkeys([*explicit, env_name(path, flag), *shared]))
    for var in variables:
        raw = environ.get(var)
        if raw:  # an empty variable is unset, as click reads it
            value: Any = raw
            if option.multiple or option.nargs != 1:
                value = option.type.split_envvar_value(raw)
            _check(option, ctx, value, f"environment variable {var}", None)
            # the raw value: the redacting log handler, not this line, keeps secrets out
            log.debug("%s %s = %s (env %s)", command, opt, raw, var)
            return Setting(command, opt, option.name, value, f"env {var}", variables,
                           from_click_env=var in explicit)
    for entry in (section.get(flag), config.top.get(flag) if flag in SHARED else None):
        if entry is not None:
            value = _from_file(option, entry, config)
            _check(option, ctx, value, str(config.path), entry.key)
            log.debug("%s %s = %s (%s: %s)", command, opt, value, config.path, entry.key)
            return Setting(command, opt, option.name, value, f"{config.path}: {entry.key}",
                           variables)
    default = option.default
    if callable(default):
        default = default()
    if default is _NO_DEFAULT:
        default = () if option.multiple else False if option.is_flag else None
    return Setting(command, opt, option.name, default, "default", variables)


def _from_file(option: click.Option, entry: Entry, config: Config) -> Any:
    """A file's value as click takes it; a relative path is relative to the file's folder."""
    value = entry.value
    where = str(config.path)
    if isinstance(value, dict):
        raise ConfigError(where, entry.key, f"expected a value for {option.opts[-1]}, got a "
                          "mapping")
    many = option.multiple or option.nargs != 1
    if isinstance(value, list):
        if not many:
            raise ConfigError(where, entry.key, f"expected one value for {option.opts[-1]}, "
                              "got a list")
    elif many:
        value = [value]
    if isinstance(option.type, click.Path) and config.path is not None:
        base = config.path.parent
        if many:
            value = [str(base / v) if isinstance(v, str) else v for v in value]
        elif isinstance(value, str):
            value = str(base / value)
    return value


def _check(option: click.Option, ctx: click.Context, value: Any, where: str,
           key: str | None) -> None:
    try:
        option.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        raise ConfigError(where, key, f"{exc.message} (for {option.opts[-1]})") from None


def default_map(settings: list[Setting]) -> dict[str, Any]:
    """click's nested `default_map` from resolved settings (`{"html": {"output": ...}}`
    below a group); defaults and the variables click reads itself are left to click."""
    out: dict[str, Any] = {}
    for s in settings:
        if s.is_default or s.from_click_env:
            continue
        *groups, _ = s.command.split(" ")
        node = out
        for part in groups[1:]:
            node = node.setdefault(part, {})
        node[s.name] = s.value
    return out


# ---------------------------------------------------------------------- the group's hook
def configure(ctx: click.Context, quiet: bool, verbose: int, config_path: Path | None) -> None:
    """Called by the group: load the file, apply -q / -v (after the file's `quiet:` /
    `verbose:`, which a flag or variable beats) and give the invoked command its
    `default_map`."""
    group = ctx.command
    assert isinstance(group, click.Group)
    config = load_config(config_path, Path.cwd(), tuple(group.list_commands(ctx)))
    ctx.meta[META] = config
    quiet, verbose = _group_options(ctx, config, quiet, verbose)
    ctx.meta[QUIET] = quiet
    if quiet or verbose:  # through the redacting handler main() installs; for this run only
        root = logging.getLogger()
        ctx.call_on_close(functools.partial(root.setLevel, root.level))
        root.setLevel(logging.ERROR if quiet else _LEVELS[min(verbose, 2)])
    if config.path is not None:
        log.info("settings from %s", config.path)
    name = ctx.invoked_subcommand
    command = group.get_command(ctx, name) if name else None
    if name and command is not None:
        ctx.default_map = {name: default_map(resolve((name,), command, config, os.environ))}


def _group_options(ctx: click.Context, config: Config, quiet: bool,
                   verbose: int) -> tuple[bool, int]:
    """-q and -v after the file; of two that contradict, the higher source wins."""
    ranks: dict[str, int] = {}
    values: dict[str, Any] = {"quiet": quiet, "verbose": verbose}
    for name in GROUP_KEYS:
        source = ctx.get_parameter_source(name)
        ranks[name] = {ParameterSource.COMMANDLINE: 3, ParameterSource.ENVIRONMENT: 2}.get(
            source, 0) if source is not None else 0
        entry = config.top.get(name)
        if ranks[name] == 0 and entry is not None:
            option = next(p for p in ctx.command.params if p.name == name)
            assert isinstance(option, click.Option)
            _check(option, ctx, entry.value, str(config.path), entry.key)
            values[name] = option.type_cast_value(ctx, entry.value)
            ranks[name] = 1
    quiet, verbose = bool(values["quiet"]), int(values["verbose"])
    if quiet and verbose:
        if ranks["quiet"] == ranks["verbose"]:
            raise click.UsageError("--quiet and --verbose contradict each other: give one")
        if ranks["quiet"] > ranks["verbose"]:
            verbose = 0
        else:
            quiet = False
    return quiet, verbose


# ---------------------------------------------------------------------- `residency config`
@click.command("config")
@click.argument("commands", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def config(ctx: click.Context, commands: tuple[str, ...]) -> None:
    """Show the settings in effect for each command (or the COMMANDs named) and where each
    comes from: a flag, an environment variable, the configuration file or the default.

    Precedence: flag > RESIDENCY_<COMMAND>_<OPTION> > RESIDENCY_<OPTION> (shared options:
    fail-on, map, policies, as-of, assume-invalid, db, sarif-root, waivers, baseline) > the
    command's section of the file > a top-level key of the file > default.
    """
    root = ctx.find_root()
    group = root.command
    assert isinstance(group, click.Group)
    cfg: Config = ctx.meta.get(META) or load_config(None, Path.cwd(),
                                                    tuple(group.list_commands(root)))
    names = group.list_commands(root)
    for name in commands:
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            raise click.BadParameter(f"no command {name!r}" + (
                f"; did you mean {close[0]!r}?" if close else ""), param_hint="COMMAND")
    rows = [("COMMAND", "OPTION", "VALUE", "FROM", "VARIABLE"),
            *(("residency", f"--{name}", *_group_row(root, cfg, name), env_name((), name))
              for name in GROUP_KEYS)]
    for name in commands or names:
        command = group.get_command(root, name)
        if command is None:
            continue
        for s in resolve((name,), command, cfg, os.environ):
            rows.append((s.command, s.option, _show(s.value), s.source,
                         ", ".join(s.variables)))
    click.echo(f"config file: {cfg.where()}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
                   + "  " + r[-1])


def _group_row(root: click.Context, cfg: Config, name: str) -> tuple[str, str]:
    source = root.get_parameter_source(name)
    if source == ParameterSource.COMMANDLINE:
        return _show(root.params.get(name)), "flag"
    if source == ParameterSource.ENVIRONMENT:
        return _show(root.params.get(name)), f"env {env_name((), name)}"
    if name in cfg.top:
        return _show(cfg.top[name].value), f"{cfg.path}: {cfg.top[name].key}"
    return _show(root.params.get(name)), "default"


def _show(value: Any) -> str:
    """A value as a user would write it; redacted (a database URL may hold a password)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_show(v) for v in value) or "-"
    return redact(str(value))
