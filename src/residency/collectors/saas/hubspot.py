"""HubSpot: `GET https://api.hubapi.com/account-info/v3/details` → `dataHostingLocation`.

"Retrieve account details such as the account type, time zone, currencies, and data hosting
location" (https://developers.hubspot.com/docs/api-reference/legacy/account/
account-information/get-account-details); `dataHostingLocation` is a required string, the
location where the account's data is hosted (`na1`, `eu1`). Bearer token of a private app or
OAuth app; the call needs no CRM scope (`oauth` only). Codes → `policies/saas/hubspot.yaml`.
"""

from __future__ import annotations

from typing import ClassVar

from residency.collectors.saas._http import HttpClient
from residency.collectors.saas._vendor import Observation, Vendor, bearer, text

API = "https://api.hubapi.com"


class HubSpot(Vendor):
    id: ClassVar[str] = "hubspot"
    title: ClassVar[str] = "HubSpot"
    env_var: ClassVar[str] = "RESIDENCY_HUBSPOT_TOKEN"
    signal: ClassVar[str] = "GET /account-info/v3/details → dataHostingLocation"

    def observe(self, http: HttpClient, tenant: str, token: str,
                endpoint: str | None) -> list[Observation]:
        doc = http.get(f"{(endpoint or API).rstrip('/')}/account-info/v3/details", bearer(token))
        if not isinstance(doc, dict):
            raise TypeError("account details answer is not a JSON object")
        portal = text(doc["portalId"])
        if tenant.isdigit() and portal != tenant:
            raise ValueError(f"the token belongs to portal {portal}, not {tenant}")
        code = text(doc.get("dataHostingLocation"))
        return [Observation(
            code=code, account=portal, name=f"HubSpot portal {portal}",
            tags=(("hubspot:ui-domain", text(doc.get("uiDomain"))),
                  ("hubspot:account-type", text(doc.get("accountType")))),
            unknown=None if code else "the account details have no dataHostingLocation",
        )]
