"""Every rule's pass/fail cases (tests/rules/<ID>.yaml), run by one parametrised test."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from residency.collectors.interface import CollectContext, replication_flow, resource_system
from residency.datamap import parse_map
from residency.model import Classification, ClassificationValue, CoverageGap, Inventory
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.policy.rules import RULES

RULE_DIR = Path(__file__).parent / "rules"
AS_OF = dt.date(2026, 11, 30)


def _cases() -> list[Any]:
    out = []
    for path in sorted(RULE_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for case in doc["cases"]:
            out.append(pytest.param(doc["rule"], case, id=f"{doc['rule']}: {case['name']}"))
    return out


def _inventory(case: dict[str, Any]) -> Inventory:
    systems = []
    for item in case.get("collected", []):
        # `tag_value` is the tag as the cloud reports it (default: the harness's value `x`)
        tag = {"data-classification": item.get("tag_value", "x")} if item.get("classified") else {}
        tag |= item.get("tags", {})  # other tags a collector sets (RES-S002's evidence tag)
        ctx = CollectContext(
            Classification(
                "data-classification",
                (("x", ClassificationValue(frozenset(item.get("data_categories", [])))),),
            )
        )
        system, _ = resource_system(
            provider=item["provider"], resource_id=item["id"], name=item["id"], account="1",
            regions=[item["region"]], tags=tag, ctx=ctx,
        )
        assert system is not None
        if "pending" in item:  # a planned resource whose classification is known at apply
            system = replace(system, pending=item["pending"])
        if "keys" in item:  # System.keys as a collector records them (RES-K001/K002)
            from residency.model import KeyRef

            system = replace(system, keys=tuple(
                KeyRef(**{**k, "replica_regions": tuple(k.get("replica_regions", ()))})
                for k in item["keys"]))
        systems.append(system)
    gaps = tuple(CoverageGap(**g) for g in case.get("gaps", []))
    by_id = {s.id: s for s in systems}
    flows = tuple(replication_flow(by_id[f["source"]], f["target"])
                  for f in case.get("collected_flows", []))
    return Inventory(tuple(systems), flows, gaps)


@pytest.mark.parametrize(("rule_id", "case"), _cases())
def test_rule_case(rule_id: str, case: dict[str, Any], pack: PolicyPack) -> None:
    rule_id = case.get("rule", rule_id)
    datamap = parse_map(case["map"], pack, Path(f"{rule_id}.yaml"))
    as_of = case.get("as_of", AS_OF)
    report = Engine(pack, EngineOptions(as_of)).run(datamap, [_inventory(case)])
    hits = [f for f in report.findings if f.rule == rule_id]
    if case["expect"] == "pass":
        assert hits == [], [f.message for f in hits]
        return
    assert hits, f"{rule_id} did not fire; findings: {[f.rule for f in report.findings]}"
    finding = hits[0]
    assert finding.severity == RULES[rule_id].severity
    if "subject" in case:
        assert any(f.subject == case["subject"] for f in hits), [f.subject for f in hits]
    if "regime" in case:
        assert any(f.regime == case["regime"] for f in hits), [f.regime for f in hits]
    if "countries" in case:
        assert any(list(f.countries) == case["countries"] for f in hits), [
            f.countries for f in hits
        ]
    if "instrument" in case:
        assert any(f.instrument == case["instrument"] for f in hits), [
            f.instrument for f in hits
        ]
    if "message_contains" in case:
        assert any(case["message_contains"] in f.message for f in hits), [
            f.message for f in hits
        ]
    assert finding.hint, "every finding carries a remediation hint"


def test_every_rule_has_pass_and_fail_cases() -> None:
    seen: dict[str, set[str]] = {}
    for path in RULE_DIR.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        for case in doc["cases"]:
            seen.setdefault(case.get("rule", doc["rule"]), set()).add(case["expect"])
    core = {r for r in RULES if not r.startswith("RES-W")}
    missing = {r for r in core if seen.get(r) != {"pass", "fail"}}
    assert not missing, f"rules without both pass and fail cases: {sorted(missing)}"
