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
    EVIDENCE_STALE_TAG,
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
    Severity,
    System,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.policy.rules import RULES
from residency.policy.schema import DerogationGround, Instrument, Regime

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
    derogations: list[tuple[Safeguard, Instrument, DerogationGround]] = field(
        default_factory=list)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)  # rule, msg, instr
    stale: list[tuple[str, str | None]] = field(default_factory=list)  # msg, instrument
    """Entries that were valid once (expired contract, instrument past its end): an error
    when nothing else covers the transfer, a hygiene warning beside a valid basis."""
    not_applicable: list[str] = field(default_factory=list)


# rule, message body, countries, instrument, severity (None: the rule's own)
_Spec = tuple[str, str, tuple[str, ...], str | None, Severity | None]
_STALE = "stale"  # marks a validity problem of an entry that was once valid


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
        from residency.policy.keys import key_findings  # RES-K001/K002 (issue 14)

        findings.extend(key_findings(self.pack, self.opt.as_of, graph, base,
                                     datamap.special_categories, self.opt.assume_invalid))
        self._pack_age(findings)
        findings.extend(self._stale_evidence(graph))
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
            special_categories=datamap.special_categories,
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
                    third = third_cache[(dst.id, regime)] = self._destinations(
                        regime, resolved[dst.id], dst, parties[dst.party])
                if not third:
                    continue
                onward = regime not in src_base
                if shape is None:
                    shape = _shape(flow.safeguards) if flow.safeguards else ()
                src_party = parties[src.party]
                dst_party = parties[dst.party]
                same_group = src_party.group is not None and src_party.group == dst_party.group
                key = (regime, third, src.party == dst.party, same_group, quals[dst.party],
                       src.role, dst.role, shape, flow.recurring, onward, hr,
                       src_party.public_authority)
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

    def _destinations(
        self, regime: str, loc: ResolvedLocation, dst: System, importer: Party
    ) -> tuple[str, ...]:
        """Where the data go, for this regime: the system's countries, those it is reached
        from, and the country where the importer is established. A transfer is defined by
        the receiving entity, not only its servers (EDPB Guidelines 05/2021, criterion 3;
        the ICO's three-step test): a US company receiving data on servers in Frankfurt is
        an importer in a third country. An international organisation (Art. 4(26), a pack
        `international_organisations` id) is one wherever it sits."""
        area = self.pack.free_flow_area(regime)
        places = set(loc.countries | dst.access_from)
        if importer.country not in ("ZZ", "") and importer.country in self.pack.known_places:
            places.add(importer.country)
        t = sorted(places - area)
        if loc.any_country:
            t.append(ANY_COUNTRY)
        return tuple(t)

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
                  f"{', '.join(third)}", third, None, None)],
                same_entity=True,
            )
        verdict = self._safeguards(regime, safeguards, src_role, dst_role, src_party, dst_party,
                                   recurring)
        out: list[_Spec] = [
            (rule_id, msg, third, instrument, None)
            for rule_id, msg, instrument in verdict.problems
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
                if any(i.needs_tia(s.module, s.combines_eu_data) for s, i in verdict.art46):
                    tia_needed.append(country)
                continue
            if verdict.derogations:
                sg, ins, _ = verdict.derogations[0]
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
        self._conditions(regime, verdict, dst_party, third, safeguards, not missing and
                         not out_of_scope, tuple(tia_needed), tuple(derogated), recurring, out)
        unusable = ""
        if verdict.not_applicable:
            unusable = (f"; present but not usable under {regime}: "
                        + ", ".join(verdict.not_applicable))
        for country, decision in out_of_scope:
            dec = self.pack.find_decision(decision)
            scope = f" ({self.pack.scopes[dec.scope].description})" if dec else ""
            out.append(("RES-T002", f"{IMPORTER} in {country} is outside the scope of "
                        f"{decision}{scope}{self._hr_note(decision, hr)}; no safeguard or "
                        f"derogation applies{unusable}", (country,), decision, None))
        if missing:
            rule_id = "RES-T003" if onward else "RES-T001"
            what = "onward transfer" if onward else "transfer"
            notes = "".join(f"; {n}" for n in scope_notes)
            out.append((rule_id, f"{what} to {IMPORTER} in {', '.join(missing)} has no "
                        f"adequacy decision, valid safeguard or derogation{notes}{unusable}",
                        tuple(missing), None, None))
        return _Verdict(tuple(bases), out)

    def _conditions(
        self, regime: str, verdict: _SafeguardVerdict, importer: Party, third: tuple[str, ...],
        safeguards: tuple[Safeguard, ...], covered: bool, tia_needed: tuple[str, ...],
        derogated: tuple[str, ...], recurring: bool, out: list[_Spec],
    ) -> None:
        """What the bases found still ask for: stale entries, instruments not drafted for
        this importer, a TIA, and derogations kept for occasional transfers."""
        _stale(verdict, third, covered, out)
        _not_drafted_for(verdict, importer, third, out)
        if tia_needed:
            self._check_tia(regime, verdict, safeguards, tia_needed, out)
        if derogated and recurring:
            _occasional_only(verdict, derogated, out)

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
        Addendum rides on the SCCs and their TIA). The review period is the pack's default
        (`tia_review_days`), not a statutory limit, and the message says so."""
        review = self.pack.regimes[regime].tia_review_days
        day = self.opt.as_of
        dated = [sg.tia.date for sg in safeguards if sg.tia is not None and sg.tia.date]
        if any(0 <= (day - d).days <= review for d in dated):
            return
        past = [d for d in dated if d <= day]
        if past:
            why = (f"TIA {TIA_REF} dated {max(past)} is older than {review} days (the pack's "
                   f"default review period, {regime}.tia_review_days; not a statutory limit)")
        elif dated:
            why = (f"the only dated TIA ({TIA_REF}, {min(dated)}) postdates the evaluation date "
                   f"{day}: no assessment existed then")
        else:
            why = "no dated TIA is recorded"
        label = next((sg.label() for sg, ins in verdict.art46
                      if ins.needs_tia(sg.module, sg.combines_eu_data)),
                     verdict.art46[0][0].label())
        out.append(("RES-T007", f"transfer to {', '.join(countries)} relies on {label} but "
                    f"{why}", countries, label, None))

    # ------------------------------------------------------------------ safeguards
    def _safeguards(
        self,
        regime: str,
        safeguards: tuple[Safeguard, ...],
        src_role: Role,
        dst_role: Role,
        src_party: Party,
        dst_party: Party,
        recurring: bool = True,
    ) -> _SafeguardVerdict:
        same_group = src_party.group is not None and src_party.group == dst_party.group
        key = (regime, _shape(safeguards), src_role, dst_role, same_group,
               src_party.public_authority, recurring)
        hit = self._sg_cache.get(key)
        if hit is not None:
            return hit
        verdict = _SafeguardVerdict()
        ctx = _Context(src_role, dst_role, same_group, src_party.public_authority, recurring,
                       frozenset(s.instrument for s in safeguards if s.instrument))
        for sg in safeguards:
            self._one_safeguard(sg, regime, ctx, verdict)
        self._sg_cache[key] = verdict
        return verdict

    def _one_safeguard(
        self, sg: Safeguard, regime: str, ctx: _Context, verdict: _SafeguardVerdict
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
        if sg.type == "bcr" and self._bcr_elsewhere(sg, regime):
            verdict.not_applicable.append(f"{label} (approved by {sg.approved_by}, not an "
                                          f"authority of {regime})")
            return
        problem = self._validity(sg, ins, day, ctx, self.pack.regimes[regime])
        if problem is not None:
            text, kind = problem
            if kind == _STALE:
                verdict.stale.append((f"{label}: {text}", ins.id))
            else:
                verdict.problems.append(("RES-T005", f"{label}: {text}", ins.id))
            return
        if sg.type == "scc":
            self._role_fit(sg, ins, regime, ctx, label, verdict)
        if sg.type == "derogation":
            ground = ins.ground(sg.article or "")
            if ground is not None:  # always: _validity reports an unknown ground
                verdict.derogations.append((sg, ins, ground))
        else:
            verdict.art46.append((sg, ins))

    def _role_fit(
        self,
        sg: Safeguard,
        ins: Instrument,
        regime: str,
        ctx: _Context,
        label: str,
        verdict: _SafeguardVerdict,
    ) -> None:
        """RES-T006: the module (2021/914) or the single set (2001/497, 2004/915: C2C;
        2010/87: C2P) is for other roles than the parties have."""
        actual = (ctx.exporter.value, ctx.importer.value)
        roles: tuple[str, str] | None = None
        if ins.roles is not None:
            roles = (ins.roles[0], ins.roles[1])
        elif sg.module is not None and sg.module in ins.modules:
            first, second = ins.modules[sg.module]
            roles = (first, second)
        if roles is None or roles == actual:
            return
        fitting = [m for m, r in ins.modules.items() if tuple(r) == actual]
        if fitting:
            hint = f" (use module {fitting[0]})"
        else:
            current = self._fitting_module(regime, actual)
            hint = f" (use {current})" if current else ""
        verdict.problems.append(
            ("RES-T006", f"{label} is for {roles[0]}→{roles[1]} but the roles are "
             f"{actual[0]}→{actual[1]}{hint}", ins.id)
        )

    def _fitting_module(self, regime: str, actual: tuple[str, str]) -> str | None:
        day = self.opt.as_of
        for ins in self.pack.instruments_of("scc", regime):
            if ins.status != "in_force" or (ins.valid_from and day < ins.valid_from):
                continue
            for m, r in sorted(ins.modules.items()):
                if tuple(r) == actual:
                    return f"SCC {ins.id} module {m}"
        return None

    def _bcr_elsewhere(self, sg: Safeguard, regime: str) -> bool:
        """BCRs approved by another regime's authority are not broken, just not this
        regime's tool (an Irish DPC approval does not serve UK exports)."""
        if not sg.approved_by or not self.pack.regimes[regime].authorities:
            return False
        here = self.pack.regimes[regime].authority(sg.approved_by)
        return here is None and bool(self.pack.authority_regimes(sg.approved_by))

    @staticmethod
    def _validity(
        sg: Safeguard,
        ins: Instrument,
        day: dt.date,
        ctx: _Context,
        regime: Regime,
    ) -> tuple[str, str] | None:
        """Why this safeguard cannot be relied on today, and whether it is stale (valid
        once: an expired contract, an instrument past its end) or invalid; None if fine."""
        if not ins.transfer_tool:
            return f"{ins.name} is not a transfer tool", "invalid"
        if ins.status != "in_force" and ins.valid_until is None:
            return f"{ins.name} is {ins.status}", _STALE
        if ins.valid_from and day < ins.valid_from:
            return f"{ins.name} applies only from {ins.valid_from}", "invalid"
        if sg.type in ("scc", "idta", "uk_addendum"):
            if sg.signed is None:
                return "no `signed` date recorded", "invalid"
            if sg.signed > day:
                return f"signed {sg.signed}, after the evaluation date", "invalid"
            if ins.signed_until and sg.signed > ins.signed_until:
                return (f"signed {sg.signed}, but only contracts concluded on or before "
                        f"{ins.signed_until} could rely on {ins.id}"), "invalid"
            if ins.valid_from and sg.signed < ins.valid_from and ins.type != "scc":
                return (f"signed {sg.signed}, before the instrument applied "
                        f"({ins.valid_from})"), "invalid"
        if ins.valid_until and day > ins.valid_until:
            return f"{ins.name} could be relied on only until {ins.valid_until}", _STALE
        if sg.expires and day > sg.expires:
            return f"expired on {sg.expires}", _STALE
        if sg.type == "scc" and ins.modules:
            if sg.module is None:
                return "no SCC `module` given (1 C2C, 2 C2P, 3 P2P, 4 P2C)", "invalid"
            if sg.module not in ins.modules:
                return f"module {sg.module} does not exist in {ins.id}", "invalid"
        if ins.attaches_to and not set(ins.attaches_to) & ctx.instruments:
            return (f"{ins.name} only works together with SCC "
                    f"{' or '.join(ins.attaches_to)} on the same flow, and the flow has none"), \
                "invalid"
        if sg.type == "bcr":
            return _bcr_problem(sg, day, ctx, regime)
        if sg.type == "derogation":
            return _derogation_problem(sg, ins, ctx)
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

    def _stale_evidence(self, graph: FlowGraph) -> list[Finding]:
        """RES-S002: one warning per piece of stale evidence, however many systems it made."""
        relying: dict[str, list[str]] = {}
        for s in graph:
            reason = dict(s.tags).get(EVIDENCE_STALE_TAG) if s.tags else None
            if reason:
                relying.setdefault(reason, []).append(s.id)
        return [self._finding("RES-S002", min(ids), "system",
                              f"{reason} ({len(ids)} system(s) rely on it)")
                for reason, ids in sorted(relying.items())]

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


