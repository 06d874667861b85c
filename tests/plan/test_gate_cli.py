"""`residency gate` end to end: exit codes, one-line errors, waivers, baselines."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency.cli.main import cli

from .conftest import FIXTURES

MAP = str(FIXTURES / "map.yaml")
AS_OF = "2026-11-30"


def gate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["gate", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def findings(*args: str) -> list[dict[str, object]]:
    code, out, _ = gate(*args, "--map", MAP, "--as-of", AS_OF, "--format", "json")
    assert code in (0, 1)
    return list(json.loads(out)["findings"])


def test_cross_border_copies_fail() -> None:
    code, out, _ = gate(str(FIXTURES / "azure_grs.json"), "--map", MAP, "--as-of", AS_OF,
                        "--format", "json")
    assert code == 1
    got = {(f["rule"], f["subject"]) for f in json.loads(out)["findings"]}
    assert ("RES-L002", "azurerm_storage_account.brgrs/secondary") in got


def test_unclassified_plan_passes_with_warnings() -> None:
    args = [str(FIXTURES / "unclassified.json"), "--map", MAP, "--as-of", AS_OF]
    code, out, _ = gate(*args)
    assert code == 0
    assert "RES-I001" in out
    assert gate(*args, "--fail-on", "warning")[0] == 1


def test_without_a_map_nothing_is_classified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = gate(str(FIXTURES / "google.json"), "--format", "json")
    assert code == 0
    assert {f["rule"] for f in json.loads(out)["findings"]} == {"RES-I001"}


def test_unknowns_are_res_l001() -> None:
    got = findings(str(FIXTURES / "unknowns.json"))
    l001 = {f["subject"] for f in got if f["rule"] == "RES-L001"}
    assert l001 == {"aws_s3_bucket.dr", "aws_s3_bucket.v6", "azurerm_storage_account.later"}
    # a classification only known at apply keeps the known location: its own finding
    assert {f["subject"] for f in got if f["rule"] == "RES-I005"} == {
        "aws_s3_bucket.tagged_later"}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("malformed.json", "invalid JSON"),
        ("wrong_version.json", "unsupported version '2.0'"),
        ("does-not-exist.json", "file not found"),
    ],
)
def test_bad_plans_exit_2_with_one_line(name: str, text: str) -> None:
    code, out, err = gate(str(FIXTURES / name), "--map", MAP)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and text in err and name in err
    assert "Traceback" not in err


def _waivers(tmp_path: Path, entries: list[dict[str, object]]) -> str:
    path = tmp_path / "waivers.yaml"
    path.write_text(json.dumps({"version": 1, "waivers": entries}))
    return str(path)


BASE = {"owner": "dpo@acme.example", "reference": "SCC-2024-17 / TIA-88",
        "reason": "DR copy approved by the DPO"}


def test_waivers_suppress_expire_and_go_stale(tmp_path: Path) -> None:
    plan = str(FIXTURES / "azure_grs.json")
    waivers = _waivers(tmp_path, [
        {**BASE, "id": "brgrs", "rule": "RES-L002", "resource": "azurerm_storage_account.brgrs*",
         "expires": "2027-06-30"},
        {**BASE, "id": "old", "rule": "RES-L002",
         "resource": "azurerm_storage_account.brgrs/secondary", "expires": "2026-01-31"},
        {**BASE, "id": "stale", "rule": "RES-T001", "flow": "nothing-*", "expires": "2027-01-01"},
    ])
    code, out, _ = gate(plan, "--map", MAP, "--as-of", AS_OF, "--waivers", waivers,
                        "--format", "json")
    got = json.loads(out)["findings"]
    l002 = [f for f in got if f["rule"] == "RES-L002"]
    assert l002 and all(f["waived"] and "SCC-2024-17" in f["waiver_reason"] for f in l002)
    assert {f["subject"] for f in got if f["rule"] == "RES-W001"} == {"old"}
    assert {f["subject"] for f in got if f["rule"] == "RES-W002"} == {"stale"}
    assert code == 0  # what is left is warnings and info (resource groups hold no data)
    assert gate(plan, "--map", MAP, "--as-of", AS_OF, "--waivers", waivers,
                "--fail-on", "warning")[0] == 1


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({**BASE, "rule": "RES-L002", "expires": "2027-01-01"}, "scope key"),
        ({**BASE, "rule": "RES-X999", "resource": "a", "expires": "2027-01-01"}, "unknown rule"),
        ({"rule": "RES-L002", "resource": "a", "expires": "2027-01-01"}, "required"),
        ({**BASE, "rule": "RES-L002", "resource": "a", "expires": "soon"}, "date"),
        ({**BASE, "rule": "RES-L002", "resource": "a", "expires": "2027-01-01", "x": 1},
         "unknown key"),
    ],
)
def test_bad_waivers_exit_2(tmp_path: Path, entry: dict[str, object], text: str) -> None:
    code, _, err = gate(str(FIXTURES / "azure_grs.json"), "--map", MAP,
                        "--waivers", _waivers(tmp_path, [entry]))
    assert code == 2
    assert text in err and "waivers.yaml" in err and err.count("\n") == 1


def test_baseline_roundtrip_survives_reordering(tmp_path: Path) -> None:
    plan = FIXTURES / "aws_modules.json"
    baseline = tmp_path / "baseline.json"
    code, _, _ = gate(str(plan), "--map", MAP, "--as-of", AS_OF, "--write-baseline",
                      str(baseline))
    assert code == 1
    doc = json.loads(baseline.read_text())
    assert doc["residency_baseline"] == 1 and doc["findings"] and doc["transfers"]

    shuffled = json.loads(plan.read_text())
    random.Random(7).shuffle(shuffled["resource_changes"])  # noqa: S311
    shuffled["planned_values"]["root_module"]["resources"].reverse()
    shuffled["planned_values"]["root_module"]["child_modules"].reverse()
    moved = tmp_path / "plan.json"
    moved.write_text(json.dumps(shuffled))
    code, out, _ = gate(str(moved), "--map", MAP, "--as-of", AS_OF, "--baseline", str(baseline),
                        "--format", "json")
    assert code == 0
    got = json.loads(out)["findings"]
    assert got and all(f["waived"] and f["waiver_reason"] == "in baseline" for f in got)

    # a new cross-border bucket is new: it fails
    new = json.loads(plan.read_text())
    tokyo = next(r for r in new["planned_values"]["root_module"]["resources"]
                 if r["address"] == "aws_s3_bucket.tokyo")
    tokyo["values"]["region"] = "sa-east-1"
    moved.write_text(json.dumps(new))
    code, out, _ = gate(str(moved), "--map", MAP, "--as-of", AS_OF, "--baseline", str(baseline),
                        "--format", "json")
    assert code == 1
    fresh = [f for f in json.loads(out)["findings"] if not f["waived"]]
    assert fresh and all(f["subject"].endswith("aws_s3_bucket.tokyo") for f in fresh)


def test_write_baseline_refuses_foreign_files(tmp_path: Path) -> None:
    other = tmp_path / "package.json"
    other.write_text('{"name": "web"}')
    code, _, err = gate(str(FIXTURES / "aws_modules.json"), "--map", MAP,
                        "--write-baseline", str(other))
    assert code == 2 and "not a residency baseline" in err
    assert other.read_text() == '{"name": "web"}'


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif", "junit"])
def test_every_format_renders(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"report.{fmt}"
    code, _, _ = gate(str(FIXTURES / "google.json"), "--map", MAP, "--as-of", AS_OF,
                      "--format", fmt, "--output", str(out))
    assert code == 1
    assert out.read_text().strip()


def test_several_plans_at_once() -> None:
    code, out, _ = gate(str(FIXTURES / "google.json"), str(FIXTURES / "azure_grs.json"),
                        "--map", MAP, "--as-of", AS_OF, "--format", "json")
    assert code == 1
    ids = {s["id"] for s in json.loads(out)["systems"]}
    assert f"{FIXTURES / 'azure_grs.json'}:azurerm_storage_account.brgrs/secondary" in ids
    assert "crm" in ids


@pytest.mark.parametrize("note", ["plain ascii", "Zürich – 東京"])
def test_sarif_columns_point_at_the_address(note: str, tmp_path: Path) -> None:
    """One-line plans (as `terraform show -json` writes them), ASCII or not: each result's
    line and code-point column is where the resource's `"address"` key stands."""
    doc = json.loads((FIXTURES / "google.json").read_text())
    doc = {"format_version": doc["format_version"], "description": note, **doc}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "gate.sarif"
    code, _, _ = gate(str(plan), "--map", MAP, "--as-of", AS_OF, "--format", "sarif",
                      "--output", str(out))
    assert code == 1
    lines = plan.read_text(encoding="utf-8").split("\n")
    located = 0
    for result in json.loads(out.read_text())["runs"][0]["results"]:
        loc = result["locations"][0]["physicalLocation"]
        if not loc["artifactLocation"]["uri"].endswith("plan.json") or "startColumn" not in loc["region"]:
            continue
        line = lines[loc["region"]["startLine"] - 1]
        assert line[loc["region"]["startColumn"] - 1:].startswith('"address"')
        located += 1
    assert located > 0
