"""Checkov equivalent of residency's gate policy, for the benchmark only.

Resources tagged/labelled `data-classification` must be in an EU/EEA region. Checkov sees
each resource's own arguments: `region` (AWS provider v6), `location`, `zone`.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

EU_PREFIXES = ("eu-", "europe-")
EU_LOCATIONS = {
    "eu", "eur4", "eur5", "eur7", "eur8", "westeurope", "northeurope", "germanywestcentral",
    "germanynorth", "francecentral", "francesouth", "swedencentral", "italynorth",
    "polandcentral", "spaincentral", "norwayeast", "norwaywest", "austriaeast",
}


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


class DataResidencyEU(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Resources tagged data-classification must be in EU regions",
            id="CKV_RES_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["aws_*", "google_*", "azurerm_*"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        tags = {}
        for key in ("tags", "tags_all", "labels"):
            got = _first(conf.get(key))
            if isinstance(got, dict):
                tags.update(got)
        if "data-classification" not in tags:
            return CheckResult.UNKNOWN
        where = _first(conf.get("region")) or _first(conf.get("location")) or _first(
            conf.get("zone"))
        if not isinstance(where, str):
            return CheckResult.FAILED
        where = where.lower().replace(" ", "")
        ok = where.startswith(EU_PREFIXES) or where in EU_LOCATIONS
        return CheckResult.PASSED if ok else CheckResult.FAILED


check = DataResidencyEU()
