"""Markdown: for pull-request comments and wikis."""

from __future__ import annotations

from residency.formats.interface import Formatter
from residency.model import Report


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class MarkdownFormatter(Formatter):
    suffix = ".md"

    def render(self, report: Report) -> str:
        c = report.counts()
        lines = [
            "# residency: transfer check",
            "",
            f"Evaluated as of **{report.as_of}** with policy pack `{report.pack.name}` "
            f"{report.pack.version} (checked {report.pack.last_checked}, "
            f"digest `{report.pack.digest}`).",
            "",
            f"**{c['error']} errors, {c['warning']} warnings, {c['info']} info** — "
            f"{len(report.transfers)} transfers on {len(report.flows)} flows "
            f"across {len(report.systems)} systems.",
            "",
        ]
        if report.assumed_invalid:
            lines += [f"What-if: treating as invalid: {', '.join(report.assumed_invalid)}", ""]
        lines += ["## Findings", ""]
        if report.findings:
            lines += ["| Severity | Rule | Subject | Regime | Countries | Message |",
                      "|---|---|---|---|---|---|"]
            for f in report.findings:
                sev = f.severity.value + (" (waived)" if f.waived else "")
                lines.append(
                    f"| {sev} | {f.rule} | `{_cell(f.subject)}` | {f.regime or ''} | "
                    f"{', '.join(f.countries)} | {_cell(f.message)} |"
                )
        else:
            lines.append("No findings.")
        lines += ["", "## Transfers", ""]
        if report.transfers:
            lines += ["| Flow | Regime | Exporter → Importer | Countries | Basis |",
                      "|---|---|---|---|---|"]
            for t in report.transfers:
                basis = "; ".join(f"{c}: {b.kind}{' ' + b.reference if b.reference else ''}"
                                  for c, b in t.bases)
                lines.append(
                    f"| `{t.flow}` | {t.regime} | {t.exporter_party} → {t.importer_party}"
                    f"{' (onward)' if t.onward else ''} | {', '.join(t.countries)} | "
                    f"{_cell(basis)} |"
                )
        else:
            lines.append("No cross-border transfers.")
        if report.gaps:
            lines += ["", "## Coverage gaps", ""]
            lines += [f"- {g.provider} `{g.scope}`: {g.reason}" for g in report.gaps]
        return "\n".join(lines) + "\n"
