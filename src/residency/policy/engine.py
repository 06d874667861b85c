"""The Chapter V engine: one verdict per flow, regime and destination country.

Order of bases (GDPR Arts 45 → 46/47 → 49): an adequacy decision in force whose scope
the importer meets; else a safeguard valid on the date and fitting the roles; else a
derogation. Everything unknown fails closed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import starmap
from operator import attrgetter
from typing import IO, Any

from residency._fork import Forked, Halves
from residency.graph import FlowGraph
from residency.model import (
    ANY_COUNTRY,
    EVIDENCE_STALE_TAG,
    OUTSIDE_INVENTORY,
    Basis,
    BasisKind,
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
    SafeguardType,
    Severity,
    SubjectKind,
    System,
    Transfer,
)
from residency.policy.messages import (
    IMPORTER,
    Countries,
    QuotedTia,
    SafeguardDate,
    Text,
    join,
    text,
)
from residency.policy.pack import PolicyPack
from residency.policy.rules import RULES
from residency.policy.schema import DerogationGround, Instrument, OnwardRules, Regime

NO_BASIS = Basis(BasisKind.NONE)
PARALLEL_AT = 40_000
"""Maps with at least this many flows are judged on two cores (see `_judge_flows`)."""
_PARENT_SHARE = 0.54  # the worker also pickles its rows: give it a little less


def _row(*fields: object) -> tuple[object, ...]:
    return fields


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _sort_findings(findings: list[Finding]) -> None:
    """By severity, rule, subject, regime: one stable pass per key from the last, each
    keyed by an attribute (C speed) rather than one tuple built per finding."""
    findings.sort(key=_regime_key)
    findings.sort(key=attrgetter("subject"))
    findings.sort(key=attrgetter("rule"))
    findings.sort(key=_severity_rank)


def _regime_key(f: Finding) -> str:
    return f.regime or ""


def _severity_rank(f: Finding) -> int:
    return _RANK[f.severity]

ART46_TYPES = frozenset({SafeguardType.SCC, SafeguardType.IDTA, SafeguardType.UK_ADDENDUM,
                         SafeguardType.BCR, SafeguardType.CODE_OF_CONDUCT,
                         SafeguardType.CERTIFICATION})
KNOWN_TYPES = ART46_TYPES | {SafeguardType.DEROGATION}
CONTRACT_TYPES = frozenset({SafeguardType.SCC, SafeguardType.IDTA, SafeguardType.UK_ADDENDUM})


@dataclass(slots=True)
class _SafeguardVerdict:
    """What one flow's safeguards give for one regime (computed once, used per country)."""

    art46: list[tuple[Safeguard, Instrument]] = field(default_factory=list)
    derogations: list[tuple[Safeguard, Instrument, DerogationGround]] = field(
        default_factory=list)
    problems: list[tuple[str, Text, str | None]] = field(default_factory=list)  # rule, msg, ins
    stale: list[tuple[Text, str | None]] = field(default_factory=list)  # msg, instrument
    """Entries that were valid once (expired contract, instrument past its end): an error
    when nothing else covers the transfer, a hygiene warning beside a valid basis."""
    not_applicable: list[str] = field(default_factory=list)


