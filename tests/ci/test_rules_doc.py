"""docs/rules.md is generated from the rule catalogue, and every SARIF `helpUri` lands on a
real heading of it (GitHub's anchor for a heading, as its Markdown renderer makes them)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from residency.cli.policies import rules_document
from residency.formats.sarif import RULES_DOC, _rules
from residency.policy.rules import RULES

from .conftest import ROOT

DOC = ROOT / "docs" / "rules.md"


def github_anchors(markdown: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", markdown, re.M):
        text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading)
        out.add(re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-"))
    return out


def test_rules_doc_is_generated_from_the_rules() -> None:
    assert DOC.read_text() == rules_document(), \
        "run `residency rules --format docs > docs/rules.md`"


def test_every_help_uri_is_an_anchor_of_the_doc() -> None:
    anchors = github_anchors(DOC.read_text())
    rules = _rules()
    assert [r["id"] for r in rules] == list(RULES)
    for rule in rules:
        parts = urlsplit(rule["helpUri"])
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == RULES_DOC
        assert parts.fragment in anchors, rule["helpUri"]
    assert RULES_DOC.endswith("/blob/main/docs/rules.md")


def test_doc_table_links_resolve() -> None:
    text = DOC.read_text()
    anchors = github_anchors(text)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(links) == len(RULES) and set(links) <= anchors
