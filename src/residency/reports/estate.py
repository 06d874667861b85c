"""The estate at a glance: origin regime → destination country → basis, coloured by verdict.

A three-column flow view (a Sankey) drawn as inline SVG: each band is a set of
(transfer, country) pairs, as wide as their number. Countries past `MAX_PLACES` fold into
their pack group ("EU (27)") and then into "other countries", so the view stays a picture
on any estate; the exact pairs are in the transfers table and the register.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from residency.model import Report, Transfer
from residency.reports._common import (
    BASIS_WORDS,
    VERDICT_COLOURS,
    Verdict,
    country_groups,
    flow_verdicts,
)

if TYPE_CHECKING:
    from residency.policy.pack import PolicyPack

MAX_PLACES = 14
WIDTH, PAD, BAR = 1040, 12, 14
BASES = {kind: words.title for kind, words in BASIS_WORDS.items()}


@dataclass(frozen=True, slots=True)
class Band:
    regime: str
    place: str
    basis: str
    verdict: Verdict
    pairs: int


@dataclass(frozen=True, slots=True)
class Estate:
    """Bands between the three columns, each column's labels in drawing order."""

    regimes: tuple[tuple[str, str], ...]  # id, label
    places: tuple[tuple[str, str], ...]  # key, label ("United States (US)")
    bases: tuple[tuple[str, str], ...]
    bands: tuple[Band, ...]


def build_estate(report: Report, pack: PolicyPack) -> Estate:
    verdicts = flow_verdicts(report)
    raw: dict[tuple[str, str, str, Verdict], int] = {}
    per_country: dict[str, int] = {}
    for t in report.transfers:
        v = _pair_verdict(t, verdicts[t.flow])
        for country, basis in t.bases:
            kind = "same_entity" if t.same_entity else basis.kind
            verdict = Verdict.ERROR if kind == "none" else v
            key = (t.regime, country, kind, verdict)
            raw[key] = raw.get(key, 0) + 1
            per_country[country] = per_country.get(country, 0) + 1
    fold = _folding(per_country, pack)
    bands: dict[tuple[str, str, str, Verdict], int] = {}
    for (regime, country, kind, verdict), n in raw.items():
        key = (regime, fold[country], kind, verdict)
        bands[key] = bands.get(key, 0) + n
    place_weight: dict[str, int] = {}
    for (_, place, _, _), n in bands.items():
        place_weight[place] = place_weight.get(place, 0) + n
    places = sorted(place_weight, key=lambda p: (-place_weight[p], p))
    labels = {p: _place_label(p, pack) for p in places}
    regimes = sorted({k[0] for k in bands})
    kinds = [k for k in BASES if any(b[2] == k for b in bands)]
    return Estate(
        tuple((r, pack.regimes[r].name if r in pack.regimes else r) for r in regimes),
        tuple((p, labels[p]) for p in places),
        tuple((k, BASES[k]) for k in kinds),
        tuple(Band(r, p, k, v, n) for (r, p, k, v), n in bands.items()),
    )


def _pair_verdict(t: Transfer, flow_verdict: Verdict) -> Verdict:
    if t.same_entity:
        return Verdict.SAME_ENTITY
    return Verdict.WARNING if flow_verdict is Verdict.WARNING else Verdict.LAWFUL


def _folding(weights: Mapping[str, int], pack: PolicyPack) -> dict[str, str]:
    """Country → the place it is drawn as: itself, its group, or "other"."""
    fold = {c: c for c in weights}
    if len(weights) <= MAX_PLACES:
        return fold
    for name, members in reversed(list(country_groups(pack).items())):  # largest first
        inside = [c for c in weights if c in members]
        if len(inside) > 3:
            for c in inside:
                fold[c] = f"group:{name}:{len(inside)}"
            break
    totals: dict[str, int] = {}
    for c, place in fold.items():
        totals[place] = totals.get(place, 0) + weights[c]
    if len(totals) > MAX_PLACES:
        keep = set(sorted(totals, key=lambda p: (-totals[p], p))[: MAX_PLACES - 1])
        rest = [p for p in totals if p not in keep]
        others = sum(1 for c in fold if fold[c] in rest)
        fold = {c: (p if p in keep else f"other:{others}") for c, p in fold.items()}
    return fold


def _place_label(place: str, pack: PolicyPack) -> str:
    if place.startswith("group:"):
        _, name, n = place.split(":")
        return f"{name} ({n} countries)"
    if place.startswith("other:"):
        return f"{place.split(':')[1]} other countries"
    return f"{pack.country_name(place)} ({place})"


