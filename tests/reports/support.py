"""Shared test data for the report tests."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from residency.graph import FlowGraph
from residency.model import DataMap, Party, Report
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
MAP = Path("examples/servicedesk/residency.yaml")  # relative: goldens must not hold tmp paths
AS_OF = dt.date(2026, 11, 30)
GOLDEN = Path(__file__).parent / "golden"


@dataclass(frozen=True)
class Run:
    pack: PolicyPack
    datamap: DataMap
    report: Report
    parties: dict[str, Party]
    graph: FlowGraph


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/reports/golden/NAME; RESIDENCY_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    # the pack's digest changes with any pack edit (a region added); the golden is about
    # the report's shape and statements, so it is compared without it
    actual = re.sub(r"\(digest [0-9a-f]{16}\)", "(digest <pack digest>)", actual)
    if os.environ.get("RESIDENCY_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} missing: run with RESIDENCY_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from the golden file (RESIDENCY_UPDATE_GOLDEN=1 " \
        "to accept)"
