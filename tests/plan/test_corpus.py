"""Real `terraform show -json` files from public repositories (tests/plan/corpus/, each with
repo, path and commit in MANIFEST.yaml, its expected locations checked by hand): every
resource whose plan fixes its location is located to the right countries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from residency.model import Location
from residency.plan.reader import PlanContext, load_plan, plan_locations
from residency.policy.catalogue import normalise
from residency.policy.pack import PolicyPack

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = yaml.safe_load((CORPUS / "MANIFEST.yaml").read_text())["files"]
PROVIDER = {"aws": "aws", "awscc": "aws", "google": "gcp", "azurerm": "azure", "azapi": "azure"}


def _countries(pack: PolicyPack, provider: str, regions: tuple[str, ...]) -> frozenset[str]:
    res = pack.resolve(Location(provider=provider, regions=regions))
    return frozenset({"ANY"}) if res.any_country or res.unresolved else res.countries


@pytest.fixture(scope="module")
def corpus_pack() -> PolicyPack:
    return PolicyPack.load(None)


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"][:80] for e in MANIFEST])
def test_every_fixed_location_is_found(entry: dict[str, Any], corpus_pack: PolicyPack) -> None:
    ctx = PlanContext(catalogue=corpus_pack.catalogue, paired_region=corpus_pack.paired_region)
    got = plan_locations(CORPUS / entry["file"], ctx)
    wrong = []
    for want in entry.get("expected", []):
        address = want["address"]
        provider = PROVIDER[want["type"].split("_", 1)[0]]
        expected = _countries(corpus_pack, provider,
                              (normalise(want["location"], "region") or "",))
        if address not in got:
            wrong.append(f"{address}: not read at all")
            continue
        _, regions, reason = got[address]
        if regions is None:
            wrong.append(f"{address}: not located ({reason}); expected {want['location']}")
            continue
        countries = _countries(corpus_pack, provider, regions)
        if countries != expected:
            wrong.append(f"{address}: {regions} → {sorted(countries)}, expected "
                         f"{want['location']} → {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"][:80] for e in MANIFEST])
def test_nothing_unlocated_is_invented(entry: dict[str, Any], corpus_pack: PolicyPack) -> None:
    """What the plan leaves open (unknown until apply, an unset variable) is never given a
    region: it is reported with a reason, or it is a global or location-less resource."""
    ctx = PlanContext(catalogue=corpus_pack.catalogue, paired_region=corpus_pack.paired_region)
    got = plan_locations(CORPUS / entry["file"], ctx)
    invented = []
    for item in entry.get("unlocated", []):
        why = str(item.get("why", ""))
        if "unknown" not in why and "unset" not in why and "no value" not in why:
            continue  # global services and child resources: nothing to invent
        hit = got.get(item["address"])
        if hit is not None and hit[1] is not None:
            invented.append(f"{item['address']}: located at {hit[1]} but {why}")
    assert not invented, "\n".join(invented)


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"][:80] for e in MANIFEST])
def test_the_gate_reads_every_corpus_file(entry: dict[str, Any], corpus_pack: PolicyPack) -> None:
    load_plan(CORPUS / entry["file"], PlanContext(catalogue=corpus_pack.catalogue))


def test_the_corpus_is_wide() -> None:
    repos = {e["repo"] for e in MANIFEST}
    located = sum(len(e.get("expected", [])) for e in MANIFEST)
    versions = {str(e["format_version"]) for e in MANIFEST}
    assert len(MANIFEST) >= 30 and len(repos) >= 12 and located >= 100
    assert {"0.1", "0.2"} <= versions and any(v.startswith("1.") for v in versions)
