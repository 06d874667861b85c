"""Every basis kind the engine can give has the words every report uses, and every report
renders a map where each kind occurs. A kind added to the model without words failed
`report html` with a KeyError on the UK processor-return kind (`not_restricted`) at 100,000
flows; this makes that class of failure a test failure instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from residency.cli.main import cli
from residency.model import BasisKind
from residency.reports._common import BASIS_WORDS

# A UK processor returning data to its US controller (not a restricted transfer, ICO
# guidance of January 2026), an adequacy-based flow, an SCC flow, a derogation, a flow with
# no basis, and a same-entity branch: every `BasisKind`.
MAP = {
    "version": 1,
    "parties": [
        {"id": "usco", "name": "US Co Inc.", "country": "US"},
        {"id": "ukproc", "name": "UK Processing Ltd", "country": "GB"},
        {"id": "ie", "name": "Acme Ltd", "country": "IE"},
        {"id": "vendor", "name": "Vendor Pvt Ltd", "country": "IN"},
    ],
    "systems": [
        {"id": "crm", "party": "usco", "role": "controller", "location": {"country": "US"},
         "data_categories": ["contact_details"]},
        {"id": "uk-desk", "party": "ukproc", "role": "processor",
         "location": {"country": "GB"}},
        {"id": "portal", "party": "ie", "role": "controller", "location": {"country": "IE"},
         "data_categories": ["contact_details"]},
        {"id": "ie-us", "party": "ie", "role": "controller", "location": {"country": "US"}},
        {"id": "desk-in", "party": "vendor", "role": "processor",
         "location": {"country": "IN"}},
    ],
    "flows": [
        {"id": "us-to-uk", "from": "crm", "to": "uk-desk", "data_categories": ["contact_details"]},
        {"id": "uk-back-to-us", "from": "uk-desk", "to": "crm",
         "data_categories": ["contact_details"]},
        {"id": "ie-to-uk", "from": "portal", "to": "uk-desk"},
        {"id": "ie-to-branch", "from": "portal", "to": "ie-us"},
        {"id": "ie-to-in", "from": "portal", "to": "desk-in",
         "safeguards": [{"type": "scc", "instrument": "2021/914", "module": 2,
                         "signed": "2024-01-10"}]},
        {"id": "ie-to-in-hold", "from": "portal", "to": "desk-in", "recurring": False,
         "safeguards": [{"type": "derogation", "article": "49(1)(e)"}]},
        {"id": "uk-to-in", "from": "uk-desk", "to": "desk-in"},
    ],
}
COMMANDS = [
    ["report", "html"], ["report", "register"], ["report", "register", "--format", "xlsx"],
    ["report", "register", "--format", "markdown"], ["report", "ropa"],
    ["report", "ropa", "--format", "html"], ["report", "dpv"], ["report", "tia", "--all"],
    ["graph", "--format", "svg"], ["graph", "--format", "json"], ["check", "--format", "json"],
]


def test_every_basis_kind_has_words() -> None:
    assert set(BASIS_WORDS) == set(BasisKind)
    assert all(w.title and w.mechanism for w in BASIS_WORDS.values())


@pytest.fixture(scope="module")
def map_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kinds") / "residency.yaml"
    path.write_text(yaml.safe_dump(MAP, sort_keys=False))
    return path


def test_the_map_gives_every_kind(map_file: Path) -> None:
    import datetime as dt

    from residency.datamap import load_map
    from residency.policy.engine import Engine, EngineOptions
    from residency.policy.pack import PolicyPack
    pack = PolicyPack.load(None)
    report = Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(load_map(map_file, pack))
    kinds = {b.kind for t in report.transfers for _, b in t.bases}
    kinds |= {BasisKind.SAME_ENTITY for t in report.transfers if t.same_entity}
    assert kinds >= {BasisKind.NOT_RESTRICTED, BasisKind.ADEQUACY, BasisKind.SAFEGUARD,
                     BasisKind.DEROGATION, BasisKind.NONE}


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: "-".join(a[1:] if a[0] == "report"
                                                                    else a))
def test_every_report_renders_every_kind(map_file: Path, tmp_path: Path,
                                         argv: list[str]) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [*argv, "--map", str(map_file), "--as-of", "2026-11-30",
                                      "--output", str(out)])
    assert result.exit_code in (0, 1), result.output  # 1: findings; never 3 (internal)
    assert out.exists()
