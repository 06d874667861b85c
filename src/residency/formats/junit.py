"""JUnit XML for CI test reports (GitLab `artifacts:reports:junit`, Jenkins, Azure DevOps).

One test case per system and per flow: it fails when an error or warning finding is on it,
is skipped when every finding on it is waived, and passes otherwise. Findings on anything else
(a coverage gap, a waiver) get a test case of their own. A failing case has exactly one
`<failure>`: JUnit allows one, and GitLab, Jenkins and Azure DevOps show only the first, so
the worst finding is its message and every failing finding is in its text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from residency.formats.interface import Formatter
from residency.model import Finding, Report, Severity

_FAILING = (Severity.ERROR, Severity.WARNING)


class JunitFormatter(Formatter):
    suffix = ".xml"

    def render(self, report: Report) -> str:
        by_subject: dict[tuple[str, str], list[Finding]] = defaultdict(list)
        for f in report.findings:
            by_subject[(f.subject_kind, f.subject)].append(f)
        cases: list[tuple[str, str]] = [("system", s.id) for s in report.systems]
        cases += [("flow", f.id) for f in report.flows]
        known = set(cases)
        cases += sorted(k for k in by_subject if k not in known)
        root = ET.Element("testsuites", name="residency")
        suites: dict[str, ET.Element] = {}
        totals = {"tests": 0, "failures": 0, "errors": 0}  # <testsuites> has no `skipped`
        for kind, subject in cases:
            suite = suites.get(kind)
            if suite is None:
                suite = suites[kind] = ET.SubElement(
                    root, "testsuite", name=f"residency.{kind}",
                    timestamp=f"{report.as_of.isoformat()}T00:00:00",
                )
                suite.set("tests", "0")
                suite.set("failures", "0")
                suite.set("errors", "0")
                suite.set("skipped", "0")
            _case(suite, kind, subject, by_subject.get((kind, subject), []))
        for suite in suites.values():
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
        for key, value in totals.items():
            root.set(key, str(value))
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
            root, encoding="unicode"
        ) + "\n"


def _bump(suite: ET.Element, key: str) -> None:
    suite.set(key, str(int(suite.get(key, "0")) + 1))


def _case(suite: ET.Element, kind: str, subject: str, findings: list[Finding]) -> None:
    case = ET.SubElement(suite, "testcase", classname=f"residency.{kind}", name=subject)
    case.set("time", "0")
    _bump(suite, "tests")
    failing = [f for f in findings if not f.waived and f.severity in _FAILING]
    waived = [f for f in findings if f.waived]
    if failing:
        failing.sort(key=lambda f: (-f.severity.rank, f.rule, f.regime or ""))
        worst = failing[0]
        more = f" (+{len(failing) - 1} more: {', '.join(f.rule for f in failing[1:])})" \
            if len(failing) > 1 else ""
        el = ET.SubElement(case, "failure", message=f"{worst.rule}: {worst.message}{more}",
                           type=f"{worst.rule}/{worst.severity.value}")
        el.text = "\n\n".join(_details(f) for f in failing)
        _bump(suite, "failures")
    elif waived and len(waived) == len(findings):
        ET.SubElement(case, "skipped", message="; ".join(
            f"{f.rule} waived: {f.waiver_reason or 'waived'}" for f in waived
        ))
        _bump(suite, "skipped")
    notes = [f for f in findings if f not in failing]
    if notes:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            f"{f.severity.value} {f.rule}{' (waived: ' + (f.waiver_reason or '') + ')' if f.waived else ''}: {f.message}"  # noqa: E501
            for f in notes
        )


def _details(f: Finding) -> str:
    lines = [f"{f.rule} ({f.severity.value}): {f.message}"]
    if f.regime:
        lines.append(f"regime: {f.regime}")
    if f.countries:
        lines.append(f"countries: {', '.join(f.countries)}")
    if f.instrument:
        lines.append(f"instrument: {f.instrument}")
    if f.hint:
        lines.append(f"hint: {f.hint}")
    lines.append(f"fingerprint: {f.fingerprint}")
    return "\n".join(lines)
