"""Mutants the fuzz targets found, pinned as plain regression cases (issue 11).

Each is one small change to a seed document of the repository; each must meet the same
contract as every fuzz example (exit 0/1/2, no traceback, one keyed line on exit 2, an
answer within RESIDENCY_FUZZ_TIMEOUT seconds).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import ROOT, check_contract, invoke
from .test_mutations import AS_OF, PLAN_MAP, QUICKSTART, WAIVER_PLAN, WAIVER_SEEDS

FIXTURES = ROOT / "tests" / "plan" / "fixtures"
Doc = dict[str, Any]


def _planned(doc: Doc) -> Doc:
    root: Doc = doc["planned_values"]["root_module"]
    return root


def _only_changes(doc: Doc) -> Doc:
    """Keep the resources in `resource_changes` only (the reader's second loop)."""
    _planned(doc)["resources"] = []
    _planned(doc)["child_modules"] = []
    return doc


def _each_change(key: str, value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        _only_changes(doc)
        for rc in doc["resource_changes"]:
            rc["change"][key] = copy.deepcopy(value)
    return edit


def _every_change(value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        _only_changes(doc)
        for rc in doc["resource_changes"]:
            rc["change"] = copy.deepcopy(value)
    return edit


def _module_calls(key: str, value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for call in doc["configuration"]["root_module"]["module_calls"].values():
            call[key] = copy.deepcopy(value)
    return edit


def _config_resources(key: str, value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for res in doc["configuration"]["root_module"]["resources"]:
            res[key] = copy.deepcopy(value)
    return edit


PLAN_CASES: list[tuple[str, str, Callable[[Doc], None]]] = [
    ("planned resources is a number", "aws_modules.json",
     lambda d: _planned(d).__setitem__("resources", 5)),
    ("child_modules is a number", "aws_modules.json",
     lambda d: _planned(d).__setitem__("child_modules", 5)),
    ("resource_changes is a number", "aws_modules.json",
     lambda d: d.__setitem__("resource_changes", 5)),
    ("a change is a list", "aws_modules.json", _every_change([1])),
    ("change.actions is a number", "aws_modules.json", _each_change("actions", 5)),
    ("change.actions holds a list", "aws_modules.json", _each_change("actions", [["create"]])),
    ("configuration resources is a number", "aws_modules.json",
     lambda d: d["configuration"]["root_module"].__setitem__("resources", 5)),
    ("module call expressions is a list", "aws_modules.json",
     _module_calls("expressions", [1])),
    ("resource expressions is a bool", "unclassified.json",
     _config_resources("expressions", True)),
    ("resource expressions is a number", "unknowns.json",
     _config_resources("expressions", 10**18)),
    # the message echoes the value: 100,000 characters must not take minutes to print
    ("format_version of 100,000 characters", "google.json",
     lambda d: d.__setitem__("format_version", "x" * 100_000)),
]


@pytest.mark.parametrize(("fixture", "edit"), [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])
def test_known_plan_mutant(fixture: str, edit: Callable[[Doc], None], tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / fixture).read_text())
    edit(doc)
    plan = tmp_path / fixture
    plan.write_text(json.dumps(doc))
    run = invoke("known", ["gate", str(plan), "--map", str(PLAN_MAP), "--as-of", AS_OF,
                           "--format", "json"])
    check_contract(run, plan, f"{fixture}: known mutant")


def _waivers(max_life_days: int) -> str:
    doc = yaml.safe_load(WAIVER_SEEDS["waivers.yaml"][0])
    doc["max_life_days"] = max_life_days
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize("days", [3_000_000, 999_999_999, 2**63 - 1])
def test_known_waiver_mutant_max_life_days(days: int, tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(_waivers(days))
    run = invoke("known", ["gate", str(WAIVER_PLAN), "--map", str(PLAN_MAP), "--as-of", AS_OF,
                           "--waivers", str(path), "--format", "json"])
    check_contract(run, path, f"max_life_days: {days}")


def test_known_map_mutant_long_unknown_party(tmp_path: Path) -> None:
    """An error that quotes a 100,000-character value answers at once (redaction is linear)."""
    doc = yaml.safe_load(QUICKSTART.read_text())
    doc["systems"][0]["party"] = "x" * 100_000
    path = tmp_path / "residency.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    run = invoke("known", ["check", "--map", str(path), "--as-of", AS_OF])
    check_contract(run, path, "systems[0].party of 100,000 characters")
    assert run.code == 2
