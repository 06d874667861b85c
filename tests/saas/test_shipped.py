"""The pack ships dated copies of vendors' sub-processor lists: the newest copy is used when
the map names none, only for the tenants of the hosting region it covers, and a copy older
than the pack's limit marks every system it produced as stale."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from residency.collectors.interface import CollectContext
from residency.collectors.saas._tables import (
    read_shipped,
    shipped_max_age,
    shipped_subprocessors,
)
from residency.collectors.saas.collector import TAG_LIST_STALE, TAG_LIST_VERIFIED
from residency.demo.fake_saas import FakeSaas, intercom_me
from residency.errors import PolicyError
from residency.policy.pack import PolicyPack, default_policies_dir

from .conftest import Make

SHIPPED = "https://intercom.com/legal/subprocessors-list"


def _subs(inv: object) -> dict[str, object]:
    return {s.id: s for s in inv.systems if ":subprocessor:" in s.id}  # type: ignore[attr-defined]


def test_every_shipped_list_is_dated_sourced_and_valid(pack: PolicyPack) -> None:
    folder = pack.root / "saas" / "subprocessors"
    files = sorted(p for p in folder.glob("*.yaml") if p.name != "policy.yaml")
    assert files, "the pack ships at least one vendor's list"
    for path in files:
        found = read_shipped(pack, path)  # file-name date == retrieved, verified explicit
        assert found.source.startswith("https://") and found.subprocessors
        assert shipped_subprocessors(pack, found.vendor) is not None
    assert shipped_max_age(pack) == 180


def test_shipped_list_feeds_tenants_of_its_region_only(fake: FakeSaas, make: Make,
                                                      ctx: CollectContext) -> None:
    fake.intercom["us"] = ("US", intercom_me("us1", "US"))
    fake.intercom["eu"] = ("EU", intercom_me("eu1", "EU"))
    inv = make((("intercom", "us-ws"),), {"intercom": "us"},
               today=lambda: dt.date(2026, 12, 15)).collect(ctx)
    subs = _subs(inv)
    assert "saas:intercom:subprocessor:amazon-web-services-inc" in subs and len(subs) == 10
    for s in subs.values():
        tags = dict(s.tags)  # type: ignore[attr-defined]
        assert tags["saas:subprocessor-list"] == f"{SHIPPED} (retrieved 2026-12-01)"
        assert TAG_LIST_VERIFIED not in tags and TAG_LIST_STALE not in tags
        assert s.location.countries == {"US"}  # type: ignore[attr-defined]
    onward = {f.target for f in inv.flows if f.source == "saas:intercom:us-ws"}
    assert onward == set(subs)
    # the EU workspace (Dublin) is not covered by the US list: no onward flows invented
    eu = make((("intercom", "eu-ws"),), {"intercom": "eu"}).collect(ctx)
    assert _subs(eu) == {} and eu.gaps == ()
    (tenant,) = eu.systems
    assert tenant.location.countries == {"IE"}


def test_a_stale_shipped_list_is_marked(fake: FakeSaas, make: Make,
                                        ctx: CollectContext) -> None:
    fake.intercom["us"] = ("US", intercom_me("us1", "US"))
    late = dt.date(2026, 12, 1) + dt.timedelta(days=181)
    inv = make((("intercom", "us-ws"),), {"intercom": "us"}, today=lambda: late).collect(ctx)
    for s in _subs(inv).values():
        stale = dict(s.tags)[TAG_LIST_STALE]  # type: ignore[attr-defined]
        assert "181 days ago (more than 180)" in stale and SHIPPED in stale
    on_time = make((("intercom", "us-ws"),), {"intercom": "us"},
                   today=lambda: late - dt.timedelta(days=1)).collect(ctx)
    assert all(TAG_LIST_STALE not in dict(s.tags)  # type: ignore[attr-defined]
               for s in _subs(on_time).values())


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(default_policies_dir(), root)
    return root


@pytest.mark.parametrize(("edit", "key"), [
    (lambda t: t.replace("retrieved: 2026-12-01", "retrieved: 2026-11-30"), "retrieved"),
    (lambda t: t.replace("verified: true\n", ""), "verified"),
    (lambda t: t.replace("countries: [US], purpose: \"AI processing\"}",
                         "countries: [XX], purpose: \"AI processing\"}", 1),
     "subprocessors[6].countries[0]"),
])
def test_a_bad_shipped_list_names_file_and_key(pack_copy: Path, edit: object,
                                               key: str) -> None:
    path = pack_copy / "saas" / "subprocessors" / "intercom-2026-12-01.yaml"
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    pack = PolicyPack.load(pack_copy)
    with pytest.raises(PolicyError) as err:  # the pack's own data: a policy error, exit 2
        read_shipped(pack, path)
    assert err.value.key == key and str(path) in str(err.value)


def test_the_newest_dated_copy_wins(pack_copy: Path) -> None:
    folder = pack_copy / "saas" / "subprocessors"
    old = folder / "intercom-2025-01-31.yaml"
    old.write_text((folder / "intercom-2026-12-01.yaml").read_text()
                   .replace("2026-12-01", "2025-01-31"))
    (folder / "intercom-notes.yaml").write_text("not a dated copy\n")
    pack = PolicyPack.load(pack_copy)
    assert shipped_subprocessors(pack, "intercom") == folder / "intercom-2026-12-01.yaml"
    assert shipped_subprocessors(pack, "zendesk") is None
