"""`residency report subject-access`: the Art. 15(1)(c)/15(2) part of a DSAR reply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency.cli.main import cli
from residency.errors import InputError
from residency.policy.pack import PolicyPack
from residency.reports._common import COUNSEL
from residency.reports.subject_access import (
    SubjectAccess,
    build_subject_access,
    render_subject_access,
)

from .dpo_support import processing_doc, run_of, write_map
from .support import AS_OF


def answer(pack: PolicyPack, doc: dict | None = None, subject: str = "customers",
           categories: tuple[str, ...] = ()) -> SubjectAccess:
    run = run_of(doc or processing_doc(), pack)
    return build_subject_access(run.report, run.pack, run.datamap, run.parties, subject,
                                categories)


def test_recipients_in_the_organisations_words(pack: PolicyPack) -> None:
    a = answer(pack)
    by_party = {r.party: r for r in a.recipients}
    assert by_party["deskco"].text == "our helpdesk software provider (DeskCo, United States)"
    assert by_party["deskco"].in_words_of_map
    assert not by_party["mailrelay"].in_words_of_map
    assert by_party["mailrelay"].text.startswith("MailRelay Inc. (US)")
    assert "acme-ie" not in by_party  # the controller itself is no recipient
    assert a.recipient_categories[0] == "helpdesk software provider"


def test_one_statement_per_safeguard_with_its_copy(pack: PolicyPack) -> None:
    a = answer(pack)
    scc = [s for s in a.safeguards if s.regime == "EU GDPR" and "2021/914" in s.description]
    assert len(scc) == 1  # modules 2 and 3 on two flows: one statement, countries gathered
    assert set(scc[0].countries) == {"Singapore", "United States"}
    assert scc[0].copy.startswith("a copy of the clauses is available from dpo@acme.example")
    descriptions = [(s.regime, s.description) for s in a.safeguards]
    assert len(descriptions) == len(set(descriptions))
    derog = next(s for s in a.safeguards if s.kind == "derogation")
    assert "legal claims" in derog.description and "49(1)(e)" in derog.description


def test_copy_never_invented(pack: PolicyPack) -> None:
    doc = processing_doc()
    doc["transparency"]["safeguards"] = []
    a = answer(pack, doc)
    scc = next(s for s in a.safeguards if s.kind == "safeguard")
    assert scc.copy == COUNSEL
    assert any("copy_available_from" in g for g in a.gaps)


def test_unlawful_transfer_blocks_the_reply(pack: PolicyPack) -> None:
    a = answer(pack)
    none = [s for s in a.safeguards if s.kind == "none"]
    assert none and all("NO BASIS" in s.description for s in none)
    assert any("India" in g and "RES-T001" in g for g in a.gaps)


def test_categories_narrow_the_answer(pack: PolicyPack) -> None:
    full = answer(pack)
    only = answer(pack, categories=("attachments",))
    assert only.categories == ("attachments",)
    # the SCCs cover flows carrying contact details and ticket text, never attachments
    assert any(s.kind == "safeguard" for s in full.safeguards)
    assert not any(s.kind == "safeguard" for s in only.safeguards)
    assert {"IN", "GB"} <= {c for c, _ in only.third_countries}
    assert "mailrelay" not in {r.party for r in only.recipients}


def test_unknown_subject_or_category_is_an_input_error(pack: PolicyPack) -> None:
    with pytest.raises(InputError, match="did you mean 'customers'"):
        answer(pack, subject="custmers")
    with pytest.raises(InputError, match="did you mean 'contact_details'"):
        answer(pack, categories=("contact_detail",))
    doc = processing_doc()
    del doc["processing"]
    with pytest.raises(InputError, match="no processing activities"):
        answer(pack, doc)


def test_formats(pack: PolicyPack) -> None:
    doc = processing_doc()
    doc["transparency"]["recipients"][0]["public_description"] = "<b>DeskCo</b>"
    a = answer(pack, doc)
    data = json.loads(render_subject_access(a, "json"))
    assert data["residency_subject_access"] == 1 and data["subject"] == "customers"
    assert {c["code"] for c in data["third_countries"]} == {c for c, _ in a.third_countries}
    md = render_subject_access(a, "markdown")
    assert md.startswith("# Recipients, transfers and safeguards: customers\n")
    assert "no personal data was read" in md
    html = render_subject_access(a, "html")
    assert "<b>DeskCo</b>" not in html and "&lt;b&gt;DeskCo&lt;/b&gt;" in html


def test_cli(tmp_path: Path) -> None:
    path = write_map(processing_doc(), tmp_path / "residency.yaml")
    base = ["report", "subject-access", "--map", str(path), "--as-of", AS_OF.isoformat()]
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "--subject", "customers", "--format", "json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, [*base, "--subject", "staff"])
    assert result.exit_code == 2 and "staff" in result.output
    assert "Traceback" not in result.output


def test_the_answer_does_not_depend_on_the_order_of_activities_or_flows(
        pack: PolicyPack) -> None:
    """An answer gathering several bases (SCC modules 2 and 3) quotes the same one whatever
    order the activities and flows come in, and lists the same recipients and gaps."""
    doc = processing_doc()
    for sg in (s for f in doc["flows"] for s in f.get("safeguards", ())):
        sg.pop("tia", None)  # more SCC answers without a copy: gaps that name a module
    doc["transparency"]["safeguards"] = []
    turned = processing_doc()
    turned["flows"] = list(reversed(doc["flows"]))
    turned["processing"] = list(reversed(doc["processing"]))
    turned["transparency"] = doc["transparency"]
    a, b = answer(pack, doc), answer(pack, turned)
    assert any("2021/914 module" in g for g in a.gaps)
    assert a.safeguards == b.safeguards
    assert sorted(a.gaps) == sorted(b.gaps)
    assert sorted(r.party for r in a.recipients) == sorted(r.party for r in b.recipients)
