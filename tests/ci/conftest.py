"""Reports for the CI-integration tests: a gate (one plan, several plans), a check, a scan."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from residency.collectors.interface import CollectContext, resource_system
from residency.datamap import load_map
from residency.formats import get_formatter
from residency.model import CoverageGap, DataMap, Inventory, Report
from residency.plan import PlanContext, load_plans
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "plan" / "fixtures"
PLAN_MAP = FIXTURES / "map.yaml"
QUICKSTART = ROOT / "examples" / "quickstart" / "residency.yaml"
SERVICEDESK = ROOT / "examples" / "servicedesk" / "residency.yaml"
AS_OF = dt.date(2026, 11, 30)


@pytest.fixture(scope="session")
def pack() -> PolicyPack:
    return PolicyPack.load(None)


def _engine(pack: PolicyPack) -> Engine:
    return Engine(pack, EngineOptions(AS_OF))


@pytest.fixture(scope="session")
def gate_report(pack: PolicyPack) -> Callable[..., Report]:
    """A gate over `plans` (paths as given: relative ones to the current directory)."""
    def build(*plans: str | Path, map_path: str | Path | None = PLAN_MAP) -> Report:
        datamap = load_map(Path(map_path), pack) if map_path else DataMap((), (), ())
        inventories = load_plans([Path(p) for p in plans], PlanContext(
            datamap.classification, pack.paired_region, pack.catalogue))
        return _engine(pack).run(datamap, inventories)
    return build


@pytest.fixture(scope="session")
def check_report(pack: PolicyPack) -> Report:
    return _engine(pack).run(load_map(QUICKSTART, pack))


def scan_inventory(datamap: DataMap) -> Inventory:
    """What a scan of two tagged buckets and one unreadable account yields."""
    ctx = CollectContext(datamap.classification)
    systems, flows = [], []
    for rid, region, value in (("arn:aws:s3:::tickets-us", "us-east-1", "servicedesk"),
                               ("arn:aws:s3:::misc", "eu-west-1", None)):
        tags = {datamap.classification.tag: value} if value else {}
        system, fed = resource_system(provider="aws", resource_id=rid, name=rid.rsplit(":", 1)[1],
                                      account="111122223333", regions=[region], tags=tags, ctx=ctx)
        assert system is not None
        systems.append(system)
        flows += fed
    return Inventory(tuple(systems), tuple(flows),
                     (CoverageGap("aws", "444455556666", "AccessDenied"),))


@pytest.fixture(scope="session")
def scan_report(pack: PolicyPack) -> Report:
    datamap = load_map(QUICKSTART, pack)
    return _engine(pack).run(datamap, [scan_inventory(datamap)])


@pytest.fixture(scope="session")
def mapless_scan_report(pack: PolicyPack) -> Report:
    datamap = DataMap((), (), ())
    return _engine(pack).run(datamap, [scan_inventory(load_map(QUICKSTART, pack))])


def sarif(report: Report) -> dict[str, Any]:
    return dict(json.loads(get_formatter("sarif").render(report)))
