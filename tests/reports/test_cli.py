from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from residency.cli.main import cli

from .support import ROOT

MAP = str(ROOT / "examples/servicedesk/residency.yaml")
BASE = ["--map", MAP, "--as-of", "2026-11-30"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_tia_directory_and_refusal(tmp_path: Path) -> None:
    out = tmp_path / "tias"
    code, _ = invoke("report", "tia", *BASE, "--output", str(out))
    assert code == 0
    drafts = {p.name for p in out.glob("TIA-*.md")}
    linked = set(re.findall(r"\]\((TIA-[^)]+\.md)\)", (out / "index.md").read_text()))
    # a draft exactly where the index says a TIA is due (Art. 46 tools), none for adequacy
    assert drafts == linked and "TIA-helpdesk-to-email.md" in drafts
    assert "TIA-portal-to-archive.md" not in drafts  # EU -> GB rests on adequacy
    code, _ = invoke("report", "tia", *BASE, "--output", str(out), "--per", "importer")
    assert code == 0  # re-running into residency's own directory is fine
    (out / "notes.txt").write_text("mine")
    code, output = invoke("report", "tia", *BASE, "--output", str(out))
    assert code == 2 and "did not write" in output
    assert (out / "notes.txt").read_text() == "mine"


def test_tia_single_transfer_stdout() -> None:
    code, output = invoke("report", "tia", *BASE, "--transfer", "helpdesk-to-email")
    assert code == 0 and output.count("# Transfer impact assessment") == 1
    code, output = invoke("report", "tia", *BASE, "--transfer", "portal-to-archive")
    assert code == 2 and "adequacy" in output  # no TIA is due where adequacy covers it
    code, output = invoke("report", "tia", *BASE, "--transfer", "nope")
    assert code == 2 and "unknown flow" in output


def test_register_xlsx(tmp_path: Path) -> None:
    out = tmp_path / "register.xlsx"
    code, _ = invoke("report", "register", *BASE, "--format", "xlsx", "--output", str(out))
    assert code == 0
    frame = pd.read_excel(out, dtype=str)
    assert "destination" in frame.columns and len(frame) > 10


def test_impact_and_graph() -> None:
    code, output = invoke("report", "impact", "--map", MAP, "--as-of", "2026-11-30",
                          "--assume-invalid", "eu-us-dpf-2023-1795")
    assert code == 0 and "chatbrain" in output
    code, output = invoke("graph", "--map", MAP, "--format", "mermaid")
    assert code == 0 and output.startswith("flowchart")
