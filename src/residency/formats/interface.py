"""The one interface every output format implements: it sees only the finished report."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TextIO

from residency.model import Report


class Formatter(ABC):
    """Render a `Report` as text; must not consult the engine, the pack or the map."""

    #: file suffix used when writing to a directory
    suffix: str = ".txt"

    @abstractmethod
    def render(self, report: Report) -> str:
        """Return the whole document."""

    def write(self, report: Report, stream: TextIO) -> None:
        """Write the document; formats with large output override this to stream."""
        stream.write(self.render(report))
