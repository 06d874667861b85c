"""The demo map plus the Art. 30 sections of fixtures/servicedesk-processing.yaml, evaluated."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from residency.datamap import parse_map
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports._common import collect_parties, graph_of

from .support import AS_OF, MAP, ROOT, Run

FIXTURE = Path(__file__).parent / "fixtures" / "servicedesk-processing.yaml"


@functools.cache
def _base() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / MAP).read_text(encoding="utf-8"))
    doc.update(yaml.safe_load(FIXTURE.read_text(encoding="utf-8")))
    return doc


def processing_doc() -> dict[str, Any]:
    """A fresh copy of the merged map document (tests edit it)."""
    return copy.deepcopy(_base())


def run_of(doc: dict[str, Any], pack: PolicyPack) -> Run:
    datamap = parse_map(doc, pack, Path("residency.yaml"))
    report = Engine(pack, EngineOptions(AS_OF)).run(datamap)
    parties = collect_parties(report, pack, datamap)
    return Run(pack, datamap, report, parties, graph_of(report, parties))


def write_map(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


SYSTEMS = ["customer-portal", "uk-portal", "ch-crm", "helpdesk", "email-delivery", "ai-chat",
           "analytics", "l2-support", "overflow-support", "group-archive"]
CATEGORIES = ["attachments", "contact_details", "ticket_content"]


@st.composite
def estates(draw: st.DrawFn) -> dict[str, Any]:
    """The demo map with extra flows between its systems and random activities. Two
    relays in Frankfurt (no transfer of their own: the exporter's group holds them) can
    sit between systems, so some activities' data reach transfers only through them."""
    doc = processing_doc()
    doc["systems"] += [{"id": f"relay-{i}", "party": "acme-ie", "role": "controller",
                        "location": {"provider": "aws", "region": "eu-central-1"}}
                       for i in range(2)]
    doc["flows"] += [{"id": "relay-1-0", "from": "relay-1", "to": "relay-0"},
                     {"id": "relay-0-portal", "from": "relay-0", "to": "customer-portal"}]
    system = st.sampled_from([*SYSTEMS, "relay-0", "relay-1"])
    cats = st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True)
    for k, (a, b, c) in enumerate(draw(st.lists(st.tuples(system, system, cats),
                                                max_size=8))):
        flow: dict[str, Any] = {"id": f"extra-{k}", "from": a, "to": b}
        if c:
            flow["data_categories"] = c
        doc["flows"].append(flow)
    for act in doc["processing"]:
        act["systems"] = draw(st.lists(system, min_size=1, max_size=3, unique=True))
        act["data_categories"] = draw(cats)
    return doc
