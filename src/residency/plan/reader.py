"""Read `terraform show -json` output (plan or state) into an `Inventory`.

One `json.loads`, one walk over the modules, dict look-ups per resource: a 10,000-resource
plan costs little more than parsing it. Every managed AWS, Google or Azure resource with a
location becomes a system whose id is its Terraform address; anything only apply can tell
(a computed region, a classification tag from an unknown value) fails closed as an
unknown location (RES-L001), never as a pass.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from residency._io import parse_json, read_bytes
from residency.errors import InputError
from residency.model import Classification, Flow, Inventory, Location, Origin, Role, System
from residency.plan.config import ConfigIndex, strip_instance_keys
from residency.policy.catalogue import (
    Catalogue,
    Entry,
    Step,
    is_unknown,
    lookup,
    normalise,
    parse_path,
    plan_keys,
)

PairedRegion = Callable[[str, str], str | None]

_LABEL_KEYS = ("tags_all", "tags", "labels", "effective_labels", "terraform_labels")
# 0.1: Terraform 0.12-0.15; 0.2: Terraform 1.0.x; 1.x: Terraform 1.1 and later
_FORMAT_VERSION = re.compile(r"0\.[12]|1\.\d+")


def _no_pair(_provider: str, _region: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What the reader needs from the map and the pack, passed in."""

    classification: Classification = field(default_factory=Classification)
    paired_region: PairedRegion = _no_pair
    catalogue: Catalogue = field(default_factory=Catalogue)


@dataclass(slots=True)
class _Res:
    """One planned resource, as much as the copy rules need."""

    address: str
    module: str  # instance prefix, e.g. `module.a[0].`
    config_module: str  # without instance keys, e.g. `module.a`
    type: str
    name: str
    values: dict[str, Any]
    unknown: dict[str, Any]
    provider: str = ""
    entry: Entry | None = None
    system: System | None = None


def load_plan(path: Path, ctx: PlanContext) -> Inventory:
    """Parse the file at `path`; errors name the file and the key (exit 2 at the CLI)."""
    where = str(path)
    raw = read_bytes(path)
    # Parsing creates millions of acyclic containers; the cyclic collector would rescan them
    # again and again (a third of the run on large plans). Pause it for this call only.
    paused = gc.isenabled()
    gc.disable()
    try:
        doc = _parse(raw, where)
        try:
            return read_plan(doc, ctx, where)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            # a plan is an untrusted document of loose shape: a section of the wrong type
            # anywhere (a number where Terraform writes a list) is an input error
            raise InputError(where, None, f"unexpected structure ({type(exc).__name__}: "
                             f"{exc}); expected `terraform show -json` output") from None
    finally:
        if paused:
            gc.enable()


def _parse(raw: bytes, where: str) -> Any:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # PowerShell's `>` writes UTF-16 with a BOM
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise InputError(where, None, "not valid UTF-16 text") from None
    try:
        return parse_json(raw, where)
    except InputError as exc:
        if exc.problem == "not UTF-8 text":
            raise InputError(where, None, "not UTF-8 text (expected `terraform show -json` "
                             "output, not the binary plan file)") from None
        raise


def load_plans(paths: list[Path], ctx: PlanContext) -> list[Inventory]:
    """Several root modules at once; ids get a `<file>:` prefix only when there are several."""
    if len(paths) == 1:
        return [load_plan(paths[0], ctx)]
    return [prefixed(load_plan(p, ctx), f"{p}:") for p in paths]


def prefixed(inv: Inventory, prefix: str) -> Inventory:
    """Prefix the ids of planned systems (not the map's systems that flows start from)."""
    ids = {s.id for s in inv.systems}

    def rename(x: str) -> str:
        return prefix + x if x in ids else x

    systems = tuple(replace(s, id=prefix + s.id) for s in inv.systems)
    flows = tuple(
        replace(f, id=prefix + f.id, source=rename(f.source), target=rename(f.target))
        for f in inv.flows
    )
    return Inventory(systems, flows, inv.gaps)


