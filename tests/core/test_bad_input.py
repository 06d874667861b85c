"""Bad maps and packs: one line naming file and key, exit 2, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
GOOD = """version: 1
data_categories: [x]
parties:
  - {id: acme, name: Acme, country: IE}
  - {id: v, name: V, country: US}
systems:
  - {id: a, party: acme, role: controller, location: {country: IE}, data_categories: [x]}
  - {id: b, party: v, role: processor, location: {provider: aws, region: us-east-1}}
flows:
  - {id: f, from: a, to: b, safeguards: [{type: scc, instrument: "2021/914", module: 2, signed: 2025-01-01}]}
"""

CASES = [
    ("syntax", GOOD.replace("parties:", "parties: [", 1), "invalid YAML"),
    ("unknown key", GOOD.replace("role: controller", "role: controller, colour: red"),
     "systems[0](id=a).colour: unknown key"),
    ("unknown party", GOOD.replace("party: v,", "party: w,"), "systems[1](id=b).party: unknown party"),
    ("unknown country", GOOD.replace("country: US", "country: XX"),
     "parties[1](id=v).country: unknown country code 'XX'"),
    ("missing system", GOOD.replace("to: b", "to: c"), "flows[0](id=f).to: unknown system 'c'"),
    ("bad date", GOOD.replace("2025-01-01", "2025-13-45"), "flows[0](id=f).safeguards[0].signed"),
    ("bad role", GOOD.replace("role: processor", "role: owner"), "systems[1](id=b).role"),
    ("duplicate", GOOD.replace("id: b,", "id: a,").replace("to: b", "to: a"),
     "systems[1](id=a): duplicate system id"),
    ("wrong version", GOOD.replace("version: 1", "version: 7"), "version"),
    ("not a mapping", "- just\n- a list\n", "must be a mapping"),
    ("python tag", "!!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ("location both forms", GOOD.replace("{country: IE}", "{country: IE, provider: aws, region: x}"),
     "systems[0](id=a).location"),
    ("bad residency group", GOOD + "residency:\n  - {data_categories: [x], allowed: [EUROPA]}\n",
     "residency[0].allowed: unknown country or group 'EUROPA'"),
    ("misspelt HR category", GOOD + "hr_data_categories: [employe_records]\n",
     "hr_data_categories: unknown data category 'employe_records'; did you mean "
     "'employee_records'?"),
    # one vocabulary: every name is declared in the map or known to the pack
    ("misspelt rule category", GOOD + "residency:\n  - {data_categories: [contcat_details], "
     "allowed: [EEA]}\n", "residency[0].data_categories: unknown data category "
     "'contcat_details'; did you mean 'contact_details'?"),
    ("misspelt flow category", GOOD.replace("to: b,", "to: b, data_categories: [tiket_content],"),
     "flows[0](id=f).data_categories: unknown data category 'tiket_content'"),
    ("misspelt classification category", GOOD + "classification:\n  values:\n    pii: "
     "{data_categories: [atachments]}\n", "classification.values.pii.data_categories: unknown "
     "data category 'atachments'; did you mean 'attachments'?"),
    ("declared near-duplicate", GOOD.replace("data_categories: [x]", "data_categories: [x, "
     "contact_detail]"), "did you mean 'contact_details'"),
    ("unknown certification", GOOD.replace("country: US}", "country: US, certifications: "
     "[eu_us_dfp]}"), "parties[1](id=v).certifications: unknown qualification 'eu_us_dfp'; "
     "did you mean 'eu_us_dpf'?"),
    ("unknown subject_to", GOOD.replace("country: US}", "country: US, subject_to: [pipedaa]}"),
     "parties[1](id=v).subject_to: unknown qualification 'pipedaa'"),
    # input errors do not depend on whether the flow is a transfer (IE -> IE here)
    ("unknown safeguard type", GOOD.replace("region: us-east-1", "region: eu-west-1").replace(
     "{type: scc,", "{type: pinky_promise,"), "flows[0](id=f).safeguards[0].type: unknown "
     "safeguard type 'pinky_promise'"),
    ("unknown instrument", GOOD.replace("region: us-east-1", "region: eu-west-1").replace(
     '"2021/914"', '"2021/941"'), "flows[0](id=f).safeguards[0].instrument: unknown "
     "instrument '2021/941'; did you mean"),
    ("classification safeguard type", GOOD + "classification:\n  values:\n    pii: "
     "{safeguards: [{type: sccs}]}\n", "classification.values.pii.safeguards[0].type: "
     "unknown safeguard type 'sccs'; did you mean 'scc'?"),
    # bounded readers
    ("duplicate key", GOOD + "flows: []\n", "duplicate key 'flows'"),
    ("duplicate nested key", GOOD.replace("role: controller,", "role: controller, role: "
     "processor,"), "duplicate key 'role'"),
    ("huge integer", GOOD.replace("version: 1", "version: " + "9" * 5000), "integer of 5000 "
     "digits"),
    ("bad bool tag", GOOD.replace("version: 1", "version: !!bool maybe"), "invalid YAML value"),
    ("lone surrogate", GOOD.replace("name: Acme", 'name: "\\ud83d"'), "invalid Unicode"),
    ("date out of range", GOOD.replace("2025-01-01", "9999-12-31"), "flows[0](id=f)."
     "safeguards[0].signed"),
    ("control character", GOOD.replace("name: Acme", "name: Ac\x01me"), "invalid YAML"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_map(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / "residency.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["check", "--map", str(path)])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(path) in err
    assert expected in err


def test_missing_map_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--map", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: file not found" in result.stderr


def test_json_map_and_bad_json(tmp_path: Path) -> None:
    import json

    import yaml

    good = tmp_path / "m.json"
    good.write_text(json.dumps(yaml.safe_load(GOOD), default=str))
    result = CliRunner().invoke(cli, ["check", "--map", str(good), "--as-of", "2026-11-30"])
    assert result.exit_code == 0, result.output  # SCC + DPF-less US importer: warning only
    bad = tmp_path / "b.json"
    bad.write_text('{"version": 1,')
    result = CliRunner().invoke(cli, ["check", "--map", str(bad)])
    assert result.exit_code == 2 and "invalid JSON" in result.stderr


JSON_CASES = [
    ("duplicate key", '{"version": 1, "flows": [], "flows": []}', "duplicate key 'flows'"),
    ("lone surrogate", '{"version": 1, "parties": [{"id": "\\ud83d", "name": "x", '
     '"country": "IE"}]}', "lone surrogate escape \\ud83d"),
    # upper-case hex, after an ordinary escape (`\u003c`, as Terraform writes `<`) that the
    # fast pre-check passes over
    ("lone surrogate upper case", '{"version": 1, "x": "\\u003c", "parties": [{"id": '
     '"\\uDC00", "name": "x", "country": "IE"}]}', "lone surrogate escape \\uDC00"),
    ("deep nesting", '{"version": 1, "x": ' + "[" * 1500 + "]" * 1500 + "}",
     "nested more than 200 levels deep"),
    ("huge integer", '{"version": ' + "1" * 5000 + "}", "integer of 5000 digits"),
    ("NaN", '{"version": NaN}', "NaN is not a JSON number"),
    ("not UTF-8", b'{"version": 1, "x": "\xff"}', "not UTF-8 text"),
]


@pytest.mark.parametrize(("name", "text", "expected"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_bad_json_map(tmp_path: Path, name: str, text: str | bytes, expected: str) -> None:
    path = tmp_path / "m.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = CliRunner().invoke(cli, ["check", "--map", str(path)])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and str(path) in err
    assert expected in err, err


PACK_CASES = [
    ("adequacy.yaml", "scope: dpf_certified\n", "scope: dpf_certifed\n", "unknown scope"),
    ("adequacy.yaml", "source: \"https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32023D1795\"",
     "source: \"eur-lex\"", ".source"),
    ("regimes.yaml", "tia_review_days: 365", "tia_review_days: -1", "tia_review_days"),
    ("pack.yaml", "last_checked:", "last_checkd:", "last_checked: required key is missing"),
    ("instruments.yaml", "type: scc", "type: sccc", "instruments[0](id=2021/914).type"),
    # consistency across fields
    ("adequacy.yaml", "status: invalidated", "status: in_force",
     "status is in_force: set status"),
    ("regions/aws.yaml", "countries: [IE]", "countries: []", "countries"),
    ("adequacy.yaml", "adopted: 2023-07-10", "adopted: 2033-07-10", "is before adopted"),
    ("catalogue/aws.yaml", "  aws_sqs_queue: {keys: [kms_master_key_id]}",
     "  aws_sqs_queue: {location: [{attr: region, provider: region}]}", "exactly one of"),
    ("catalogue/gcp.yaml", "location: [{attr: location_id}]", "location: [{attr: 'a..b'}]",
     "empty segment"),
    ("catalogue/azure.yaml", "  azurerm_redis_cache: {}", "  redis_cache: {}",
     "does not start with one of"),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), PACK_CASES)
def test_bad_pack(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "policies", pack)
    text = (pack / file).read_text()
    assert old in text, f"fixture drifted: {old!r} not in {file}"
    (pack / file).write_text(text.replace(old, new, 1))
    result = CliRunner().invoke(cli, ["policies", "validate", "--policies", str(pack)])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "\n" not in err and str(pack / file) in err and expected in err, err


def test_bad_region_table(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "policies", pack)
    path = pack / "regions" / "aws.yaml"
    path.write_text(path.read_text() + "\n# broken\nlocations: {\n")
    result = CliRunner().invoke(cli, ["policies", "validate", "--policies", str(pack)])
    assert result.exit_code == 2 and "aws.yaml" in result.stderr


def test_policy_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESIDENCY_POLICIES", str(tmp_path / "missing"))
    result = CliRunner().invoke(cli, ["policies", "validate"])
    assert result.exit_code == 2 and "policy pack directory not found" in result.stderr


def test_fast_path_and_schema_agree(pack: object) -> None:
    """Plain JSON-typed flows skip pydantic; the result must equal the schema's."""
    import json

    import yaml

    from residency.datamap import loader, parse_map

    doc = yaml.safe_load((ROOT / "examples" / "servicedesk" / "residency.yaml").read_text())
    as_json = json.loads(json.dumps(doc, default=str))  # dates become strings: fast path
    assert all(loader._fast_flow(f) is not None for f in as_json["flows"])
    fast = parse_map(as_json, pack, Path("m.json"))  # type: ignore[arg-type]
    slow = parse_map(doc, pack, Path("m.yaml"))  # YAML dates are objects: schema path
    assert any(loader._fast_flow(f) is None for f in doc["flows"])
    assert fast.flows == slow.flows


@pytest.mark.parametrize("bad", [
    {"id": "f", "from": "a", "to": "b", "recurring": "yes"},
    {"id": "f", "from": "a", "to": "b", "safeguards": [{"type": "scc", "signed": "2025-1-1"}]},
    {"id": "f", "from": "a", "to": "b", "safeguards": [{"type": "scc", "module": "2"}]},
    {"id": "f", "from": "a", "to": "b", "colour": "red"},
    {"id": 7, "from": "a", "to": "b"},
])
def test_fast_path_declines_what_it_does_not_know(bad: dict[str, object]) -> None:
    from residency.datamap import loader

    assert loader._fast_flow(bad) is None
