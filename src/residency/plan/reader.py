"""Read `terraform show -json` output (plan or state) into an `Inventory`.

One `json.loads`, one walk over the modules, dict look-ups per resource: a 10,000-resource
plan costs little more than parsing it. Every managed AWS, Google or Azure resource with a
location becomes a system whose id is its Terraform address; anything only apply can tell
(a computed region, a classification tag from an unknown value) fails closed as an
unknown location (RES-L001), never as a pass.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from residency._io import parse_json, read_bytes
from residency.errors import InputError
from residency.model import Classification, Flow, Inventory, Location, Origin, Role, System
from residency.plan.config import ConfigIndex, strip_instance_keys

PairedRegion = Callable[[str, str], str | None]

PROVIDERS = (("aws_", "aws"), ("google_", "gcp"), ("azurerm_", "azure"))

# AWS resources of global services: no regional data store of their own. They join the
# inventory only when someone tags them with a classification.
_AWS_GLOBAL_PREFIXES = (
    "aws_iam_", "aws_route53_", "aws_cloudfront_", "aws_organizations_", "aws_budgets_",
    "aws_ce_", "aws_shield_", "aws_rds_global_cluster",
)
_LABEL_KEYS = ("tags_all", "tags", "labels", "effective_labels", "terraform_labels")
_GEO_REDUNDANT = frozenset({"GRS", "RAGRS", "GZRS", "RAGZRS"})
# 0.1: Terraform 0.12-0.15; 0.2: Terraform 1.0.x; 1.x: Terraform 1.1 and later
_FORMAT_VERSION = re.compile(r"0\.[12]|1\.\d+")
# a GCP zone (`europe-west2-a`) where a location or region is expected
_GCP_ZONE = re.compile(r"[a-z]+-[a-z]+\d+-[a-z]")


def _no_pair(_provider: str, _region: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What the reader needs from the map and the pack, passed in (no pack import here)."""

    classification: Classification = field(default_factory=Classification)
    paired_region: PairedRegion = _no_pair


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
        return read_plan(_parse(raw, where), ctx, where)
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


