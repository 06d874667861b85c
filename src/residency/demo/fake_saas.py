"""Loopback peers for the SaaS collectors, speaking each vendor's documented JSON.

One server, one path prefix per vendor (the collector's `--saas-endpoint VENDOR=URL/<vendor>`):

- `/freshdesk/api/v2/account` (Basic auth, API key as user): the View Account answer;
- `/hubspot/account-info/v3/details` (Bearer): account details with `dataHostingLocation`;
- `/intercom/{us,eu,au}/me` (Bearer): the admin with its `app`; a token of another region's
  workspace gets Intercom's `error.list` 401 there;
- `/salesforce/services/data/v60.0/query?q=…` (Bearer): the Organization record;
- `/atlassian/admin/v2/orgs/{orgId}/workspaces` (POST, Bearer): the workspaces page;
- `/lists/<name>`: a published sub-processor list (YAML or JSON bytes).

The token selects the account, as on the real services; an unknown token gets that vendor's
documented 401 body. `errors` answer a vendor with a status and its documented error body
(`rate_limited` gives each vendor's documented rate-limit answer and headers; `error_times`
makes an error transient), `faults` (shared with the GCS peer) cut, corrupt, reset or delay
answers. Request paths are recorded; headers never are.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from residency.demo._loopback import (
    HttpFault,
    JsonHandler,
    LoopbackServer,
    first_fault,
    send_with_fault,
)

VENDOR_PREFIXES = ("freshdesk", "hubspot", "intercom", "salesforce", "atlassian")


# ---------------------------------------------------------------------- documented answers
def freshdesk_account(account_id: int, domain: str, data_center: str,
                      name: str = "Acme Support") -> dict[str, Any]:
    """GET /api/v2/account (https://developers.freshdesk.com/api/#account)."""
    return {
        "organisation_id": 284960733419037800, "organisation_name": f"{domain}.myfreshworks.com",
        "account_id": account_id, "account_name": name,
        "account_domain": f"{domain}.freshdesk.com", "bundle_id": None,
        "hipaa_compliant": False,
        "total_agents": {"full_time": 3, "occasional": 1, "field_service": 0,
                         "collaborators": 0},
        "timezone": "Dublin", "data_center": data_center, "tier_type": "Forest",
        "address": {"country": "Ireland", "state": "", "city": "Dublin", "street": "1 Quay",
                    "postalcode": "D01"},
        "contact_person": {"firstname": "Ada", "lastname": "Admin",
                           "email": "ada@acme.example"},
    }


def hubspot_details(portal_id: int, location: str) -> dict[str, Any]:
    """GET /account-info/v3/details."""
    ui = "app.hubspot.com" if location == "na1" else f"app-{location}.hubspot.com"
    return {"portalId": portal_id, "accountType": "STANDARD", "timeZone": "Europe/Dublin",
            "companyCurrency": "EUR", "additionalCurrencies": [], "utcOffset": "+00:00",
            "utcOffsetMilliseconds": 0, "uiDomain": ui, "dataHostingLocation": location}


def intercom_me(id_code: str, region: str, name: str = "Acme Support") -> dict[str, Any]:
    """GET /me: the admin with the embedded app (workspace)."""
    return {"type": "admin", "id": "1295", "name": "Ada Admin", "email": "ada@acme.example",
            "email_verified": True,
            "app": {"type": "app", "id_code": id_code, "name": name, "region": region,
                    "timezone": "Europe/Dublin", "created_at": 1700000000,
                    "identity_verification": False}}


def salesforce_org(org_id: str, instance: str) -> dict[str, Any]:
    """One Organization record of a REST query answer."""
    return {"attributes": {"type": "Organization",
                           "url": f"/services/data/v60.0/sobjects/Organization/{org_id}"},
            "Id": org_id, "InstanceName": instance}


def atlassian_workspace(wid: str, name: str, realm: str | None, host: str,
                        type_key: str = "jira-servicedesk") -> dict[str, Any]:
    return {"id": wid, "type": "workspace",
            "attributes": {"name": name, "typeKey": type_key, "type": "product",
                           "owner": "org", "status": "online", "statusDetails": [],
                           "icons": {}, "avatars": {}, "labels": [], "sandbox": None,
                           "usage": 10, "capacity": 100, "createdAt": "2024-01-15T10:00:00Z",
                           "createdBy": "u1", "updatedAt": "2024-01-15T10:00:00Z",
                           "hostUrl": host, "realm": realm,
                           "regions": [] if realm is None else [f"{realm.lower()}-1"]},
            "links": {"self": f"/admin/v2/orgs/org/workspaces/{wid}"}, "relationships": {}}


def error_body(vendor: str, status: int) -> Any:
    """Each vendor's documented error document for `status`."""
    text = {401: "unauthorized", 403: "forbidden", 404: "not found", 429: "rate limit exceeded",
            500: "internal error", 503: "service unavailable"}.get(status, "error")
    if vendor == "freshdesk":
        codes = {401: ("invalid_credentials", "You have to be logged in to perform this action."),
                 403: ("access_denied", "You are not authorized to perform this action.")}
        code, message = codes.get(status, (text.replace(" ", "_"), text))
        return {"code": code, "message": message}
    if vendor == "hubspot":
        category = {401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                    429: "RATE_LIMITS"}.get(status, "INTERNAL_ERROR")
        body = {"status": "error", "message": f"Authentication credentials not found: {text}"
                if status == 401 else text, "correlationId": "0f6c6d0b-3c5e-4c1b",
                "category": category}
        if status == 429:
            body |= {"message": "You have reached your ten_secondly_rolling limit.",
                     "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
        return body
    if vendor == "intercom":
        code = {401: "unauthorized", 403: "forbidden", 429: "rate_limit_exceeded"}.get(
            status, "server_error")
        message = {401: "Access Token Invalid",
                   429: "Exceeded rate limit of 167 in 10_seconds"}.get(status, text)
        return {"type": "error.list", "request_id": "000e1f2g3h",
                "errors": [{"code": code, "message": message}]}
    if vendor == "salesforce":
        code = {401: "INVALID_SESSION_ID", 403: "INSUFFICIENT_ACCESS",
                429: "REQUEST_LIMIT_EXCEEDED"}.get(status, "UNKNOWN_EXCEPTION")
        message = "Session expired or invalid" if status == 401 else text
        return [{"message": message, "errorCode": code}]
    if vendor == "salesforce-limit":  # the org's API request limit: a 403, not a 429
        return [{"message": "TotalRequests Limit exceeded.",
                 "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    return {"errors": [{"status": str(status), "code": text.upper().replace(" ", "_"),
                        "title": text.capitalize(), "detail": f"Request {text}"}]}


def rate_limited(vendor: str, now: float, wait: int = 1) -> tuple[int, dict[str, str], Any]:
    """How each vendor refuses a caller over its rate limit: status, the vendor's documented
    headers, and its error body.

    - Freshdesk: 429 with `Retry-After` (seconds) and `X-RateLimit-Total`, `-Remaining`,
      `-Used-CurrentRequest` (https://developers.freshdesk.com/api/#ratelimit).
    - HubSpot: 429 with the `X-HubSpot-RateLimit-*` headers and `errorType: RATE_LIMIT`,
      no `Retry-After` (https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details).
    - Intercom: 429 `rate_limit_exceeded` with `X-RateLimit-Limit`, `-Remaining` and
      `-Reset` as a UNIX time, no `Retry-After`
      (https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting).
    - Salesforce: the org's API request limit answers 403 `REQUEST_LIMIT_EXCEEDED`, with the
      usage in `Sforce-Limit-Info`
      (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
    - Atlassian: 429 with `Retry-After` and `X-RateLimit-Reset` as an ISO 8601 time
      (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
    """
    reset = int(now) + wait
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    if vendor == "freshdesk":
        return 429, {"Retry-After": str(wait), "X-RateLimit-Total": "3000",
                     "X-RateLimit-Remaining": "0",
                     "X-RateLimit-Used-CurrentRequest": "1"}, error_body(vendor, 429)
    if vendor == "hubspot":
        return 429, {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0",
                     "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                     "X-HubSpot-RateLimit-Daily": "250000",
                     "X-HubSpot-RateLimit-Daily-Remaining": "249000"}, error_body(vendor, 429)
    if vendor == "intercom":
        return 429, {"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": "0",
                     "X-RateLimit-Reset": str(reset)}, error_body(vendor, 429)
    if vendor == "salesforce":
        return 403, {"Sforce-Limit-Info": "api-usage=5000/5000"}, \
            error_body("salesforce-limit", 403)
    return 429, {"Retry-After": str(wait), "X-RateLimit-Limit": "100",
                 "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso}, error_body(vendor, 429)


@dataclass
class FakeSaas:
    """Token → account per vendor; `errors` per vendor; records request paths."""

    freshdesk: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubspot: dict[str, dict[str, Any]] = field(default_factory=dict)
    intercom: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    salesforce: dict[str, dict[str, Any]] = field(default_factory=dict)
    atlassian: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    lists: dict[str, bytes] = field(default_factory=dict)
    # vendor -> (status, extra headers); the body is the vendor's documented error
    errors: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    # vendor -> a raw body sent with the error instead (e.g. one that echoes the request)
    error_bodies: dict[str, bytes] = field(default_factory=dict)
    # vendor -> how many requests get the error before the vendor answers again (default: all)
    error_times: dict[str, int] = field(default_factory=dict)
    faults: list[HttpFault] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    url: str = ""
    _loop: LoopbackServer = field(default_factory=LoopbackServer, repr=False)

    def endpoint(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def rate_limit(self, vendor: str, times: int | None = None, wait: int = 1) -> None:
        """Answer `vendor`'s requests as it does past its rate limit (`times` requests, or
        all of them)."""
        status, headers, body = rate_limited(vendor, time.time(), wait)
        self.errors[vendor] = (status, headers)
        self.error_bodies[vendor] = json.dumps(body).encode()
        if times is not None:
            self.error_times[vendor] = times

    def start(self) -> FakeSaas:
        fake = self

        class Handler(JsonHandler):
            content_type: ClassVar[str] = "application/json; charset=utf-8"

            def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None,
                        raw: bytes | None = None) -> None:
                fault = first_fault(fake.faults, self.path)
                if fault is not None and raw is None:
                    send_with_fault(self, fault, status, body, self.content_type)
                    return
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", self.content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _token(self) -> str:
                auth = self.headers.get("Authorization", "")
                scheme, _, value = auth.partition(" ")
                if scheme == "Basic":
                    try:
                        return base64.b64decode(value).decode().partition(":")[0]
                    except ValueError:
                        return ""
                return value if scheme == "Bearer" else ""

            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._route("POST")

            def _route(self, method: str) -> None:
                fake.requests.append(f"{method} {self.path}")
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                vendor = segments[0] if segments else ""
                if vendor == "lists" and len(segments) == 2 and segments[1] in fake.lists:
                    self._answer(200, None, {"Content-Type": "application/yaml"},
                                 raw=fake.lists[segments[1]])
                    return
                if vendor not in VENDOR_PREFIXES:
                    self._answer(404, {"error": "not found"})
                    return
                if vendor in fake.errors and fake.error_times.get(vendor, 1) > 0:
                    if vendor in fake.error_times:
                        fake.error_times[vendor] -= 1
                    status, headers = fake.errors[vendor]
                    self._answer(status, error_body(vendor, status), headers,
                                 raw=fake.error_bodies.get(vendor))
                    return
                found = self._lookup(vendor, method, "/" + "/".join(segments[1:]), parts.query)
                if found is None:
                    self._answer(401, error_body(vendor, 401))
                    return
                self._answer(200, found)

            def _lookup(self, vendor: str, method: str, path: str, query: str) -> Any:
                token = self._token()
                if vendor == "freshdesk" and path == "/api/v2/account" and method == "GET":
                    return fake.freshdesk.get(token)
                if vendor == "hubspot" and path == "/account-info/v3/details":
                    return fake.hubspot.get(token)
                if vendor == "intercom" and path.endswith("/me"):
                    region = path.split("/")[1].upper()
                    held = fake.intercom.get(token)
                    return held[1] if held is not None and held[0] == region else None
                if vendor == "salesforce" and path == "/services/data/v60.0/query":
                    q = parse_qs(query).get("q", [""])[0]
                    record = fake.salesforce.get(token)
                    if record is None or "FROM Organization" not in q:
                        return None
                    return {"totalSize": 1, "done": True, "records": [record]}
                if vendor == "atlassian" and method == "POST" and path.endswith("/workspaces"):
                    org = path.split("/")[4] if path.count("/") >= 5 else ""
                    items = fake.atlassian.get((token, org))
                    if items is None:
                        return None
                    return {"data": items, "links": {"self": path},
                            "meta": {"pageSize": 100, "startIndex": 0,
                                     "endIndex": len(items), "total": len(items)}}
                return None

        self.url = self._loop.serve(Handler, "residency-fake-saas")
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread: nothing is left running."""
        self._loop.stop()
