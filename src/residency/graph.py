"""The flow graph: systems as nodes, flows as edges, with categories and regimes propagated.

networkx stays behind `FlowGraph`; callers get typed answers (systems, flows, regime
sets), never node or edge attribute dicts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import networkx as nx

from residency.model import Flow, Party, System


class FlowGraph:
    """Systems and flows of one evaluation, with what each system holds under which regime."""

    def __init__(
        self, parties: Iterable[Party], systems: Iterable[System], flows: Iterable[Flow]
    ) -> None:
        self.parties: dict[str, Party] = {p.id: p for p in parties}
        self.systems: dict[str, System] = {s.id: s for s in systems}
        self.flows: tuple[Flow, ...] = tuple(flows)
        self._graph: Any = nx.MultiDiGraph()
        self._graph.add_nodes_from(self.systems)
        self._graph.add_edges_from((f.source, f.target, f.id) for f in self.flows)
        self._out: dict[str, list[Flow]] = {sid: [] for sid in self.systems}
        self._in: dict[str, list[Flow]] = {sid: [] for sid in self.systems}
        for f in self.flows:
            self._out[f.source].append(f)
            self._in[f.target].append(f)
        self._carried: dict[str, dict[str, frozenset[str]]] = {}

    # -------------------------------------------------------------- structure
    def __len__(self) -> int:
        return len(self.systems)

    def party_of(self, system: System) -> Party:
        return self.parties[system.party]

    def outbound(self, system_id: str) -> list[Flow]:
        return self._out[system_id]

    def inbound(self, system_id: str) -> list[Flow]:
        return self._in[system_id]

    def upstream(self, system_id: str) -> set[str]:
        """Every system whose data can reach `system_id` (for onward-transfer paths)."""
        return set(nx.ancestors(self._graph, system_id))

    def downstream(self, system_id: str) -> set[str]:
        return set(nx.descendants(self._graph, system_id))

    def paths_to(self, flow: Flow, limit: int = 5) -> list[list[str]]:
        """A few simple paths from a root system to the flow's target, through the flow."""
        roots = [s for s in self.upstream(flow.source) | {flow.source} if not self._in[s]]
        out: list[list[str]] = []
        for root in sorted(roots):
            if root == flow.source:
                out.append([root, flow.target])
            else:
                for path in nx.all_simple_paths(self._graph, root, flow.source):
                    out.append([*path, flow.target])
                    if len(out) >= limit:
                        return out
            if len(out) >= limit:
                break
        return out

    def export(self) -> Any:
        """A copy of the underlying graph with plain attributes (for graph formats)."""
        g = nx.MultiDiGraph()
        for s in self.systems.values():
            g.add_node(s.id, party=s.party, role=s.role.value, location=s.location.describe())
        for f in self.flows:
            g.add_edge(
                f.source, f.target, key=f.id, data_categories=",".join(sorted(f.data_categories))
            )
        return g

    # -------------------------------------------------------------- propagation
    def propagate(self, base: dict[str, frozenset[str]]) -> None:
        """Carry regimes along flows per data category until nothing changes.

        `base[s]` is what protects any data at `s` (its location, its party's
        establishment, declared regimes). Data that left the EEA keeps `eu_gdpr` at every
        later hop, so onward flows are judged for it too. Cycles are fine: the sets only grow.
        """
        index = {r: 1 << i for i, r in enumerate(sorted({r for v in base.values() for r in v}))}
        names = {bit: r for r, bit in index.items()}
        base_mask = {s: _mask(base.get(s, frozenset()), index) for s in self.systems}
        inbound: dict[str, dict[str, int]] = {s: {} for s in self.systems}
        queue = deque(self.systems)
        queued = set(self.systems)
        while queue:
            sid = queue.popleft()
            queued.discard(sid)
            own = base_mask[sid]
            held = inbound[sid]
            everything = self.systems[sid].data_categories | held.keys()
            for flow in self._out[sid]:
                target = inbound[flow.target]
                changed = False
                for cat in flow.data_categories or everything:
                    mask = own | held.get(cat, 0)
                    old = target.get(cat, 0)
                    if mask | old != old:
                        target[cat] = mask | old
                        changed = True
                if changed and flow.target not in queued:
                    queue.append(flow.target)
                    queued.add(flow.target)
        cache: dict[int, frozenset[str]] = {}
        for sid, cats in inbound.items():
            self._carried[sid] = {
                c: cache.setdefault(m, _unmask(m, names)) for c, m in cats.items()
            }

    def carried_in(self, system_id: str, category: str) -> frozenset[str]:
        """Regimes that inbound flows carry into `system_id` for `category`."""
        return self._carried.get(system_id, {}).get(category, frozenset())

    def flow_categories(self, flow: Flow) -> frozenset[str]:
        """What a flow carries: its declared categories, else all its source holds."""
        return flow.data_categories or self.categories_held(flow.source)

    def categories_held(self, system_id: str) -> frozenset[str]:
        """Declared categories plus every category flowing in."""
        s = self.systems[system_id]
        return s.data_categories | frozenset(self._carried.get(system_id, {}))

    def __iter__(self) -> Iterator[System]:
        return iter(self.systems.values())


def _mask(regimes: frozenset[str], index: dict[str, int]) -> int:
    m = 0
    for r in regimes:
        m |= index[r]
    return m


def _unmask(mask: int, names: dict[int, str]) -> frozenset[str]:
    return frozenset(name for bit, name in names.items() if mask & bit)
