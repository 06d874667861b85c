"""The resource catalogue: where each kind of cloud resource keeps its data, as data.

`policies/catalogue/{aws,gcp,azure}.yaml` say, for each Terraform resource type (and, later,
each cloud API type a collector sees), whether it is a data store, which attribute paths
give its location, its copies and its encryption key. This module only runs mechanisms over
that data (path look-up, zone and self-link normalisation); it never names a resource type,
so a user adds one by editing YAML, exactly like a region.

Path syntax: dotted keys, `[N]` for one list element, `[*]` for every element
(`cluster[*].zone`). A string holding JSON (azapi `body` written with `jsonencode`) is
parsed when a path goes through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from residency.model import KeyRef

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")
_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-?[a-z]$")  # europe-west2-a (Pub/Sub Lite: us-central1a)
_AWS_AZ = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]$")  # eu-west-1a → eu-west-1


@dataclass(frozen=True, slots=True)
class Step:
    """One way of finding a location: an attribute path, the provider block, or a constant."""

    attr: str | None = None
    ref: str | None = None  # take the location of the planned resource this refers to
    provider: str | None = None  # "region" | "zone"
    fixed: str | None = None
    as_: str = "region"  # region | zone | self_link | arn | spanner_config | lower
    pair_if: tuple[str, frozenset[str]] | None = None  # (attr, values): the paired region
    mechanism: str | None = None  # a named copy mechanism (reference-following, in code)


@dataclass(frozen=True, slots=True)
class Entry:
    """What the catalogue knows of one resource type."""

    type: str
    provider: str
    store: bool = True
    location: tuple[Step, ...] = ()
    copies: tuple[Step, ...] = ()
    keys: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every provider's entries, the prefixes that name each provider's types, defaults."""

    entries: Mapping[str, Entry] = field(default_factory=dict)
    prefixes: tuple[tuple[str, str], ...] = ()  # (type prefix, provider), longest first
    defaults: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    not_stores: tuple[tuple[str, str], ...] = ()  # (type prefix, provider)
    sources: Mapping[str, str] = field(default_factory=dict)  # provider -> catalogue file

    def provider_of(self, type_: str) -> str | None:
        for prefix, provider in self.prefixes:
            if type_.startswith(prefix):
                return provider
        return None

    def entry(self, type_: str) -> Entry | None:
        return self.entries.get(type_) or self.entries.get(type_.lower())

    def is_known_non_store(self, type_: str) -> bool:
        return any(type_.startswith(prefix) for prefix, _ in self.not_stores)


# ---------------------------------------------------------------------- path look-up
_PARSED: dict[str, tuple[str | int, ...]] = {}


def parse_path(path: str) -> tuple[str | int, ...]:
    """`cluster[*].zone` → ('cluster', '*', 'zone'); raises ValueError on a bad path.
    Catalogue paths are few and looked up per resource: each is parsed once."""
    hit = _PARSED.get(path)
    if hit is None:
        hit = _parse_path(path)
        if len(_PARSED) < 10_000:
            _PARSED[path] = hit
    return hit


