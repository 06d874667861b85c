"""The flow graph: systems as nodes, flows as edges, with categories and regimes propagated.

networkx stays behind `FlowGraph`; callers get typed answers (systems, flows, regime
sets), never node or edge attribute dicts. Queries (paths, ancestors) and propagation run on
plain adjacency lists (propagation on integer bitsets), linear in systems + flows whatever
the shape, cycles included.

What a system holds is only known after `propagate()`: asking before it is a
programming error (`NotPropagatedError`), never an answer from the declared categories alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from itertools import pairwise

from residency.model import Flow, Party, System


class NotPropagatedError(RuntimeError):
    """A query that needs propagated categories, made before `FlowGraph.propagate()`."""

    def __init__(self, query: str) -> None:
        super().__init__(f"FlowGraph.{query}() needs propagate() first")


MAX_HOPS = 64  # a path longer than this is not listed (no TIA reader follows it)
STEP_BUDGET = 400  # flows examined per requested path: bounds a path query on any shape
PATH_SLACK = 2  # a listed path is at most this many hops longer than the shortest one


class FlowGraph:
    """Systems and flows of one evaluation, with what each system holds under which regime."""

    def __init__(
        self, parties: Iterable[Party], systems: Iterable[System], flows: Iterable[Flow]
    ) -> None:
        self.parties: dict[str, Party] = {p.id: p for p in parties}
        self.systems: dict[str, System] = {s.id: s for s in systems}
        self.flows: tuple[Flow, ...] = tuple(flows)
        self._out: dict[str, list[Flow]] = {sid: [] for sid in self.systems}
        self._in: dict[str, list[Flow]] = {sid: [] for sid in self.systems}
        for f in self.flows:
            self._out[f.source].append(f)
            self._in[f.target].append(f)
        sets = {s.data_categories for s in self.systems.values()}
        sets.update({f.data_categories for f in self.flows})  # few distinct sets, shared
        categories = {c for cats in sets for c in cats}
        self._categories: tuple[str, ...] = tuple(sorted(categories))
        self._regimes: tuple[str, ...] = ()
        self._inbound: dict[str, int] = {}
        self._declared: dict[str, int] = {}
        self._decode: dict[int, dict[str, frozenset[str]]] = {}
        self._slot: dict[str, int] = {}
        self._every = 0
        self._carried_cache: dict[tuple[int, frozenset[str]], frozenset[str]] = {}
        self._held_cache: dict[tuple[int, frozenset[str]], frozenset[str]] = {}
        self._paths_cache: dict[tuple[str, int, int], tuple[tuple[str, ...], ...]] = {}
        self._rank_cache: dict[str, dict[str, int]] = {}
        self._feeder_cache: dict[str, list[Flow]] = {}
        self._propagated = False

    # -------------------------------------------------------------- structure
    def __len__(self) -> int:
        return len(self.systems)

    def __iter__(self) -> Iterator[System]:
        return iter(self.systems.values())

    def party_of(self, system: System) -> Party:
        return self.parties[system.party]

    def outbound(self, system_id: str) -> list[Flow]:
        return self._out[system_id]

    def inbound(self, system_id: str) -> list[Flow]:
        return self._in[system_id]

    def fed_by_party(self, system_id: str, party: str) -> bool:
        """Does a system of `party` send data to `system_id`?"""
        systems = self.systems
        return any(systems[f.source].party == party for f in self._in[system_id])

    def upstream(self, system_id: str) -> set[str]:
        """Every system whose data can reach `system_id` (for onward-transfer paths)."""
        return self._reach(system_id, self._in, lambda f: f.source)

    def downstream(self, system_id: str) -> set[str]:
        """Every system `system_id`'s data can reach."""
        return self._reach(system_id, self._out, lambda f: f.target)

    @staticmethod
    def _reach(
        start: str, adjacency: dict[str, list[Flow]], step: Callable[[Flow], str]
    ) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for f in adjacency[stack.pop()]:
                nxt = step(f)
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        seen.discard(start)
        return seen

    def paths_to(self, flow: Flow, limit: int = 5, max_hops: int = MAX_HOPS) -> list[list[str]]:
        """Up to `limit` simple paths from a root system to the flow's source, then its target.

        A root is a system no flow feeds, or for a group of systems that feed each other
        and nothing else feeds (a controller its processors send data back to) one
        representative. Only the shortest routes are listed: paths at most `PATH_SLACK`
        hops longer than the source's distance from its nearest root (a cycle would
        otherwise offer paths of any length up to `max_hops`). They are found backwards
        from the source, nearest feeder first, bounded by `limit`, that length and a step
        budget, so cycles cost no more than chains; they are listed by root, then in the
        order a depth-first walk along each system's flows meets them.
        """
        found = self._root_paths(flow.source, limit, max_hops)
        return [[*p, flow.target] for p in found[:limit]]

    def _root_paths(self, source: str, limit: int, max_hops: int) -> tuple[tuple[str, ...], ...]:
        key = (source, limit, max_hops)
        hit = self._paths_cache.get(key)
        if hit is not None:
            return hit
        roots = self._roots
        dist = self._root_distance
        budget = STEP_BUDGET * max(limit, 1)
        found: list[tuple[str, ...]] = []
        if source in roots:
            found.append((source,))
        elif dist.get(source, max_hops + 1) <= max_hops:
            longest = min(max_hops, dist[source] + PATH_SLACK)
            path = [source]
            on_path = {source}
            stack = [iter(self._feeders(source))]
            while stack and len(found) < limit and budget > 0:
                for f in stack[-1]:
                    budget -= 1
                    u = f.source
                    if u in on_path or len(path) + dist[u] > longest:
                        if budget <= 0:
                            break
                        continue
                    if u in roots:
                        candidate = (u, *reversed(path))
                        if candidate not in found:  # parallel flows give the same path
                            found.append(candidate)
                        if len(found) >= limit or budget <= 0:
                            break
                        continue
                    path.append(u)
                    on_path.add(u)
                    stack.append(iter(self._feeders(u)))
                    break
                else:
                    stack.pop()
                    on_path.discard(path.pop())
        found.sort(key=self._path_key)
        out = tuple(found)
        self._paths_cache[key] = out
        return out

    def _feeders(self, system_id: str) -> list[Flow]:
        """The flows into a system, nearest to a root first (then in flow order)."""
        hit = self._feeder_cache.get(system_id)
        if hit is None:
            dist = self._root_distance
            far = len(dist) + 1
            hit = self._feeder_cache[system_id] = sorted(
                self._in[system_id], key=lambda f: dist.get(f.source, far))
        return hit

    def _path_key(self, path: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
        """Root, then the rank of each hop among its system's successors in flow order:
        the order in which a forward depth-first walk meets the paths."""
        return path[0], tuple(self._successor_rank(a)[b] for a, b in pairwise(path))

    def _successor_rank(self, system_id: str) -> dict[str, int]:
        rank = self._rank_cache.get(system_id)
        if rank is None:
            rank = {}
            for f in self._out[system_id]:
                rank.setdefault(f.target, len(rank))
            self._rank_cache[system_id] = rank
        return rank

    @cached_property
    def _roots(self) -> frozenset[str]:
        """Systems no flow feeds, plus one per group that feeds itself and nothing feeds:
        its first member (by id) declaring data categories, else its first member."""
        component = self._components
        fed: set[int] = set()
        members: dict[int, list[str]] = {}
        for sid, c in component.items():
            members.setdefault(c, []).append(sid)
            for f in self._in[sid]:
                if component[f.source] != c:
                    fed.add(c)
        roots: set[str] = set()
        for c, ids in members.items():
            if c in fed:
                continue
            ids.sort()
            roots.add(next((i for i in ids if self.systems[i].data_categories), ids[0]))
        return frozenset(roots)

    @cached_property
    def _root_distance(self) -> dict[str, int]:
        """Hops from the nearest root, by one breadth-first pass for the whole graph."""
        dist = dict.fromkeys(self._roots, 0)
        queue = deque(sorted(self._roots))
        while queue:
            sid = queue.popleft()
            d = dist[sid] + 1
            for f in self._out[sid]:
                if f.target not in dist:
                    dist[f.target] = d
                    queue.append(f.target)
        return dist

    @cached_property
    def _components(self) -> dict[str, int]:
        """Strongly connected components: system id -> component number."""
        ids = self._numbered[0]
        return {ids[member]: number for number, members in enumerate(self._condensed)
                for member in members}

    @cached_property
    def _numbered(self) -> tuple[list[str], list[list[int]]]:
        """The systems by number, and each one's flow targets by number in flow order: what
        the whole-graph passes walk (lists of small ints, not dicts keyed by strings, which
        stop fitting in a cache at a million flows)."""
        ids = list(self.systems)
        number = {sid: i for i, sid in enumerate(ids)}
        return ids, [[number[f.target] for f in self._out[sid]] for sid in ids]

    @cached_property
    def _condensed(self) -> list[list[int]]:
        """The strongly connected components (iterative Tarjan), as system numbers, in
        topological order: no flow leads from a component to one listed before it."""
        return [members[::-1] for members in reversed(components(self._numbered[1]))]

    # -------------------------------------------------------------- propagation
    def propagate(self, base: dict[str, frozenset[str]]) -> None:  # noqa: PLR0915 - one hot loop
        """Carry regimes along flows per data category until nothing changes.

        `base[s]` is what protects any data at `s` (its location, its party's
        establishment, declared regimes). Data that left the EEA keeps `eu_gdpr` at every
        later hop, so onward flows are judged for it too. Cycles are fine: the sets only
        grow. Each (category, regime) pair is one bit of a Python int.
        """
        self._regimes = tuple(sorted({r for v in base.values() for r in v}))
        width = len(self._regimes) or 1
        slot = {c: i * width for i, c in enumerate(self._categories)}
        regime_bit = {r: 1 << i for i, r in enumerate(self._regimes)}
        every = (1 << width) - 1

        def replicate(regimes: frozenset[str]) -> int:
            m = 0
            for r in regimes:
                m |= regime_bit[r]
            out = 0
            for off in slot.values():
                out |= m << off
            return out

        def cat_mask(cats: frozenset[str]) -> int:
            m = 0
            for c in cats:
                m |= every << slot[c]
            return m

        ids, succ = self._numbered
        rep_cache: dict[frozenset[str], int] = {}
        own: list[int] = []
        declared: dict[str, int] = {}
        for sid, s in self.systems.items():
            b = base.get(sid, frozenset())
            own.append(rep_cache[b] if b in rep_cache else rep_cache.setdefault(b, replicate(b)))
            declared[sid] = cat_mask(s.data_categories)
        held = [declared[sid] for sid in ids]
        mask_cache: dict[frozenset[str], int] = {}
        for cats in {f.data_categories for f in self.flows}:
            mask_cache[cats] = cat_mask(cats)
        # per system, its flows' (target, category mask) in flow order
        masks = [[mask_cache[f.data_categories] for f in self._out[sid]] for sid in ids]
        spread: dict[int, int] = {}  # inbound bits -> the category slots they occupy

        def held_slots(i: int, inbound_bits: int) -> int:
            hit = spread.get(inbound_bits)
            if hit is None:
                hit = 0
                for off in slot.values():
                    if (inbound_bits >> off) & every:
                        hit |= every << off
                spread[inbound_bits] = hit
            return held[i] | hit

        # Component by component in topological order: what reaches a component is final
        # before it is visited, so a system outside any cycle is visited once, and a cycle
        # is iterated to its fixpoint alone, never re-sending its growth downstream.
        bits = [0] * len(ids)
        for members in self._condensed:
            inside = set(members) if len(members) > 1 else members  # one member: one compare
            queue = deque(members)
            queued = set(members)
            while queue:
                i = queue.popleft()
                queued.discard(i)
                carried = own[i] | bits[i]
                everything = held_slots(i, bits[i])
                for target, fm in zip(succ[i], masks[i], strict=True):
                    contribution = carried & (fm or everything)
                    old = bits[target]
                    if contribution | old != old:
                        bits[target] = contribution | old
                        if target in inside and target not in queued:
                            queue.append(target)
                            queued.add(target)
        inbound = dict(zip(ids, bits, strict=True))
        self._inbound = inbound
        self._propagated = True
        self._declared = declared
        self._slot = slot
        self._every = every

    def _decode_bits(self, bits: int) -> dict[str, frozenset[str]]:
        """{category: regimes} for a bitset (cached: few distinct values in practice)."""
        hit = self._decode.get(bits)
        if hit is None:
            hit = {}
            for cat, off in self._slot.items():
                m = (bits >> off) & self._every
                if m:
                    hit[cat] = frozenset(
                        r for i, r in enumerate(self._regimes) if m >> i & 1
                    )
            self._decode[bits] = hit
        return hit

    def carried_regimes(self, system_id: str, categories: frozenset[str]) -> frozenset[str]:
        """Union of regimes carried into `system_id` for any of `categories`."""
        if not self._propagated:
            raise NotPropagatedError("carried_regimes")
        bits = self._inbound.get(system_id, 0)
        if not bits:
            return frozenset()
        key = (bits, categories)
        out = self._carried_cache.get(key)
        if out is None:
            decoded = self._decode_bits(bits)
            out = frozenset()
            for c in categories:
                r = decoded.get(c)
                if r:
                    out |= r
            self._carried_cache[key] = out
        return out

    def categories_held(self, system_id: str) -> frozenset[str]:
        """Declared categories plus every category flowing in."""
        if not self._propagated:
            raise NotPropagatedError("categories_held")
        declared = self.systems[system_id].data_categories
        bits = self._inbound.get(system_id, 0)
        if not bits:
            return declared
        key = (bits, declared)
        out = self._held_cache.get(key)
        if out is None:
            out = self._held_cache[key] = declared | frozenset(self._decode_bits(bits))
        return out


def components(succ: Sequence[Sequence[int]]) -> list[list[int]]:
    """The strongly connected components of nodes 0..len(succ)-1 (`succ[v]`: where v's
    edges lead), each listed after every component it reaches (Tarjan's order: sinks
    first), its members in the order Tarjan pops them. Iterative: no recursion limit."""
    n = len(succ)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    done: list[list[int]] = []  # Tarjan completes a component after its successors
    stack: list[int] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, iter(succ[root]))]
        while work:
            node, it = work[-1]
            for nxt in it:
                if index[nxt] < 0:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack[nxt] = True
                    work.append((nxt, iter(succ[nxt])))
                    break
                if on_stack[nxt] and index[nxt] < low[node]:
                    low[node] = index[nxt]
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    members: list[int] = []
                    while True:
                        member = stack.pop()
                        on_stack[member] = False
                        members.append(member)
                        if member == node:
                            break
                    done.append(members)
    return done
