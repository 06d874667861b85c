"""Azure Resource Graph: every resource of many subscriptions in one paged KQL query.

`POST /providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01` (REST reference
"Resources", https://learn.microsoft.com/en-us/rest/api/azureresourcegraph/resourcegraph/
resources/resources) answers rows with the resource's full `properties`, so the GET by id
that ARM's generic list needs for most catalogue types is not needed. Pages come with
`$skipToken` (up to `$top` 1000 rows each, up to 1,000 subscriptions per request).

ARG leaves out, without an error, every subscription the caller may not read. So the
subscriptions it can read are asked first (`ResourceContainers`), and each one asked for and
not answered is a gap; a query that fails (throttled past the SDK's retries, which honour
`Retry-After`), a truncated answer (`resultTruncated`) or a row count short of
`totalRecords` is a gap of every subscription in the request. Only a cloud without ARG (404,
or the SDK not installed) falls back to listing per subscription.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from residency.collectors import _faults
from residency.model import CoverageGap

API_VERSION = "2022-10-01"
BATCH = 1000  # subscriptions per request (ARG's limit)
TOP = 1000  # rows per page (ARG's limit)
#: `sku`/`kind` beyond the brief's columns: a storage account's geo-redundancy (the pairing
#: fallback) is its `sku.name`.
RESOURCES = ("Resources | project id, name, type, location, tags, properties, sku, kind, "
             "subscriptionId")
SUBSCRIPTIONS = ("ResourceContainers | where type =~ 'microsoft.resources/subscriptions' "
                 "| project id, subscriptionId")


class GraphUnavailableError(Exception):
    """This cloud (or this install) has no Resource Graph: list per subscription instead."""


@dataclass(slots=True)
class GraphResult:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # subscription -> rows
    gaps: list[CoverageGap] = field(default_factory=list)
    queries: int = 0


def read(credential: Any, subscriptions: Iterable[str], base_url: str | None,
         kwargs: dict[str, Any], describe: Callable[[BaseException], str | None]
         ) -> GraphResult:
    """Rows per readable subscription; GraphUnavailableError when ARG is not there at all."""
    try:
        from azure.mgmt.resourcegraph import ResourceGraphClient
    except ImportError as exc:
        raise GraphUnavailableError("azure-mgmt-resourcegraph is not installed") from exc
    subs = list(dict.fromkeys(subscriptions))
    result = GraphResult()
    client = ResourceGraphClient(credential, base_url=base_url or "https://management.azure.com",
                                 api_version=API_VERSION, **kwargs)
    with client:
        for start in range(0, len(subs), BATCH):
            _batch(client, subs[start:start + BATCH], result, describe)
    return result


def _batch(client: Any, subs: list[str], result: GraphResult,
           describe: Callable[[BaseException], str | None]) -> None:
    rows: list[dict[str, Any]] = []
    try:
        readable = {str(r.get("subscriptionId", "")).lower()
                    for r in _query(client, subs, SUBSCRIPTIONS, result)}
        rows = _query(client, subs, RESOURCES, result)
    except GraphUnavailableError:
        raise
    except Exception as exc:
        why = _faults.reason(exc, describe)
        if _status(exc) == 404:
            raise GraphUnavailableError(why) from exc
        if _no_valid_subscription(exc):  # none of these may be read: each is a gap
            readable, rows = set(), []
        else:
            for sub in subs:
                result.gaps.append(CoverageGap("azure", f"subscription {sub}",
                                               f"Resource Graph query failed: {why}"))
            return
    by_sub: dict[str, list[dict[str, Any]]] = {s.lower(): [] for s in subs}
    for r in rows:
        by_sub.setdefault(str(r.get("subscriptionId", "")).lower(), []).append(r)
    for sub in subs:
        if sub.lower() not in readable:
            result.gaps.append(CoverageGap(
                "azure", f"subscription {sub}",
                "Resource Graph answered no record of this subscription: the credential "
                "cannot read it (ARG leaves out what the caller may not read)"))
            continue
        result.rows[sub] = by_sub.get(sub.lower(), [])


def _query(client: Any, subs: list[str], query: str, result: GraphResult
           ) -> list[dict[str, Any]]:
    """Every page of one query; a truncated or short answer raises (the batch's gap)."""
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    out: list[dict[str, Any]] = []
    token: str | None = None
    total = 0
    while True:
        options = QueryRequestOptions(top=TOP, skip_token=token, result_format="objectArray")
        answer = client.resources(QueryRequest(subscriptions=subs, query=query,
                                               options=options))
        result.queries += 1
        data = answer.data
        if not isinstance(data, list):
            raise TypeError("a Resource Graph answer whose `data` is not an objectArray")
        for item in data:
            if not isinstance(item, dict):
                raise TypeError(f"a Resource Graph row is a {type(item).__name__}")
            out.append(item)
        total = int(answer.total_records or 0)
        if str(answer.result_truncated or "false").lower() == "true":
            raise ValueError(f"Resource Graph truncated its answer (resultTruncated) after "
                             f"{len(out)} of {total} rows")
        token = answer.skip_token or None
        if not token:
            break
    if len(out) < total:
        raise ValueError(f"Resource Graph answered {len(out)} of {total} rows (totalRecords)")
    return out


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _no_valid_subscription(exc: BaseException) -> bool:
    """400 NoValidSubscriptionsInQueryRequest: the caller may read none of them."""
    if _status(exc) != 400:
        return False
    error = getattr(exc, "error", None)
    details = getattr(error, "details", None) or []
    codes = {getattr(d, "code", None) for d in details}
    return "NoValidSubscriptionsInQueryRequest" in codes or \
        "NoValidSubscriptionsInQueryRequest" in str(exc)
