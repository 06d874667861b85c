"""Freshdesk: `GET https://<domain>.freshdesk.com/api/v2/account` → `data_center`.

The View Account answer names the account's data centre (`"data_center": "US"`), its domain
and id (https://developers.freshdesk.com/api/#account). Basic authentication with the API key
as the user name and `X` as the password (https://developers.freshdesk.com/api/#authentication).
The codes are resolved through `policies/saas/freshdesk.yaml`.
"""

from __future__ import annotations

from typing import ClassVar

from residency.collectors.saas._http import HttpClient
from residency.collectors.saas._vendor import Observation, Vendor, basic, text


def base_url(tenant: str) -> str:
    """`acme`, `acme.freshdesk.com` or `https://acme.freshdesk.com` → the account's URL."""
    host = tenant.removeprefix("https://").removeprefix("http://").strip("/")
    return f"https://{host if '.' in host else host + '.freshdesk.com'}"


class Freshdesk(Vendor):
    id: ClassVar[str] = "freshdesk"
    title: ClassVar[str] = "Freshdesk"
    env_var: ClassVar[str] = "RESIDENCY_FRESHDESK_TOKEN"
    signal: ClassVar[str] = "GET /api/v2/account → data_center"

    def observe(self, http: HttpClient, tenant: str, token: str,
                endpoint: str | None) -> list[Observation]:
        root = (endpoint or base_url(tenant)).rstrip("/")
        doc = http.get(f"{root}/api/v2/account", basic(token, "X"))
        if not isinstance(doc, dict):
            raise TypeError("account answer is not a JSON object")
        code = text(doc.get("data_center"))
        return [Observation(
            code=code, account=text(doc["account_id"]),
            name=text(doc.get("account_name")) or text(doc.get("account_domain")) or tenant,
            tags=(("freshdesk:account-domain", text(doc.get("account_domain"))),),
            unknown=None if code else "the account answer has no data_center",
        )]
