"""The one interface every output format implements: it sees only the finished report."""

from __future__ import annotations

from abc import ABC, abstractmethod

from residency.model import Report


class Formatter(ABC):
    """Render a `Report` as text; must not consult the engine, the pack or the map."""

    #: file suffix used when writing to a directory
    suffix: str = ".txt"

    @abstractmethod
    def render(self, report: Report) -> str:
        """Return the whole document."""
