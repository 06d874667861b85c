"""Facts the scan and the map know reach the TIA draft: special categories (Art. 9/10) and
the encryption keys a collector read (EDPB Recommendations 01/2020, step 4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from residency.datamap import parse_map
from residency.model import Inventory, KeyRef
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports._common import collect_parties, graph_of
from residency.reports.tia import build_tia, render_markdown

MAP = {
    "version": 1,
    "data_categories": {"clinical_notes": {"special": "art9"}},
    "parties": [{"id": "acme", "name": "Acme", "country": "IE"},
                {"id": "vendor", "name": "Vendor Inc.", "country": "US"}],
    "systems": [
        {"id": "portal", "party": "acme", "role": "controller", "location": {"country": "IE"},
         "data_categories": ["contact_details", "health_data", "clinical_notes"]},
        {"id": "desk", "party": "vendor", "role": "processor",
         "location": {"country": "US"}},
    ],
    "flows": [{"id": "to-us", "from": "portal", "to": "desk", "safeguards": [
        {"type": "scc", "instrument": "2021/914", "module": 2, "signed": "2025-01-01",
         "tia": {"ref": "T", "date": "2026-06-01"}}]}],
}


def _draft(pack: PolicyPack, inventories: list[Inventory] | None = None) -> str:
    datamap = parse_map(MAP, pack, Path("m.yaml"))
    report = Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(datamap, inventories or [])
    docs = build_tia(report, pack, graph_of(report, collect_parties(report, pack, datamap)))
    return "\n".join(render_markdown(d) for d in docs)


def test_special_categories_reach_the_draft(pack: PolicyPack) -> None:
    text = _draft(pack)
    assert "Special categories: clinical_notes (GDPR Art. 9), health_data (GDPR Art. 9)" in text
    assert "DPIA" in text


def test_key_facts_reach_step_4(pack: PolicyPack) -> None:
    from residency.collectors.interface import CollectContext, resource_system

    key = KeyRef(key="alias/tickets", arn="arn:aws:kms:us-east-1:1:key/k", region="us-east-1",
                 multi_region=True, replica_regions=("eu-west-1",), origin="AWS_KMS",
                 key_manager="CUSTOMER")
    doc = dict(MAP, classification={"values": {"tickets": {
        "data_categories": ["contact_details"], "fed_by": "portal"}}})
    datamap = parse_map(doc, pack, Path("m.yaml"))
    bucket, fed = resource_system(
        provider="aws", resource_id="arn:aws:s3:::tickets", name="tickets", account="1",
        regions=["us-east-1"], tags={"data-classification": "tickets"},
        ctx=CollectContext(datamap.classification))
    assert bucket is not None
    scc = datamap.flows[0].safeguards  # the bucket's feed relies on SCCs too: a TIA is due
    report = Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(
        datamap, [Inventory((replace(bucket, keys=(key,)),),
                            tuple(replace(f, safeguards=scc) for f in fed), ())])
    docs = build_tia(report, pack, graph_of(report, collect_parties(report, pack, datamap)))
    text = "\n".join(render_markdown(d) for d in docs)
    assert "arn:aws:kms:us-east-1:1:key/k" in text and "machine-verified" in text
    assert "held in eu-west-1 (IE), us-east-1 (US)" in text  # regions with their countries
