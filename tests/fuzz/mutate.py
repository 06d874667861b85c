"""Structure-aware and byte-level mutations of YAML and JSON documents, as hypothesis strategies.

A mutation starts from a parsed seed document, changes one place in it (delete a key, replace
a value with one of another type, swap a list for a mapping, nest it 1000+ levels deep, put
an out-of-range date there, rename a key, duplicate a key in the raw text, inject a YAML tag
or a small alias bomb), then serialises it back in the seed's own syntax. Byte-level
mutations (truncation, BOMs, UTF-16, an empty file, stray bytes) work on the serialised text.

Values Python cannot serialise faithfully (a 5000-digit integer, NaN, 1e400, a lone surrogate
escape, raw control characters, YAML tags) are written as raw text: the document is dumped
with a unique placeholder string at the mutated place, which is then replaced by the raw
snippet, so exactly the intended bytes reach the reader.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

Path_ = tuple[Any, ...]  # keys and list indices from the document root

PLACEHOLDER = "FUZZPLACEHOLDER0x5eed"
DEEP = 1200  # nesting levels for the deep-nesting mutation (the readers bound at 200)


@dataclass(frozen=True)
class Mutant:
    """One mutated document: its bytes and a readable description for failure reports."""

    data: bytes
    description: str


# ------------------------------------------------------------------ seeds and paths
def _plain(doc: Any) -> Any:
    """Dates (from YAML timestamps) as ISO strings, so YAML and JSON seeds mutate alike."""
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_plain(v) for v in doc]
    if isinstance(doc, dt.date):
        return doc.isoformat()
    return doc


def load_seed(text: str, syntax: str) -> Any:
    return _plain(json.loads(text) if syntax == "json" else yaml.safe_load(text))


def paths_of(doc: Any) -> list[Path_]:
    """Every place in the document (the root excluded), in document order."""
    out: list[Path_] = []
    stack: list[tuple[Any, Path_]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if path:
            out.append(path)
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in reversed(list(enumerate(node))))
    return out


def get_at(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _parent(doc: Any, path: Path_) -> tuple[Any, Any]:
    return get_at(doc, path[:-1]), path[-1]


def set_at(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    parent, last = _parent(doc, path)
    parent[last] = value
    return doc


def delete_at(doc: Any, path: Path_) -> Any:
    parent, last = _parent(doc, path)
    del parent[last]
    return doc


def rename_at(doc: Any, path: Path_, new_key: Any) -> Any:
    """Rename the mapping key at `path` (keeping its position); list items are left alone."""
    parent, last = _parent(doc, path)
    if not isinstance(parent, dict):
        return doc
    items = [(new_key if k == last else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)
    return doc


# ------------------------------------------------------------------ serialisers
def _json_dump(doc: Any, dup: Path_ | None = None) -> str:
    """Compact-ish JSON; at the mapping `dup` the first key is written twice."""

    def emit(node: Any, path: Path_) -> str:
        if isinstance(node, dict):
            parts = [f"{json.dumps(str(k))}: {emit(v, (*path, k))}" for k, v in node.items()]
            if dup is not None and path == dup and node:
                parts.append(parts[0])
            return "{" + ", ".join(parts) + "}"
        if isinstance(node, list):
            return "[" + ", ".join(emit(v, (*path, i)) for i, v in enumerate(node)) + "]"
        return json.dumps(node)

    return emit(doc, ()) + "\n"


def dump(doc: Any, syntax: str) -> str:
    if syntax == "json":
        return _json_dump(doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000)


def _with_raw(doc: Any, path: Path_, raw: str, syntax: str) -> str:
    """Serialise with the raw text `raw` at `path` (a value the dumper cannot produce)."""
    text = dump(set_at(doc, path, PLACEHOLDER), syntax)
    quoted = json.dumps(PLACEHOLDER)
    if quoted in text:
        return text.replace(quoted, raw, 1)
    for form in (f"'{PLACEHOLDER}'", PLACEHOLDER):
        if form in text:
            return text.replace(form, raw, 1)
    raise AssertionError("placeholder lost in serialisation")


# ------------------------------------------------------------------ value pools
LONG = "x" * 100_000
HUGE_INT = "9" * 5000
OTHER_TYPES: list[Any] = [
    None, True, False, 0, -1, -(2**63) - 1, 2**63, 1.5, -0.0, 1e308, "", " ", LONG,
    "null", "True", "0", "-", "*", "?", "[", "../../../etc/passwd", "%s%n{0}${x}",
    "a\nb", "\u202egnp.exe", "\U0001f600" * 50, "é", "\x00", "\x1b[31mred", "<script>",
    "&amp;]]>", [], {}, [None], [[]], [1, "a", None], {"a": 1}, {"": None}, {"1": [{}]},
    "EEA", "US", "XX", "aws", "eu_gdpr", "RES-T001", "2021/914", "scc",
]
DATES = ["9999-12-31", "0001-01-01", "2025-02-30", "2025-13-01", "1899-12-31", "2200-01-01",
         "2024-02-29", "1970-01-01", "20250101", "2025-1-1", "2025-01-01T00:00:00Z", "today"]
# raw snippets: JSON form, YAML form
RAW_VALUES: list[tuple[str, str, str]] = [
    ("huge int", HUGE_INT, HUGE_INT),
    ("huge negative int", "-" + HUGE_INT, "-" + HUGE_INT),
    ("20-digit int", "1" + "0" * 19, "1" + "0" * 19),
    ("NaN", "NaN", ".nan"),
    ("Infinity", "Infinity", ".inf"),
    ("-Infinity", "-Infinity", "-.inf"),
    ("1e400", "1e400", "1e400"),
    ("lone high surrogate", '"\\ud83d"', '"\\ud83d"'),
    ("lone low surrogate", '"a\\udc00b"', '"a\\udc00b"'),
    ("surrogate pair", '"\\ud83d\\ude00"', '"\\ud83d\\ude00"'),
    ("NUL escape", '"a\\u0000b"', '"a\\0b"'),
    ("raw control char", '"a\x01b"', "a\x01b"),
    ("raw DEL/C1", '"a\x7f\x85b"', '"a\x7f\x85b"'),
    ("raw tab and CR", '"a\tb\rc"', '"a\tb\rc"'),
    ("deep list", "[" * DEEP + "]" * DEEP, "[" * DEEP + "]" * DEEP),
    ("deep dict", '{"a": ' * DEEP + "1" + "}" * DEEP, "{a: " * DEEP + "1" + "}" * DEEP),
]
YAML_TAGS: list[str] = [
    "!!bool maybe", "!!int x", "!!int 0x", "!!float x", "!!null 1", "!!str", "!!binary '!!!'",
    "!!binary aGVsbG8=", "!!timestamp 2025-99-99", "!!timestamp 2025-01-01",
    "!!python/object:os.system {}", "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system", "!!set {a, b}", "!!omap [a: 1, b: 2]", "!!pairs [a: 1]",
    "!!map [1]", "!!seq {a: 1}", "!custom x", "!<tag:example.com,2000:x> y",
    "&a [*a]", "&a {k: *a}", "*undefined", "'\\ud83d'", "<<: {a: 1}",
    "0o777", "0x_ff", "1_000", "1:20:30", "~", "=", "2025-02-30", "2025-02-30 10:00:00",
]


def _bomb(levels: int, width: int) -> str:
    """A small alias bomb in flow style: `width**levels` leaves through shared anchors."""
    parts = ["&l0 [x]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


# ------------------------------------------------------------------ strategies
INTS: list[Any] = [0, -1, 1, 2, 5, 7, 365, 10**6, 999_999_999, 2**31, 2**63 - 1, -(2**63),
                   10**18]
NEW_KEYS: list[Any] = [1, None, True, "", " ", "x" * 300, "ID", "__proto__", "Ünïcode"]
FINISHES = ("plain", "plain", "raw", "duplicate key", "tag", "bomb")


def _doc_step(draw: st.DrawFn, doc: Any) -> tuple[Any, str]:
    """One mutation of the parsed document, on the places it has now."""
    paths = paths_of(doc)
    if not paths:
        return doc, "nothing to mutate"
    kind = draw(st.sampled_from(("delete", "replace", "int", "date", "splice", "swap", "grow",
                                 "rename", "misspell")))
    containers = [p for p in paths if isinstance(get_at(doc, p), dict | list)]
    shallow = [p for p in paths if len(p) <= 3]
    # often a container or a shallow place: few of them, but the readers' type checks
    # guard exactly them (a uniform pick would almost always land on a deep leaf)
    pool = draw(st.sampled_from([paths, containers or paths, shallow or paths]))
    path = draw(st.sampled_from(pool))
    here = get_at(doc, path)
    if kind == "delete":
        return delete_at(doc, path), f"delete {path!r}"
    if kind == "replace":
        value = copy.deepcopy(draw(st.sampled_from(OTHER_TYPES)))
        return set_at(doc, path, value), f"replace {path!r} with {_short(value)}"
    if kind == "int":
        value = draw(st.sampled_from(INTS))
        return set_at(doc, path, value), f"replace {path!r} with {value}"
    if kind == "date":
        datey = [p for p in paths if isinstance(get_at(doc, p), str)
                 and re.fullmatch(r"\d{4}-\d\d-\d\d", get_at(doc, p))]
        path = draw(st.sampled_from(datey)) if datey else path
        value = draw(st.sampled_from(DATES))
        return set_at(doc, path, value), f"date {path!r} = {value}"
    if kind == "splice":  # a value from elsewhere in the same document: valid types, odd places
        source = draw(st.sampled_from(paths))
        value = copy.deepcopy(get_at(doc, source))
        return set_at(doc, path, value), f"splice {source!r} into {path!r}"
    if kind == "swap" and isinstance(here, dict | list):
        return set_at(doc, path, _swap(here)), f"swap list/dict at {path!r}"
    if kind == "grow" and isinstance(here, dict | list):
        n = draw(st.integers(0, 3))
        return set_at(doc, path, _repeat(here, n)), f"grow {path!r} x{2**n}"
    if kind == "rename" and isinstance(path[-1], str):
        key = draw(st.sampled_from(NEW_KEYS))
        return rename_at(doc, path, key), f"rename key {path!r} to {_short(key)}"
    if kind == "misspell" and isinstance(path[-1], str):
        return rename_at(doc, path, path[-1] + "_"), f"misspell key {path!r}"
    value = copy.deepcopy(draw(st.sampled_from(OTHER_TYPES)))
    return set_at(doc, path, value), f"replace {path!r} with {_short(value)}"


@st.composite
def structural(draw: st.DrawFn, doc: Any, syntax: str) -> Mutant:
    """One to three structure-aware mutations, then a serialisation that may add raw text
    (a value no dumper writes, a duplicated key, a YAML tag, a small alias bomb)."""
    doc = copy.deepcopy(doc)
    what: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        doc, step = _doc_step(draw, doc)
        what.append(step)
    finish = draw(st.sampled_from(FINISHES))
    paths = paths_of(doc)
    if finish == "raw" and paths:
        path = draw(st.sampled_from(paths))
        name, as_json, as_yaml = draw(st.sampled_from(RAW_VALUES))
        text = _with_raw(doc, path, as_json if syntax == "json" else as_yaml, syntax)
        what.append(f"raw {name} at {path!r}")
    elif finish == "duplicate key" and syntax == "json":
        dict_paths = [()] + [p for p in paths if isinstance(get_at(doc, p), dict)]
        path = draw(st.sampled_from(dict_paths))
        text = _json_dump(doc, dup=path)
        what.append(f"duplicate first key of {path!r}")
    elif finish == "duplicate key":
        text, step = _dup_yaml_line(dump(doc, syntax), draw(st.integers(0, 10**6)))
        what.append(step)
    elif finish == "tag" and syntax == "yaml" and paths:
        path = draw(st.sampled_from(paths))
        tag = draw(st.sampled_from(YAML_TAGS))
        text = _with_raw(doc, path, tag, syntax)
        what.append(f"tag {path!r} = {tag}")
    elif finish == "bomb" and syntax == "yaml" and paths:
        path = draw(st.sampled_from(paths))
        levels, width = draw(st.integers(2, 6)), draw(st.integers(2, 9))
        text = _with_raw(doc, path, _bomb(levels, width), syntax)
        what.append(f"alias bomb {levels}x{width} at {path!r}")
    else:
        text = dump(doc, syntax)
    return Mutant(text.encode("utf-8", "surrogatepass"), "; ".join(what))


def raw_bytes(seed: bytes) -> st.SearchStrategy[Mutant]:
    """Strategy: one byte-level mutation of the serialised seed."""
    text = seed.decode("utf-8", "surrogatepass")
    n = max(len(seed), 1)
    return st.one_of(
        st.integers(0, n - 1).map(lambda i: Mutant(seed[:i], f"truncate at byte {i}")),
        st.just(Mutant(b"", "empty file")),
        st.just(Mutant(b"\n \n", "whitespace only")),
        st.just(Mutant(b"\xef\xbb\xbf" + seed, "UTF-8 BOM")),
        st.just(Mutant(text.encode("utf-16"), "UTF-16 with BOM")),
        st.just(Mutant(text.encode("utf-16-le"), "UTF-16-LE without BOM")),
        st.just(Mutant(text.encode("utf-32"), "UTF-32 with BOM")),
        st.tuples(st.integers(0, n), st.sampled_from(
            [b"\xff", b"\x00", b"\xc3", b"\xed\xa0\xbd", b"\x1b", b"\r", b"\t", b"{", b"]",
             b"'", b'"', b"&", b"*", b"!", b"%", b"|", b"\xe2\x80\xa8", b"\\"])).map(
            lambda a: Mutant(seed[:a[0]] + a[1] + seed[a[0]:], f"insert {a[1]!r} at {a[0]}")),
        st.tuples(st.integers(0, n - 1), st.integers(0, 255)).map(
            lambda a: Mutant(seed[:a[0]] + bytes([a[1]]) + seed[a[0] + 1:],
                             f"byte {a[0]} := {a[1]:#x}")),
        st.just(Mutant(seed + seed, "document twice")),
        st.just(Mutant(seed + b"\n---\n" + seed, "two YAML documents")),
        st.just(Mutant(b"\xef\xbb\xbf", "BOM only")),
    )


def mutations(seed_text: str, syntax: str) -> st.SearchStrategy[Mutant]:
    """Both kinds, weighted 4:1 towards structure-aware mutations."""
    doc = load_seed(seed_text, syntax)
    seed = dump(doc, syntax).encode()
    s = structural(doc, syntax)
    return st.one_of(s, s, s, s, raw_bytes(seed))


# ------------------------------------------------------------------ small helpers
def _swap(node: Any) -> Any:
    if isinstance(node, list):
        return {str(i): v for i, v in enumerate(node)}
    if isinstance(node, dict):
        return list(node.values())
    return node


def _repeat(node: Any, n: int) -> Any:
    """Repeat a list's items 2**n times (duplicate ids); a mapping becomes a list of copies."""
    if isinstance(node, list):
        return copy.deepcopy(node * (2**n))
    return [copy.deepcopy(node) for _ in range(2**n)]


def _dup_yaml_line(text: str, i: int) -> tuple[str, str]:
    """Duplicate one `key:` line of block YAML, so the duplicate key survives to the reader."""
    lines = text.splitlines(keepends=True)
    keyed = [j for j, line in enumerate(lines) if re.match(r"^\s*(- )?[^\s#:-][^:]*:", line)]
    if not keyed:
        return text, "no key line to duplicate"
    j = keyed[i % len(keyed)]
    line = lines[j]
    if (m := re.match(r"^(\s*)- ", line)):
        line = m.group(1) + "  " + line[m.end():]
    return ("".join([*lines[:j + 1], line, *lines[j + 1:]]),
            f"duplicate line {j + 1}: {line.strip()[:60]!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} chars)"
