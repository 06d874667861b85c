from __future__ import annotations

import os
from pathlib import Path

import pytest

from residency.datamap import load_map
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports._common import collect_parties, graph_of

from .support import AS_OF, MAP, ROOT, Run


@pytest.fixture(scope="session")
def run(pack: PolicyPack) -> Run:
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        datamap = load_map(MAP, pack)
    finally:
        os.chdir(cwd)
    report = Engine(pack, EngineOptions(AS_OF)).run(datamap)
    parties = collect_parties(report, pack, datamap)
    return Run(pack, datamap, report, parties, graph_of(report, parties))


