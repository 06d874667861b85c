"""Waivers: a finding accepted for a while, by someone, on a documented basis.

A waiver names the rule and a scope (resource/subject, flow, system, data category,
country), who owns it, why, the SCC/DPA/TIA it rests on and when it expires. A matching,
unexpired waiver marks the finding waived (it no longer counts for the exit code); an
expired one stops suppressing and is reported (RES-W001); one that matches nothing is
reported as stale (RES-W002), so the waivers file cannot rot silently. A waiver that lives
longer than `max_life_days`, or that would silence a fail-closed rule (RES-S001, RES-L001)
with a pattern without `allow_fail_closed: true`, suppresses nothing and is reported
(RES-W003). Expiry and life are judged on the real date, never on `--as-of` alone.
"""

from __future__ import annotations

import datetime as dt
import difflib
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
_ID_KEYS = ("subject", "resource", "flow", "system")
_GLOB = frozenset("*?[")

DEFAULT_MAX_LIFE_DAYS = 365
FAIL_CLOSED_RULES = frozenset({"RES-S001", "RES-L001"})
"""Rules that mean "unknown, so not passed": only a waiver naming the finding exactly, or one
that says `allow_fail_closed: true`, may accept them."""


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
    allow_fail_closed: bool = False

    @field_validator("data_category", "country", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in RULES and value != "*":
            close = difflib.get_close_matches(value.upper(), RULES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown rule {value!r}{hint} (see `residency rules`)")
        return value

    @model_validator(mode="after")
    def _scoped(self) -> WaiverIn:
        if all(getattr(self, k) is None for k in _SCOPE_KEYS):
            raise ValueError(f"give at least one scope key: {', '.join(_SCOPE_KEYS)}")
        return self


class WaiversFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    max_life_days: int = Field(default=DEFAULT_MAX_LIFE_DAYS, ge=1, le=3650)  # ten years at most
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
    allow_fail_closed: bool = False
    max_life_days: int = DEFAULT_MAX_LIFE_DAYS

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

    def may_waive(self, finding: Finding) -> bool:
        """A fail-closed finding is only accepted by name (exact rule and ids) or explicitly.

        A pattern written for ordinary findings must not also swallow tomorrow's coverage
        gap or unknown region.
        """
        if finding.rule not in FAIL_CLOSED_RULES or self.allow_fail_closed:
            return True
        ids = [v for v in (getattr(self, k) for k in _ID_KEYS) if v is not None]
        return self.rule == finding.rule and bool(ids) and not any(
            _GLOB & set(v) for v in ids
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
    _refuse_duplicates(doc.waivers, path)
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
            allow_fail_closed=w.allow_fail_closed,
            max_life_days=doc.max_life_days,
        ))
    return tuple(out)


def _refuse_duplicates(waivers: list[WaiverIn], path: Path) -> None:
    """Two waivers with one id, or with one rule and scope, leave it unclear which holds."""
    ids: dict[str, int] = {}
    scopes: dict[tuple[object, ...], int] = {}
    for i, w in enumerate(waivers):
        if w.id is not None:
            if w.id in ids:
                raise InputError(str(path), f"waivers[{i}].id", f"duplicate id {w.id!r} (also "
                                 f"waivers[{ids[w.id]}]); give each waiver its own id")
            ids[w.id] = i
        scope = (w.rule, *(getattr(w, k) for k in _ID_KEYS),
                 *(None if v is None else frozenset(v) for v in (w.data_category, w.country)))
        if scope in scopes:
            raise InputError(str(path), f"waivers[{i}]", f"duplicate of waivers[{scopes[scope]}] "
                             "(same rule and scope); keep one and delete the other")
        scopes[scope] = i


def apply_waivers(
    report: Report, waivers: tuple[Waiver, ...], today: dt.date | None = None
) -> tuple[Report, list[Finding]]:
    """Mark findings covered by accepted waivers; return the report and the waiver findings.

    `today` is the real date (default `dt.date.today()`; tests pass one): a waiver expired
    today stays expired whatever `--as-of` says, and one expired by a later `--as-of` is
    expired too. The returned report already contains the waiver findings (RES-W001 expired,
    RES-W002 stale, RES-W003 not accepted); the list repeats them so callers can show them.
    """
    today = today or dt.date.today()
    cutoff = max(today, report.as_of)
    categories: dict[tuple[str, str], frozenset[str]] = {}
    ends: dict[str, tuple[str, ...]] = {}
    for s in report.systems:
        categories[("system", s.id)] = s.data_categories
    for f in report.flows:
        categories[("flow", f.id)] = f.data_categories
        ends[f.id] = (f.source, f.target)
    expired = {w.label for w in waivers if w.expires < cutoff}
    too_long = {w.label for w in waivers if w.label not in expired
                and w.expires > today + dt.timedelta(days=w.max_life_days)}
    active = [w for w in waivers if w.label not in expired | too_long]
    used: set[str] = set()
    refused: dict[str, list[Finding]] = {}
    findings: list[Finding] = []
    for finding in report.findings:
        cats = categories.get((finding.subject_kind, finding.subject))
        around = ends.get(finding.subject, ()) if finding.subject_kind == "flow" else ()
        hit = None
        for w in active:
            if not w.matches(finding, cats, around):
                continue
            if not w.may_waive(finding):
                refused.setdefault(w.label, []).append(finding)
            elif hit is None:
                hit = w
        if hit is not None:
            used.add(hit.label)
        if hit is not None and not finding.waived:
            findings.append(replace(finding, waived=True, waiver_reason=hit.justification()))
        else:
            findings.append(finding)
    extra = [w_finding for w in waivers
             if (w_finding := _waiver_finding(w, today, expired, too_long, used, refused))]
    return replace(report, findings=tuple(sort_findings([*findings, *extra]))), extra


def _waiver_finding(
    w: Waiver, today: dt.date, expired: set[str], too_long: set[str], used: set[str],
    refused: dict[str, list[Finding]],
) -> Finding | None:
    """RES-W001/W002/W003 for one waiver, or None when it was applied as written."""
    def make(rule_id: str, message: str, hint: str | None = None) -> Finding:
        return Finding(rule=rule_id, severity=RULES[rule_id].severity, message=message,
                       subject=w.label, subject_kind="waiver", instrument=w.reference,
                       hint=hint)

    if w.label in expired:
        return make("RES-W001", f"waiver {w.label} for {w.rule} expired on "
                    f"{w.expires.isoformat()} (owner {w.owner}, ref {w.reference}); its findings "
                    "count again", "renew the review and extend `expires`, or delete the waiver")
    if w.label in too_long:
        limit = today + dt.timedelta(days=w.max_life_days)
        return make("RES-W003", f"waiver {w.label} for {w.rule} expires on "
                    f"{w.expires.isoformat()}, beyond the maximum waiver life of "
                    f"{w.max_life_days} days (until {limit.isoformat()}; owner {w.owner}); not "
                    "applied", RULES["RES-W003"].remediation)
    if w.label in refused:
        hits = refused[w.label]
        names = ", ".join(f"{f.rule} {f.subject}" for f in hits[:3])
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        return make("RES-W003", f"waiver {w.label} for {w.rule} would silence fail-closed "
                    f"finding(s) {names}{more} with a pattern (owner {w.owner}); not applied "
                    "to them", RULES["RES-W003"].remediation)
    if w.label not in used:
        return make("RES-W002", f"waiver {w.label} for {w.rule} matches no finding (owner "
                    f"{w.owner}); delete it or fix its scope")
    return None


_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """The engine's order: severity, rule, subject, regime."""
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.rule, f.subject, f.regime or ""))
