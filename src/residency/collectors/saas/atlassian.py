"""Atlassian (Jira Service Management and the other cloud products): each workspace's realm.

The organization Admin API lists an org's workspaces (product instances) with their
`attributes.realm`, `attributes.regions` and `attributes.hostUrl`:
`POST https://api.atlassian.com/admin/v2/orgs/{orgId}/workspaces`
(https://developer.atlassian.com/cloud/admin/organization/rest/api-group-workspaces/), with
an organization admin API key as the bearer token. Realms (EU, US, AU, DE, ..., Global) →
`policies/saas/atlassian.yaml`; `Global` ("data may be moved between realms as needed") is
deliberately not in the table, so it fails closed. One system per workspace.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, urljoin

from residency.collectors.saas._http import HttpClient
from residency.collectors.saas._vendor import Observation, Vendor, bearer, text

API = "https://api.atlassian.com"
PAGE_SIZE = 100
MAX_PAGES = 50


class Atlassian(Vendor):
    id: ClassVar[str] = "atlassian"
    title: ClassVar[str] = "Atlassian"
    env_var: ClassVar[str] = "RESIDENCY_ATLASSIAN_TOKEN"
    signal: ClassVar[str] = "POST /admin/v2/orgs/{orgId}/workspaces → data[].attributes.realm"

    def observe(self, http: HttpClient, tenant: str, token: str,
                endpoint: str | None) -> list[Observation]:
        """`tenant` is the organization id."""
        url = f"{(endpoint or API).rstrip('/')}/admin/v2/orgs/{quote(tenant, safe='')}/workspaces"
        out: list[Observation] = []
        for _ in range(MAX_PAGES):
            doc = http.post(url, bearer(token), {"limit": PAGE_SIZE})
            if not isinstance(doc, dict) or not isinstance(doc["data"], list):
                raise TypeError("workspaces answer has no data list")
            out.extend(_workspace(item, tenant) for item in doc["data"])
            nxt = (doc.get("links") or {}).get("next")
            if not nxt:
                return out
            url = urljoin(url, str(nxt))
        raise ValueError(f"more than {MAX_PAGES} pages of workspaces")


def _workspace(item: Any, org: str) -> Observation:
    attrs = item["attributes"]
    wid = text(item["id"])
    if not wid:
        raise KeyError("id")
    realm = text(attrs.get("realm"))
    regions = attrs.get("regions") or []
    return Observation(
        code=realm, account=org, key=wid,
        name=text(attrs.get("name")) or text(attrs.get("hostUrl")) or wid,
        tags=(("atlassian:type", text(attrs.get("typeKey"))),
              ("atlassian:host", text(attrs.get("hostUrl"))),
              ("atlassian:regions", ",".join(text(r) for r in regions))),
        unknown=None if realm else "the workspace reports no data residency realm",
    )
