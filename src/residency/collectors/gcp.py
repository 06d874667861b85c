"""Google Cloud Storage: every bucket of the given projects, where it stores data.

A bucket's location is reported as the API spells it (`EU`, `EUR4`, `EUROPE-WEST3`) and the
policy pack resolves it. A configurable dual-region reports `location: EU` but stores only in
`customPlacementConfig.dataLocations`, so those two regions become the location. Multi- and
dual-regions are one bucket spanning countries, not a replication flow between systems.

System ids are Cloud Asset full resource names, `//storage.googleapis.com/projects/_/buckets/NAME`
(bucket names are global, so the project is not part of the id; it is the system's `account`).

With an asset client (google-cloud-asset), Cloud Asset Inventory's `searchAllResources` also
reads every resource of each scope (`projects/P`, `folders/F`, `organizations/O`): its
`location` and `labels`. The asset type is matched to the gate's resource catalogue through
`ASSET_TYPES` (CAI asset type → Terraform type, whose `policies/catalogue/gcp.yaml` entry
says whether it is a store and how its location is spelt: a zone, a Spanner configuration).
A classified resource of a type the catalogue does not know fails closed (unknown location);
an unclassified one of such a type is left out (CAI lists configuration objects too: enabled
APIs, IAM roles). A bucket read by both APIs keeps the Cloud Storage answer, which has the
custom dual-region's data locations. CAI answers no copies: read replicas and alternative
zones are not followed from here.

With a REST reader (`gcp_services.GcpRest`), each project's Cloud SQL, Spanner and Bigtable
instances are read in depth and their copies become replication flows (`gcp_services`);
with Resource Manager clients, the projects under organisations and folders are found first
and feed every per-project read (and CAI, when no scope is given). Keys: the Cloud KMS key a
bucket (`encryption.defaultKmsKeyName`), Cloud SQL instance, Bigtable cluster or CAI asset
(`kmsKeys`) names is recorded in `System.keys` at the location in its name, with its
protection level from `cryptoKeys.get` when the REST reader is given.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from residency.collectors import _faults, gcp_services
from residency.collectors.gcp_services import GcpRest
from residency.collectors.interface import (
    CollectContext,
    Collector,
    replication_flow,
    resource_system,
)
from residency.model import CoverageGap, Flow, Inventory, KeyRef, System
from residency.policy.catalogue import Catalogue, Entry, normalise

BUCKET_ID_PREFIX = "//storage.googleapis.com/projects/_/buckets/"

#: Synthetic tag keys. GCP label keys allow only lower-case letters, digits, `_` and `-`,
#: so a key with `:` can never collide with a real label (or the classification key).
TAG_LOCATION_TYPE = "gcs:location-type"
TAG_LOCATION = "gcs:location"
TAG_ASSET_TYPE = "gcp:asset-type"

#: Cloud Asset Inventory asset types (https://cloud.google.com/asset-inventory/docs/
#: asset-types) → the Terraform google type whose catalogue entry describes them.
ASSET_TYPES: dict[str, str] = {
    "storage.googleapis.com/Bucket": "google_storage_bucket",
    "bigquery.googleapis.com/Dataset": "google_bigquery_dataset",
    "bigquery.googleapis.com/Table": "google_bigquery_table",
    "sqladmin.googleapis.com/Instance": "google_sql_database_instance",
    "alloydb.googleapis.com/Cluster": "google_alloydb_cluster",
    "alloydb.googleapis.com/Instance": "google_alloydb_instance",
    "spanner.googleapis.com/Instance": "google_spanner_instance",
    "spanner.googleapis.com/Database": "google_spanner_database",
    "bigtableadmin.googleapis.com/Instance": "google_bigtable_instance",
    "bigtableadmin.googleapis.com/Table": "google_bigtable_table",
    "firestore.googleapis.com/Database": "google_firestore_database",
    "appengine.googleapis.com/Application": "google_app_engine_application",
    "pubsub.googleapis.com/Topic": "google_pubsub_topic",
    "pubsub.googleapis.com/Subscription": "google_pubsub_subscription",
    "logging.googleapis.com/LogBucket": "google_logging_project_bucket_config",
    "redis.googleapis.com/Instance": "google_redis_instance",
    "redis.googleapis.com/Cluster": "google_redis_cluster",
    "memcache.googleapis.com/Instance": "google_memcache_instance",
    "file.googleapis.com/Instance": "google_filestore_instance",
    "compute.googleapis.com/Disk": "google_compute_disk",
    "compute.googleapis.com/RegionDisk": "google_compute_region_disk",
    "compute.googleapis.com/Snapshot": "google_compute_snapshot",
    "compute.googleapis.com/Instance": "google_compute_instance",
    "container.googleapis.com/Cluster": "google_container_cluster",
    "container.googleapis.com/NodePool": "google_container_node_pool",
    "dataproc.googleapis.com/Cluster": "google_dataproc_cluster",
    "secretmanager.googleapis.com/Secret": "google_secret_manager_secret",
    "secretmanager.googleapis.com/SecretVersion": "google_secret_manager_secret_version",
    "cloudkms.googleapis.com/KeyRing": "google_kms_key_ring",
    "cloudkms.googleapis.com/CryptoKey": "google_kms_crypto_key",
    "artifactregistry.googleapis.com/Repository": "google_artifact_registry_repository",
    "run.googleapis.com/Service": "google_cloud_run_v2_service",
    "cloudfunctions.googleapis.com/CloudFunction": "google_cloudfunctions_function",
    "cloudfunctions.googleapis.com/Function": "google_cloudfunctions2_function",
    "healthcare.googleapis.com/Dataset": "google_healthcare_dataset",
    "aiplatform.googleapis.com/Dataset": "google_vertex_ai_dataset",
    "notebooks.googleapis.com/Instance": "google_notebooks_instance",
    "cloudresourcemanager.googleapis.com/Project": "google_project",
    "cloudresourcemanager.googleapis.com/Folder": "google_folder",
    "iam.googleapis.com/ServiceAccount": "google_service_account",
    "compute.googleapis.com/Network": "google_compute_network",
    "compute.googleapis.com/Subnetwork": "google_compute_subnetwork",
    "compute.googleapis.com/Firewall": "google_compute_firewall",
    "compute.googleapis.com/Router": "google_compute_router",
    "compute.googleapis.com/Route": "google_compute_route",
    "compute.googleapis.com/Address": "google_compute_address",
    "compute.googleapis.com/GlobalAddress": "google_compute_global_address",
    "compute.googleapis.com/ForwardingRule": "google_compute_forwarding_rule",
    "compute.googleapis.com/InstanceTemplate": "google_compute_instance_template",
    "dns.googleapis.com/ManagedZone": "google_dns_managed_zone",
}

AssetClientFactory = Callable[[], Any]
"""() -> a new `google.cloud.asset_v1.AssetServiceClient`, closed by the collector when its
scope is done."""

SERVICES = ("sqladmin", "spanner", "bigtableadmin")
"""The APIs read in depth per project with a REST reader (`gcp_services`)."""

SDK_RETRY: Any = object()
"""`retry=` default: the SDK's own policy (retries 429/5xx and resets for up to 120 s)."""

