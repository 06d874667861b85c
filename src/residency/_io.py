"""Reading user and pack documents (YAML or JSON) with one-line, keyed errors.

(Writing lives in `_output`; `atomic_output`/`write_atomic` are re-exported here.)
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from residency._output import atomic_output, note_input, write_atomic
from residency.errors import InputError

# libyaml's C loader is ~10x faster on large maps; pure Python is the fallback
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """Safe loader that leaves timestamps as strings: the schema parses dates, so a bad
    date is reported with its key instead of crashing the YAML constructor."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


@contextmanager
def paused_gc() -> Iterator[None]:
    """Building millions of acyclic records triggers needless full collections; pause
    the cyclic collector for the duration (reference counting still frees memory)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read_document(path: Path, error: type[InputError] = InputError) -> Any:
    """Parse `path` as JSON (by suffix) or YAML (safe loader only)."""
    try:
        text = path.read_bytes()
        note_input(path)
    except FileNotFoundError:
        raise error(str(path), None, "file not found") from None
    except OSError as exc:
        raise error(str(path), None, f"cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(str(path), f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
        except UnicodeDecodeError:
            raise error(str(path), None, "not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - CSafeLoader/SafeLoader only
    except yaml.MarkedYAMLError as exc:
        line = f"line {exc.problem_mark.line + 1}" if exc.problem_mark else None
        raise error(str(path), line, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise error(str(path), None, f"invalid YAML: {exc}") from None


def loc_to_key(loc: tuple[int | str, ...], data: Any = None) -> str:
    """Render a pydantic error location as `flows[3].safeguards[0].signed` (with ids)."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    out += f"(id={node['id']})"
            else:
                node = None
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "<top level>"


def validate(
    model: type[BaseModel], data: Any, path: Path, error: type[InputError] = InputError
) -> Any:
    """Validate `data` against `model`, turning the first error into a one-line InputError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _keyed(exc, data, path, error, ()) from None


def validate_many(
    adapter: TypeAdapter[Any],
    items: list[Any],
    start: int,
    prefix: tuple[int | str, ...],
    path: Path,
    error: type[InputError] = InputError,
) -> Any:
    """Validate a slice of a long list (bounded memory); keys name the item's full index."""
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        if loc and isinstance(loc[0], int):
            loc = (start + loc[0], *loc[1:])
        wrapped = {str(prefix[0]): [None] * start + items} if prefix else items
        raise _keyed(exc, wrapped, path, error, (*prefix, *loc), first) from None


def _keyed(
    exc: ValidationError,
    data: Any,
    path: Path,
    error: type[InputError],
    loc: tuple[int | str, ...],
    first: Any = None,
) -> InputError:
    first = first or exc.errors(include_url=False)[0]
    key = loc_to_key(loc or tuple(first["loc"]), data)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling against the documented schema)"
    elif first["type"] == "missing":
        msg = "required key is missing"
    return error(str(path), key, msg)


__all__ = ["atomic_output", "loc_to_key", "paused_gc", "read_document", "validate",
           "validate_many", "write_atomic"]
