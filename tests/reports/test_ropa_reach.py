"""The DPO documents' reach, computed for every activity at once on bitsets
(`reports/_reach.py`, `ropa.Scope.reach_all`, `ropa.build_ropa`), against one plain walk
per activity written from the specification, on random graphs and on the demo map with
random extra flows (cycles, self-loops, flows restricted to some categories) and random
activities."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residency.model import ANY_COUNTRY, Report, Role, Transfer
from residency.policy.pack import PolicyPack
from residency.reports import ropa as ropa_module
from residency.reports._reach import bitset, indices, reach_many
from residency.reports.ropa import TRANSFER_COLUMNS, Scope, build_ropa, transfer_rows

from .dpo_support import estates, run_of


def _walk(succ: list[list[int]], start: list[int]) -> set[int]:
    seen = set(start)
    stack = list(start)
    while stack:
        for w in succ[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[list[int]], list[list[int]]]:
    n = draw(st.integers(1, 30))
    node = st.integers(0, n - 1)
    succ = [draw(st.lists(node, max_size=4)) for _ in range(n)]
    starts = draw(st.lists(st.lists(node, max_size=4), max_size=8))
    return n, succ, starts


@settings(max_examples=400, derandomize=True, deadline=None)
@given(graphs())
def test_reach_many_is_one_walk_per_start_set(
    case: tuple[int, list[list[int]], list[list[int]]],
) -> None:
    n, succ, starts = case
    got = reach_many(n, succ, starts)
    walks = [_walk(succ, s) for s in starts]
    assert [set(indices(bits)) for bits in got.reach] == walks
    for v in range(n):
        assert set(indices(got.reached_by[v])) == {a for a, w in enumerate(walks) if v in w}


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=60))
def test_bitset_and_indices_are_inverse(positions: list[int]) -> None:
    bits = bitset(positions)
    assert list(indices(bits)) == sorted(set(positions))
    assert bits == sum(1 << p for p in set(positions))


def _expected(report: Report, scope: Scope, pack: PolicyPack, run: Any
              ) -> dict[str, dict[str, Any]]:
    """Per activity, from one walk over the map's flows: the transfers it takes, the
    parties it reaches beyond its own systems, and its transfers without a basis."""
    out: dict[str, dict[str, Any]] = {}
    for a in run.datamap.activities:
        cats = a.data_categories
        seen = dict.fromkeys(s for s in a.systems if s in scope.systems)
        stack = list(seen)
        while stack:
            here = stack.pop()
            for f in report.flows:
                if f.source != here or f.target in seen:
                    continue
                if cats and f.data_categories and not (f.data_categories & cats):
                    continue
                seen[f.target] = None
                stack.append(f.target)
        regimes = scope.regimes(a.systems, pack, run.parties)
        taken = [t for t in report.transfers if not t.same_entity and t.exporter in seen
                 and t.regime in regimes
                 and (not cats or cats.intersection(t.data_categories))]
        ours = {c.party for c in (a.controller, a.processor) if c and c.party}
        out[a.id] = {
            "taken": taken,
            "parties": {scope.systems[s].party for s in seen
                        if s not in a.systems and scope.systems[s].party not in ours},
            "unlawful": [f"{t.flow} ({t.regime}) to {c}" for t in taken
                         for c, b in t.bases if b.kind == "none"],
            "countries": {c for t in taken for c, _ in t.bases},
        }
    return out


def _key(t: Transfer) -> tuple[str, str, str]:
    return (t.flow, t.regime, t.exporter)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(estates())
def test_records_match_one_walk_per_activity(pack: PolicyPack, doc: dict[str, Any]) -> None:
    run = run_of(doc, pack)
    report = run.report
    ropa = build_ropa(report, pack, run.datamap, run.parties)
    scope = Scope(report)
    expected = _expected(report, scope, pack, run)
    labels = {pid: f"{p.name} ({p.country})" for pid, p in run.parties.items()}
    for r in ropa.records:
        want = expected[r.activity.id]
        assert sorted(map(_key, r.transfers)) == sorted(map(_key, want["taken"]))
        items = {i.item: i.value for i in r.items}
        if r.activity.role is Role.CONTROLLER:  # 30(2) has no recipients item
            reached = items.get("recipients reached by the map's flows", "")
            got_parties = [x.rsplit(", ", 1)[0] for x in reached.split("; ") if x]
            assert sorted(got_parties) == sorted(labels.get(p, p) for p in want["parties"])
        names = {pack.country_name(c) if c != ANY_COUNTRY else "unresolved location"
                 for c in want["countries"]}
        shown = items["third countries or international organisations"]
        assert (set(shown.split(", ")) if want["countries"] else {shown}) == (
            names or {"none (no transfer found)"})
        gaps = {g.item: g.detail for g in r.gaps}
        n = len(want["unlawful"])
        if not n:
            assert "transfers without a basis" not in gaps
            continue
        detail = gaps["transfers without a basis"]
        assert detail.startswith(f"{n} (flow × regime × country)")
        listed = re.sub(r"; and \d+ more \(see the transfers table\)$", "",
                        detail.split("(RES-T001/T003): ", 1)[1]).split("; ")
        assert len(listed) == min(n, 5) and set(listed) <= set(want["unlawful"])
    rows = [dict(zip(TRANSFER_COLUMNS, row, strict=True)) for row in transfer_rows(ropa)]
    members: dict[tuple[str, str, str], set[str]] = {}
    for aid, want in expected.items():
        for t in want["taken"]:
            for c, _ in t.bases:
                members.setdefault((t.flow, t.regime, c), set()).add(aid)
    assert {(r["flow"], r["regime"], r["destination"]): set(r["activities"].split(", "))
            for r in rows} == members
    assert len(rows) == len(members)  # each transfer once
    engine = [(t.flow, t.regime) for t in report.transfers]
    positions = [engine.index((r["flow"], r["regime"])) for r in rows]
    assert positions == sorted(positions)  # in the engine's order


@settings(max_examples=25, derandomize=True, deadline=None)
@given(estates(), st.integers(1, 3), st.integers(1, 2))
def test_long_lists_name_the_first_and_count_the_rest(
    pack: PolicyPack, doc: dict[str, Any], limit: int, acts_limit: int,
) -> None:
    """Past `LISTED_RECIPIENTS` a record names the first recipients and counts them all;
    past `LISTED_ACTIVITIES` a transfers row names the first activities and counts them
    all (the counts are the full lists' lengths, the names their beginning)."""
    run = run_of(doc, pack)
    full = build_ropa(run.report, pack, run.datamap, run.parties)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ropa_module, "LISTED_RECIPIENTS", limit)
        mp.setattr(ropa_module, "LISTED_ACTIVITIES", acts_limit)
        short = build_ropa(run.report, pack, run.datamap, run.parties)
        rows = list(transfer_rows(short))
    item = "recipients reached by the map's flows"
    for whole, cut in zip(full.records, short.records, strict=True):
        names = {i.item: i.value for i in whole.items}.get(item, "")
        shown = {i.item: i.value for i in cut.items}.get(item, "")
        listed = [x for x in names.split("; ") if x]
        if len(listed) <= limit:
            assert shown == names
        else:
            assert shown == "; ".join(listed[:limit]) + (
                f"; and {len(listed) - limit:,} more ({len(listed):,} in all)")
    for a, b in zip(transfer_rows(full), rows, strict=True):
        ids = a[0].split(", ")
        assert b[1:] == a[1:]
        assert b[0] == (a[0] if len(ids) <= acts_limit else ", ".join(ids[:acts_limit])
                        + f", and {len(ids) - acts_limit:,} more ({len(ids):,} activities "
                        "in all)")
