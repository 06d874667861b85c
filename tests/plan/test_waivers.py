"""Waiver matching and baselines as library functions (no CLI)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from residency.baseline import apply_baseline, load_baseline, write_baseline
from residency.errors import InputError
from residency.model import (
    Finding,
    Flow,
    Location,
    PackInfo,
    Report,
    Role,
    Severity,
    System,
)
from residency.waivers import Waiver, apply_waivers, load_waivers

TODAY = dt.date(2026, 11, 30)


def _report(*findings: Finding) -> Report:
    bucket = System("b", "aws", Role.PROCESSOR, Location(provider="aws", regions=("us-east-1",)),
                    frozenset({"contact"}))
    crm = System("crm", "acme", Role.CONTROLLER, Location(frozenset({"DE"})),
                 frozenset({"contact", "health"}))
    flows = (Flow("crm->b", "crm", "b", frozenset({"contact"})),
             Flow("crm->h", "crm", "h", frozenset({"contact", "health"})))
    return Report(TODAY, PackInfo("p", "1", TODAY, "d"), (bucket, crm), (), flows, (),
                  tuple(findings))


T001 = Finding("RES-T001", Severity.ERROR, "m", "crm->b", "flow", "eu_gdpr", ("US",))
T001_H = Finding("RES-T001", Severity.ERROR, "m", "crm->h", "flow", "eu_gdpr", ("US", "CN"))
L002 = Finding("RES-L002", Severity.ERROR, "m", "b", "system", None, ("US",))


def _w(**kw: object) -> Waiver:
    base: dict[str, object] = {"label": "w", "rule": "RES-T001", "reason": "r", "owner": "o",
                               "reference": "SCC-1", "expires": dt.date(2027, 1, 1)}
    base.update(kw)
    return Waiver(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("waiver", "waived"),
    [
        (_w(resource="b"), {"crm->b"}),  # a resource covers the flows into it
        (_w(flow="crm->*"), {"crm->b", "crm->h"}),
        (_w(system="crm->b"), set()),  # a system scope never matches a flow finding
        (_w(countries=frozenset({"US"})), {"crm->b"}),  # CN is not covered
        (_w(data_categories=frozenset({"contact"})), {"crm->b"}),  # health is not covered
        (_w(flow="*", expires=dt.date(2026, 11, 29)), set()),  # expired
    ],
)
def test_matching(waiver: Waiver, waived: set[str]) -> None:
    report, _ = apply_waivers(_report(T001, T001_H), (waiver,), TODAY)
    assert {f.subject for f in report.findings if f.waived} == waived


def test_expired_and_stale_are_reported() -> None:
    report, extra = apply_waivers(
        _report(T001, L002),
        (_w(label="old", flow="*", expires=dt.date(2026, 1, 1)),
         _w(label="stale", rule="RES-L002", system="nothing")), TODAY)
    assert [(f.rule, f.subject) for f in extra] == [("RES-W001", "old"), ("RES-W002", "stale")]
    assert report.counts() == {"error": 2, "warning": 2, "info": 0}


def test_load_accepts_a_bare_list_and_single_values(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps([{"rule": "RES-T001", "country": "US", "data_category": "contact",
                                 "reason": "r", "owner": "o", "reference": "DPA-1",
                                 "expires": "2027-01-01"}]))
    (w,) = load_waivers(path)
    assert w.countries == {"US"} and w.data_categories == {"contact"}
    assert w.label == "w.json#waivers[0]"


def test_baseline_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(_report(T001, L002), path)
    known = load_baseline(path)
    out = apply_baseline(_report(L002, T001, T001_H), known)
    assert [f.subject for f in out.findings if not f.waived] == ["crm->h"]
    write_baseline(out, path)  # overwriting our own file is fine
    assert len(load_baseline(path)) == 3


def test_baseline_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a residency baseline"):
        load_baseline(path)
    with pytest.raises(InputError):
        write_baseline(_report(), path)
    assert path.read_text() == "[1, 2]"
