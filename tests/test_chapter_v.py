"""Chapter V second edition (issue 13): severities and input errors the rule harness cannot
express (a rule's finding at another severity, load-time errors), and the pack facts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from residency.datamap import parse_map
from residency.errors import InputError
from residency.model import Severity
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

AS_OF = dt.date(2026, 11, 30)


def _map(safeguards: list[dict[str, Any]], **party: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "parties": [{"id": "acme", "name": "Acme", "country": "IE", **party},
                    {"id": "vendor", "name": "Vendor Pvt Ltd", "country": "IN"}],
        "systems": [
            {"id": "portal", "party": "acme", "role": "controller",
             "location": {"country": "IE"}, "data_categories": ["ticket_content"]},
            {"id": "desk", "party": "vendor", "role": "processor", "location": {"country": "IN"}},
        ],
        "flows": [{"id": "to-india", "from": "portal", "to": "desk", "safeguards": safeguards}],
    }


def _run(pack: PolicyPack, doc: dict[str, Any], as_of: dt.date = AS_OF) -> list[Any]:
    datamap = parse_map(doc, pack, Path("map.yaml"))
    return list(Engine(pack, EngineOptions(as_of)).run(datamap).findings)


VALID = {"type": "scc", "instrument": "2021/914", "module": 2, "signed": "2025-01-01",
         "tia": {"ref": "T", "date": "2026-06-01"}}
OLD = {"type": "scc", "instrument": "2010/87", "signed": "2019-03-01"}


def test_stale_contract_beside_a_valid_one_is_a_hygiene_warning(pack: PolicyPack) -> None:
    """2021/914 Art. 4(4): the old contract lapsed on 2022-12-27, but the transfer rests
    on the new SCCs; the leftover entry is clutter, not a transfer without a basis."""
    findings = _run(pack, _map([OLD, VALID]))
    t008 = [f for f in findings if f.rule == "RES-T008"]
    assert [f.severity for f in t008] == [Severity.WARNING], [f.message for f in findings]
    assert not [f for f in findings if f.rule == "RES-T005"]
    assert not [f for f in findings if f.severity is Severity.ERROR]


def test_stale_contract_alone_stays_an_error(pack: PolicyPack) -> None:
    findings = _run(pack, _map([OLD]))
    t005 = [f for f in findings if f.rule == "RES-T005"]
    assert [f.severity for f in t005] == [Severity.ERROR]
    assert any(f.rule == "RES-T001" for f in findings)


def test_expired_contract_beside_a_valid_one_is_a_warning(pack: PolicyPack) -> None:
    expired = dict(VALID, expires="2025-06-01")
    findings = _run(pack, _map([expired, VALID]))
    assert [f.severity for f in findings if f.rule == "RES-T008"] == [Severity.WARNING]
    assert not [f for f in findings if f.rule == "RES-T005"]


def test_malformed_entry_beside_a_valid_one_stays_an_error(pack: PolicyPack) -> None:
    """Only entries that were valid once are hygiene; a contract that never worked (no
    module, signed after the last signing day) is still an error."""
    broken = {"type": "scc", "instrument": "2021/914", "signed": "2025-01-01"}
    findings = _run(pack, _map([broken, VALID]))
    assert [f.severity for f in findings if f.rule == "RES-T005"] == [Severity.ERROR]


def test_public_authority_is_part_of_the_verdict_key(pack: PolicyPack) -> None:
    """Two flows of the same shape, one exported by a public authority (GDPR Art. 49(3)):
    the cached verdict of one must not be stamped on the other."""
    doc = _map([{"type": "derogation", "article": "49(1)(a)"}])
    doc["parties"].append({"id": "city", "name": "City", "country": "IE",
                           "public_authority": True})
    doc["systems"].append({"id": "registry", "party": "city", "role": "controller",
                           "location": {"country": "IE"}, "data_categories": ["ticket_content"]})
    doc["flows"].append({"id": "from-city", "from": "registry", "to": "desk", "recurring": False,
                         "safeguards": [{"type": "derogation", "article": "49(1)(a)"}]})
    doc["flows"][0]["recurring"] = False
    findings = _run(pack, doc)
    assert {f.subject for f in findings if f.rule == "RES-T005"} == {"from-city"}


def test_a_future_tia_is_an_input_error_naming_the_key(pack: PolicyPack) -> None:
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    doc = _map([dict(VALID, tia={"ref": "T", "date": future})])
    with pytest.raises(InputError) as err:
        parse_map(doc, pack, Path("map.yaml"))
    assert "flows[0](id=to-india).safeguards[0].tia.date" in str(err.value)
    assert "in the future" in str(err.value)


def test_a_bad_date_echoes_the_value(pack: PolicyPack) -> None:
    with pytest.raises(InputError) as err:
        parse_map(_map([dict(VALID, signed="2025-13-01")]), pack, Path("map.yaml"))
    assert "'2025-13-01' is not a date" in str(err.value)
    assert "safeguards[0].signed" in str(err.value)


def test_an_unknown_derogation_condition_is_an_input_error(pack: PolicyPack) -> None:
    sg = {"type": "derogation", "article": "49(1) second subparagraph",
          "conditions": ["authority_informd"]}
    with pytest.raises(InputError) as err:
        parse_map(_map([sg]), pack, Path("map.yaml"))
    assert "did you mean 'authority_informed'" in str(err.value)


def test_new_safeguard_keys_survive_both_loader_paths(pack: PolicyPack) -> None:
    """The fast path and the schema path (taken when any flow of the chunk is unusual)
    build the same safeguard."""
    sg = {"type": "scc", "instrument": "2021/914", "module": 4, "signed": "2025-01-01",
          "combines_eu_data": True, "conditions": ["authority_informed"]}
    fast = parse_map(_map([sg]), pack, Path("m.yaml")).flows[0].safeguards[0]
    # a float module is not the plain record the fast path takes: the schema builds it
    slow = parse_map(_map([dict(sg, module=4.0)]), pack, Path("m.yaml")).flows[0].safeguards[0]
    assert fast == slow
    assert fast.combines_eu_data and fast.conditions == frozenset({"authority_informed"})


# ---------------------------------------------------------------------- pack facts


def test_old_scc_decisions_are_single_sets_concluded_before_2021_09_27(pack: PolicyPack) -> None:
    """2021/914 Art. 4(4); audit 2026-12 rows 1-2."""
    pairs = {"2001/497": ("controller", "controller"), "2004/915": ("controller", "controller"),
             "2010/87": ("controller", "processor")}
    for ins in pack.instruments:
        if ins.id in pairs:
            assert ins.roles == pairs[ins.id] and not ins.modules, ins
            if ins.regime in ("eu_gdpr", "ch_fadp"):
                assert ins.signed_until == dt.date(2021, 9, 26), ins
    swiss = {i.id: i for i in pack.instruments if i.regime == "ch_fadp" and i.id in pairs}
    assert {i.valid_until for i in swiss.values()} == {dt.date(2022, 12, 31)}


def test_uk_extension_needs_both_certifications(pack: PolicyPack) -> None:
    scope = pack.scopes["dpf_certified_uk_extension"]
    assert scope.requires_all == ["eu_us_dpf"] and scope.requires_any == ["uk_extension"]


def test_bcr_authorities_per_regime(pack: PolicyPack) -> None:
    eu, uk, ch = (pack.regimes[r] for r in ("eu_gdpr", "uk_gdpr", "ch_fadp"))
    assert eu.authority("dpc") and eu.authority("CNIL") and not uk.authority("DPC")
    ico = eu.authority("ICO")
    assert ico is not None and ico.until == dt.date(2020, 12, 31)
    assert uk.authority("Information Commissioner") and ch.authority("EDÖB")
    assert len({a.country for a in eu.authorities} - {"GB"}) == 30  # the EU 27 + IS, LI, NO


def test_derogation_grounds_have_their_own_lettering(pack: PolicyPack) -> None:
    by = {(i.id, i.regime): i for i in pack.instruments if i.type == "derogation"}
    eu, uk, ch = by["ART49", "eu_gdpr"], by["ART49", "uk_gdpr"], by["ART17", "ch_fadp"]
    assert eu.articles == uk.articles and len(eu.articles) == 8
    assert "17(1)(b)(2)" in ch.articles and "49(1)(b)" not in ch.articles
    residual = eu.ground("49(1) second subparagraph")
    assert residual is not None and residual.recurring == "error"
    assert not residual.public_authorities and "authority_informed" in residual.conditions
    assert {g.article for g in eu.grounds if not g.public_authorities} == {
        "49(1)(a)", "49(1)(b)", "49(1)(c)", "49(1) second subparagraph"}
    assert {g.article for g in eu.grounds if g.recurring == "warning"} == {
        "49(1)(b)", "49(1)(c)", "49(1)(e)"}
    assert all(g.public_authorities for g in ch.grounds)
