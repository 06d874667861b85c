"""Waivers: a finding accepted for a while, by someone, on a documented basis.

A waiver names the rule and a scope (resource/subject, flow, system, data category,
country), who owns it, why, the SCC/DPA/TIA it rests on and when it expires. A matching,
unexpired waiver marks the finding waived (it no longer counts for the exit code); an
expired one stops suppressing and is reported (RES-W001); one that matches nothing is
reported as stale (RES-W002), so the waivers file cannot rot silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from residency._io import read_document, validate
from residency.errors import InputError
from residency.model import Finding, Report, Severity
from residency.policy.rules import RULES

_SCOPE_KEYS = ("resource", "subject", "flow", "system", "data_category", "country")


class WaiverIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    rule: str = Field(min_length=1)
    resource: str | None = None
    subject: str | None = None
    flow: str | None = None
    system: str | None = None
    data_category: list[str] | None = None
    country: list[str] | None = None
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    expires: dt.date

    @field_validator("data_category", "country", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in RULES and value != "*":
            raise ValueError(f"unknown rule {value!r} (see `residency rules`)")
        return value

    @model_validator(mode="after")
    def _scoped(self) -> WaiverIn:
        if all(getattr(self, k) is None for k in _SCOPE_KEYS):
            raise ValueError(f"give at least one scope key: {', '.join(_SCOPE_KEYS)}")
        return self


class WaiversFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    waivers: list[WaiverIn] = []


@dataclass(frozen=True, slots=True)
class Waiver:
    """One validated waiver; `label` names it in findings (`id` or file position)."""

    label: str
    rule: str
    reason: str
    owner: str
    reference: str
    expires: dt.date
    subject: str | None = None
    resource: str | None = None
    flow: str | None = None
    system: str | None = None
    data_categories: frozenset[str] | None = None
    countries: frozenset[str] | None = None

    def matches(
        self, finding: Finding, categories: frozenset[str] | None, ends: tuple[str, ...] = ()
    ) -> bool:
        """Glob patterns on ids; categories and countries must all be covered.

        `resource` matches the finding's subject or, for a flow, either end of it, so one
        waiver covers a resource and the transfers into it.
        """
        if self.rule not in ("*", finding.rule):
            return False
        if self.subject is not None and not fnmatchcase(finding.subject, self.subject):
            return False
        if self.resource is not None and not any(
            fnmatchcase(x, self.resource) for x in (finding.subject, *ends)
        ):
            return False
        if self.flow is not None and not (
            finding.subject_kind == "flow" and fnmatchcase(finding.subject, self.flow)
        ):
            return False
        if self.system is not None and not (
            finding.subject_kind == "system" and fnmatchcase(finding.subject, self.system)
        ):
            return False
        if self.countries is not None and not (
            finding.countries and set(finding.countries) <= self.countries
        ):
            return False
        return self.data_categories is None or bool(
            categories and categories <= self.data_categories
        )

    def justification(self) -> str:
        return (f"{self.reason} (owner {self.owner}, ref {self.reference}, "
                f"until {self.expires.isoformat()})")


def load_waivers(path: Path) -> tuple[Waiver, ...]:
    raw = read_document(path)
    if isinstance(raw, list):
        raw = {"waivers": raw}
    if not isinstance(raw, dict):
        raise InputError(str(path), None, "a waivers file must be a mapping with `waivers: [...]`")
    doc: WaiversFile = validate(WaiversFile, raw, path)
    out = []
    for i, w in enumerate(doc.waivers):
        out.append(Waiver(
            label=w.id or f"{path.name}#waivers[{i}]",
            rule=w.rule,
            reason=w.reason,
            owner=w.owner,
            reference=w.reference,
            expires=w.expires,
            subject=w.subject,
            resource=w.resource,
            flow=w.flow,
            system=w.system,
            data_categories=frozenset(w.data_category) if w.data_category is not None else None,
            countries=frozenset(w.country) if w.country is not None else None,
        ))
    return tuple(out)


def apply_waivers(
    report: Report, waivers: tuple[Waiver, ...], today: dt.date
) -> tuple[Report, list[Finding]]:
    """Mark findings covered by unexpired waivers; return the report and the waiver findings.

    The returned report already contains the waiver findings (RES-W001 expired, RES-W002
    stale); the list repeats them so callers can show them apart.
    """
    categories: dict[tuple[str, str], frozenset[str]] = {}
    ends: dict[str, tuple[str, ...]] = {}
    for s in report.systems:
        categories[("system", s.id)] = s.data_categories
    for f in report.flows:
        categories[("flow", f.id)] = f.data_categories
        ends[f.id] = (f.source, f.target)
    active = [w for w in waivers if w.expires >= today]
    used: set[str] = set()
    findings: list[Finding] = []
    for finding in report.findings:
        cats = categories.get((finding.subject_kind, finding.subject))
        around = ends.get(finding.subject, ()) if finding.subject_kind == "flow" else ()
        hit = next((w for w in active if w.matches(finding, cats, around)), None)
        if hit is not None:
            used.add(hit.label)
        if hit is not None and not finding.waived:
            findings.append(replace(finding, waived=True, waiver_reason=hit.justification()))
        else:
            findings.append(finding)
    extra: list[Finding] = []
    for w in waivers:
        if w.expires < today:
            extra.append(Finding(
                rule="RES-W001", severity=RULES["RES-W001"].severity,
                message=f"waiver {w.label} for {w.rule} expired on {w.expires.isoformat()} "
                f"(owner {w.owner}, ref {w.reference}); its findings count again",
                subject=w.label, subject_kind="waiver", instrument=w.reference,
                hint="renew the review and extend `expires`, or delete the waiver",
            ))
        elif w.label not in used:
            extra.append(Finding(
                rule="RES-W002", severity=RULES["RES-W002"].severity,
                message=f"waiver {w.label} for {w.rule} matches no finding (owner {w.owner}); "
                "delete it or fix its scope",
                subject=w.label, subject_kind="waiver", instrument=w.reference,
            ))
    return replace(report, findings=tuple(sort_findings([*findings, *extra]))), extra


_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """The engine's order: severity, rule, subject, regime."""
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.rule, f.subject, f.regime or ""))
