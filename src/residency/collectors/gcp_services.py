"""Google Cloud stores whose copies are flows, their Cloud KMS keys, and project discovery.

Read over each API's REST JSON (an `AuthorizedSession`, or a plain session to a local peer,
at a configurable endpoint per API), with paging (`pageToken` / `nextPageToken`):
- Cloud SQL Admin v1 `instances.list`: an instance at its `region`; a read replica
  (`masterInstanceName` `project:instance`) is a replication flow from its primary; a
  `replicaNames` entry the listing lacks is a copy at an unknown location; a backup
  `location` other than the region is a copy there; `warnings` REGION_UNREACHABLE is a gap.
- Spanner v1 `instances.list`: located by its instance configuration (`config`, resolved by
  the region table as `spanner-<name>` / `regional-<region>`); a user-managed configuration
  (`custom-…`) is read (`instanceConfigs.get`): its `baseConfig` locates it and each
  READ_ONLY replica is a copy; `unreachable` is a gap.
- Bigtable Admin v2 `instances.list` and `instances/-/clusters`: the first cluster's zone
  locates the instance, every other cluster is a replication copy; `failedLocations` is a gap.
- Cloud KMS v1 `cryptoKeys.get`: a key's location is in its name
  (`projects/*/locations/L/keyRings/*/cryptoKeys/*`); its `versionTemplate.protectionLevel`
  (SOFTWARE, HSM, EXTERNAL, EXTERNAL_VPC for Cloud EKM) is read.
- Resource Manager v3 (google-cloud-resource-manager, REST transport): the projects under
  organisations and folders, folders recursively; a DELETE_REQUESTED project is not read and
  is a gap (its data is kept until it is purged, and its APIs no longer answer).

An API that is not enabled in a project (403 SERVICE_DISABLED) has no instances there: that
is not a gap. Every other error is the (project, service)'s gap.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from residency.collectors import _faults
from residency.model import CoverageGap, KeyRef, Location

ENDPOINTS = {
    "sqladmin": "https://sqladmin.googleapis.com",
    "spanner": "https://spanner.googleapis.com",
    "bigtableadmin": "https://bigtableadmin.googleapis.com",
    "cloudkms": "https://cloudkms.googleapis.com",
    "cloudresourcemanager": "https://cloudresourcemanager.googleapis.com",
}
SQL_PREFIX = "//sqladmin.googleapis.com/projects/"
SPANNER_PREFIX = "//spanner.googleapis.com/projects/"
BIGTABLE_PREFIX = "//bigtableadmin.googleapis.com/projects/"
_KEY = re.compile(r"^projects/([^/]+)/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+")
RETRIED = frozenset({429, 500, 502, 503, 504})

#: The IAM permission each read needs (policies/iam/gcp-readonly-role.yaml lists exactly
#: these, with Cloud Storage's and Cloud Asset Inventory's).
PERMISSIONS = {
    "sqladmin instances.list": "cloudsql.instances.list",
    "spanner instances.list": "spanner.instances.list",
    "spanner instanceConfigs.get": "spanner.instanceConfigs.get",
    "bigtableadmin instances.list": "bigtable.instances.list",
    "bigtableadmin clusters.list": "bigtable.clusters.list",
    "cloudkms cryptoKeys.get": "cloudkms.cryptoKeys.get",
    "cloudresourcemanager projects.list": "resourcemanager.projects.list",
    "cloudresourcemanager folders.list": "resourcemanager.folders.list",
}


class RestError(Exception):
    """A Google API error answer: status, `error.status` and the first line of the message."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status = status
        self.code = str(error.get("status") or "")
        self.reasons = {str(d.get("reason")) for d in error.get("details") or []
                        if isinstance(d, dict) and d.get("reason")} | {
            str(e.get("reason")) for e in error.get("errors") or []
            if isinstance(e, dict) and e.get("reason")}
        message = str(error.get("message") or "").strip().splitlines()
        self.message = message[0] if message else ""
        why = {403: "permission denied", 404: "not found", 429: "throttled"}.get(
            status, "API error")
        code = f" {self.code}" if self.code else ""
        super().__init__(f"{why} (HTTP {status}{code}): {self.message}")

    @property
    def disabled(self) -> bool:
        """The API is not enabled in the project, so it holds no instances of it."""
        return self.status == 403 and ("SERVICE_DISABLED" in self.reasons
                                       or "accessNotConfigured" in self.reasons)


