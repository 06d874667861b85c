"""The full Art. 30 record of processing activities: controller (30(1)) and processor (30(2)).

Each record comes from the map's optional `processing:` activities (or, without them, one
record per organisation party and role, derived from its declared systems) plus what the map
and the scan show: the systems used and where they are, recipients reached by flows, every
Chapter V transfer with its basis, the encryption keys found. An Art. 30 item the map does
not give is a gap in the record, never invented. Rows are streamed (`reports/_xlsx.py`) so
a 100,000-flow register costs little more than `check`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

from residency.model import (
    ANY_COUNTRY,
    Basis,
    Contact,
    DataMap,
    Flow,
    Party,
    ProcessingActivity,
    Report,
    Role,
    Safeguard,
    System,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.reports._common import BASIS_WORDS, COUNSEL, Provenance, md_cell, where
from residency.reports._reach import bitset, indices, reach_many

ROPA_FORMATS = ("csv", "xlsx", "markdown", "html")
CSV_COLUMNS = ("activity", "activity_name", "record", "article", "item", "value", "source")
TRANSFER_COLUMNS = ("activities", "regime", "flow", "exporter", "importer", "importer_country",
                    "destination", "destination_name", "basis", "reference", "source",
                    "data_categories", "status")
GAP_COLUMNS = ("activity", "record", "article", "item", "detail")
MD_TITLE = "# Art. 30 record of processing activities"


@dataclass(frozen=True, slots=True)
class Gap:
    """A required Art. 30 item the map does not give (or a transfer the record cannot show
    as lawful): listed in the record for the DPO to complete, never filled in."""

    activity: str
    article: str
    item: str
    detail: str


@dataclass(frozen=True, slots=True)
class Item:
    article: str
    item: str
    value: str
    source: str


@dataclass(frozen=True, slots=True)
class Record:
    activity: ProcessingActivity
    derived: bool
    items: tuple[Item, ...]
    gaps: tuple[Gap, ...]
    part: _Part = field(repr=False, compare=False)

    @property
    def transfers(self) -> tuple[Transfer, ...]:
        """The transfers the activity's data take: each reached exporter system's (its own
        systems first, then the map's order), each in the engine's order."""
        return self.part.transfers()

    @property
    def kind(self) -> str:
        return "controller 30(1)" if self.activity.role is Role.CONTROLLER else "processor 30(2)"


@dataclass(frozen=True, slots=True)
class Ropa:
    records: tuple[Record, ...]
    provenance: Provenance
    as_of: str
    pack: PolicyPack = field(repr=False)
    parties: Mapping[str, Party] = field(repr=False)
    flows: Mapping[str, Flow] = field(repr=False)
    members: _Members = field(repr=False)

    @property
    def gaps(self) -> Iterator[Gap]:
        for r in self.records:
            yield from r.gaps


# ---------------------------------------------------------------------- scope (shared)
ClassKey = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Group:
    """One exporter system's transfers an activity reaches (those under the activity's
    regimes and carrying its categories), in the engine's order. Every activity reaching
    the system with the same regimes and categories shares this object, so per-activity
    work is per system reached, not per transfer. `keys` holds, per transfer, its
    membership class: transfers of one class are in exactly the same records."""

    system: str
    transfers: tuple[Transfer, ...]
    keys: tuple[ClassKey, ...]
    classes: tuple[ClassKey, ...]
    shared: bool


@dataclass(frozen=True, slots=True)
class Reach:
    """The systems an activity's data reach, as a bitset over the map's systems (bit `i`:
    `Scope.ids[i]`): its own systems (`starts`, in its order), then every system a flow
    carrying its categories leads to, onward included."""

    bits: int
    starts: tuple[int, ...]

    @property
    def start_bits(self) -> int:
        return bitset(self.starts)

    def order(self) -> list[int]:
        """Its own systems first, in the activity's order, then the rest in the map's."""
        own = self.bits & ~self.start_bits
        return [*self.starts, *indices(own)]


class Scope:
    """Which systems, recipients and transfers activities' data reach: the activity's
    systems, then every system a flow carrying its categories leads to (onward included).
    Every activity's reach is computed at once (`reach_all`, `reports/_reach.py`)."""

    def __init__(self, report: Report) -> None:
        self.systems: dict[str, System] = {s.id: s for s in report.systems}
        self.ids: list[str] = list(self.systems)
        self.index: dict[str, int] = {sid: i for i, sid in enumerate(self.ids)}
        self.resolved = dict(report.resolved)
        self._out: dict[str, list[Flow]] = {}
        for f in report.flows:
            self._out.setdefault(f.source, []).append(f)
        self._by_exporter: dict[str, list[tuple[Transfer, ClassKey]]] = {}
        self._by_regime: dict[str, dict[str, list[Transfer]]] = {}
        keys: dict[ClassKey, ClassKey] = {}
        for t in report.transfers:
            if not t.same_entity:
                k = (t.exporter, t.regime, t.data_categories)
                self._by_exporter.setdefault(t.exporter, []).append((t, keys.setdefault(k, k)))
                self._by_regime.setdefault(t.regime, {}).setdefault(t.exporter, []).append(t)
        self._fed: dict[str, set[str]] | None = None
        self._groups: dict[tuple[str, frozenset[str], frozenset[str]], Group | None] = {}

    def reach_all(self, activities: Sequence[tuple[Iterable[str], frozenset[str]]]
                  ) -> tuple[list[Reach], list[int]]:
        """Each activity's `Reach` (given as its systems and categories), and per system the
        activities reaching it (bit `a`: the `a`-th activity). A flow without categories
        carries everything its source holds, so it always counts; one pass over the graph
        per distinct set of categories."""
        n = len(self.ids)
        starts = [tuple(dict.fromkeys(self.index[s] for s in systems if s in self.index))
                  for systems, _ in activities]
        reach = [0] * len(activities)
        reached_by = [0] * n
        by_filter: dict[frozenset[str], list[int]] = {}
        for a, (_, categories) in enumerate(activities):
            by_filter.setdefault(categories, []).append(a)
        for categories, members in by_filter.items():
            succ = self.successors(categories)
            mine = set(members)
            found = reach_many(n, succ, [s if a in mine else () for a, s in enumerate(starts)])
            for a in members:
                reach[a] = found.reach[a]
            for v, bits in enumerate(found.reached_by):
                if bits:
                    reached_by[v] |= bits
        return [Reach(bits, s) for bits, s in zip(reach, starts, strict=True)], reached_by

    def successors(self, categories: frozenset[str]) -> list[list[int]]:
        """Per system (by index), where its flows carrying any of `categories` lead."""
        index = self.index
        succ: list[list[int]] = [[] for _ in self.ids]
        for sid, flows in self._out.items():
            out = succ[index[sid]]
            for f in flows:
                if categories and f.data_categories and not (f.data_categories & categories):
                    continue
                out.append(index[f.target])
        return succ

    def regimes(self, start: Iterable[str], pack: PolicyPack,
                parties: Mapping[str, Party]) -> frozenset[str]:
        """The regimes protecting the activity's data: those of its systems' locations,
        parties and declarations, and of every system feeding them (data keep the regime
        they were collected under), so a UK portal's record is not given the Swiss CRM's
        transfers through a shared helpdesk. Computed once for the map (one forward walk
        per regime from the systems under it), then looked up per activity."""
        fed = self._fed if self._fed is not None else self._regime_reach(pack, parties)
        ids = [s for s in start if s in self.systems]
        return frozenset(g for g, marked in fed.items() if any(s in marked for s in ids))

    def _regime_reach(self, pack: PolicyPack, parties: Mapping[str, Party]) -> dict[str,
                                                                                  set[str]]:
        fed: dict[str, set[str]] = {}
        for sid, s in self.systems.items():
            res = self.resolved.get(sid)
            party = parties.get(s.party)
            for g in s.regimes | pack.regimes_applying_in(
                    (res.countries if res else frozenset()) | ({party.country} if party
                                                              else set())):
                fed.setdefault(g, set()).add(sid)
        for marked in fed.values():
            stack = list(marked)
            while stack:
                for f in self._out.get(stack.pop(), ()):
                    if f.target not in marked:
                        marked.add(f.target)
                        stack.append(f.target)
        self._fed = fed
        return fed

    def taken(self, sid: str, categories: frozenset[str],
              regimes: frozenset[str] | None) -> list[tuple[Transfer, ClassKey]]:
        """The exporter system's transfers an activity with these categories and regimes
        takes (in the engine's order), with their membership classes."""
        return [(t, k) for t, k in self._by_exporter.get(sid, ())
                if (regimes is None or t.regime in regimes)
                and (not categories or categories.intersection(t.data_categories))]

    def under(self, regime: str, categories: frozenset[str]
              ) -> Iterator[tuple[str, tuple[Transfer, ...]]]:
        """Per exporter system, its transfers under `regime` carrying one of `categories`
        (any, if none are given), in the engine's order; exporters without any left out."""
        for sid, ts in self._by_regime.get(regime, {}).items():
            taken = tuple(ts) if not categories else tuple(
                t for t in ts if categories.intersection(t.data_categories))
            if taken:
                yield sid, taken

    def groups(self, reach: Iterable[str], categories: frozenset[str],
               regimes: frozenset[str] | None = None) -> list[Group]:
        """The reached transfers, one shared `Group` per exporter system (empty ones left
        out); `regimes=None` keeps every regime."""
        out = []
        regs = frozenset({"*"}) if regimes is None else regimes
        for sid in reach:
            if sid not in self._by_exporter:
                continue
            if categories:  # an activity's own categories: rarely shared, not kept
                g = self._group(sid, categories, regimes)
            else:
                key = (sid, regs, categories)
                if key not in self._groups:
                    self._groups[key] = self._group(sid, categories, regimes)
                g = self._groups[key]
            if g is not None:
                out.append(g)
        return out

    def _group(self, sid: str, categories: frozenset[str],
               regimes: frozenset[str] | None) -> Group | None:
        pairs = self.taken(sid, categories, regimes)
        if not pairs:
            return None
        keys = tuple(k for _, k in pairs)
        return Group(sid, tuple(t for t, _ in pairs), keys, tuple(dict.fromkeys(keys)),
                     not categories)

    def transfers(self, reach: Iterable[str], categories: frozenset[str],
                  regimes: frozenset[str] | None = None) -> list[Transfer]:
        return [t for g in self.groups(reach, categories, regimes) for t in g.transfers]


