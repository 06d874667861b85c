"""Transfer-impact reports: TIA drafts, the Art. 30 transfer register, flow diagrams,
what-if impact and the self-contained HTML report.

These builders read a finished `Report` plus the policy pack (for the legal facts behind
each basis) and the map's parties; they never change a verdict. Heavy dependencies
(jinja2, pandas, networkx writers) are imported inside functions to keep CLI start-up lean.
"""

from __future__ import annotations

from residency.errors import ResidencyError


class ReportError(ResidencyError):
    """A report could not be built or written (unknown flow, unsafe output directory)."""


__all__ = ["ReportError"]
