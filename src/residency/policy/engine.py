"""The Chapter V engine: one verdict per flow, regime and destination country.

Order of bases (GDPR Arts 45 → 46/47 → 49): an adequacy decision in force whose scope
the importer meets; else a safeguard valid on the date and fitting the roles; else a
derogation. Everything unknown fails closed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from residency.graph import FlowGraph
from residency.model import (
    ANY_COUNTRY,
    Basis,
    CoverageGap,
    DataMap,
    Finding,
    Flow,
    Inventory,
    Location,
    Origin,
    Party,
    Report,
    ResidencyRule,
    ResolvedLocation,
    Role,
    Safeguard,
    System,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.policy.rules import RULES
from residency.policy.schema import Instrument

NO_BASIS = Basis("none")
ART46_TYPES = frozenset({"scc", "idta", "uk_addendum", "bcr", "code_of_conduct", "certification"})
KNOWN_TYPES = ART46_TYPES | {"derogation"}


@dataclass(slots=True)
class _SafeguardVerdict:
    """What one flow's safeguards give for one regime (computed once, used per country)."""

    art46: list[tuple[Safeguard, Instrument]] = field(default_factory=list)
    derogations: list[tuple[Safeguard, Instrument]] = field(default_factory=list)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)  # rule, msg, instr
    not_applicable: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    as_of: dt.date
    assume_invalid: frozenset[str] = frozenset()


