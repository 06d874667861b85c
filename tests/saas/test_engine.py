"""Sub-processors become onward flows the engine judges; attested locations are reported as
attested and an expired one fails closed (RES-L001)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from residency.collectors.interface import CollectContext
from residency.collectors.saas._tables import read_attested
from residency.demo.fake_saas import FakeSaas, hubspot_details
from residency.errors import InputError
from residency.model import DataMap, Severity
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

from .conftest import TODAY, Make

LIST = """\
vendor: hubspot
retrieved: 2026-11-20
source: https://legal.hubspot.com/sub-processors-page
subprocessors:
  - {name: "Amazon Web Services, Inc.", countries: [US], purpose: "Hosting", entity_country: US}
  - {name: "SupportPro Services Pvt Ltd", countries: [IN], purpose: "Support"}
  - {name: "Dublin Mail Ltd", countries: [IE], purpose: "E-mail"}
"""

ATTESTED = """\
attested:
  - vendor: zendesk
    tenant: acme
    countries: [DE]
    evidence: {kind: data_locality_addon, ref: "Zendesk Data Locality add-on, order Q-1234"}
    attested_by: "J. Doe (DPO)"
    valid_until: 2027-06-30
  - vendor: servicenow
    tenant: acme-prod
    countries: [NL]
    evidence: {kind: contract_clause, ref: "MSA schedule 4 §2.1"}
    attested_by: "J. Doe (DPO)"
    valid_until: 2026-10-31
"""


def _run(pack: PolicyPack, datamap: DataMap, inventory: object) -> object:
    return Engine(pack, EngineOptions(TODAY, today=TODAY)).run(datamap, [inventory])  # type: ignore[list-item]


def test_subprocessors_are_onward_transfers(fake: FakeSaas, make: Make, ctx: CollectContext,
                                            datamap: DataMap, pack: PolicyPack,
                                            tmp_path: Path) -> None:
    fake.hubspot["t"] = hubspot_details(9, "na1")  # the tenant itself is in North America
    (tmp_path / "subs.yaml").write_text(LIST)
    from residency.collectors.saas.collector import SubprocessorSource

    inv = make((("hubspot", "9"),), {"hubspot": "t"},
               subprocessors=[SubprocessorSource("hubspot", str(tmp_path / "subs.yaml"))]
               ).collect(ctx)
    subs = {s.id: s for s in inv.systems if ":subprocessor:" in s.id}
    assert set(subs) == {"saas:hubspot:subprocessor:amazon-web-services-inc",
                         "saas:hubspot:subprocessor:supportpro-services-pvt-ltd",
                         "saas:hubspot:subprocessor:dublin-mail-ltd"}
    assert subs["saas:hubspot:subprocessor:supportpro-services-pvt-ltd"].location.countries == \
        {"IN"}
    report = Engine(pack, EngineOptions(TODAY, today=TODAY)).run(datamap, [inv])
    to_india = [t for t in report.transfers
                if t.importer == "saas:hubspot:subprocessor:supportpro-services-pvt-ltd"]
    assert to_india and all(t.regime == "eu_gdpr" for t in to_india)
    (t,) = to_india
    assert t.exporter == "saas:hubspot:9" and t.countries == ("IN",)
    # data that left the EEA for the US tenant keeps eu_gdpr: the hop to India is onward
    assert t.onward and not t.lawful
    assert any(f.subject == t.flow and f.severity is Severity.ERROR for f in report.findings)
    # the Irish sub-processor of a US processor: its data comes back, no EEA transfer to judge
    assert not [x for x in report.transfers
                if x.importer.endswith("dublin-mail-ltd") and "IE" in x.countries]


def test_attested_locations_and_expiry(make: Make, ctx: CollectContext, datamap: DataMap,
                                       pack: PolicyPack, tmp_path: Path) -> None:
    (tmp_path / "attested.yaml").write_text(ATTESTED)
    found = read_attested(pack, tmp_path / "attested.yaml")
    inv = make(attested=found.attested, attested_source="attested.yaml").collect(ctx)
    got = {s.id: s for s in inv.systems}
    zendesk, servicenow = got["saas:zendesk:acme"], got["saas:servicenow:acme-prod"]
    assert zendesk.location.countries == {"DE"}
    tags = dict(zendesk.tags)
    assert tags["residency:location-source"] == "attested"  # never "observed"
    assert tags["saas:evidence"].startswith("data_locality_addon: Zendesk Data Locality")
    assert tags["saas:valid-until"] == "2027-06-30"
    assert "expired on 2026-10-31" in (servicenow.location.unknown_reason or "")
    report = Engine(pack, EngineOptions(TODAY, today=TODAY)).run(datamap, [inv])
    l001 = [f for f in report.findings if f.rule == "RES-L001"]
    assert [f.subject for f in l001] == ["saas:servicenow:acme-prod"]
    assert l001[0].severity is Severity.ERROR and "re-attest" in l001[0].message
    # still valid one day earlier: the same file, evaluated before the expiry, is clean
    earlier = make(attested=found.attested, today=lambda: dt.date(2026, 10, 31)).collect(ctx)
    assert all(s.location.countries for s in earlier.systems)


@pytest.mark.parametrize(("text", "key"), [
    (ATTESTED.replace("countries: [DE]", "countries: [XX]"), "attested[0].countries[0]"),
    (ATTESTED.replace("    countries: [DE]\n", ""), "attested[0]"),
    (ATTESTED.replace("data_locality_addon", "hearsay"), "attested[0].evidence.kind"),
])
def test_bad_attested_file_is_a_keyed_input_error(pack: PolicyPack, tmp_path: Path,
                                                  text: str, key: str) -> None:
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(InputError) as err:
        read_attested(pack, tmp_path / "a.yaml")
    assert err.value.key == key


def test_unreachable_subprocessor_list_url_is_a_gap(fake: FakeSaas, make: Make,
                                                    ctx: CollectContext) -> None:
    fake.hubspot["t"] = hubspot_details(9, "eu1")
    from residency.collectors.saas.collector import SubprocessorSource

    inv = make((("hubspot", "9"),), {"hubspot": "t"}, subprocessors=[
        SubprocessorSource("hubspot", f"{fake.url}/lists/missing.yaml")]).collect(ctx)
    (gap,) = inv.gaps
    assert gap.scope.startswith("sub-processor list http") and "HTTP 404" in gap.reason
    assert [s.id for s in inv.systems] == ["saas:hubspot:9"]
