"""Azure: every resource of the readable subscriptions, plus geo-redundant storage copies.

Resources come from ARM's generic `resources.list()` (location and tags for every type in
one paged call). A storage account whose SKU is geo-redundant keeps a second copy in the
region's pair: that copy becomes a placeholder system `<account id>#secondary` and a
replication flow, so a Brazil South account copied to South Central US is judged as BR → US.
Region pairs come from the policy pack through the `paired_region` callable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from residency.collectors import _faults
from residency.collectors.interface import (
    CollectContext,
    Collector,
    replication_flow,
    resource_system,
)
from residency.model import CoverageGap, Flow, Inventory, Location, System

STORAGE_ACCOUNT_TYPE = "microsoft.storage/storageaccounts"
GEO_REDUNDANT_SKUS = frozenset(
    {"standard_grs", "standard_ragrs", "standard_gzrs", "standard_ragzrs"}
)
STORAGE_API_VERSION = "2023-05-01"  # only for the per-account GET fallback (read-only)
ARM_SCOPE = "https://management.azure.com/.default"

PairedRegion = Callable[[str], str | None]
"""region -> its paired region (or None when the pack knows no pair)."""


class AzureCollector(Collector):
    """Reads subscriptions (listed, or given) and their resources through ARM, read-only."""

    provider = "azure"

    def __init__(
        self,
        credential: Any,
        paired_region: PairedRegion,
        subscriptions: Iterable[str] = (),
        base_url: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """`client_kwargs` go to every SDK client (retry_total, authentication_policy, ...)."""
        self._credential = credential
        self._paired = paired_region
        self._subscriptions = tuple(dict.fromkeys(subscriptions))
        self._base_url = base_url
        self._kwargs = dict(client_kwargs or {})

    # ------------------------------------------------------------------ entry
    def collect(self, ctx: CollectContext) -> Inventory:
        gaps: list[CoverageGap] = []
        subscriptions = list(self._subscriptions) or self._list_subscriptions(gaps)
        subscriptions = [s for s in subscriptions if ctx.wants(s)]
        systems: list[System] = []
        flows: list[Flow] = []
        if subscriptions:
            workers = max(1, min(ctx.workers, len(subscriptions)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(lambda s: self._subscription(s, ctx), subscriptions))
            for part_systems, part_flows, part_gaps in parts:
                systems.extend(part_systems)
                flows.extend(part_flows)
                gaps.extend(part_gaps)
        return Inventory(tuple(systems), tuple(flows), tuple(gaps))

    def _list_subscriptions(self, gaps: list[CoverageGap]) -> list[str]:
        try:
            from azure.mgmt.resource.subscriptions import SubscriptionClient

            client = SubscriptionClient(self._credential, base_url=self._base_url, **self._kwargs)
            with client:
                subs = [s.subscription_id for s in client.subscriptions.list()]
        except Exception as exc:  # any failure, an answer that is not JSON included
            gaps.append(CoverageGap("azure", "subscriptions", _faults.reason(exc, _reason)))
            return []
        if not subs:
            gaps.append(CoverageGap("azure", "subscriptions",
                                    "the credential can read no subscription"))
        return [s for s in subs if s]

    # ------------------------------------------------------------------ one subscription
    def _subscription(
        self, subscription: str, ctx: CollectContext
    ) -> tuple[list[System], list[Flow], list[CoverageGap]]:
        """One subscription's resources: the unit of work. Any exception (an ARM error, a
        reset, a timeout, an answer that is not JSON or fails deserialization) is the
        subscription's gap; the pages already read are kept."""
        systems: list[System] = []
        flows: list[Flow] = []
        gaps: list[CoverageGap] = []
        try:
            from azure.mgmt.resource.resources import ResourceManagementClient

            client = ResourceManagementClient(
                self._credential, subscription, base_url=self._base_url, **self._kwargs
            )
            with client:
                for index, res in enumerate(client.resources.list()):
                    try:  # one unreadable entry is its own gap; the rest is kept
                        self._resource(client, res, subscription, ctx, systems, flows, gaps)
                    except Exception as exc:
                        name = getattr(res, "id", None) or f"#{index} of the listing"
                        gaps.append(CoverageGap("azure", f"subscription {subscription} "
                                                f"resource {name}", _faults.reason(exc, _reason)))
        except Exception as exc:
            reason = _faults.reason(exc, _reason) + _faults.kept_note(len(systems), "resource")
            gaps.append(CoverageGap("azure", f"subscription {subscription}", reason))
        if ctx.progress is not None:
            ctx.progress(f"subscription {subscription}", 1)
        return systems, flows, gaps

    def _resource(
        self,
        client: Any,
        res: Any,
        subscription: str,
        ctx: CollectContext,
        systems: list[System],
        flows: list[Flow],
        gaps: list[CoverageGap],
    ) -> None:
        if not res.id:
            raise KeyError("id")  # ARM always sends one; without it there is no system id
        location = res.location or None
        system, fed = resource_system(
            provider="azure",
            resource_id=res.id,
            name=res.name or res.id,
            account=subscription,
            regions=(location,) if location else (),
            tags={str(k): str(v) for k, v in (res.tags or {}).items()},
            ctx=ctx,
            unknown_reason=None if location else "resource reported no location",
        )
        if system is None:
            return
        systems.append(system)
        flows.extend(fed)
        if (res.type or "").lower() != STORAGE_ACCOUNT_TYPE:
            return
        sku = res.sku.name if res.sku is not None else None
        if sku is None:
            sku = self._storage_sku(client, res.id, gaps)
        if sku is not None and sku.lower() in GEO_REDUNDANT_SKUS:
            secondary = self._secondary(system, location, sku)
            systems.append(secondary)
            flows.append(replication_flow(system, secondary.id))

    @staticmethod
    def _storage_sku(client: Any, resource_id: str, gaps: list[CoverageGap]) -> str | None:
        """ARM's list returns `sku` for storage accounts; if one lacks it, GET the account."""
        try:
            full = client.resources.get_by_id(resource_id, api_version=STORAGE_API_VERSION)
            return full.sku.name if full.sku is not None else None
        except Exception as exc:  # a per-resource read: its own gap
            gaps.append(CoverageGap("azure", f"storage account {resource_id} replication",
                                    _faults.reason(exc, _reason)))
            return None

    def _secondary(self, primary: System, location: str | None, sku: str) -> System:
        """The geo-redundant copy: same data, same provider, the paired region."""
        pair = self._paired(location) if location else None
        where = Location(provider="azure", regions=(pair,)) if pair else Location(
            provider="azure",
            unknown_reason=f"{sku} copy of an account in {location or '?'}: no paired region "
            "known in regions/azure.yaml",
        )
        return dataclasses.replace(
            primary,
            id=f"{primary.id}#secondary",
            name=f"{primary.name} (geo-secondary, {sku})",
            location=where,
        )


