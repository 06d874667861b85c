"""JUnit XML: a test case per system and per flow; failures, skips and the XSD shape."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from residency.formats import get_formatter
from residency.model import Report, Severity

from .conftest import SCHEMAS


@pytest.fixture(scope="module")
def xml_text(plan_report: Report) -> str:
    return get_formatter("junit").render(plan_report)


def test_structure(xml_text: str, plan_report: Report) -> None:
    root = ET.fromstring(xml_text)  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    for s in plan_report.systems:
        assert ("residency.system", s.id) in names
    for f in plan_report.flows:
        assert ("residency.flow", f.id) in names
    assert int(root.get("tests", "0")) == len(cases)
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests", "0")) == len(suite.findall("testcase"))
        assert int(suite.get("failures", "0")) == len(suite.findall("testcase[failure]"))
        assert int(suite.get("skipped", "0")) == len(suite.findall("testcase[skipped]"))


def test_failures_and_skips(xml_text: str, plan_report: Report) -> None:
    root = ET.fromstring(xml_text)  # noqa: S314 - our own output
    failing = [f for f in plan_report.findings
               if not f.waived and f.severity in (Severity.ERROR, Severity.WARNING)]
    failures = root.findall(".//failure")
    # one <failure> per failing subject (JUnit allows one per case), naming every rule
    assert len(failures) == len({(f.subject_kind, f.subject) for f in failing})
    named = {r for el in failures for r in re.findall(r"RES-[A-Z]\d{3}", el.get("message", ""))}
    assert named == {f.rule for f in failing}
    waived = next(f for f in plan_report.findings if f.waived)
    case = next(c for c in root.iter("testcase") if c.get("name") == waived.subject)
    if case.find("failure") is None:
        skipped = case.find("skipped")
        assert skipped is not None and "accepted by the DPO" in skipped.get("message", "")


def test_valid_against_the_junit_xsd(xml_text: str) -> None:
    etree = pytest.importorskip("lxml.etree")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "junit-10.xsd")))
    doc = etree.fromstring(xml_text.encode())
    assert schema.validate(doc), schema.error_log
