"""A refused or unreachable tenant is a coverage gap with the vendor's own words, never an
empty result; the other tenants are still read."""

from __future__ import annotations

import pytest

from residency.collectors.interface import CollectContext
from residency.collectors.saas._http import HttpClient
from residency.demo.fake_gcs import HttpFault
from residency.demo.fake_saas import FakeSaas, hubspot_details

from .conftest import Make


@pytest.mark.parametrize(("status", "headers", "words"), [
    (401, {}, "credentials refused (HTTP 401): INVALID_AUTHENTICATION"),
    (403, {}, "permission denied (HTTP 403): MISSING_SCOPES"),
    (429, {"Retry-After": "0"}, "rate limited (HTTP 429, Retry-After 0 s): RATE_LIMITS"),
    (503, {}, "vendor error (HTTP 503)"),
])
def test_refusals_are_gaps(fake: FakeSaas, make: Make, ctx: CollectContext, status: int,
                           headers: dict[str, str], words: str) -> None:
    fake.errors["hubspot"] = (status, headers)
    fake.freshdesk["k"] = {"account_id": 1, "data_center": "US"}
    inv = make((("hubspot", "1"), ("freshdesk", "acme")),
               {"hubspot": "t", "freshdesk": "k"}).collect(ctx)
    (gap,) = inv.gaps
    assert (gap.provider, gap.scope) == ("hubspot", "tenant 1")
    assert words in gap.reason
    assert [s.id for s in inv.systems] == ["saas:freshdesk:acme"]
    if status in (429, 503):  # retried once (bounded) before giving up
        assert fake.requests.count("GET /hubspot/account-info/v3/details") == 2


def test_unknown_token_is_the_vendors_401(fake: FakeSaas, make: Make,
                                          ctx: CollectContext) -> None:
    fake.salesforce["good"] = {"Id": "00D", "InstanceName": "CHN1"}
    inv = make((("salesforce", "acme"),), {"salesforce": "bad"}).collect(ctx)
    assert "INVALID_SESSION_ID: Session expired or invalid" in inv.gaps[0].reason
    assert inv.systems == ()


def test_intercom_refused_everywhere_is_a_gap(fake: FakeSaas, make: Make,
                                              ctx: CollectContext) -> None:
    inv = make((("intercom", "w"),), {"intercom": "nobody"}).collect(ctx)
    assert "HTTP 401" in inv.gaps[0].reason and inv.systems == ()


@pytest.mark.parametrize(("fault", "words"), [
    (HttpFault("/hubspot/", "body", body=b"<html>login</html>"), "not well-formed JSON"),
    (HttpFault("/hubspot/", "truncate"), "not well-formed JSON"),
    (HttpFault("/hubspot/", "status", status=502), "vendor error (HTTP 502)"),
    (HttpFault("/hubspot/", "reset"), ""),
    (HttpFault("/hubspot/", "delay", delay=1.5), "timed out"),
    (HttpFault("/hubspot/", "body", body=b'{"portalId": 1}'), "no dataHostingLocation"),
    (HttpFault("/hubspot/", "body", body=b"[1, 2]"), "not in the documented shape"),
])
def test_broken_answers_are_gaps(fake: FakeSaas, make: Make, ctx: CollectContext,
                                 fault: HttpFault, words: str) -> None:
    fake.hubspot["t"] = hubspot_details(1, "eu1")
    fake.faults.append(fault)
    http = HttpClient(timeout=0.5, retries=1, sleep=lambda _s: None)
    inv = make((("hubspot", "1"),), {"hubspot": "t"}, http=http).collect(ctx)
    if "dataHostingLocation" in words:  # answered, but without a location: unknown, not clean
        (system,) = inv.systems
        assert words in (system.location.unknown_reason or "") and not inv.gaps
        return
    (gap,) = inv.gaps
    assert words in gap.reason and inv.systems == ()
