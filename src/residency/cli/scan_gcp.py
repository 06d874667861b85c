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
        "--gcp-api-endpoint", "gcp_api_endpoint", multiple=True, metavar="API=URL",
        help="Endpoint of a local test peer for one REST API (sqladmin, spanner, "
        "bigtableadmin, cloudkms, cloudresourcemanager); anonymous credentials.",
    )(func)
    func = click.option(
        "--gcp-in-depth", is_flag=True, default=False,
        help="Also read each project's Cloud SQL, Spanner and Bigtable instances (replicas, "
        "configurations, clusters become copies) and its Cloud KMS keys' protection level.",
    )(func)
    func = click.option(
        "--gcp-discover", "gcp_discover", multiple=True, metavar="PARENT",
        help="Scan every active project under organizations/ORG or folders/FOLDER, folders "
        "recursively (Resource Manager; repeatable).",
    )(func)
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
    gcp_asset_endpoint: str | None = None, gcp_discover: tuple[str, ...] = (),
    gcp_in_depth: bool = False, gcp_api_endpoint: tuple[str, ...] = (), **_: Any,
) -> Collector | None:
    """None unless --gcp, --gcp-scope or --gcp-discover was given; credentials are checked
    here, before any scanning."""
    if not gcp and not gcp_scope and not gcp_discover:
        return None
    for parent in gcp_discover:
        if parent.partition("/")[0] not in ("organizations", "folders") or \
                not parent.partition("/")[2]:
            raise click.BadParameter(f"{parent!r}: expected organizations/ID or folders/ID",
                                     param_hint="--gcp-discover")
    apis = _api_endpoints(gcp_api_endpoint)
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
                            asset_client=assets, asset_scopes=gcp_scope,
                            **_in_depth(None, apis, gcp_discover, gcp_in_depth))
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    # Cloud Asset Inventory accepts only the cloud-platform scope (its role still grants
    # read-only permissions: `residency policies iam gcp`)
    scopes = [CLOUD_PLATFORM_SCOPE] if use_assets or gcp_discover or gcp_in_depth \
        else [READ_ONLY_SCOPE]
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
                        asset_scopes=gcp_scope,
                        **_in_depth(credentials, apis, gcp_discover, gcp_in_depth))


def _api_endpoints(values: tuple[str, ...]) -> dict[str, str]:
    from residency.collectors.gcp_services import ENDPOINTS

    out: dict[str, str] = {}
    for value in values:
        api, sep, url = value.partition("=")
        if not sep or api not in ENDPOINTS or not url:
            raise click.BadParameter(f"{value!r}: expected API=URL with API one of "
                                     f"{', '.join(ENDPOINTS)}", param_hint="--gcp-api-endpoint")
        out[api] = url if "://" in url else f"http://{url}"
    return out


def _in_depth(credentials: Any, apis: dict[str, str], discover: tuple[str, ...],
              in_depth: bool) -> dict[str, Any]:
    """The collector's REST reader and Resource Manager clients; anonymous credentials for
    the APIs given a local endpoint, the caller's for the rest."""
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession

    from residency.collectors.gcp_services import GcpRest

    kwargs: dict[str, Any] = {}
    if in_depth:
        local = {k: v for k, v in apis.items() if k != "cloudresourcemanager"}
        creds = AnonymousCredentials() if credentials is None or local else credentials  # type: ignore[no-untyped-call]
        kwargs["rest"] = GcpRest(AuthorizedSession(creds), local)  # type: ignore[no-untyped-call]
    if discover:
        try:
            from google.api_core.client_options import ClientOptions
            from google.cloud import resourcemanager_v3
        except ImportError:
            raise CollectorError("--gcp-discover needs google-cloud-resource-manager: "
                                 "pip install 'residency[gcp]'") from None
        endpoint = apis.get("cloudresourcemanager")
        rm_creds = AnonymousCredentials() if endpoint or credentials is None else credentials  # type: ignore[no-untyped-call]
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None

        def clients() -> tuple[Any, Any]:
            return (resourcemanager_v3.ProjectsClient(credentials=rm_creds, transport="rest",
                                                      client_options=options),
                    resourcemanager_v3.FoldersClient(credentials=rm_creds, transport="rest",
                                                     client_options=options))

        kwargs["resource_manager"] = clients
        kwargs["discover"] = discover
    return kwargs