# rule, message body, countries (places in the flow's destination list), instrument,
# severity (None: the rule's own)
_Spec = tuple[str, Text, tuple[int, ...], str | None, Severity | None]
# rule, severity, message when it quotes nothing of the flow, body, countries, instrument,
# remediation: a `_Spec` as `_stamp` writes it
_Stamp = tuple[str, Severity, str | None, Text, tuple[int, ...], str | None, str | None]
_Subsets = dict[tuple[tuple[str, ...], tuple[int, ...]], tuple[str, ...]]
_STALE = "stale"  # marks a validity problem of an entry that was once valid


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A case's bases (one per destination, in the flow's order) and findings."""

    bases: tuple[Basis, ...]
    findings: list[_Spec]
    same_entity: bool = False
    pairs: dict[tuple[str, ...], tuple[tuple[str, Basis], ...]] = field(default_factory=dict)
    """(country, basis) pairs per destination tuple, shared by the flows of this verdict."""
    stamps: list[_Stamp] = field(default_factory=list)
    """`findings` prepared for stamping onto flows (filled on first use, see `_prepare`)."""


@dataclass(frozen=True, slots=True)
class EngineOptions:
    as_of: dt.date
    assume_invalid: frozenset[str] = frozenset()
    today: dt.date = field(default_factory=dt.date.today)
    pack_grace_days: int = 90
    """Evaluating today with a pack older than this is RES-P001 (a future date always is)."""


class Engine:
    """Evaluates a data map (plus collected inventories) against a policy pack."""

    def __init__(self, pack: PolicyPack, options: EngineOptions,
                 halves: Halves | None = None) -> None:
        """`halves`: a process that loads the same inputs judges the other half of the
        flows (`report tia`'s second process, `residency._fork.Halves`)."""
        self.pack = pack
        self.opt = options
        self._halves = halves
        self._inputs_digest = b""
        self._adequacy_cache: dict[tuple[object, ...], tuple[Basis | None, str | None]] = {}
        self._sg_cache: dict[tuple[object, ...], _SafeguardVerdict] = {}
        self._data_cache: dict[frozenset[str], _Data] = {}
        self._class_cache: dict[tuple[object, ...], int] = {}
        # Composite parts of the verdict key, interned to small ints: a key of ints and
        # strings hashes in constant time, where nested tuples re-hash on every lookup.
        self._interned: dict[object, int] = {}
        self._onward_cache: dict[tuple[str, str], OnwardRules | None] = {}
        self._dates = _DateClasses(options.as_of, pack)
        self._efta_lag = pack.eea_efta_lag
        self._special: frozenset[str] = frozenset()
        self._condition_categories: dict[str, frozenset[str]] = {}

    # ------------------------------------------------------------------ entry
    def run(self, datamap: DataMap, inventories: Iterable[Inventory] = ()) -> Report:
        ground, findings, gaps = self._prepare(datamap, inventories)
        graph, resolved, base = ground.graph, ground.resolved, ground.base
        transfers: list[Transfer] = []
        self._judge_flows(ground, transfers, findings)
        self._unclassified(graph, datamap, findings)
        for rule_ in datamap.residency:
            self._residency(graph, rule_, resolved, findings)
        self._classification(graph, datamap, findings)
        from residency.policy.keys import key_findings  # RES-K001/K002 (issue 14)

        findings.extend(key_findings(self.pack, self.opt.as_of, graph, base,
                                     datamap.special_categories, self.opt.assume_invalid))
        self._pack_age(findings)
        self._unmodelled(transfers, findings)
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
        _sort_findings(findings)
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

    def _prepare(
        self, datamap: DataMap, inventories: Iterable[Inventory]
    ) -> tuple[_Ground, list[Finding], list[CoverageGap]]:
        """Everything the judge rests on: the graph of the map's and the inventories'
        systems and flows, each system's location and base regimes, regimes propagated."""
        self._special = frozenset(name for name, _ in datamap.special_categories)
        self._condition_categories = {
            "hr_data": datamap.hr_data_categories,
            "health_data": self.pack.health_categories,
        }
        self._inputs_digest = f"{datamap.digest}|{self.pack.info.digest}".encode()
        systems, flows, parties, gaps = self._inputs(datamap, inventories)
        findings: list[Finding] = []
        resolved = self._resolve_all(systems, findings)
        systems = self._provider_affiliates(systems, parties, resolved)
        flows = _classified_safeguards(flows, systems, datamap)
        graph = FlowGraph(parties.values(), systems, flows)
        base = {
            s.id: self._base_regimes(s, graph.party_of(s), resolved[s.id]) for s in graph
        }
        graph.propagate(base)
        return _Ground(graph, resolved, base), findings, gaps

    def _inputs(
        self, datamap: DataMap, inventories: Iterable[Inventory]
    ) -> tuple[list[System], list[Flow], dict[str, Party], list[CoverageGap]]:
        """The map's and the collectors' systems, flows and gaps; a flow end nobody
        described becomes an unknown-location system (RES-L001), an unknown party a party
        of unknown country (or the cloud provider's contracting entity)."""
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
        return systems, flows, parties, gaps

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
        ground: _Ground,
        transfers: list[Transfer],
        findings: list[Finding],
    ) -> None:
        """Judge every flow; on a large map the last part of the flows in a forked worker
        (`residency._fork`), whose transfers and findings come back as rows of their
        fields and are appended after this process's own, so the order, and every byte of
        the report, is what one process would have produced."""
        flows = ground.graph.flows
        if self._halves is not None:
            self._judge_halves(self._halves, ground, transfers, findings)
            return
        cut = int(len(flows) * _PARENT_SHARE)
        worker = None
        if len(flows) >= PARALLEL_AT:
            worker = Forked(lambda fh: self._judge_rows(ground, flows[cut:], fh))
        if worker is None or not worker.running:
            self._judge(ground, flows, transfers, findings)
            return
        try:
            self._judge(ground, flows[:cut], transfers, findings)
            rows = worker.join()
        finally:
            worker.close()  # an exception here: do not leave the child behind
        if rows is None:  # the worker failed: judge its part here (slower, same result)
            self._judge(ground, flows[cut:], transfers, findings)
            return
        with rows:
            # our own child's rows, through an unnamed 0600 file nobody else can open
            whole = _append_blocks(rows, transfers, findings)
        if not whole:  # cannot happen from a child that exited well; fail safe anyway
            self._judge(ground, flows[cut:], transfers, findings)

    def _judge_halves(
        self,
        halves: Halves,
        ground: _Ground,
        transfers: list[Transfer],
        findings: list[Finding],
    ) -> None:
        """Judge this process's half of the flows and take the other half's rows from the
        process that judged it (from the same inputs: `_inputs_digest`); a half that does not come
        is judged here. Either way the halves are appended in order, as one process would."""
        flows = ground.graph.flows
        cut = len(flows) // 2
        parts = (flows[:cut], flows[cut:])
        side = halves.side if halves.side in (0, 1) else 0
        rows: tuple[list[Any], list[Any]] = ([], [])
        self._judge(ground, parts[side], rows[0], rows[1], _row, _row)
        theirs = halves.swap(self._inputs_digest,
                             pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
        done = {side: rows}
        if theirs is not None:
            # the other process's rows, through an unnamed 0600 file nobody else can open,
            # and only once it has shown it read the same map and pack
            done[1 - side] = pickle.loads(theirs)  # noqa: S301
        for part in (0, 1):
            if part in done:
                _append_rows(done[part], transfers, findings)
            else:
                self._judge(ground, parts[part], transfers, findings)

    def _judge_rows(
        self,
        ground: _Ground,
        flows: Sequence[Flow],
        out: IO[bytes],
    ) -> None:
        """The worker's part: plain tuples pickle at C speed (shared strings and tuples
        once each); the dataclasses are built on the parent's side. The rows go out a
        block of flows at a time, while they are still in the cache: one pickle of a
        million flows' rows keeps a memo of every object and cost 18x the 100k one."""
        transfers: list[Any] = []
        findings: list[Any] = []

        def flush() -> None:
            pickle.dump((transfers, findings), out, protocol=pickle.HIGHEST_PROTOCOL)
            transfers.clear()
            findings.clear()

        self._judge(ground, flows, transfers, findings, _row, _row, flush)
        pickle.dump(None, out)  # the end: a file without it is not used

    def _judge(
        self,
        ground: _Ground,
        flows: Sequence[Flow],
        transfers: list[Any],
        findings: list[Any],
        make_transfer: Callable[..., Any] = Transfer,
        make_finding: Callable[..., Any] = Finding,
        flush: Callable[[], None] | None = None,
    ) -> None:
        """Judge each flow for every regime its data carries (the hot loop), `_BLOCK` flows
        at a time; `flush`, when given, is called after each block.

        A verdict depends on the transfer's case (regime, destinations, the parties'
        qualifications and roles, what each safeguard's dates mean on the evaluation date,
        the flow's flags), not on the flow's name or exact dates: it is computed once per
        case and stamped onto each flow, its messages quoting that flow's own values.
        """
        caches = _JudgeCaches({p.id: p.certifications | p.subject_to
                               for p in ground.graph.parties.values()})
        for start in range(0, len(flows), _BLOCK):
            self._judge_block(ground, flows[start:start + _BLOCK], transfers,
                              findings, make_transfer, make_finding, caches)
            if flush is not None:
                flush()

    def _judge_block(
        self,
        ground: _Ground,
        flows: Sequence[Flow],
        transfers: list[Any],
        findings: list[Any],
        make_transfer: Callable[..., Any],
        make_finding: Callable[..., Any],
        caches: _JudgeCaches,
    ) -> None:
        third_cache, verdicts, quals = caches.third, caches.verdicts, caches.quals
        ordered, subsets = caches.ordered, caches.subsets
        graph, resolved, base = ground.graph, ground.resolved, ground.base
        systems, parties = graph.systems, graph.parties
        for flow in flows:
            categories = flow.data_categories or graph.categories_held(flow.source)
            if not categories:
                continue  # no personal data declared or classified (see RES-I001)
            src, dst = systems[flow.source], systems[flow.target]
            src_base = base[src.id]
            regimes = src_base | graph.carried_regimes(src.id, categories)
            in_order = ordered.get(regimes) or ordered.setdefault(regimes, tuple(sorted(regimes)))
            data: _Data | None = None
            fixed = 0  # the key's parts that are the flow's, not the regime's (interned)
            src_party, dst_party = parties[src.party], parties[dst.party]
            dst_quals = quals[dst.party]
            for regime in in_order:
                third = third_cache.get((dst.id, regime))
                if third is None:
                    third = third_cache[(dst.id, regime)] = self._destinations(
                        regime, resolved[dst.id], dst, dst_party)
                if not third:
                    continue
                if data is None:
                    data = self._data(categories)
                    fixed = self._intern((
                        src.party == dst.party,
                        src_party.group is not None and src_party.group == dst_party.group,
                        dst_quals, src.role, dst.role,
                        self._intern(self._shape(flow.safeguards)), flow.recurring,
                        data.conditions, src_party.public_authority))
                onward = regime not in src_base
                origin = self._origin(regime, src_party.country, onward)
                returns = self._returns(graph, regime, src, dst, onward)
                key = (regime, self._classes(regime, third, dst_quals, dst_party,
                                             data.conditions, origin),
                       onward, origin, returns, fixed)
                verdict = verdicts.get(key)
                if verdict is None:
                    verdict = verdicts[key] = self._verdict(_Case(
                        regime, third, src_party, dst_party, src.role, dst.role,
                        flow.safeguards, flow.recurring, onward, data.conditions, bool(returns)))
                transfers.append(make_transfer(
                    flow.id, regime, src.id, dst.id, src.party, dst.party, third,
                    verdict.pairs.get(third) or verdict.pairs.setdefault(
                        third, tuple(zip(third, verdict.bases, strict=True))),
                    data.categories, onward, flow.recurring, verdict.same_entity,
                    data.special))
                if verdict.findings:
                    _stamp(verdict, flow, regime, dst_party, third, findings, subsets,
                           make_finding)

    def _intern(self, value: object) -> int:
        """A small int standing for `value` (equal values, equal ints) for the run."""
        hit = self._interned.get(value)
        if hit is None:
            hit = self._interned[value] = len(self._interned)
        return hit

    def _classes(self, regime: str, third: tuple[str, ...], quals: frozenset[str],
                 importer: Party, data: frozenset[str], origin: str) -> int:
        """Each destination as the verdict sees it: its Art. 45 outcome for this importer
        (countries without a decision are alike), interned. Messages name the flow's own
        countries. `quals` is the importer's certifications and `subject_to`."""
        key = (regime, third, quals, data, origin)
        hit = self._class_cache.get(key)
        if hit is None:
            hit = self._class_cache[key] = self._intern(tuple(
                ANY_COUNTRY if c == ANY_COUNTRY
                else self._adequacy(regime, c, importer, data, origin)
                for c in third))
        return hit

    def _data(self, categories: frozenset[str]) -> _Data:
        """What of a flow's categories the law asks about (cached per set of categories)."""
        hit = self._data_cache.get(categories)
        if hit is None:
            cats = tuple(sorted(categories))
            conditions = frozenset(
                kind for kind, names in self._condition_categories.items()
                if not names.isdisjoint(categories))
            hit = self._data_cache[categories] = _Data(
                cats, tuple(c for c in cats if c in self._special), conditions)
        return hit

    def _origin(self, regime: str, country: str, onward: bool) -> str:
        """The exporter's country, where it changes the verdict: an EEA-EFTA state that
        takes EU decisions only once incorporated, or an adequate country whose own
        onward-transfer rules apply; else ""."""
        if country in self._efta_lag or (onward and self._onward_rules(regime, country)):
            return country
        return ""

    def _returns(
        self, graph: FlowGraph, regime: str, src: System, dst: System, onward: bool
    ) -> bool:
        """A processor handing data back to the controller it processes them for, in a
        regime that does not treat that as a restricted transfer (UK: ICO guidance on
        international transfers, January 2026). The data must have come from that
        controller: one of its systems feeds the processor's."""
        if (src.role is not Role.PROCESSOR or dst.role is not Role.CONTROLLER
                or self.pack.regimes[regime].processor_return is None
                or src.party == dst.party):
            return False
        return graph.fed_by_party(src.id, dst.party)

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

    def _shape(self, safeguards: tuple[Safeguard, ...]) -> tuple[object, ...]:
        """What of a flow's safeguards the verdict depends on: every field but the TIA's
        reference, with each date replaced by its place among the dates the law compares
        it with (see `_DateClasses`), so contracts signed on different days of the same
        period share one verdict."""
        if not safeguards:
            return ()
        cls = self._dates.of
        return tuple(
            (sg.type, sg.instrument, sg.module, cls(sg.signed), cls(sg.expires), sg.article,
             sg.ref, sg.approved_by, cls(sg.approved), sg.tia is not None,
             cls(sg.tia.date) if sg.tia else None, sg.conditions, sg.combines_eu_data)
            for sg in safeguards
        )

    # ------------------------------------------------------------------ the verdict
    def _verdict(self, case: _Case) -> _Verdict:
        """The law's questions in its order, for one transfer case: is it a restricted
        transfer at all; then per destination Art. 45 adequacy, Art. 46/47 safeguards,
        Art. 49 derogations; then what the basis found still asks for."""
        if case.exporter.id == case.importer.id:
            return self._within_entity(case)
        if case.returns_to_controller:
            return self._not_restricted(case)
        tools = self._safeguards(case)
        every = tuple(range(len(case.third)))
        out: list[_Spec] = [(rule_id, msg, every, instrument, None)
                            for rule_id, msg, instrument in tools.problems]
        found = _Found()
        for index, country in enumerate(case.third):
            found.bases.append(self._basis(case, index, country, tools, found))
        self._conditions(case, tools, found, out)
        self._no_basis(case, tools, found, out)
        return _Verdict(tuple(found.bases), out)

    @staticmethod
    def _within_entity(case: _Case) -> _Verdict:
        """Same legal entity: not a transfer (EDPB 05/2021 criterion 3), worth knowing."""
        every = tuple(range(len(case.third)))
        return _Verdict(
            tuple(Basis(BasisKind.SAME_ENTITY) for _ in every),
            [("RES-I002", text("stays within ", IMPORTER, " but reaches ", Countries(every)),
              every, None, None)],
            same_entity=True,
        )

    def _not_restricted(self, case: _Case) -> _Verdict:
        """UK GDPR: a processor returning data to its controller abroad does not make a
        restricted transfer (the controller's own transfer is judged on its flows)."""
        rule = self.pack.regimes[case.regime].processor_return
        assert rule is not None
        basis = Basis(BasisKind.NOT_RESTRICTED, "processor to its controller", rule.source,
                      rule.note)
        return _Verdict(tuple(basis for _ in case.third), [])

    def _basis(self, case: _Case, index: int, country: str, tools: _SafeguardVerdict,
               found: _Found) -> Basis:
        """Art. 45 first, then Art. 46/47, then Art. 49 (GDPR Art. 49(1) first sentence)."""
        adequacy, scope_miss = (None, None)
        if country != ANY_COUNTRY:
            adequacy, scope_miss = self._adequacy(case.regime, country, case.importer,
                                                  case.data, case.exporter.country)
        if adequacy is not None:
            return adequacy
        if tools.art46:
            sg, ins = tools.art46[0]
            if any(i.needs_tia(s.module, s.combines_eu_data) for s, i in tools.art46):
                found.tia_needed.append(index)
            return Basis(BasisKind.SAFEGUARD, sg.label(), ins.source, ins.name)
        if tools.derogations:
            sg, ins, _ = tools.derogations[0]
            found.derogated.append(index)
            return Basis(BasisKind.DEROGATION, sg.label(), ins.source, ins.name)
        if scope_miss and not case.onward:
            found.out_of_scope.append((index, scope_miss))
        else:
            found.missing.append(index)
            if scope_miss:
                found.scope_notes.append(text(IMPORTER, f" is outside the scope of "
                                              f"{scope_miss}{self._data_note(scope_miss, case)}"))
        return NO_BASIS

    def _conditions(self, case: _Case, tools: _SafeguardVerdict, found: _Found,
                    out: list[_Spec]) -> None:
        """What the bases found still ask for: stale entries, instruments not drafted for
        this importer, a TIA, and derogations kept for occasional transfers."""
        covered = not found.missing and not found.out_of_scope
        every = tuple(range(len(case.third)))
        _stale(tools, every, covered, out)
        _not_drafted_for(tools, case.importer, every, out)
        if found.tia_needed:
            self._check_tia(case, tools, tuple(found.tia_needed), out)
        if found.derogated and case.recurring:
            _occasional_only(tools, tuple(found.derogated), out)

    def _no_basis(self, case: _Case, tools: _SafeguardVerdict, found: _Found,
                  out: list[_Spec]) -> None:
        """RES-T002 (outside a decision's scope), RES-T001/T003 (nothing at all)."""
        unusable = ""
        if tools.not_applicable:
            unusable = (f"; present but not usable under {case.regime}: "
                        + ", ".join(tools.not_applicable))
        for index, decision in found.out_of_scope:
            dec = self.pack.find_decision(decision)
            scope = f" ({self.pack.scopes[dec.scope].description})" if dec else ""
            out.append(("RES-T002", text(IMPORTER, " in ", Countries((index,)), " is outside "
                        f"the scope of {decision}{scope}{self._data_note(decision, case)}; no "
                        f"safeguard or derogation applies{unusable}"), (index,), decision, None))
        if found.missing:
            rule_id = "RES-T003" if case.onward else "RES-T001"
            what = "onward transfer" if case.onward else "transfer"
            notes = join(found.scope_notes, "; ")
            missing = tuple(found.missing)
            out.append((rule_id, text(f"{what} to ", IMPORTER, " in ", Countries(missing),
                        " has no adequacy decision, valid safeguard or derogation",
                        "; " if found.scope_notes else "", notes,
                        self._onward_note(case), unusable),
                        missing, None, None))

    def _onward_note(self, case: _Case) -> str:
        """Where the exporter sits in an adequate country whose decision relies on that
        country's own onward-transfer rules, say which (Japan's Supplementary Rule 4, the
        DPF's Accountability for Onward Transfer principle)."""
        if not case.onward:
            return ""
        rules = self._onward_rules(case.regime, case.exporter.country)
        return f"; onward transfers from {case.exporter.country} follow {rules.rule}" \
            if rules is not None else ""

    def _data_note(self, decision_id: str, case: _Case) -> str:
        """Why the flow's data fall outside a decision whose scope treats them separately."""
        dec = self.pack.find_decision(decision_id)
        if dec is None:
            return ""
        scope = self.pack.scopes[dec.scope]
        notes = []
        if "hr_data" in case.data and scope.hr_data is not None:
            notes.append(f"the flow carries human-resources data, covered only for importers "
                         f"qualified for it ({', '.join(scope.hr_data.requires_any)})")
        if "health_data" in case.data and scope.health_data is not None:
            notes.append(f"the flow carries health data, covered for importers under "
                         f"{', '.join(scope.health_data.requires_any)}")
        return "".join(f"; {n}" for n in notes)

    def _adequacy(
        self, regime: str, country: str, importer: Party, data: frozenset[str] = frozenset(),
        exporter_country: str = "",
    ) -> tuple[Basis | None, str | None]:
        """Art. 45: a decision in force for the country whose scope the importer meets; for
        an exporter in an EEA-EFTA state, only once the EEA Joint Committee incorporated it."""
        efta = exporter_country if exporter_country in self._efta_lag else ""
        key = (regime, country, importer.certifications | importer.subject_to, data, efta)
        hit = self._adequacy_cache.get(key)
        if hit is None:
            out = self.pack.adequacy(
                regime, country, self.opt.as_of, importer, self.opt.assume_invalid,
                "hr_data" in data, health_data="health_data" in data, eea_efta=bool(efta),
            )
            if out.decision is not None:
                d = out.decision
                detail = d.instrument + (f" — elevated risk: {d.note}" if d.risk == "elevated"
                                         else "")
                hit = (Basis(BasisKind.ADEQUACY, d.id, d.source, detail), None)
            else:
                hit = (None, out.out_of_scope.id if out.out_of_scope else None)
            self._adequacy_cache[key] = hit
        return hit

    def _check_tia(
        self,
        case: _Case,
        tools: _SafeguardVerdict,
        countries: tuple[int, ...],
        out: list[_Spec],
    ) -> None:
        """One assessment covers the transfer, whichever safeguard entry records it (a UK
        Addendum rides on the SCCs and their TIA). The review period is the pack's default
        (`tia_review_days`), not a statutory limit, and the message says so."""
        regime = case.regime
        review = self.pack.regimes[regime].tia_review_days
        day = self.opt.as_of
        dated = [sg.tia.date for sg in case.safeguards if sg.tia is not None and sg.tia.date]
        if any(0 <= (day - d).days <= review for d in dated):
            return
        if any(d <= day for d in dated):
            why = text("TIA ", QuotedTia(day, True, "ref"), " dated ",
                       QuotedTia(day, True, "date"), f" is older than {review} days (the "
                       f"pack's default review period, {regime}.tia_review_days; not a "
                       "statutory limit)")
        elif dated:
            why = text("the only dated TIA (", QuotedTia(day, False, "ref"), ", ",
                       QuotedTia(day, False, "date"), ") postdates the evaluation date "
                       f"{day}: no assessment existed then")
        else:
            why = text("no dated TIA is recorded")
        label = next((sg.label() for sg, ins in tools.art46
                      if ins.needs_tia(sg.module, sg.combines_eu_data)),
                     tools.art46[0][0].label())
        out.append(("RES-T007", text("transfer to ", Countries(countries), f" relies on "
                                     f"{label} but ", why), countries, label, None))

    # ------------------------------------------------------------------ safeguards
    def _safeguards(self, case: _Case) -> _SafeguardVerdict:
        """Art. 46/47 tools and Art. 49 grounds on the flow, each checked for this regime,
        date and pair of roles (cached: many cases share their safeguards)."""
        regime, safeguards = case.regime, case.safeguards
        exporter, importer = case.exporter, case.importer
        same_group = exporter.group is not None and exporter.group == importer.group
        tool_regimes = self._tool_regimes(case)
        key = (regime, self._shape(safeguards), case.exporter_role, case.importer_role,
               same_group, exporter.public_authority, case.recurring, tool_regimes)
        hit = self._sg_cache.get(key)
        if hit is not None:
            return hit
        verdict = _SafeguardVerdict()
        ctx = _Context(case.exporter_role, case.importer_role, same_group,
                       exporter.public_authority, case.recurring,
                       frozenset(s.instrument for s in safeguards if s.instrument),
                       tool_regimes)
        for index, sg in enumerate(safeguards):
            self._one_safeguard(index, sg, regime, ctx, verdict)
        self._sg_cache[key] = verdict
        return verdict

    def _tool_regimes(self, case: _Case) -> tuple[str, ...]:
        """The regimes whose transfer tools serve this transfer: its own, and, for an
        onward transfer from an adequate country whose decision relies on that country's
        own rules, that country's regime (EU data at a UK importer go on under an IDTA)."""
        if not case.onward:
            return (case.regime,)
        rules = self._onward_rules(case.regime, case.exporter.country)
        if rules is None or rules.regime is None or rules.regime == case.regime:
            return (case.regime,)
        return (case.regime, rules.regime)

    def _onward_rules(self, regime: str, country: str) -> OnwardRules | None:
        key = (regime, country)
        if key not in self._onward_cache:
            self._onward_cache[key] = self.pack.onward_rules(regime, country, self.opt.as_of)
        return self._onward_cache[key]

    def _one_safeguard(
        self, index: int, sg: Safeguard, regime: str, ctx: _Context, verdict: _SafeguardVerdict
    ) -> None:
        label = sg.label()
        ins = self._instrument(sg, regime, ctx, label, verdict)
        if ins is None:
            return
        if ins.id in self.opt.assume_invalid:
            verdict.problems.append(("RES-T005", text(f"{label}: assumed invalid (what-if)"),
                                     ins.id))
            return
        if sg.type == SafeguardType.BCR and self._bcr_elsewhere(sg, ins.regime):
            verdict.not_applicable.append(f"{label} (approved by {sg.approved_by}, not an "
                                          f"authority of {ins.regime})")
            return
        problem = _validity(index, sg, ins, self.opt.as_of, ctx, self.pack.regimes[ins.regime])
        if problem is not None:
            message, kind = problem
            if kind == _STALE:
                verdict.stale.append((text(f"{label}: ", message), ins.id))
            else:
                verdict.problems.append(("RES-T005", text(f"{label}: ", message), ins.id))
            return
        if sg.type == SafeguardType.SCC:
            self._role_fit(sg, ins, regime, ctx, label, verdict)
        if sg.type == SafeguardType.DEROGATION:
            ground = ins.ground(sg.article or "")
            if ground is not None:  # always: _validity reports an unknown ground
                verdict.derogations.append((sg, ins, ground))
        else:
            verdict.art46.append((sg, ins))

    def _instrument(self, sg: Safeguard, regime: str, ctx: _Context, label: str,
                    verdict: _SafeguardVerdict) -> Instrument | None:
        """The pack instrument a map entry names (or the newest of its type for this regime);
        None, with the problem recorded, when there is none to judge."""
        if sg.type not in KNOWN_TYPES:
            verdict.problems.append(("RES-T005", text(
                f"unknown safeguard type {sg.type!r} (expected one of "
                f"{', '.join(sorted(KNOWN_TYPES))})"), label))
            return None
        usable = ctx.tool_regimes
        candidates = [i for r in usable for i in self.pack.instruments_of(sg.type, r)]
        if sg.type in (SafeguardType.SCC, SafeguardType.ART28_CLAUSES) or sg.instrument:
            if not sg.instrument:
                verdict.problems.append(("RES-T005", text(
                    f"{label}: no `instrument` given (e.g. \"2021/914\")"), label))
                return None
            named = self.pack.find_instrument(sg.instrument)
            if not named:
                verdict.problems.append(("RES-T005", text(
                    f"{label}: instrument {sg.instrument!r} is not in the policy pack"), label))
                return None
            if all(not i.transfer_tool for i in named):
                verdict.problems.append(("RES-T005", text(
                    f"{label}: {named[0].name} is not a transfer tool"), label))
                return None
            candidates = [i for i in named if i.regime in usable]
        if not candidates:
            verdict.not_applicable.append(label)
            return None
        if sg.instrument is None and len(candidates) > 1:
            return max(candidates, key=lambda i: i.valid_from or dt.date.min)
        return candidates[0]

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
            ("RES-T006", text(f"{label} is for {roles[0]}→{roles[1]} but the roles are "
                              f"{actual[0]}→{actual[1]}{hint}"), ins.id)
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
    def _unclassified(self, graph: FlowGraph, datamap: DataMap, findings: list[Finding]) -> None:
        """RES-I001: a collected resource without a classification tag."""
        mapless = not datamap.classification.values  # no values: no tag can classify
        for s in graph:
            if s.origin is not Origin.DECLARED and (not s.classified or mapless):
                findings.append(self._finding(
                    "RES-I001", s.id, SubjectKind.SYSTEM, f"{s.id} "
                    f"({s.resource_id or s.location.describe()}) has no classification tag"))

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
        hints: dict[str, str] = {}  # a mistyped value recurs on every resource tagged with it
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
                hint = hints.get(value)
                if hint is None:
                    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6) or [
                        n for n in names if n.casefold() == value.strip().casefold()]
                    hint = hints[value] = f"; did you mean {close[0]!r}?" if close else ""
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

    def _unmodelled(self, transfers: list[Transfer], findings: list[Finding]) -> None:
        """RES-P001 for a regime the pack models only from a later date than the evaluation
        date (the Swiss FADP before 2023-09-01), once per regime a transfer was judged under."""
        day = self.opt.as_of
        for regime in sorted({t.regime for t in transfers}):
            since = self.pack.regimes[regime].modelled_from
            if since is None or day >= since:
                continue
            findings.append(self._finding(
                "RES-P001", f"policy-pack:{self.pack.info.name}:{regime}", SubjectKind.PACK,
                f"evaluated as of {day.isoformat()}, but policy pack {self.pack.info.name} "
                f"models {self.pack.regimes[regime].name} only from {since.isoformat()}: the "
                "law before that (and its lists) is not in it, so these verdicts are unreliable",
                regime=regime))

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


