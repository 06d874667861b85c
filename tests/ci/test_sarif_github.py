"""SARIF that GitHub code scanning ingests, not only SARIF the OASIS schema accepts.

GitHub's rules (docs: "SARIF support for code scanning"): version 2.1.0 with `$schema`;
every rule has an `id`, a `shortDescription` and a `helpUri`; every result a `ruleId`, a
`message.text` and a `physicalLocation` whose `artifactLocation.uri` is relative to the
repository root (no `..`, no absolute path, no `file://`) with `region.startLine` >= 1; and
`partialFingerprints` that do not depend on where the repository was checked out.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest

from residency.formats.sarif import ROOT_ENV, SRCROOT, find_root, relative_uri
from residency.model import Report

from .conftest import FIXTURES, PLAN_MAP, QUICKSTART, ROOT, sarif

SCHEMA = json.loads((ROOT / "tests" / "formats" / "schemas" / "sarif-schema-2.1.0.json")
                    .read_text())


def github_problems(doc: dict[str, Any]) -> list[str]:
    """Everything GitHub's SARIF ingestion would reject or mis-place, as readable lines."""
    problems = []
    if doc.get("version") != "2.1.0" or "$schema" not in doc:
        problems.append("version must be 2.1.0 with $schema")
    for run in doc["runs"]:
        for rule in run["tool"]["driver"]["rules"]:
            for key in ("id", "shortDescription", "helpUri"):
                if not rule.get(key):
                    problems.append(f"rule {rule.get('id')}: no {key}")
        bases = run.get("originalUriBaseIds", {})
        for i, result in enumerate(run["results"]):
            where = f"result {i} ({result.get('ruleId')})"
            if not result.get("ruleId"):
                problems.append(f"{where}: no ruleId")
            if not result.get("message", {}).get("text"):
                problems.append(f"{where}: no message.text")
            if not result.get("partialFingerprints"):
                problems.append(f"{where}: no partialFingerprints")
            locations = result.get("locations") or []
            physical = [loc["physicalLocation"] for loc in locations if "physicalLocation" in loc]
            if not physical:
                problems.append(f"{where}: no physicalLocation")
                continue
            art = physical[0].get("artifactLocation", {})
            uri = art.get("uri", "")
            parts = urlsplit(uri)
            if (not uri or parts.scheme or uri.startswith("/") or re.match(r"[A-Za-z]:", uri)
                    or ".." in unquote(uri).split("/") or "\\" in uri):
                problems.append(f"{where}: uri {uri!r} is not relative to the repository")
            if art.get("uriBaseId") and art["uriBaseId"] not in bases:
                problems.append(f"{where}: uriBaseId {art['uriBaseId']} not in "
                                "originalUriBaseIds")
            start = physical[0].get("region", {}).get("startLine")
            if not isinstance(start, int) or start < 1:
                problems.append(f"{where}: region.startLine {start!r}")
    return problems


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv(ROOT_ENV, raising=False)
    return ROOT


def _reports(gate_report: Callable[..., Report], check_report: Report, scan_report: Report,
             mapless_scan_report: Report) -> dict[str, Report]:
    rel = FIXTURES.relative_to(ROOT)
    return {
        "gate": gate_report(rel / "aws_modules.json", map_path=PLAN_MAP.relative_to(ROOT)),
        "gate-several": gate_report(rel / "google.json", rel / "azure_grs.json",
                                    map_path=PLAN_MAP.relative_to(ROOT)),
        "gate-mapless": gate_report(rel / "aws_modules.json", map_path=None),
        "check": check_report,
        "scan": scan_report,
        "scan-mapless": mapless_scan_report,
    }


@pytest.fixture
def reports(at_root: Path, gate_report: Callable[..., Report], check_report: Report,
            scan_report: Report, mapless_scan_report: Report) -> dict[str, Report]:
    return _reports(gate_report, check_report, scan_report, mapless_scan_report)


def test_every_report_meets_githubs_rules(reports: dict[str, Report]) -> None:
    for name, report in reports.items():
        assert report.findings, name
        doc = sarif(report)
        jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(doc)
        assert github_problems(doc) == [], name


