"""Golden SARIF and JUnit files (tests/formats/golden/), normalised for what changes between
releases and machines: the tool version, the policy pack's version and digest, the root.

The goldens pin the formats, not the engine's wording: the reports keep the real systems and
flows (and so the real plan and map files to find lines in) but carry a fixed list of
findings, and the rule catalogue is left out (docs/rules.md, tests/ci/test_rules_doc.py and
tests/formats/test_sarif.py cover it), so a new rule changes no golden file.

A deliberate change to the output: `RESIDENCY_UPDATE_GOLDEN=1 pytest tests/ci`, then review
the diff of the golden files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from residency import __version__
from residency.formats import get_formatter
from residency.formats.sarif import ROOT_ENV
from residency.model import Finding, Report, Severity

from .conftest import FIXTURES, PLAN_MAP, ROOT

GOLDEN = ROOT / "tests" / "formats" / "golden"


def normalise_sarif(text: str) -> str:
    doc = json.loads(text)
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert driver["version"] == driver["semanticVersion"] == __version__
        driver["version"] = driver["semanticVersion"] = "<version>"
        run["originalUriBaseIds"]["%SRCROOT%"]["uri"] = "file:///<root>/"
        pack = run["properties"]["policyPack"]
        pack["version"], pack["digest"] = "<pack version>", "<pack digest>"
        rules = [r["id"] for r in driver["rules"]]
        for result in run["results"]:  # the index is right; it moves when a rule is added
            assert rules[result.pop("ruleIndex")] == result["ruleId"]
        driver["rules"] = "<the rule catalogue: docs/rules.md>"
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def normalise_junit(text: str) -> str:
    return re.sub(r'timestamp="[^"]*"', 'timestamp="<as of>"', text)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RESIDENCY_UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert path.is_file(), f"{path} missing: run with RESIDENCY_UPDATE_GOLDEN=1"
    assert actual == path.read_text(), \
        f"{name} differs from the golden file (RESIDENCY_UPDATE_GOLDEN=1 to accept)"


E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
DPF = "eu-us-dpf-2023-1795"


def _with(report: Report, *findings: Finding) -> Report:
    flows = {f.id for f in report.flows}
    systems = {s.id for s in report.systems}
    for f in findings:  # the fixed findings name real subjects of the report
        assert f.subject_kind not in ("flow", "system") or f.subject in (
            flows if f.subject_kind == "flow" else systems), f.subject
    return replace(report, findings=findings)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch, gate_report: Callable[..., Report]) -> Report:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    report = gate_report(Path("tests/plan/fixtures/aws_modules.json"),
                         map_path=PLAN_MAP.relative_to(ROOT))
    replica = "module.replica.aws_s3_bucket.this[0]"
    copy = "aws_dynamodb_table.sessions/replica/ap-southeast-2"
    return _with(
        report,
        Finding("RES-L002", E, "tokyo holds customer data in JP", "aws_s3_bucket.tokyo",
                "system", countries=("JP",), hint="Move the data."),
        Finding("RES-L001", E, "tokyo: region unknown", "aws_s3_bucket.tokyo", "system"),
        Finding("RES-L002", E, "the replica holds customer data in US", replica, "system",
                countries=("US",)),
        Finding("RES-T002", E, "crm to the replica: outside the DPF's scope",
                f"crm->{replica}", "flow", regime="eu_gdpr", countries=("US",),
                instrument=DPF, hint="Sign SCCs."),
        Finding("RES-T001", E, "sessions copied to Sydney without a basis",
                f"replication:aws_dynamodb_table.sessions->{copy}", "flow", regime="eu_gdpr",
                countries=("AU",)),
        Finding("RES-T004", W, "a derogation for a recurring flow", f"crm->{replica}", "flow",
                regime="eu_gdpr", countries=("US",)),
        Finding("RES-I001", W, "logs have no classification tag",
                "module.archive.aws_s3_bucket.logs", "system", waived=True,
                waiver_reason="accepted by the DPO (SCC-1)"),
        Finding("RES-I002", INFO, "same-entity processing", "crm->aws_s3_bucket.tokyo", "flow",
                regime="eu_gdpr", countries=("JP",)),
        Finding("RES-S001", E, "aws 444455556666 could not be read: AccessDenied",
                "aws:444455556666", "scope"),
    )


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch, check_report: Report) -> Report:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    return _with(
        check_report,
        Finding("RES-L002", E, "helpdesk holds ticket_content in/from IN, US", "helpdesk",
                "system", countries=("IN", "US")),
        Finding("RES-T007", W, "TIA-7 is out of date", "portal-to-helpdesk", "flow",
                regime="eu_gdpr", countries=("IN",), instrument="scc 2021/914 module 2"),
        Finding("RES-P001", W, "evaluated beyond the pack's last check",
                "policy-pack:residency-default", "pack"),
    )


@pytest.fixture
def scan(monkeypatch: pytest.MonkeyPatch, scan_report: Report) -> Report:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    return _with(
        scan_report,
        Finding("RES-L002", E, "the bucket holds ticket_content in US",
                "arn:aws:s3:::tickets-us", "system", countries=("US",)),
        Finding("RES-T002", E, "helpdesk to the bucket: outside the DPF's scope",
                "helpdesk->arn:aws:s3:::tickets-us", "flow", regime="eu_gdpr",
                countries=("US",), instrument=DPF),
        Finding("RES-I001", W, "misc has no classification tag", "arn:aws:s3:::misc",
                "system"),
        Finding("RES-S001", E, "aws 444455556666 could not be read: AccessDenied",
                "aws:444455556666", "scope"),
    )


def test_gate_sarif(gate: Report) -> None:
    check_golden("gate.sarif.json", normalise_sarif(get_formatter("sarif").render(gate)))


def test_check_sarif(check: Report) -> None:
    check_golden("check.sarif.json", normalise_sarif(get_formatter("sarif").render(check)))


def test_gate_junit(gate: Report) -> None:
    check_golden("gate.junit.xml", normalise_junit(get_formatter("junit").render(gate)))


def test_scan_sarif(scan: Report) -> None:
    check_golden("scan.sarif.json", normalise_sarif(get_formatter("sarif").render(scan)))


def test_scan_junit(scan: Report) -> None:
    check_golden("scan.junit.xml", normalise_junit(get_formatter("junit").render(scan)))


def test_goldens_hold_no_machine_paths() -> None:
    for path in GOLDEN.iterdir():
        assert str(ROOT) not in path.read_text(), path
        assert str(FIXTURES.parent) not in path.read_text(), path


def test_golden_junit_is_valid_against_the_xsd() -> None:
    etree = pytest.importorskip("lxml.etree")
    schema = etree.XMLSchema(etree.parse(str(ROOT / "tests/formats/schemas/junit-10.xsd")))
    for name in ("gate.junit.xml", "scan.junit.xml"):
        text = (GOLDEN / name).read_text().replace('"<as of>"', '"2026-11-30T00:00:00"')
        assert schema.validate(etree.fromstring(text.encode())), schema.error_log
