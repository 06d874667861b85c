"""`residency check` end to end: verdicts on the examples, exit codes, what-if and dates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from residency.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart" / "residency.yaml"
SERVICEDESK = ROOT / "examples" / "servicedesk" / "residency.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def check_json(path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run("check", "--map", str(path), "--as-of", "2026-11-30", "--format",
                       "json", *extra)
    return code, json.loads(out)


def rules_by_subject(doc: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(f["rule"], f["subject"], f["regime"]) for f in doc["findings"]}


def test_quickstart_verdicts() -> None:
    code, doc = check_json(QUICKSTART)
    assert code == 1
    assert rules_by_subject(doc) == {
        ("RES-L002", "helpdesk", None),  # ticket content reachable from US and IN
        ("RES-T007", "portal-to-helpdesk", "eu_gdpr"),  # TIA-7 is from 2024-01-05
    }
    (transfer,) = doc["transfers"]
    bases = {b["country"]: (b["kind"], b["reference"]) for b in transfer["bases"]}
    assert bases["US"] == ("adequacy", "eu-us-dpf-2023-1795")  # DeskCo is DPF-certified
    assert bases["IN"][0] == "safeguard"
    assert "DE" not in bases  # Frankfurt is inside the EEA: no transfer


def test_servicedesk_verdicts() -> None:
    code, doc = check_json(SERVICEDESK)
    assert code == 1
    found = rules_by_subject(doc)
    expected = {
        ("RES-T001", "helpdesk-to-l2", "eu_gdpr"),  # no safeguard to India
        ("RES-T003", "helpdesk-to-l2", "uk_gdpr"),  # UK data onward to India
        ("RES-T003", "helpdesk-to-email", "uk_gdpr"),  # MailRelay not in the UK Extension
        ("RES-T007", "helpdesk-to-email", "eu_gdpr"),  # SCC module 3 without TIA
        ("RES-T002", "ch-crm-to-helpdesk", "ch_fadp"),  # DeskCo not Swiss-DPF certified
        ("RES-T005", "helpdesk-to-overflow", "eu_gdpr"),  # old SCCs after 2022-12-27
        ("RES-T002", "helpdesk-to-overflow", "eu_gdpr"),  # PIPEDA coverage not declared
        ("RES-T006", "helpdesk-to-analytics", "eu_gdpr"),  # module 2 for P→P
        ("RES-T003", "helpdesk-to-analytics", "uk_gdpr"),
        ("RES-T004", "legal-hold-export", "eu_gdpr"),  # recurring derogation
        ("RES-L002", "l2-support", None),  # attachments in India
    }
    assert expected <= found, expected - found
    # intra-EU, adequate and covered flows produce nothing
    quiet = {"portal-to-helpdesk", "uk-portal-to-helpdesk", "portal-to-archive"}
    assert not [f for f in doc["findings"] if f["subject"] in quiet]


def test_fail_on_thresholds() -> None:
    assert run("check", "--map", str(QUICKSTART), "--fail-on", "never")[0] == 0
    code, _, _ = run("check", "--map", str(QUICKSTART), "--as-of", "2024-03-01")
    assert code == 1  # L002 error is date-independent


def test_quickstart_without_residency_rule_passes_at_error(tmp_path: Path) -> None:
    text = QUICKSTART.read_text().replace(
        "  - {data_categories: [ticket_content], allowed: [EEA]}", ""
    )
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert run("check", "--map", str(path), "--as-of", "2026-11-30")[0] == 0
    assert run("check", "--map", str(path), "--as-of", "2026-11-30", "--fail-on", "warning")[0] == 1
    assert run("check", "--map", str(path), "--as-of", "2024-06-01", "--fail-on", "warning")[0] == 0


def test_as_of_uk_sunset() -> None:
    """The EU's UK decision runs to 2031-12-27; after it, IE→GB needs a basis."""
    _, before = check_json(SERVICEDESK)
    assert not [f for f in before["findings"] if f["subject"] == "portal-to-archive"]
    _, code_after = run("check", "--map", str(SERVICEDESK), "--as-of", "2031-12-28",
                        "--format", "json")[0:2]
    after = json.loads(code_after)
    hits = [f for f in after["findings"] if f["subject"] == "portal-to-archive"]
    assert [(f["rule"], f["countries"]) for f in hits] == [("RES-T001", ["GB"])]


def test_assume_invalid_dpf() -> None:
    _, doc = check_json(QUICKSTART, "--assume-invalid", "eu-us-dpf-2023-1795")
    assert doc["assumed_invalid"] == ["eu-us-dpf-2023-1795"]
    (transfer,) = doc["transfers"]
    bases = {b["country"]: b["kind"] for b in transfer["bases"]}
    assert bases["US"] == "safeguard"  # the SCCs now carry the US leg
    t7 = [f for f in doc["findings"] if f["rule"] == "RES-T007"]
    assert t7 and t7[0]["countries"] == ["IN", "US"]


def test_assume_invalid_unknown_id_is_usage_error() -> None:
    code, _, err = run("check", "--map", str(QUICKSTART), "--assume-invalid", "nope")
    assert code == 2
    assert "nope" in err


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_formats_render(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"r.{fmt}"
    code, stdout, _ = run("check", "--map", str(SERVICEDESK), "--format", fmt, "--output",
                          str(out), "--as-of", "2026-11-30")
    assert code == 1
    assert stdout == ""
    text = out.read_text()
    assert "RES-T001" in text and "helpdesk-to-l2" in text


def test_json_report_matches_schema() -> None:
    import jsonschema

    schema = json.loads(
        (ROOT / "src" / "residency" / "formats" / "report.schema.json").read_text()
    )
    _, doc = check_json(SERVICEDESK)
    jsonschema.validate(doc, schema)
    assert doc["schema_version"] == 1


def test_policies_commands() -> None:
    code, out, _ = run("policies", "validate")
    assert code == 0 and out.startswith("ok:")
    code, out, _ = run("policies", "list", "--regime", "uk_gdpr")
    assert code == 0 and "uk-us-2023-1028" in out and "eu-us-dpf" not in out
    code, out, _ = run("policies", "show", "eu-us-dpf-2023-1795")
    assert code == 0 and "32023D1795" in out
    code, _, _err = run("policies", "show", "no-such-thing")
    assert code == 2
    code, out, _ = run("rules")
    assert code == 0 and "RES-T001" in out and "RES-S001" in out


def test_streamed_json_equals_indented(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large reports are written record by record; the document must be the same."""
    from residency.formats.jsonfmt import JsonFormatter

    _, small = check_json(SERVICEDESK)
    monkeypatch.setattr(JsonFormatter, "STREAM_AT", 0)
    _, streamed = check_json(SERVICEDESK)
    assert streamed == small


def test_text_table_says_how_many_findings_it_does_not_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from residency.formats.text import TextFormatter

    monkeypatch.setattr(TextFormatter, "MAX_ROWS", 3)
    code, out, _ = run("check", "--map", str(SERVICEDESK), "--as-of", "2026-11-30")
    assert code == 1
    _, doc = check_json(SERVICEDESK)
    hidden = len(doc["findings"]) - 3
    assert f"... and {hidden} more findings not shown" in out
    assert f"{doc['summary']['error']} errors" in out
