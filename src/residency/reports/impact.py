"""What-if impact: which transfers lose (or change) their basis if decisions fall or time passes.

The engine runs twice — a baseline, and the scenario (ids assumed invalid, and/or another
date) — and the difference is grouped by importer and data category, with what each
affected transfer would need instead.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from residency.model import Basis, DataMap, Finding, Party, Report, Role, Transfer
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports import ReportError
from residency.reports._common import md_cell

IMPACT_FORMATS = ("text", "markdown", "json")


@dataclass(frozen=True, slots=True)
class ImpactItem:
    """One transfer (flow × regime × country) whose basis differs between the two runs."""

    flow: str
    regime: str
    country: str
    exporter_party: str
    importer_party: str
    data_categories: tuple[str, ...]
    before: Basis
    after: Basis
    needs: str

    @property
    def lost(self) -> bool:
        return self.before.kind != "none" and self.after.kind == "none"

    @property
    def status(self) -> str:
        if self.lost:
            return "loses its basis"
        return "gains a basis" if self.before.kind == "none" else "changes basis"


@dataclass(frozen=True, slots=True)
class ImpactGroup:
    importer: str
    importer_name: str
    data_category: str
    items: tuple[ImpactItem, ...]


@dataclass(frozen=True, slots=True)
class Impact:
    baseline_as_of: dt.date
    as_of: dt.date
    assume_invalid: tuple[str, ...]
    lost: tuple[ImpactItem, ...]
    changed: tuple[ImpactItem, ...]
    regained: tuple[ImpactItem, ...]
    groups: tuple[ImpactGroup, ...]
    new_findings: tuple[Finding, ...]
    baseline: Report
    scenario: Report


def build_impact(
    pack: PolicyPack,
    datamap: DataMap,
    as_of: dt.date,
    assume_invalid: frozenset[str] | tuple[str, ...] = (),
    baseline_as_of: dt.date | None = None,
) -> Impact:
    """Compare a baseline run with a scenario run.

    With ids to assume invalid, the baseline is the same date without them; with only a
    date, the baseline is today (or `baseline_as_of`).
    """
    invalid = frozenset(assume_invalid)
    unknown = sorted(
        i for i in invalid if not pack.find_decision(i) and not pack.find_instrument(i)
    )
    if unknown:
        raise ReportError(f"unknown decision or instrument id(s): {', '.join(unknown)} "
                          "(see `residency policies`)")
    if baseline_as_of is None:
        baseline_as_of = as_of if invalid else dt.date.today()
    base = Engine(pack, EngineOptions(baseline_as_of)).run(datamap)
    scen = Engine(pack, EngineOptions(as_of, invalid)).run(datamap)
    parties = {p.id: p for p in datamap.parties}
    roles = {s.id: s.role for s in scen.systems}
    before = _bases(base)
    lost: list[ImpactItem] = []
    changed: list[ImpactItem] = []
    regained: list[ImpactItem] = []
    for key, (t, after) in _bases(scen).items():
        prior = before.get(key)
        if prior is None or _same(prior[1], after):
            continue
        old = prior[1]
        if after.kind == "none":
            needs = remedy(pack, t, roles[t.exporter], roles[t.importer], parties, as_of)
        else:
            needs = f"nothing new: falls back on {_basis(after)} (keep its TIA current)" \
                if after.kind == "safeguard" else f"nothing new: falls back on {_basis(after)}"
        item = ImpactItem(t.flow, t.regime, key[2], t.exporter_party, t.importer_party,
                          t.data_categories, old, after, needs)
        if item.lost:
            lost.append(item)
        elif old.kind == "none":
            regained.append(item)
        else:
            changed.append(item)
    groups: dict[tuple[str, str], list[ImpactItem]] = {}
    for item in [*lost, *(c for c in changed if c.before.kind != "none")]:
        for cat in item.data_categories:
            groups.setdefault((item.importer_party, cat), []).append(item)
    old_fps = {f.fingerprint for f in base.findings}
    return Impact(
        baseline_as_of, as_of, tuple(sorted(invalid)), tuple(lost), tuple(changed),
        tuple(regained),
        tuple(ImpactGroup(imp, parties[imp].name if imp in parties else imp, cat, tuple(items))
              for (imp, cat), items in sorted(groups.items())),
        tuple(f for f in scen.findings if f.fingerprint not in old_fps),
        base, scen,
    )


def _bases(report: Report) -> dict[tuple[str, str, str], tuple[Transfer, Basis]]:
    return {(t.flow, t.regime, c): (t, b) for t in report.transfers if not t.same_entity
            for c, b in t.bases}


def _same(a: Basis, b: Basis) -> bool:
    return (a.kind, a.reference) == (b.kind, b.reference)


def remedy(
    pack: PolicyPack,
    t: Transfer,
    exporter_role: Role,
    importer_role: Role,
    parties: dict[str, Party],
    day: dt.date,
) -> str:
    """What a transfer that lost its basis would need: the fitting Art. 46 tool plus a TIA."""
    roles = (exporter_role.value, importer_role.value)
    options: list[str] = []
    for ins in pack.instruments_of("scc", t.regime):
        if ins.status != "in_force" or (ins.valid_until and day > ins.valid_until):
            continue
        module = next((m for m, r in sorted(ins.modules.items()) if tuple(r) == roles), None)
        if module is not None:
            options.append(f"SCC {ins.id} module {module}" + (" + TIA" if ins.requires_tia
                                                              else ""))
            break
    for type_, label in (("idta", "IDTA"), ("uk_addendum", "UK Addendum to the EU SCCs")):
        if any(i.status == "in_force" for i in pack.instruments_of(type_, t.regime)):
            options.append(f"{label} + TIA")
    exp, imp = parties.get(t.exporter_party), parties.get(t.importer_party)
    if exp and imp and exp.group and exp.group == imp.group \
            and pack.instruments_of("bcr", t.regime):
        options.append("BCRs (same group) + TIA")
    if not options:
        return "an Art. 46 safeguard valid under this regime + TIA, or an Art. 49 derogation " \
               "for occasional transfers"
    return " or ".join(dict.fromkeys(options))


# ---------------------------------------------------------------------- rendering
def _basis(b: Basis) -> str:
    return b.kind + (f" {b.reference}" if b.reference else "")


def _header(impact: Impact) -> list[str]:
    what = []
    if impact.assume_invalid:
        what.append(f"assuming invalid: {', '.join(impact.assume_invalid)}")
    if impact.as_of != impact.baseline_as_of:
        what.append(f"on {impact.as_of} instead of {impact.baseline_as_of}")
    return [f"What-if: {'; '.join(what) or 'no change'}",
            f"{len(impact.lost)} transfer(s) lose their basis, {len(impact.changed)} change "
            f"basis, {len(impact.regained)} gain one; {len(impact.new_findings)} new finding(s)."]


def render_impact(impact: Impact, fmt: str) -> str:
    if fmt == "json":
        return _json(impact)
    md = fmt == "markdown"
    head = _header(impact)
    lines = [f"# {head[0]}" if md else head[0], "", head[1], ""]
    lines.append("## Affected transfers by importer and data category" if md else
                 "Affected transfers (by importer and data category):")
    lines.append("")
    if not impact.groups:
        lines += ["None.", ""]
    for g in impact.groups:
        title = f"{g.importer_name} ({g.importer}) — {g.data_category}"
        lines.append(f"### {title}" if md else f"  {title}")
        if md:
            lines += ["", "| Flow | Regime | Country | Effect | Was | Needs instead |",
                      "|---|---|---|---|---|---|"]
        for i in g.items:
            if md:
                lines.append(f"| `{i.flow}` | {i.regime} | {i.country} | {i.status} | "
                             f"{md_cell(_basis(i.before))} | {md_cell(i.needs)} |")
            else:
                lines.append(f"    {i.flow} ({i.regime}, {i.country}) {i.status}: was "
                             f"{_basis(i.before)}; needs {i.needs}")
        lines.append("")
    for title, items in (("Transfers that change basis", impact.changed),
                         ("Transfers that gain a basis", impact.regained)):
        if not items:
            continue
        lines += [f"## {title}" if md else f"{title}:", ""]
        for i in items:
            text = f"{i.flow} ({i.regime}, {i.country}): {_basis(i.before)} → {_basis(i.after)}"
            lines.append(f"- {md_cell(text)}" if md else f"  {text}")
        lines.append("")
    if impact.new_findings:
        lines += ["## New findings" if md else "New findings:", ""]
        for f in impact.new_findings:
            text = f"{f.severity.value} {f.rule} {f.message}"
            lines.append(f"- {md_cell(text)}" if md else f"  {text}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _json(impact: Impact) -> str:
    def item(i: ImpactItem) -> dict[str, object]:
        return {"flow": i.flow, "regime": i.regime, "country": i.country,
                "exporter": i.exporter_party, "importer": i.importer_party,
                "data_categories": list(i.data_categories),
                "before": {"kind": i.before.kind, "reference": i.before.reference},
                "after": {"kind": i.after.kind, "reference": i.after.reference},
                "status": i.status, "needs": i.needs or None}

    data = {
        "baseline_as_of": impact.baseline_as_of.isoformat(),
        "as_of": impact.as_of.isoformat(),
        "assume_invalid": list(impact.assume_invalid),
        "lost": [item(i) for i in impact.lost],
        "changed": [item(i) for i in impact.changed],
        "regained": [item(i) for i in impact.regained],
        "groups": [{"importer": g.importer, "importer_name": g.importer_name,
                    "data_category": g.data_category,
                    "transfers": [{"flow": i.flow, "regime": i.regime, "country": i.country,
                                   "status": i.status} for i in g.items]}
                   for g in impact.groups],
        "new_findings": [{"rule": f.rule, "severity": f.severity.value, "subject": f.subject,
                          "regime": f.regime, "message": f.message}
                         for f in impact.new_findings],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
