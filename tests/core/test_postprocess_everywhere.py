"""Waivers and baselines work the same on check, scan and gate (one post-processing step)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from residency.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SERVICEDESK = str(ROOT / "examples" / "servicedesk" / "residency.yaml")


def _check(*args: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, ["check", "--map", SERVICEDESK, "--as-of", "2026-11-30",
                                      "--format", "json", *args])
    return result.exit_code, json.loads(result.stdout or "{}"), result.stderr


def test_check_takes_waivers(tmp_path: Path) -> None:
    code, doc, _ = _check()
    assert code == 1
    first = next(f for f in doc["findings"] if f["rule"] == "RES-T001")  # type: ignore[union-attr]
    waivers = tmp_path / "waivers.yaml"
    expires = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    waivers.write_text(yaml.safe_dump({"waivers": [{
        "id": "accepted", "rule": "RES-T001", "flow": first["subject"], "reason": "DPO",
        "owner": "dpo@example.com", "reference": "TIA-1", "expires": expires}]}))
    code, doc, _ = _check("--waivers", str(waivers))
    hit = [f for f in doc["findings"] if f["rule"] == "RES-T001"  # type: ignore[union-attr]
           and f["subject"] == first["subject"]]
    assert hit and all(f["waived"] for f in hit)


def test_check_takes_and_writes_baselines(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    code, _, _ = _check("--write-baseline", str(base))
    assert code == 1 and base.is_file()
    code, doc, _ = _check("--baseline", str(base))
    assert code == 0, doc  # everything known is accepted, except fail-closed findings
    assert all(f["waived"] for f in doc["findings"]  # type: ignore[union-attr]
               if f["severity"] == "error")


def test_scan_has_the_same_options() -> None:
    help_text = CliRunner().invoke(cli, ["scan", "--help"]).output
    for option in ("--waivers", "--baseline", "--write-baseline"):
        assert option in help_text


def test_history_scopes_do_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    """Recording the same map from two directories gives one scope (so `diff` compares)."""
    import os
    import shutil

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "infra").mkdir()
    shutil.copy(ROOT / "examples" / "quickstart" / "residency.yaml", repo / "infra" / "m.yaml")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    here = Path.cwd()
    try:
        for cwd, path in ((repo, "infra/m.yaml"), (repo / "infra", "m.yaml")):
            os.chdir(cwd)
            CliRunner().invoke(cli, ["check", "--map", path, "--db", db])
    finally:
        os.chdir(here)
    result = CliRunner().invoke(cli, ["history", "--db", db])
    assert result.output.count("check:infra/m.yaml") == 2, result.output
