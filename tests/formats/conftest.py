"""One report for the format tests: the AWS plan fixture, judged, with one finding waived."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from residency.datamap import load_map
from residency.model import Report
from residency.plan import PlanContext, load_plan
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

PLANS = Path(__file__).parent.parent / "plan" / "fixtures"
SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture(scope="session")
def plan_report() -> Report:
    pack = PolicyPack.load(None)
    datamap = load_map(PLANS / "map.yaml", pack)
    inv = load_plan(PLANS / "aws_modules.json", PlanContext(datamap.classification,
                                                            pack.paired_region, pack.catalogue))
    rep = Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(datamap, [inv])
    first = rep.findings[0]
    waived = replace(first, waived=True, waiver_reason="accepted by the DPO (SCC-1)")
    return replace(rep, findings=(waived, *rep.findings[1:]))
