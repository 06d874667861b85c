"""A sub-processor that appears between two recorded runs is new in `residency diff`."""

from __future__ import annotations

from pathlib import Path

from residency.collectors.interface import CollectContext
from residency.collectors.saas.collector import SubprocessorSource
from residency.demo.fake_saas import FakeSaas, hubspot_details
from residency.history.diff import diff, render_text
from residency.history.store import Store
from residency.model import DataMap
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

from .conftest import TODAY, Make

V1 = """\
vendor: hubspot
retrieved: {day}
source: https://legal.hubspot.com/sub-processors-page
subprocessors:
  - {{name: "Amazon Web Services, Inc.", countries: [US], purpose: "Hosting"}}
"""
V2 = V1 + "  - {{name: \"SupportPro Services Pvt Ltd\", countries: [IN], purpose: \"Support\"}}\n"


def test_new_subprocessor_is_new_in_diff(fake: FakeSaas, make: Make, ctx: CollectContext,
                                         datamap: DataMap, pack: PolicyPack,
                                         tmp_path: Path) -> None:
    fake.hubspot["t"] = hubspot_details(9, "eu1")
    fake.lists["hubspot.yaml"] = V1.format(day="2026-10-01").encode()
    url = f"{fake.url}/lists/hubspot.yaml"
    engine = Engine(pack, EngineOptions(TODAY, today=TODAY))
    collector = make((("hubspot", "9"),), {"hubspot": "t"},
                     subprocessors=[SubprocessorSource("hubspot", url)])
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}") as store:
        first = store.record(engine.run(datamap, [collector.collect(ctx)]), command="scan",
                             scope="scan:saas")
        fake.lists["hubspot.yaml"] = V2.format(day="2026-11-20").encode()
        second = store.record(engine.run(datamap, [collector.collect(ctx)]), command="scan",
                              scope="scan:saas")
        d = diff(store, first, second)
        before = {s.id for s in store.load_inventory(first).systems}
        after = {s.id for s in store.load_inventory(second).systems}
    new_id = "saas:hubspot:subprocessor:supportpro-services-pvt-ltd"
    assert after - before == {new_id}  # the stable id: only the new one is new
    assert [(r.importer, r.country) for r in d.new_transfers] == [(new_id, "IN")]
    assert not d.resolved_transfers
    assert ("ticket_content", ("IN",)) in d.new_third_countries
    assert new_id in render_text(d)
