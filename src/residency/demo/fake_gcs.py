"""A small Cloud Storage JSON API v1 peer on loopback: `GET /storage/v1/b?project=P` only.

Used by `residency demo` and the collector tests. No emulator keeps bucket locations, so this
serves bucket resources shaped as the real service returns them: upper-case `location`,
`locationType`, `customPlacementConfig.dataLocations`, `labels`, `nextPageToken` paging, the
`unreachable` list of `returnPartialSuccess`, and the real 403 error document.

`faults` make it misbehave as networks and proxies do (the collector tests' fault injection):
see `HttpFault`, shared with the ARM peer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from residency.demo._loopback import HttpFault, JsonHandler, LoopbackServer

PAGE_SIZE = 2  # small on purpose: every project with > 2 buckets needs the SDK to page


def bucket(
    name: str,
    location: str,
    location_type: str,
    labels: dict[str, str] | None = None,
    data_locations: list[str] | None = None,
    project_number: str = "123456789012",
) -> dict[str, Any]:
    """A bucket resource as `buckets.list` (projection=noAcl) returns it."""
    res: dict[str, Any] = {
        "kind": "storage#bucket",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}",
        "id": name,
        "name": name,
        "projectNumber": project_number,
        "generation": "1700000000000000",
        "metageneration": "1",
        "location": location,
        "storageClass": "STANDARD",
        "etag": "CAE=",
        "timeCreated": "2024-01-15T10:00:00.000Z",
        "updated": "2024-01-15T10:00:00.000Z",
        "locationType": location_type,
        "rpo": "DEFAULT",
        "iamConfiguration": {
            "bucketPolicyOnly": {"enabled": True},
            "uniformBucketLevelAccess": {"enabled": True},
            "publicAccessPrevention": "enforced",
        },
        "softDeletePolicy": {"retentionDurationSeconds": "604800"},
    }
    if labels:
        res["labels"] = labels
    if data_locations:
        res["customPlacementConfig"] = {"dataLocations": data_locations}
    return res


def forbidden(project: str) -> tuple[int, dict[str, Any]]:
    """The real answer when the caller lacks storage.buckets.list on the project."""
    message = (
        "anonymous caller does not have storage.buckets.list access to the Google Cloud "
        "project. Permission 'storage.buckets.list' denied on resource (or it may not exist)."
    )
    return 403, {
        "error": {
            "code": 403,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
        }
    }


@dataclass
class FakeGcs:
    """Projects → buckets (or an error answer); records every request path for assertions."""

    projects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    unreachable: dict[str, list[str]] = field(default_factory=dict)
    # project -> (pageToken, answer): fail a later page, e.g. permission revoked mid-scan
    page_errors: dict[str, tuple[str, tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    latency: float = 0.0  # seconds added to every answer (benchmarks: a network's round trip)
    faults: list[HttpFault] = field(default_factory=list)  # the first whose `match` is in the path
    url: str = ""
    _loop: LoopbackServer = field(default_factory=LoopbackServer, repr=False)

    def start(self) -> FakeGcs:
        fake = self

        class Handler(JsonHandler):
            content_type: ClassVar[str] = "application/json; charset=UTF-8"

            faults: ClassVar[list[HttpFault]] = fake.faults

            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                path, query = self._received(fake.requests, fake.latency)
                if path.rstrip("/") != "/storage/v1/b":
                    self._send(404, {"error": {"code": 404, "message": "Not Found",
                                               "errors": [{"message": "Not Found",
                                                           "domain": "global",
                                                           "reason": "notFound"}]}})
                    return
                project = query.get("project", "")
                if project in fake.errors:
                    self._send(*fake.errors[project])
                    return
                if project not in fake.projects:
                    self._send(*_not_found(project))
                    return
                token = query.get("pageToken", "")
                if project in fake.page_errors and fake.page_errors[project][0] == token:
                    self._send(*fake.page_errors[project][1])
                    return
                items = fake.projects[project]
                start = int(query.get("pageToken", "0") or 0)
                size = min(PAGE_SIZE, int(query.get("maxResults", PAGE_SIZE)))
                page = items[start:start + size]
                body: dict[str, Any] = {"kind": "storage#buckets"}
                if page:
                    body["items"] = page
                if start + size < len(items):
                    body["nextPageToken"] = str(start + size)
                if start == 0 and fake.unreachable.get(project) and \
                        query.get("returnPartialSuccess", "").lower() == "true":
                    body["unreachable"] = [
                        f"projects/_/buckets/{n}" for n in fake.unreachable[project]
                    ]
                self._send(200, body)


        self.url = self._loop.serve(Handler, "residency-fake-gcs")
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread: nothing is left running."""
        self._loop.stop()


def _not_found(project: str) -> tuple[int, dict[str, Any]]:
    message = f"The requested project was not found: {project}"
    return 404, {"error": {"code": 404, "message": message,
                           "errors": [{"message": message, "domain": "global",
                                       "reason": "notFound"}]}}


__all__ = ["FakeGcs", "HttpFault", "bucket", "forbidden"]