ClientFactory = Callable[[str], Any]
"""project id -> a new `google.cloud.storage.Client`, closed by the collector when the project
is done (typed loosely: the SDK ships no stubs)."""


def bucket_id(name: str) -> str:
    return f"{BUCKET_ID_PREFIX}{name}"


def emulator_client_factory(endpoint: str) -> ClientFactory:
    """Clients for a local Cloud Storage emulator or test peer: anonymous credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.storage import Client as StorageClient

    if "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]

    def local(project: str) -> Any:
        return StorageClient(project=project, credentials=anonymous,
                             client_options={"api_endpoint": endpoint})

    return local


def asset_client_factory(endpoint: str | None = None,
                         credentials: Any = None) -> AssetClientFactory:
    """Cloud Asset clients over REST (no gRPC channel threads); with `endpoint`, a local test
    peer reached with anonymous credentials."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import asset_v1

    options = None
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        options = ClientOptions(api_endpoint=endpoint)
        credentials = credentials or AnonymousCredentials()  # type: ignore[no-untyped-call]

    def make() -> Any:
        return asset_v1.AssetServiceClient(credentials=credentials, transport="rest",
                                           client_options=options)

    return make


class GcpCollector(Collector):
    """Lists buckets per project (paged by the SDK), and with an asset client every resource
    of each Cloud Asset Inventory scope; a project or scope it cannot read is a gap."""

    provider = "gcp"

    def __init__(self, client_factory: ClientFactory, projects: Iterable[str],
                 page_size: int | None = None, *, retry: Any = SDK_RETRY,
                 timeout: float | None = None, catalogue: Catalogue | None = None,
                 asset_client: AssetClientFactory | None = None,
                 asset_scopes: Iterable[str] = (), rest: GcpRest | None = None,
                 services: Iterable[str] = SERVICES,
                 resource_manager: Callable[[], tuple[Any, Any]] | None = None,
                 discover: Iterable[str] = ()) -> None:
        """`retry` (a google.api_core Retry, or None for none) and `timeout` (seconds per
        request) go to every `list_buckets` and `search_all_resources` call; by default the
        SDK's own apply. With `asset_client`, CAI searches `asset_scopes` (default: each
        project as `projects/P`), matched to `catalogue` (the pack's; default: the shipped
        pack's)."""
        self._factory = client_factory
        self._projects = tuple(dict.fromkeys(projects))
        self._page_size = page_size
        self._call_kwargs: dict[str, Any] = {}
        if retry is not SDK_RETRY:
            self._call_kwargs["retry"] = retry
        if timeout is not None:
            self._call_kwargs["timeout"] = timeout
        self._asset_client = asset_client
        self._scopes = tuple(dict.fromkeys(asset_scopes)) or tuple(
            f"projects/{p}" for p in self._projects)
        self._explicit_scopes = bool(tuple(asset_scopes))
        self._catalogue = catalogue
        self._rest = rest
        self._services = tuple(services)
        self._rm = resource_manager
        self._parents = tuple(dict.fromkeys(discover))
        self._lock = threading.Lock()
        self._key_names: dict[str, tuple[str, ...]] = {}

    def collect(self, ctx: CollectContext) -> Inventory:
        self._key_names = {}
        found_gaps: list[CoverageGap] = []
        all_projects = list(self._projects)
        if self._parents and self._rm is not None:
            try:
                projects_client, folders_client = self._rm()
                found, found_gaps = gcp_services.discover(
                    projects_client, folders_client, list(self._parents), _gcp_error)
            except Exception as exc:
                found, found_gaps = [], [CoverageGap("gcp", "project discovery",
                                                     _faults.reason(exc, _gcp_error))]
            all_projects = list(dict.fromkeys([*all_projects, *found]))
        projects = [p for p in all_projects if ctx.wants(p)]
        scope_list = self._scopes if self._explicit_scopes else tuple(
            f"projects/{p}" for p in all_projects)
        scopes = [s for s in scope_list if ctx.wants(s.removeprefix("projects/"))] \
            if self._asset_client is not None else []
        if scopes and self._catalogue is None:
            self._catalogue = _shipped_catalogue()
        tasks: list[Callable[[], tuple[list[System], list[Flow], list[CoverageGap]]]] = [
            *(lambda p=p: self._project(p, ctx) for p in projects),
            *(lambda s=s: self._scope(s, ctx) for s in scopes),
            *(lambda p=p: self._in_depth(p, ctx) for p in (projects if self._rest else [])),
        ]
        workers = max(1, min(ctx.workers, len(tasks) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda task: task(), tasks))
        n_scopes = len(projects) + len(scopes)
        bucket_parts, asset_parts = parts[:len(projects)], parts[len(projects):n_scopes]
        depth_parts = parts[n_scopes:]
        systems = [s for part in (*bucket_parts, *depth_parts) for s in part[0]]
        flows = [f for part in (*bucket_parts, *depth_parts) for f in part[1]]
        gaps = [*found_gaps, *(g for part in parts for g in part[2])]
        seen = {s.id for s in systems}  # in-depth answers win over CAI's for the same id
        for part in asset_parts:
            fresh = [s for s in part[0] if s.id not in seen]
            seen.update(s.id for s in fresh)
            systems.extend(fresh)
            flows.extend(f for f in part[1] if f.target in {s.id for s in fresh})
        systems = self._with_keys(systems, gaps, ctx)
        unique = list({f.id: f for f in flows}.values())
        return Inventory(tuple(systems), tuple(unique), tuple(gaps))

    # ------------------------------------------------------------------ in depth
    def _in_depth(self, project: str, ctx: CollectContext
                  ) -> tuple[list[System], list[Flow], list[CoverageGap]]:
        """Cloud SQL, Spanner and Bigtable of one project, and their copies as flows."""
        assert self._rest is not None
        read = gcp_services.Read()
        readers = {"sqladmin": gcp_services.cloud_sql, "spanner": gcp_services.spanner,
                   "bigtableadmin": gcp_services.bigtable}
        rest = self._rest
        for service in self._services:
            fn: Callable[[GcpRest, str, gcp_services.Read], None] = readers[service]
            gcp_services.guarded(read, f"project {project} {service}",
                                 partial(fn, rest, project, read), _gcp_error)
        systems: list[System] = []
        flows: list[Flow] = []
        for found in read.found:
            regions = tuple(r for r in (normalise(x, found.how) for x in found.regions) if r)
            system, fed = resource_system(
                provider="gcp", resource_id=found.id, name=found.name, account=project,
                regions=regions, tags={**found.labels, **dict(found.tags)}, ctx=ctx,
                unknown_reason=found.unknown or (None if regions else
                                                 "resource reported no location"))
            if system is not None:
                systems.append(system)
                flows.extend(fed)
                self._note_keys(system.id, found.keys, found.google_managed)
        systems_by = {s.id: s for s in systems}
        for copy in read.copies:
            source = systems_by.get(copy.source)
            target = systems_by.get(copy.target)
            if source is None and target is not None and target.classified:
                # a replica of a primary not read (another project): where it is, is unknown
                source = dataclasses.replace(target, id=copy.source, tags=(), keys=(),
                                             name=copy.source.rpartition("/")[2],
                                             location=gcp_services.copy_location(
                                                 gcp_services.Copy("", "", "", unknown=(
                                                     f"{copy.source}: the primary of "
                                                     f"{copy.target} was not read")),
                                                 normalise))
                systems.append(source)
                systems_by[source.id] = source
            if source is None:
                continue
            if target is None:
                target = dataclasses.replace(
                    source, id=copy.target, name=f"{source.name} ({copy.why})", keys=(),
                    location=gcp_services.copy_location(copy, normalise))
                systems.append(target)
                systems_by[target.id] = target
            flows.append(dataclasses.replace(replication_flow(source, target.id),
                                             purpose=copy.why))
        if ctx.progress is not None:
            ctx.progress(f"project {project} databases", 1)
        return systems, flows, read.gaps

    # ------------------------------------------------------------------ keys
    def _note_keys(self, system: str, names: Iterable[str], google_managed: bool) -> None:
        got = tuple(dict.fromkeys(n for n in names if n))
        if got or google_managed:
            with self._lock:
                self._key_names[system] = got or ("",)

    def _with_keys(self, systems: list[System], gaps: list[CoverageGap],
                   ctx: CollectContext) -> list[System]:
        """Each store's keys, each distinct Cloud KMS key described once."""
        names = sorted({n for ns in self._key_names.values() for n in ns if n})
        described: dict[str, KeyRef] = {}

        def describe(name: str) -> tuple[str, KeyRef]:
            if self._rest is None:  # the location is in the name; the level is not read
                project, location = gcp_services.key_location(name)
                return name, KeyRef(key=name, arn=name, region=location, account=project,
                                    key_manager="CUSTOMER")
            try:
                return name, gcp_services.kms_key(self._rest, name)
            except Exception as exc:
                why = _faults.reason(exc, _gcp_error)
                with self._lock:
                    gaps.append(CoverageGap("gcp", f"kms key {name}", why))
                return name, gcp_services.unknown_key(name, why)

        if names:
            with ThreadPoolExecutor(max_workers=max(1, min(ctx.workers, len(names)))) as pool:
                described = dict(pool.map(describe, names))
        out: list[System] = []
        for s in systems:
            refs = self._key_names.get(s.id)
            out.append(dataclasses.replace(s, keys=tuple(
                described[n] if n else gcp_services.GOOGLE_MANAGED for n in refs))
                if refs else s)
        return out

    # ------------------------------------------------------------------ Cloud Asset Inventory
    def _scope(self, scope: str, ctx: CollectContext
               ) -> tuple[list[System], list[Flow], list[CoverageGap]]:
        """One CAI scope: every page of `searchAllResources`. Any exception is the scope's
        gap; the pages already read are kept."""
        systems: list[System] = []
        flows: list[Flow] = []
        gaps: list[CoverageGap] = []
        assert self._asset_client is not None
        try:
            client = self._asset_client()
            try:
                request: dict[str, Any] = {"scope": scope}
                if self._page_size:
                    request["page_size"] = self._page_size
                pager = client.search_all_resources(request=request, **self._call_kwargs)
                for page in pager.pages:
                    for index, result in enumerate(page.results):
                        try:  # one unreadable entry is its own gap; the rest is kept
                            self._asset(result, scope, ctx, systems, flows)
                        except Exception as exc:
                            name = getattr(result, "name", None) or f"#{index} of a page"
                            gaps.append(CoverageGap("gcp", f"asset scope {scope} resource "
                                                    f"{name}", _faults.reason(exc)))
            finally:
                transport = getattr(client, "transport", None)
                close = getattr(transport, "close", None)
                if callable(close):
                    close()
        except Exception as exc:
            gaps.append(CoverageGap("gcp", f"asset scope {scope}",
                                    _faults.reason(exc, _gcp_error)
                                    + _faults.kept_note(len(systems), "resource")))
        if ctx.progress is not None:
            ctx.progress(f"asset scope {scope}", 1)
        return systems, flows, gaps

    def _asset(self, result: Any, scope: str, ctx: CollectContext,
               systems: list[System], flows: list[Flow]) -> None:
        name = str(result.name)
        if not name:
            raise KeyError("name")  # a full resource name is the system id
        asset_type = str(result.asset_type)
        labels = {str(k): str(v) for k, v in dict(result.labels or {}).items()}
        classified = ctx.classification.tag in labels
        catalogue = self._catalogue or Catalogue()
        tf_type = ASSET_TYPES.get(asset_type)
        entry = catalogue.entry(tf_type) if tf_type else None
        raw = str(result.location or "")
        regions: tuple[str, ...] = ()
        unknown: str | None = None
        if entry is None:
            if not classified:
                return  # not a store the catalogue knows, and no classified data in it
            source = catalogue.sources.get("gcp", "policies/catalogue/gcp.yaml")
            unknown = (f"asset type {asset_type} is not in the resource catalogue ({source}"
                       f"{', as ' + tf_type if tf_type else ''}; collectors/gcp.py "
                       "ASSET_TYPES), so where it keeps its data is unknown")
        elif not entry.store and not classified:
            return
        elif raw:
            where = normalise(raw, _location_form(entry))
            regions = (where,) if where else ()
        if not regions and unknown is None:
            unknown = "resource reported no location"
        tags = {**labels, TAG_ASSET_TYPE: asset_type}
        if raw:
            tags[TAG_LOCATION] = raw
        project = scope.removeprefix("projects/") if scope.startswith("projects/") else \
            str(result.project or "").removeprefix("projects/") or scope
        system, fed = resource_system(
            provider="gcp",
            resource_id=name,
            name=str(result.display_name or "") or name.rpartition("/")[2],
            account=project,
            regions=regions,
            tags=tags,
            ctx=ctx,
            unknown_reason=unknown,
        )
        if system is not None:
            systems.append(system)
            flows.extend(fed)
            kms = [str(k) for k in (getattr(result, "kms_keys", None) or ())]
            if getattr(result, "kms_key", None):
                kms.append(str(result.kms_key))
            self._note_keys(system.id, kms, False)

    def _project(
        self, project: str, ctx: CollectContext
    ) -> tuple[list[System], list[Flow], list[CoverageGap]]:
        """One project's buckets: the unit of work. Any exception (an API error, a reset, a
        timeout, an answer that is not JSON or not the documented shape) is the project's
        gap; the pages already read are kept."""
        systems: list[System] = []
        flows: list[Flow] = []
        gaps: list[CoverageGap] = []
        try:
            client = self._factory(project)
            try:
                self._list(client, project, ctx, systems, flows, gaps)
            finally:
                close = getattr(client, "close", None)
                if callable(close):
                    close()
        except Exception as exc:
            gaps.append(CoverageGap("gcp", f"project {project}",
                                    _faults.reason(exc, _gcp_error)
                                    + _faults.kept_note(len(systems), "bucket")))
        if ctx.progress is not None:
            ctx.progress(f"project {project}", 1)
        return systems, flows, gaps

    def _list(self, client: Any, project: str, ctx: CollectContext,
              systems: list[System], flows: list[Flow], gaps: list[CoverageGap]) -> None:
        iterator = client.list_buckets(
            project=project, page_size=self._page_size, return_partial_success=True,
            **self._call_kwargs,
        )
        for page in iterator.pages:
            for index, bucket in enumerate(page):
                try:  # one unreadable entry is its own gap; the rest of the page is kept
                    self._add(_bucket_fields(bucket), project, ctx, systems, flows)
                except Exception as exc:
                    name = getattr(bucket, "name", None) or f"#{index} of a page"
                    gaps.append(CoverageGap("gcp", f"project {project} bucket {name}",
                                            _faults.reason(exc)))
            for entry in getattr(page, "unreachable", None) or ():
                name = str(entry).rsplit("/buckets/", 1)[-1]
                self._add(
                    {"name": name, "labels": {}, "unknown": "bucket reported unreachable "
                     "by the Cloud Storage API (returnPartialSuccess)"},
                    project, ctx, systems, flows,
                )

    def _add(self, fields: dict[str, Any], project: str, ctx: CollectContext,
             systems: list[System], flows: list[Flow]) -> None:
        tags = {str(k): str(v) for k, v in fields["labels"].items()}
        unknown = fields.get("unknown")
        regions: tuple[str, ...] = ()
        if unknown is None:
            data_locations = fields.get("data_locations") or []
            location = fields.get("location")
            regions = tuple(data_locations) if data_locations else (
                (location,) if location else ()
            )
            if not regions:
                unknown = "bucket reported no location"
            if location:
                tags[TAG_LOCATION] = location
            if fields.get("location_type"):
                tags[TAG_LOCATION_TYPE] = fields["location_type"]
        system, fed = resource_system(
            provider="gcp",
            resource_id=bucket_id(fields["name"]),
            name=fields["name"],
            account=project,
            regions=regions,
            tags=tags,
            ctx=ctx,
            unknown_reason=unknown,
        )
        if system is not None:
            systems.append(system)
            flows.extend(fed)
            if unknown is None:
                kms = fields.get("kms")
                self._note_keys(system.id, (kms,) if kms else (), not kms)


