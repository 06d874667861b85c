"""The inventory export: one row per system, read back with pandas from each format."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from residency.errors import InputError
from residency.formats.inventory import COLUMNS, write_inventory
from residency.model import (
    DataMap,
    Flow,
    Inventory,
    Location,
    Origin,
    Party,
    Report,
    Role,
    System,
)
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

GCS = "//storage.googleapis.com/projects/_/buckets/eur4-backups"
ARM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com"


@pytest.fixture(scope="module")
def report(pack: PolicyPack) -> Report:
    crm = System("crm", "acme", Role.CONTROLLER, Location(countries=frozenset({"DE"})),
                 data_categories=frozenset({"contact"}))
    bucket = System(GCS, "gcp", Role.PROCESSOR, Location(provider="gcp", regions=("EUR4",)),
                    data_categories=frozenset({"contact", "billing"}), origin=Origin.COLLECTED,
                    name="eur4-backups", resource_id=GCS, account="p1",
                    tags=(("data-classification", "customer-pii"),
                          ("gcs:location-type", "dual-region")))
    dns = System(ARM, "azure", Role.PROCESSOR, Location(provider="azure", regions=("global",)),
                 origin=Origin.COLLECTED, classified=False, name="example.com",
                 resource_id=ARM, account="s1")
    datamap = DataMap((Party("acme", "Acme GmbH", "DE"),), (crm,),
                      (Flow("crm->bucket", "crm", GCS, frozenset({"contact"})),))
    inventory = Inventory((bucket, dns))
    return Engine(pack, EngineOptions(dt.date(2026, 1, 15))).run(datamap, [inventory])


def _check(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(COLUMNS)
    rows = {r["id"]: r for r in frame.to_dict(orient="records")}
    assert set(rows) == {"crm", GCS, ARM}
    b = rows[GCS]
    assert (b["provider"], b["account"], b["resource_id"]) == ("gcp", "p1", GCS)
    assert b["location"] == "gcp:EUR4"
    assert b["countries"] == "FI,NL"
    assert bool(b["any_country"]) is False and bool(b["classified"]) is True
    assert b["data_categories"] == "billing,contact"
    assert json.loads(b["tags"]) == {"data-classification": "customer-pii",
                                     "gcs:location-type": "dual-region"}
    d = rows[ARM]
    assert bool(d["any_country"]) is True and bool(d["classified"]) is False
    assert rows["crm"]["countries"] == "DE"
    assert rows["crm"]["origin"] == "declared"


def test_json(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    write_inventory(report, path)
    _check(pd.read_json(path, orient="records", dtype=False))


def test_csv(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "out" / "inv.csv"  # the parent is created
    write_inventory(report, path)
    _check(pd.read_csv(path, dtype=str, keep_default_na=False).assign(
        any_country=lambda f: f["any_country"] == "True",
        classified=lambda f: f["classified"] == "True",
    ))


def test_parquet(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "inv.parquet"
    write_inventory(report, path)
    frame = pd.read_parquet(path)
    _check(frame)
    assert frame["any_country"].dtype == bool


def test_unknown_suffix_is_an_input_error(report: Report, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown inventory format '\.xlsx'"):
        write_inventory(report, tmp_path / "inv.xlsx")


def test_empty_report_keeps_the_columns(report: Report, tmp_path: Path) -> None:
    empty = Report(report.as_of, report.pack, (), (), (), (), ())
    path = tmp_path / "empty.csv"
    write_inventory(empty, path)
    assert list(pd.read_csv(path).columns) == list(COLUMNS)
