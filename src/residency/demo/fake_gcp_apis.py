"""Local peers for the Google Cloud REST APIs the GCP collector reads in depth, each on its own
loopback port (the real ones are separate hosts), answering as the REST references shape:

- Cloud SQL Admin v1 `GET /v1/projects/{p}/instances` (`{"kind": "sql#instancesList",
  "items": [DatabaseInstance], "nextPageToken", "warnings": [ApiWarning]}`):
  https://cloud.google.com/sql/docs/mysql/admin-api/rest/v1/instances/list
- Spanner v1 `GET /v1/projects/{p}/instances` (`{"instances", "nextPageToken",
  "unreachable"}`) and `GET /v1/projects/{p}/instanceConfigs/{c}`:
  https://cloud.google.com/spanner/docs/reference/rest/v1/projects.instances/list
  https://cloud.google.com/spanner/docs/reference/rest/v1/projects.instanceConfigs/get
- Bigtable Admin v2 `GET /v2/projects/{p}/instances` and `/v2/projects/{p}/instances/{i|-}/
  clusters` (`{"instances"|"clusters", "failedLocations", "nextPageToken"}`):
  https://cloud.google.com/bigtable/docs/reference/admin/rest/v2/projects.instances/list
  https://cloud.google.com/bigtable/docs/reference/admin/rest/v2/projects.instances.clusters/list
- Cloud KMS v1 `GET /v1/projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}`:
  https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/get
- Resource Manager v3 `GET /v3/projects?parent=..&showDeleted=..` and `GET /v3/folders?parent=..`
  (`{"projects"|"folders", "nextPageToken"}`, `state` ACTIVE / DELETE_REQUESTED):
  https://cloud.google.com/resource-manager/reference/rest/v3/projects/list
  https://cloud.google.com/resource-manager/reference/rest/v3/folders/list

Pages hold `PAGE_SIZE` items so the client must page. Errors are Google's JSON error
document: 403 PERMISSION_DENIED (with an ErrorInfo `reason`), 403 SERVICE_DISABLED for an
API not enabled in the project, 404 NOT_FOUND. `faults` misbehave as the other peers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from residency.demo._loopback import HttpFault, JsonHandler, LoopbackServer

PAGE_SIZE = 2
Answer = tuple[int, dict[str, Any]]


def google_error(status: int, code: str, message: str, reason: str | None = None,
                 domain: str = "googleapis.com") -> Answer:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": reason, "domain": domain}]
    return status, {"error": error}


def denied(permission: str, resource: str) -> Answer:
    return google_error(403, "PERMISSION_DENIED",
                        f"Permission '{permission}' denied on resource '{resource}' (or it may "
                        "not exist).", "IAM_PERMISSION_DENIED")


def disabled(api: str, project: str) -> Answer:
    return google_error(403, "PERMISSION_DENIED",
                        f"{api} API has not been used in project {project} before or it is "
                        "disabled. Enable it by visiting https://console.developers.google.com/"
                        f"apis/api/{api}/overview?project={project} then retry.",
                        "SERVICE_DISABLED")


def not_found(path: str) -> Answer:
    return google_error(404, "NOT_FOUND", f"{path} was not found.")


def page(items: list[Any], key: str, query: dict[str, str], **extra: Any) -> Answer:
    start = int(query.get("pageToken", "0") or 0)
    size = min(PAGE_SIZE, int(query.get("pageSize") or query.get("maxResults") or PAGE_SIZE))
    body: dict[str, Any] = dict(extra) if start == 0 else {}
    if items[start:start + size]:
        body[key] = items[start:start + size]
    if start + size < len(items):
        body["nextPageToken"] = str(start + size)
    return 200, body


@dataclass
class _Peer:
    """One API on its own port; `answer(path, query)` is the API."""

    errors: dict[str, Answer] = field(default_factory=dict)  # path prefix -> answer
    requests: list[str] = field(default_factory=list)
    latency: float = 0.0
    faults: list[HttpFault] = field(default_factory=list)
    url: str = ""
    _loop: LoopbackServer = field(default_factory=LoopbackServer, repr=False)
    name: ClassVar[str] = "google-api"

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        raise NotImplementedError

    def start(self) -> Any:
        fake = self

        class Handler(JsonHandler):
            content_type: ClassVar[str] = "application/json; charset=UTF-8"
            faults: ClassVar[list[HttpFault]] = fake.faults

            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                raw, query = self._received(fake.requests, fake.latency)
                path = unquote(raw)
                hit = next((a for p, a in fake.errors.items() if path.startswith(p)), None)
                self._send(*(hit or fake.answer(path, query)))

        self.url = self._loop.serve(Handler, f"residency-fake-{self.name}")
        return self

    def stop(self) -> None:
        self._loop.stop()


# ---------------------------------------------------------------------- Cloud SQL
def sql_instance(project: str, name: str, region: str, *, labels: dict[str, str] | None = None,
                 master: str | None = None, replicas: list[str] | None = None,
                 kms_key: str | None = None, backup_location: str | None = None,
                 failover: str | None = None, version: str = "POSTGRES_16") -> dict[str, Any]:
    """A DatabaseInstance as `instances.list` returns it."""
    settings: dict[str, Any] = {
        "kind": "sql#settings", "tier": "db-custom-2-7680", "availabilityType": "ZONAL",
        "dataDiskSizeGb": "100", "backupConfiguration": {
            "kind": "sql#backupConfiguration", "enabled": master is None,
            "startTime": "02:00", "pointInTimeRecoveryEnabled": True}}
    if backup_location:
        settings["backupConfiguration"]["location"] = backup_location
    if labels:
        settings["userLabels"] = labels
    res: dict[str, Any] = {
        "kind": "sql#instance", "state": "RUNNABLE", "databaseVersion": version,
        "settings": settings, "project": project, "name": name, "region": region,
        "gceZone": f"{region}-b", "connectionName": f"{project}:{region}:{name}",
        "backendType": "SECOND_GEN",
        "instanceType": "READ_REPLICA_INSTANCE" if master else "CLOUD_SQL_INSTANCE",
        "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{name}",
    }
    if master:
        res["masterInstanceName"] = master
    if replicas:
        res["replicaNames"] = replicas
    if failover:
        res["failoverReplica"] = {"name": failover, "available": True}
    if kms_key:
        res["diskEncryptionConfiguration"] = {"kmsKeyName": kms_key,
                                              "kind": "sql#diskEncryptionConfiguration"}
    return res


@dataclass
class FakeSqlAdmin(_Peer):
    projects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unreachable: dict[str, list[str]] = field(default_factory=dict)  # project -> regions
    name: ClassVar[str] = "sqladmin"

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        segs = [s for s in path.split("/") if s]
        if len(segs) != 4 or segs[:2] != ["v1", "projects"] or segs[3] != "instances":
            return not_found(path)
        project = segs[2]
        if project not in self.projects:
            return denied("cloudsql.instances.list", f"projects/{project}")
        warnings = [{"code": "REGION_UNREACHABLE", "region": r,
                     "message": f"Region {r} is unreachable."}
                    for r in self.unreachable.get(project, [])]
        return page(self.projects[project], "items", query, kind="sql#instancesList",
                    **({"warnings": warnings} if warnings else {}))


# ---------------------------------------------------------------------- Spanner
def spanner_instance(project: str, name: str, config: str,
                     labels: dict[str, str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"name": f"projects/{project}/instances/{name}",
                           "config": f"projects/{project}/instanceConfigs/{config}",
                           "displayName": name, "nodeCount": 1, "processingUnits": 1000,
                           "state": "READY", "edition": "ENTERPRISE"}
    if labels:
        res["labels"] = labels
    return res


def spanner_config(project: str, name: str, base: str | None,
                   replicas: list[tuple[str, str]]) -> dict[str, Any]:
    """An InstanceConfig: `replicas` as (location, type READ_WRITE|READ_ONLY|WITNESS)."""
    res: dict[str, Any] = {
        "name": f"projects/{project}/instanceConfigs/{name}", "displayName": name,
        "configType": "USER_MANAGED" if name.startswith("custom-") else "GOOGLE_MANAGED",
        "replicas": [{"location": loc, "type": kind, "defaultLeaderLocation": i == 0}
                     for i, (loc, kind) in enumerate(replicas)],
        "state": "READY"}
    if base:
        res["baseConfig"] = f"projects/{project}/instanceConfigs/{base}"
    return res


@dataclass
class FakeSpanner(_Peer):
    projects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name -> config
    name: ClassVar[str] = "spanner"

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        segs = [s for s in path.split("/") if s]
        if len(segs) == 5 and segs[3] == "instanceConfigs":
            found = self.configs.get("/".join(segs[1:]))
            return (200, found) if found else not_found(path)
        if len(segs) != 4 or segs[:2] != ["v1", "projects"] or segs[3] != "instances":
            return not_found(path)
        if segs[2] not in self.projects:
            return denied("spanner.instances.list", f"projects/{segs[2]}")
        return page(self.projects[segs[2]], "instances", query)


# ---------------------------------------------------------------------- Bigtable
def bigtable_instance(project: str, name: str, clusters: list[tuple[str, str]],
                      labels: dict[str, str] | None = None, kms_key: str | None = None
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(Instance, its Clusters); `clusters` as (cluster id, zone)."""
    inst: dict[str, Any] = {"name": f"projects/{project}/instances/{name}",
                            "displayName": name, "state": "READY", "type": "PRODUCTION"}
    if labels:
        inst["labels"] = labels
    out = []
    for cid, zone in clusters:
        c: dict[str, Any] = {"name": f"projects/{project}/instances/{name}/clusters/{cid}",
                             "location": f"projects/{project}/locations/{zone}",
                             "state": "READY", "serveNodes": 3, "defaultStorageType": "SSD"}
        if kms_key:
            c["encryptionConfig"] = {"kmsKeyName": kms_key}
        out.append(c)
    return inst, out