def _stale(verdict: _SafeguardVerdict, third: tuple[int, ...], covered: bool,
           out: list[_Spec]) -> None:
    """A stale entry (valid once) is RES-T005 when the transfer has no other basis, and
    RES-T008 (a record-hygiene warning) when another basis covers every destination."""
    for msg, instrument in verdict.stale:
        if covered:
            out.append(("RES-T008", text(msg, "; the transfer relies on another basis, so "
                        "this stale entry only needs removing from the map"), third,
                        instrument, None))
        else:
            out.append(("RES-T005", msg, third, instrument, None))


def _not_drafted_for(verdict: _SafeguardVerdict, importer: Party, third: tuple[int, ...],
                     out: list[_Spec]) -> None:
    """RES-T009: a safeguard relied on whose text excludes this importer (2021/914 and an
    importer itself subject to the GDPR under Art. 3(2))."""
    quals = importer.certifications | importer.subject_to
    for _sg, ins in verdict.art46:
        hit = sorted(quals & set(ins.not_drafted_for))
        if hit:
            out.append(("RES-T009", text(IMPORTER, f" is {', '.join(hit)}: {ins.name} is not "
                        "drafted for such an importer, though the flow remains a transfer"),
                        third, ins.id, None))


def _occasional_only(verdict: _SafeguardVerdict, derogated: tuple[int, ...],
                     out: list[_Spec]) -> None:
    """RES-T004: a recurring flow on a ground the law keeps for occasional transfers
    (GDPR recital 111: Art. 49(1)(b), (c), (e)); grounds without that limit pass."""
    sg, _, ground = verdict.derogations[0]
    if ground.recurring == "warning":
        label = sg.label()
        out.append(("RES-T004", text("recurring transfer to ", Countries(derogated),
                    f" relies on {label}, a ground for occasional transfers only"), derogated,
                    label, None))


