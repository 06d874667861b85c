"""What every vendor module provides: one call that reads where a tenant's data lives.

A vendor module knows its API (host, path, auth header, the field holding the location code)
and nothing else; the collector turns each `Observation` into a system through the vendor's
cited table, and each exception into a coverage gap.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from residency.collectors.saas._http import HttpClient


@dataclass(frozen=True, slots=True)
class Observation:
    """One tenant (or workspace) as the vendor reported it."""

    code: str  # the location code exactly as the vendor spells it ("" when it gave none)
    account: str  # the vendor's own id for the tenant (portal, org, app id)
    name: str
    key: str = ""  # a sub-id when one tenant holds several stores (Atlassian workspaces)
    tags: tuple[tuple[str, str], ...] = ()
    unknown: str | None = None  # the vendor answered, but its answer is not a location


class Vendor(ABC):
    """A SaaS vendor whose API reports a tenant's location."""

    id: ClassVar[str]
    title: ClassVar[str]
    env_var: ClassVar[str]
    signal: ClassVar[str]  # "GET <path> → <field>", for the system's tags and the docs

    @abstractmethod
    def observe(self, http: HttpClient, tenant: str, token: str,
                endpoint: str | None) -> list[Observation]:
        """Read the tenant; `endpoint` replaces the vendor's base URL (a local test peer).
        Raises on any failure: the collector makes it the tenant's gap."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def text(value: object) -> str:
    """A scalar field of an answer as text; a missing field is ""; an object is a shape error."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise TypeError(f"expected a string, got a JSON {type(value).__name__}")
    return str(value)
