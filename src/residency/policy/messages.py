"""Finding messages as small frozen records, written once per verdict and rendered per flow.

The engine judges a transfer *shape* once (regime, destinations, parties' qualifications,
roles, and what each safeguard's dates mean on the evaluation date) and stamps the verdict
onto every flow of that shape. Messages still quote each flow's own values — the importer's
name, a contract's signing date, the TIA's reference — so a message is a tuple of literal
text and *slots*, each slot a frozen record that knows where in the flow its value lives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from residency.model import Flow, Party, Tia


@dataclass(frozen=True, slots=True)
class ImporterName:
    """The importing party's name."""

    def render(self, flow: Flow, importer: Party, third: tuple[str, ...]) -> str:
        return importer.name


@dataclass(frozen=True, slots=True)
class SafeguardDate:
    """A date of the flow's `index`-th safeguard (`signed`, `expires` or `approved`)."""

    index: int
    attr: str

    def render(self, flow: Flow, importer: Party, third: tuple[str, ...]) -> str:
        value = getattr(flow.safeguards[self.index], self.attr)
        return "?" if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class QuotedTia:
    """The TIA a message quotes: the newest dated on or before `day` (`past`), else the
    earliest dated one; `part` is its `ref` or its `date`."""

    day: dt.date
    past: bool
    part: str

    def pick(self, flow: Flow) -> Tia | None:
        dated = [sg.tia for sg in flow.safeguards if sg.tia is not None and sg.tia.date]
        if self.past:
            before = [t for t in dated if t.date and t.date <= self.day]
            return max(before, key=_tia_day, default=None)
        return min(dated, key=_tia_day, default=None)

    def render(self, flow: Flow, importer: Party, third: tuple[str, ...]) -> str:
        tia = self.pick(flow)
        if tia is None:
            return "?"
        if self.part == "ref":
            return tia.ref
        return tia.date.isoformat() if tia.date else "?"


def _tia_day(tia: Tia) -> dt.date:
    return tia.date or dt.date.min


@dataclass(frozen=True, slots=True)
class Countries:
    """Some of the flow's destination countries, by their place in its list."""

    indices: tuple[int, ...]

    def render(self, flow: Flow, importer: Party, third: tuple[str, ...]) -> str:
        return ", ".join([third[i] for i in self.indices])


Slot = ImporterName | SafeguardDate | QuotedTia | Countries
IMPORTER = ImporterName()


@dataclass(frozen=True, slots=True)
class Text:
    """Literal strings and slots; `render` fills the slots from one flow."""

    parts: tuple[str | Slot, ...]

    def render(self, flow: Flow, importer: Party, third: tuple[str, ...]) -> str:
        # a list, not a generator: join builds one anyway (once per finding on a big map)
        return "".join([p if type(p) is str else p.render(flow, importer, third)  # type: ignore[union-attr]
                        for p in self.parts])

    @property
    def literal(self) -> str | None:
        """The text when it has no slot (rendered the same for every flow)."""
        if all(isinstance(p, str) for p in self.parts):
            return "".join(p for p in self.parts if isinstance(p, str))
        return None


def text(*pieces: str | Slot | Text) -> Text:
    """Join literals, slots and other texts into one text (adjacent literals merged)."""
    parts: list[str | Slot] = []
    for piece in pieces:
        for p in piece.parts if isinstance(piece, Text) else (piece,):
            if isinstance(p, str) and parts and isinstance(parts[-1], str):
                parts[-1] += p
            elif p != "":
                parts.append(p)
    return Text(tuple(parts))


def join(texts: list[Text], sep: str) -> Text:
    out: list[str | Slot | Text] = []
    for i, t in enumerate(texts):
        if i:
            out.append(sep)
        out.append(t)
    return text(*out)
