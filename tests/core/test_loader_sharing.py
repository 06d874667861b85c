"""The loader shares what repeats: a flow's ends are its systems' own id strings, equal
dates are one date object, and the map is read once (its digest is of the bytes parsed).
Sharing must never change what is accepted or what a flow holds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residency.datamap import load_map, loader, parse_map
from residency.errors import InputError
from residency.policy.pack import PolicyPack


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return PolicyPack.load()


def _doc(signed: str = "2023-04-01") -> dict[str, Any]:
    return {
        "version": 1,
        "parties": [{"id": "us", "name": "Us", "country": "DE"},
                    {"id": "them", "name": "Them", "country": "US"}],
        "systems": [
            {"id": "desk", "party": "us", "role": "controller",
             "location": {"country": "DE"}, "data_categories": ["contact_details"]},
            {"id": "crm", "party": "them", "role": "processor",
             "location": {"country": "US"}},
        ],
        "flows": [
            {"id": f"f{i}", "from": "".join(["de", "sk"]), "to": "".join(["c", "rm"]),
             "safeguards": [{"type": "scc", "module": 2, "signed": signed}]}
            for i in range(3)
        ],
    }


def test_flow_ends_are_the_systems_own_id_strings(pack: PolicyPack, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_doc()))
    for datamap in (parse_map(_doc(), pack, Path("m.json")), load_map(path, pack)):
        ids = {s.id: s.id for s in datamap.systems}
        for flow in datamap.flows:
            assert flow.source == "desk" and flow.target == "crm"
            assert flow.source is ids["desk"] and flow.target is ids["crm"]


def test_equal_dates_are_one_object(pack: PolicyPack) -> None:
    flows = parse_map(_doc(), pack, Path("m.json")).flows
    signed = [sg.signed for f in flows for sg in f.safeguards]
    assert signed == [dt.date(2023, 4, 1)] * 3
    assert all(day is signed[0] for day in signed)


@pytest.mark.parametrize("bad", ["2023-02-30", "1899-12-31", "2200-01-01", "2023-4-01",
                                 "20230401", " 2023-04-01"])
def test_a_bad_date_fails_after_good_ones_were_read(pack: PolicyPack, bad: str) -> None:
    parse_map(_doc(), pack, Path("m.json"))  # the good date is remembered now
    with pytest.raises(InputError) as err:
        parse_map(_doc(signed=bad), pack, Path("m.json"))
    assert "signed" in str(err.value)


def _reference_iso_date(value: object) -> Any:
    """The parser as it was before dates were shared: the semantics to keep."""
    if value is None:
        return None
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return loader._NOT_A_DATE
        return day if loader.MIN_DATE <= day <= loader.MAX_DATE else loader._NOT_A_DATE
    return loader._NOT_A_DATE


_DATEISH = st.one_of(
    st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2300, 12, 31)).map(str),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.text(alphabet="0123456789-W ", max_size=11),
    st.none(), st.integers(),
)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(values=st.lists(_DATEISH, min_size=1, max_size=6))
def test_shared_dates_parse_as_before(values: list[object]) -> None:
    for _ in range(2):  # the second pass answers from what the first one remembered
        for value in values:
            assert loader._iso_date(value) == _reference_iso_date(value)


def test_the_map_is_read_once(pack: PolicyPack, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_doc()))
    reads: list[bytes] = []
    real = Path.read_bytes

    def counted(self: Path) -> bytes:
        data = real(self)
        if self == path:
            reads.append(data)
        return data

    monkeypatch.setattr(Path, "read_bytes", counted)
    datamap = load_map(path, pack)
    assert len(reads) == 1
    assert datamap.digest == hashlib.sha256(reads[0]).hexdigest()[:16]
