"""The pre-commit hooks take any number of files: each hook's entry is run the way pre-commit
runs it (`entry args... file1 file2 ...`), in a subprocess."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import FIXTURES, QUICKSTART, ROOT, SERVICEDESK

HOOKS: dict[str, dict[str, Any]] = {
    h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
}
RESIDENCY = Path(sys.executable).with_name("residency")


def run_hook(hook_id: str, files: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    hook = HOOKS[hook_id]
    for name in files:
        assert re.search(hook["files"], name), f"{hook_id} would not be given {name}"
    argv = shlex.split(hook["entry"], comments=True) + list(hook.get("args", []))
    assert argv[0] == "residency"
    argv[0] = str(RESIDENCY) if RESIDENCY.exists() else shutil.which("residency") or "residency"
    return subprocess.run([*argv, *files], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with two data maps and two plans, as a commit might touch them."""
    (tmp_path / "teams" / "support").mkdir(parents=True)
    (tmp_path / "teams" / "crm").mkdir(parents=True)
    shutil.copy(QUICKSTART, tmp_path / "teams" / "support" / "residency.yaml")
    shutil.copy(FIXTURES / "map.yaml", tmp_path / "teams" / "crm" / "residency.yml")
    shutil.copy(SERVICEDESK, tmp_path / "residency.yaml")
    shutil.copy(FIXTURES / "google.json", tmp_path / "teams" / "crm" / "plan.json")
    shutil.copy(FIXTURES / "azure_grs.json", tmp_path / "teams" / "support" / "tfplan.json")
    return tmp_path


def test_hooks_pass_filenames() -> None:
    assert set(HOOKS) == {"residency-gate", "residency-check"}
    for hook in HOOKS.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is True


def test_check_hook_takes_several_maps(repo: Path) -> None:
    maps = ["teams/support/residency.yaml", "teams/crm/residency.yml"]
    res = run_hook("residency-check", maps, repo)
    assert "unexpected extra argument" not in res.stderr
    assert res.returncode == 1, res.stderr  # the support map has an error finding
    for name in maps:
        assert f"== {name}" in res.stdout
    assert "RES-L002" in res.stdout


def test_check_hook_exit_code_is_the_worst(repo: Path) -> None:
    clean = run_hook("residency-check", ["teams/crm/residency.yml"], repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (repo / "bad").mkdir()
    (repo / "bad" / "residency.yaml").write_text("version: 1\nsystems: [\n")
    res = run_hook("residency-check", ["teams/crm/residency.yml", "bad/residency.yaml",
                                       "teams/support/residency.yaml"], repo)
    assert res.returncode == 2
    assert "bad/residency.yaml" in res.stderr and res.stderr.count("\n") == 1
    assert "== teams/support/residency.yaml" in res.stdout  # the maps after it still ran


def test_check_hook_with_no_files_is_clean(repo: Path) -> None:
    assert run_hook("residency-check", [], repo).returncode == 0


def test_gate_hook_takes_several_plans(repo: Path) -> None:
    res = run_hook("residency-gate", ["teams/crm/plan.json", "teams/support/tfplan.json"], repo)
    assert "unexpected extra argument" not in res.stderr
    assert res.returncode == 1, res.stderr
    assert "teams/support/tfplan.json" in res.stdout