def test_the_checker_catches_what_github_rejects(reports: dict[str, Report]) -> None:
    doc = sarif(reports["gate"])
    result = doc["runs"][0]["results"][0]
    for bad in ("/work/plan.json", "file:///work/plan.json", "../plan.json", "C:/plan.json"):
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = bad
        assert github_problems(doc), bad
    del result["locations"][0]["physicalLocation"]
    assert github_problems(doc)


def test_uris_are_relative_to_the_root_with_srcroot(reports: dict[str, Report]) -> None:
    doc = sarif(reports["gate"])
    run = doc["runs"][0]
    assert run["originalUriBaseIds"][SRCROOT]["uri"] == ROOT.as_uri() + "/"
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in run["results"]}
    assert uris == {"tests/plan/fixtures/aws_modules.json"}
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == SRCROOT
               for r in run["results"])


def _line(path: Path, line: int) -> str:
    return path.read_text().splitlines()[line - 1]


def _physical(result: dict[str, Any]) -> tuple[str, int, int | None]:
    phys = result["locations"][0]["physicalLocation"]
    return (phys["artifactLocation"]["uri"], phys["region"]["startLine"],
            phys["region"].get("startColumn"))


def test_plan_results_point_at_the_address_line(reports: dict[str, Report]) -> None:
    for result in sarif(reports["gate"])["runs"][0]["results"]:
        uri, line, column = _physical(result)
        subject = result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        # a flow points at its planned end; a derived copy (`.../replica/REGION`) at its table
        name = subject.rsplit("->", 1)[-1] if "->" in subject else subject
        name = name.split("/", 1)[0]
        text = _line(ROOT / uri, line)
        assert f'"address": {json.dumps(name)}' in text, (subject, line, text)
        assert column is not None and text[column - 1:].startswith('"address"')


def test_several_plans_point_into_each_plan(reports: dict[str, Report]) -> None:
    results = sarif(reports["gate-several"])["runs"][0]["results"]
    by_uri: dict[str, list[int]] = {}
    for result in results:
        uri, line, _ = _physical(result)
        by_uri.setdefault(uri, []).append(line)
        name = result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        assert str(ROOT) not in name  # the `<plan>:` prefix is the portable URI
    assert "tests/plan/fixtures/azure_grs.json" in by_uri
    assert all(line > 1 for line in by_uri["tests/plan/fixtures/azure_grs.json"])


def test_map_results_point_at_the_declaration(reports: dict[str, Report]) -> None:
    results = sarif(reports["check"])["runs"][0]["results"]
    lines = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: _physical(r)
             for r in results}
    assert lines["helpdesk"][0] == "examples/quickstart/residency.yaml"
    assert _line(QUICKSTART, lines["helpdesk"][1]).strip() == "- id: helpdesk"
    assert _line(QUICKSTART, lines["portal-to-helpdesk"][1]).strip() == \
        "- id: portal-to-helpdesk"


def test_scan_results_are_anchored_to_the_map(reports: dict[str, Report]) -> None:
    results = sarif(reports["scan"])["runs"][0]["results"]
    where = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: _physical(r)
             for r in results}
    assert {uri for uri, _, _ in where.values()} == {"examples/quickstart/residency.yaml"}
    # a tagged bucket: the classification value its tag names; the flow that feeds it: the
    # declared system; a coverage gap or an unclassified bucket: line 1 (the fallback)
    assert _line(QUICKSTART, where["arn:aws:s3:::tickets-us"][1]).strip().startswith(
        "servicedesk:")
    assert _line(QUICKSTART, where["helpdesk->arn:aws:s3:::tickets-us"][1]).strip() == \
        "- id: helpdesk"
    assert where["aws:444455556666"][1] == 1
    assert where["arn:aws:s3:::misc"][1] == 1


def test_a_scan_without_a_map_names_where_the_map_would_be(
    reports: dict[str, Report],
) -> None:
    results = sarif(reports["scan-mapless"])["runs"][0]["results"]
    assert {_physical(r) for r in results} == {("residency.yaml", 1, None)}


