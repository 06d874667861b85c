"""`scan --azure`: options and the factory for the Azure Resource Manager collector."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import click

from residency.collectors.interface import Collector
from residency.errors import CollectorError
from residency.policy.pack import PolicyPack

F = TypeVar("F", bound=Callable[..., Any])


def azure_options(func: F) -> F:
    func = click.option(
        "--azure-graph/--azure-no-graph", "azure_graph", default=True,
        help="Read every resource through one Azure Resource Graph query across the "
        "subscriptions (default), or list per subscription.",
    )(func)
    func = click.option(
        "--azure-endpoint", metavar="URL", default=None,
        help="ARM endpoint (sovereign cloud, or a local test peer: plain http is allowed "
        "only on loopback, with a fixed test token).",
    )(func)
    func = click.option(
        "--azure-subscription", "azure_subscription", multiple=True, metavar="ID",
        help="Scan only this subscription (repeatable; implies --azure). Default: every "
        "subscription the credential can list.",
    )(func)
    return click.option(
        "--azure", "azure", is_flag=True,
        help="Scan Azure subscriptions (DefaultAzureCredential).",
    )(func)


def build_azure(
    pack: PolicyPack,
    *,
    azure: bool = False,
    azure_subscription: tuple[str, ...] = (),
    azure_endpoint: str | None = None,
    azure_graph: bool = True,
    **_: Any,
) -> Collector | None:
    """None unless --azure or --azure-subscription was given."""
    if not azure and not azure_subscription:
        return None
    from residency.collectors.azure import AzureCollector, is_loopback, loopback_collector

    try:  # azure-mgmt-resource 26 split SubscriptionClient into its own distribution
        importlib.import_module("azure.mgmt.resource.resources")
        importlib.import_module("azure.mgmt.resource.subscriptions")
    except ImportError:
        raise CollectorError(
            "--azure needs azure-mgmt-resource>=26 and azure-mgmt-resource-subscriptions: "
            "pip install 'residency[azure]'"
        ) from None
    paired = partial(pack.paired_region, "azure")
    if azure_endpoint and azure_endpoint.startswith("http://"):
        if not is_loopback(azure_endpoint):
            raise click.BadParameter("plain http is only allowed to a loopback host",
                                     param_hint="--azure-endpoint")
        return loopback_collector(paired, azure_endpoint, azure_subscription,
                                  catalogue=pack.catalogue, resource_graph=azure_graph)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise CollectorError("--azure needs azure-identity: pip install 'residency[azure]'") \
            from None
    kwargs: dict[str, Any] = {}
    if azure_endpoint:  # a sovereign cloud: tokens are for that cloud's ARM audience
        kwargs["credential_scopes"] = [f"{azure_endpoint.rstrip('/')}/.default"]
    return AzureCollector(DefaultAzureCredential(), paired, azure_subscription, azure_endpoint,
                          kwargs, catalogue=pack.catalogue, resource_graph=azure_graph)