@dataclass
class GcpRest:
    """GETs against Google REST APIs. `session`: a `google.auth.transport.requests.
    AuthorizedSession` (or any requests-like session); `endpoints` override `ENDPOINTS`
    per API; 429/5xx are retried `retries` times, honouring Retry-After."""

    session: Any
    endpoints: dict[str, str] = field(default_factory=dict)
    retries: int = 3
    timeout: float = 30.0
    calls: int = 0

    def get(self, api: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        base = (self.endpoints.get(api) or ENDPOINTS[api]).rstrip("/")
        for attempt in range(self.retries + 1):
            self.calls += 1
            response = self.session.get(f"{base}/{path.lstrip('/')}", params=params or {},
                                        timeout=self.timeout)
            if response.status_code in RETRIED and attempt < self.retries:
                wait = response.headers.get("Retry-After") or ""
                time.sleep(float(wait) if wait.isdigit() else min(8.0, 0.5 * 2 ** attempt))
                continue
            break
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            raise RestError(response.status_code, body)
        if not isinstance(body, dict):
            raise TypeError("an answer that is not a JSON object")
        return body

    def pages(self, api: str, path: str, params: dict[str, Any] | None = None
              ) -> Iterator[dict[str, Any]]:
        """Every page, following `nextPageToken`."""
        query = dict(params or {})
        while True:
            page = self.get(api, path, query)
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
            query["pageToken"] = token


@dataclass(frozen=True, slots=True)
class Found:
    """A store read in depth: id, name, project, regions (as the API spells them, normalised
    by the caller), labels, keys named, or an unknown reason."""

    id: str
    name: str
    project: str
    regions: tuple[str, ...]
    labels: dict[str, str]
    how: str = "region"  # how the regions are spelt (catalogue `as`)
    keys: tuple[str, ...] = ()
    google_managed: bool = False  # encrypted with Google's default keys (no CMEK named)
    unknown: str | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Copy:
    """Data of `source` also held at `target` (an existing Found, or a placeholder at
    `regions`): a replication flow."""

    source: str
    target: str
    why: str
    regions: tuple[str, ...] = ()
    how: str = "region"
    unknown: str | None = None


@dataclass(slots=True)
class Read:
    found: list[Found] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)


def guarded(read: Read, scope: str, fn: Callable[[], None],
            describe: Callable[[BaseException], str | None] | None = None) -> None:
    """Run one (project, service) read; an error is its gap, a disabled API is none."""
    try:
        fn()
    except RestError as exc:
        if not exc.disabled:
            read.gaps.append(CoverageGap("gcp", scope, _faults.reason(exc, rest_reason)))
    except Exception as exc:
        read.gaps.append(CoverageGap("gcp", scope, _faults.reason(exc, describe)))


def rest_reason(exc: BaseException) -> str | None:
    return str(exc) if isinstance(exc, RestError) else None


# ---------------------------------------------------------------------- Cloud SQL
def cloud_sql(rest: GcpRest, project: str, read: Read) -> None:
    listed: dict[str, dict[str, Any]] = {}
    for page in rest.pages("sqladmin", f"v1/projects/{project}/instances"):
        for item in page.get("items") or []:
            listed[str(item["name"])] = item
        for warning in page.get("warnings") or []:
            if warning.get("code") == "REGION_UNREACHABLE":
                read.gaps.append(CoverageGap("gcp", f"project {project} cloudsql region "
                                             f"{warning.get('region', '?')}", str(
                                                 warning.get("message") or "unreachable")))
    for name, item in listed.items():
        sid = f"{SQL_PREFIX}{project}/instances/{name}"
        settings = item.get("settings") or {}
        kms = (item.get("diskEncryptionConfiguration") or {}).get("kmsKeyName")
        region = item.get("region")
        read.found.append(Found(
            sid, name, project, (region,) if region else (),
            {str(k): str(v) for k, v in (settings.get("userLabels") or {}).items()},
            keys=(kms,) if kms else (), google_managed=not kms,
            unknown=None if region else "instance reported no region"))
        master = item.get("masterInstanceName")
        if master:
            mproject, _, mname = str(master).rpartition(":")
            read.copies.append(Copy(f"{SQL_PREFIX}{mproject or project}/instances/{mname}", sid,
                                    f"a read replica of {master} (masterInstanceName)"))
        for replica in item.get("replicaNames") or []:
            if replica not in listed:
                read.copies.append(Copy(sid, f"{SQL_PREFIX}{project}/instances/{replica}",
                                        f"replica {replica} (replicaNames), not listed",
                                        unknown=f"replica {replica} named by {name} was not "
                                        "returned by instances.list"))
        failover = (item.get("failoverReplica") or {}).get("name")
        if failover and failover in listed:
            read.copies.append(Copy(sid, f"{SQL_PREFIX}{project}/instances/{failover}",
                                    f"failover replica {failover} (failoverReplica)"))
        backup = (settings.get("backupConfiguration") or {}).get("location")
        if backup and region and str(backup).lower() != str(region).lower():
            read.copies.append(Copy(sid, f"{sid}#backup/{backup}",
                                    f"backups stored in {backup} (backupConfiguration.location)",
                                    regions=(str(backup),)))