def _stale(verdict: _SafeguardVerdict, third: tuple[str, ...], covered: bool,
           out: list[_Spec]) -> None:
    """A stale entry (valid once) is RES-T005 when the transfer has no other basis, and
    RES-T008 (a record-hygiene warning) when another basis covers every destination."""
    for msg, instrument in verdict.stale:
        if covered:
            out.append(("RES-T008", f"{msg}; the transfer relies on another basis, so this "
                        "stale entry only needs removing from the map", third,
                        instrument, None))
        else:
            out.append(("RES-T005", msg, third, instrument, None))


def _not_drafted_for(verdict: _SafeguardVerdict, importer: Party, third: tuple[str, ...],
                     out: list[_Spec]) -> None:
    """RES-T009: a safeguard relied on whose text excludes this importer (2021/914 and an
    importer itself subject to the GDPR under Art. 3(2))."""
    quals = importer.certifications | importer.subject_to
    for _sg, ins in verdict.art46:
        hit = sorted(quals & set(ins.not_drafted_for))
        if hit:
            out.append(("RES-T009", f"{IMPORTER} is {', '.join(hit)}: {ins.name} is not "
                        f"drafted for such an importer, though the flow remains a transfer",
                        third, ins.id, None))


def _occasional_only(verdict: _SafeguardVerdict, derogated: tuple[str, ...],
                     out: list[_Spec]) -> None:
    """RES-T004: a recurring flow on a ground the law keeps for occasional transfers
    (GDPR recital 111: Art. 49(1)(b), (c), (e)); grounds without that limit pass."""
    sg, _, ground = verdict.derogations[0]
    if ground.recurring == "warning":
        label = sg.label()
        out.append(("RES-T004", f"recurring transfer to {', '.join(derogated)} relies on "
                    f"{label}, a ground for occasional transfers only", derogated, label,
                    None))


