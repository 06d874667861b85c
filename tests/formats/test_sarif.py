"""SARIF 2.1.0: valid against the OASIS schema, one rule entry per rule, suppressions kept."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from residency.formats import get_formatter
from residency.model import Report
from residency.policy.rules import RULES

from .conftest import SCHEMAS


@pytest.fixture(scope="module")
def sarif(plan_report: Report) -> dict[str, Any]:
    return dict(json.loads(get_formatter("sarif").render(plan_report)))


def test_valid_against_the_sarif_schema(sarif: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)


def test_rules(sarif: dict[str, Any]) -> None:
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    for r in rules:
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["help"]["text"] and r["helpUri"].startswith("https://")
        assert r["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in rules}
    assert levels["RES-T001"] == "error" and levels["RES-I002"] == "note"


def test_results(sarif: dict[str, Any], plan_report: Report) -> None:
    results = sarif["runs"][0]["results"]
    assert len(results) == len(plan_report.findings)
    by_fp = {r["partialFingerprints"]["residencyFingerprint/v1"]: r for r in results}
    for f in plan_report.findings:
        r = by_fp[f.fingerprint]
        assert r["ruleId"] == f.rule
        assert r["level"] == {"error": "error", "warning": "warning", "info": "note"}[
            f.severity.value]
        loc = r["locations"][0]
        assert loc["logicalLocations"][0]["fullyQualifiedName"] == f.subject
    planned = [r for r in results if r["locations"][0]["logicalLocations"][0][
        "fullyQualifiedName"] == "module.replica.aws_s3_bucket.this[0]"]
    assert planned
    uri = planned[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("aws_modules.json")


def test_waived_findings_are_suppressed(sarif: dict[str, Any]) -> None:
    suppressed = [r for r in sarif["runs"][0]["results"] if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "accepted by the DPO (SCC-1)"}
    ]
