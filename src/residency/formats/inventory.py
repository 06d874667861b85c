"""The inventory export (`scan --inventory-out FILE`): one row per system, for spreadsheets and
data tools. Not a `Formatter`: it is a table written beside the report, chosen by suffix.

Every column is a scalar in every format (lists are comma-joined, tags a JSON object), so a CSV
and a Parquet file of the same scan read back to the same frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from residency._output import atomic_output
from residency.errors import InputError, ResidencyError
from residency.model import Report, ResolvedLocation

COLUMNS = (
    "id", "name", "provider", "account", "resource_id", "origin", "party", "location",
    "countries", "any_country", "unresolved", "classified", "data_categories", "tags",
)
SUFFIXES = (".json", ".csv", ".parquet")


def inventory_rows(report: Report) -> list[dict[str, Any]]:
    """The rows, without pandas (also what the JSON file holds, record by record)."""
    resolved = dict(report.resolved)
    rows = []
    for s in report.systems:
        loc = resolved.get(s.id, ResolvedLocation(frozenset(), True, "not resolved"))
        rows.append({
            "id": s.id,
            "name": s.name,
            "provider": s.location.provider,
            "account": s.account,
            "resource_id": s.resource_id,
            "origin": s.origin.value,
            "party": s.party,
            "location": s.location.describe(),
            "countries": ",".join(sorted(loc.countries)),
            "any_country": loc.any_country,
            "unresolved": loc.unresolved,
            "classified": s.classified,
            "data_categories": ",".join(sorted(s.data_categories)),
            "tags": json.dumps(dict(s.tags), sort_keys=True, ensure_ascii=False),
        })
    return rows


def write_inventory(report: Report, path: Path) -> None:
    """Write the inventory as .json, .csv or .parquet, by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(str(path), None, f"unknown inventory format {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(SUFFIXES)}")
    try:
        import pandas as pd
    except ImportError:
        raise ResidencyError("--inventory-out needs pandas: pip install 'residency[reports]'") \
            from None
    frame = pd.DataFrame(inventory_rows(report), columns=list(COLUMNS))
    try:
        with atomic_output(path, binary=suffix == ".parquet") as fh:
            if suffix == ".json":
                frame.to_json(fh, orient="records", indent=2, force_ascii=False)
            elif suffix == ".csv":
                frame.to_csv(fh, index=False)
            else:
                _parquet(frame, fh, path)
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None


def _parquet(frame: Any, fh: Any, path: Path) -> None:
    try:
        frame.to_parquet(fh, index=False, engine="pyarrow")
    except ImportError:
        raise ResidencyError(
            f"{path}: Parquet needs pyarrow: pip install 'residency[reports]'"
        ) from None
