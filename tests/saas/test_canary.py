"""Tokens never leave the process: not in gaps, reports of any format, or the history file,
even when a vendor (or a proxy) echoes the request's credentials in its error answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from residency.collectors.interface import CollectContext
from residency.demo.fake_saas import FakeSaas, freshdesk_account, hubspot_details
from residency.formats import FORMATS, get_formatter
from residency.history.store import Store
from residency.model import DataMap
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

from .conftest import TODAY, Make

CANARY = "pat-na1-CanaryT0k3n-7f3e9b1c-4d2a-4e8f-9a6b-5c0d1e2f3a4b"
FD_CANARY = "fdCanaryKey9Zq7Xw"
FRAGMENTS = (CANARY, CANARY[10:24], FD_CANARY)


def test_canary_never_reaches_output(fake: FakeSaas, make: Make, ctx: CollectContext,
                                     datamap: DataMap, pack: PolicyPack,
                                     tmp_path: Path) -> None:
    fake.hubspot[CANARY] = hubspot_details(1, "eu1")
    fake.errors["hubspot"] = (401, {})
    fake.error_bodies["hubspot"] = (
        b'{"status": "error", "category": "INVALID_AUTHENTICATION", "message": "token '
        + CANARY.encode() + b' is expired; Authorization: Bearer ' + CANARY.encode() + b'"}')
    fake.freshdesk[FD_CANARY] = freshdesk_account(5, "acme", "US")
    fake.errors["freshdesk"] = (403, {})
    fake.error_bodies["freshdesk"] = b'{"code": "access_denied", "message": "key ' + \
        FD_CANARY.encode() + b' lacks admin"}'
    inv = make((("hubspot", "1"), ("freshdesk", "acme")),
               {"hubspot": CANARY, "freshdesk": FD_CANARY}).collect(ctx)
    assert len(inv.gaps) == 2
    report = Engine(pack, EngineOptions(TODAY, today=TODAY)).run(datamap, [inv])
    texts = [repr(inv), *(get_formatter(name).render(report) for name in FORMATS)]
    db = tmp_path / "history.db"
    with Store.open(f"sqlite:///{db}") as store:
        store.record(report, command="scan", scope="scan:saas")
    blob = db.read_bytes()
    for fragment in FRAGMENTS:
        assert all(fragment not in t for t in texts), fragment
        assert fragment.encode() not in blob, fragment
    assert any("credentials refused (HTTP 401)" in g.reason for g in inv.gaps)


def test_cli_options_build_the_collector_and_name_missing_credentials(
        monkeypatch: pytest.MonkeyPatch, pack: PolicyPack, tmp_path: Path) -> None:
    import click

    from residency.cli.scan_saas import build_saas, saas_options
    from residency.errors import CollectorError

    built: list[object] = []

    @click.command()
    @saas_options
    def probe(**opts: object) -> None:
        built.append(build_saas(pack, **opts))  # type: ignore[arg-type]

    monkeypatch.delenv("RESIDENCY_HUBSPOT_TOKEN", raising=False)
    res = CliRunner().invoke(probe, ["--saas", "hubspot=9"])
    assert isinstance(res.exception, CollectorError)
    assert "RESIDENCY_HUBSPOT_TOKEN" in str(res.exception)
    monkeypatch.setenv("RESIDENCY_HUBSPOT_TOKEN", CANARY)
    res = CliRunner().invoke(probe, ["--saas", "hubspot=9"])
    assert res.exit_code == 0 and built[-1] is not None and CANARY not in res.output
    res = CliRunner().invoke(probe, ["--saas", "zendesk=acme"])
    assert res.exit_code == 2 and "--saas-attested" in res.output
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"secrets: {{hubspot: {{token: {CANARY}}}, bogus_key: 1}}\n")
    res = CliRunner().invoke(probe, ["--saas", "hubspot=9", "--saas-secrets", str(secrets)])
    assert res.exception is not None and CANARY not in str(res.exception)
    assert build_saas(pack) is None
