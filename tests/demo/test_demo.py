"""`residency demo` end to end: local peers, real collectors, engine, history and reports.

One demo run (module fixture) backs the read-only assertions; it must leave no thread, no
environment change and no file outside its output directory.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from residency.cli.main import cli

pytest.importorskip("moto.server")

AS_OF = "2026-11-30"
S3_REPLICATION = "replication:arn:aws:s3:::acme-sd-attachments->arn:aws:s3:::acme-sd-attachments-dr"
BR_ACCOUNT = ("/subscriptions/6a1f0c2e-5b7d-4e39-9c1a-2f8e4d6b0a11/resourceGroups/rg-sd-latam/"
              "providers/Microsoft.Storage/storageAccounts/acmesdbrazil")
DDB = "arn:aws:dynamodb:{}:123456789012:table/acme-sd-agent-sessions"


@dataclass
class DemoRun:
    cwd: Path
    out: Path
    code: int
    stdout: str
    stderr: str
    before: set[str]
    after: set[str]
    threads_before: set[threading.Thread]
    threads_after: set[threading.Thread]
    env_before: dict[str, str]
    env_after: dict[str, str]

    @property
    def doc(self) -> dict[str, Any]:
        return dict(json.loads((self.out / "report.json").read_text()))


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_demo(cwd: Path, out: str, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["demo", "--output", out, "--as-of", AS_OF, *extra])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    cwd = tmp_path_factory.mktemp("newcomer")
    (cwd / "notes.txt").write_text("the user's own file\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        # a user's AWS profile that does not exist here: the demo must not depend on it
        mp.setenv("AWS_PROFILE", "no-such-profile")
        before = listing(cwd)
        threads_before = set(threading.enumerate())
        env_before = dict(os.environ)
        code, stdout, stderr = run_demo(cwd, "x")
        yield DemoRun(cwd, cwd / "x", code, stdout, stderr, before, listing(cwd),
                      threads_before, set(threading.enumerate()), env_before,
                      dict(os.environ))


def test_exit_code_is_what_scan_gives(demo: DemoRun) -> None:
    assert demo.code == 1, demo.stderr  # the deliberately wrong safeguards are errors


def test_leaves_nothing_running_and_nothing_outside_its_folder(demo: DemoRun) -> None:
    assert demo.threads_after <= demo.threads_before, demo.threads_after - demo.threads_before
    assert demo.env_after == demo.env_before
    outside = {p for p in demo.after - demo.before if p != "x" and not p.startswith("x/")}
    assert outside == set()
    assert (demo.cwd / "notes.txt").read_text() == "the user's own file\n"
    assert not (demo.cwd / ".residency").exists()


def test_writes_the_report_drafts_and_history(demo: DemoRun) -> None:
    html = (demo.out / "report.html").read_text()
    assert "<svg" in html and "acme-sd-attachments-dr" in html
    drafts = sorted((demo.out / "tia").glob("TIA-*.md"))
    index = (demo.out / "tia" / "index.md").read_text()
    # a draft where an Art. 46 tool needs a TIA, and the index says why the others need none
    assert drafts and all(len(p.name) < 200 for p in drafts)
    assert {p.name for p in drafts} == set(re.findall(r"\]\((TIA-[^)]+\.md)\)", index))
    assert "no TIA needed" in index
    assert "TO BE COMPLETED BY COUNSEL" in drafts[0].read_text()
    assert demo.doc["as_of"] == AS_OF
    result = CliRunner().invoke(cli, ["history", "--db", str(demo.out / "history.db")])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "demo:servicedesk" in line]
    assert len(rows) == 1 and rows[0].split()[0] == "1"


def test_prints_the_summary_and_the_report_path(demo: DemoRun) -> None:
    for text in ("Findings by rule", "Transfers by regime", "Coverage gaps", "RES-S001",
                 "eu_gdpr", str(demo.out / "report.html")):
        assert text in demo.stdout, text
    assert "scanning aws" in demo.stderr


def test_copies_abroad_are_transfers(demo: DemoRun) -> None:
    transfers = {(t["flow"], t["regime"]): t for t in demo.doc["transfers"]}
    s3 = transfers[(S3_REPLICATION, "eu_gdpr")]  # attachments copied Dublin -> N. Virginia
    assert s3["countries"] == ["US"]
    grs = transfers[(f"replication:{BR_ACCOUNT}->{BR_ACCOUNT}#secondary", "eu_gdpr")]
    assert grs["countries"] == ["US"]  # Brazil South's pair is South Central US
    systems = {s["id"]: s for s in demo.doc["systems"]}
    assert systems[f"{BR_ACCOUNT}#secondary"]["location"] == "azure:southcentralus"
    ddb = f"replication:{DDB.format('eu-west-1')}->{DDB.format('ap-southeast-2')}"
    assert transfers[(ddb, "eu_gdpr")]["countries"] == ["AU"]  # the global table's replica
    gcs_us = "helpdesk->//storage.googleapis.com/projects/_/buckets/acme-sd-insights-us"
    assert transfers[(gcs_us, "eu_gdpr")]["countries"] == ["US"]
    assert not [t for t in demo.doc["transfers"] if "acme-sd-reports-eu" in t["flow"]
                and t["regime"] == "eu_gdpr"]  # the `EU` multi-region stays in the EEA


def test_findings_include_the_deliberate_mistakes_and_the_gaps(demo: DemoRun) -> None:
    found = {(f["rule"], f["subject"]) for f in demo.doc["findings"]}
    expected = {
        ("RES-S001", "aws:account 345678901234"),  # role cannot be assumed: fail closed
        ("RES-S001", "gcp:project acme-sd-sandbox"),
        ("RES-S001", "azure:subscription 6a1f0c2e-5b7d-4e39-9c1a-2f8e4d6b0a12"),
        ("RES-S001", "hubspot:tenant 4711"),  # the helpdesk token was revoked: HTTP 401
        ("RES-L002", "arn:aws:s3:::acme-sd-attachments-dr"),  # attachments outside Europe
        ("RES-I001", "arn:aws:s3:::acme-sd-scratch"),  # untagged bucket
        ("RES-T001", "helpdesk-to-l2"),  # the map's own mistakes are still found
        ("RES-T005", "helpdesk-to-overflow"),
        ("RES-T006", "helpdesk-to-analytics"),
    }
    assert expected <= found, expected - found
    # exactly the estate's four deliberate gaps: a service moto lacks must not read as one
    gaps = {f["subject"] for f in demo.doc["findings"] if f["rule"] == "RES-S001"}
    assert gaps == {s for r, s in expected if r == "RES-S001"}, gaps


def test_rerun_reuses_its_folder_and_is_deterministic(demo: DemoRun) -> None:
    first = (demo.out / "report.json").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(demo.cwd)
        code, _, _ = run_demo(demo.cwd, "x")
    assert code == 1
    assert (demo.out / "report.json").read_text() == first
    result = CliRunner().invoke(cli, ["diff", "--db", str(demo.out / "history.db")])
    assert result.exit_code == 0 and "run 1 → 2: 0 new finding(s)" in result.stdout


def test_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("precious")
    code, _, err = run_demo(tmp_path, str(tmp_path / "mine"))
    assert code == 2
    assert "not written by `residency demo`" in err
    assert listing(tmp_path / "mine") == {"thesis.docx"}


def test_missing_moto_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from residency.demo import runner

    monkeypatch.setattr(runner, "_importable", lambda module: module != "moto.server")
    code, _, err = run_demo(tmp_path, str(tmp_path / "out"))
    assert code == 2
    assert err.strip().splitlines() == [
        "residency: error: residency demo needs moto[server]: pip install 'residency[demo]'"
    ]
    assert not (tmp_path / "out").exists()


def _inventory(demo: DemoRun) -> dict[str, Any]:
    from residency.history.store import Store

    with Store.open(str(demo.out / "history.db")) as store:
        return {s.id: s for s in store.load_inventory(1).systems}


def test_helpdesk_tenant_at_the_vendor_reported_location(demo: DemoRun) -> None:
    systems = {s["id"]: s for s in demo.doc["systems"]}
    tenant = "saas:freshdesk:acme-support"
    assert systems[tenant]["countries"] == ["US"]  # View Account answered data_center "US"
    tags = dict(_inventory(demo)[tenant].tags)
    assert tags["residency:location-source"] == "observed"
    assert (tags["saas:location-code"], tags["saas:signal"]) == (
        "US", "GET /api/v2/account → data_center")
    assert tags["saas:location-table"] == "policies/saas/freshdesk.yaml"
    # the tenant is fed by the portal and judged: US without a safeguard fails
    transfers = {(t["flow"], t["regime"]): t for t in demo.doc["transfers"]}
    fed = transfers[(f"customer-portal->{tenant}", "eu_gdpr")]
    assert fed["countries"] == ["US"] and not fed["lawful"]


def test_subprocessors_are_onward_flows_the_engine_judges(demo: DemoRun) -> None:
    india = "saas:freshdesk:subprocessor:supportpro-services-pvt-ltd"
    onward = [t for t in demo.doc["transfers"] if t["importer"] == india]
    assert [(t["exporter"], t["countries"], t["regime"]) for t in onward] == [
        ("saas:freshdesk:acme-support", ["IN"], "eu_gdpr")]
    found = {(f["rule"], f["subject"]) for f in demo.doc["findings"]}
    assert ("RES-T003", onward[0]["flow"]) in found  # an onward transfer without a basis
    tags = dict(_inventory(demo)[india].tags)
    assert tags["saas:subprocessor-list-verified"] == "false"  # the demo's list is fictional
    assert "retrieved 2026-11-02" in tags["saas:subprocessor-list"]


def test_attested_tenants_are_marked_attested_with_their_expiry(demo: DemoRun) -> None:
    inventory = _inventory(demo)
    zendesk = dict(inventory["saas:zendesk:acme-help"].tags)
    assert zendesk["residency:location-source"] == "attested"  # never "observed"
    assert zendesk["saas:valid-until"] == "2027-06-30"
    assert zendesk["saas:evidence"].startswith("data_locality_addon: Zendesk Data Center")
    systems = {s["id"]: s for s in demo.doc["systems"]}
    assert "DE" in systems["saas:zendesk:acme-help"]["countries"]
    assert "US" not in systems["saas:zendesk:acme-help"]["countries"]
    # the ServiceNow attestation ran out before the demo's date: unknown, an error
    (expired,) = [f for f in demo.doc["findings"] if f["rule"] == "RES-L001"
                  and f["subject"] == "saas:servicenow:acme-itsm"]
    assert "expired on 2026-09-30" in expired["message"] and "re-attest" in expired["message"]
    html = (demo.out / "report.html").read_text()
    assert "attested" in html and "saas:zendesk:acme-help" in html