def _reason(exc: BaseException) -> str | None:
    """`HTTP 403 AuthorizationFailed: ...` for an SDK error; never the request headers or a
    token. None for anything that is not an Azure SDK error (see `_faults.generic`)."""
    from azure.core.exceptions import AzureError

    if not isinstance(exc, AzureError):
        return None
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    message = str(message).splitlines()[0] if message else type(exc).__name__
    head = " ".join(p for p in (f"HTTP {status}" if status else "", code or "") if p)
    return f"{head}: {message}" if head else f"{type(exc).__name__}: {message}"


# ---------------------------------------------------------------------- local peers
class EmulatorCredential:
    """A fixed token for a local ARM peer (`--azure-endpoint http://127.0.0.1:...`)."""

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("emulator", int(time.time()) + 3600)


def loopback_collector(
    paired_region: PairedRegion, endpoint: str, subscriptions: Iterable[str] = ()
) -> AzureCollector:
    """A collector for a local ARM peer over plain http (refused unless `endpoint` is loopback)."""
    if not is_loopback(endpoint):
        raise ValueError(f"{endpoint}: plain http is only allowed to a loopback host")
    credential = EmulatorCredential()
    return AzureCollector(credential, paired_region, subscriptions, endpoint,
                          {"authentication_policy": loopback_bearer_policy(credential)})


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_bearer_policy(credential: Any, *scopes: str) -> Any:
    """A bearer policy that allows plain http, but only to a loopback host.

    ARM's default policy refuses non-TLS URLs (right for Azure); a local test peer has no
    TLS. Anything but loopback is still refused, so a token never leaves in clear text.
    """
    from azure.core.exceptions import ServiceRequestError
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class _LoopbackBearer(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            url = request.http_request.url
            if not url.startswith("https://") and not is_loopback(url):
                raise ServiceRequestError("bearer token refused for a non-TLS, non-loopback URL")
            token = credential.get_token(*(scopes or (ARM_SCOPE,))).token
            request.http_request.headers["Authorization"] = f"Bearer {token}"

    return _LoopbackBearer()
