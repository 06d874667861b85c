"""What many start sets reach in one directed graph, at once, as bitsets (Python ints).

The DPO documents ask, for every processing activity, which systems its data reach. On an
estate where most activities reach most systems, one walk per activity costs activities ×
systems; here the graph's strongly connected components are found once (Tarjan,
`graph.components`), each component's closure is the union of its successors' (a sink
first), and each start set's reach is the union of its components' closures. The same pass
backwards gives, per system, the start sets that reach it. Closures are dropped once every
component that needs them is done, so memory follows the widest frontier, not components ×
systems.

Bit `i` of a node bitset is node `i`; bit `a` of a start-set bitset is start set `a`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from residency.graph import components

# per byte value, the positions of its set bits
_BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(j for j in range(8) if b >> j & 1) for b in range(256))


def indices(bits: int) -> Iterator[int]:
    """The positions of `bits`' set bits, ascending."""
    if not bits:
        return
    raw = bits.to_bytes((bits.bit_length() + 7) // 8, "little")
    table = _BITS
    for i, b in enumerate(raw):
        if b:
            base = i * 8
            for j in table[b]:
                yield base + j


def bitset(positions: Iterable[int]) -> int:
    """The bitset with these positions set (linear in the highest one, not quadratic)."""
    marks = sorted(set(positions))
    if not marks:
        return 0
    raw = bytearray(marks[-1] // 8 + 1)
    for p in marks:
        raw[p >> 3] |= 1 << (p & 7)
    return int.from_bytes(raw, "little")


@dataclass(frozen=True, slots=True)
class Reaches:
    """`reach[a]`: the nodes start set `a` reaches, its own included; `reached_by[v]`: the
    start sets that reach node `v`."""

    reach: tuple[int, ...]
    reached_by: tuple[int, ...]


Condensed = tuple[list[list[int]], list[set[int]], list[int]]


def condense(succ: Sequence[Sequence[int]]) -> Condensed:
    """The graph's components (sinks first, `graph.components`), each one's successor
    components, and each node's component."""
    comps = components(succ)
    comp_of = [0] * len(succ)
    for c, members in enumerate(comps):
        for v in members:
            comp_of[v] = c
    csucc: list[set[int]] = [set() for _ in comps]
    for v, ws in enumerate(succ):
        cv = comp_of[v]
        for w in ws:
            cw = comp_of[w]
            if cw != cv:
                csucc[cv].add(cw)
    return comps, csucc, comp_of


def reach_many(n: int, succ: Sequence[Sequence[int]],
               starts: Sequence[Sequence[int]]) -> Reaches:
    comps, csucc, comp_of = condense(succ)
    m = len(comps)
    starting: list[list[int]] = [[] for _ in range(m)]
    for a, ss in enumerate(starts):
        for c in {comp_of[v] for v in ss}:
            starting[c].append(a)
    waiting = [0] * m  # components that still need this one's closure
    for c in range(m):
        for d in csucc[c]:
            waiting[d] += 1
    closure: dict[int, int] = {}
    reach = [0] * len(starts)
    for c in range(m):  # every successor has a lower number: its closure is ready
        bits = bitset(comps[c])
        for d in csucc[c]:
            bits |= closure[d]
            waiting[d] -= 1
            if not waiting[d]:
                del closure[d]
        for a in starting[c]:
            reach[a] |= bits
        if waiting[c]:
            closure[c] = bits
    up = [0] * m
    for c, acts in enumerate(starting):
        for a in acts:
            up[c] |= 1 << a
    for c in range(m - 1, -1, -1):  # every predecessor has a higher number: already pushed
        u = up[c]
        if u:
            for d in csucc[c]:
                up[d] |= u
    return Reaches(tuple(reach), tuple(up[comp_of[v]] for v in range(n)))
