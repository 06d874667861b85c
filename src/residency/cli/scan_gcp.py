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


def gcp_options(func: F) -> F:
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
    pack: PolicyPack, *, gcp: tuple[str, ...] = (), gcp_endpoint: str | None = None, **_: Any
) -> Collector | None:
    """None unless --gcp was given; credentials are checked here, before any scanning."""
    if not gcp:
        return None
    try:
        from google.cloud import storage

        from residency.collectors.gcp import GcpCollector
    except ImportError:
        raise CollectorError(
            "--gcp needs google-cloud-storage: pip install 'residency[gcp]'"
        ) from None
    endpoint = gcp_endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
    if endpoint:
        from residency.collectors.gcp import emulator_client_factory

        return GcpCollector(emulator_client_factory(endpoint), gcp)
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=[READ_ONLY_SCOPE])
    except DefaultCredentialsError:
        raise CollectorError(
            "--gcp: no Google credentials found; run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS (role: `residency policies iam gcp`)"
        ) from None

    def factory(project: str) -> Any:
        return storage.Client(project=project, credentials=credentials)

    return GcpCollector(factory, gcp)
