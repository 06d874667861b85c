"""TIA drafts as files at scale: each HTML draft is its own small page (not the whole
report), new drafts go through the cheap no-replace path, and one summariser of country
sets serves the TIA drafts and the HTML report alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency._output import begin_run, write_new
from residency.cli.main import cli
from residency.policy.pack import PolicyPack
from residency.reports._common import (
    country_groups,
    country_parts,
    cover_countries,
    summarise_countries,
)
from residency.reports.tia import DRAFTS_MANIFEST, write_drafts

from .support import ROOT

MAP = str(ROOT / "examples/servicedesk/residency.yaml")


@pytest.fixture(autouse=True)
def _fresh_run() -> None:
    begin_run()


def test_html_drafts_are_each_their_own_page(tmp_path: Path) -> None:
    out = tmp_path / "tias"
    result = CliRunner().invoke(cli, ["report", "tia", "--map", MAP, "--as-of", "2026-11-30",
                                      "--format", "html", "--output", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    pages = sorted(out.glob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        text = page.read_text()
        assert text.startswith("<!DOCTYPE html>") and "<style>" in text
        assert text.count('<section class="tia"') == 1  # this draft only
        assert page.stem in text
        assert 'id="summary"' not in text and "flow-diagram" not in text  # not the report
        others = [p.stem for p in pages if p != page]
        assert not any(f'id="{o}"' in text for o in others)
    # re-running over them replaces them (they are recorded as residency's)
    again = CliRunner().invoke(cli, ["report", "tia", "--map", MAP, "--as-of", "2026-11-30",
                                     "--format", "html", "--output", str(out)],
                               catch_exceptions=False)
    assert again.exit_code == 0
    assert not list(out.glob("*.new.html"))


def test_write_new_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    assert write_new(path, b"first")
    assert path.read_bytes() == b"first"
    assert not write_new(path, b"second")
    assert path.read_bytes() == b"first"
    (tmp_path / "d.md").mkdir()
    assert not write_new(tmp_path / "d.md", b"x")
    link = tmp_path / "l.md"
    link.symlink_to(tmp_path / "elsewhere.md")  # dangling: still something there
    assert not write_new(link, b"x")
    assert not (tmp_path / "elsewhere.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "d.md", "l.md"]  # no temporary left


def test_new_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        assert write_new(tmp_path / "a.md", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.md").stat().st_mode & 0o777 == 0o640


def test_a_file_appearing_beside_new_drafts_is_kept(tmp_path: Path) -> None:
    """Names absent when the directory was listed take the fast path; one present (here
    a user's file of a draft's name, forced past the foreign check) is kept, the draft
    written beside it, and the manifest records exactly what is on disk."""
    (tmp_path / "TIA-b.md").write_text("counsel's own notes")
    begin_run(force=True)
    result = write_drafts(tmp_path, {"TIA-a.md": "a", "TIA-b.md": "b", "TIA-c.md": "c"})
    assert (tmp_path / "TIA-b.md").read_text() == "counsel's own notes"
    assert (tmp_path / "TIA-b.new.md").read_text() == "b"
    assert [k.new.name for k in result.kept] == ["TIA-b.new.md"]
    assert (tmp_path / "TIA-a.md").read_text() == "a"
    import json

    files = json.loads((tmp_path / DRAFTS_MANIFEST).read_text())["files"]
    assert sorted(files) == ["TIA-a.md", "TIA-b.new.md", "TIA-c.md"]


def test_one_summariser(pack: PolicyPack) -> None:
    groups = country_groups(pack)
    eu, eea = sorted(groups["EU"]), sorted(groups["EEA"])
    extra = sorted(set(eea) - set(eu))
    codes = [*eea, "US", "CH"]
    taken, rest = cover_countries(codes, groups, min_group=5)
    # the greedy core: the group covering most, then what is left
    assert [g for g, _ in taken] == ["EEA"]
    assert rest == sorted({"US", "CH"} - set(eea))
    # both renderings are that core
    assert [p.label for p in country_parts(codes, pack)] == [f"EEA ({len(eea)})", *rest]
    assert summarise_countries(codes, groups) == f"EEA ({len(eea)}) + {', '.join(rest)}"
    # on a tie the smaller group wins (EU before EEA), in both
    assert country_parts(eu, pack)[0].group == "EU"
    assert summarise_countries(eu, groups) == f"EU ({len(eu)})"
    # a set too small for a group stays codes
    assert summarise_countries(["DE", "FR"], groups) == "DE, FR"
    assert [p.label for p in country_parts(["DE", "FR"], pack)] == ["DE", "FR"]
    assert extra  # the pack's EEA is larger than its EU: the assertions above mean something
