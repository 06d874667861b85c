"""`scan --saas VENDOR=TENANT`: options and the factory for the SaaS service-desk collector."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from residency.collectors.interface import Collector
from residency.errors import CollectorError
from residency.policy.pack import PolicyPack

F = TypeVar("F", bound=Callable[..., Any])


def _pairs(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        vendor, sep, rest = value.partition("=")
        if not sep or not vendor.strip() or not rest.strip():
            raise click.BadParameter(f"{value!r}: expected VENDOR=VALUE", param_hint=option)
        out.append((vendor.strip().lower(), rest.strip()))
    return out


def saas_options(func: F) -> F:
    func = click.option(
        "--saas-timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True,
        help="Seconds to wait for each SaaS API answer.")(func)
    func = click.option(
        "--saas-classification", metavar="VALUE", default=None,
        help="Classification value (of the map's classification) the SaaS tenants hold.")(func)
    func = click.option(
        "--saas-endpoint", multiple=True, metavar="VENDOR=URL",
        help="Base URL of a local test peer for VENDOR (repeatable).")(func)
    func = click.option(
        "--saas-secrets", type=click.Path(path_type=Path, dir_okay=False), default=None,
        help="YAML file `secrets: {VENDOR: {token: ...}}` (else $RESIDENCY_<VENDOR>_TOKEN).")(func)
    func = click.option(
        "--saas-subprocessors", multiple=True, metavar="VENDOR=FILE|URL",
        help="The vendor's published sub-processor list (repeatable; default: the newest "
        "dated copy in policies/saas/subprocessors/, if any).")(func)
    func = click.option(
        "--saas-attested", type=click.Path(path_type=Path, dir_okay=False), default=None,
        help="YAML file of attested tenant locations (vendors whose API reports none).")(func)
    return click.option(
        "--saas", "saas", multiple=True, metavar="VENDOR=TENANT",
        help="Read a helpdesk tenant's location from its vendor (repeatable): freshdesk=DOMAIN, "
        "hubspot=PORTAL_ID, intercom=WORKSPACE, salesforce=MYDOMAIN, atlassian=ORG_ID.",
    )(func)


def build_saas(
    pack: PolicyPack, *, saas: tuple[str, ...] = (), saas_attested: Path | None = None,
    saas_subprocessors: tuple[str, ...] = (), saas_secrets: Path | None = None,
    saas_endpoint: tuple[str, ...] = (), saas_classification: str | None = None,
    saas_timeout: float = 10.0, **_: Any,
) -> Collector | None:
    """None unless --saas or --saas-attested was given; credentials are checked here, before
    any scanning (a missing token is exit 2, naming the variable, never the value)."""
    if not saas and saas_attested is None:
        return None
    from residency.collectors.saas import VENDORS
    from residency.collectors.saas._http import HttpClient
    from residency.collectors.saas._tables import read_attested, read_secrets
    from residency.collectors.saas.collector import SaasCollector, SubprocessorSource, Tenant

    tenants = [Tenant(v, t) for v, t in _pairs(saas, "--saas")]
    for t in tenants:
        if t.vendor not in VENDORS:
            raise click.BadParameter(
                f"{t.vendor!r}: vendors whose API reports a location are "
                f"{', '.join(sorted(VENDORS))}; attest the others with --saas-attested",
                param_hint="--saas")
    endpoints = dict(_pairs(saas_endpoint, "--saas-endpoint"))
    stored = read_secrets(saas_secrets).secrets if saas_secrets is not None else {}
    tokens: dict[str, str] = {}
    for vendor in sorted({t.vendor for t in tenants}):
        env = VENDORS[vendor].env_var
        token = stored[vendor].token if vendor in stored else os.environ.get(env, "")
        if not token:
            raise CollectorError(f"--saas {vendor}: no credentials; set {env} or give "
                                 "--saas-secrets FILE (read-only scopes: "
                                 "policies/iam/saas-scopes.yaml)")
        tokens[vendor] = token
    attested = read_attested(pack, saas_attested).attested if saas_attested else ()
    lists = [SubprocessorSource(v, ref) for v, ref in
             _pairs(saas_subprocessors, "--saas-subprocessors")]
    return SaasCollector(
        pack, {v: cls() for v, cls in VENDORS.items()}, tenants, tokens=tokens,
        endpoints=endpoints, attested=attested, attested_source=str(saas_attested or ""),
        subprocessors=lists, classification=saas_classification,
        http=HttpClient(timeout=saas_timeout),
    )