@dataclass
class FakeBigtable(_Peer):
    instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clusters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # project -> all
    failed: dict[str, list[str]] = field(default_factory=dict)
    name: ClassVar[str] = "bigtableadmin"

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        segs = [s for s in path.split("/") if s]
        if len(segs) < 4 or segs[:2] != ["v2", "projects"] or segs[3] != "instances":
            return not_found(path)
        project = segs[2]
        if project not in self.instances:
            return denied("bigtable.instances.list", f"projects/{project}")
        failed = self.failed.get(project)
        extra = {"failedLocations": failed} if failed else {}
        if len(segs) == 4:
            return page(self.instances[project], "instances", query, **extra)
        if len(segs) == 6 and segs[5] == "clusters":
            wanted = [c for c in self.clusters.get(project, [])
                      if segs[4] == "-" or c["name"].split("/")[3] == segs[4]]
            return page(wanted, "clusters", query, **extra)
        return not_found(path)


# ---------------------------------------------------------------------- Cloud KMS
def crypto_key(name: str, protection: str = "SOFTWARE") -> dict[str, Any]:
    algorithm = "EXTERNAL_SYMMETRIC_ENCRYPTION" if protection.startswith("EXTERNAL") else \
        "GOOGLE_SYMMETRIC_ENCRYPTION"
    res: dict[str, Any] = {
        "name": name, "purpose": "ENCRYPT_DECRYPT", "createTime": "2024-01-15T10:00:00Z",
        "primary": {"name": f"{name}/cryptoKeyVersions/1", "state": "ENABLED",
                    "protectionLevel": protection, "algorithm": algorithm},
        "versionTemplate": {"protectionLevel": protection, "algorithm": algorithm},
        "destroyScheduledDuration": "2592000s"}
    if protection == "EXTERNAL_VPC":
        loc = name.split("/")[3]
        res["cryptoKeyBackend"] = f"projects/{name.split('/')[1]}/locations/{loc}/" \
                                  "ekmConnections/ekm-1"
    return res


