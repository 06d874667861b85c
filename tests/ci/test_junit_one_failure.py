"""JUnit: one `<failure>` per test case (reporters show only the first), every failing
finding of the subject still named in it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from residency.formats import get_formatter
from residency.model import Finding, Report, Severity


def _cases(report: Report) -> list[ET.Element]:
    root = ET.fromstring(get_formatter("junit").render(report))  # noqa: S314 - our output
    return root.findall("./testsuite/testcase")


def test_at_most_one_failure_per_case(scan_report: Report, check_report: Report) -> None:
    for report in (scan_report, check_report):
        for case in _cases(report):
            assert len(case.findall("failure")) <= 1, case.get("name")


def test_every_failing_finding_is_in_the_one_failure(check_report: Report) -> None:
    subject = "helpdesk"
    extra = [
        Finding("RES-T001", Severity.ERROR, "helpdesk: a second problem", subject, "system"),
        Finding("RES-T004", Severity.WARNING, "helpdesk: a warning too", subject, "system"),
        Finding("RES-I002", Severity.INFO, "helpdesk: just a note", subject, "system"),
    ]
    report = replace(check_report, findings=(*check_report.findings, *extra))
    case = next(c for c in _cases(report) if c.get("name") == subject)
    failures = case.findall("failure")
    assert len(failures) == 1
    failure = failures[0]
    # the worst first (errors by rule id), the others counted in the message
    assert failure.get("message", "").startswith("RES-L002: ")
    assert failure.get("message", "").endswith("(+2 more: RES-T001, RES-T004)")
    assert failure.get("type") == "RES-L002/error"
    text = failure.text or ""
    for rule in ("RES-L002", "RES-T001", "RES-T004"):
        assert rule in text
    assert "RES-I002" not in text
    out = case.find("system-out")
    assert out is not None and "RES-I002" in (out.text or "")
