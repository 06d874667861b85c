"""The Chapter V engine: one verdict per flow, regime and destination country.

Order of bases (GDPR Arts 45 → 46/47 → 49): an adequacy decision in force whose scope
the importer meets; else a safeguard valid on the date and fitting the roles; else a
derogation. Everything unknown fails closed.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from residency.graph import FlowGraph
from residency.model import (
    ANY_COUNTRY,
    OUTSIDE_INVENTORY,
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
# Placeholders in cached verdict messages, filled per flow when findings are stamped.
IMPORTER = "\x00importer\x00"
TIA_REF = "\x00tia\x00"
ART46_TYPES = frozenset({"scc", "idta", "uk_addendum", "bcr", "code_of_conduct", "certification"})
KNOWN_TYPES = ART46_TYPES | {"derogation"}


@dataclass(slots=True)
class _SafeguardVerdict:
    """What one flow's safeguards give for one regime (computed once, used per country)."""

    art46: list[tuple[Safeguard, Instrument]] = field(default_factory=list)
    derogations: list[tuple[Safeguard, Instrument]] = field(default_factory=list)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)  # rule, msg, instr
    not_applicable: list[str] = field(default_factory=list)


_Spec = tuple[str, str, tuple[str, ...], str | None]  # rule, message body, countries, instrument


@dataclass(frozen=True, slots=True)
class _Verdict:
    bases: tuple[tuple[str, Basis], ...]
    findings: list[_Spec]
    same_entity: bool = False


@dataclass(frozen=True, slots=True)
class EngineOptions:
    as_of: dt.date
    assume_invalid: frozenset[str] = frozenset()
    today: dt.date = field(default_factory=dt.date.today)
    pack_grace_days: int = 90
    """Evaluating today with a pack older than this is RES-P001 (a future date always is)."""


