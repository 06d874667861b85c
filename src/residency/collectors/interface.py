"""The collector interface: live cloud accounts in, an `Inventory` out.

Collectors receive their SDK sessions/clients (nothing at import time), never print,
never exit, and turn every scope they cannot read into a `CoverageGap` (RES-S001).
Provider differences end here: systems leave with a `Location(provider, regions)` and the
policy pack resolves countries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from residency.model import (
    Classification,
    CoverageGap,
    Flow,
    Inventory,
    Location,
    Origin,
    Role,
    System,
)

ProgressCallback = Callable[[str, int], None]
"""progress(label, advance): called as units of work (account × region × service) finish."""


@dataclass(frozen=True, slots=True)
class CollectContext:
    classification: Classification
    classified_only: bool = False
    workers: int = 8
    progress: ProgressCallback | None = field(default=None, compare=False)
    scope_filter: Callable[[str], bool] | None = field(default=None, compare=False)

    def wants(self, scope_id: str) -> bool:
        """Whether this scan owns an account/project/subscription (`scan --shard K/N`)."""
        return self.scope_filter is None or self.scope_filter(scope_id)


class Collector(ABC):
    """One cloud provider's collector."""

    provider: str = ""

    @abstractmethod
    def collect(self, ctx: CollectContext) -> Inventory:
        """Enumerate resources; unreadable scopes become coverage gaps, not exceptions."""


def resource_system(
    *,
    provider: str,
    resource_id: str,
    name: str,
    account: str,
    regions: Iterable[str],
    tags: dict[str, str],
    ctx: CollectContext,
    unknown_reason: str | None = None,
) -> tuple[System | None, list[Flow]]:
    """Build the system for one resource, classified from its tag/label, plus its `fed_by` flow.

    Returns (None, []) when the scan is `--classified-only` and the resource has no
    classification tag at all.
    The system id is the resource id (ARN, GCS bucket URL, ARM id): stable across runs.
    """
    value = tags.get(ctx.classification.tag)
    cls = ctx.classification.lookup(value) if value is not None else None
    if value is None and ctx.classified_only:
        return None, []
    # A tag whose value the map does not list is still a classification: the resource is
    # kept (even with --classified-only) and the engine reports the value (RES-I003).
    system = System(
        id=resource_id,
        party=provider,
        role=Role.PROCESSOR,
        location=Location(provider=provider, regions=tuple(regions), unknown_reason=unknown_reason),
        data_categories=cls.data_categories if cls else frozenset(),
        origin=Origin.COLLECTED,
        classified=value is not None,
        name=name,
        resource_id=resource_id,
        account=account,
        tags=tuple(sorted(tags.items())),
    )
    flows: list[Flow] = []
    if cls is not None and cls.fed_by:
        flows.append(
            Flow(
                id=f"{cls.fed_by}->{resource_id}",
                source=cls.fed_by,
                target=resource_id,
                data_categories=cls.data_categories,
                origin=Origin.COLLECTED,
                kind="storage",
            )
        )
    return system, flows


def replication_flow(
    source: System, target_id: str, kind: str = "replication"
) -> Flow:
    """Data copied to another resource/region is a transfer candidate like any other."""
    return Flow(
        id=f"{kind}:{source.id}->{target_id}",
        source=source.id,
        target=target_id,
        data_categories=source.data_categories,
        origin=Origin.COLLECTED,
        kind=kind,
    )


def merge(inventories: Iterable[Inventory]) -> Inventory:
    systems: list[System] = []
    flows: list[Flow] = []
    gaps: list[CoverageGap] = []
    for inv in inventories:
        systems.extend(inv.systems)
        flows.extend(inv.flows)
        gaps.extend(inv.gaps)
    return Inventory(tuple(systems), tuple(flows), tuple(gaps))