def test_json_maps_are_searched_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    pack: Any) -> None:
    import yaml

    from residency.datamap import load_map
    from residency.policy.engine import Engine, EngineOptions

    from .conftest import AS_OF

    (tmp_path / ".git").mkdir()
    doc = yaml.safe_load(QUICKSTART.read_text())
    path = tmp_path / "residency.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ROOT_ENV, raising=False)
    report = Engine(pack, EngineOptions(AS_OF)).run(load_map(Path("residency.json"), pack))
    results = sarif(report)["runs"][0]["results"]
    for r in results:
        uri, line, _ = _physical(r)
        subject = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        assert uri == "residency.json"
        assert _line(path, line).strip().startswith(f'"id": "{subject}"'), subject


def test_fingerprints_do_not_depend_on_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate_report: Callable[..., Report],
) -> None:
    """The same repository at two places, plans given relative and absolute: same
    fingerprints, same URIs."""
    seen = []
    for place, absolute in (("a", False), ("b/deeper", True)):
        repo = tmp_path / place / "repo"
        shutil.copytree(FIXTURES, repo / "infra")
        (repo / ".git").mkdir()
        monkeypatch.chdir(repo)
        monkeypatch.delenv(ROOT_ENV, raising=False)
        plans = [Path("infra/google.json"), Path("infra/azure_grs.json")]
        if absolute:
            plans = [repo / p for p in plans]
        report = gate_report(*plans, map_path=repo / "infra" / "map.yaml")
        doc = sarif(report)
        seen.append(sorted(
            (r["partialFingerprints"]["residencyFingerprint/v1"], _physical(r))
            for r in doc["runs"][0]["results"]))
        text = json.dumps([r["partialFingerprints"] for r in doc["runs"][0]["results"]])
        assert str(tmp_path) not in text
    assert seen[0] == seen[1]


def test_root_from_env_git_or_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "infra" / "prod").mkdir(parents=True)
    (repo / ".git").write_text("gitdir: /elsewhere\n")  # a worktree or submodule
    plan = repo / "infra" / "prod" / "plan.json"
    monkeypatch.chdir(tmp_path)
    assert find_root([str(plan)], {}) == repo.resolve()
    assert find_root([str(plan)], {ROOT_ENV: str(repo / "infra")}) == (repo / "infra").resolve()
    if not any((d / ".git").exists() for d in tmp_path.resolve().parents):
        assert find_root([], {}) == tmp_path.resolve()  # no git anywhere: the cwd
    assert relative_uri(str(plan), repo.resolve()) == "infra/prod/plan.json"
    # outside the root: the file name alone, never `..` or an absolute path
    assert relative_uri(str(tmp_path / "x y.json"), repo.resolve()) == "x%20y.json"


def test_env_root_wins(at_root: Path, monkeypatch: pytest.MonkeyPatch,
                       gate_report: Callable[..., Report]) -> None:
    monkeypatch.setenv(ROOT_ENV, str(FIXTURES))
    doc = sarif(gate_report(FIXTURES / "aws_modules.json"))
    assert {_physical(r)[0] for r in doc["runs"][0]["results"]} == {"aws_modules.json"}
    assert doc["runs"][0]["originalUriBaseIds"][SRCROOT]["uri"] == FIXTURES.as_uri() + "/"


def test_unreadable_artifact_falls_back_to_line_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate_report: Callable[..., Report],
) -> None:
    plan = tmp_path / "plan.json"
    shutil.copy(FIXTURES / "aws_modules.json", plan)
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    report = gate_report(plan)
    plan.unlink()  # gone between the gate and the formatter
    doc = sarif(report)
    assert {_physical(r)[1:] for r in doc["runs"][0]["results"]} == {(1, None)}
    assert github_problems(doc) == []


def test_no_automation_id_so_the_upload_category_applies(reports: dict[str, Report]) -> None:
    # upload-sarif sets automationDetails from its `category` only when the run has none
    assert "automationDetails" not in sarif(reports["gate"])["runs"][0]
