"""Reading user and pack documents (YAML or JSON) with one-line, keyed errors.

(Writing lives in `_output`; `atomic_output`/`write_atomic` are re-exported here.)
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, BaseModel, TypeAdapter, ValidationError

from residency._output import atomic_output, note_input, write_atomic
from residency.errors import InputError

# Bounds every reader applies where input is read (one-line keyed errors, never a crash).
MAX_INPUT_BYTES = int(os.environ.get("RESIDENCY_MAX_INPUT_BYTES", str(2 * 1024**3)))
MAX_DEPTH = 200  # nesting levels: far beyond any map, pack or `terraform show -json` output
MAX_INT_DIGITS = 19  # signed 64-bit: what SQLite, JSON consumers and date arithmetic accept
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)

# libyaml's C loader is ~10x faster on large maps; pure Python is the fallback
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(_Base):  # type: ignore[misc]
    """Safe loader that leaves timestamps as strings (the schema parses dates, so a bad
    date is reported with its key), rejects duplicate keys and bounds integers."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _DuplicateKeyError(str(key_node.value), key_node.start_mark.line + 1)
                seen[key] = 1
        return super().construct_mapping(node, deep=deep)


def _yaml_int(loader: Any, node: Any) -> int:
    digits = sum(ch.isdigit() for ch in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise _TooLargeError(f"integer of {digits} digits (at most {MAX_INT_DIGITS})",
                        node.start_mark.line + 1)
    value: int = yaml.SafeLoader.construct_yaml_int(loader, node)
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _yaml_int)


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str, line: int | None = None) -> None:
        super().__init__(f"duplicate key {key!r} (a later value would silently replace the "
                         "first)")
        self.line = line


class _TooLargeError(ValueError):
    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.line = line


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return out


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _TooLargeError(f"integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _no_constant(name: str) -> Any:
    raise _TooLargeError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_int=_bounded_int,
                            parse_constant=_no_constant)
# `\ud83d` not followed by a low surrogate, or a low surrogate not preceded by a high one
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_YAML_SURROGATE = re.compile(rb"\\(?:u|U0000)[dD][89a-fA-F][0-9a-fA-F]{2}")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Building millions of acyclic records triggers needless full collections; pause
    the cyclic collector for the duration (reference counting still frees memory).

    What outlives the pause is old by then: it goes straight to the oldest generation
    (`freeze` then `unfreeze`, two list splices) rather than staying young, where the
    first collection after the pause would walk every object made during it (1.6 s after
    `report tia` on a 100,000-flow map). It stays collectable by a full collection."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.enable()
            gc.unfreeze()


@contextmanager
def _depth_limit(levels: int) -> Iterator[None]:
    """The C JSON scanner counts its nesting against the interpreter's recursion limit:
    lowering it for the parse bounds the depth at C speed (a RecursionError, not a crash)."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + levels + 20)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def read_bytes(path: Path, error: type[InputError] = InputError) -> bytes:
    """The bytes of an input file, size-bounded, noted as an input of this run."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise error(where, None, f"file of {size} bytes is larger than the limit of "
                        f"{MAX_INPUT_BYTES} (RESIDENCY_MAX_INPUT_BYTES)")
        if path.is_dir():
            raise error(where, None, "is a directory, not a file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(where, None, "file not found") from None
    except OSError as exc:
        raise error(where, None, f"cannot read: {exc.strerror}") from None
    note_input(path)
    return data


def parse_json(data: bytes, where: str, error: type[InputError] = InputError) -> Any:
    """JSON with every bound: duplicate keys, depth, integer size, NaN, lone surrogates."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(where, f"byte {exc.start}", "not UTF-8 text") from None
    # every surrogate escape starts `\ud` or `\uD`: the regex (slow) runs only if one does,
    # not on every plan with `\u003c` (Terraform escapes <, > and & in policy JSON)
    if (b"\\ud" in data or b"\\uD" in data) and (m := _LONE_SURROGATE.search(data)):
        line = data.count(b"\n", 0, m.start()) + 1
        raise error(where, f"line {line}", f"lone surrogate escape {m.group().decode()!s} "
                    "(not a Unicode character)")
    try:
        with _depth_limit(MAX_DEPTH):
            return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise error(where, f"line {exc.lineno} column {exc.colno}",
                    f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise error(where, None, f"nested more than {MAX_DEPTH} levels deep") from None
    except (_DuplicateKeyError, _TooLargeError) as exc:
        raise error(where, None, str(exc)) from None
    except ValueError as exc:  # e.g. the interpreter's own integer-string limit
        raise error(where, None, f"invalid JSON: {exc}") from None


def parse_yaml(data: bytes, where: str, error: type[InputError] = InputError) -> Any:
    """YAML (safe loader only) with the same bounds as `parse_json`."""
    try:
        doc = yaml.load(data, Loader=_Loader)  # noqa: S506 - CSafeLoader/SafeLoader only
    except yaml.MarkedYAMLError as exc:
        line = f"line {exc.problem_mark.line + 1}" if exc.problem_mark else None
        raise error(where, line, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise error(where, None, f"invalid YAML: {exc}") from None
    except (_DuplicateKeyError, _TooLargeError) as exc:
        raise error(where, f"line {exc.line}" if exc.line else None, str(exc)) from None
    except RecursionError:
        raise error(where, None, f"nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        # the safe constructor's own failures, e.g. `!!bool maybe`, `!!int x`, `!!binary ?`
        raise error(where, None, f"invalid YAML value: {type(exc).__name__}: {exc}") from None
    if _YAML_SURROGATE.search(data):
        _reject_surrogates(doc, where, error)
    _check_depth(doc, where, error)
    return doc


def _check_depth(doc: Any, where: str, error: type[InputError]) -> None:
    """Iterative walk (YAML documents are hand-written and small; JSON is bounded in C)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error(where, None, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


def _reject_surrogates(doc: Any, where: str, error: type[InputError]) -> None:
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise error(where, None, f"string {node!r} holds a lone surrogate (not a "
                            "Unicode character)") from None
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def read_document(path: Path, error: type[InputError] = InputError) -> Any:
    """Parse `path` as JSON (by suffix) or YAML (safe loader only), with every bound."""
    return parse_document(read_bytes(path, error), path, error)


def parse_document(data: bytes, path: Path, error: type[InputError] = InputError) -> Any:
    """`data`, read from `path`, parsed as `read_document` parses it."""
    if path.suffix.lower() == ".json":
        return parse_json(data, str(path), error)
    return parse_yaml(data, str(path), error)


def check_date(value: dt.date) -> dt.date:
    """Dates outside 1900-2199 are typos that would overflow date arithmetic later."""
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"date {value.isoformat()} is outside {MIN_DATE.year}-{MAX_DATE.year}")
    return value


BoundedDate = Annotated[dt.date, AfterValidator(check_date)]


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


__all__ = [
    "BoundedDate",
    "atomic_output",
    "check_date",
    "loc_to_key",
    "parse_document",
    "parse_json",
    "parse_yaml",
    "paused_gc",
    "read_bytes",
    "read_document",
    "validate",
    "validate_many",
    "write_atomic",
]
