"""`scan --gcp PROJECT`: options and the factory for the Cloud Storage collector."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from residency.collectors.interface import Collector
from residency.errors import CollectorError
from residency.policy.pack import PolicyPack

F = TypeVar("F", bound=Callable[..., Any])

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def gcp_options(func: F) -> F:
    func = click.option(
        "--gcp-asset-endpoint", metavar="URL", default=None,
        help="Cloud Asset Inventory endpoint of a local test peer (anonymous credentials).",
    )(func)
    func = click.option(
        "--gcp-scope", "gcp_scope", multiple=True, metavar="SCOPE",
        help="Search every resource under organizations/ORG, folders/FOLDER or "
        "projects/PROJECT through Cloud Asset Inventory (repeatable; implies --gcp-assets).",
    )(func)
    func = click.option(
        "--gcp-assets", is_flag=True, default=False,
        help="Also find every resource of the --gcp projects through Cloud Asset Inventory "
        "(locations and labels of all catalogue types, not only buckets).",
    )(func)
    func = click.option(
        "--gcp-endpoint", metavar="URL", default=None,
        help="Cloud Storage API endpoint of a local emulator or test peer (anonymous "
        "credentials; $STORAGE_EMULATOR_HOST works too).",
    )(func)
    return click.option(
        "--gcp", "gcp", multiple=True, metavar="PROJECT",
        help="Scan this Google Cloud project's buckets (repeatable; Application Default "
        "Credentials).",
    )(func)


def build_gcp(
    pack: PolicyPack, *, gcp: tuple[str, ...] = (), gcp_endpoint: str | None = None,
    gcp_scope: tuple[str, ...] = (), gcp_assets: bool = False,
    gcp_asset_endpoint: str | None = None, **_: Any,
) -> Collector | None:
    """None unless --gcp or --gcp-scope was given; credentials are checked here, before any
    scanning."""
    if not gcp and not gcp_scope:
        return None
    for scope in gcp_scope:
        if scope.partition("/")[0] not in ("organizations", "folders", "projects") or \
                not scope.partition("/")[2]:
            raise click.BadParameter(f"{scope!r}: expected organizations/ID, folders/ID or "
                                     "projects/ID", param_hint="--gcp-scope")
    use_assets = gcp_assets or bool(gcp_scope)
    try:
        from google.cloud.storage import Client as StorageClient

        from residency.collectors.gcp import GcpCollector
    except ImportError:
        raise CollectorError(
            "--gcp needs google-cloud-storage: pip install 'residency[gcp]'"
        ) from None
    endpoint = gcp_endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
    if endpoint:
        from residency.collectors.gcp import asset_client_factory, emulator_client_factory

        assets = asset_client_factory(gcp_asset_endpoint or endpoint) if use_assets else None
        return GcpCollector(emulator_client_factory(endpoint), gcp, catalogue=pack.catalogue,
                            asset_client=assets, asset_scopes=gcp_scope)
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    # Cloud Asset Inventory accepts only the cloud-platform scope (its role still grants
    # read-only permissions: `residency policies iam gcp`)
    scopes = [CLOUD_PLATFORM_SCOPE] if use_assets else [READ_ONLY_SCOPE]
    try:
        credentials, _project = google.auth.default(scopes=scopes)
    except DefaultCredentialsError:
        raise CollectorError(
            "--gcp: no Google credentials found; run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS (role: `residency policies iam gcp`)"
        ) from None

    def factory(project: str) -> Any:
        return StorageClient(project=project, credentials=credentials)

    assets = None
    if use_assets:
        from residency.collectors.gcp import asset_client_factory

        assets = asset_client_factory(gcp_asset_endpoint, credentials=credentials)
    return GcpCollector(factory, gcp, catalogue=pack.catalogue, asset_client=assets,
                        asset_scopes=gcp_scope)
