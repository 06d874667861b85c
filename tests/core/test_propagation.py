"""Propagation (`FlowGraph.propagate`, component by component on integer bitsets) against
a plain set-based fixpoint written from its specification, on random graphs with cycles,
self-loops, parallel flows and flows restricted to some categories."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from residency.graph import FlowGraph
from residency.model import Flow, Location, Party, Role, System

CATEGORIES = ("contact_details", "payment_data", "call_recordings", "health_records")
REGIMES = ("eu_gdpr", "uk_gdpr", "ch_fadp")


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[System], list[Flow], dict[str, frozenset[str]]]:
    n = draw(st.integers(1, 14))
    ids = [f"s{i}" for i in range(n)]
    cats = st.frozensets(st.sampled_from(CATEGORIES), max_size=3)
    systems = [System(i, "p", Role.PROCESSOR, Location(frozenset({"DE"})),
                      data_categories=draw(cats)) for i in ids]
    base = {i: draw(st.frozensets(st.sampled_from(REGIMES), max_size=2)) for i in ids}
    edges = draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids), cats),
                          max_size=40))
    flows = [Flow(f"f{k}", a, b, data_categories=c) for k, (a, b, c) in enumerate(edges)]
    return systems, flows, base


def _reference(systems: list[System], flows: list[Flow],
               base: dict[str, frozenset[str]]) -> dict[str, set[tuple[str, str]]]:
    """What reaches each system as (category, regime) pairs: a flow carries, for the
    categories it names (none named: every category its source holds), whatever protects
    data at its source (the source's own regimes, for any category) and whatever reached
    the source; repeated until nothing changes."""
    declared = {s.id: s.data_categories for s in systems}
    inbound: dict[str, set[tuple[str, str]]] = {s.id: set() for s in systems}
    changed = True
    while changed:
        changed = False
        for f in flows:
            held = declared[f.source] | {c for c, _ in inbound[f.source]}
            carried = {(c, r) for c in CATEGORIES for r in base[f.source]} | inbound[f.source]
            names = f.data_categories or held
            add = {(c, r) for c, r in carried if c in names} - inbound[f.target]
            if add:
                inbound[f.target] |= add
                changed = True
    return inbound


@settings(max_examples=300, derandomize=True, deadline=None)
@given(graphs())
def test_propagation_is_the_fixpoint(
    case: tuple[list[System], list[Flow], dict[str, frozenset[str]]],
) -> None:
    systems, flows, base = case
    graph = FlowGraph([Party("p", "P", "DE")], systems, flows)
    graph.propagate(base)
    expected = _reference(systems, flows, base)
    for s in systems:
        got = {(c, r) for c in CATEGORIES for r in graph.carried_regimes(s.id, frozenset({c}))}
        assert got == expected[s.id], s.id
        held = s.data_categories | {c for c, _ in expected[s.id]}
        assert graph.categories_held(s.id) == held


def test_a_long_cycle_feeds_what_follows_it_once() -> None:
    """A 200-system ring fed at one point, with a 200-system chain after it: every system
    ends with the feeder's regime, and the ring is one component ordered after its feeder
    and before the chain (so it converges before the chain is walked)."""
    ring = [f"r{i}" for i in range(200)]
    chain = [f"c{i}" for i in range(200)]
    ids = ["src", *ring, *chain]
    systems = [System(i, "p", Role.PROCESSOR, Location(frozenset({"DE"})),
                      data_categories=frozenset({"contact_details"}) if i == "src"
                      else frozenset()) for i in ids]
    edges = [("src", "r0"), *itertools.pairwise(ring), (ring[-1], ring[0]),
             (ring[100], chain[0]), *itertools.pairwise(chain)]
    flows = [Flow(f"f{k}", a, b) for k, (a, b) in enumerate(edges)]
    base = {i: frozenset({"eu_gdpr"}) if i == "src" else frozenset() for i in ids}
    graph = FlowGraph([Party("p", "P", "DE")], systems, flows)
    graph.propagate(base)
    for i in ids[1:]:
        assert graph.carried_regimes(i, frozenset({"contact_details"})) == {"eu_gdpr"}, i
    components = graph._condensed
    assert sorted(len(c) for c in components)[-1] == 200  # the ring is one component
    position = {graph._numbered[0][m]: k for k, c in enumerate(components) for m in c}
    assert position["src"] < position["r0"] < position["c0"] < position["c199"]
