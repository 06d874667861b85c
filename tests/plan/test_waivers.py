"""Waiver matching and baselines as library functions (no CLI)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from residency.baseline import (
    Baseline,
    apply_baseline,
    finding_fingerprint,
    load_baseline,
    report_contexts,
    write_baseline,
)
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
    assert len(load_baseline(path).findings) == 3


def test_baseline_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a residency baseline"):
        load_baseline(path)
    with pytest.raises(InputError):
        write_baseline(_report(), path)
    assert path.read_text() == "[1, 2]"


# ---------------------------------------------------------------------- fail closed
S001 = Finding("RES-S001", Severity.ERROR, "m", "gcp:p2", "scope")
L001 = Finding("RES-L001", Severity.ERROR, "m", "b", "system", None, ("*",))


@pytest.mark.parametrize(
    ("waiver", "waived"),
    [
        (_w(rule="*", subject="*"), set()),  # a catch-all never silences an unknown
        (_w(rule="RES-S001", subject="gcp:*"), set()),
        (_w(rule="RES-L001", resource="[ab]"), set()),
        (_w(rule="RES-L001", countries=frozenset({"*"})), set()),  # no id scope
        (_w(rule="*", resource="b"), set()),  # the rule itself is a wildcard
        (_w(rule="RES-S001", subject="gcp:p2"), {"gcp:p2"}),  # named exactly: accepted
        (_w(rule="RES-L001", resource="b"), {"b"}),
        (_w(rule="*", subject="*", allow_fail_closed=True), {"gcp:p2", "b"}),  # said so
    ],
)
def test_wildcards_do_not_silence_fail_closed_rules(waiver: Waiver, waived: set[str]) -> None:
    report, extra = apply_waivers(_report(S001, L001), (waiver,), TODAY)
    assert {f.subject for f in report.findings if f.waived} == waived
    if not waived:
        (w003,) = extra
        assert w003.rule == "RES-W003" and w003.subject == "w" and "fail-closed" in w003.message
        assert report.max_severity() is Severity.ERROR


def test_a_refused_wildcard_still_waives_ordinary_findings() -> None:
    report, extra = apply_waivers(_report(T001, S001), (_w(rule="*", subject="*"),), TODAY)
    assert {f.subject for f in report.findings if f.waived} == {"crm->b"}
    assert [(f.rule, f.subject) for f in extra] == [("RES-W003", "w")]
    assert "RES-S001 gcp:p2" in extra[0].message


def test_a_waiver_past_its_maximum_life_is_not_applied() -> None:
    in_a_year = TODAY + dt.timedelta(days=365)
    ok, extra = apply_waivers(_report(T001), (_w(flow="*", expires=in_a_year),), TODAY)
    assert ok.findings[0].waived and not extra
    report, extra = apply_waivers(
        _report(T001), (_w(flow="*", expires=in_a_year + dt.timedelta(days=1)),), TODAY)
    assert not any(f.waived for f in report.findings)
    assert [f.rule for f in extra] == ["RES-W003"] and "365 days" in extra[0].message
    shorter = _w(flow="*", expires=TODAY + dt.timedelta(days=31), max_life_days=30)
    assert apply_waivers(_report(T001), (shorter,), TODAY)[1][0].rule == "RES-W003"


def test_max_life_days_is_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    entry = {"rule": "RES-T001", "flow": "*", "reason": "r", "owner": "o", "reference": "D",
             "expires": (TODAY + dt.timedelta(days=500)).isoformat()}
    path.write_text(json.dumps({"max_life_days": 730, "waivers": [entry]}))
    (w,) = load_waivers(path)
    assert w.max_life_days == 730
    report, extra = apply_waivers(_report(T001), (w,), TODAY)
    assert report.findings[0].waived and not extra
    path.write_text(json.dumps({"max_life_days": 0, "waivers": [entry]}))
    with pytest.raises(InputError, match="max_life_days"):
        load_waivers(path)


def test_as_of_in_the_past_does_not_revive_an_expired_waiver() -> None:
    old = replace(_report(T001), as_of=dt.date(2020, 1, 1))  # `--as-of 2020-01-01`
    report, extra = apply_waivers(old, (_w(flow="*", expires=dt.date(2026, 6, 30)),), TODAY)
    assert not report.findings[0].waived
    assert [f.rule for f in extra] == ["RES-W001"]


def test_as_of_in_the_future_expires_waivers_that_end_before_it() -> None:
    later = replace(_report(T001), as_of=dt.date(2027, 3, 1))  # what-if: next spring
    report, extra = apply_waivers(later, (_w(flow="*", expires=dt.date(2027, 1, 1)),), TODAY)
    assert not report.findings[0].waived and [f.rule for f in extra] == ["RES-W001"]


def test_the_default_today_is_the_real_date() -> None:
    today = dt.date.today()
    expired = _w(flow="*", expires=today - dt.timedelta(days=1))
    report = replace(_report(T001), as_of=dt.date(2020, 1, 1))
    assert [f.rule for f in apply_waivers(report, (expired,))[1]] == ["RES-W001"]


def _file(tmp_path: Path, *entries: dict[str, object]) -> Path:
    path = tmp_path / "waivers.yaml"
    base = {"reason": "r", "owner": "o", "reference": "D", "expires": "2027-01-01"}
    path.write_text(json.dumps({"waivers": [{**base, **e} for e in entries]}))
    return path


@pytest.mark.parametrize(
    ("rule", "suggestion"),
    [("RES-T01", "did you mean 'RES-T001'?"), ("res-s001", "did you mean 'RES-S001'?"),
     ("NOPE", "")],
)
def test_unknown_rule_names_the_key_and_a_close_match(tmp_path: Path, rule: str,
                                                      suggestion: str) -> None:
    path = _file(tmp_path, {"rule": "RES-T001", "flow": "a"}, {"rule": rule, "flow": "a"})
    with pytest.raises(InputError, match="unknown rule") as exc:
        load_waivers(path)
    assert exc.value.path == str(path) and exc.value.key == "waivers[1].rule"
    assert suggestion in exc.value.problem
    if not suggestion:
        assert "did you mean" not in exc.value.problem


@pytest.mark.parametrize(
    ("entries", "key", "text"),
    [
        (({"id": "a", "rule": "RES-T001", "flow": "x"}, {"id": "a", "rule": "RES-T001",
                                                         "flow": "y"}),
         "waivers[1].id", "duplicate id 'a'"),
        (({"rule": "RES-T001", "flow": "x", "country": "US"},
          {"rule": "RES-T001", "flow": "x", "country": ["US"], "reason": "other"}),
         "waivers[1]", r"duplicate of waivers\[0\]"),
    ],
)
def test_duplicate_waivers_are_refused(tmp_path: Path, entries: tuple[dict[str, object], ...],
                                       key: str, text: str) -> None:
    with pytest.raises(InputError, match=text) as exc:
        load_waivers(_file(tmp_path, *entries))
    assert exc.value.key == key


# ---------------------------------------------------------------------- baselines
def _repointed(report: Report, target: str) -> Report:
    """The same flow id, now sending to another system owned by another party."""
    other = System(target, "globex", Role.PROCESSOR,
                   Location(provider="aws", regions=("us-west-2",)), frozenset({"contact"}))
    flows = tuple(replace(f, target=target) if f.id == "crm->b" else f for f in report.flows)
    return replace(report, systems=(*report.systems, other), flows=flows)


def test_a_flow_repointed_to_another_importer_is_new(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(_report(T001), path)
    same = apply_baseline(_report(T001), load_baseline(path))
    assert all(f.waived for f in same.findings)
    moved = apply_baseline(_repointed(_report(T001), "elsewhere"), load_baseline(path))
    assert [f.subject for f in moved.findings if not f.waived] == ["crm->b"]


def test_another_instrument_or_country_is_new(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(_report(T001), path)
    known = load_baseline(path)
    for changed in (replace(T001, instrument="scc-2010"), replace(T001, countries=("IN",))):
        assert not apply_baseline(_report(changed), known).findings[0].waived


def test_an_old_format_baseline_loads_matches_nothing_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"residency_baseline": 1, "findings": [T001.fingerprint],
                                "transfers": []}))
    baseline = load_baseline(path)
    assert not baseline.findings and baseline.outdated == 1
    (warning,) = baseline.warnings()
    assert str(path) in warning and "--write-baseline" in warning
    assert not apply_baseline(_report(T001), baseline).findings[0].waived
    write_baseline(_report(T001), path)  # an old baseline is ours: it may be re-created
    assert load_baseline(path).outdated == 0


def test_a_newer_baseline_version_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"residency_baseline": 2, "findings": [], "transfers": []}))
    with pytest.raises(InputError, match="unsupported version 2"):
        load_baseline(path)


def test_fail_closed_findings_are_never_baselined(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(_report(T001, S001, L001), path)
    assert len(load_baseline(path).findings) == 1
    hand_made = Baseline(str(path), frozenset(
        finding_fingerprint(f, report_contexts(_report(S001, L001))(f)) for f in (S001, L001)))
    out = apply_baseline(_report(S001, L001), hand_made)
    assert not any(f.waived for f in out.findings)