def safeguard_of(flow: Flow | None, basis: Basis) -> Safeguard | None:
    """The map's safeguard a basis rests on (the engine names it by its label)."""
    if flow is None or basis.kind not in ("safeguard", "derogation"):
        return None
    return next((s for s in flow.safeguards if s.label() == basis.reference), None)


def party_label(parties: Mapping[str, Party], pid: str) -> str:
    p = parties.get(pid)
    return f"{p.name} ({p.country})" if p else pid


def basis_text(basis: Basis) -> str:
    return "NO BASIS" if basis.kind == "none" else BASIS_WORDS[basis.kind].mechanism


def activities_of(datamap: DataMap, report: Report,
                  parties: Mapping[str, Party]) -> tuple[tuple[ProcessingActivity, bool], ...]:
    """The map's activities, or one derived activity per organisation party and role."""
    if datamap.activities:
        return tuple((a, False) for a in datamap.activities)
    declared = [s for s in report.systems if s.source_file is not None and "@" not in s.id]
    ours = {s.party for s in declared if s.role is Role.CONTROLLER}
    groups = {parties[p].group for p in ours if p in parties and parties[p].group}
    ours |= {p.id for p in parties.values() if p.group and p.group in groups}
    held: dict[tuple[str, Role], list[str]] = {}
    for s in declared:
        held.setdefault((s.party, s.role), []).append(s.id)
    purposes: dict[str, set[str]] = {}
    for f in report.flows:
        if f.purpose:
            purposes.setdefault(f.source, set()).add(f.purpose)
            purposes.setdefault(f.target, set()).add(f.purpose)
    out = []
    for pid in sorted(ours):
        for role in (Role.CONTROLLER, Role.PROCESSOR):
            systems = tuple(held.get((pid, role), ()))
            if not systems:
                continue
            me = Contact(party=pid)
            out.append((ProcessingActivity(
                id=f"{pid}-{role.value}", name=f"{party_label(parties, pid)}: systems held as "
                f"{role.value}", role=role, controller=me if role is Role.CONTROLLER else None,
                processor=me if role is Role.PROCESSOR else None, systems=systems,
                purposes=tuple(sorted(set().union(*(purposes.get(s, ()) for s in systems))))),
                True))
    return tuple(out)