def read_plan(doc: Any, ctx: PlanContext, source: str = "<plan>") -> Inventory:
    """Turn a parsed plan or state document into systems and flows."""
    root = _check_document(doc, source)
    return _Reader(doc, ctx, source).read(root)


def plan_locations(
    path: Path, ctx: PlanContext
) -> dict[str, tuple[str, tuple[str, ...] | None, str | None]]:
    """Every resource of the plan at `path` located by the catalogue (data store or not)."""
    where = str(path)
    doc = _parse(read_bytes(path), where)
    root = _check_document(doc, where)
    reader = _Reader(doc, ctx, where)
    reader.read(root)
    return reader.locations()


def _check_document(doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InputError(source, None, "expected a JSON object from `terraform show -json`")
    version = doc.get("format_version")
    if version is None:
        raise InputError(source, "format_version", "missing: not `terraform show -json` output")
    if not isinstance(version, str) or not _FORMAT_VERSION.fullmatch(version):
        raise InputError(
            source, "format_version",
            f"unsupported version {version!r}: residency reads the formats Terraform 0.12 and "
            "later write (0.1, 0.2 and 1.x); re-create the JSON with `terraform show -json`",
        )
    for key in ("planned_values", "values"):
        if key in doc:
            section = doc[key]
            if not isinstance(section, dict):
                raise InputError(source, key, "must be an object")
            root = section.get("root_module", {})
            if not isinstance(root, dict):
                raise InputError(source, f"{key}.root_module", "must be an object")
            return root
    raise InputError(source, "planned_values",
                     "missing: expected a plan (`planned_values`) or a state (`values`)")


def _walk(
    module: dict[str, Any], prefix: str, source: str = "<plan>", key: str = "root_module"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every resource of a module tree; a section of the wrong shape is an input error
    naming its key, never a crash."""
    for name in ("resources", "child_modules"):
        if not isinstance(module.get(name) or [], list):
            raise InputError(source, f"{key}.{name}", "must be a list")
    for res in module.get("resources") or ():
        yield prefix, res
    for i, child in enumerate(module.get("child_modules") or ()):
        if isinstance(child, dict):
            addr = child.get("address")
            yield from _walk(child, f"{addr}." if isinstance(addr, str) else prefix, source,
                             f"{key}.child_modules[{i}]")


class _Reader:
    def __init__(self, doc: dict[str, Any], ctx: PlanContext, source: str) -> None:
        self.doc = doc
        self.ctx = ctx
        self.source = source
        self.config = ConfigIndex(doc)
        self.tag = ctx.classification.tag
        self.systems: dict[str, System] = {}
        self.flows: list[Flow] = []
        self.by_type: dict[str, list[_Res]] = {}
        self.resources: dict[str, _Res] = {}
        self.deferred: list[_Res] = []
        self._by_value: dict[str, _Res] | None = None
        # a plan has few distinct places: one Location object per (provider, regions, why)
        self._locations: dict[tuple[str, tuple[str, ...], str | None], Location] = {}
        self._types: dict[str, tuple[str | None, Entry | None]] = {}
        self._modules: dict[str, str] = {}  # instance prefix -> configuration module
        # classification value -> its categories (the first of a name, as `lookup` finds it)
        self._categories: dict[str, frozenset[str]] = {}
        for name, value in ctx.classification.values:
            self._categories.setdefault(name, value.data_categories)

    # ------------------------------------------------------------------ walk
    def read(self, root: dict[str, Any]) -> Inventory:
        changes: dict[str, dict[str, Any]] = {}
        if not isinstance(self.doc.get("resource_changes") or [], list):
            raise InputError(self.source, "resource_changes", "must be a list")
        for rc in self.doc.get("resource_changes") or ():
            if isinstance(rc, dict) and isinstance(rc.get("address"), str):
                changes[rc["address"]] = rc
        seen: set[str] = set()
        for prefix, res in _walk(root, "", self.source):
            if not isinstance(res, dict) or res.get("mode") != "managed":
                continue
            address = res.get("address")
            if not isinstance(address, str):
                raise InputError(self.source, "planned_values...resources[].address", "missing")
            address = _full_address(address, prefix, res.get("index"))
            seen.add(address)
            rc = changes.get(address)
            change = rc.get("change") if rc else None
            unknown = change.get("after_unknown") if isinstance(change, dict) else None
            self._resource(address, prefix, res, res.get("values"), unknown)
        for address, rc in changes.items():
            # a create/update without a planned_values entry (hand-trimmed plans): use `after`
            if address in seen or rc.get("mode") != "managed":
                continue
            change = rc.get("change") or {}
            actions = change.get("actions") or ()
            if not actions or all(a in {"delete", "forget", "read"} for a in actions):
                continue
            module = rc.get("module_address")
            prefix = f"{module}." if isinstance(module, str) else ""
            self._resource(address, prefix, rc, change.get("after"), change.get("after_unknown"))
        for item in self.deferred:  # located from the resources they refer to
            self._place(item)
        self.fed_by()
        self._copies()
        return Inventory(tuple(self.systems.values()), tuple(self.flows))

    def _resource(
        self, address: str, prefix: str, res: dict[str, Any], values: Any, unknown: Any
    ) -> None:
        type_ = res.get("type")
        if not isinstance(type_, str):
            return
        cat = self.ctx.catalogue
        known = self._types.get(type_)
        if known is None:  # once per type: a plan has thousands of each
            provider = cat.provider_of(type_)
            known = self._types[type_] = (provider, cat.entry(type_) if provider else None)
        provider, by_type = known
        if provider is None:
            return  # not a cloud data provider (random, null, tls, kubernetes, ...)
        vals = values if isinstance(values, dict) else {}
        entry = None
        arm = vals.get("type")
        if isinstance(arm, str):  # azapi_resource: the ARM type decides
            entry = cat.entry(f"{type_}:{arm.partition('@')[0]}")
        module = self._modules.get(prefix)
        if module is None:
            module = self._modules[prefix] = strip_instance_keys(prefix[:-1]) if prefix else ""
        item = _Res(
            address, prefix, module, type_,
            str(res.get("name", "")), vals, unknown if isinstance(unknown, dict) else {},
            provider, entry or by_type,
        )
        self.resources[address] = item
        self.by_type.setdefault(type_, []).append(item)
        if item.entry is not None and any(st.ref for st in item.entry.location):
            self.deferred.append(item)  # located from another resource: after the walk
            return
        self._place(item)

    def locations(self) -> dict[str, tuple[str, tuple[str, ...] | None, str | None]]:
        """Every resource's (type, regions, reason) by the catalogue's location steps,
        data store or not: what the plan fixes, for corpus checks and explanations."""
        cat = self.ctx.catalogue
        out = {}
        for address, r in self.resources.items():
            steps = r.entry.location if r.entry else cat.defaults.get(r.provider, ())
            regions, reason = self._locate(r, steps)
            out[address] = (r.type, regions, reason)
        return out

    def _place(self, item: _Res) -> None:
        item.system = self._system(item)
        if item.system is not None:
            self.systems[item.address] = item.system

    # ------------------------------------------------------------------ one resource
    def _tags(self, r: _Res) -> tuple[dict[str, str], str | None]:
        """Classification tags (provider defaults included) and, if the classification
        itself is only known at apply, why."""
        tags: dict[str, str] = {}
        if r.provider == "aws":
            info = self.config.provider_for(r.config_module, r.type, r.name)
            tags.update(info.default_tags)
        values, unknown = r.values, r.unknown
        for key in _LABEL_KEYS:
            got = values.get(key)
            if isinstance(got, dict):
                tags.update(got)
        settings = values.get("settings")
        if isinstance(settings, list) and settings and isinstance(settings[0], dict):
            got = settings[0].get("user_labels")  # Cloud SQL keeps its labels here
            if isinstance(got, dict):
                tags.update(got)
        if self.tag in tags or not unknown:  # nothing unknown: nothing pending
            return tags, None
        for key in _LABEL_KEYS:
            if key in _DERIVED_LABELS and not _marked(unknown, _DERIVED_LABELS[key], self.tag):
                # the provider computes tags_all / effective_labels from `tags` / `labels`
                # and the provider defaults, all known here: unknown only in form
                continue
            if _marked(unknown, key, self.tag):
                return tags, f"{r.address}: {key}.{self.tag} unknown until apply"
        return tags, None

    def _system(self, r: _Res) -> System | None:
        tags, pending = self._tags(r)
        value = tags.get(self.tag)
        classified = value is not None or pending is not None
        entry = r.entry
        if entry is None:
            if not classified and self.ctx.catalogue.is_known_non_store(r.type):
                return None
            regions, where = self._locate(r, self.ctx.catalogue.defaults.get(r.provider, ()))
            if classified:  # fail closed: where this type keeps its data is not known
                source = self.ctx.catalogue.sources.get(r.provider, "policies/catalogue/")
                regions, where = (), (f"{r.address}: type {r.type} is not in the resource "
                                      f"catalogue ({source}), so where it keeps its data is "
                                      "unknown")
        elif not entry.store and not classified:
            return None
        else:
            regions, where = self._locate(r, entry.location)
            if regions is None and where is None and classified:
                where = f"{r.address}: location not found (catalogue: {_describe(entry)})"
        if regions is None and where is None:
            return None  # no location and nothing classified: not a data store we can see
        cats: frozenset[str] = frozenset()
        if value is not None:
            cats = self._categories.get(str(value), cats)
        if pending is not None:  # judged as possibly holding every classified category
            cats = frozenset().union(*(v.data_categories for _, v in
                                       self.ctx.classification.values))
        return System(
            id=r.address,
            party=r.provider,
            role=Role.PROCESSOR,
            location=self._location(r.provider, regions or (), where),
            data_categories=cats,
            origin=Origin.PLANNED,
            # a value the map does not list is still a classification (RES-I003)
            classified=classified,
            name=_name(r.values),
            resource_id=_resource_id(r.values),
            tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
            source_file=self.source,
            pending=pending,
            keys=plan_keys(entry, r.values, r.unknown, r.address, regions or ()),
        )

    def _location(self, provider: str, regions: tuple[str, ...], why: str | None) -> Location:
        key = (provider, regions, why)
        loc = self._locations.get(key)
        if loc is None:
            loc = self._locations[key] = Location(provider=provider, regions=regions,
                                                  unknown_reason=why)
        return loc

    def _locate(
        self, r: _Res, steps: tuple[Step, ...]
    ) -> tuple[tuple[str, ...] | None, str | None]:
        """Run the catalogue's steps in order: the first that finds a location wins; a value
        unknown until apply that the configuration sets stops with the reason."""
        for step in steps:
            if step.fixed is not None:
                return (step.fixed,), None
            if step.provider is not None:
                info = self.config.provider_for(r.config_module, r.type, r.name)
                got = info.zone if step.provider == "zone" else info.region
                if got:
                    return (normalise(got, step.as_) or got,), None
                if step.provider == "region" and info.unknown_reason:
                    return None, f"{r.address}: {info.unknown_reason}"
                continue
            if step.ref is not None:
                hit = self._referenced(r, step.ref)
                if hit is not None and hit.system is not None:
                    loc = hit.system.location
                    return loc.regions or None, loc.unknown_reason
                continue
            if step.attr is None:
                continue
            path = _path(step.attr)
            found = sorted({n for v in lookup(r.values, path) if isinstance(v, str)
                            if (n := normalise(v, step.as_))})
            if found:
                return tuple(found), None
            if is_unknown(r.unknown, path):
                conf = self.config.resource(r.config_module, r.type, r.name)
                exprs = (conf or {}).get("expressions") or {}
                if not isinstance(exprs, dict) or str(path[0]) in exprs:
                    return None, f"{r.address}: {step.attr} unknown until apply"
        return None, None

    def _referenced(self, r: _Res, attr: str) -> _Res | None:
        conf = self.config.resource(r.config_module, r.type, r.name)
        ref = self.config.reference(conf, attr)
        if ref and (hit := self.resources.get(r.module + ref)) is not None:
            return hit
        value = r.values.get(attr)
        if isinstance(value, str) and value:  # an id, name or self link of a planned resource
            if self._by_value is None:  # built once, on the first deferred look-up
                self._by_value = {}
                for other in self.resources.values():
                    for key in ("id", "name", "self_link"):
                        got = other.values.get(key)
                        if isinstance(got, str) and got:
                            self._by_value.setdefault(got, other)  # the first, as in plan order
            return self._by_value.get(value)
        return None

    # ------------------------------------------------------------------ copies
    def _copies(self) -> None:
        from residency.plan.copies import find_copies

        find_copies(self)

    def add_copy(self, source: System, target: System, kind: str = "replication") -> None:
        """A second place the same data will live, and the flow that puts it there."""
        self.systems.setdefault(source.id, source)
        self.systems.setdefault(target.id, target)
        self.flows.append(Flow(
            id=f"{kind}:{source.id}->{target.id}",
            source=source.id,
            target=target.id,
            data_categories=source.data_categories | target.data_categories,
            origin=Origin.PLANNED,
            kind=kind,
        ))

    def derived(self, parent: System, ident: str, location: Location) -> System:
        """A system Terraform creates implicitly (a replica, a paired secondary)."""
        return System(
            id=ident, party=parent.party, role=Role.PROCESSOR, location=location,
            data_categories=parent.data_categories, origin=Origin.PLANNED,
            classified=parent.classified, name=parent.name, tags=parent.tags,
            source_file=self.source,
        )

    def fed_by(self) -> None:
        """The map's `fed_by` turns each classified resource into a flow target."""
        values = dict(self.ctx.classification.values)
        if not any(v.fed_by for v in values.values()):
            return
        for s in list(self.systems.values()):
            if not s.classified:
                continue
            if s.pending is not None:  # possibly any value: fed by every value's source
                for name, val in values.items():
                    if val.fed_by:
                        self.flows.append(Flow(
                            id=f"{val.fed_by}->{s.id}#{name}", source=val.fed_by, target=s.id,
                            data_categories=val.data_categories, origin=Origin.PLANNED,
                            kind="storage",
                        ))
                continue
            tag = dict(s.tags).get(self.tag)
            cls = values.get(tag) if tag is not None else None
            if cls is not None and cls.fed_by:
                self.flows.append(Flow(
                    id=f"{cls.fed_by}->{s.id}", source=cls.fed_by, target=s.id,
                    data_categories=cls.data_categories, origin=Origin.PLANNED, kind="storage",
                ))


_DERIVED_LABELS = {"tags_all": "tags", "effective_labels": "labels",
                   "terraform_labels": "labels"}


def _marked(unknown: dict[str, Any], key: str, tag: str) -> bool:
    mark = unknown.get(key)
    return mark is True or (isinstance(mark, dict) and mark.get(tag) is True)


def _full_address(address: str, prefix: str, index: Any) -> str:
    """Terraform 0.12 states give module resources their local address and the instance
    key as a separate `index`; later versions give the full address."""
    if prefix and not address.startswith(prefix):
        address = prefix + address
    if index is not None and not address.endswith("]"):
        address += f"[{index}]" if isinstance(index, int) else f"[{json.dumps(str(index))}]"
    return address


_PATHS: dict[str, tuple[str | int, ...]] = {}


def _path(attr: str) -> tuple[str | int, ...]:
    hit = _PATHS.get(attr)
    if hit is None:
        hit = _PATHS[attr] = parse_path(attr)
    return hit


def _describe(entry: Entry) -> str:
    parts = []
    for st in entry.location:
        parts.append(st.attr or (f"ref {st.ref}" if st.ref else None)
                     or (f"provider {st.provider}" if st.provider else None) or str(st.fixed))
    return "looked in " + (", ".join(parts) or "nothing")


def _name(values: dict[str, Any]) -> str | None:
    for key in ("bucket", "name", "identifier", "cluster_identifier"):
        got = values.get(key)
        if isinstance(got, str):
            return got
    return None


def _resource_id(values: dict[str, Any]) -> str | None:
    got = values.get("arn") or values.get("id")
    return got if isinstance(got, str) else None