def _walk(module: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for res in module.get("resources") or ():
        yield prefix, res
    for child in module.get("child_modules") or ():
        if isinstance(child, dict):
            addr = child.get("address")
            yield from _walk(child, f"{addr}." if isinstance(addr, str) else prefix)


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

    # ------------------------------------------------------------------ walk
    def read(self, root: dict[str, Any]) -> Inventory:
        changes: dict[str, dict[str, Any]] = {}
        for rc in self.doc.get("resource_changes") or ():
            if isinstance(rc, dict) and isinstance(rc.get("address"), str):
                changes[rc["address"]] = rc
        seen: set[str] = set()
        for prefix, res in _walk(root, ""):
            if not isinstance(res, dict) or res.get("mode") != "managed":
                continue
            address = res.get("address")
            if not isinstance(address, str):
                raise InputError(self.source, "planned_values...resources[].address", "missing")
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
        self.fed_by()
        self._copies()
        return Inventory(tuple(self.systems.values()), tuple(self.flows))

    def _resource(
        self, address: str, prefix: str, res: dict[str, Any], values: Any, unknown: Any
    ) -> None:
        type_ = res.get("type")
        if not isinstance(type_, str):
            return
        provider = next((p for pre, p in PROVIDERS if type_.startswith(pre)), None)
        if provider is None:
            return
        item = _Res(
            address, prefix, strip_instance_keys(prefix[:-1]) if prefix else "", type_,
            str(res.get("name", "")), values if isinstance(values, dict) else {},
            unknown if isinstance(unknown, dict) else {},
        )
        self.resources[address] = item
        self.by_type.setdefault(type_, []).append(item)
        item.system = self._system(item, provider)
        if item.system is not None:
            self.systems[address] = item.system

    # ------------------------------------------------------------------ one resource
    def _system(self, r: _Res, provider: str) -> System | None:
        tags: dict[str, str] = {}
        if provider == "aws":
            info = self.config.provider_for(r.config_module, r.type, r.name)
            tags.update(info.default_tags)
        values, unknown = r.values, r.unknown
        for key in _LABEL_KEYS:
            got = values.get(key)
            if isinstance(got, dict):
                tags.update(got)
        settings = values.get("settings") if provider == "gcp" else None
        if isinstance(settings, list) and settings and isinstance(settings[0], dict):
            got = settings[0].get("user_labels")  # Cloud SQL keeps its labels here
            if isinstance(got, dict):
                tags.update(got)
        value = tags.get(self.tag)
        reason: str | None = None
        if value is None:
            for key in _LABEL_KEYS:
                if key in _DERIVED_LABELS and not _marked(unknown, _DERIVED_LABELS[key], self.tag):
                    # the provider computes tags_all / effective_labels from `tags` / `labels`
                    # and the provider defaults, all known here: unknown only in form
                    continue
                if _marked(unknown, key, self.tag):
                    reason = f"{r.address}: {key}.{self.tag} unknown until apply"
                    break
        cls = self.ctx.classification.lookup(str(value)) if value is not None else None
        if provider == "aws":
            regions, where = self._aws_region(r)
        elif provider == "gcp":
            regions, where = self._gcp_location(r)
        else:
            regions, where = self._azure_location(r)
        if regions is None and where is None:
            return None  # no location at all: a sub-resource or a global setting
        if regions == ("aws-global",) and cls is None and reason is None:
            return None
        return System(
            id=r.address,
            party=provider,
            role=Role.PROCESSOR,
            location=Location(provider=provider, regions=regions or (),
                              unknown_reason=reason or where),
            data_categories=cls.data_categories if cls else frozenset(),
            origin=Origin.PLANNED,
            # a value the map does not list is still a classification (RES-I003)
            classified=value is not None,
            name=_name(values),
            resource_id=_resource_id(values),
            tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
            source_file=self.source,
        )

    def _aws_region(self, r: _Res) -> tuple[tuple[str, ...] | None, str | None]:
        if r.type.startswith(_AWS_GLOBAL_PREFIXES):
            return ("aws-global",), None
        region = r.values.get("region")
        if isinstance(region, str) and region:
            return (region,), None
        conf = self.config.resource(r.config_module, r.type, r.name)
        if r.unknown.get("region") is True and conf and "region" in (conf.get("expressions") or {}):
            return None, f"{r.address}: region unknown until apply"
        info = self.config.provider_for(r.config_module, r.type, r.name)
        if info.region is None:
            return None, f"{r.address}: {info.unknown_reason}"
        return (info.region,), None

    def _gcp_location(self, r: _Res) -> tuple[tuple[str, ...] | None, str | None]:
        values, unknown = r.values, r.unknown
        placement = values.get("custom_placement_config")
        if isinstance(placement, list) and placement and isinstance(placement[0], dict):
            locs = placement[0].get("data_locations")
            if isinstance(locs, list) and locs and all(isinstance(x, str) for x in locs):
                return tuple(sorted(x.lower() for x in locs)), None
        pending: str | None = None
        for attr in ("location", "region", "zone"):
            got = values.get(attr)
            if isinstance(got, str) and got:
                got = got.rstrip("/").rpartition("/")[2].lower()  # a self link: its last part
                if attr == "zone" or _GCP_ZONE.fullmatch(got):
                    got = _zone_to_region(got)
                return (got,), None
            if unknown.get(attr) is True and pending is None:
                pending = attr
        if pending is None:
            return None, None
        conf = self.config.resource(r.config_module, r.type, r.name)
        if pending in ("region", "zone") and not (conf and pending in (conf.get("expressions")
                                                                      or {})):
            info = self.config.provider_for(r.config_module, r.type, r.name)
            if info.region:
                return (info.region.lower(),), None
            if info.zone:
                return (_zone_to_region(info.zone),), None
        return None, f"{r.address}: {pending} unknown until apply"

    def _azure_location(self, r: _Res) -> tuple[tuple[str, ...] | None, str | None]:
        got = r.values.get("location")
        if isinstance(got, str) and got:
            return (got.lower().replace(" ", ""),), None
        if r.unknown.get("location") is True:
            return None, f"{r.address}: location unknown until apply"
        return None, None

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


def _zone_to_region(zone: str) -> str:
    """`europe-west1-b` → `europe-west1` (a zone is its region plus a one-letter suffix)."""
    head, sep, tail = zone.lower().rpartition("-")
    return head if sep and len(tail) == 1 and tail.isalpha() else zone.lower()


def _name(values: dict[str, Any]) -> str | None:
    for key in ("bucket", "name", "identifier", "cluster_identifier"):
        got = values.get(key)
        if isinstance(got, str):
            return got
    return None


def _resource_id(values: dict[str, Any]) -> str | None:
    got = values.get("arn") or values.get("id")
    return got if isinstance(got, str) else None