# ---------------------------------------------------------------------- building
def build_ropa(report: Report, pack: PolicyPack, datamap: DataMap,
               parties: Mapping[str, Party]) -> Ropa:
    """Every record at once: the activities' reach is one pass over the graph
    (`Scope.reach_all`), and what a record says of its transfers and recipients is read
    from bitsets over the reached systems, so the cost does not grow with activities ×
    systems reached (an estate where every activity reaches most of it)."""
    scope = Scope(report)
    flows = {f.id: f for f in report.flows}
    acts = activities_of(datamap, report, parties)
    reaches, reached_by = scope.reach_all([(a.systems, a.data_categories) for a, _ in acts])
    regimes = [scope.regimes(a.systems, pack, parties) for a, _ in acts]
    found = _reached_parties(scope, [a for a, _ in acts], reaches, reached_by, parties)
    pieces: dict[tuple[str, frozenset[str]], _Piece] = {}
    tables: dict[tuple[frozenset[str], frozenset[str]], _Table] = {}
    records = []
    for i, (a, derived) in enumerate(acts):
        key = (regimes[i], a.data_categories)
        table = tables.get(key)
        if table is None:
            for g in regimes[i]:
                if (g, a.data_categories) not in pieces:
                    pieces[(g, a.data_categories)] = _Piece(scope, g, a.data_categories, flows)
            table = tables[key] = _Table([pieces[(g, a.data_categories)]
                                          for g in sorted(regimes[i])])
        records.append(_record(a, derived, scope, _Part(reaches[i], table), found[i], pack,
                               parties))
    return Ropa(tuple(records), Provenance.of(report), report.as_of.isoformat(), pack, parties,
                flows, _members(scope, report, [a for a, _ in acts], regimes, reached_by))


