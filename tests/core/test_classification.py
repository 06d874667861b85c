"""A classification tag is a classification, whatever its value: kept, and judged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from residency.collectors.interface import CollectContext, resource_system
from residency.datamap import parse_map
from residency.model import Classification, ClassificationValue, Inventory
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

CLS = Classification("data-classification", (
    ("customer-pii", ClassificationValue(frozenset({"contact_details"}))),))


def _system(value: str | None, classified_only: bool) -> object:
    tags = {} if value is None else {"data-classification": value}
    system, _ = resource_system(
        provider="aws", resource_id="arn:aws:s3:::b", name="b", account="1",
        regions=["us-east-1"], tags=tags, ctx=CollectContext(CLS, classified_only=classified_only))
    return system


def test_an_unlisted_value_survives_classified_only() -> None:
    """`Customer-PII` or `customer-pii ` is a classification the map does not list: the
    resource must not vanish from a `--classified-only` scan (it would pass unseen)."""
    for value in ("Customer-PII", "customer-pii ", "unknown-class"):
        system = _system(value, classified_only=True)
        assert system is not None and system.classified  # type: ignore[attr-defined]
    assert _system(None, classified_only=True) is None  # no tag at all: out of scope


def test_an_unlisted_value_is_an_error_finding(pack: PolicyPack) -> None:
    datamap = parse_map({"version": 1, "classification": {"values": {
        "customer-pii": {"data_categories": ["contact_details"]}}}}, pack, Path("m.yaml"))
    system = _system("Customer-PII", classified_only=True)
    report = Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(
        datamap, [Inventory((system,), (), ())])  # type: ignore[arg-type]
    [hit] = [f for f in report.findings if f.rule == "RES-I003"]
    assert hit.severity.value == "error" and "did you mean 'customer-pii'" in hit.message
