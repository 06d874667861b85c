"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

Every rule of the catalogue is listed once; each finding is a result pointing at the
resource address, flow or system (a logical location) and, when the system came from a
file (a plan or the map), at that file. Waived findings stay in the log as suppressed.
"""

from __future__ import annotations

import json
from typing import Any

from residency import __version__
from residency.formats.interface import Formatter
from residency.model import Finding, Report, Severity
from residency.policy.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_KIND = {"system": "resource", "flow": "resource", "location": "resource", "scope": "namespace",
         "waiver": "object"}
INFO_URI = "https://github.com/residency/residency"


def _rules() -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "name": "".join(w.capitalize() for w in r.title.replace("-", " ").split()
                            if w.isalnum()),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.rationale},
            "help": {
                "text": f"{r.remediation} ({r.article})",
                "markdown": f"**{r.title}** ({r.article})\n\n{r.rationale}\n\n"
                f"**Fix:** {r.remediation}\n\nSource: {r.source}",
            },
            "helpUri": f"{INFO_URI}/blob/main/docs/rules.md#{r.id.lower()}",
            "defaultConfiguration": {"level": _LEVEL[r.severity]},
            "properties": {"tags": ["gdpr", "data-residency"], "article": r.article},
        }
        for r in RULES.values()
    ]


class SarifFormatter(Formatter):
    suffix = ".sarif"

    def render(self, report: Report) -> str:
        files: dict[str, str] = {}
        for s in report.systems:
            if s.source_file:
                files[s.id] = s.source_file
        for f in report.flows:
            origin = files.get(f.target) or files.get(f.source)
            if origin:
                files.setdefault(f.id, origin)
        rules = _rules()
        index = {r["id"]: i for i, r in enumerate(rules)}
        doc = {
            "$schema": SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "residency",
                            "version": __version__,
                            "semanticVersion": __version__,
                            "informationUri": INFO_URI,
                            "rules": rules,
                        }
                    },
                    "automationDetails": {"id": f"residency/{report.as_of.isoformat()}"},
                    "results": [_result(f, index, files, report.map_source)
                                for f in report.findings],
                    "properties": {
                        "asOf": report.as_of.isoformat(),
                        "policyPack": {"name": report.pack.name, "version": report.pack.version,
                                       "digest": report.pack.digest},
                    },
                }
            ],
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def _result(
    f: Finding, index: dict[str, int], files: dict[str, str], fallback: str | None
) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [
            {"fullyQualifiedName": f.subject, "kind": _KIND.get(f.subject_kind, "resource")}
        ]
    }
    uri = files.get(f.subject) or fallback  # code-scanning UIs need a file to show
    if uri:
        location["physicalLocation"] = {"artifactLocation": {"uri": uri.replace("\\", "/")}}
    message = f.message + (f" — {f.hint}" if f.hint else "")
    out: dict[str, Any] = {
        "ruleId": f.rule,
        "level": _LEVEL[f.severity],
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": {"residencyFingerprint/v1": f.fingerprint},
        "properties": {"subjectKind": f.subject_kind},
    }
    if f.rule in index:
        out["ruleIndex"] = index[f.rule]
    if f.regime:
        out["properties"]["regime"] = f.regime
    if f.countries:
        out["properties"]["countries"] = list(f.countries)
    if f.instrument:
        out["properties"]["instrument"] = f.instrument
    if f.waived:
        out["suppressions"] = [
            {"kind": "external", "status": "accepted",
             "justification": f.waiver_reason or "waived"}
        ]
    return out
