"""README stays true: the rule table is generated, the quick start commands run."""

from __future__ import annotations

import re
from pathlib import Path

from residency.cli.policies import rules_markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_rule_reference_is_generated_from_the_rules() -> None:
    block = re.search(r"<!-- rules:begin -->\n(.*?)<!-- rules:end -->", README, re.S)
    assert block, "README lost its rule reference markers"
    assert block.group(1) == rules_markdown(), "run `residency rules --format markdown`"


def test_quick_start_has_exactly_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    assert len(blocks) == 2 and all(b.count("\n") == 1 for b in blocks), blocks


def test_every_linked_file_exists() -> None:
    for target in re.findall(r"\]\(((?!https?://)[^)#]+)\)", README):
        assert (ROOT / target).exists(), target
