"""TIA drafts in a directory: counsel's edits are kept, every flow keeps its own file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency._output import begin_run
from residency.cli.main import cli
from residency.reports import ReportError
from residency.reports._common import MANIFEST, write_directory
from residency.reports.tia import DRAFTS_MANIFEST, build_tia, render_markdown, write_drafts

from .support import ROOT, Run

MAP = str(ROOT / "examples/servicedesk/residency.yaml")
BASE = ["--map", MAP, "--as-of", "2026-11-30"]


def tia(out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["report", "tia", *BASE, "--output", str(out), *extra],
                                catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.fixture(autouse=True)
def _fresh_run() -> None:
    begin_run()


def test_edited_draft_is_kept_and_the_new_one_written_beside(tmp_path: Path) -> None:
    out = tmp_path / "tias"
    assert tia(out)[0] == 0
    draft = out / "TIA-helpdesk-to-email.md"
    fresh = draft.read_text()
    edited = fresh.replace("✎ TO BE COMPLETED BY COUNSEL", "Reviewed by counsel: OK", 1)
    assert edited != fresh
    draft.write_text(edited)
    untouched = out / "TIA-helpdesk-to-analytics.md"
    untouched.write_text("stale")  # content residency never wrote...
    manifest = json.loads((out / DRAFTS_MANIFEST).read_text())
    manifest["files"][untouched.name] = "0" * 64  # ...and a record that does not match it
    (out / DRAFTS_MANIFEST).write_text(json.dumps(manifest))

    code, err = tia(out)
    assert code == 0
    assert draft.read_text() == edited
    assert (out / "TIA-helpdesk-to-email.new.md").read_text() == fresh
    assert f"warning: {draft}: changed since residency wrote it" in err
    assert str(out / "TIA-helpdesk-to-email.new.md") in err
    assert untouched.read_text() == "stale"  # kept too: it is not what residency wrote

    code, err = tia(out)  # again: the .new draft is residency's, refreshed in place
    assert code == 0 and draft.read_text() == edited
    assert not (out / "TIA-helpdesk-to-email.new-2.md").exists()
    assert err.count("warning:") == 2

    (out / "TIA-helpdesk-to-email.new.md").write_text("counsel edited the new one too")
    assert tia(out)[0] == 0
    assert (out / "TIA-helpdesk-to-email.new-2.md").read_text() == fresh


def test_unchanged_drafts_are_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "tias"
    assert tia(out)[0] == 0
    draft = out / "TIA-helpdesk-to-email.md"
    draft.write_text(draft.read_text())  # same content: still residency's
    code, err = tia(out, "--as-of", "2026-12-01")
    assert code == 0 and "warning" not in err
    assert "2026-12-01" in draft.read_text()
    assert not list(out.glob("*.new.md"))


def test_foreign_files_need_force_and_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "tias"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "TIA-helpdesk-to-email.md").write_text("counsel's own draft")
    code, err = tia(out)
    assert code == 2 and "did not write" in err and "--force" in err
    code, err = tia(out, "--force")
    assert code == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "TIA-helpdesk-to-email.md").read_text() == "counsel's own draft"
    assert (out / "TIA-helpdesk-to-email.new.md").is_file() and "warning" in err
    assert tia(out)[0] == 2  # --force was for that run only


def test_stale_temp_files_do_not_count_as_foreign(tmp_path: Path) -> None:
    out = tmp_path / "tias"
    assert tia(out)[0] == 0
    (out / ".TIA-helpdesk-to-email.md.residency-999999999.abcdefgh.tmp").write_text("killed")
    assert tia(out)[0] == 0
    assert not list(out.glob("*.tmp"))


def test_colliding_slugs_both_kept(tmp_path: Path, run: Run) -> None:
    doc = build_tia(run.report, run.pack, run.graph, flows=["helpdesk-to-email"])[0]
    a = dataclasses.replace(doc, id="TIA-a/b", title="a/b")
    b = dataclasses.replace(doc, id="TIA-a-b", title="a-b")
    c = dataclasses.replace(doc, id="TIA-a:b", title="a:b")
    names = {d.filename for d in (a, b, c)}
    assert len(names) == 3 and "TIA-a-b.md" in names  # a safe id keeps its plain name
    result = write_drafts(tmp_path, {d.filename: render_markdown(d) for d in (a, b, c)})
    assert len(result.written) == 3 and not result.kept
    titles = {p.read_text().splitlines()[0].rsplit("— ", 1)[1] for p in tmp_path.glob("*.md")}
    assert titles == {"a/b", "a-b", "a:b"}


def test_long_ids_stay_unique_and_short(run: Run) -> None:
    doc = build_tia(run.report, run.pack, run.graph, flows=["helpdesk-to-email"])[0]
    long_a = dataclasses.replace(doc, id="TIA-" + "x" * 300 + "a")
    long_b = dataclasses.replace(doc, id="TIA-" + "x" * 300 + "b")
    assert long_a.filename != long_b.filename
    assert max(len(long_a.filename), len(long_b.filename)) <= 130


def test_case_only_collisions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="differ only in case"):
        write_drafts(tmp_path, {"TIA-A.md": "a", "TIA-a.md": "b"})
    assert not any(tmp_path.iterdir())


def test_directory_written_by_write_directory(tmp_path: Path) -> None:
    """The demo still writes drafts with `write_directory` (names only, no digests): those
    drafts may have been edited, so they are kept; the folder stays usable by the demo."""
    write_directory(tmp_path, {"TIA-x.md": "# Transfer impact assessment (draft) — x\n"})
    result = write_drafts(tmp_path, {"TIA-x.md": "new", "TIA-y.md": "y"})
    assert [k.draft.name for k in result.kept] == ["TIA-x.md"]
    assert (tmp_path / "TIA-x.new.md").read_text() == "new"
    names = set(json.loads((tmp_path / MANIFEST).read_text())["files"])
    assert {"TIA-x.md", "TIA-x.new.md", "TIA-y.md"} <= names
    write_directory(tmp_path, {"TIA-z.md": "z"})  # no "did not write" refusal
