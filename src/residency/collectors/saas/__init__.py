"""SaaS service-desk tenants: where the vendor says the tenant's data lives.

One module per vendor whose API reports a location (`freshdesk`, `hubspot`, `intercom`,
`salesforce`, `atlassian`), each a small `Vendor` (`_vendor.py`); the shared HTTP client
(`_http.py`); the cited data (`_tables.py`: `policies/saas/<vendor>.yaml` code → country
tables, dated sub-processor lists, attestations); and `SaasCollector` (`collector.py`), which
turns observations, attestations and sub-processor lists into an `Inventory`.
`VENDORS` is the registry the CLI derives its choices from.
"""

from __future__ import annotations

from residency.collectors.saas._vendor import Vendor
from residency.collectors.saas.atlassian import Atlassian
from residency.collectors.saas.freshdesk import Freshdesk
from residency.collectors.saas.hubspot import HubSpot
from residency.collectors.saas.intercom import Intercom
from residency.collectors.saas.salesforce import Salesforce

VENDORS: dict[str, type[Vendor]] = {
    v.id: v for v in (Freshdesk, HubSpot, Intercom, Salesforce, Atlassian)
}

__all__ = ["VENDORS", "Vendor"]