class Engine:
    """Evaluates a data map (plus collected inventories) against a policy pack."""

    def __init__(self, pack: PolicyPack, options: EngineOptions) -> None:
        self.pack = pack
        self.opt = options
        self._adequacy_cache: dict[tuple[str, str, str], tuple[Basis | None, str | None]] = {}
        self._sg_cache: dict[tuple[object, ...], _SafeguardVerdict] = {}

    # ------------------------------------------------------------------ entry
    def run(self, datamap: DataMap, inventories: Iterable[Inventory] = ()) -> Report:
        systems = list(datamap.systems)
        flows = list(datamap.flows)
        parties = {p.id: p for p in datamap.parties}
        gaps: list[CoverageGap] = []
        for inv in inventories:
            systems.extend(inv.systems)
            flows.extend(inv.flows)
            gaps.extend(inv.gaps)
        known = {s.id for s in systems}
        for f in flows:
            for end in (f.source, f.target):
                if end not in known:
                    known.add(end)
                    systems.append(System(
                        id=end, party="unknown", role=Role.PROCESSOR,
                        location=Location(unknown_reason=f"{end} is outside the scanned "
                                          "inventory and the map"),
                        origin=Origin.COLLECTED,
                    ))
        for s in systems:
            if s.party not in parties:
                provider = self.pack.provider_party(s.party)
                parties[s.party] = provider or Party(s.party, s.party, "ZZ")
        graph = FlowGraph(parties.values(), systems, flows)
        findings: list[Finding] = []
        resolved = self._resolve_all(graph, findings)
        base = {
            s.id: self._base_regimes(s, graph.party_of(s), resolved[s.id]) for s in graph
        }
        graph.propagate(base)
        transfers: list[Transfer] = []
        for flow in graph.flows:
            self._judge_flow(graph, flow, resolved, base, transfers, findings)
        for s in graph:
            if s.origin is not Origin.DECLARED and not s.classified:
                findings.append(self._finding("RES-I001", s.id, "system", f"{s.id} "
                                              f"({s.resource_id or s.location.describe()}) has no "
                                              f"classification tag"))
        for rule_ in datamap.residency:
            self._residency(graph, rule_, resolved, findings)
        for gap in gaps:
            findings.append(
                self._finding(
                    "RES-S001",
                    f"{gap.provider}:{gap.scope}",
                    "scope",
                    f"{gap.provider} {gap.scope} could not be read: {gap.reason}",
                )
            )
        order = {"error": 0, "warning": 1, "info": 2}
        findings.sort(key=lambda f: (order[f.severity.value], f.rule, f.subject, f.regime or ""))
        return Report(
            as_of=self.opt.as_of,
            pack=self.pack.info,
            systems=tuple(graph.systems.values()),
            resolved=tuple(resolved.items()),
            flows=graph.flows,
            transfers=tuple(transfers),
            findings=tuple(findings),
            gaps=tuple(gaps),
            assumed_invalid=tuple(sorted(self.opt.assume_invalid)),
            map_source=datamap.source,
            map_digest=datamap.digest,
        )

    # ------------------------------------------------------------------ locations
    def _resolve_all(
        self, graph: FlowGraph, findings: list[Finding]
    ) -> dict[str, ResolvedLocation]:
        cache: dict[object, ResolvedLocation] = {}
        out: dict[str, ResolvedLocation] = {}
        for s in graph:
            res = cache.get(s.location)
            if res is None:
                res = cache[s.location] = self.pack.resolve(s.location)
            out[s.id] = res
            if res.unresolved:
                findings.append(
                    self._finding(
                        "RES-L001",
                        s.id,
                        "system",
                        f"{s.id}: {res.unresolved}; treated as any country",
                        countries=(ANY_COUNTRY,),
                    )
                )
        return out

    def _base_regimes(self, s: System, party: Party, loc: ResolvedLocation) -> frozenset[str]:
        return (
            self.pack.regimes_applying_in(loc.countries)
            | self.pack.regimes_applying_in((party.country,))
            | s.regimes
        )

    # ------------------------------------------------------------------ flows
    def _judge_flow(
        self,
        graph: FlowGraph,
        flow: Flow,
        resolved: dict[str, ResolvedLocation],
        base: dict[str, frozenset[str]],
        transfers: list[Transfer],
        findings: list[Finding],
    ) -> None:
        src = graph.systems[flow.source]
        dst = graph.systems[flow.target]
        loc = resolved[dst.id]
        dest = loc.countries | dst.access_from
        categories = graph.flow_categories(flow)
        if not categories:
            return  # no personal data declared or classified on this flow (see RES-I001)
        regimes: set[str] = set(base[src.id])
        for cat in categories:
            regimes |= graph.carried_in(src.id, cat)
        src_party = graph.party_of(src)
        dst_party = graph.party_of(dst)
        for regime in sorted(regimes):
            area = self.pack.free_flow_area(regime)
            third = sorted(dest - area)
            if loc.any_country:
                third.append(ANY_COUNTRY)
            if not third:
                continue
            onward = regime not in base[src.id]
            cats = tuple(sorted(categories))
            if src_party.id == dst_party.id:
                transfers.append(
                    Transfer(flow.id, regime, src.id, dst.id, src_party.id, dst_party.id,
                             tuple(third), tuple((c, Basis("same_entity")) for c in third),
                             cats, onward, flow.recurring, same_entity=True)
                )
                findings.append(
                    self._finding(
                        "RES-I002", flow.id, "flow",
                        f"{flow.id}: {src.id} → {dst.id} stays within {src_party.name} but "
                        f"reaches {', '.join(third)} ({regime})",
                        regime=regime, countries=tuple(third),
                    )
                )
                continue
            transfers.append(
                self._judge_transfer(flow, src, dst, src_party, dst_party, regime, third,
                                     onward, cats, findings)
            )

    def _judge_transfer(
        self,
        flow: Flow,
        src: System,
        dst: System,
        src_party: Party,
        dst_party: Party,
        regime: str,
        third: list[str],
        onward: bool,
        cats: tuple[str, ...],
        findings: list[Finding],
    ) -> Transfer:
        verdict = self._safeguards(flow, src, dst, src_party, dst_party, regime)
        for rule_id, msg, instrument in verdict.problems:
            findings.append(
                self._finding(rule_id, flow.id, "flow", f"{flow.id} ({regime}): {msg}",
                              regime=regime, countries=tuple(third), instrument=instrument)
            )
        bases: list[tuple[str, Basis]] = []
        out_of_scope: list[tuple[str, str]] = []
        missing: list[str] = []
        tia_needed: list[str] = []
        derogated: list[str] = []
        scope_notes: list[str] = []
        for country in third:
            adequacy, scope_miss = (None, None)
            if country != ANY_COUNTRY:
                adequacy, scope_miss = self._adequacy(regime, country, dst_party)
            if adequacy is not None:
                bases.append((country, adequacy))
                continue
            if verdict.art46:
                sg, ins = verdict.art46[0]
                bases.append((country, Basis("safeguard", sg.label(), ins.source, ins.name)))
                if any(i.requires_tia for _, i in verdict.art46):
                    tia_needed.append(country)
                continue
            if verdict.derogations:
                sg, ins = verdict.derogations[0]
                bases.append((country, Basis("derogation", sg.label(), ins.source, ins.name)))
                derogated.append(country)
                continue
            bases.append((country, NO_BASIS))
            if scope_miss and not onward:
                out_of_scope.append((country, scope_miss))
            else:
                missing.append(country)
                if scope_miss:
                    scope_notes.append(f"{dst_party.name} is outside the scope of {scope_miss}")
        if tia_needed:
            self._check_tia(flow, regime, verdict, tia_needed, findings)
        if derogated and flow.recurring:
            findings.append(
                self._finding(
                    "RES-T004", flow.id, "flow",
                    f"{flow.id} ({regime}): recurring transfer to {', '.join(derogated)} relies "
                    f"on {verdict.derogations[0][0].label()}",
                    regime=regime, countries=tuple(derogated),
                    instrument=verdict.derogations[0][0].label(),
                )
            )
        for country, decision in out_of_scope:
            scope = self.pack.find_decision(decision)
            findings.append(
                self._finding(
                    "RES-T002", flow.id, "flow",
                    f"{flow.id} ({regime}): {dst_party.name} in {country} is outside the scope "
                    f"of {decision}"
                    + (f" ({self.pack.scopes[scope.scope].description})" if scope else "")
                    + "; no safeguard or derogation applies"
                    + (f" (present but not usable under {regime}: "
                       f"{', '.join(verdict.not_applicable)})" if verdict.not_applicable else ""),
                    regime=regime, countries=(country,), instrument=decision,
                )
            )
        if missing:
            rule_id = "RES-T003" if onward else "RES-T001"
            hint_extra = "".join(f"; {n}" for n in scope_notes)
            if verdict.not_applicable:
                hint_extra += f"; present but not usable under {regime}: " + ", ".join(
                    verdict.not_applicable
                )
            what = "onward transfer" if onward else "transfer"
            findings.append(
                self._finding(
                    rule_id, flow.id, "flow",
                    f"{flow.id} ({regime}): {what} {src.id} → {dst.id} to "
                    f"{', '.join(missing)} has no adequacy decision, valid safeguard or "
                    f"derogation{hint_extra}",
                    regime=regime, countries=tuple(missing),
                    instrument=None,
                )
            )
        return Transfer(flow.id, regime, src.id, dst.id, src_party.id, dst_party.id,
                        tuple(third), tuple(bases), cats, onward, flow.recurring)

    def _adequacy(
        self, regime: str, country: str, importer: Party
    ) -> tuple[Basis | None, str | None]:
        key = (regime, country, importer.id)
        hit = self._adequacy_cache.get(key)
        if hit is None:
            out = self.pack.adequacy(
                regime, country, self.opt.as_of, importer, self.opt.assume_invalid
            )
            if out.decision is not None:
                d = out.decision
                detail = d.instrument + (f" — elevated risk: {d.note}" if d.risk == "elevated"
                                         else "")
                hit = (Basis("adequacy", d.id, d.source, detail), None)
            else:
                hit = (None, out.out_of_scope.id if out.out_of_scope else None)
            self._adequacy_cache[key] = hit
        return hit

    def _check_tia(
        self,
        flow: Flow,
        regime: str,
        verdict: _SafeguardVerdict,
        countries: list[str],
        findings: list[Finding],
    ) -> None:
        review = self.pack.regimes[regime].tia_review_days
        for sg, _ins in verdict.art46:
            tia = sg.tia
            if tia is not None and tia.date is not None:
                age = (self.opt.as_of - tia.date).days
                if 0 <= age <= review:
                    return
        dated = [sg.tia for sg, _ in verdict.art46 if sg.tia and sg.tia.date]
        if dated:
            newest = max(t.date for t in dated if t.date)
            why = f"TIA {dated[0].ref} dated {newest} is older than {review} days"
        else:
            why = "no dated TIA is recorded"
        findings.append(
            self._finding(
                "RES-T007", flow.id, "flow",
                f"{flow.id} ({regime}): transfer to {', '.join(countries)} relies on "
                f"{verdict.art46[0][0].label()} but {why}",
                regime=regime, countries=tuple(countries),
                instrument=verdict.art46[0][0].label(),
            )
        )

    # ------------------------------------------------------------------ safeguards
    def _safeguards(
        self,
        flow: Flow,
        src: System,
        dst: System,
        src_party: Party,
        dst_party: Party,
        regime: str,
    ) -> _SafeguardVerdict:
        same_group = src_party.group is not None and src_party.group == dst_party.group
        key = (regime, flow.safeguards, src.role, dst.role, same_group,
               frozenset(s.type for s in flow.safeguards))
        hit = self._sg_cache.get(key)
        if hit is not None:
            return hit
        verdict = _SafeguardVerdict()
        types_present = {s.type for s in flow.safeguards}
        for sg in flow.safeguards:
            self._one_safeguard(sg, regime, src.role, dst.role, same_group, types_present,
                                verdict)
        self._sg_cache[key] = verdict
        return verdict

    def _one_safeguard(
        self,
        sg: Safeguard,
        regime: str,
        exporter_role: Role,
        importer_role: Role,
        same_group: bool,
        types_present: set[str],
        verdict: _SafeguardVerdict,
    ) -> None:
        day = self.opt.as_of
        label = sg.label()
        if sg.type not in KNOWN_TYPES:
            verdict.problems.append(
                ("RES-T005", f"unknown safeguard type {sg.type!r} (expected one of "
                 f"{', '.join(sorted(KNOWN_TYPES))})", label)
            )
            return
        candidates = self.pack.instruments_of(sg.type, regime)
        if sg.type in ("scc", "art28_clauses") or sg.instrument:
            if not sg.instrument:
                verdict.problems.append(
                    ("RES-T005", f"{label}: no `instrument` given (e.g. \"2021/914\")", label)
                )
                return
            named = self.pack.find_instrument(sg.instrument)
            candidates = [i for i in named if i.regime == regime]
            if named and all(not i.transfer_tool for i in named):
                verdict.problems.append(
                    ("RES-T005", f"{label}: {named[0].name} is not a transfer tool", label)
                )
                return
            if not named:
                verdict.problems.append(
                    ("RES-T005", f"{label}: instrument {sg.instrument!r} is not in the policy "
                     "pack", label)
                )
                return
        if not candidates:
            verdict.not_applicable.append(label)
            return
        ins = candidates[0]
        if sg.instrument is None and len(candidates) > 1:
            ins = max(candidates, key=lambda i: i.valid_from or dt.date.min)
        if ins.id in self.opt.assume_invalid:
            verdict.problems.append(("RES-T005", f"{label}: assumed invalid (what-if)", ins.id))
            return
        problem = self._validity(sg, ins, day, exporter_role, importer_role, same_group,
                                 types_present)
        if problem:
            verdict.problems.append(("RES-T005", f"{label}: {problem}", ins.id))
            return
        if sg.type == "scc" and sg.module is not None:
            roles = ins.modules.get(sg.module)
            actual = (exporter_role.value, importer_role.value)
            if roles is not None and tuple(roles) != actual:
                fitting = [m for m, r in ins.modules.items() if tuple(r) == actual]
                verdict.problems.append(
                    ("RES-T006", f"{label} is for {roles[0]}→{roles[1]} but the roles are "
                     f"{actual[0]}→{actual[1]}"
                     + (f" (use module {fitting[0]})" if fitting else ""), ins.id)
                )
        if sg.type == "derogation":
            verdict.derogations.append((sg, ins))
        else:
            verdict.art46.append((sg, ins))

    @staticmethod
    def _validity(
        sg: Safeguard,
        ins: Instrument,
        day: dt.date,
        exporter_role: Role,
        importer_role: Role,
        same_group: bool,
        types_present: set[str],
    ) -> str | None:
        """Why this safeguard cannot be relied on today, or None."""
        del exporter_role, importer_role  # roles matter for module fit (RES-T006), not validity
        if not ins.transfer_tool:
            return f"{ins.name} is not a transfer tool"
        if ins.status != "in_force" and ins.valid_until is None:
            return f"{ins.name} is {ins.status}"
        if ins.valid_from and day < ins.valid_from:
            return f"{ins.name} applies only from {ins.valid_from}"
        if ins.valid_until and day > ins.valid_until:
            return f"{ins.name} could be relied on only until {ins.valid_until}"
        if sg.expires and day > sg.expires:
            return f"expired on {sg.expires}"
        if sg.type in ("scc", "idta", "uk_addendum"):
            if sg.signed is None:
                return "no `signed` date recorded"
            if sg.signed > day:
                return f"signed {sg.signed}, after the evaluation date"
            if ins.signed_until and sg.signed > ins.signed_until:
                return f"signed {sg.signed}, after the last date contracts could be concluded " \
                       f"under it ({ins.signed_until})"
            if ins.valid_from and sg.signed < ins.valid_from and ins.type != "scc":
                return f"signed {sg.signed}, before the instrument applied ({ins.valid_from})"
        if sg.type == "scc":
            if sg.module is None:
                return "no SCC `module` given (1 C2C, 2 C2P, 3 P2P, 4 P2C)"
            if ins.modules and sg.module not in ins.modules:
                return f"module {sg.module} does not exist in {ins.id}"
        if sg.type == "uk_addendum" and "scc" not in types_present:
            return "the UK Addendum only works together with the EU SCCs (2021/914) on the flow"
        if sg.type == "bcr":
            if not same_group:
                return "BCRs cover only transfers inside the approved group (set `group` on " \
                       "both parties)"
            if sg.approved is None or sg.approved > day:
                return "no approval date on or before the evaluation date"
        if sg.type == "derogation":
            art = (sg.article or "").replace(" ", "")
            if not art:
                return "no `article` given (e.g. 49(1)(a))"
            if ins.articles and art not in {a.replace(" ", "") for a in ins.articles}:
                return f"{sg.article} is not a derogation under {ins.name}"
        return None

    # ------------------------------------------------------------------ residency
    def _residency(
        self,
        graph: FlowGraph,
        rule_: ResidencyRule,
        resolved: dict[str, ResolvedLocation],
        findings: list[Finding],
    ) -> None:
        explicit = self.pack.expand(a for a in rule_.allowed if a != "ADEQUATE")
        adequate = "ADEQUATE" in rule_.allowed
        eea = self.pack.free_flow_area("eu_gdpr") if adequate else frozenset()
        for s in graph:
            held = graph.categories_held(s.id) & rule_.data_categories
            if not held:
                continue
            loc = resolved[s.id]
            where = set(loc.countries)
            if rule_.include_remote_access:
                where |= s.access_from
            party = graph.party_of(s)
            bad = sorted(
                c for c in where
                if c not in explicit
                and not (adequate and (c in eea or self._adequacy("eu_gdpr", c, party)[0]))
            )
            if loc.any_country:
                bad.append(ANY_COUNTRY)
            if bad:
                findings.append(
                    self._finding(
                        "RES-L002", s.id, "system",
                        f"{s.id} holds {', '.join(sorted(held))} in/from {', '.join(bad)}; "
                        f"rule {rule_.id or ''} allows only {', '.join(rule_.allowed)}".replace(
                            "rule  ", "the rule "
                        ),
                        countries=tuple(bad),
                    )
                )

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _finding(
        rule_id: str,
        subject: str,
        kind: str,
        message: str,
        *,
        regime: str | None = None,
        countries: tuple[str, ...] = (),
        instrument: str | None = None,
    ) -> Finding:
        r = RULES[rule_id]
        return Finding(
            rule=rule_id,
            severity=r.severity,
            message=message,
            subject=subject,
            subject_kind=kind,
            regime=regime,
            countries=countries,
            instrument=instrument,
            hint=r.remediation,
        )