@dataclass(frozen=True, slots=True)
class _Ground:
    """What every flow is judged on: the graph (regimes propagated), each system's resolved
    location and the regimes its place and party bring (`Engine._prepare`)."""

    graph: FlowGraph
    resolved: dict[str, ResolvedLocation]
    base: dict[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class _Context:
    """What of the flow, beyond the safeguard itself, decides whether it holds."""

    exporter: Role
    importer: Role
    same_group: bool
    public_authority: bool  # the exporter acts as a public authority (Art. 49(3))
    recurring: bool
    instruments: frozenset[str]  # instrument ids of every safeguard on the flow
    tool_regimes: tuple[str, ...] = ()  # the regimes whose tools serve this transfer


@dataclass(frozen=True, slots=True)
class _Case:
    """One transfer case: everything the verdict depends on (the first flow's values)."""

    regime: str
    third: tuple[str, ...]
    exporter: Party
    importer: Party
    exporter_role: Role
    importer_role: Role
    safeguards: tuple[Safeguard, ...]
    recurring: bool
    onward: bool
    data: frozenset[str]  # scope data conditions the flow's categories trigger (hr_data, ...)
    returns_to_controller: bool = False


@dataclass(slots=True)
class _Found:
    """Per destination, what the bases left to say (filled by `_basis`)."""

    bases: list[Basis] = field(default_factory=list)
    out_of_scope: list[tuple[int, str]] = field(default_factory=list)  # index, decision
    missing: list[int] = field(default_factory=list)
    tia_needed: list[int] = field(default_factory=list)
    derogated: list[int] = field(default_factory=list)
    scope_notes: list[Text] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Data:
    """A flow's categories as the law reads them."""

    categories: tuple[str, ...]
    special: tuple[str, ...]  # Art. 9 / Art. 10 categories among them
    conditions: frozenset[str]  # scope data conditions they trigger (hr_data, health_data)


class _DateClasses:
    """Each date the engine compares a safeguard's dates with (the evaluation day, the day a
    TIA review period began, every instrument's `valid_from`/`signed_until`), sorted. A
    date's class is its place among them (before, on or after each): two dates of the same
    class compare alike with all of them, so they give the same verdict."""

    def __init__(self, day: dt.date, pack: PolicyPack) -> None:
        marks = {day}
        marks.update(day - dt.timedelta(days=r.tia_review_days) for r in pack.regimes.values())
        for ins in pack.instruments:
            marks.update(d for d in (ins.valid_from, ins.signed_until, ins.valid_until) if d)
        self._marks = sorted(marks)
        self._seen: dict[dt.date, int] = {}

    def of(self, date: dt.date | None) -> int | None:
        if date is None:
            return None
        hit = self._seen.get(date)
        if hit is None:
            i = bisect.bisect_left(self._marks, date)
            on = i < len(self._marks) and self._marks[i] == date
            hit = self._seen[date] = 2 * i + (1 if on else 0)
        return hit


def _validity(
    index: int,
    sg: Safeguard,
    ins: Instrument,
    day: dt.date,
    ctx: _Context,
    regime: Regime,
) -> tuple[Text, str] | None:
    """Why the flow's `index`-th safeguard cannot be relied on today, and whether it is
    stale (valid once: an expired contract, an instrument past its end) or invalid."""
    if not ins.transfer_tool:
        return text(f"{ins.name} is not a transfer tool"), "invalid"
    if ins.status != "in_force" and ins.valid_until is None:
        return text(f"{ins.name} is {ins.status}"), _STALE
    if ins.valid_from and day < ins.valid_from:
        return text(f"{ins.name} applies only from {ins.valid_from}"), "invalid"
    if sg.type in CONTRACT_TYPES:
        problem = _signature_problem(index, sg, ins, day)
        if problem is not None:
            return problem, "invalid"
    if ins.valid_until and day > ins.valid_until:
        return text(f"{ins.name} could be relied on only until {ins.valid_until}"), _STALE
    if sg.expires and day > sg.expires:
        return text("expired on ", SafeguardDate(index, "expires")), _STALE
    return _fit_problem(sg, ins, day, ctx, regime)


def _signature_problem(index: int, sg: Safeguard, ins: Instrument, day: dt.date) -> Text | None:
    """A contract counts from the day it was concluded, within the instrument's window."""
    signed = SafeguardDate(index, "signed")
    if sg.signed is None:
        return text("no `signed` date recorded")
    if sg.signed > day:
        return text("signed ", signed, ", after the evaluation date")
    if ins.signed_until and sg.signed > ins.signed_until:
        return text("signed ", signed, f", but only contracts concluded on or before "
                    f"{ins.signed_until} could rely on {ins.id}")
    if ins.valid_from and sg.signed < ins.valid_from and ins.type != SafeguardType.SCC:
        return text("signed ", signed, f", before the instrument applied ({ins.valid_from})")
    return None


def _fit_problem(
    sg: Safeguard, ins: Instrument, day: dt.date, ctx: _Context, regime: Regime
) -> tuple[Text, str] | None:
    """Module, companion instrument, BCR approval, derogation ground."""
    if sg.type == SafeguardType.SCC and ins.modules:
        if sg.module is None:
            return text("no SCC `module` given (1 C2C, 2 C2P, 3 P2P, 4 P2C)"), "invalid"
        if sg.module not in ins.modules:
            return text(f"module {sg.module} does not exist in {ins.id}"), "invalid"
    if ins.attaches_to and not set(ins.attaches_to) & ctx.instruments:
        return text(f"{ins.name} only works together with SCC "
                    f"{' or '.join(ins.attaches_to)} on the same flow, and the flow has "
                    "none"), "invalid"
    found: tuple[str, str] | None = None
    if sg.type == SafeguardType.BCR:
        found = _bcr_problem(sg, day, ctx, regime)
    elif sg.type == SafeguardType.DEROGATION:
        found = _derogation_problem(sg, ins, ctx)
    return (text(found[0]), found[1]) if found else None


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


def _stamp(
    verdict: _Verdict, flow: Flow, regime: str, importer: Party, third: tuple[str, ...],
    findings: list[Any], subsets: _Subsets, make_finding: Callable[..., Any] = Finding,
) -> None:
    """The findings of a case's verdict, written for one flow (its own values quoted);
    `subsets` shares the tuples of countries a finding names, across flows."""
    prefix = f"{flow.id} ({regime}): "
    specs = verdict.stamps or _prepare(verdict)
    n = len(third)
    for rule_id, severity, literal, body, where, instrument, hint in specs:
        message = prefix + (literal if literal is not None
                            else body.render(flow, importer, third))
        countries = third if len(where) == n else subsets.get((third, where))
        if countries is None:  # the same subsets recur on every flow to these places: share
            countries = subsets[(third, where)] = tuple(third[i] for i in where)
        findings.append(make_finding(rule_id, severity, message, flow.id, _FLOW, regime,
                                     countries, instrument, hint))


def _append_rows(rows: tuple[list[Any], list[Any]], transfers: list[Transfer],
                 findings: list[Finding]) -> None:
    """Another process's transfer and finding rows (`_row` tuples) as records, in order."""
    transfer_rows, finding_rows = rows
    transfers.extend(starmap(Transfer, transfer_rows))
    findings.extend(starmap(Finding, finding_rows))


_BLOCK = 16_384
"""Flows judged between two calls of `_judge`'s `flush` (the worker's rows go out then)."""


@dataclass(slots=True)
class _JudgeCaches:
    """What `_judge` remembers from one block of flows to the next."""

    quals: dict[str, frozenset[str]]  # party -> its certifications and laws
    third: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """(importer, regime) -> destination countries"""
    verdicts: dict[tuple[object, ...], _Verdict] = field(default_factory=dict)
    """case key -> verdict"""
    ordered: dict[frozenset[str], tuple[str, ...]] = field(default_factory=dict)
    """regimes -> in order"""
    subsets: _Subsets = field(default_factory=dict)
    """the countries a finding names, shared across flows (`_stamp`)"""


def _append_blocks(rows: IO[bytes], transfers: list[Transfer], findings: list[Finding]) -> bool:
    """A worker's blocks of rows (`_judge_rows`) appended in order; False, with nothing
    appended, when the file does not end as the worker ends it."""
    start = (len(transfers), len(findings))
    try:
        while (block := pickle.load(rows)) is not None:  # noqa: S301 - our own child's
            _append_rows(block, transfers, findings)
        return True
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError):
        del transfers[start[0]:], findings[start[1]:]
        return False


_FLOW = SubjectKind.FLOW  # an enum member looked up per finding costs 60 ns; a global 6


def _prepare(verdict: _Verdict) -> list[_Stamp]:
    """A verdict's findings with what is the same on every flow worked out once: the
    rule's severity and remediation, and the message when it quotes nothing of the flow."""
    for rule_id, body, where, instrument, severity in verdict.findings:
        r = RULES[rule_id]
        verdict.stamps.append((rule_id, severity or r.severity, body.literal, body, where,
                               instrument, r.remediation))
    return verdict.stamps


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