# ---------------------------------------------------------------------- drawing
def estate_svg(e: Estate) -> str:
    """Three columns of bars joined by bands; every label 12-13 px, one per bar."""
    if not e.bands:
        return ""
    total = sum(b.pairs for b in e.bands)
    columns = [
        _column(e.regimes, {r: sum(b.pairs for b in e.bands if b.regime == r)
                            for r, _ in e.regimes}, total),
        _column(e.places, {p: sum(b.pairs for b in e.bands if b.place == p)
                           for p, _ in e.places}, total),
        _column(e.bases, {k: sum(b.pairs for b in e.bands if b.basis == k)
                          for k, _ in e.bases}, total),
    ]
    height = max(c[-1][2] + c[-1][3] for c in columns if c) + PAD + 30
    xs = (PAD + 190.0, WIDTH / 2 - BAR / 2, WIDTH - PAD - 230.0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
           f'width="{WIDTH}" height="{height:.0f}" role="img" class="estate-view" '
           'aria-label="Transfers by origin regime, destination and basis" '
           'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">']
    heads = (("Origin regime", xs[0] - 8, "end"), ("Destination", xs[1] + BAR + 8, "start"),
             ("Basis", xs[2] + BAR + 8, "start"))
    out.extend(f'<text x="{x:.0f}" y="{PAD + 12}" font-size="13" font-weight="600" '
               f'text-anchor="{anchor}" fill="#59636e">{escape(t)}</text>'
               for t, x, anchor in heads)
    out.extend(_bands(e, columns, xs))
    for col, (x, anchor, dx) in enumerate(((xs[0], "end", -8), (xs[1], "start", BAR + 8),
                                            (xs[2], "start", BAR + 8))):
        for key, label, y, h in columns[col]:
            n = _weight(e, col, key)
            out.append(f'<g class="bar"><title>{escape(label)}: {n:,} transfer-country '
                       f'pair(s)</title><rect x="{x:.1f}" y="{y:.1f}" width="{BAR}" '
                       f'height="{h:.1f}" fill="#57606a"/>'
                       f'<text x="{x + dx:.1f}" y="{y + h / 2 + 4:.1f}" font-size="12" '
                       f'text-anchor="{anchor}" fill="#1f2328" paint-order="stroke" '
                       f'stroke="#ffffff" stroke-width="3">{escape(label)} · {n:,}'
                       "</text></g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _weight(e: Estate, col: int, key: str) -> int:
    attr = ("regime", "place", "basis")[col]
    return sum(b.pairs for b in e.bands if getattr(b, attr) == key)


def _column(
    items: Iterable[tuple[str, str]], weight: Mapping[str, int], total: int
) -> list[tuple[str, str, float, float]]:
    """(key, label, y, height): bars in order, at least 20 px so each label has its row."""
    items = list(items)
    space = max(260.0, 18.0 * len(items) * 1.6)
    y = PAD + 30.0
    out = []
    for key, label in items:
        h = max(20.0, space * weight[key] / total)
        out.append((key, label, y, h))
        y += h + 6
    return out


def _bands(
    e: Estate, columns: list[list[tuple[str, str, float, float]]],
    xs: tuple[float, float, float],
) -> list[str]:
    """Each band leaves its left bar and enters its right one in the right bar's order."""
    out: list[str] = []
    spans = [{key: (y, h) for key, _, y, h in col} for col in columns]
    names = {key: label for col in columns for key, label, _, _ in col}
    order = [{key: k for k, (key, _, _, _) in enumerate(col)} for col in columns]
    pairs = ((0, 1, "regime", "place"), (1, 2, "place", "basis"))
    for left, right, a, b in pairs:
        merged: dict[tuple[str, str, Verdict], int] = {}
        for band in e.bands:
            key = (getattr(band, a), getattr(band, b), band.verdict)
            merged[key] = merged.get(key, 0) + band.pairs
        lw = {k: sum(n for (x, _, _), n in merged.items() if x == k) for k in spans[left]}
        rw = {k: sum(n for (_, x, _), n in merged.items() if x == k) for k in spans[right]}
        lo = dict.fromkeys(spans[left], 0.0)
        ro = dict.fromkeys(spans[right], 0.0)
        for (s, t, v), n in sorted(merged.items(), key=lambda kv: (
                order[left][kv[0][0]], order[right][kv[0][1]], kv[0][2].value)):
            sy, sh = spans[left][s]
            ty, th = spans[right][t]
            h1, h2 = sh * n / lw[s], th * n / rw[t]
            y1, y2 = sy + lo[s] + h1 / 2, ty + ro[t] + h2 / 2
            lo[s] += h1
            ro[t] += h2
            x1, x2 = xs[left] + BAR, xs[right]
            mid = (x1 + x2) / 2
            out.append(f'<path class="band {v.value}" d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} '
                       f'{mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" fill="none" '
                       f'stroke="{VERDICT_COLOURS[v]}" stroke-opacity="0.45" '
                       f'stroke-width="{max(1.0, min(h1, h2)):.1f}"><title>{escape(names[s])} → '
                       f"{escape(names[t])}: {n:,} ({escape(v.value)})</title></path>")
    return out
