"""Salesforce: `Organization.InstanceName` by SOQL over REST, through a cited instance table.

`GET https://<MyDomain>.my.salesforce.com/services/data/v60.0/query?q=SELECT Id,
InstanceName FROM Organization` (REST API Developer Guide, Query resource:
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm;
`Organization.InstanceName`: the instance the org runs on, e.g. `CHN12`). The instance name
is resolved through `policies/saas/salesforce.yaml` (exact instances and documented
prefixes); an instance the table does not name fails closed.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from residency.collectors.saas._http import HttpClient
from residency.collectors.saas._vendor import Observation, Vendor, bearer, text

API_VERSION = "v60.0"
SOQL = "SELECT Id, InstanceName FROM Organization"


def base_url(tenant: str) -> str:
    host = tenant.removeprefix("https://").removeprefix("http://").strip("/")
    return f"https://{host if '.' in host else host + '.my.salesforce.com'}"


class Salesforce(Vendor):
    id: ClassVar[str] = "salesforce"
    title: ClassVar[str] = "Salesforce"
    env_var: ClassVar[str] = "RESIDENCY_SALESFORCE_TOKEN"
    signal: ClassVar[str] = f"GET /services/data/{API_VERSION}/query ({SOQL}) → InstanceName"

    def observe(self, http: HttpClient, tenant: str, token: str,
                endpoint: str | None) -> list[Observation]:
        root = (endpoint or base_url(tenant)).rstrip("/")
        doc = http.get(f"{root}/services/data/{API_VERSION}/query?q={quote(SOQL)}",
                       bearer(token))
        if not isinstance(doc, dict):
            raise TypeError("query answer is not a JSON object")
        records = doc["records"]
        if not isinstance(records, list) or len(records) != 1:
            raise ValueError(f"expected one Organization record, got "
                             f"{len(records) if isinstance(records, list) else 'none'}")
        org = records[0]
        code = text(org.get("InstanceName"))
        return [Observation(
            code=code, account=text(org["Id"]), name=f"Salesforce org {text(org['Id'])}",
            tags=(("salesforce:instance", code),),
            unknown=None if code else "the Organization record has no InstanceName",
        )]