def _record(a: ProcessingActivity, derived: bool, scope: Scope, part: _Part,
            found: _Recipients, pack: PolicyPack,
            parties: Mapping[str, Party]) -> Record:
    src = "derived from the map's systems and flows" if derived else f"map processing {a.id}"
    held = a.data_categories or frozenset().union(
        *(scope.systems[s].data_categories for s in a.systems if s in scope.systems))
    items: list[Item] = []
    gaps: list[Gap] = []
    rec = Recorder(a, src, items, gaps)
    _parties_items(a, rec, parties, pack)
    if a.role is Role.CONTROLLER:
        rec.item("30(1)(b)", "purposes", "; ".join(a.purposes), required=True)
        rec.item("30(1)(c)", "categories of data subjects", ", ".join(a.data_subjects),
                 required=True)
        rec.item("30(1)(c)", "categories of personal data", ", ".join(sorted(held)),
                 required=True, source=src if a.data_categories else "map systems")
    else:
        rec.item("30(2)(b)", "categories of processing carried out on behalf of each "
                 "controller", "; ".join(a.purposes), required=True)
    _recipients(a, rec, found)
    _transfer_items(a, rec, part, pack)
    if a.role is Role.CONTROLLER:
        rec.item("30(1)(f)", "envisaged time limits for erasure", a.retention or "",
                 required=True, where_possible=True)
    _security(a, rec, scope)
    rec.item("context", "systems and locations", "; ".join(
        f"{scope.systems[s].name or s} [{s}]: {where(scope.systems[s], scope.resolved.get(s))}"
        for s in a.systems if s in scope.systems), source="map and scan")
    return Record(a, derived, tuple(items), tuple(gaps), part)


@dataclass
class Recorder:
    """Collects an activity's items; an empty required one becomes a gap instead."""

    activity: ProcessingActivity
    source: str
    items: list[Item]
    gaps: list[Gap]

    def item(self, article: str, item: str, value: str, *, required: bool = False,
             where_possible: bool = False, source: str | None = None) -> None:
        if value:
            self.items.append(Item(article, item, value, source or self.source))
        elif required:
            note = " (where possible)" if where_possible else ""
            self.gap(article, item, f"not given in the map{note}")

    def gap(self, article: str, item: str, detail: str) -> None:
        self.gaps.append(Gap(self.activity.id, article, item, detail))


def _contact_text(c: Contact, parties: Mapping[str, Party]) -> str:
    who = c.name or (party_label(parties, c.party) if c.party else "")
    if c.name and c.party:
        who = f"{c.name} ({party_label(parties, c.party)})"
    return f"{who}; {c.contact}" if c.contact else who


def _parties_items(a: ProcessingActivity, rec: Recorder, parties: Mapping[str, Party],
                   pack: PolicyPack) -> None:
    art = "30(1)(a)" if a.role is Role.CONTROLLER else "30(2)(a)"
    me = a.controller if a.role is Role.CONTROLLER else a.processor
    label = "controller" if a.role is Role.CONTROLLER else "processor"
    if me is None:
        rec.gap(art, f"name and contact details of the {label}", "not given in the map")
    else:
        rec.item(art, f"name and contact details of the {label}", _contact_text(me, parties))
        if not me.contact:
            rec.gap(art, f"contact details of the {label}", "not given in the map")
    if a.role is Role.CONTROLLER:
        for c in a.joint_controllers:
            rec.item(art, "joint controller", _contact_text(c, parties))
    else:
        for c in a.controllers:
            rec.item(art, "controller on whose behalf the processor acts",
                     _contact_text(c, parties))
        if not a.controllers:
            rec.gap(art, "each controller on whose behalf the processor acts",
                    "not given in the map")
    country = parties[me.party].country if me and me.party and me.party in parties else None
    if a.representative is not None:
        rec.item(art, "representative (Art. 27)", _contact_text(a.representative, parties))
    elif country and country not in pack.free_flow_area("eu_gdpr"):
        rec.gap(art, "representative (Art. 27)",
                f"the {label} is established in {country}, outside the EEA: where the GDPR "
                "applies to it under Art. 3(2), name its representative in the Union "
                "(Art. 27), or record why none is needed")
    if a.dpo is not None:
        rec.item(art, "data protection officer", _contact_text(a.dpo, parties))
    else:
        rec.gap(art, "data protection officer", "not given in the map (where applicable: "
                "name the DPO, or record that none is required under Art. 37)")


LISTED_RECIPIENTS = 500
"""Recipients a record names before it counts the rest: on an estate where every activity
reaches most parties, the full list is activities × parties (an XLSX cell holds 32,767
characters, about 700 names, anyway)."""
LISTED_ACTIVITIES = 50
"""Activities a transfers-table row names before it counts the rest."""


@dataclass(frozen=True, slots=True)
class _Recipients:
    first: tuple[str, ...]
    total: int


