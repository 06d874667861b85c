"""Azure Resource Graph as the local ARM peer answers it: `POST /providers/Microsoft.
ResourceGraph/resources?api-version=2022-10-01` (REST reference "Resources"):
https://learn.microsoft.com/en-us/rest/api/azureresourcegraph/resourcegraph/resources/resources

Request `{"subscriptions": [...], "query": KQL, "options": {"$top", "$skip", "$skipToken",
"resultFormat": "objectArray"}}`; answer `{"totalRecords", "count", "resultTruncated":
"true"|"false", "$skipToken"?, "data": [rows], "facets": []}`, pages of at most `PAGE_SIZE`
here (at most `$top`, ARG's own cap is 1000), so any estate of more rows needs the client to
page. As the real service does, a subscription the caller may not read is left out of the
answer without an error; a request naming none it may read is 400
`NoValidSubscriptionsInQueryRequest`; a query it cannot parse is 400 `InvalidQuery`; a
throttled one is 429 `RateLimiting` with `Retry-After` and ARG's quota headers
(`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`, "Guidance for throttled
requests in Azure Resource Graph"). A query without an `id` column cannot be paged: ARG then
answers `resultTruncated: "true"` and no `$skipToken`.

Only the KQL the collector sends is understood: `Resources` or `ResourceContainers`, then
`| where type =~ '<type>'` and `| project col, ...` stages.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

PAGE_SIZE = 3
API_VERSION = "2022-10-01"
TABLES = ("resources", "resourcecontainers")
_WHERE = re.compile(r"^where\s+type\s*=~\s*'([^']+)'$", re.IGNORECASE)


def error(status: int, code: str, detail_code: str, message: str) -> tuple[int, dict[str, Any]]:
    """ARG's error document: a support line, the real reason in `details`."""
    return status, {"error": {
        "code": code,
        "message": "Please provide below info when asking for support: timestamp = "
                   "2026-12-01T10:00:00.0000000Z, correlationId = "
                   "00000000-0000-4000-8000-000000000000.",
        "details": [{"code": detail_code, "message": message}],
    }}


def throttled() -> tuple[int, dict[str, Any]]:
    return error(429, "RateLimiting", "RateLimiting",
                 "Client application has been throttled and should not attempt to repeat "
                 "the request until an amount of time has elapsed. Please see "
                 "https://aka.ms/resourcegraph-throttling for help.")


def container(sub: str, tenant: str) -> dict[str, Any]:
    """A `ResourceContainers` row of type microsoft.resources/subscriptions."""
    return {"id": f"/subscriptions/{sub}", "name": f"sub-{sub[-4:]}",
            "type": "microsoft.resources/subscriptions", "tenantId": tenant, "location": "",
            "subscriptionId": sub, "resourceGroup": "", "tags": {},
            "properties": {"state": "Enabled"}}


def row(resource: dict[str, Any], sub: str, tenant: str) -> dict[str, Any]:
    """A `Resources` row: ARG lower-cases `type`, adds the subscription and resource group,
    and keeps the resource's full `properties` (what a GET by id returns)."""
    rid = str(resource["id"])
    parts = rid.split("/")
    group = parts[4].lower() if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
    out: dict[str, Any] = {"tenantId": tenant, "subscriptionId": sub, "resourceGroup": group,
           "kind": "", "sku": None, "identity": None, "zones": None, "plan": None,
           "managedBy": "", "extendedLocation": None, "properties": {}, "tags": None}
    out.update(resource)
    out["type"] = str(resource.get("type", "")).lower()
    out["location"] = str(resource.get("location", "")).lower().replace(" ", "")
    return out


def parse(query: str) -> tuple[str, str | None, list[str] | None]:
    """(table, type filter, projected columns) of the KQL the collector sends; ValueError
    for anything else."""
    stages = [s.strip() for s in query.split("|")]
    table = stages[0].lower()
    if table not in TABLES:
        raise ValueError(f"unknown table {stages[0]!r}")
    where: str | None = None
    columns: list[str] | None = None
    for stage in stages[1:]:
        if (m := _WHERE.match(stage)) is not None:
            where = m.group(1).lower()
        elif stage.lower().startswith("project "):
            columns = [c.strip() for c in stage[len("project "):].split(",") if c.strip()]
        else:
            raise ValueError(f"unsupported stage {stage!r}")
    return table, where, columns


def answer(body: Any, rows_by_sub: dict[str, list[dict[str, Any]]], readable: Iterable[str],
           tenant: str, truncate: bool = False) -> tuple[int, dict[str, Any]]:
    """The status and document ARG answers one `resources` request with."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return error(400, "BadRequest", "InvalidRequestContent",
                     "The request content was invalid and could not be deserialized.")
    may = {s.lower(): s for s in readable}
    asked = [str(s) for s in body.get("subscriptions") or may.values()]
    eligible = [may[s.lower()] for s in asked if s.lower() in may]
    if not eligible:
        return error(400, "BadRequest", "NoValidSubscriptionsInQueryRequest",
                     "There must be at least one subscription that is eligible to contain "
                     f"resources. Given: '{','.join(asked)}'.")
    try:
        table, where, columns = parse(body["query"])
    except ValueError as exc:
        return error(400, "BadRequest", "InvalidQuery",
                     f"Query is invalid. Please refer to the documentation for the Azure "
                     f"Resource Graph service and fix the error before retrying. ({exc})")
    if table == "resources":
        rows = [row(r, s, tenant) for s in eligible for r in rows_by_sub.get(s, [])]
    else:
        rows = [container(s, tenant) for s in eligible]
    if where is not None:
        rows = [r for r in rows if r["type"] == where]
    if columns is not None:
        rows = [{c: r.get(c) for c in columns} for r in rows]
    options = body.get("options") or {}
    if options.get("resultFormat", "objectArray") != "objectArray":
        return error(400, "BadRequest", "UnsupportedResultFormat",
                     "only objectArray is served by this peer")
    top = min(int(options.get("$top") or 100), 1000, PAGE_SIZE)
    token = options.get("$skipToken")
    start = _offset(token) if token else int(options.get("$skip") or 0)
    page = rows[start:start + top]
    doc: dict[str, Any] = {"totalRecords": len(rows), "count": len(page), "data": page,
                           "facets": [], "resultTruncated": "false"}
    more = start + top < len(rows)
    if more and (truncate or (columns is not None and "id" not in columns)):
        doc["resultTruncated"] = "true"  # no id column: ARG cannot page, it truncates
    elif more:
        doc["$skipToken"] = base64.b64encode(json.dumps({"o": start + top}).encode()).decode()
    return 200, doc


def _offset(token: str) -> int:
    return int(json.loads(base64.b64decode(token))["o"])