# ---------------------------------------------------------------------- Spanner
def spanner(rest: GcpRest, project: str, read: Read) -> None:
    for page in rest.pages("spanner", f"v1/projects/{project}/instances"):
        for item in page.get("instances") or []:
            _spanner_instance(rest, project, item, read)
        for name in page.get("unreachable") or []:
            read.gaps.append(CoverageGap("gcp", f"project {project} spanner {name}",
                                         "reported unreachable by instances.list"))


def _spanner_instance(rest: GcpRest, project: str, item: dict[str, Any], read: Read) -> None:
    name = str(item["name"]).rpartition("/")[2]
    sid = f"{SPANNER_PREFIX}{project}/instances/{name}"
    config = str(item.get("config") or "")
    labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
    short = config.rpartition("/")[2]
    if not short.startswith("custom-"):
        read.found.append(Found(sid, name, project, (config,) if config else (), labels,
                                how="spanner_config",
                                unknown=None if config else "instance reported no config",
                                tags=(("gcp:spanner-config", short),)))
        return
    detail = rest.get("spanner", f"v1/{config}")  # a user-managed configuration
    base = str(detail.get("baseConfig") or "")
    replicas = [r for r in detail.get("replicas") or [] if isinstance(r, dict)]
    if base:
        read.found.append(Found(sid, name, project, (base,), labels, how="spanner_config",
                                tags=(("gcp:spanner-config", short),)))
    else:
        regions = tuple(dict.fromkeys(str(r["location"]) for r in replicas))
        read.found.append(Found(sid, name, project, regions, labels,
                                unknown=None if regions else f"{config} names no replicas",
                                tags=(("gcp:spanner-config", short),)))
        return
    for rep in replicas:
        if rep.get("type") == "READ_ONLY":
            loc = str(rep["location"])
            read.copies.append(Copy(sid, f"{sid}#replica/{loc}",
                                    f"a read-only replica in {loc} ({short} replicas)",
                                    regions=(loc,)))


# ---------------------------------------------------------------------- Bigtable
def bigtable(rest: GcpRest, project: str, read: Read) -> None:
    instances: dict[str, dict[str, Any]] = {}
    for page in rest.pages("bigtableadmin", f"v2/projects/{project}/instances"):
        for item in page.get("instances") or []:
            instances[str(item["name"]).rpartition("/")[2]] = item
        for loc in page.get("failedLocations") or []:
            read.gaps.append(CoverageGap("gcp", f"project {project} bigtable {loc}",
                                         "instances in this location could not be listed "
                                         "(failedLocations)"))
    clusters: dict[str, list[dict[str, Any]]] = {}
    for page in rest.pages("bigtableadmin", f"v2/projects/{project}/instances/-/clusters"):
        for c in page.get("clusters") or []:
            clusters.setdefault(str(c["name"]).split("/")[3], []).append(c)
        for loc in page.get("failedLocations") or []:
            read.gaps.append(CoverageGap("gcp", f"project {project} bigtable clusters {loc}",
                                         "clusters in this location could not be listed "
                                         "(failedLocations)"))
    for name, item in instances.items():
        sid = f"{BIGTABLE_PREFIX}{project}/instances/{name}"
        mine = clusters.get(name, [])
        zones = [str(c.get("location") or "").rpartition("/")[2] for c in mine]
        keys = tuple(dict.fromkeys(k for c in mine if (k := (c.get("encryptionConfig") or {})
                                                      .get("kmsKeyName"))))
        read.found.append(Found(
            sid, name, project, tuple(zones[:1]),
            {str(k): str(v) for k, v in (item.get("labels") or {}).items()}, how="zone",
            keys=keys, google_managed=bool(mine) and not keys,
            unknown=None if zones else "instance has no cluster listed"))
        for cluster, zone in list(zip(mine, zones, strict=True))[1:]:
            cname = str(cluster["name"]).rpartition("/")[2]
            read.copies.append(Copy(sid, f"{sid}#cluster/{cname}",
                                    f"replicated to cluster {cname} in {zone}",
                                    regions=(zone,), how="zone"))