class Engine:
    """Evaluates a data map (plus collected inventories) against a policy pack."""

    def __init__(self, pack: PolicyPack, options: EngineOptions) -> None:
        self.pack = pack
        self.opt = options
        self._adequacy_cache: dict[tuple[object, ...], tuple[Basis | None, str | None]] = {}
        self._sg_cache: dict[tuple[object, ...], _SafeguardVerdict] = {}
        self._hr: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ entry
    def run(self, datamap: DataMap, inventories: Iterable[Inventory] = ()) -> Report:
        self._hr = datamap.hr_data_categories
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
                        location=Location(unknown_reason=f"{end} {OUTSIDE_INVENTORY}"),
                        origin=Origin.COLLECTED,
                    ))
        for s in systems:
            if s.party not in parties:
                provider = self.pack.provider_party(s.party)
                parties[s.party] = provider or Party(s.party, s.party, "ZZ")
        findings: list[Finding] = []
        resolved = self._resolve_all(systems, findings)
        systems = self._provider_affiliates(systems, parties, resolved)
        flows = _classified_safeguards(flows, systems, datamap)
        graph = FlowGraph(parties.values(), systems, flows)
        base = {
            s.id: self._base_regimes(s, graph.party_of(s), resolved[s.id]) for s in graph
        }
        graph.propagate(base)
        transfers: list[Transfer] = []
        self._judge_flows(graph, resolved, base, transfers, findings)
        mapless = not datamap.classification.values  # no values: no tag can classify
        for s in graph:
            if s.origin is not Origin.DECLARED and (not s.classified or mapless):
                findings.append(self._finding("RES-I001", s.id, "system", f"{s.id} "
                                              f"({s.resource_id or s.location.describe()}) has no "
                                              f"classification tag"))
        for rule_ in datamap.residency:
            self._residency(graph, rule_, resolved, findings)
        self._classification(graph, datamap, findings)
        self._pack_age(findings)
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
        self, systems: list[System], findings: list[Finding]
    ) -> dict[str, ResolvedLocation]:
        cache: dict[object, ResolvedLocation] = {}
        out: dict[str, ResolvedLocation] = {}
        for s in systems:
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

    def _provider_affiliates(
        self,
        systems: list[System],
        parties: dict[str, Party],
        resolved: dict[str, ResolvedLocation],
    ) -> list[System]:
        """A cloud provider's EEA contracting entity does not run its US or Asian regions:
        data stored there is held by the provider's affiliate in that country, a separate
        importer (sub-processor). Re-party such systems so the copy is judged as a transfer
        (with the provider's certifications) rather than as same-entity processing."""
        out: list[System] = []
        for s in systems:
            provider = self.pack.providers.get(s.party)
            party = parties.get(s.party)
            loc = resolved[s.id]
            if provider is None or party is None:
                out.append(s)
                continue
            contract_regimes = self.pack.regimes_applying_in([party.country])
            home = frozenset().union(*(
                self.pack.free_flow_area(r) for r in contract_regimes
            )) or frozenset({party.country})
            outside = sorted(loc.countries - home)
            if not outside and not loc.any_country:
                out.append(s)
                continue
            where = "+".join(outside) if outside else "any country"
            pid = f"{s.party}@{where}"
            if pid not in parties:
                operator = provider.parent or party.name
                parties[pid] = Party(pid, f"affiliate of {operator} operating {where}",
                                     outside[0] if len(outside) == 1 else "ZZ",
                                     party.certifications, party.subject_to, party.group)
            # the contracting processor's law still covers what its affiliate holds
            out.append(replace(s, party=pid, regimes=s.regimes | contract_regimes))
        return out

    def _base_regimes(self, s: System, party: Party, loc: ResolvedLocation) -> frozenset[str]:
        return (
            self.pack.regimes_applying_in(loc.countries)
            | self.pack.regimes_applying_in((party.country,))
            | s.regimes
        )

    # ------------------------------------------------------------------ flows
    def _judge_flows(
        self,
        graph: FlowGraph,
        resolved: dict[str, ResolvedLocation],
        base: dict[str, frozenset[str]],
        transfers: list[Transfer],
        findings: list[Finding],
    ) -> None:
        """Judge every flow for every regime its data carries (the hot loop).

        The verdict depends on the regime, destination countries, parties, roles,
        safeguards and flags, not on the flow's name, so it is computed once per such key
        and stamped onto each flow: a million-flow map has far fewer distinct keys.
        """
        third_cache: dict[tuple[str, str], tuple[str, ...]] = {}
        verdicts: dict[tuple[object, ...], _Verdict] = {}
        systems = graph.systems
        parties = graph.parties
        quals = {p.id: p.certifications | p.subject_to for p in parties.values()}
        ordered: dict[frozenset[str], tuple[str, ...]] = {}
        for flow in graph.flows:
            categories = flow.data_categories or graph.categories_held(flow.source)
            if not categories:
                continue  # no personal data declared or classified (see RES-I001)
            src = systems[flow.source]
            dst = systems[flow.target]
            src_base = base[src.id]
            regimes = src_base | graph.carried_regimes(src.id, categories)
            if not regimes:
                continue
            in_order = ordered.get(regimes)
            if in_order is None:
                in_order = ordered[regimes] = tuple(sorted(regimes))
            cats: tuple[str, ...] | None = None
            shape: tuple[object, ...] | None = None
            hr = bool(self._hr) and not self._hr.isdisjoint(categories)
            for regime in in_order:
                third = third_cache.get((dst.id, regime))
                if third is None:
                    loc = resolved[dst.id]
                    area = self.pack.free_flow_area(regime)
                    t = sorted((loc.countries | dst.access_from) - area)
                    if loc.any_country:
                        t.append(ANY_COUNTRY)
                    third = third_cache[(dst.id, regime)] = tuple(t)
                if not third:
                    continue
                onward = regime not in src_base
                if shape is None:
                    shape = _shape(flow.safeguards) if flow.safeguards else ()
                src_party = parties[src.party]
                dst_party = parties[dst.party]
                same_group = src_party.group is not None and src_party.group == dst_party.group
                key = (regime, third, src.party == dst.party, same_group, quals[dst.party],
                       src.role, dst.role, shape, flow.recurring, onward, hr)
                verdict = verdicts.get(key)
                if verdict is None:
                    verdict = verdicts[key] = self._verdict(
                        regime, third, src_party, dst_party, src.role, dst.role,
                        flow.safeguards, flow.recurring, onward, hr,
                    )
                if cats is None:
                    cats = tuple(sorted(categories))
                transfers.append(
                    Transfer(flow.id, regime, src.id, dst.id, src.party, dst.party, third,
                             verdict.bases, cats, onward, flow.recurring,
                             same_entity=verdict.same_entity)
                )
                if verdict.findings:
                    _stamp(verdict, flow, regime, dst_party, findings)

    def _verdict(
        self,
        regime: str,
        third: tuple[str, ...],
        src_party: Party,
        dst_party: Party,
        src_role: Role,
        dst_role: Role,
        safeguards: tuple[Safeguard, ...],
        recurring: bool,
        onward: bool,
        hr: bool = False,
    ) -> _Verdict:
        """Bases per country and findings for one transfer shape (flow-independent)."""
        if src_party.id == dst_party.id:
            return _Verdict(
                tuple((c, Basis("same_entity")) for c in third),
                [("RES-I002", f"stays within {IMPORTER} but reaches "
                  f"{', '.join(third)}", third, None)],
                same_entity=True,
            )
        verdict = self._safeguards(regime, safeguards, src_role, dst_role, src_party, dst_party)
        out: list[_Spec] = [
            (rule_id, msg, third, instrument) for rule_id, msg, instrument in verdict.problems
        ]
        bases: list[tuple[str, Basis]] = []
        out_of_scope: list[tuple[str, str]] = []
        missing: list[str] = []
        tia_needed: list[str] = []
        derogated: list[str] = []
        scope_notes: list[str] = []
        for country in third:
            adequacy, scope_miss = (None, None)
            if country != ANY_COUNTRY:
                adequacy, scope_miss = self._adequacy(regime, country, dst_party, hr)
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
                    scope_notes.append(f"{IMPORTER} is outside the scope of {scope_miss}"
                                       f"{self._hr_note(scope_miss, hr)}")
        if tia_needed:
            self._check_tia(regime, verdict, safeguards, tuple(tia_needed), out)
        if derogated and recurring:
            label = verdict.derogations[0][0].label()
            out.append(("RES-T004", f"recurring transfer to {', '.join(derogated)} relies on "
                        f"{label}", tuple(derogated), label))
        unusable = ""
        if verdict.not_applicable:
            unusable = (f"; present but not usable under {regime}: "
                        + ", ".join(verdict.not_applicable))
        for country, decision in out_of_scope:
            dec = self.pack.find_decision(decision)
            scope = f" ({self.pack.scopes[dec.scope].description})" if dec else ""
            out.append(("RES-T002", f"{IMPORTER} in {country} is outside the scope of "
                        f"{decision}{scope}{self._hr_note(decision, hr)}; no safeguard or "
                        f"derogation applies{unusable}", (country,), decision))
        if missing:
            rule_id = "RES-T003" if onward else "RES-T001"
            what = "onward transfer" if onward else "transfer"
            notes = "".join(f"; {n}" for n in scope_notes)
            out.append((rule_id, f"{what} to {IMPORTER} in {', '.join(missing)} has no "
                        f"adequacy decision, valid safeguard or derogation{notes}{unusable}",
                        tuple(missing), None))
        return _Verdict(tuple(bases), out)

    def _hr_note(self, decision_id: str, hr: bool) -> str:
        """Why HR data falls outside a decision whose scope treats it separately."""
        dec = self.pack.find_decision(decision_id)
        cond = self.pack.scopes[dec.scope].hr_data if hr and dec else None
        if cond is None:
            return ""
        return (f"; the flow carries human-resources data, covered only for importers "
                f"qualified for it ({', '.join(cond.requires_any)})")

    def _adequacy(
        self, regime: str, country: str, importer: Party, hr: bool = False
    ) -> tuple[Basis | None, str | None]:
        key = (regime, country, importer.certifications | importer.subject_to, hr)
        hit = self._adequacy_cache.get(key)
        if hit is None:
            out = self.pack.adequacy(
                regime, country, self.opt.as_of, importer, self.opt.assume_invalid, hr
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
        regime: str,
        verdict: _SafeguardVerdict,
        safeguards: tuple[Safeguard, ...],
        countries: tuple[str, ...],
        out: list[_Spec],
    ) -> None:
        """One assessment covers the transfer, whichever safeguard entry records it (a UK
        Addendum rides on the SCCs and their TIA)."""
        review = self.pack.regimes[regime].tia_review_days
        for sg in safeguards:
            tia = sg.tia
            if tia is not None and tia.date is not None:
                age = (self.opt.as_of - tia.date).days
                if 0 <= age <= review:
                    return
        dated = [sg.tia for sg in safeguards if sg.tia and sg.tia.date]
        if dated:
            newest = max(t.date for t in dated if t.date)
            why = f"TIA {TIA_REF} dated {newest} is older than {review} days"
        else:
            why = "no dated TIA is recorded"
        label = verdict.art46[0][0].label()
        out.append(("RES-T007", f"transfer to {', '.join(countries)} relies on {label} but "
                    f"{why}", countries, label))

    # ------------------------------------------------------------------ safeguards
    def _safeguards(
        self,
        regime: str,
        safeguards: tuple[Safeguard, ...],
        src_role: Role,
        dst_role: Role,
        src_party: Party,
        dst_party: Party,
    ) -> _SafeguardVerdict:
        same_group = src_party.group is not None and src_party.group == dst_party.group
        key = (regime, _shape(safeguards), src_role, dst_role, same_group)
        hit = self._sg_cache.get(key)
        if hit is not None:
            return hit
        verdict = _SafeguardVerdict()
        types_present = {s.type for s in safeguards}
        for sg in safeguards:
            self._one_safeguard(sg, regime, src_role, dst_role, same_group, types_present,
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

    # ------------------------------------------------------------------ classification
    def _classification(
        self, graph: FlowGraph, datamap: DataMap, findings: list[Finding]
    ) -> None:
        """Collected resources the map cannot judge: a tag value it does not list
        (RES-I003), or classified data that no flow reaches and no rule covers (RES-I004)."""
        cls = datamap.classification
        names = [name for name, _ in cls.values]
        if not names:
            return  # a map with no classification values: everything collected is RES-I001
        ruled = frozenset().union(*(r.data_categories for r in datamap.residency))
        fed = {f.target for f in graph.flows}
        for s in graph:
            if s.pending is not None:
                findings.append(self._finding(
                    "RES-I005", s.id, "system", f"{s.pending}; judged as possibly holding "
                    f"{', '.join(sorted(s.data_categories)) or 'classified data'}"))
                continue
            if s.origin is Origin.DECLARED or not s.classified:
                continue
            value = dict(s.tags).get(cls.tag)
            where = s.resource_id or s.location.describe()
            if value is not None and cls.lookup(value) is None:
                close = difflib.get_close_matches(value, names, n=1, cutoff=0.6) or [
                    n for n in names if n.casefold() == value.strip().casefold()]
                hint = f"; did you mean {close[0]!r}?" if close else ""
                findings.append(self._finding(
                    "RES-I003", s.id, "system", f"{s.id} ({where}) is tagged "
                    f"{cls.tag}={value!r}, which the map's classification does not list{hint}"))
                continue
            if s.data_categories and s.id not in fed and not (s.data_categories & ruled):
                findings.append(self._finding(
                    "RES-I004", s.id, "system", f"{s.id} ({where}) holds "
                    f"{', '.join(sorted(s.data_categories))} but no flow reaches it and no "
                    "residency rule covers those categories"))

    def _pack_age(self, findings: list[Finding]) -> None:
        checked = self.pack.info.last_checked
        day, today = self.opt.as_of, self.opt.today
        if day <= checked:
            return
        if day <= today and (day - checked).days <= self.opt.pack_grace_days:
            return
        findings.append(self._finding(
            "RES-P001", f"policy-pack:{self.pack.info.name}", "pack",
            f"evaluated as of {day.isoformat()}, but policy pack {self.pack.info.name} "
            f"{self.pack.info.version} was last checked on {checked.isoformat()}: decisions "
            "adopted, amended or ended since are not in it"))

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


def _shape(safeguards: tuple[Safeguard, ...]) -> tuple[object, ...]:
    """What of a flow's safeguards the verdict depends on (not the TIA's reference)."""
    return tuple(
        (sg.type, sg.instrument, sg.module, sg.signed, sg.expires, sg.article, sg.ref,
         sg.approved_by, sg.approved, sg.tia is not None, sg.tia.date if sg.tia else None)
        for sg in safeguards
    )


def _stamp(
    verdict: _Verdict, flow: Flow, regime: str, importer: Party, findings: list[Finding]
) -> None:
    """The findings of a transfer shape's verdict, written for one flow."""
    prefix = f"{flow.id} ({regime}): "
    for rule_id, body, countries, instrument in verdict.findings:
        r = RULES[rule_id]
        text = prefix + body.replace(IMPORTER, importer.name)
        if TIA_REF in text:
            text = text.replace(TIA_REF, _first_tia_ref(flow.safeguards))
        findings.append(
            Finding(rule_id, r.severity, text, flow.id, "flow", regime,
                    countries, instrument, r.remediation)
        )


def _first_tia_ref(safeguards: tuple[Safeguard, ...]) -> str:
    return next((sg.tia.ref for sg in safeguards if sg.tia and sg.tia.date), "?")


def _classified_safeguards(
    flows: list[Flow], systems: list[System], datamap: DataMap
) -> list[Flow]:
    """Collected or planned copies have no contract of their own: they rely on the
    safeguards the map declares for the source's classification value (e.g. the cloud
    provider's DPA with SCC module 3)."""
    cls = datamap.classification
    if not any(v.safeguards for _, v in cls.values):
        return flows
    tags = {s.id: dict(s.tags) for s in systems if s.tags}
    out = []
    for f in flows:
        found = None
        if f.origin is not Origin.DECLARED and not f.safeguards:
            value = tags.get(f.source, {}).get(cls.tag)
            found = cls.lookup(value) if value is not None else None
        out.append(replace(f, safeguards=found.safeguards) if found and found.safeguards else f)
    return out
