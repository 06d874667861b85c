"""Intercom: the regional REST host the workspace answers on, cross-checked with `app.region`.

"Intercom workspaces can be hosted in three distinct regions - US, EU and Australia"; each
has its own REST host: `api.intercom.io`, `api.eu.intercom.io`, `api.au.intercom.io`
(https://developers.intercom.com/building-apps/docs/rest-apis). `GET /me` returns the
current admin with the workspace embedded: `app.id_code`, `app.region` ("The Intercom region
the app is located in", https://developers.intercom.com/docs/references/2.11/rest-api/
api.intercom.io/admins/identifyadmin). `api.intercom.io` also routes other regions'
requests, so the EU and AU hosts are asked first: a 401 there means "not this region";
the first host that answers is the region. A region the answer names differently fails
closed. Codes → `policies/saas/intercom.yaml`.
"""

from __future__ import annotations

from typing import ClassVar

from residency.collectors.saas._http import HttpClient, HttpError
from residency.collectors.saas._vendor import Observation, Vendor, bearer, text

HOSTS: tuple[tuple[str, str], ...] = (
    ("EU", "https://api.eu.intercom.io"),
    ("AU", "https://api.au.intercom.io"),
    ("US", "https://api.intercom.io"),
)


class Intercom(Vendor):
    id: ClassVar[str] = "intercom"
    title: ClassVar[str] = "Intercom"
    env_var: ClassVar[str] = "RESIDENCY_INTERCOM_TOKEN"
    signal: ClassVar[str] = "GET /me on api[.eu|.au].intercom.io → answering host, app.region"

    def observe(self, http: HttpClient, tenant: str, token: str,
                endpoint: str | None) -> list[Observation]:
        """`endpoint`: a test peer serving each region under `/<region>` (`/eu/me`)."""
        hosts = [(r, f"{endpoint.rstrip('/')}/{r.lower()}") for r, _ in HOSTS] if endpoint \
            else list(HOSTS)
        refused: list[str] = []
        for region, host in hosts:
            try:
                doc = http.get(f"{host}/me", bearer(token) | {"Intercom-Version": "2.11"})
            except HttpError as exc:
                if exc.status == 401 and region != "US":
                    refused.append(region)
                    continue
                raise
            if not isinstance(doc, dict):
                raise TypeError("/me answer is not a JSON object")
            app = doc["app"]
            if not isinstance(app, dict):
                raise TypeError("/me answer's app is not an object")
            said = text(app.get("region")).upper()
            unknown = None
            if said and said != region:
                unknown = (f"workspace answered on the {region} host but reports region "
                           f"{said!r}")
            return [Observation(
                code=region, account=text(app["id_code"]),
                name=text(app.get("name")) or tenant,
                tags=(("intercom:host", host), ("intercom:app-region", said)),
                unknown=unknown,
            )]
        raise HttpError(401, f"refused by every regional host ({', '.join(refused)}, US)")