# ---------------------------------------------------------------------- Cloud KMS
def key_location(name: str) -> tuple[str | None, str | None]:
    """(project, location) from a Cloud KMS key or key version name."""
    m = _KEY.match(name)
    return (m.group(1), m.group(2)) if m else (None, None)


def kms_key(rest: GcpRest, name: str) -> KeyRef:
    """Describe one key (`cryptoKeys.get`); errors raise (the caller's gap)."""
    project, location = key_location(name)
    if location is None:
        raise ValueError(f"{name!r} is not a Cloud KMS key name")
    key = re.sub(r"/cryptoKeyVersions/[^/]+$", "", name)
    doc = rest.get("cloudkms", f"v1/{key}")
    level = (doc.get("versionTemplate") or {}).get("protectionLevel") or \
        (doc.get("primary") or {}).get("protectionLevel")
    origin = ("EXTERNAL_KEY_MANAGER" if str(level).startswith("EXTERNAL") else "CLOUD_KMS") \
        if level else None  # Cloud EKM: the key material is outside Google
    return KeyRef(key=name, arn=key, region=location, account=project,
                  origin=origin, key_manager="CUSTOMER",
                  protection_level=str(level) if level else None,
                  algorithm=(doc.get("versionTemplate") or {}).get("algorithm"))


def unknown_key(name: str, why: str) -> KeyRef:
    project, location = key_location(name)
    return KeyRef(key=name, arn=name, region=location, account=project,
                  key_manager="CUSTOMER", unknown_reason=why)


GOOGLE_MANAGED = KeyRef(key="", algorithm="Google default encryption", key_manager="GOOGLE")


# ---------------------------------------------------------------------- Resource Manager
def discover(projects_client: Any, folders_client: Any, parents: list[str],
             describe: Callable[[BaseException], str | None]
             ) -> tuple[list[str], list[CoverageGap]]:
    """Project ids under `parents` (organizations/O, folders/F), folders recursively; a
    parent that cannot be listed is a gap, a DELETE_REQUESTED project is one too."""
    found: list[str] = []
    gaps: list[CoverageGap] = []
    queue = list(dict.fromkeys(parents))
    seen: set[str] = set(queue)
    while queue:
        parent = queue.pop(0)
        try:
            for project in projects_client.list_projects(
                    request={"parent": parent, "show_deleted": True}):
                pid = str(project.project_id)
                state = getattr(project.state, "name", str(project.state))
                if state == "ACTIVE":
                    found.append(pid)
                else:
                    gaps.append(CoverageGap("gcp", f"project {pid}", (
                        f"project is {state} under {parent}: not read (its data is kept "
                        "until the project is purged, and its APIs no longer answer)")))
            for folder in folders_client.list_folders(
                    request={"parent": parent, "show_deleted": True}):
                name = str(folder.name)
                state = getattr(folder.state, "name", str(folder.state))
                if state == "ACTIVE" and name not in seen:
                    seen.add(name)
                    queue.append(name)
        except Exception as exc:
            gaps.append(CoverageGap("gcp", f"projects under {parent}",
                                    _faults.reason(exc, describe)))
    return list(dict.fromkeys(found)), gaps


def copy_location(copy: Copy, normalise: Callable[[str, str], str | None]) -> Location:
    if copy.unknown is not None:
        return Location(provider="gcp", unknown_reason=copy.unknown)
    regions = tuple(r for r in (normalise(x, copy.how) for x in copy.regions) if r)
    return Location(provider="gcp", regions=regions,
                    unknown_reason=None if regions else "copy reported no location")

