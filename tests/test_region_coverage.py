"""Region tables cover sovereign clouds and service-specific locations (issue: the region tables
miss regions that exist): Firestore and Spanner multi-regions, S3NS, Azure Government Secret /
Top Secret, Bleu, Delos Cloud, AWS sovereign partitions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from residency.model import Location
from residency.policy.pack import PolicyPack

REGIONS = Path(__file__).parents[1] / "policies" / "regions"

CASES = [
    # GCP: Firestore / Datastore multi-regions (witness regions included)
    ("gcp", "nam5", {"US"}),
    ("gcp", "NAM7", {"US"}),
    ("gcp", "eur3", {"BE", "NL", "FI"}),
    # GCP: Spanner multi-region and dual-region instance configurations
    ("gcp", "nam-eur-asia1", {"US", "BE", "TW"}),
    ("gcp", "nam-eur-asia3", {"US", "BE", "NL", "TW"}),
    ("gcp", "eur6", {"NL", "DE", "CH"}),
    ("gcp", "nam3", {"US"}),
    ("gcp", "nam14", {"US", "CA"}),
    ("gcp", "asia2", {"IN", "SG"}),
    ("gcp", "dual-region-germany1", {"DE"}),
    ("gcp", "dual-region-japan1", {"JP"}),
    # names that mean other places in Cloud Storage and Spanner: Spanner configs normalise
    # to spanner-<name> (policy/catalogue.normalise), so each service keeps its own countries
    ("gcp", "EUR5", {"BE", "GB"}),
    ("gcp", "eur7", {"GB", "DE"}),
    ("gcp", "ASIA1", {"JP"}),
    ("gcp", "spanner-eur5", {"GB", "BE", "NL"}),
    ("gcp", "spanner-eur7", {"IT", "DE"}),
    ("gcp", "spanner-asia1", {"JP", "KR"}),
    ("gcp", "spanner-nam3", {"US"}),
    ("gcp", "spanner-eur3", {"BE", "NL", "FI"}),
    # GCP: Spanner regional config names alias the region
    ("gcp", "regional-us-central1", {"US"}),
    ("gcp", "regional-europe-west3", {"DE"}),
    # GCP: BigQuery multi-regions and Cloud Storage dual-regions
    ("gcp", "US", {"US"}),
    ("gcp", "NAM4", {"US"}),
    ("gcp", "EUR4", {"FI", "NL"}),
    ("gcp", "EUR8", {"DE", "CH"}),
    # GCP: S3NS trusted partner cloud
    ("gcp", "u-france-east1", {"FR"}),
    # Azure: sovereign clouds
    ("azure", "bleufrancecentral", {"FR"}),
    ("azure", "Bleu France South", {"FR"}),
    ("azure", "deloscloudgermanycentral", {"DE"}),
    ("azure", "deloscloudgermanynorth", {"DE"}),
    ("azure", "usseceast", {"US"}),
    ("azure", "USSec West Central", {"US"}),
    ("azure", "usnateast", {"US"}),
    ("azure", "usnatwest", {"US"}),
    ("azure", "chinanorth3", {"CN"}),
    ("azure", "usgovvirginia", {"US"}),
    ("azure", "germanycentral", {"DE"}),
    # Azure: regions added 2025-2026
    ("azure", "indiasouthcentral", {"IN"}),
    ("azure", "India South Central", {"IN"}),
    ("azure", "taiwannorth", {"TW"}),
    ("azure", "taiwannorthwest", {"TW"}),
    ("azure", "malaysiasouth", {"MY"}),
    ("azure", "israelnorthwest", {"IL"}),
    ("azure", "eastus3", {"US"}),
    ("azure", "taiwan", {"TW"}),
    # AWS: sovereign and government partitions
    ("aws", "eusc-de-east-1", {"DE"}),
    ("aws", "us-gov-west-1", {"US"}),
    ("aws", "cn-northwest-1", {"CN"}),
    ("aws", "us-iso-east-1", {"US"}),
    ("aws", "us-isob-east-1", {"US"}),
    ("aws", "eu-isoe-west-1", {"GB"}),
    ("aws", "us-isof-south-1", {"US"}),
]


@pytest.mark.parametrize(("provider", "name", "expected"), CASES)
def test_location_resolves(pack: PolicyPack, provider: str, name: str, expected: set[str]) -> None:
    got = pack.resolve(Location(provider=provider, regions=(name,)))
    assert got.unresolved is None, got.unresolved
    assert not got.any_country
    assert got.countries == expected


def test_azure_new_pair(pack: PolicyPack) -> None:
    assert pack.paired_region("azure", "indiasouthcentral") == "centralindia"


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_every_entry_has_a_source_and_unverified_notes_say_why(provider: str) -> None:
    table = yaml.safe_load((REGIONS / f"{provider}.yaml").read_text())
    for key, entry in table["locations"].items():
        assert entry.get("source"), f"{provider}:{key} has no source"
        note = entry.get("note", "")
        if "unverified" in note:
            assert len(note) > len("unverified: "), f"{provider}:{key} says unverified without why"


def test_aws_sovereign_partitions_are_labelled() -> None:
    table = yaml.safe_load((REGIONS / "aws.yaml").read_text())["locations"]
    assert table["eusc-de-east-1"]["partition"] == "aws-eusc"
    assert table["us-gov-east-1"]["partition"] == "aws-us-gov"
    assert table["cn-north-1"]["partition"] == "aws-cn"
    assert {table[r]["partition"] for r in ("us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1",
                                            "us-isof-east-1")} == {
        "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f"}


def test_witness_regions_are_members(pack: PolicyPack) -> None:
    """Multi-region members list the witness region too, so its country is counted."""
    table = pack.regions["gcp"]
    assert "europe-north1" in table.members["eur3"]
    assert "europe-west6" in table.members["eur6"]