@dataclass
class FakeKms(_Peer):
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # key name -> CryptoKey
    name: ClassVar[str] = "cloudkms"

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        name = path.removeprefix("/v1/")
        if name in self.keys:
            return 200, self.keys[name]
        return denied("cloudkms.cryptoKeys.get", name)


# ---------------------------------------------------------------------- Resource Manager
def rm_project(project_id: str, number: str, parent: str,
               state: str = "ACTIVE") -> dict[str, Any]:
    return {"name": f"projects/{number}", "parent": parent, "projectId": project_id,
            "state": state, "displayName": project_id, "createTime": "2024-01-15T10:00:00Z",
            "etag": "W/\"1\""}


def rm_folder(number: str, parent: str, state: str = "ACTIVE") -> dict[str, Any]:
    return {"name": f"folders/{number}", "parent": parent, "displayName": f"folder-{number}",
            "state": state, "createTime": "2024-01-15T10:00:00Z", "etag": "W/\"1\""}


@dataclass
class FakeResourceManager(_Peer):
    projects: list[dict[str, Any]] = field(default_factory=list)
    folders: list[dict[str, Any]] = field(default_factory=list)
    denied_parents: set[str] = field(default_factory=set)
    name: ClassVar[str] = "cloudresourcemanager"

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        parent = query.get("parent", "")
        show = query.get("showDeleted", "false").lower() == "true"
        kind = path.rstrip("/").removeprefix("/v3/")
        if kind not in ("projects", "folders"):
            return not_found(path)
        if not parent:
            return google_error(400, "INVALID_ARGUMENT", "parent is required")
        if parent in self.denied_parents:
            return denied(f"resourcemanager.{kind}.list", parent)
        items = [x for x in (self.projects if kind == "projects" else self.folders)
                 if x["parent"] == parent and (show or x["state"] == "ACTIVE")]
        return page(items, kind, query)
