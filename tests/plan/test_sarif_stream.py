"""The gate's SARIF is encoded result by result and streamed: the text must be exactly what
`json.dumps` writes for the same log, whatever the strings hold."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from residency.formats.sarif import SarifFormatter
from residency.model import Finding, Location, PackInfo, Report, Role, Severity, System

TODAY = dt.date(2026, 11, 30)
ODD = ['quote " and \\ backslash', "nul \x00residency:results\x00 nul", "line\nbreak\ttab",
       "Zürich – 東京 😀", "</script>&<", ""]


def _report(findings: tuple[Finding, ...], plan: Path) -> Report:
    bucket = System('aws_s3_bucket.b["a\\"b"]', "aws", Role.PROCESSOR,
                    Location(provider="aws", regions=("us-east-1",)), frozenset({"contact"}),
                    source_file=str(plan))
    return Report(TODAY, PackInfo('pack "x"', "1", TODAY, "d"), (bucket,), (), (), (), findings)


def _findings(n: int) -> tuple[Finding, ...]:
    out = []
    for i in range(n):
        odd = ODD[i % len(ODD)]
        out.append(Finding(
            "RES-T001" if i % 3 else "RES-X999", Severity.ERROR if i % 2 else Severity.INFO,
            f"message {odd}", 'aws_s3_bucket.b["a\\"b"]' if i % 4 else f"flow {odd}",
            ("system", "flow", "scope", "odd-kind")[i % 4], None if i % 5 == 0 else f"r {odd}",
            tuple(["US", "CN"][: i % 3]), None if i % 2 else odd, odd or None, bool(i % 2),
            None if i % 4 == 1 else f"reason {odd}",
        ))
    return tuple(out)


@pytest.mark.parametrize("n", [0, 1, 7, 2500])
def test_streamed_log_is_canonical_json(n: int, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"address":"aws_s3_bucket.b[\\"a\\\\\\"b\\"]"}\n')
    report = _report(_findings(n), plan)
    text = SarifFormatter().render(report)
    doc = json.loads(text)
    assert text == json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
    stream = io.StringIO()
    SarifFormatter().write(report, stream)
    assert stream.getvalue() == text
    results = doc["runs"][0]["results"]
    assert len(results) == n
    for f, r in zip(report.findings, results, strict=True):
        assert r["ruleId"] == f.rule
        assert r["message"]["text"] == f.message + (f" — {f.hint}" if f.hint else "")
        assert r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == f.subject
        assert r["partialFingerprints"]["residencyFingerprint/v1"] == f.fingerprint
        assert r["properties"].get("regime") == (f.regime or None)
        assert r["properties"].get("countries", []) == list(f.countries)
        assert r["properties"].get("instrument") == (f.instrument or None)
        assert ("ruleIndex" in r) == (f.rule != "RES-X999")
        if f.waived:
            assert r["suppressions"][0]["justification"] == (f.waiver_reason or "waived")
        else:
            assert "suppressions" not in r
    if n > 1:  # the planned resource's address is found in the plan, escapes and all
        by_subject = [r for r in results if r["locations"][0]["logicalLocations"][0]
                      ["fullyQualifiedName"] == report.systems[0].id]
        assert by_subject[0]["locations"][0]["physicalLocation"]["region"] == {
            "startLine": 1, "startColumn": 2}
