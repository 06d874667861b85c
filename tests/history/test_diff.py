from __future__ import annotations

from dataclasses import replace

import pytest

from residency.cli.history import fail_on_new, new_failures
from residency.history.diff import diff, notify_payload, render_json, render_markdown, render_text
from residency.history.store import HistoryError, Store
from residency.model import Finding, Severity

from .factory import finding, make_report, transfer


def _two_runs(store: Store) -> tuple[int, int]:
    old = make_report(
        transfers=(
            transfer("keep", "US"),
            transfer("gone", "JP"),
            transfer("basis", "US", basis="safeguard", ref="scc"),
            transfer("cats", "US", cats=("contact_details",)),
        ),
        findings=(finding("RES-T001", "gone"), finding("RES-T005", "keep", Severity.WARNING)),
    )
    new = make_report(
        transfers=(
            transfer("keep", "US"),
            transfer("basis", "US", basis="none", ref=None),
            transfer("cats", "US", cats=("contact_details", "health")),
            transfer("fresh", "IN", cats=("billing",)),
        ),
        findings=(finding("RES-T005", "keep", Severity.WARNING), finding("RES-T003", "fresh")),
    )
    return (store.record(old, command="check", scope="check:x"),
            store.record(new, command="check", scope="check:x"))


def test_diff_transfers_findings_and_new_third_countries(db_url: str) -> None:
    with Store.open(db_url) as store:
        a, b = _two_runs(store)
        d = diff(store, a, b)
    assert [r.flow for r in d.new_transfers] == ["fresh"]
    assert [r.flow for r in d.resolved_transfers] == ["gone"]
    assert sorted(c.after.flow for c in d.changed_transfers) == ["basis", "cats"]
    basis = next(c for c in d.changed_transfers if c.after.flow == "basis")
    assert (basis.before.basis_kind, basis.after.basis_kind) == ("safeguard", "none")
    assert [f.rule for f in d.new_findings] == ["RES-T003"]
    assert [f.rule for f in d.resolved_findings] == ["RES-T001"]
    # health reaches US for the first time; billing reaches IN; contact_details lost JP only
    assert d.new_third_countries == (("billing", ("IN",)), ("health", ("US",)))
    assert not d.empty and [f.rule for f in d.new_errors()] == ["RES-T003"]
    assert "RES-T003" in render_text(d) and "### New findings" in render_markdown(d)
    assert '"new_errors": 1' in render_json(d)
    assert notify_payload(d, "slack")["text"].startswith("residency check:x: run")
    assert notify_payload(d, "generic")["summary"]["new_transfers"] == 1


def test_same_run_twice_is_an_empty_diff(db_url: str) -> None:
    report = make_report(transfers=(transfer("a", "US"),), findings=(finding("R", "a"),))
    with Store.open(db_url) as store:
        a = store.record(report, command="check", scope="s")
        b = store.record(report, command="check", scope="s")
        assert diff(store, a, b).empty
        assert not fail_on_new(store, b)


def test_fail_on_new_and_scope_pairing(db_url: str) -> None:
    with Store.open(db_url) as store:
        a, b = _two_runs(store)
        other = store.record(make_report(), command="scan", scope="scan:aws")
        assert not fail_on_new(store, a)  # the first run of a scope is the baseline
        assert fail_on_new(store, b)
        assert not fail_on_new(store, other)
        before = store.previous(b)
        assert before is not None and before.id == a
        with pytest.raises(HistoryError, match="only run of scope 'scan:aws'"):
            store.last_pair()  # the newest run has no predecessor in its own scope
        store.record(make_report(), command="check", scope="check:x")
        assert [r.id for r in store.last_pair()] == [b, b + 2]


GAP = Finding("RES-S001", Severity.ERROR, "gcp p2 could not be read", "gcp:p2", "scope")
UNKNOWN = Finding("RES-L001", Severity.ERROR, "odd: region unknown", "odd", "system", None,
                  ("*",))


@pytest.mark.parametrize("unknown", [GAP, UNKNOWN])
def test_a_persistent_fail_closed_finding_fails_every_night(db_url: str, unknown: Finding
                                                            ) -> None:
    report = make_report(transfers=(transfer("a", "US"),), findings=(unknown,))
    with Store.open(db_url) as store:
        first = store.record(report, command="scan", scope="scan:gcp")
        second = store.record(report, command="scan", scope="scan:gcp")
        assert diff(store, first, second).empty  # nothing new ...
        assert fail_on_new(store, first)  # ... yet an unknown is never a baseline
        assert fail_on_new(store, second)
        assert new_failures(store, second) == [f"{unknown.rule} {unknown.subject} counts "
                                               "whether new or not"]
        waived = store.record(make_report(findings=(replace(unknown, waived=True),)),
                              command="scan", scope="scan:gcp")
        assert not fail_on_new(store, waived)  # an explicit waiver is the way to accept it


def test_a_flow_repointed_to_another_importer_has_new_findings(db_url: str) -> None:
    with Store.open(db_url) as store:
        a = store.record(make_report(transfers=(transfer("f", "US"),),
                                     findings=(finding("RES-T001", "f"),)),
                         command="check", scope="check:x")
        b = store.record(make_report(transfers=(transfer("f", "US", importer="other-db"),),
                                     findings=(finding("RES-T001", "f"),)),
                         command="check", scope="check:x")
        d = diff(store, a, b)
        assert [f.subject for f in d.new_findings] == ["f"]
        assert [f.subject for f in d.resolved_findings] == ["f"]
        assert fail_on_new(store, b)
