"""Post-processing that fails closed, end to end: waivers, baselines, `--fail-on-new`.

Waiver expiry is judged on the real date, so the dates here are relative to today.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from residency.cli.main import cli
from residency.demo.fake_gcs import FakeGcs, bucket, forbidden

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "plan" / "fixtures"
MAP = str(FIXTURES / "map.yaml")
CLOUD_MAP = str(ROOT / "collectors" / "data" / "cloud_map.yaml")
TODAY = dt.date.today()
BASE = {"owner": "dpo@acme.example", "reference": "SCC-2024-17 / TIA-88", "reason": "approved"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _days(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


def _waivers(tmp_path: Path, *entries: dict[str, object], **top: object) -> str:
    path = tmp_path / "waivers.yaml"
    path.write_text(json.dumps({"version": 1, **top,
                                "waivers": [{**BASE, **e} for e in entries]}))
    return str(path)


def gate(plan: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = run("gate", str(FIXTURES / plan), "--map", MAP, "--format", "json", *args)
    return code, (json.loads(out)["findings"] if out else []), err


BRGRS = {"id": "brgrs", "rule": "RES-L002", "resource": "azurerm_storage_account.brgrs*"}


def test_as_of_in_the_past_does_not_revive_an_expired_waiver(tmp_path: Path) -> None:
    waivers = _waivers(tmp_path, {**BRGRS, "expires": _days(-1)})
    for as_of in ("2020-01-01", TODAY.isoformat()):
        code, got, _ = gate("azure_grs.json", "--as-of", as_of, "--waivers", waivers)
        assert code == 1
        assert {f["subject"] for f in got if f["rule"] == "RES-W001"} == {"brgrs"}
        assert not any(f["waived"] for f in got if f["rule"] == "RES-L002")


def test_a_waiver_beyond_its_maximum_life_is_not_applied(tmp_path: Path) -> None:
    code, got, _ = gate("azure_grs.json", "--waivers",
                        _waivers(tmp_path, {**BRGRS, "expires": _days(400)}))
    assert code == 1
    (w003,) = [f for f in got if f["rule"] == "RES-W003"]
    assert w003["subject"] == "brgrs" and "365 days" in w003["message"]
    assert not any(f["waived"] for f in got if f["rule"] == "RES-L002")
    code, got, _ = gate("azure_grs.json", "--waivers", _waivers(
        tmp_path, {**BRGRS, "expires": _days(400)}, max_life_days=450))
    assert code == 0 and not [f for f in got if f["rule"] == "RES-W003"]


def test_a_wildcard_waiver_does_not_silence_unknown_locations(tmp_path: Path) -> None:
    catch_all = {"id": "all", "rule": "*", "resource": "*", "expires": _days(30)}
    code, got, _ = gate("unknowns.json", "--waivers", _waivers(tmp_path, catch_all))
    l001 = [f for f in got if f["rule"] == "RES-L001"]
    assert l001 and not any(f["waived"] for f in l001) and code == 1
    assert [f["subject"] for f in got if f["rule"] == "RES-W003"] == ["all"]
    code, got, _ = gate("unknowns.json", "--waivers", _waivers(
        tmp_path, {**catch_all, "allow_fail_closed": True}))
    assert all(f["waived"] for f in got if f["rule"] == "RES-L001")
    assert not [f for f in got if f["rule"] == "RES-W003"]


@pytest.mark.parametrize(
    ("entries", "text"),
    [
        (({**BRGRS, "rule": "RES-L02", "expires": "2027-01-01"},),
         "waivers[0](id=brgrs).rule: Value error, unknown rule 'RES-L02'; did you mean 'RES-L002'?"),
        (({**BRGRS, "expires": "2027-01-01"}, {**BRGRS, "expires": "2027-02-01"}),
         "waivers[1].id: duplicate id 'brgrs'"),
    ],
)
def test_bad_waivers_exit_2_with_the_file_and_key(tmp_path: Path,
                                                  entries: tuple[dict[str, object], ...],
                                                  text: str) -> None:
    code, got, err = gate("azure_grs.json", "--waivers", _waivers(tmp_path, *entries))
    assert code == 2 and not got and err.count("\n") == 1
    assert "waivers.yaml" in err and text in err


def test_an_old_format_baseline_matches_nothing_and_warns(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert gate("aws_modules.json", "--write-baseline", str(baseline))[0] == 1
    code, got, err = gate("aws_modules.json", "--baseline", str(baseline))
    assert code == 0 and got and all(f["waived"] for f in got) and "warning" not in err
    old = [hashlib.sha256("|".join([f["rule"], f["subject_kind"], f["subject"],
                                    f["regime"] or "", ",".join(f["countries"])]).encode())
           .hexdigest()[:16] for f in got]  # what the first baselines held
    baseline.write_text(json.dumps({"residency_baseline": 1, "findings": old,
                                    "transfers": []}))
    code, got, err = gate("aws_modules.json", "--baseline", str(baseline))
    assert code == 1 and not any(f["waived"] for f in got)
    assert "residency: warning:" in err and "old fingerprint" in err and "--write-baseline" in err


# ---------------------------------------------------------------------- scan --fail-on-new
@pytest.fixture
def fake_gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGcs]:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    server = FakeGcs(projects={"p1": [bucket("eu-customers", "EU", "multi-region",
                                             labels={"data-classification": "customer-pii"})]},
                     errors={"p2": forbidden("p2")}).start()
    yield server
    server.stop()


def test_a_persistent_coverage_gap_fails_fail_on_new_every_night(fake_gcs: FakeGcs,
                                                                 tmp_path: Path) -> None:
    args = ["scan", "--gcp", "p1", "--gcp", "p2", "--gcp-endpoint", fake_gcs.url, "--map",
            CLOUD_MAP, "--db", f"sqlite:///{tmp_path / 'h.db'}", "--fail-on-new"]
    for night in (1, 2):
        code, _, err = run(*args)
        assert code == 1, (night, err)
        assert "--fail-on-new: RES-S001 gcp:project p2 counts whether new or not" in err
