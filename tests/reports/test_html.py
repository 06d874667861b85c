"""The HTML report: self-contained, tables a reader scans, print CSS, streamed and capped.

How it looks at 1,400 px (label sizes, overlaps, column widths) is measured in Chromium by
test_readability.py; here the content and a phone-width render.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from residency.model import Basis
from residency.reports import html as html_mod
from residency.reports._common import basis_label, country_groups, summarise_countries
from residency.reports.html import render_html, write_html
from residency.reports.tia import TiaDocument, build_tia, plan_tia

from .browser import chromium
from .support import Run


def test_html_is_self_contained(run: Run) -> None:
    drafts = build_tia(run.report, run.pack, run.graph)
    html = render_html(run.report, run.parties, drafts, pack=run.pack)
    assert "<svg" in html and "@media print" in html and "@media (max-width" in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert 'src="http' not in html
    assert drafts and html.count('class="tia"') == len(drafts)
    assert 'class="estate-view"' in html and 'class="flow-diagram"' in html


def test_print_css_paginates(run: Run) -> None:
    html = render_html(run.report, run.parties, [], pack=run.pack)
    css = html[html.index("@media print"):html.index("</style>")]
    assert "thead { display: table-header-group; }" in css
    assert "break-inside: avoid" in css and "break-before: page" in css


def test_names_first_ids_below(run: Run) -> None:
    html = render_html(run.report, run.parties, [], pack=run.pack)
    body = html[html.index('<h2 id="transfers">'):]
    name = next(s.name for s in run.report.systems if s.id == "helpdesk")
    assert name and '<span class="name">' in body
    row = body[body.index('<span class="id">helpdesk-to-l2</span>') - 400:]
    assert row.index(name) < row.index('<span class="id">helpdesk-to-l2</span>')


def test_no_word_twice_in_a_basis() -> None:
    assert basis_label(Basis("derogation", "derogation Art. 49(1)(e)")) == \
        "derogation Art. 49(1)(e)"
    assert basis_label(Basis("adequacy", "eu-gb-2021-1772")) == "adequacy eu-gb-2021-1772"
    assert basis_label(Basis("safeguard", "scc 2021/914 module 3")) == \
        "safeguard scc 2021/914 module 3"
    assert basis_label(Basis("none")) == "no basis"


def test_rendered_bases_never_repeat_a_word(run: Run) -> None:
    html = render_html(run.report, run.parties, [], pack=run.pack)
    text = re.sub(r"<[^>]+>", " ", html[html.index('<h2 id="transfers">'):
                                        html.index('<h2 id="tias">')])
    doubled = re.findall(r"\b(\w{3,}) \1\b", text)
    assert not doubled, doubled
    assert "derogation Art. 49(1)(e)" in text  # the legal-hold row, said once


def test_country_sets_are_summarised_and_expandable(run: Run) -> None:
    groups = country_groups(run.pack)
    eu = sorted(c for c in groups["EU"] if len(c) == 2)[:27]
    assert summarise_countries(eu, groups).startswith("EU (")
    assert summarise_countries(["DE", "US"], groups) == "DE, US"
    assert summarise_countries([*groups["EEA"], "US"], groups) == f"EEA ({len(groups['EEA'])}) + US"
    many = [replace(t, countries=tuple(sorted(groups["EU"])),
                    bases=tuple((c, Basis("adequacy", "uk-eea-sch21")) for c in groups["EU"]))
            for t in run.report.transfers[:1]]
    report = replace(run.report, transfers=tuple(many))
    html = render_html(report, run.parties, [], pack=run.pack)
    body = html[html.index('<h2 id="transfers">'):]
    assert f"<details><summary>EU ({len(groups['EU'])})</summary>" in body
    assert body.count("uk-eea-sch21") == 1  # one basis line for all of them, not 34


def test_large_tables_show_the_worst_rows_and_say_where_the_rest_is(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html_mod, "TABLE_ROWS", 3)
    html = render_html(run.report, run.parties, [], pack=run.pack)
    total = len(run.report.transfers)
    assert f"Showing the 3 worst of {total} transfers" in html
    body = html[html.index('<h2 id="transfers">'):html.index('<h2 id="tias">')]
    assert body.count("<tr><td") == 3 and 'class="nowrap v-error"' in body


def test_streamed_file_equals_the_rendered_page(run: Run, tmp_path: Path) -> None:
    plan = plan_tia(run.report, run.pack, run.graph)
    page = tmp_path / "report.html"
    write_html(page, run.report, run.parties, plan.documents(), pack=run.pack,
               tia_total=len(plan.groups))
    drafts = build_tia(run.report, run.pack, run.graph)
    assert page.read_text(encoding="utf-8") == render_html(run.report, run.parties, drafts,
                                                            pack=run.pack)


def test_drafts_past_the_cap_are_counted_not_built(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html_mod, "TIA_DRAFTS", 1)
    plan = plan_tia(run.report, run.pack, run.graph)
    built = []

    def docs() -> Iterator[TiaDocument]:
        for d in plan.documents():
            built.append(d)
            yield d

    html = render_html(run.report, run.parties, docs(), pack=run.pack,
                       tia_total=len(plan.groups))
    assert len(plan.groups) > 1 and len(built) == 1
    assert html.count('class="tia"') == 1
    assert f"writes all {len(plan.groups)}" in html


@pytest.mark.browser
def test_html_in_headless_chromium(run: Run, tmp_path: Path) -> None:
    exe = chromium()
    page = tmp_path / "report.html"
    page.write_text(render_html(run.report, run.parties,
                                build_tia(run.report, run.pack, run.graph)), encoding="utf-8")
    shot = tmp_path / "shot.png"
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=390,1200"]
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=60)
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert "<svg" in dom and 'class="flow-diagram"' in dom
    assert dom.count("<table") >= 3
    assert "helpdesk-to-l2" in dom and "TO BE COMPLETED BY COUNSEL" in dom
