"""The region tables hold every region the providers publish (issue: region tables)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from residency.model import Location
from residency.policy.pack import PolicyPack


def _botocore_regions() -> dict[str, str]:
    botocore = pytest.importorskip("botocore")
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    return {region: part["id"] for part in data["partitions"] for region in part["regions"]}


def test_every_botocore_region_is_in_the_aws_table(pack: PolicyPack) -> None:
    """A region the installed botocore can call but the pack cannot place would resolve to
    'any country' (RES-L001) on every scan: keep the table ahead of the SDK."""
    missing = [r for r in sorted(_botocore_regions())
               if pack.resolve(Location(provider="aws", regions=(r,))).unresolved]
    assert not missing, f"add to policies/regions/aws.yaml (with a source): {missing}"


def test_every_aws_table_region_has_a_partition_botocore_agrees_with() -> None:
    import yaml

    known = _botocore_regions()
    table = yaml.safe_load((Path(__file__).parents[1] / "policies/regions/aws.yaml").read_text())
    wrong = {r: (e.get("partition"), known[r]) for r, e in table["locations"].items()
             if r in known and e.get("partition") and e["partition"] != known[r]}
    assert not wrong, wrong
