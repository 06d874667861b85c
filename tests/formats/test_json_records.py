"""The streamed JSON writer's record encoders (which splice parts shared by many records)
against the plain encoding of `finding_to_dict` / `transfer_to_dict`, on random records
whose strings need escaping (quotes, backslashes, control characters, non-ASCII)."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from residency.formats.jsonfmt import (
    _compact_encoder,
    _finding_lines,
    _transfer_lines,
    finding_to_dict,
    transfer_to_dict,
)
from residency.model import Basis, BasisKind, Finding, Severity, SubjectKind, Transfer

TEXT = st.text(alphabet=st.sampled_from('ab"\\\n\t\x00é→ '), max_size=6)
MAYBE = st.none() | TEXT
COUNTRIES = st.lists(st.sampled_from(["US", "IN", "*", 'X"Y']), max_size=3).map(tuple)

findings = st.builds(
    Finding, rule=st.sampled_from(["RES-T001", "RES-T002", 'R"3']),
    severity=st.sampled_from(list(Severity)), message=TEXT, subject=TEXT,
    subject_kind=st.sampled_from([k.value for k in SubjectKind]), regime=MAYBE,
    countries=COUNTRIES, instrument=MAYBE, hint=MAYBE, waived=st.booleans(),
    waiver_reason=MAYBE)

bases = st.lists(st.tuples(st.sampled_from(["US", "IN"]), st.builds(
    Basis, kind=st.sampled_from(list(BasisKind)), reference=MAYBE, source=MAYBE)),
    max_size=2).map(tuple)
transfers = st.builds(
    Transfer, flow=TEXT, regime=TEXT, exporter=TEXT, importer=TEXT, exporter_party=TEXT,
    importer_party=TEXT, countries=COUNTRIES, bases=bases,
    data_categories=st.lists(TEXT, max_size=2).map(tuple), onward=st.booleans(),
    recurring=st.booleans(), same_entity=st.booleans())


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(findings, max_size=12), st.data())
def test_finding_records_are_the_plain_encoding(items: list[Finding], data: st.DataObject) -> None:
    items += data.draw(st.lists(st.sampled_from(items), max_size=6)) if items else []
    expected = [orjson.dumps(finding_to_dict(f)) for f in items]
    assert list(_finding_lines(items)) == expected
    for line, f in zip(expected, items, strict=True):
        assert json.loads(line) == json.loads(json.dumps(finding_to_dict(f)))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(transfers, max_size=12), st.data())
def test_transfer_records_are_the_plain_encoding(items: list[Transfer],
                                                 data: st.DataObject) -> None:
    items += data.draw(st.lists(st.sampled_from(items), max_size=6)) if items else []
    expected = [orjson.dumps(transfer_to_dict(t)) for t in items]
    assert list(_transfer_lines(items, _compact_encoder())) == expected
