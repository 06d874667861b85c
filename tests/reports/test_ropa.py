"""`residency report ropa`: the Art. 30(1)/(2) record, its gaps and its formats."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from residency.cli.main import cli
from residency.errors import InputError
from residency.policy.pack import PolicyPack
from residency.reports.ropa import (
    CSV_COLUMNS,
    TRANSFER_COLUMNS,
    Ropa,
    build_ropa,
    transfer_rows,
    write_ropa,
)

from .dpo_support import processing_doc, run_of, write_map
from .support import AS_OF, MAP, ROOT


def ropa_of(doc: dict[str, Any], pack: PolicyPack) -> Ropa:
    run = run_of(doc, pack)
    return build_ropa(run.report, run.pack, run.datamap, run.parties)


def gaps_of(ropa: Ropa, activity: str) -> dict[str, str]:
    return {f"{g.article} {g.item}": g.detail for g in ropa.gaps if g.activity == activity}


def record(ropa: Ropa, activity: str) -> dict[str, str]:
    r = next(r for r in ropa.records if r.activity.id == activity)
    return {f"{i.article} {i.item}": i.value for i in r.items}


def test_missing_retention_is_a_gap_never_filled(pack: PolicyPack) -> None:
    ropa = ropa_of(processing_doc(), pack)
    uk = gaps_of(ropa, "uk-support")
    assert "30(1)(f) envisaged time limits for erasure" in uk  # the fixture gives none
    assert "30(1)(f) envisaged time limits for erasure" not in record(ropa, "uk-support")
    eu = record(ropa, "customer-support")
    assert eu["30(1)(f) envisaged time limits for erasure"].startswith("Tickets: 3 years")
    assert "30(1)(f) envisaged time limits for erasure" not in gaps_of(ropa, "customer-support")


def test_every_required_controller_item_missing_is_listed(pack: PolicyPack) -> None:
    doc = processing_doc()
    doc["processing"] = [{"id": "bare", "name": "Bare activity", "systems": ["customer-portal"]}]
    gaps = gaps_of(ropa_of(doc, pack), "bare")
    for item in ("30(1)(a) name and contact details of the controller",
                 "30(1)(a) data protection officer", "30(1)(b) purposes",
                 "30(1)(c) categories of data subjects",
                 "30(1)(g) technical and organisational security measures (Art. 32(1))"):
        assert item in gaps, item
    # the categories are known from the activity's systems, so they are not a gap
    assert "30(1)(c) categories of personal data" not in gaps


def test_processor_record_has_the_30_2_items(pack: PolicyPack) -> None:
    doc = processing_doc()
    ropa = ropa_of(doc, pack)
    rec = record(ropa, "group-archiving")
    assert rec["30(2)(a) controller on whose behalf the processor acts"].startswith(
        "Acme Support Ltd (IE)")
    assert "30(1)(b) purposes" not in rec and "30(1)(f)" not in " ".join(rec)
    doc["processing"][2].pop("controllers")
    gaps = gaps_of(ropa_of(doc, pack), "group-archiving")
    assert "30(2)(a) each controller on whose behalf the processor acts" in gaps


def test_transfers_follow_the_activity_data_and_regime(pack: PolicyPack) -> None:
    ropa = ropa_of(processing_doc(), pack)
    rows = [dict(zip(TRANSFER_COLUMNS, r, strict=True)) for r in transfer_rows(ropa)]
    eu = {(r["flow"], r["regime"], r["destination"]) for r in rows
          if "customer-support" in r["activities"].split(", ")}
    uk = {(r["flow"], r["regime"]) for r in rows if "uk-support" in r["activities"].split(", ")}
    keys = [(r["flow"], r["regime"], r["destination"]) for r in rows]
    assert len(keys) == len(set(keys))  # a transfer shared by activities is listed once
    assert ("legal-hold-export", "eu_gdpr", "IN") in eu
    assert ("helpdesk-to-l2", "eu_gdpr", "IN") in eu
    assert {reg for _, reg in uk} == {"uk_gdpr"}  # not the Swiss CRM's ch_fadp transfers
    assert not any(reg == "ch_fadp" for _, reg, _ in eu)
    details = [g.detail for g in ropa.gaps if g.activity == "customer-support"]
    assert any("helpdesk-to-l2 (eu_gdpr) to IN" in d for d in details)
    unlawful = [r for r in rows if r["status"] == "NO BASIS"]
    assert unlawful and all(r["basis"] == "NO BASIS" for r in unlawful)


def test_residual_ground_needs_its_documentation(pack: PolicyPack) -> None:
    doc = processing_doc()
    hold = next(f for f in doc["flows"] if f["id"] == "legal-hold-export")
    hold["recurring"] = False
    hold["safeguards"] = [{"type": "derogation", "article": "49(1) second subparagraph",
                           "conditions": ["limited_data_subjects", "authority_informed",
                                          "data_subjects_informed", "assessment_documented"]}]
    item = "30(1)(e) documentation of suitable safeguards (Art. 49(1) second subparagraph)"
    assert item in gaps_of(ropa_of(doc, pack), "customer-support")
    doc["processing"][0]["transfer_documentation"] = "Assessment DPO-2026-7, stored in the DMS"
    ropa = ropa_of(doc, pack)
    assert item not in gaps_of(ropa, "customer-support")
    assert record(ropa, "customer-support")[item] == "Assessment DPO-2026-7, stored in the DMS"


def test_representative_gap_only_outside_the_eea(pack: PolicyPack) -> None:
    ropa = ropa_of(processing_doc(), pack)
    assert "30(1)(a) representative (Art. 27)" in gaps_of(ropa, "uk-support")  # GB
    assert "30(1)(a) representative (Art. 27)" not in gaps_of(ropa, "customer-support")  # IE


def test_without_processing_section_records_are_derived(pack: PolicyPack) -> None:
    doc = processing_doc()
    del doc["processing"], doc["transparency"]
    ropa = ropa_of(doc, pack)
    ids = {r.activity.id for r in ropa.records}
    assert {"acme-ie-controller", "acme-uk-controller", "acme-ch-controller",
            "acme-uk-processor"} == ids  # vendors' processing is their own record
    assert all(r.derived for r in ropa.records)
    ie = record(ropa, "acme-ie-controller")
    assert "Ticket handling" in ie["30(1)(b) purposes"]  # the flows' own purposes
    assert "30(1)(c) categories of data subjects" in gaps_of(ropa, "acme-ie-controller")


@pytest.mark.parametrize(("change", "key"), [
    ({"systems": ["nope"]}, "processing[0](id=customer-support).systems[0]"),
    ({"data_categories": ["contcat_details"]}, "processing[0](id=customer-support)"
                                               ".data_categories"),
    ({"controller": {"party": "ghost"}}, "processing[0](id=customer-support).controller.party"),
    ({"retention": 3}, "processing"),
])
def test_bad_activity_is_an_input_error(pack: PolicyPack, change: dict[str, Any],
                                        key: str) -> None:
    doc = processing_doc()
    doc["processing"][0].update(change)
    with pytest.raises(InputError) as err:
        run_of(doc, pack)
    assert key in str(err.value)


def test_bad_transparency_is_an_input_error(pack: PolicyPack) -> None:
    doc = processing_doc()
    doc["transparency"]["safeguards"][0]["instrument"] = "2021/9144"
    with pytest.raises(InputError, match=r"transparency\.safeguards\[0\]\.instrument"):
        run_of(doc, pack)
    doc = processing_doc()
    doc["processing"].append(dict(doc["processing"][0]))
    with pytest.raises(InputError, match="duplicate processing activity id"):
        run_of(doc, pack)


def test_csv_xlsx_markdown_html(pack: PolicyPack, tmp_path: Path) -> None:
    doc = processing_doc()
    doc["processing"][1]["name"] = "UK <script>alert(1)</script>"
    ropa = ropa_of(doc, pack)
    n_transfers = len({(t.flow, t.regime, c) for r in ropa.records for t in r.transfers
                       for c, _ in t.bases})
    n_gaps = len(list(ropa.gaps))
    text = io.StringIO()
    write_ropa(ropa, "csv", text)
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert sum(r[4].startswith("GAP: ") for r in rows[1:]) == n_gaps
    assert sum(r[4] == "transfer" for r in rows[1:]) == n_transfers
    path = tmp_path / "ropa.xlsx"
    with path.open("wb") as fh:
        write_ropa(ropa, "xlsx", fh)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Record", "Transfers", "Gaps"]
    assert len(list(book["Transfers"].iter_rows())) == n_transfers + 1
    assert len(list(book["Gaps"].iter_rows())) == n_gaps + 1
    md = io.StringIO()
    write_ropa(ropa, "markdown", md)
    assert md.getvalue().startswith("# Art. 30 record of processing activities\n")
    assert md.getvalue().count("✎ TO BE COMPLETED BY COUNSEL") == n_gaps
    html = io.StringIO()
    write_ropa(ropa, "html", html)
    assert "<script>" not in html.getvalue() and "&lt;script&gt;" in html.getvalue()


def test_cli(tmp_path: Path) -> None:
    path = write_map(processing_doc(), tmp_path / "residency.yaml")
    base = ["report", "ropa", "--map", str(path), "--as-of", AS_OF.isoformat()]
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "--format", "xlsx"])
    assert result.exit_code == 2 and "--output" in result.output
    out = tmp_path / "art30.xlsx"
    result = runner.invoke(cli, [*base, "--format", "xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "gaps in the record" in result.output  # the warning on stderr
    assert openpyxl.load_workbook(out).sheetnames == ["Record", "Transfers", "Gaps"]
    mine = tmp_path / "notes.md"
    mine.write_text("my own notes\n")
    result = runner.invoke(cli, [*base, "-o", str(mine)])
    assert result.exit_code == 2 and mine.read_text() == "my own notes\n"
    result = runner.invoke(cli, ["report", "ropa", "--map", str(ROOT / MAP),
                                 "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    assert "systems held as controller" in result.output
