"""Configuration: precedence flag > env > file > default, discovery, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import AS_OF, MAP, WARNINGS_ONLY, run


def repo(tmp_path: Path, config: str, name: str = ".residency.yaml") -> Path:
    """A repository with a settings file at its root; returns a subdirectory of it."""
    (tmp_path / ".git").mkdir(parents=True)
    (tmp_path / name).write_text(config)
    sub = tmp_path / "infra" / "prod"
    sub.mkdir(parents=True)
    return sub


def gate(*extra: str, env: dict[str, str] | None = None) -> int:
    return run("gate", WARNINGS_ONLY, "--map", str(MAP), "--as-of", AS_OF, *extra, env=env)[0]


def test_fail_on_precedence_flag_env_file_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the plan has warnings and no error: --fail-on error/never exit 0, warning/info exit 1
    monkeypatch.chdir(tmp_path)
    assert gate() == 0  # default: error
    (tmp_path / ".residency.yaml").write_text("fail_on: warning\n")
    assert gate() == 1  # a top-level key of the file
    (tmp_path / ".residency.yaml").write_text("fail_on: never\ngate: {fail-on: warning}\n")
    assert gate() == 1  # the command's section beats the top level
    assert gate(env={"RESIDENCY_FAIL_ON": "never"}) == 0  # env beats file
    assert gate(env={"RESIDENCY_FAIL_ON": "never", "RESIDENCY_GATE_FAIL_ON": "info"}) == 1
    assert gate("--fail-on", "error", env={"RESIDENCY_GATE_FAIL_ON": "info"}) == 0  # flag


def test_config_shows_each_value_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = repo(tmp_path, "fail_on: warning\ngate:\n  format: sarif\n")
    monkeypatch.chdir(sub)
    code, out, err = run("config", "gate", "check", env={"RESIDENCY_CHECK_FAIL_ON": "info"})
    assert code == 0 and not err
    rows = {tuple(line.split()[:2]): line for line in out.splitlines()[2:]}
    config = str(tmp_path / ".residency.yaml")
    assert rows["gate", "--fail-on"].split()[2:4] == ["warning", f"{config}:"]
    assert rows["gate", "--format"].split()[2:5] == ["sarif", f"{config}:", "gate.format"]
    assert rows["check", "--fail-on"].split()[2:5] == ["info", "env", "RESIDENCY_CHECK_FAIL_ON"]
    assert rows["check", "--format"].split()[2:4] == ["text", "default"]
    assert out.startswith(f"config file: {config}\n")


def test_found_from_a_subdirectory_with_paths_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "map.yaml").write_text(MAP.read_text())
    sub = repo(tmp_path, "map: map.yaml\ngate: {format: json, fail_on: warning}\n")
    monkeypatch.chdir(sub)
    code, out, _ = run("gate", WARNINGS_ONLY, "--as-of", AS_OF)
    assert code == 1  # fail_on from the file
    assert json.loads(out)["findings"]  # format from the file, map found beside the file


def test_search_stops_at_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".residency.yaml").write_text("fail_on: warning\n")  # outside the repo
    sub = repo(tmp_path / "repo", "")
    (tmp_path / "repo" / ".residency.yaml").unlink()
    monkeypatch.chdir(sub)
    assert gate() == 0
    out = run("config", "gate")[1]
    assert out.startswith("config file: none found") and ".git" in out.splitlines()[0]


def test_pyproject_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = repo(tmp_path, '[project]\nname = "x"\n\n[tool.residency.gate]\nfail-on = "warning"\n',
               name="pyproject.toml")
    monkeypatch.chdir(sub)
    assert gate() == 1


def test_pyproject_without_the_table_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".residency.yaml").write_text("fail_on: warning\n")
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "pkg"
    sub.mkdir()
    (sub / "pyproject.toml").write_text('[project]\nname = "residency-user"\n')
    monkeypatch.chdir(sub)
    assert gate() == 1


def test_group_options_and_nested_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = repo(tmp_path, "quiet: true\nreport:\n  html: {output: out/report.html}\n")
    monkeypatch.chdir(sub)
    out = run("config", "report", env={"RESIDENCY_REPORT_TIA_PER": "importer"})[1]
    rows = {tuple(line.split()[:3]): line for line in out.splitlines()[2:]}
    assert rows["report", "html", "--output"].split()[3] == str(tmp_path / "out/report.html")
    assert "env RESIDENCY_REPORT_TIA_PER" in rows["report", "tia", "--per"]
    assert rows["residency", "--quiet", "true"]


def test_legacy_variables_keep_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"RESIDENCY_DB": str(tmp_path / "h.db"), "RESIDENCY_POLICIES": "/nowhere"}
    out = run("config", "history", env=env)[1]
    (row,) = [r for r in map(str.split, out.splitlines()) if r[:2] == ["history", "--db"]]
    assert row[:5] == ["history", "--db", str(tmp_path / "h.db"), "env", "RESIDENCY_DB"]
    code, _, err = run("check", "--map", str(MAP), env=env)
    assert code == 2 and "/nowhere" in err  # the pack is read from RESIDENCY_POLICIES


@pytest.mark.parametrize(("config", "expected"), [
    ("fail_onn: warning\n", ".residency.yaml: fail_onn: unknown key; did you mean 'fail_on'?"),
    ("gate: {fromat: json}\n", ".residency.yaml: gate.fromat: unknown key; did you mean "
     "'format'?"),
    ("gate: {fail_on: sometimes}\n", ".residency.yaml: gate.fail_on: 'sometimes' is not one of"),
    ("fail_on: warning\nfail_on: info\n", ".residency.yaml: line 2: duplicate key"),
    ("gate: {fail-on: info, fail_on: info}\n", ".residency.yaml: gate.fail_on: duplicate key "
     "(also written gate.fail-on)"),
    ("format: sarif\n", ".residency.yaml: format: unknown key: not an option every command "
     "shares"),
    ("gate: warning\n", ".residency.yaml: gate: a command's section must be a mapping"),
    ("gate: {assume_invalid: {a: 1}}\n", ".residency.yaml: gate.assume_invalid: expected a "
     "value"),
    ("gate: {fail_on: [error]}\n", ".residency.yaml: gate.fail_on: expected one value"),
    ("report: {htm: {output: x}}\n", ".residency.yaml: report.htm: unknown key; did you mean "
     "'html'?"),
    ("- a\n", ".residency.yaml: expected a mapping of settings"),
])
def test_bad_config_is_exit_2_with_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, expected: str
) -> None:
    sub = repo(tmp_path, config)
    monkeypatch.chdir(sub)
    command = ("report", "html") if config.startswith("report") else ("gate", WARNINGS_ONLY)
    code, out, err = run(*command)
    assert code == 2 and not out and err.count("\n") == 1, err
    assert err.startswith(f"residency: error: {tmp_path}/{expected}"), err


def test_bad_pyproject_and_bad_variable_are_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = repo(tmp_path, "[tool.residency]\nfail_on = 'warning'\nfail_on = 'info'\n",
               name="pyproject.toml")
    monkeypatch.chdir(sub)
    code, _, err = run("gate", WARNINGS_ONLY)
    assert code == 2 and err.count("\n") == 1 and "pyproject.toml: invalid TOML" in err
    monkeypatch.chdir(tmp_path.parent)
    code, _, err = run("gate", WARNINGS_ONLY, env={"RESIDENCY_GATE_FAIL_ON": "sometimes"})
    assert code == 2 and err.count("\n") == 1
    assert "environment variable RESIDENCY_GATE_FAIL_ON: 'sometimes' is not one of" in err


def test_explicit_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ci.yaml").write_text("gate: {fail_on: warning}\n")
    assert run("--config", "ci.yaml", "gate", WARNINGS_ONLY, "--map", str(MAP))[0] == 1
    code, _, err = run("gate", WARNINGS_ONLY, env={"RESIDENCY_CONFIG": "missing.yaml"})
    assert code == 2 and "missing.yaml: file not found" in err


def test_quiet_and_verbose_together_is_a_usage_error() -> None:
    code, _, err = run("-q", "-v", "rules")
    assert code == 2 and "--quiet and --verbose contradict" in err