@dataclass(frozen=True, slots=True)
class _Context:
    """What of the flow, beyond the safeguard itself, decides whether it holds."""

    exporter: Role
    importer: Role
    same_group: bool
    public_authority: bool  # the exporter acts as a public authority (Art. 49(3))
    recurring: bool
    instruments: frozenset[str]  # instrument ids of every safeguard on the flow


def _bcr_problem(
    sg: Safeguard, day: dt.date, ctx: _Context, regime: Regime
) -> tuple[str, str] | None:
    """BCRs hold inside the approved group, approved by an authority of the regime (Art.
    47(1)); the ICO's approvals stopped counting for the EU at the end of 2020."""
    if not ctx.same_group:
        return ("BCRs cover only transfers inside the approved group (set `group` on both "
                "parties)"), "invalid"
    if sg.approved is None or sg.approved > day:
        return "no approval date on or before the evaluation date", "invalid"
    if not regime.authorities:
        return None  # a pack without an authority list cannot check who approved
    if not sg.approved_by:
        return (f"no `approved_by` recorded: BCRs count for {regime.name} only when approved "
                "by one of its supervisory authorities"), "invalid"
    authority = regime.authority(sg.approved_by)
    if authority is None:
        return (f"approved by {sg.approved_by!r}, which is not a supervisory authority of "
                f"{regime.name} known to the pack (regimes.yaml authorities)"), "invalid"
    if authority.until is not None and day > authority.until:
        return (f"approved by {authority.name}, whose approvals count for {regime.name} only "
                f"until {authority.until}"), _STALE
    return None


