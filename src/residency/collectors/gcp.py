"""Google Cloud Storage: every bucket of the given projects, where it stores data.

A bucket's location is reported as the API spells it (`EU`, `EUR4`, `EUROPE-WEST3`) and the
policy pack resolves it. A configurable dual-region reports `location: EU` but stores only in
`customPlacementConfig.dataLocations`, so those two regions become the location. Multi- and
dual-regions are one bucket spanning countries, not a replication flow between systems.

System ids are Cloud Asset full resource names, `//storage.googleapis.com/projects/_/buckets/NAME`
(bucket names are global, so the project is not part of the id; it is the system's `account`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from residency.collectors import _faults
from residency.collectors.interface import CollectContext, Collector, resource_system
from residency.model import CoverageGap, Flow, Inventory, System

BUCKET_ID_PREFIX = "//storage.googleapis.com/projects/_/buckets/"

#: Synthetic tag keys. GCP label keys allow only lower-case letters, digits, `_` and `-`,
#: so a key with `:` can never collide with a real label (or the classification key).
TAG_LOCATION_TYPE = "gcs:location-type"
TAG_LOCATION = "gcs:location"

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
    from google.cloud import storage

    if "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]

    def local(project: str) -> Any:
        return storage.Client(project=project, credentials=anonymous,
                              client_options={"api_endpoint": endpoint})

    return local


class GcpCollector(Collector):
    """Lists buckets per project (paged by the SDK); a project it cannot read is a gap."""

    provider = "gcp"

    def __init__(self, client_factory: ClientFactory, projects: Iterable[str],
                 page_size: int | None = None, *, retry: Any = SDK_RETRY,
                 timeout: float | None = None) -> None:
        """`retry` (a google.api_core Retry, or None for none) and `timeout` (seconds per
        request) go to every `list_buckets` call; by default the SDK's own apply."""
        self._factory = client_factory
        self._projects = tuple(dict.fromkeys(projects))
        self._page_size = page_size
        self._call_kwargs: dict[str, Any] = {}
        if retry is not SDK_RETRY:
            self._call_kwargs["retry"] = retry
        if timeout is not None:
            self._call_kwargs["timeout"] = timeout

    def collect(self, ctx: CollectContext) -> Inventory:
        projects = [p for p in self._projects if ctx.wants(p)]
        workers = max(1, min(ctx.workers, len(projects) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda p: self._project(p, ctx), projects))
        systems = [s for part in parts for s in part[0]]
        flows = [f for part in parts for f in part[1]]
        gaps = [g for part in parts for g in part[2]]
        return Inventory(tuple(systems), tuple(flows), tuple(gaps))

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

    @staticmethod
    def _add(fields: dict[str, Any], project: str, ctx: CollectContext,
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


def _bucket_fields(bucket: Any) -> dict[str, Any]:
    if not bucket.name:
        raise KeyError("name")  # the API always names a bucket; without it there is no id
    return {
        "name": bucket.name,
        "location": bucket.location,
        "location_type": bucket.location_type,
        "data_locations": list(bucket.data_locations or ()),
        "labels": dict(bucket.labels or {}),
    }


def _gcp_error(exc: BaseException) -> str | None:
    """Cloud Storage's own wording for API and credential errors; None for the rest."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import GoogleAuthError

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
