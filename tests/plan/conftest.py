"""Shared pieces for the plan tests: the fixture directory, the pack, the map."""

from __future__ import annotations

from pathlib import Path

import pytest

from residency.datamap import load_map
from residency.model import DataMap
from residency.plan import PlanContext
from residency.policy.pack import PolicyPack

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def pack() -> PolicyPack:
    return PolicyPack.load(None)


@pytest.fixture(scope="session")
def datamap(pack: PolicyPack) -> DataMap:
    return load_map(FIXTURES / "map.yaml", pack)


@pytest.fixture(scope="session")
def ctx(pack: PolicyPack, datamap: DataMap) -> PlanContext:
    return PlanContext(datamap.classification, pack.paired_region, pack.catalogue)
