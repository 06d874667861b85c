"""Each vendor's peer refuses the way the vendor documents (429 with its rate-limit headers,
Salesforce's 403 REQUEST_LIMIT_EXCEEDED, 401, 403): a transient limit is waited out as the
headers say, a lasting one (or a refusal) is the tenant's coverage gap, never an empty
result."""

from __future__ import annotations

import pytest

from residency.collectors.interface import CollectContext
from residency.collectors.saas._http import HttpClient
from residency.demo.fake_saas import (
    FakeSaas,
    atlassian_workspace,
    freshdesk_account,
    hubspot_details,
    intercom_me,
    salesforce_org,
)
from residency.policy.pack import PolicyPack

from .conftest import Make

TENANT = {"freshdesk": "acme", "hubspot": "9", "intercom": "acme", "salesforce": "acme",
          "atlassian": "org-1"}


def _seed(fake: FakeSaas) -> None:
    fake.freshdesk["t"] = freshdesk_account(1, "acme", "US")
    fake.hubspot["t"] = hubspot_details(9, "na1")
    fake.intercom["t"] = ("US", intercom_me("abc", "US"))
    fake.salesforce["t"] = salesforce_org("00D1", "CHN1")
    fake.atlassian[("t", "org-1")] = [atlassian_workspace("w1", "JSM", "US", "a.atlassian.net")]


def _hits(fake: FakeSaas, vendor: str) -> int:
    """Requests to the vendor's API (Intercom: whichever regional host answered first)."""
    return sum(1 for r in fake.requests if r.split(" ", 1)[1].startswith(f"/{vendor}/"))


@pytest.mark.parametrize("vendor", sorted(TENANT))
def test_a_lasting_rate_limit_is_a_gap(fake: FakeSaas, make: Make, ctx: CollectContext,
                                       vendor: str) -> None:
    _seed(fake)
    fake.rate_limit(vendor)
    inv = make(((vendor, TENANT[vendor]),), {vendor: "t"}).collect(ctx)
    assert not [s for s in inv.systems if s.id.startswith(f"saas:{vendor}:")
                and ":subprocessor:" not in s.id]
    (gap,) = inv.gaps
    assert (gap.provider, gap.scope) == (vendor, f"tenant {TENANT[vendor]}")
    assert "rate limited" in gap.reason, gap.reason
    if vendor == "salesforce":  # the org's daily limit: a 403, not retried
        assert "HTTP 403" in gap.reason and "REQUEST_LIMIT_EXCEEDED" in gap.reason
        assert _hits(fake, vendor) == 1
    else:
        assert "HTTP 429" in gap.reason and _hits(fake, vendor) == 2  # retried once


@pytest.mark.parametrize("vendor", ["freshdesk", "intercom", "atlassian", "hubspot"])
def test_a_transient_rate_limit_is_waited_out(fake: FakeSaas, make: Make, ctx: CollectContext,
                                              vendor: str) -> None:
    _seed(fake)
    fake.rate_limit(vendor, times=1, wait=3)
    waits: list[float] = []
    http = HttpClient(timeout=2.0, retries=2, sleep=waits.append)
    inv = make(((vendor, TENANT[vendor]),), {vendor: "t"}, http=http).collect(ctx)
    assert inv.gaps == () and inv.systems
    (wait,) = waits
    if vendor == "hubspot":  # no Retry-After or reset time: the client's own backoff
        assert wait == 1.0
    else:  # Retry-After (Freshdesk, Atlassian) or X-RateLimit-Reset (Intercom): ~3 s
        assert 1.5 <= wait <= 3.0, wait


def test_a_rate_limit_longer_than_the_client_waits_is_a_gap(
        fake: FakeSaas, make: Make, ctx: CollectContext) -> None:
    _seed(fake)
    fake.rate_limit("freshdesk", times=1, wait=3600)
    waits: list[float] = []
    http = HttpClient(timeout=2.0, retries=2, sleep=waits.append)
    inv = make((("freshdesk", "acme"),), {"freshdesk": "t"}, http=http).collect(ctx)
    (gap,) = inv.gaps
    assert "Retry-After 3600 s" in gap.reason and waits == [] and inv.systems == ()


@pytest.mark.parametrize("vendor", sorted(TENANT))
@pytest.mark.parametrize(("status", "words"), [(401, "credentials refused (HTTP 401)"),
                                               (403, "permission denied (HTTP 403)")])
def test_refused_tenant_is_a_gap(fake: FakeSaas, make: Make, ctx: CollectContext, vendor: str,
                                 status: int, words: str) -> None:
    _seed(fake)
    fake.errors[vendor] = (status, {})
    inv = make(((vendor, TENANT[vendor]),), {vendor: "t"}).collect(ctx)
    (gap,) = inv.gaps
    assert words in gap.reason and gap.scope == f"tenant {TENANT[vendor]}"
    # a refusal is not retried; Intercom's 401 means "not this region" until the US host
    expected = 3 if (vendor, status) == ("intercom", 401) else 1
    assert _hits(fake, vendor) == expected


@pytest.mark.parametrize("vendor", sorted(TENANT))
def test_unreachable_tenant_is_a_gap(pack: PolicyPack, ctx: CollectContext, vendor: str) -> None:
    from residency.collectors.saas import VENDORS
    from residency.collectors.saas.collector import SaasCollector, Tenant

    # nothing listens on port 9 of the loopback: the connection is refused
    collector = SaasCollector(
        pack, {v: cls() for v, cls in VENDORS.items()}, [Tenant(vendor, TENANT[vendor])],
        tokens={vendor: "t"}, endpoints={vendor: "http://127.0.0.1:9"},
        http=HttpClient(timeout=1.0, retries=0))
    inv = collector.collect(ctx)
    (gap,) = inv.gaps
    assert gap.scope == f"tenant {TENANT[vendor]}" and inv.systems == ()
    assert "refused" in gap.reason.lower() or "unreachable" in gap.reason.lower(), gap.reason