def _parse_path(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    pos = 0
    for chunk in path.split("."):
        if not chunk:
            raise ValueError(f"empty segment in path {path!r}")
        pos = 0
        for m in _SEGMENT.finditer(chunk):
            if m.start() != pos:
                raise ValueError(f"bad path {path!r}")
            pos = m.end()
            if m.group(1) is not None:
                parts.append(m.group(1))
            else:
                index = m.group(2)
                parts.append("*" if index == "*" else int(index))
        if pos != len(chunk):
            raise ValueError(f"bad path {path!r}")
    return tuple(parts)


def lookup(values: Any, path: tuple[str | int, ...]) -> Iterator[Any]:
    """Every value at `path` (several through `[*]`); missing parts yield nothing."""
    for i, head in enumerate(path):  # one frame down to the first `[*]`, if any
        if isinstance(values, str) and values[:1] in "{[":
            try:
                values = json.loads(values)
            except ValueError:
                return
        if head == "*":
            if isinstance(values, list):
                rest = path[i + 1:]
                for item in values:
                    yield from lookup(item, rest)
            return
        if isinstance(head, int):
            if not (isinstance(values, list) and -len(values) <= head < len(values)):
                return
            values = values[head]
        elif isinstance(values, dict) and head in values:
            values = values[head]
        else:
            return
    if values is not None:
        yield values


def is_unknown(unknown: Any, path: tuple[str | int, ...]) -> bool:
    """Whether `after_unknown` marks the value at `path` (or a parent of it) unknown."""
    if unknown is True:
        return True
    if not path:
        return False
    head, rest = path[0], path[1:]
    if head == "*":
        return isinstance(unknown, list) and any(is_unknown(x, rest) for x in unknown)
    if isinstance(head, int):
        return (isinstance(unknown, list) and -len(unknown) <= head < len(unknown)
                and is_unknown(unknown[head], rest))
    return isinstance(unknown, dict) and is_unknown(unknown.get(head), rest)


# ---------------------------------------------------------------------- normalisation
def normalise(value: str, how: str) -> str | None:
    """A location as the catalogue says the attribute spells it → a region-table key."""
    text = value.strip()
    if not text:
        return None
    if how == "arn":  # arn:aws:backup:eu-west-1:123:backup-vault:x → eu-west-1
        parts = text.split(":")
        return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None
    if "/" in text and how in ("region", "zone", "self_link", "spanner_config"):
        text = text.rstrip("/").rpartition("/")[2]  # a self link: its last segment
    text = text.lower()
    if how == "spanner_config":  # regional-europe-west1 → europe-west1; nam3 → spanner-nam3
        if text.startswith("regional-"):
            return text.removeprefix("regional-")
        return text if text.startswith("spanner-") else f"spanner-{text}"
    if how in ("zone", "region", "self_link"):
        m = _ZONE.match(text) or _AWS_AZ.match(text)
        if m:
            return m.group(1)
    if how == "azure":
        return text.replace(" ", "")
    return text


def step_from(raw: Mapping[str, Any]) -> Step:
    """A step from its YAML form (validated by the pack schema first)."""
    pair = raw.get("pair_if")
    return Step(
        attr=raw.get("attr"), ref=raw.get("ref"), provider=raw.get("provider"),
        fixed=raw.get("fixed"),
        as_=raw.get("as", "region"),
        pair_if=(pair["attr"], frozenset(str(v).upper() for v in pair["in"])) if pair else None,
        mechanism=raw.get("mechanism"),
    )


# ---------------------------------------------------------------------- keys in plans
_GCP_KEY_LOCATION = re.compile(r"(?:^|/)locations/([^/]+)/keyRings/")


def plan_keys(entry: Entry | None, values: Any, unknown: Any, address: str,
              regions: tuple[str, ...]) -> tuple[KeyRef, ...]:
    """The keys a planned resource names at its catalogue `keys` paths, located as the
    value says: a KMS key ARN by its region, a Cloud KMS key name by its `locations/`
    segment, a bare key id or alias in the resource's own region (KMS keys are regional).
    A key known only after apply is kept with that reason: where it is held is unknown, so
    the key rules fail closed on it. Key Vault key ids (URLs naming no location) are left
    to the collectors, which read the vault's location."""
    if entry is None or not entry.keys:
        return ()
    found: dict[KeyRef, None] = {}
    for path in entry.keys:
        parsed = parse_path(path)
        for value in lookup(values, parsed):
            if isinstance(value, str) and value.strip():
                key = _plan_key(value.strip(), regions)
                if key is not None:
                    found[key] = None
        if is_unknown(unknown, parsed):
            found[KeyRef(key=f"{address}.{path}", unknown_reason=f"{address}: {path} "
                         "unknown until apply")] = None
    return tuple(found)


def _plan_key(value: str, regions: tuple[str, ...]) -> KeyRef | None:
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) < 6:
            return KeyRef(key=value, unknown_reason="not a complete ARN")
        return KeyRef(key=value, arn=value, region=parts[3] or None, account=parts[4] or None)
    m = _GCP_KEY_LOCATION.search(value)
    if m:
        return KeyRef(key=value, arn=value, region=m.group(1).lower())
    if "://" in value:
        return None
    return KeyRef(key=value, region=regions[0] if len(regions) == 1 else None,
                  unknown_reason=None if len(regions) == 1 else "a key id or alias of a "
                  "resource whose region is not known")