def _reached_parties(scope: Scope, acts: Sequence[ProcessingActivity],
                     reaches: Sequence[Reach], reached_by: Sequence[int],
                     parties: Mapping[str, Party]) -> list[_Recipients]:
    """Per activity, the parties holding a system its data reach beyond its own systems,
    other than the activity's own controller or processor: the first `limit` in the order
    of the party's first system in the map, with the role of its first such system, and how
    many there are in all. Built per party from the bitsets of activities reaching each of
    its systems; the counts are added bit-sliced across activities, so the work is the
    listed part, not activities × parties."""
    limit = LISTED_RECIPIENTS
    own = [0] * len(scope.ids)
    for a, r in enumerate(reaches):
        for v in r.starts:
            own[v] |= 1 << a
    ours: dict[str, int] = {}
    for a, act in enumerate(acts):
        for c in (act.controller, act.processor):
            if c and c.party:
                ours[c.party] = ours.get(c.party, 0) | 1 << a
    by_party: dict[str, dict[Role, int]] = {}
    for v, sid in enumerate(scope.ids):
        s = scope.systems[sid]
        roles = by_party.setdefault(s.party, {})
        bits = reached_by[v] & ~own[v] & ~ours.get(s.party, 0)
        if bits:
            roles[s.role] = roles.get(s.role, 0) | bits
    listing = (1 << len(reaches)) - 1
    lists: list[list[str]] = [[] for _ in reaches]
    slices: list[int] = []  # slices[i]: bit a set if activity a's count has bit i set
    for pid, roles in by_party.items():
        if not roles:
            continue
        union = 0
        for bits in roles.values():
            union |= bits
        carry = union
        for i, sl in enumerate(slices):
            slices[i], carry = sl ^ carry, sl & carry
            if not carry:
                break
        if carry:
            slices.append(carry)
        hit = union & listing
        if not hit:
            continue
        named = f"{party_label(parties, pid)}, "
        labels = {r: named + r.value for r in roles}
        single = next(iter(labels.values())) if len(roles) == 1 else None
        for a in indices(hit):
            got = lists[a]
            got.append(single or labels[next(r for r, b in roles.items() if b >> a & 1)])
            if len(got) >= limit:
                listing &= ~(1 << a)
    return [_Recipients(tuple(got), sum((sl >> a & 1) << i for i, sl in enumerate(slices)))
            for a, got in enumerate(lists)]


def _recipients(a: ProcessingActivity, rec: Recorder, found: _Recipients) -> None:
    if a.role is not Role.CONTROLLER:
        return
    reached = "; ".join(found.first)
    if found.total > len(found.first):
        reached += (f"; and {found.total - len(found.first):,} more "
                    f"({found.total:,} in all)")
    rec.item("30(1)(d)", "categories of recipients", "; ".join(a.recipients))
    rec.item("30(1)(d)", "recipients reached by the map's flows", reached,
             source="map flows")
    if not a.recipients and not found.total:
        rec.gap("30(1)(d)", "categories of recipients",
                "none given and no flow leaves the activity's systems (state 'none' if so)")


def _residual(flow: Flow | None, basis: Basis) -> bool:
    """Whether a derogation basis rests on the compelling-legitimate-interests ground."""
    sg = safeguard_of(flow, basis)
    return bool(sg and sg.article and sg.article.replace(" ", "")
                .endswith("secondsubparagraph"))


class _Listed:
    """Strings listed per exporter system (bit `v`: `Scope.ids[v]`), with the bitset of the
    systems that have any and their counts split into binary digits, so that the number an
    activity reaches is a few popcounts."""

    def __init__(self, items: dict[int, tuple[str, ...]]) -> None:
        self.items = items
        self.bits = bitset(items)
        width = max((len(v) for v in items.values()), default=0).bit_length()
        self.digits = tuple(bitset(v for v, xs in items.items() if len(xs) >> j & 1)
                            for j in range(width))

    def count(self, reach: int) -> int:
        return sum((reach & d).bit_count() << j for j, d in enumerate(self.digits))


class _Lists:
    """`_Listed` of several regimes read as one: an exporter's strings are its regimes' in
    the table's regime order."""

    def __init__(self, parts: Sequence[_Listed]) -> None:
        self.parts = [p for p in parts if p.bits]
        self.bits = 0
        for p in self.parts:
            self.bits |= p.bits

    def count(self, reach: int) -> int:
        return sum(p.count(reach) for p in self.parts)

    def _of(self, v: int) -> tuple[str, ...]:
        return tuple(x for p in self.parts for x in p.items.get(v, ()))

    def first(self, reach: Reach, limit: int = 5) -> list[str]:
        """The first `limit` strings in the reach's order (its own systems first)."""
        out: list[str] = []
        for v in reach.starts:
            if self.bits >> v & 1:
                _first(out, self._of(v), limit)
                if len(out) >= limit:
                    return out
        rest = reach.bits & self.bits & ~reach.start_bits
        while rest and len(out) < limit:
            low = rest & -rest
            rest ^= low
            _first(out, self._of(low.bit_length() - 1), limit)
        return out


