"""`residency policies validate` lists every fact marked `verified: false`, at any depth of
the pack, so a new kind of fact (a regime's processor-return rule, an EEA incorporation
record) is never silently left out of the list a maintainer works through."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from residency.cli.main import cli
from residency.policy.pack import default_policies_dir


def _note(policies: Path) -> str:
    result = CliRunner().invoke(cli, ["policies", "validate", "--policies", str(policies)])
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.startswith("note:"))


def test_nested_unverified_facts_are_listed_and_verifying_one_removes_it(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(default_policies_dir(), pack)
    before = _note(pack)
    assert "regime uk_gdpr (processor_return)" in before  # nested in a regime
    assert "eu-br-2026-179 (eea_incorporation)" in before  # nested in a decision
    regimes = pack / "regimes.yaml"
    text = regimes.read_text()
    at = text.index("processor_return:")
    cut = text.index("verified: false", at)
    regimes.write_text(text[:cut] + "verified: true" + text[cut + len("verified: false"):])
    after = _note(pack)
    assert "regime uk_gdpr (processor_return)" not in after
    count = lambda note: int(note.split()[1])  # noqa: E731 - "note: N entries ..."
    assert count(after) == count(before) - 1
