"""The demo map plus the Art. 30 sections of fixtures/servicedesk-processing.yaml, evaluated."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from residency.datamap import parse_map
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports._common import collect_parties, graph_of

from .support import AS_OF, MAP, ROOT, Run

FIXTURE = Path(__file__).parent / "fixtures" / "servicedesk-processing.yaml"


@functools.cache
def _base() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / MAP).read_text(encoding="utf-8"))
    doc.update(yaml.safe_load(FIXTURE.read_text(encoding="utf-8")))
    return doc


def processing_doc() -> dict[str, Any]:
    """A fresh copy of the merged map document (tests edit it)."""
    return copy.deepcopy(_base())


def run_of(doc: dict[str, Any], pack: PolicyPack) -> Run:
    datamap = parse_map(doc, pack, Path("residency.yaml"))
    report = Engine(pack, EngineOptions(AS_OF)).run(datamap)
    parties = collect_parties(report, pack, datamap)
    return Run(pack, datamap, report, parties, graph_of(report, parties))


def write_map(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