class _Piece:
    """One regime's transfers that an activity with these categories takes from each
    exporter system, and as bitsets over the exporters: where they go, which rest on the
    residual ground, which have no basis and which go to an unresolved place."""

    def __init__(self, scope: Scope, regime: str, categories: frozenset[str],
                 flows: Mapping[str, Flow]) -> None:
        self.by_exporter: dict[int, tuple[Transfer, ...]] = {}
        to: dict[str, list[int]] = {}
        residual: list[int] = []
        unlawful: dict[int, tuple[str, ...]] = {}
        unresolved: dict[int, tuple[str, ...]] = {}
        index = scope.index
        for sid, taken in scope.under(regime, categories):
            v = index[sid]
            self.by_exporter[v] = taken
            countries: set[str] = set()
            none: list[str] = []
            lost: list[str] = []
            res = False
            for t in taken:
                for c, b in t.bases:
                    countries.add(c)
                    if b.kind == "none":
                        none.append(f"{t.flow} ({t.regime}) to {c}")
                    elif b.kind == "derogation" and not res:
                        res = _residual(flows.get(t.flow), b)
                if ANY_COUNTRY in t.countries:
                    lost.append(t.flow)
            for c in countries:
                to.setdefault(c, []).append(v)
            if res:
                residual.append(v)
            if none:
                unlawful[v] = tuple(none)
            if lost:
                unresolved[v] = tuple(lost)
        self.countries = {c: bitset(vs) for c, vs in to.items()}
        self.residual = bitset(residual)
        self.unlawful = _Listed(unlawful)
        self.unresolved = _Listed(unresolved)


class _Table:
    """What an activity with these regimes and categories takes: its regimes' pieces
    (each built once for the map and shared by every table naming that regime)."""

    def __init__(self, pieces: Sequence[_Piece]) -> None:
        self.pieces = tuple(pieces)
        countries: dict[str, int] = {}
        self.residual = 0
        for p in self.pieces:
            for c, bits in p.countries.items():
                countries[c] = countries.get(c, 0) | bits
            self.residual |= p.residual
        self.countries = countries
        self.unlawful = _Lists([p.unlawful for p in self.pieces])
        self.unresolved = _Lists([p.unresolved for p in self.pieces])


@dataclass(frozen=True, slots=True)
class _Part:
    """One record's share of the estate: what its data reach, read through its table."""

    reach: Reach
    table: _Table

    def transfers(self) -> tuple[Transfer, ...]:
        pieces = self.table.pieces
        return tuple(t for v in self.reach.order() for p in pieces
                     for t in p.by_exporter.get(v, ()))


@dataclass(frozen=True, slots=True)
class _Members:
    """The transfers any record takes, in the engine's order, with their membership class;
    per class, the activities whose records take it (bit `a`: `ids[a]`)."""

    order: tuple[tuple[Transfer, int], ...]
    ids: tuple[str, ...]


def _members(scope: Scope, report: Report, acts: Sequence[ProcessingActivity],
             regimes: Sequence[frozenset[str]], reached_by: Sequence[int]) -> _Members:
    """A transfer is in a record when its exporter is reached, its regime is one of the
    activity's and (for an activity naming categories) it carries one of them: per class,
    the activities reaching the exporter, under the regime, of the categories."""
    under: dict[str, list[int]] = {}
    for a, regs in enumerate(regimes):
        for g in regs:
            under.setdefault(g, []).append(a)
    by_regime = {g: bitset(acts_) for g, acts_ in under.items()}
    any_category = bitset(a for a, act in enumerate(acts) if not act.data_categories)
    by_categories: dict[tuple[str, ...], int] = {}
    classes: dict[ClassKey, int] = {}
    order: list[tuple[Transfer, int]] = []
    for t in report.transfers:
        if t.same_entity:
            continue
        k = (t.exporter, t.regime, t.data_categories)
        bits = classes.get(k)
        if bits is None:
            cats = by_categories.get(t.data_categories)
            if cats is None:
                cats = by_categories[t.data_categories] = any_category | bitset(
                    a for a, act in enumerate(acts)
                    if act.data_categories.intersection(t.data_categories))
            v = scope.index.get(t.exporter)
            bits = classes[k] = (0 if v is None else
                                 reached_by[v] & by_regime.get(t.regime, 0) & cats)
        if bits:
            order.append((t, bits))
    return _Members(tuple(order), tuple(a.id for a in acts))


def _listing(items: list[str], total: int, limit: int = 5) -> str:
    more = f"; and {total - limit} more (see the transfers table)" if total > limit else ""
    return "; ".join(items[:limit]) + more


def _first(items: list[str], more: tuple[str, ...], limit: int = 5) -> None:
    if len(items) < limit:
        items += more[:limit - len(items)]


