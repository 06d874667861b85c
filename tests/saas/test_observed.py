"""Each vendor's tenant is located where the vendor's own API says, through the cited table."""

from __future__ import annotations

from residency.collectors.interface import CollectContext
from residency.demo.fake_saas import (
    FakeSaas,
    atlassian_workspace,
    freshdesk_account,
    hubspot_details,
    intercom_me,
    salesforce_org,
)
from residency.model import System
from residency.policy.pack import PolicyPack

from .conftest import Make


def _by_id(systems: tuple[System, ...]) -> dict[str, System]:
    return {s.id: s for s in systems}


def test_every_vendor_at_its_reported_location(fake: FakeSaas, make: Make, ctx: CollectContext,
                                               pack: PolicyPack) -> None:
    fake.freshdesk["fd-key"] = freshdesk_account(1840509, "acme", "US")
    fake.hubspot["hs-token"] = hubspot_details(4711, "eu1")
    fake.intercom["ic-token"] = ("AU", intercom_me("abc123", "AU"))
    fake.salesforce["sf-token"] = salesforce_org("00D000000000001", "CHN12S")
    fake.atlassian[("at-key", "org-1")] = [
        atlassian_workspace("w1", "Acme JSM", "EU", "acme.atlassian.net"),
        atlassian_workspace("w2", "Acme wiki", "Global", "acme-wiki.atlassian.net",
                            type_key="confluence")]
    collector = make((("freshdesk", "acme"), ("hubspot", "4711"), ("intercom", "acme"),
                      ("salesforce", "acme"), ("atlassian", "org-1")),
                     {"freshdesk": "fd-key", "hubspot": "hs-token", "intercom": "ic-token",
                      "salesforce": "sf-token", "atlassian": "at-key"})
    inv = collector.collect(ctx)
    assert inv.gaps == ()
    got = _by_id(inv.systems)
    assert got["saas:freshdesk:acme"].location.countries == {"US"}
    assert got["saas:hubspot:4711"].location.countries == pack.expand(["EU"])
    assert got["saas:intercom:acme"].location.countries == {"AU"}
    assert got["saas:salesforce:acme"].location.countries == {"CN"}
    assert got["saas:atlassian:org-1:w1"].location.countries == {"DE", "IE"}
    # Global: Atlassian may move the data between realms -> fails closed with the reason
    w2 = got["saas:atlassian:org-1:w2"].location
    assert not w2.countries and "'Global', which is not in policies/saas/atlassian.yaml" in \
        (w2.unknown_reason or "")
    for s in got.values():
        tags = dict(s.tags)
        assert tags["residency:location-source"] == "observed"
        assert tags["data-classification"] == "servicedesk" and s.party == tags["saas:vendor"]
    assert dict(got["saas:hubspot:4711"].tags)["saas:location-code"] == "eu1"
    # the classification's fed_by joins every tenant to the map
    assert {f.target for f in inv.flows if f.source == "portal"} == set(got)
    # Intercom: the EU host refused the AU workspace's token before the AU host answered
    assert fake.requests.index("GET /intercom/eu/me") < fake.requests.index("GET /intercom/au/me")


def test_an_unlisted_code_fails_closed(fake: FakeSaas, make: Make, ctx: CollectContext) -> None:
    fake.hubspot["t"] = hubspot_details(1, "ap9")
    fake.salesforce["s"] = salesforce_org("00D1", "EU45")
    fake.intercom["i"] = ("EU", intercom_me("x1", "US"))  # answers on EU, says US
    inv = make((("hubspot", "1"), ("salesforce", "org"), ("intercom", "w")),
               {"hubspot": "t", "salesforce": "s", "intercom": "i"}).collect(ctx)
    got = _by_id(inv.systems)
    assert "'ap9', which is not in policies/saas/hubspot.yaml" in \
        (got["saas:hubspot:1"].location.unknown_reason or "")
    assert "'EU45'" in (got["saas:salesforce:org"].location.unknown_reason or "")
    assert "reports region 'US'" in (got["saas:intercom:w"].location.unknown_reason or "")
    assert all(not s.location.countries for s in got.values())


def test_unverified_mapping_is_marked(fake: FakeSaas, make: Make, ctx: CollectContext) -> None:
    fake.freshdesk["k"] = freshdesk_account(7, "acme", "EUC")
    (system,) = make((("freshdesk", "acme"),), {"freshdesk": "k"}).collect(ctx).systems
    assert dict(system.tags)["saas:location-verified"] == "false"
    assert "DE" in system.location.countries
