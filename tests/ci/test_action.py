"""The composite action (action.yml) and the example workflow that uses it: both parse, the
names line up, and the gate step's script runs as the runner would run it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import FIXTURES, ROOT

ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
WORKFLOW: dict[Any, Any] = yaml.safe_load((ROOT / "examples/ci/github-actions.yml").read_text())
STEPS = {s["name"]: s for s in ACTION["runs"]["steps"]}
BASH = shutil.which("bash")


def test_action_shape() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"plan", "map", "format", "args", "upload-sarif", "category"} <= set(ACTION["inputs"])
    assert ACTION["inputs"]["format"]["default"] == "sarif"
    assert list(STEPS) == ["Set up Python for residency", "Install residency", "residency gate",
                           "Upload SARIF to code scanning"]
    for step in STEPS.values():
        assert "uses" in step or step.get("shell") == "bash", step["name"]
    assert "pip install" in STEPS["Install residency"]["run"]
    upload = STEPS["Upload SARIF to code scanning"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@v")
    assert upload["with"]["sarif_file"] == "${{ steps.gate.outputs.report }}"
    assert "always()" in upload["if"]
    assert STEPS["residency gate"]["id"] == "gate"
    for name in ACTION["outputs"]:
        assert "steps.gate.outputs." in ACTION["outputs"][name]["value"]


def test_inputs_never_reach_a_script_unquoted() -> None:
    """`${{ inputs.x }}` inside `run:` is script injection; inputs go through `env:`."""
    for step in STEPS.values():
        assert "${{" not in step.get("run", ""), step["name"]
    used = {m for step in STEPS.values() for value in step.get("env", {}).values()
            for m in re.findall(r"inputs\.([\w-]+)", str(value))}
    used |= set(re.findall(r"inputs\.([\w-]+)", json.dumps(ACTION["runs"])))
    assert used <= set(ACTION["inputs"]), used - set(ACTION["inputs"])
    assert set(ACTION["inputs"]) <= used, set(ACTION["inputs"]) - used


def test_workflow_uses_the_action() -> None:
    assert WORKFLOW[True]["pull_request"]  # YAML 1.1 reads `on:` as True
    assert WORKFLOW["permissions"]["security-events"] == "write"
    steps = WORKFLOW["jobs"]["gate"]["steps"]
    gate = next(s for s in steps if s.get("name") == "residency gate")
    assert gate["uses"].split("@")[0] == "residency/residency"
    assert set(gate["with"]) <= set(ACTION["inputs"])
    assert gate["with"]["plan"] == "infra/plan.json"
    plan_step = next(s for s in steps if "terraform show -json" in s.get("run", ""))
    assert "plan.json" in plan_step["run"] and plan_step["working-directory"] == "infra"
    assert steps.index(plan_step) < steps.index(gate)


def _run_gate_step(tmp_path: Path, **inputs: str) -> tuple[int, dict[str, str], Path]:
    step = STEPS["residency gate"]
    env = dict.fromkeys(step["env"], "")
    names = {key: re.search(r"inputs\.([\w-]+)", v).group(1)  # type: ignore[union-attr]
             for key, v in step["env"].items()}
    for key, name in names.items():
        env[key] = inputs.get(name, str(ACTION["inputs"][name].get("default", "")))
    out_file = tmp_path / "github_output"
    out_file.touch()
    env |= {"GITHUB_OUTPUT": str(out_file), "HOME": str(tmp_path),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert BASH is not None
    res = subprocess.run([BASH, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c",
                          step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines())
    return res.returncode, outputs, tmp_path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "infra").mkdir()
    shutil.copy(FIXTURES / "aws_modules.json", tmp_path / "infra" / "plan.json")
    shutil.copy(FIXTURES / "map.yaml", tmp_path / "residency.yaml")
    return tmp_path


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_gate_step_writes_sarif_and_outputs(workspace: Path) -> None:
    code, outputs, cwd = _run_gate_step(workspace, plan="infra/plan.json",
                                        args="--fail-on error --as-of 2026-11-30")
    assert code == 1  # findings fail the step (and the job); the upload still runs
    assert outputs == {"exit-code": "1", "report": "residency.sarif"}
    doc = json.loads((cwd / "residency.sarif").read_text())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]}
    assert uris == {"infra/plan.json"}


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_gate_step_other_format_and_clean_exit(workspace: Path) -> None:
    code, outputs, cwd = _run_gate_step(workspace, plan="infra/*.json", format="junit",
                                        args="--fail-on never")
    assert code == 0 and outputs == {"exit-code": "0", "report": "residency.xml"}
    assert (cwd / "residency.xml").read_text().startswith("<?xml")


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_gate_step_without_a_plan_or_with_bad_input(workspace: Path) -> None:
    code, outputs, _ = _run_gate_step(workspace)
    assert code == 2 and "report" not in outputs
    code, outputs, _ = _run_gate_step(workspace, plan="infra/missing.json")
    assert code == 2 and outputs == {"exit-code": "2"}  # no report to upload
    code, _, _ = _run_gate_step(workspace, command="rm")
    assert code == 2