def _transfer_items(a: ProcessingActivity, rec: Recorder, part: _Part,
                    pack: PolicyPack) -> None:
    art = "30(1)(e)" if a.role is Role.CONTROLLER else "30(2)(c)"
    table, reach = part.table, part.reach
    bits = reach.bits
    countries = {c for c, exporters in table.countries.items() if exporters & bits}
    residual = bool(table.residual & bits)
    n_unlawful = table.unlawful.count(bits)
    n_unresolved = table.unresolved.count(bits)
    if n_unlawful:
        rec.gap(art, "transfers without a basis", f"{n_unlawful} (flow × regime × country) "
                f"with no adequacy, safeguard or derogation (RES-T001/T003): "
                f"{_listing(table.unlawful.first(reach), n_unlawful)}")
    if n_unresolved:
        rec.gap(art, "third country", f"the destination's location is unresolved (RES-L001), "
                f"so the country cannot be identified: "
                f"{_listing(table.unresolved.first(reach), n_unresolved)}")
    names = sorted(pack.country_name(c) if c != ANY_COUNTRY else "unresolved location"
                   for c in countries)
    rec.item(art, "third countries or international organisations", ", ".join(names)
             or "none (no transfer found)", source="engine (see the transfers table)")
    if residual:
        if a.transfer_documentation:
            rec.item(art, "documentation of suitable safeguards (Art. 49(1) second "
                     "subparagraph)", a.transfer_documentation)
        else:
            rec.gap(art, "documentation of suitable safeguards (Art. 49(1) second "
                    "subparagraph)", "a transfer rests on the compelling-legitimate-interests "
                    "ground; Art. 49(6) requires the assessment and safeguards in the record")


def _security(a: ProcessingActivity, rec: Recorder, scope: Scope) -> None:
    art = "30(1)(g)" if a.role is Role.CONTROLLER else "30(2)(d)"
    rec.item(art, "technical and organisational security measures (Art. 32(1))",
             "; ".join(a.security_measures), required=True, where_possible=True)
    keys = []
    for sid in a.systems:
        s = scope.systems.get(sid)
        if s is None:
            continue
        for k in s.keys:
            bits = [x for x in (k.region and f"key in {k.region}",
                                k.key_manager and f"{k.key_manager.lower()}-managed",
                                k.origin and f"origin {k.origin}",
                                k.multi_region and "multi-Region") if x]
            keys.append(f"{s.name or s.id}: encryption at rest ({', '.join(bits) or k.key})")
    rec.item(art, "encryption at rest found by the scan", "; ".join(keys), source="scan")


# ---------------------------------------------------------------------- rows
def transfer_rows(ropa: Ropa) -> Iterator[tuple[str, ...]]:
    """One row per transfer × destination country (`TRANSFER_COLUMNS`), in the engine's
    order, each listed once with every activity whose data it carries: a group's register
    does not repeat a shared helpdesk's transfers once per activity."""
    pack, parties, members = ropa.pack, ropa.parties, ropa.members
    ids = members.ids
    texts: dict[int, str] = {}  # bounded: at most LISTED_ACTIVITIES names each
    labels: dict[str, str] = {}
    places: dict[str, tuple[str, str]] = {}
    said: dict[int, tuple[Basis, tuple[str, str, str], str]] = {}  # by the basis's id
    for t, bits in members.order:
        acts = texts.get(bits)
        if acts is None:
            acts = texts[bits] = _activities_text(bits, ids)
        exporter = labels.get(t.exporter_party) or labels.setdefault(
            t.exporter_party, party_label(parties, t.exporter_party))
        importer = labels.get(t.importer_party) or labels.setdefault(
            t.importer_party, party_label(parties, t.importer_party))
        home = parties[t.importer_party].country if t.importer_party in parties else ""
        head = (acts, t.regime, t.flow, exporter, importer, home)
        cats = ", ".join(t.data_categories)
        for country, basis in t.bases:
            place = places.get(country)
            if place is None:
                place = places[country] = (country, pack.country_name(country)
                                           if country != ANY_COUNTRY else "unresolved location")
            got = said.get(id(basis))
            if got is None or got[0] is not basis:
                got = said[id(basis)] = (basis, (basis_text(basis), basis.reference or "",
                                                 basis.source or ""),
                                         "lawful" if basis.kind != "none" else "NO BASIS")
            yield (*head, *place, *got[1], cats, got[2])


def _activities_text(bits: int, ids: Sequence[str]) -> str:
    limit = LISTED_ACTIVITIES
    text = ", ".join(ids[a] for a in islice(indices(bits), limit))
    n = bits.bit_count()
    return text + (f", and {n - limit:,} more ({n:,} activities in all)" if n > limit else "")


def record_rows(ropa: Ropa) -> Iterator[tuple[str, ...]]:
    """The long table (`CSV_COLUMNS`): each item, each gap, then each transfer as a row."""
    for r in ropa.records:
        head = (r.activity.id, r.activity.name, r.kind)
        for it in r.items:
            yield (*head, it.article, it.item, it.value, it.source)
        for g in r.gaps:
            yield (*head, g.article, f"GAP: {g.item}", g.detail, COUNSEL)
    for row in transfer_rows(ropa):
        yield (row[0], "", "", "30(1)(e)/30(2)(c)", "transfer",
               f"{row[2]} ({row[1]}): {row[3]} → {row[4]} to {row[7]}: {row[8]}"
               f"{' ' + row[9] if row[9] else ''}", row[10] or "engine")


