"""SaaS fixtures: one loopback peer per test (every vendor behind one server), a map whose
classification feeds the tenants from an Irish portal, and a collector factory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from residency.collectors.interface import CollectContext
from residency.collectors.saas import VENDORS
from residency.collectors.saas._http import HttpClient
from residency.collectors.saas.collector import SaasCollector, Tenant
from residency.datamap import load_map
from residency.demo.fake_saas import FakeSaas
from residency.model import DataMap
from residency.policy.pack import PolicyPack

TODAY = dt.date(2026, 12, 1)

MAP = """\
version: 1
parties:
  - {id: acme-ie, name: "Acme Support Ltd", country: IE}
systems:
  - id: portal
    party: acme-ie
    role: controller
    location: {country: IE}
    data_categories: [contact_details, ticket_content]
classification:
  tag: data-classification
  values:
    servicedesk: {data_categories: [contact_details, ticket_content], fed_by: portal}
"""


@pytest.fixture
def fake() -> Iterator[FakeSaas]:
    peer = FakeSaas().start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def datamap(tmp_path: Path, pack: PolicyPack) -> DataMap:
    path = tmp_path / "residency.yaml"
    path.write_text(MAP)
    return load_map(path, pack)


@pytest.fixture
def ctx(datamap: DataMap) -> CollectContext:
    return CollectContext(datamap.classification, workers=4)


Make = Callable[..., SaasCollector]


@pytest.fixture
def make(fake: FakeSaas, pack: PolicyPack) -> Make:
    def build(tenants: tuple[tuple[str, str], ...] = (), tokens: dict[str, str] | None = None,
              **kwargs: Any) -> SaasCollector:
        kwargs.setdefault("classification", "servicedesk")
        kwargs.setdefault("http", HttpClient(timeout=2.0, retries=1, sleep=lambda _s: None))
        kwargs.setdefault("today", lambda: TODAY)
        return SaasCollector(
            pack, {v: cls() for v, cls in VENDORS.items()}, [Tenant(v, t) for v, t in tenants],
            tokens=tokens or {}, endpoints={v: fake.endpoint(v) for v in VENDORS}, **kwargs)

    return build
