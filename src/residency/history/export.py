"""Tabular export of one stored run (inventory, transfers, findings) through pandas.

pandas, pyarrow and openpyxl come with the `reports` extra and are imported only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from residency._output import atomic_output
from residency.errors import ResidencyError
from residency.model import Report

EXPORT_FORMATS = ("csv", "parquet", "xlsx")
SHEETS = ("inventory", "transfers", "findings")


def _join(values: Any) -> str:
    return ",".join(sorted(values))


def tables(report: Report) -> dict[str, list[dict[str, Any]]]:
    """The three sheets as plain rows; lists become comma-joined strings."""
    resolved = dict(report.resolved)
    inventory = [
        {
            "id": s.id, "party": s.party, "role": s.role.value, "origin": s.origin.value,
            "location": s.location.describe(), "provider": s.location.provider,
            "regions": ",".join(s.location.regions),
            "countries": _join(resolved[s.id].countries) if s.id in resolved else "",
            "any_country": resolved[s.id].any_country if s.id in resolved else True,
            "access_from": _join(s.access_from), "data_categories": _join(s.data_categories),
            "classified": s.classified, "resource_id": s.resource_id, "account": s.account,
            "name": s.name,
        }
        for s in report.systems
    ]
    transfers = [
        {
            "flow": t.flow, "regime": t.regime, "exporter": t.exporter,
            "importer": t.importer, "exporter_party": t.exporter_party,
            "importer_party": t.importer_party, "country": country,
            "basis_kind": basis.kind, "basis_reference": basis.reference,
            "basis_source": basis.source, "data_categories": ",".join(t.data_categories),
            "onward": t.onward, "recurring": t.recurring, "same_entity": t.same_entity,
            "lawful": t.same_entity or basis.kind != "none",
        }
        for t in report.transfers
        for country, basis in t.bases
    ]
    findings = [
        {
            "fingerprint": f.fingerprint, "rule": f.rule, "severity": f.severity.value,
            "subject": f.subject, "subject_kind": f.subject_kind, "regime": f.regime,
            "countries": ",".join(f.countries), "instrument": f.instrument,
            "message": f.message, "hint": f.hint, "waived": f.waived,
            "waiver_reason": f.waiver_reason,
        }
        for f in report.findings
    ]
    return {"inventory": inventory, "transfers": transfers, "findings": findings}


_COLUMNS = {
    "inventory": ["id", "party", "role", "origin", "location", "provider", "regions",
                  "countries", "any_country", "access_from", "data_categories", "classified",
                  "resource_id", "account", "name"],
    "transfers": ["flow", "regime", "exporter", "importer", "exporter_party",
                  "importer_party", "country", "basis_kind", "basis_reference",
                  "basis_source", "data_categories", "onward", "recurring", "same_entity",
                  "lawful"],
    "findings": ["fingerprint", "rule", "severity", "subject", "subject_kind", "regime",
                 "countries", "instrument", "message", "hint", "waived", "waiver_reason"],
}


def export_report(report: Report, fmt: str, output: Path, stem: str = "run") -> list[Path]:
    """Write the run; csv/parquet: three files in directory `output`; xlsx: one workbook.

    For xlsx, an `output` not ending in .xlsx is a directory holding `<stem>.xlsx`.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ResidencyError("export needs pandas, pyarrow and openpyxl: install "
                             "residency[reports]") from None
    frames = {name: pd.DataFrame(rows, columns=_COLUMNS[name])
              for name, rows in tables(report).items()}
    try:
        if fmt == "xlsx":
            in_dir = output.is_dir() or output.suffix.lower() != ".xlsx"
            target = output / f"{stem}.xlsx" if in_dir else output
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(target, binary=True) as fh, \
                    pd.ExcelWriter(fh, engine="openpyxl") as writer:
                for name, frame in frames.items():
                    frame.to_excel(writer, sheet_name=name, index=False)
            return [target]
        if output.exists() and not output.is_dir():
            raise ResidencyError(f"{output}: {fmt} export writes three files; give a directory")
        output.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in frames.items():
            path = output / f"{name}.{fmt}"
            with atomic_output(path, binary=fmt != "csv") as fh:
                if fmt == "csv":
                    frame.to_csv(fh, index=False)
                else:
                    frame.to_parquet(fh, index=False)
            written.append(path)
        return written
    except ImportError as exc:
        raise ResidencyError(f"{output}: {fmt} export needs {exc.name}: install "
                             "residency[reports]") from None
    except OSError as exc:
        raise ResidencyError(f"{output}: cannot write: {exc.strerror or exc}") from None