# ---------------------------------------------------------------------- rendering
def write_ropa(ropa: Ropa, fmt: str, fh: IO[Any]) -> None:
    """Stream the record to `fh` (text, or binary for xlsx)."""
    if fmt == "csv":
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        w.writerows(record_rows(ropa))
    elif fmt == "xlsx":
        _xlsx(ropa, fh)
    elif fmt == "markdown":
        fh.writelines(_markdown(ropa))
    elif fmt == "html":
        fh.writelines(_html(ropa))
    else:
        raise ValueError(f"unknown record format {fmt!r}")


def _xlsx(ropa: Ropa, fh: IO[bytes]) -> None:
    from residency.reports._xlsx import Sheet, write_xlsx

    def widths(cols: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(40 if col in ("value", "detail") else 18 for col in cols)

    write_xlsx(fh, (
        Sheet("Record", CSV_COLUMNS, _record_only(ropa), widths(CSV_COLUMNS)),
        Sheet("Transfers", TRANSFER_COLUMNS, transfer_rows(ropa), widths(TRANSFER_COLUMNS)),
        Sheet("Gaps", GAP_COLUMNS, ((r.activity.id, r.kind, g.article, g.item, g.detail)
                                    for r in ropa.records for g in r.gaps),
              widths(GAP_COLUMNS)),
    ))


def _record_only(ropa: Ropa) -> Iterator[tuple[str, ...]]:
    for r in ropa.records:
        for it in r.items:
            yield (r.activity.id, r.activity.name, r.kind, it.article, it.item, it.value,
                   it.source)


def _markdown(ropa: Ropa) -> Iterator[str]:
    yield f"{MD_TITLE}\n\nAs of {ropa.as_of}. "
    yield " · ".join(ropa.provenance.lines()) + "\n\n"
    gaps = list(ropa.gaps)
    yield f"{len(ropa.records)} activities, {len(gaps)} gaps.\n\n"
    for r in ropa.records:
        yield f"## {md_cell(r.activity.name)} (`{r.activity.id}`): {r.kind}\n\n"
        if r.derived:
            yield ("_Derived: the map has no `processing:` section, so this record lists the "
                   "systems one party holds in one role._\n\n")
        yield "| Art. | Item | Value | Source |\n|---|---|---|---|\n"
        for it in r.items:
            yield (f"| {it.article} | {md_cell(it.item)} | {md_cell(it.value)} | "
                   f"{md_cell(it.source)} |\n")
        if r.gaps:
            yield "\n**Gaps (to complete):**\n\n"
            for g in r.gaps:
                yield f"- {g.article} {md_cell(g.item)}: {md_cell(g.detail)} {COUNSEL}\n"
        yield "\n"
    yield "## Transfers\n\n| " + " | ".join(TRANSFER_COLUMNS) + " |\n"
    yield "|" + "---|" * len(TRANSFER_COLUMNS) + "\n"
    for row in transfer_rows(ropa):
        yield "| " + " | ".join(md_cell(v) for v in row) + " |\n"


_CSS = ("body{font:14px/1.45 system-ui,sans-serif;margin:2rem;max-width:80rem}"
        "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}"
        "th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;"
        "vertical-align:top}th{background:#f6f8fa}td.gap{color:#cf222e}"
        "@media print{body{margin:0}h2{break-before:page}thead{display:table-header-group}"
        "tr{break-inside:avoid}}")


def _html(ropa: Ropa) -> Iterator[str]:
    from markupsafe import escape as e

    yield ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           f"<title>residency: Art. 30 record of processing activities — {e(ropa.as_of)}"
           f"</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
           f"<h1>Art. 30 record of processing activities</h1>\n<p>As of {e(ropa.as_of)}. "
           + "<br>".join(str(e(x)) for x in ropa.provenance.lines()) + "</p>\n")
    for r in ropa.records:
        yield f"<h2>{e(r.activity.name)} <small>({e(r.activity.id)}, {e(r.kind)})</small></h2>\n"
        yield "<table><thead><tr><th>Art.</th><th>Item</th><th>Value</th><th>Source</th>"
        yield "</tr></thead><tbody>\n"
        for it in r.items:
            yield (f"<tr><td>{e(it.article)}</td><td>{e(it.item)}</td><td>{e(it.value)}</td>"
                   f"<td>{e(it.source)}</td></tr>\n")
        for g in r.gaps:
            yield (f"<tr><td>{e(g.article)}</td><td class=\"gap\">GAP: {e(g.item)}</td>"
                   f"<td class=\"gap\">{e(g.detail)}</td><td>{e(COUNSEL)}</td></tr>\n")
        yield "</tbody></table>\n"
    yield "<h2>Transfers</h2>\n<table><thead><tr>"
    yield "".join(f"<th>{e(c)}</th>" for c in TRANSFER_COLUMNS) + "</tr></thead><tbody>\n"
    for row in transfer_rows(ropa):
        yield "<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>\n"
    yield "</tbody></table>\n</body>\n</html>\n"
