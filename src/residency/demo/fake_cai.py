"""A small Cloud Asset Inventory v1 peer on loopback: `GET /v1/{scope}:searchAllResources`.

Used by the collector tests (and available to the demo). Answers follow the REST reference
(https://cloud.google.com/asset-inventory/docs/reference/rest/v1/TopLevel/searchAllResources):
`{"results": [ResourceSearchResult...], "nextPageToken": ...}` pages of `pageSize` (at most
`PAGE_SIZE` here, so every scope with more resources needs the client to page), each result
with its full resource `name`, `assetType`, `project` (`projects/<number>`), `displayName`,
`location` and `labels` (https://cloud.google.com/asset-inventory/docs/reference/rest/v1/
ResourceSearchResult), and the 403 `PERMISSION_DENIED` error document for a scope the caller
cannot search. `faults` make it misbehave like the other peers (`HttpFault`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from residency.demo._loopback import HttpFault, JsonHandler, LoopbackServer

PAGE_SIZE = 2
SUFFIX = ":searchAllResources"


def asset(
    name: str,
    asset_type: str,
    location: str,
    labels: dict[str, str] | None = None,
    project_number: str = "123456789012",
    display_name: str | None = None,
) -> dict[str, Any]:
    """A ResourceSearchResult as `searchAllResources` returns it (default read mask)."""
    res: dict[str, Any] = {
        "name": name,
        "assetType": asset_type,
        "project": f"projects/{project_number}",
        "folders": ["folders/987654321"],
        "organization": "organizations/555555555555",
        "displayName": display_name or name.rstrip("/").rpartition("/")[2],
        "location": location,
        "state": "ACTIVE",
        "createTime": "2024-01-15T10:00:00Z",
        "updateTime": "2024-01-15T10:00:00Z",
        "parentFullResourceName": f"//cloudresourcemanager.googleapis.com/projects/"
                                  f"{project_number}",
        "parentAssetType": "cloudresourcemanager.googleapis.com/Project",
    }
    if labels:
        res["labels"] = labels
    return res


def permission_denied(scope: str) -> tuple[int, dict[str, Any]]:
    """The real answer when the caller lacks cloudasset.assets.searchAllResources."""
    return 403, {
        "error": {
            "code": 403,
            "message": f"The caller does not have permission to search {scope}: Request "
                       "denied by Cloud IAM.",
            "status": "PERMISSION_DENIED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "cloudasset.googleapis.com",
                "metadata": {"permission": "cloudasset.assets.searchAllResources"},
            }],
        }
    }


@dataclass
class FakeCai:
    """Scopes (`projects/P`, `folders/F`, `organizations/O`) → results, or an error answer."""

    scopes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    latency: float = 0.0
    faults: list[HttpFault] = field(default_factory=list)
    url: str = ""
    _loop: LoopbackServer = field(default_factory=LoopbackServer, repr=False)

    def start(self) -> FakeCai:
        fake = self

        class Handler(JsonHandler):
            content_type: ClassVar[str] = "application/json; charset=UTF-8"

            faults: ClassVar[list[HttpFault]] = fake.faults

            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                raw, query = self._received(fake.requests, fake.latency)
                path = unquote(raw)
                if not (path.startswith("/v1/") and path.endswith(SUFFIX)):
                    self._send(404, {"error": {"code": 404, "message": "Not Found",
                                               "status": "NOT_FOUND"}})
                    return
                scope = path[len("/v1/"):-len(SUFFIX)]
                if scope in fake.errors:
                    self._send(*fake.errors[scope])
                    return
                if scope not in fake.scopes:  # CAI does not say whether the scope exists
                    self._send(*permission_denied(scope))
                    return
                items = fake.scopes[scope]
                start = int(query.get("pageToken", "0") or 0)
                size = min(PAGE_SIZE, int(query.get("pageSize", 0) or PAGE_SIZE))
                body: dict[str, Any] = {}
                if items[start:start + size]:
                    body["results"] = items[start:start + size]
                if start + size < len(items):
                    body["nextPageToken"] = str(start + size)
                self._send(200, body)

        self.url = self._loop.serve(Handler, "residency-fake-cai")
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread: nothing is left running."""
        self._loop.stop()
