"""A small Azure Resource Manager peer on loopback: list subscriptions, list resources, GET one
resource. Used by `residency demo` and the collector tests; `faults` make it misbehave
(`HttpFault`: truncated or garbled answers, 5xx, resets, delays).

There is no ARM emulator. Responses follow the
real shapes: `{"value": [...], "nextLink": ...}` pages whose `nextLink` is built from this
server's own base URL (the SDK follows it verbatim and rewrites `api-version`), generic
resources with `sku` for storage accounts, and ARM's error document (`AuthorizationFailed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from residency.demo._loopback import JsonHandler, LoopbackServer
from residency.demo.fake_gcs import HttpFault, first_fault, send_with_fault

PAGE_SIZE = 2
TENANT = "72f988bf-0000-4000-8000-000000000000"


def storage_account(sub: str, rg: str, name: str, location: str, sku: str | None,
                    tags: dict[str, str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
              f"Microsoft.Storage/storageAccounts/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "kind": "StorageV2",
        "location": location,
        "tags": tags or {},
    }
    if sku is not None:
        res["sku"] = {"name": sku, "tier": sku.split("_", 1)[0]}
    return res


def generic(sub: str, rg: str, provider_type: str, name: str, location: str,
            tags: dict[str, str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}",
        "name": name,
        "type": provider_type,
        "location": location,
    }
    if tags is not None:
        res["tags"] = tags
    return res


def authorization_failed(sub: str) -> tuple[int, dict[str, Any]]:
    return 403, {
        "error": {
            "code": "AuthorizationFailed",
            "message": (
                "The client 'residency-scanner' with object id "
                "'11111111-1111-4111-8111-111111111111' does not have authorization to perform "
                "action 'Microsoft.Resources/subscriptions/resources/read' over scope "
                f"'/subscriptions/{sub}' or the scope is invalid. If access was recently "
                "granted, please refresh your credentials."
            ),
        }
    }


@dataclass
class FakeArm:
    subscriptions: list[str] = field(default_factory=list)
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    full: dict[str, dict[str, Any]] = field(default_factory=dict)  # id.lower() -> GET body
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, auth?
    latency: float = 0.0  # seconds added to every answer (benchmarks: a network's round trip)
    faults: list[HttpFault] = field(default_factory=list)  # the first whose `match` is in the path
    url: str = ""
    _loop: LoopbackServer = field(default_factory=LoopbackServer, repr=False)

    def start(self) -> FakeArm:
        fake = self

        class Handler(JsonHandler):
            extra_headers: ClassVar[dict[str, str]] = {
                "x-ms-request-id": "00000000-0000-0000-0000-000000000000"
            }

            def _send(self, status: int, body: dict[str, Any]) -> None:
                fault = first_fault(fake.faults, self.path)
                if fault is None:
                    super()._send(status, body)
                else:
                    send_with_fault(self, fault, status, body, self.content_type)

            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                auth = self.headers.get("Authorization", "")
                fake.requests.append(("GET", self.path, auth.startswith("Bearer ")))
                if fake.latency:
                    time.sleep(fake.latency)
                if not auth.startswith("Bearer "):
                    self._send(401, {"error": {"code": "AuthenticationFailed",
                                               "message": "Authentication failed."}})
                    return
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                segs = [s for s in parts.path.split("/") if s]
                if segs == ["subscriptions"]:
                    self._send(200, fake._subscriptions())
                elif len(segs) == 3 and segs[0] == "subscriptions" and segs[2] == "resources":
                    sub = segs[1]
                    if sub in fake.errors:
                        self._send(*fake.errors[sub])
                        return
                    self._send(200, fake._resources(sub, int(query.get("$skiptoken", "0"))))
                elif "/" + "/".join(segs).lower() in fake.full:
                    self._send(200, fake.full["/" + "/".join(segs).lower()])
                else:
                    self._send(404, {"error": {"code": "ResourceNotFound",
                                               "message": f"{parts.path} was not found."}})


        self.url = self._loop.serve(Handler, "residency-fake-arm")
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread: nothing is left running."""
        self._loop.stop()

    def _subscriptions(self) -> dict[str, Any]:
        return {
            "value": [
                {
                    "id": f"/subscriptions/{s}",
                    "authorizationSource": "RoleBased",
                    "managedByTenants": [],
                    "subscriptionId": s,
                    "tenantId": TENANT,
                    "displayName": f"sub-{s[-1]}",
                    "state": "Enabled",
                    "subscriptionPolicies": {
                        "locationPlacementId": "Public_2014-09-01",
                        "quotaId": "PayAsYouGo_2014-09-01",
                        "spendingLimit": "Off",
                    },
                }
                for s in self.subscriptions
            ],
            "count": {"type": "Total", "value": len(self.subscriptions)},
        }

    def _resources(self, sub: str, start: int) -> dict[str, Any]:
        items = self.resources.get(sub, [])
        body: dict[str, Any] = {"value": items[start:start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(items):
            body["nextLink"] = (f"{self.url}/subscriptions/{sub}/resources?"
                                f"api-version=2025-04-01&%24skiptoken={start + PAGE_SIZE}")
        return body