def _derogation_problem(
    sg: Safeguard, ins: Instrument, ctx: _Context
) -> tuple[str, str] | None:
    """Each ground has its own conditions: some are closed to public authorities (Art.
    49(3)), the residual ground needs a non-repetitive transfer and declared conditions."""
    if not (sg.article or "").strip():
        return f"no `article` given (e.g. {ins.articles[0] if ins.articles else '49(1)(a)'})", \
            "invalid"
    ground = ins.ground(sg.article or "")
    if ground is None:
        return (f"{sg.article} is not a derogation under {ins.name} (grounds: "
                f"{', '.join(ins.articles)})"), "invalid"
    if ctx.public_authority and not ground.public_authorities:
        return (f"{ground.name} is not available to public authorities exercising their public "
                f"powers ({ins.name}; GDPR Art. 49(3))"), "invalid"
    if ctx.recurring and ground.recurring == "error":
        return (f"{ground.name} is only for transfers that are not repetitive, and this flow "
                "is recurring (set `recurring: false` only for a one-off transfer)"), "invalid"
    missing = [c for c in ground.conditions if c not in sg.conditions]
    if missing:
        return (f"{ground.name} holds only with {', '.join(missing)} declared under "
                "`conditions`"), "invalid"
    return None


def _shape(safeguards: tuple[Safeguard, ...]) -> tuple[object, ...]:
    """What of a flow's safeguards the verdict depends on (not the TIA's reference)."""
    return tuple(
        (sg.type, sg.instrument, sg.module, sg.signed, sg.expires, sg.article, sg.ref,
         sg.approved_by, sg.approved, sg.tia is not None, sg.tia.date if sg.tia else None,
         sg.conditions, sg.combines_eu_data)
        for sg in safeguards
    )


def _stamp(
    verdict: _Verdict, flow: Flow, regime: str, importer: Party, findings: list[Finding]
) -> None:
    """The findings of a transfer shape's verdict, written for one flow."""
    prefix = f"{flow.id} ({regime}): "
    for rule_id, body, countries, instrument, severity in verdict.findings:
        r = RULES[rule_id]
        text = prefix + body.replace(IMPORTER, importer.name)
        if TIA_REF in text:
            text = text.replace(TIA_REF, _newest_tia_ref(flow.safeguards))
        findings.append(
            Finding(rule_id, severity or r.severity, text, flow.id, "flow", regime,
                    countries, instrument, r.remediation)
        )


def _newest_tia_ref(safeguards: tuple[Safeguard, ...]) -> str:
    """The reference of the newest dated TIA (the one the message's date is from)."""
    dated = [sg.tia for sg in safeguards if sg.tia and sg.tia.date]
    return max(dated, key=lambda t: t.date or dt.date.min).ref if dated else "?"


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
