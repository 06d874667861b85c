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


# ---------------------------------------------------------------- one verdict, each flow's values
def _two_flows(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    doc = _map([first])
    doc["systems"].append({"id": "desk2", "party": "vendor", "role": "processor",
                           "location": {"country": "PH"}})
    doc["flows"].append({"id": "to-ph", "from": "portal", "to": "desk2", "safeguards": [second]})
    return doc


def test_a_shared_verdict_quotes_each_flows_own_dates(pack: PolicyPack) -> None:
    """Two contracts signed on different days after the evaluation date share one verdict
    (both fall in the same period), and each message still names its own date, country and
    TIA reference."""
    a = {**VALID, "signed": "2027-01-05", "tia": {"ref": "TIA-A", "date": "2024-01-01"}}
    b = {**VALID, "signed": "2027-03-09", "tia": {"ref": "TIA-B", "date": "2024-02-02"}}
    findings = _run(pack, _two_flows(a, b))
    t005 = {f.subject: f for f in findings if f.rule == "RES-T005"}
    assert "signed 2027-01-05, after the evaluation date" in t005["to-india"].message
    assert "signed 2027-03-09, after the evaluation date" in t005["to-ph"].message
    assert t005["to-india"].countries == ("IN",)
    assert t005["to-ph"].countries == ("IN", "PH")  # the vendor is established in IN
    assert "\x00" not in "".join(f.message for f in findings)


def test_tia_message_names_the_tia_whose_date_it_quotes(pack: PolicyPack) -> None:
    """An old TIA beside one dated after the evaluation date: the message quotes the old
    one's date and its own reference (not the newer one's)."""
    sg = {**VALID, "tia": {"ref": "OLD-TIA", "date": "2024-01-01"}}
    later = {"type": "uk_addendum", "signed": "2025-01-01",
             "tia": {"ref": "LATER-TIA", "date": "2025-09-01"}}
    doc = _map([sg, later])
    t007 = [f for f in _run(pack, doc, dt.date(2025, 6, 1)) if f.rule == "RES-T007"]
    assert t007 and "TIA OLD-TIA dated 2024-01-01" in t007[0].message, [f.message for f in t007]


def test_transfers_carry_their_special_categories(pack: PolicyPack) -> None:
    """Art. 9 data change no Chapter V basis, but the register and the TIA need them per
    transfer (Transfer.special_categories; Report.special_categories for the whole map)."""
    doc = _map([VALID])
    doc["systems"][0]["data_categories"] = ["ticket_content", "health_data"]
    report = Engine(pack, EngineOptions(AS_OF)).run(parse_map(doc, pack, Path("map.yaml")))
    (transfer,) = report.transfers
    assert transfer.special_categories == ("health_data",)
    assert transfer.data_categories == ("health_data", "ticket_content")


def test_flow_graph_refuses_queries_before_propagation(pack: PolicyPack) -> None:
    """Asking what a system holds before propagate() is a programming error, not an answer
    from the declared categories alone."""
    from residency.graph import FlowGraph, NotPropagatedError

    datamap = parse_map(_map([VALID]), pack, Path("map.yaml"))
    graph = FlowGraph(datamap.parties, datamap.systems, datamap.flows)
    with pytest.raises(NotPropagatedError):
        graph.categories_held("desk")
    with pytest.raises(NotPropagatedError):
        graph.carried_regimes("desk", frozenset({"ticket_content"}))
    graph.propagate({s.id: frozenset({"eu_gdpr"}) for s in datamap.systems})
    assert graph.categories_held("desk") == frozenset({"ticket_content"})


def test_the_verdict_cache_keys_on_outcomes_not_raw_dates(pack: PolicyPack) -> None:
    """Forty flows with forty different signing and TIA dates, all valid on the evaluation
    date, to India: one verdict serves them all."""
    doc = _map([VALID])
    doc["flows"] = []
    for i in range(40):
        doc["systems"].append({"id": f"d{i}", "party": "vendor", "role": "processor",
                               "location": {"country": "IN"}})
        doc["flows"].append({"id": f"f{i}", "from": "portal", "to": f"d{i}", "safeguards": [
            {**VALID, "signed": f"2025-0{1 + i % 9}-1{i % 10}",
             "tia": {"ref": f"T{i}", "date": f"2026-0{1 + i % 9}-0{1 + i % 9}"}}]})
    engine = Engine(pack, EngineOptions(AS_OF))
    calls: list[object] = []
    original = engine._verdict

    def counting(case: Any) -> Any:
        calls.append(case)
        return original(case)

    engine._verdict = counting  # type: ignore[method-assign]
    report = engine.run(parse_map(doc, pack, Path("map.yaml")))
    assert len(report.transfers) == 40 and all(t.lawful for t in report.transfers)
    assert len(calls) == 1