def _location_form(entry: Entry) -> str:
    """How the entry's first attribute step spells a location (zone, spanner_config, ...):
    CAI's `location` is the same value the Terraform attribute holds."""
    for step in entry.location:
        if step.attr is not None:
            return step.as_
        if step.provider is not None:
            return step.as_
    return "region"


def _shipped_catalogue() -> Catalogue:
    """The shipped pack's catalogue, for callers that pass none (the CLI passes its own)."""
    from residency.policy.pack import PolicyPack

    return PolicyPack.load().catalogue


def _bucket_fields(bucket: Any) -> dict[str, Any]:
    if not bucket.name:
        raise KeyError("name")  # the API always names a bucket; without it there is no id
    return {
        "name": bucket.name,
        "location": bucket.location,
        "location_type": bucket.location_type,
        "data_locations": list(bucket.data_locations or ()),
        "labels": dict(bucket.labels or {}),
        "kms": bucket.default_kms_key_name,
    }


def _gcp_error(exc: BaseException) -> str | None:
    """Cloud Storage's own wording for API and credential errors; None for the rest."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import GoogleAuthError

    if isinstance(exc, gcp_services.RestError):
        return str(exc)
    if isinstance(exc, GoogleAuthError):
        return f"credentials rejected: {type(exc).__name__}"
    if isinstance(exc, GoogleAPICallError):
        return _api_reason(exc)
    if isinstance(exc, RetryError):  # the deadline passed: say what failed last
        last = exc.cause
        return (f"gave up retrying ({_faults.first_line(exc).split(',')[0]}); last error: "
                f"{_faults.generic(last) if last is not None else '?'}")
    return None


def _api_reason(exc: Any) -> str:
    code = getattr(exc, "code", None)
    message = str(getattr(exc, "message", None) or type(exc).__name__)
    method, _, rest = message.partition(" ")
    if method in {"GET", "POST"} and ": " in rest:  # api_core prefixes "GET <url>: "
        message = rest.split(": ", 1)[1]
    why = {403: "permission denied", 404: "project not found"}.get(code or 0, "API error")
    return f"{why} (HTTP {code}): {message}" if code else f"{why}: {message}"
