"""Azure: every resource of the readable subscriptions, and the copies the catalogue knows.

Resources come from ARM's generic `resources.list()` (location and tags for every type in
one paged call). Each is matched to the resource catalogue the gate uses, entry
`azapi_resource:<ARM type>` (or the generic `azapi_resource`), and read as azapi would hold
it: `{body: <the ARM JSON>, location, type, name, id, parent_id}`, so the same paths
(`body.properties.locations[*].locationName`, `body.sku.name`) serve plans and live scans.
When a path needs what the list call omits (`properties`, for most types), the resource is
read with a GET by id at the api-version `API_VERSIONS` names for its type; a type with no
api-version there fails closed (its copies are an unknown location), never a silent skip.

Copies, per the entry's `copies` steps:
- an attribute path lists the copies' regions (Cosmos DB locations, a storage account's
  `secondaryLocation`, failover partners); a location the API reports beats the pairing;
- `pair_if`: geo-redundancy to the policy pack's paired region (the `paired_region`
  callable), the fallback when the API reports no copy location, and the copy says so;
- `ref`: this resource is a copy of the one the path names (a replica's source server, a
  registry replication's parent), so the flow runs from that resource to this one.
A copy of a store that is not itself a system is a placeholder `<id>#secondary` (pair) or
`<id>#copy/<region>` with a replication flow, so a Brazil South account copied to South
Central US is judged as BR → US. A `store: false` resource's copies carry its ARM parent's
data (a failover group copies its server's databases).

With `resource_graph=True` the resources come from Azure Resource Graph instead
(`azure_graph`: one paged query across the subscriptions, rows with their `properties`);
the ARM reads for replication details (child lists, a GET by id where a row lacks what a path
needs) stay. Listing per subscription is the fallback where ARG is not offered.

Keys: the entry's `keys` paths name the Key Vault or Managed HSM key of a store (a storage
account's `keyvaulturi`, Cosmos DB's `keyVaultKeyUri`, a SQL server's TDE protector read from
`encryptionProtector/current`); the vault is found by its DNS name among the scanned
resources and gives the key's region (`System.keys`). A vault outside the scan is a gap; a
store whose key paths were read and name no key uses Microsoft-managed keys.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from residency.collectors import _faults, azure_graph
from residency.collectors.interface import (
    CollectContext,
    Collector,
    replication_flow,
    resource_system,
)
from residency.model import CoverageGap, Flow, Inventory, KeyRef, Location, System
from residency.policy.catalogue import Catalogue, Entry, Step, lookup, normalise, parse_path

ARM_SCOPE = "https://management.azure.com/.default"
AZAPI = "azapi_resource"

#: api-version of the read-only GET by id, per ARM type (lower case), for the types whose
#: catalogue paths need `properties`, which `resources.list` omits. Each is a stable version
#: of the type's REST reference (cited in policies/catalogue/azure.yaml `sources`).
API_VERSIONS: dict[str, str] = {
    "microsoft.storage/storageaccounts": "2023-05-01",
    "microsoft.documentdb/databaseaccounts": "2024-11-15",
    "microsoft.sql/servers/databases": "2021-11-01",
    "microsoft.sql/servers/failovergroups": "2021-11-01",
    "microsoft.dbforpostgresql/flexibleservers": "2022-12-01",
    "microsoft.dbformysql/flexibleservers": "2021-05-01",
    "microsoft.recoveryservices/vaults": "2023-04-01",
    "microsoft.containerregistry/registries/replications": "2023-07-01",
    "microsoft.operationalinsights/workspaces": "2023-09-01",
    "microsoft.servicebus/namespaces": "2021-11-01",
    "microsoft.eventhub/namespaces": "2024-01-01",
    "microsoft.cache/redis": "2024-03-01",
}

#: Child resources `resources.list` never returns (ARM proxy resources), listed under each
#: parent of the given type: (collection, api-version). SQL failover groups: REST reference
#: "Failover Groups - List By Server".
CHILD_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "microsoft.sql/servers": (("failoverGroups", "2021-11-01"),),
}

#: Child resources read by GET under each parent of the given type, kept in the parent's body
#: under the given key (catalogue paths `body.<key>...`): (path, api-version, key). SQL TDE
#: protector: REST reference "Encryption Protectors - Get".
CHILD_READS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "microsoft.sql/servers": (("encryptionProtector/current", "2021-11-01",
                               "encryptionProtector"),),
}

#: ARM types that hold keys, and the DNS label of their URIs (`NAME.vault.azure.net`).
KEY_HOLDERS = {"microsoft.keyvault/vaults": "AZURE_KEY_VAULT",
               "microsoft.keyvault/managedhsms": "MANAGED_HSM"}

#: Synthetic tag on a copy: where its region came from (ARM's answer or the pack's pairing).
TAG_COPY_LOCATION = "residency:copy-location"

PairedRegion = Callable[[str], str | None]
"""region -> its paired region (or None when the pack knows no pair)."""


@dataclass(slots=True)
class _Seen:
    """One ARM resource as read: its azapi-shaped values, catalogue entry and system."""

    id: str
    subscription: str
    arm_type: str
    values: dict[str, Any]
    entry: Entry | None
    system: System | None
    full: bool  # the values hold what the entry's paths need (listed or read by id)
    why_partial: str | None = None  # why not, when not


@dataclass(slots=True)
class _Part:
    seen: list[_Seen] = field(default_factory=list)
    systems: list[System] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)


class AzureCollector(Collector):
    """Reads subscriptions (listed, or given) and their resources through ARM, read-only."""

    provider = "azure"

    def __init__(
        self,
        credential: Any,
        paired_region: PairedRegion,
        subscriptions: Iterable[str] = (),
        base_url: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        *,
        catalogue: Catalogue | None = None,
        resource_graph: bool = False,
    ) -> None:
        """`client_kwargs` go to every SDK client (retry_total, authentication_policy, ...).
        `catalogue` is the pack's resource catalogue (`PolicyPack.catalogue`); without one,
        the shipped pack's is loaded."""
        self._credential = credential
        self._paired = paired_region
        self._subscriptions = tuple(dict.fromkeys(subscriptions))
        self._base_url = base_url
        self._kwargs = dict(client_kwargs or {})
        if catalogue is None:
            catalogue = _shipped_catalogue()
        self._catalogue = catalogue
        # ARM types are case-insensitive (`Microsoft.Insights` vs `microsoft.insights`)
        self._entries = {k.lower(): e for k, e in catalogue.entries.items()
                         if k.startswith(f"{AZAPI}:")}
        self._generic = catalogue.entry(AZAPI)
        self._graph = resource_graph
        self.graph_used = False  # whether the last collect read through Resource Graph

    # ------------------------------------------------------------------ entry
    def collect(self, ctx: CollectContext) -> Inventory:
        gaps: list[CoverageGap] = []
        subscriptions = list(self._subscriptions) or self._list_subscriptions(gaps)
        subscriptions = [s for s in subscriptions if ctx.wants(s)]
        rows: dict[str, list[dict[str, Any]]] | None = None
        if self._graph and subscriptions:
            rows = self._graph_rows(subscriptions, gaps)
            if rows is not None:
                subscriptions = [s for s in subscriptions if s in rows]
        parts: list[_Part] = []
        if subscriptions:
            workers = max(1, min(ctx.workers, len(subscriptions)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(lambda s: self._subscription(
                    s, ctx, None if rows is None else rows[s]), subscriptions))
        systems = [s for p in parts for s in p.systems]
        flows = [f for p in parts for f in p.flows]
        gaps.extend(g for p in parts for g in p.gaps)
        # copies last: a replica's source may sit in another subscription
        by_id = {s.id.lower(): s for s in systems}
        extra: dict[str, System] = {}
        for seen in (x for p in parts for x in p.seen):
            for copy, flow in self._copies(seen, by_id):
                if copy is not None and copy.id.lower() not in by_id:
                    extra.setdefault(copy.id, copy)
                flows.append(flow)
        systems.extend(extra.values())
        systems = self._with_keys(systems, [x for p in parts for x in p.seen], gaps)
        unique = list({f.id: f for f in flows}.values())
        return Inventory(tuple(systems), tuple(unique), tuple(gaps))

    def _graph_rows(self, subscriptions: list[str], gaps: list[CoverageGap]
                    ) -> dict[str, list[dict[str, Any]]] | None:
        """Resource Graph's rows per readable subscription, or None where ARG is not
        offered (the caller then lists per subscription)."""
        self.graph_used = False
        try:
            got = azure_graph.read(self._credential, subscriptions, self._base_url,
                                   self._kwargs, _reason)
        except azure_graph.GraphUnavailableError:
            return None
        self.graph_used = True
        gaps.extend(got.gaps)
        return got.rows

    def _list_subscriptions(self, gaps: list[CoverageGap]) -> list[str]:
        try:
            from azure.mgmt.resource.subscriptions import SubscriptionClient

            client = SubscriptionClient(self._credential, base_url=self._base_url, **self._kwargs)
            with client:
                subs = [s.subscription_id for s in client.subscriptions.list()]
        except Exception as exc:  # any failure, an answer that is not JSON included
            gaps.append(CoverageGap("azure", "subscriptions", _faults.reason(exc, _reason)))
            return []
        if not subs:
            gaps.append(CoverageGap("azure", "subscriptions",
                                    "the credential can read no subscription"))
        return [s for s in subs if s]

    # ------------------------------------------------------------------ one subscription
    def _subscription(self, subscription: str, ctx: CollectContext,
                      rows: list[dict[str, Any]] | None = None) -> _Part:
        """One subscription's resources: the unit of work. Any exception (an ARM error, a
        reset, a timeout, an answer that is not JSON or fails deserialization) is the
        subscription's gap; the pages already read are kept (and read further by id).
        `rows`: the subscription's resources as Resource Graph answered them (not listed)."""
        part = _Part()
        try:
            from azure.mgmt.resource.resources import ResourceManagementClient

            client = ResourceManagementClient(
                self._credential, subscription, base_url=self._base_url, **self._kwargs
            )
            with client:
                listed: list[dict[str, Any]] = []
                error: str | None = None
                try:
                    for index, res in enumerate(
                            client.resources.list() if rows is None else rows):
                        try:  # one unreadable entry is its own gap; the rest is kept
                            listed.append(_listed(res))
                        except Exception as exc:
                            name = getattr(res, "id", None) or f"#{index} of the listing"
                            part.gaps.append(CoverageGap(
                                "azure", f"subscription {subscription} resource {name}",
                                _faults.reason(exc, _reason)))
                except Exception as exc:
                    error = _faults.reason(exc, _reason) + _faults.kept_note(
                        len(listed), "resource")
                listed.extend(self._children(client, listed, subscription, part.gaps))
                self._child_reads(client, listed, subscription, part.gaps)
                self._read_all(client, listed, subscription, ctx, part)
            if error is not None:
                part.gaps.append(CoverageGap("azure", f"subscription {subscription}", error))
        except Exception as exc:  # the client itself could not be built or closed
            part.gaps.append(CoverageGap("azure", f"subscription {subscription}",
                                         _faults.reason(exc, _reason)
                                         + _faults.kept_note(len(part.systems), "resource")))
        if ctx.progress is not None:
            ctx.progress(f"subscription {subscription}", 1)
        return part

    def _children(self, client: Any, listed: list[dict[str, Any]], subscription: str,
                  gaps: list[CoverageGap]) -> list[dict[str, Any]]:
        """Proxy resources (`CHILD_LISTS`) under each listed parent, every page of them."""
        out: list[dict[str, Any]] = []
        for parent in listed:
            for collection, api in CHILD_LISTS.get(str(parent.get("type", "")).lower(), ()):
                url: str | None = f"{parent['id']}/{collection}?api-version={api}"
                try:
                    while url:
                        page = _get_json(client, url)
                        out.extend(_checked(item) for item in page["value"])
                        url = page.get("nextLink") or None
                except Exception as exc:
                    gaps.append(CoverageGap("azure", f"subscription {subscription} resource "
                                            f"{parent['id']} {collection}",
                                            _faults.reason(exc, _reason)))
        return out

    @staticmethod
    def _child_reads(client: Any, listed: list[dict[str, Any]], subscription: str,
                     gaps: list[CoverageGap]) -> None:
        """`CHILD_READS`: one GET per parent, the answer kept in the parent's body."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        for parent in listed:
            for path, api, key in CHILD_READS.get(str(parent.get("type", "")).lower(), ()):
                try:
                    response = client.send_request(HttpRequest(
                        "GET", f"{parent['id']}/{path}?api-version={api}"))
                    if response.status_code != 200:
                        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
                    parent[key] = _checked(response.json())
                except Exception as exc:  # its key is then unknown; the resource is kept
                    gaps.append(CoverageGap("azure", f"subscription {subscription} resource "
                                            f"{parent['id']} {path}",
                                            _faults.reason(exc, _reason)))

    def _read_all(self, client: Any, listed: list[dict[str, Any]], subscription: str,
                  ctx: CollectContext, part: _Part) -> None:
        """Match every resource to the catalogue, GET those whose paths need more than the
        list call gave (concurrently), then build the systems in listing order."""
        plans = [(body, self._entry(str(body.get("type", "")))) for body in listed]
        need = [i for i, (body, entry) in enumerate(plans) if _needs_read(body, entry)]
        reads: dict[int, tuple[dict[str, Any] | None, str | None]] = {}
        if need:
            workers = max(1, min(ctx.workers, len(need)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for i, got in zip(need, pool.map(
                        lambda i: self._read(client, plans[i][0], subscription, part.gaps),
                        need), strict=True):
                    reads[i] = got
        for i, (body, entry) in enumerate(plans):
            try:
                full, why = reads.get(i, (body, None))
                self._resource(full or body, entry, i not in reads or full is not None, why,
                               subscription, ctx, part)
            except Exception as exc:  # one unreadable entry is its own gap
                part.gaps.append(CoverageGap("azure", f"subscription {subscription} resource "
                                             f"{body.get('id')}", _faults.reason(exc, _reason)))

    @staticmethod
    def _read(client: Any, body: dict[str, Any], subscription: str,
              gaps: list[CoverageGap]) -> tuple[dict[str, Any] | None, str | None]:
        """GET the resource by id (read-only): (its full JSON, None), or (None, why not)."""
        arm_type = str(body.get("type", ""))
        api = API_VERSIONS.get(arm_type.lower())
        if api is None:
            return None, (f"ARM type {arm_type}: the catalogue reads properties that ARM's "
                          "list omits, and residency knows no api-version to GET it "
                          "(collectors/azure.py API_VERSIONS)")
        try:
            full = client.resources.get_by_id(body["id"], api_version=api)
            got = _checked(full.as_dict())
        except Exception as exc:  # a per-resource read: its own gap; the listing is kept
            gaps.append(CoverageGap("azure", f"resource {body['id']} properties",
                                    _faults.reason(exc, _reason)))
            return None, None
        # keep what the list call reported and the read left out (tags, sku)
        return {**body, **{k: v for k, v in got.items() if v is not None}}, None

    def _entry(self, arm_type: str) -> Entry | None:
        return self._entries.get(f"{AZAPI}:{arm_type}".lower(), self._generic)

    def _resource(self, body: dict[str, Any], entry: Entry | None, full: bool,
                  why: str | None, subscription: str, ctx: CollectContext,
                  part: _Part) -> None:
        res_id = body["id"]
        values = _values(body)
        tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
        location = body.get("location") or None
        if not location and entry is not None:  # ARM reported none: the catalogue's steps
            found = _regions(values, entry.location)
            location = found[0] if found else None
        system: System | None = None
        classified = ctx.classification.tag in tags
        if entry is None or entry.store or classified:
            system, fed = resource_system(
                provider="azure",
                resource_id=res_id,
                name=body.get("name") or res_id,
                account=subscription,
                regions=(location,) if location else (),
                tags=tags,
                ctx=ctx,
                unknown_reason=None if location else "resource reported no location",
            )
            if system is not None:
                part.systems.append(system)
                part.flows.extend(fed)
        part.seen.append(_Seen(res_id, subscription, str(body.get("type", "")), values, entry,
                               system, full, why))

    # ------------------------------------------------------------------ copies
    def _copies(self, seen: _Seen, by_id: dict[str, System]
                ) -> Iterator[tuple[System | None, Flow]]:
        """(copy system or None when it is already a system, flow) for one resource."""
        entry = seen.entry
        if entry is None or not entry.copies:
            return
        owner = seen.system if entry.store else by_id.get(_parent_id(seen.id).lower())
        if owner is None and not entry.store and seen.system is not None:
            owner = seen.system  # a classified non-store whose parent was not read
        steps = entry.copies
        if not seen.full:
            if seen.why_partial is not None and owner is not None and (
                    owner.classified or owner.location.unknown_reason):
                loc = Location(provider="azure", unknown_reason=f"{seen.id}: copies not read "
                               f"({seen.why_partial})")
                yield from _copy(owner, f"{seen.id}#copy/unknown", "copies unknown", loc,
                                 "its copies could not be read")
            steps = tuple(st for st in steps if _answered(seen.values, st))
        home = _norm(owner.location.regions[0]) if owner and owner.location.regions else None
        reported = False
        for step in steps:
            if step.attr is not None and owner is not None:
                for region in _regions(seen.values, (step,)):
                    if region == home:
                        continue
                    reported = True
                    loc = Location(provider="azure", regions=(region,))
                    yield from _copy(owner, f"{seen.id}#copy/{region}", f"copy in {region}",
                                     loc, f"a copy ARM reports in {region} ({step.attr})")
            elif step.ref is not None:
                yield from self._ref_copy(seen, step.ref, by_id)
        if reported or owner is None:
            return  # a copy location the API reports beats the pack's pairing
        for step in steps:
            if step.pair_if is not None:
                yield from self._pair_copy(seen, owner, step.pair_if)

    def _pair_copy(self, seen: _Seen, owner: System, cond: tuple[str, frozenset[str]]
                ) -> Iterator[tuple[System | None, Flow]]:
        """Geo-redundancy: a copy in the region the pack pairs with the resource's own."""
        attr, wanted = cond
        got = next(iter(lookup(seen.values, parse_path(attr))), None)
        if got is None or str(got).upper() not in wanted:
            return
        location = owner.location.regions[0] if owner.location.regions else None
        pair = self._paired(location) if location else None
        short = attr.rpartition(".")[2]
        if pair:
            where = Location(provider="azure", regions=(pair,))
            why = (f"geo-redundant copy ({short}={got}) in {pair}, the region policies/regions/"
                   f"azure.yaml pairs with {location}: ARM reported no copy location")
        else:
            where = Location(provider="azure", unknown_reason=(
                f"{got} copy of a resource in {location or '?'}: no paired region known in "
                "regions/azure.yaml"))
            why = f"geo-redundant copy ({short}={got}) in the paired region, which is unknown"
        yield from _copy(owner, f"{owner.id}#secondary", f"geo-secondary, {got}", where, why,
                         "paired region from the policy pack (ARM reported none)")

    @staticmethod
    def _ref_copy(seen: _Seen, ref: str, by_id: dict[str, System]
                  ) -> Iterator[tuple[System | None, Flow]]:
        """This resource holds a copy of the one `ref` names: flow from that one to this."""
        source_id = next((v for v in lookup(seen.values, parse_path(ref))
                          if isinstance(v, str) and v), None)
        if source_id is None:
            return
        target = seen.system
        source = by_id.get(source_id.lower())
        why = f"a copy of {source_id} ({ref})"
        if source is None:
            if target is None or not target.classified:
                return  # unclassified copy of data the scan did not see: noise
            # the source is outside the scanned subscriptions: where it is, is unknown
            source = dataclasses.replace(
                target, id=source_id, name=source_id.rpartition("/")[2], tags=(),
                location=Location(provider="azure", unknown_reason=(
                    f"{source_id}: the source of {seen.id} is not in the scanned "
                    "subscriptions")))
            yield source, dataclasses.replace(replication_flow(source, seen.id), purpose=why)
            return
        here = seen.values.get("location")
        if here and source.location.regions and _norm(str(here)) == _norm(
                source.location.regions[0]):
            return  # a copy in the source's own region (ACR's home replication)
        made: System | None = None
        if target is None:  # dropped by --classified-only: the copy carries the source's data
            loc = Location(provider="azure", regions=(
                (seen.values["location"],) if seen.values.get("location") else ()),
                unknown_reason=None if seen.values.get("location") else "no location")
            made = dataclasses.replace(source, id=seen.id, name=str(seen.values.get("name")),
                                       location=loc, account=seen.subscription)
        yield made, dataclasses.replace(replication_flow(source, seen.id), purpose=why)


    # ------------------------------------------------------------------ keys
    def _with_keys(self, systems: list[System], seen: list[_Seen],
                   gaps: list[CoverageGap]) -> list[System]:
        """Each store's keys (`System.keys`), located at the vault or HSM holding them."""
        holders = {(kind, str(s.values.get("name") or "").lower()): s for s in seen
                   if (kind := KEY_HOLDERS.get(s.arm_type.lower())) is not None}
        keys: dict[str, tuple[KeyRef, ...]] = {}
        missing: set[str] = set()
        for item in seen:
            if item.system is None or item.entry is None or not item.entry.keys:
                continue
            refs = tuple(_key_ref(uri, holders, missing) for uri in _key_uris(item))
            if refs:
                keys[item.system.id] = refs
        for host in sorted(missing):
            gaps.append(CoverageGap("azure", f"key vault {host}", (
                "a store's key is held there, and it is not among the scanned resources: "
                "where the key is held is unknown")))
        return [dataclasses.replace(s, keys=keys[s.id]) if s.id in keys else s
                for s in systems]


def _key_uris(item: _Seen) -> list[str | None]:
    """The key URIs the entry's `keys` paths name; [None] when they were read and name none
    (Microsoft-managed keys); [] when what they go through was not read."""
    assert item.entry is not None
    found: list[str | None] = []
    answered = False
    for path in item.entry.keys:
        parts = parse_path(path)
        if len(parts) > 1 and parts[0] == "body" and item.values["body"].get(
                str(parts[1])) is None:
            continue
        answered = True
        found.extend(v for v in lookup(item.values, parts) if isinstance(v, str) and v)
    if found:
        return list(dict.fromkeys(found))
    return [None] if answered and item.full else []


def _key_ref(uri: str | None, holders: dict[tuple[str, str], _Seen],
             missing: set[str]) -> KeyRef:
    if uri is None:
        return KeyRef(key="", algorithm="Microsoft-managed keys", key_manager="MICROSOFT")
    host = (urlsplit(uri if "://" in uri else f"https://{uri}").hostname or "").lower()
    name, _, domain = host.partition(".")
    kind = "MANAGED_HSM" if domain.startswith("managedhsm.") else "AZURE_KEY_VAULT"
    holder = holders.get((kind, name))
    level = "HSM" if kind == "MANAGED_HSM" else None
    if holder is None:
        missing.add(host)
        return KeyRef(key=uri, arn=uri, origin=kind, key_manager="CUSTOMER",
                      protection_level=level, unknown_reason=(
                          f"{host} is not among the scanned resources"))
    location = holder.values.get("location")
    return KeyRef(key=uri, arn=uri, region=_norm(str(location)) if location else None,
                  account=holder.subscription, origin=kind, key_manager="CUSTOMER",
                  protection_level=level,
                  unknown_reason=None if location else f"{holder.id} reported no location")


def _copy(owner: System, ident: str, label: str, where: Location, why: str,
          origin: str = "reported by ARM") -> Iterator[tuple[System | None, Flow]]:
    """A copy of `owner`'s data at `where`: same data, same provider."""
    copy = dataclasses.replace(
        owner, id=ident, name=f"{owner.name} ({label})", location=where,
        tags=tuple(sorted({**dict(owner.tags), TAG_COPY_LOCATION: origin}.items())),
    )
    yield copy, dataclasses.replace(replication_flow(owner, ident), purpose=why)


def _listed(res: Any) -> dict[str, Any]:
    """One `resources.list` entry as its ARM JSON."""
    body = res.as_dict() if hasattr(res, "as_dict") else dict(res)
    return _checked(body)


def _checked(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TypeError(f"a resource is a {type(body).__name__}, not an object")
    if not body.get("id"):
        raise KeyError("id")  # ARM always sends one; without it there is no system id
    return body


def _get_json(client: Any, url: str) -> dict[str, Any]:
    """A read-only GET through the client's pipeline (auth, retries); ARM errors raised."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    response = client.send_request(HttpRequest("GET", url))
    if response.status_code != 200:
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    doc = response.json()
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise TypeError("a list answer without a `value` list")
    return doc


def _values(body: dict[str, Any]) -> dict[str, Any]:
    """The ARM JSON as azapi_resource holds it, so catalogue paths start at `body.`."""
    res_id = str(body["id"])
    return {"body": body, "id": res_id, "name": body.get("name"), "type": body.get("type"),
            "location": body.get("location"), "tags": body.get("tags") or {},
            "parent_id": _parent_id(res_id)}


def _parent_id(res_id: str) -> str:
    """azapi's `parent_id`: `.../servers/s1/failoverGroups/g` → `.../servers/s1`; a
    top-level resource's parent is its resource group."""
    scope, sep, rest = res_id.rstrip("/").rpartition("/providers/")
    if not sep:
        return res_id.rstrip("/").rsplit("/", 2)[0]
    parts = rest.split("/")  # namespace, type, name[, child type, child name ...]
    if len(parts) > 3:
        return f"{scope}/providers/{'/'.join(parts[:-2])}"
    return scope


@functools.lru_cache(maxsize=1)
def _shipped_catalogue() -> Catalogue:
    """The shipped pack's catalogue, for callers that pass none (the CLI passes its own)."""
    from residency.policy.pack import PolicyPack

    return PolicyPack.load().catalogue


def _paths(entry: Entry) -> Iterator[tuple[str | int, ...]]:
    for step in (*entry.location, *entry.copies):
        for path in (step.attr, step.ref, step.pair_if[0] if step.pair_if else None):
            if path:
                yield parse_path(path)


def _needs_read(body: dict[str, Any], entry: Entry | None) -> bool:
    """Whether a path of the entry goes through a part of `body` the list call left out."""
    if entry is None:
        return False
    return any(len(p) > 1 and p[0] == "body" and body.get(str(p[1])) is None
               for p in _paths(entry))


def _answered(values: dict[str, Any], step: Step) -> bool:
    """A step whose path the values can answer (not one into what could not be read)."""
    path = step.attr or step.ref or (step.pair_if[0] if step.pair_if else None)
    if path is None:
        return True
    parts = parse_path(path)
    return not (len(parts) > 1 and parts[0] == "body"
                and values["body"].get(str(parts[1])) is None)


def _regions(values: dict[str, Any], steps: Iterable[Step]) -> list[str]:
    found: list[str] = []
    for step in steps:
        if step.attr is None:
            continue
        for v in lookup(values, parse_path(step.attr)):
            if isinstance(v, str) and (n := normalise(v, step.as_)) and n not in found:
                found.append(n)
    return found


def _norm(region: str) -> str:
    return normalise(region, "azure") or region


def _reason(exc: BaseException) -> str | None:
    """`HTTP 403 AuthorizationFailed: ...` for an SDK error; never the request headers or a
    token. None for anything that is not an Azure SDK error (see `_faults.generic`)."""
    from azure.core.exceptions import AzureError

    if not isinstance(exc, AzureError):
        return None
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    message = str(message).splitlines()[0] if message else type(exc).__name__
    head = " ".join(p for p in (f"HTTP {status}" if status else "", code or "") if p)
    return f"{head}: {message}" if head else f"{type(exc).__name__}: {message}"


# ---------------------------------------------------------------------- local peers
class EmulatorCredential:
    """A fixed token for a local ARM peer (`--azure-endpoint http://127.0.0.1:...`)."""

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("emulator", int(time.time()) + 3600)


def loopback_collector(
    paired_region: PairedRegion, endpoint: str, subscriptions: Iterable[str] = (),
    *, catalogue: Catalogue | None = None, resource_graph: bool = False,
) -> AzureCollector:
    """A collector for a local ARM peer over plain http (refused unless `endpoint` is loopback)."""
    if not is_loopback(endpoint):
        raise ValueError(f"{endpoint}: plain http is only allowed to a loopback host")
    credential = EmulatorCredential()
    return AzureCollector(credential, paired_region, subscriptions, endpoint,
                          {"authentication_policy": loopback_bearer_policy(credential)},
                          catalogue=catalogue, resource_graph=resource_graph)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_bearer_policy(credential: Any, *scopes: str) -> Any:
    """A bearer policy that allows plain http, but only to a loopback host.

    ARM's default policy refuses non-TLS URLs (right for Azure); a local test peer has no
    TLS. Anything but loopback is still refused, so a token never leaves in clear text.
    """
    from azure.core.exceptions import ServiceRequestError
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class _LoopbackBearer(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            url = request.http_request.url
            if not url.startswith("https://") and not is_loopback(url):
                raise ServiceRequestError("bearer token refused for a non-TLS, non-loopback URL")
            token = credential.get_token(*(scopes or (ARM_SCOPE,))).token
            request.http_request.headers["Authorization"] = f"Bearer {token}"

    return _LoopbackBearer()
