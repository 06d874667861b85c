"""Credential canaries: keys planted where a scan meets them never leave the process.

Fake but realistic keys (an `ASIA…` key id, a 40-character secret, a long session token) are
planted in the environment, in a shared credentials file, in answers that fail (a cut
AssumeRole answer holding an assumed role's keys, an error message that echoes the caller's
keys). `residency scan --aws` then runs through the real CLI against moto behind the fault
proxy with every output format, `--inventory-out`, `--record` into a SQLite history and
(in a child process) DEBUG logging through the redacting filter. No planted string may
appear in stdout, stderr, a report, the inventory or any byte of the history database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from residency.cli.main import cli
from residency.formats import FORMATS

pytest.importorskip("boto3")

MAP = Path(__file__).parent / "data" / "aws_map.yaml"
REGIONS = ("eu-west-1", "us-east-1")


def _token(tag: str) -> str:
    """A session-token-shaped string (base64 alphabet, a few hundred characters)."""
    return "IQoJb3JpZ2luX2VjE" + (tag * 40)[:300] + "Zx9/Qw=="


# caller keys in the environment
ENV_KEY = "ASIAZ7CANARYENV4K2QX"
ENV_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYENVCANARY1"  # noqa: S105 - a canary
ENV_TOKEN = _token("EnvCanaryT0ken+")
# keys in a shared credentials file
FILE_KEY = "AKIAQ3CANARYFILE9Z7W"
FILE_SECRET = "f1LeCanAryS3cr3t/Kq8dPzXvB2nLmR4tYw6uHjE"  # noqa: S105 - a canary
FILE_TOKEN = _token("FileCanaryT0ken+")
# an assumed role's keys, only ever inside a cut AssumeRole answer
STS_KEY = "ASIAX4CANARYSTS8M3VB"
STS_SECRET = "sTsCanAryS3cr3t/9aQ+ZrT7mWvK2pLxN5bHdJ0e"  # noqa: S105 - a canary
STS_TOKEN = _token("StsCanaryT0ken+")
PLANTED = (ENV_KEY, ENV_SECRET, ENV_TOKEN, FILE_KEY, FILE_SECRET, FILE_TOKEN,
           STS_KEY, STS_SECRET, STS_TOKEN)
# a middle slice of each: a mask that keeps a prefix or a suffix still leaks
FRAGMENTS = tuple(p[len(p) // 2 - 6: len(p) // 2 + 6] for p in PLANTED)


def assume_role_cut(_body: bytes) -> bytes:
    """AWS's AssumeRole answer holding the canary keys, cut before its end."""
    whole = (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<AssumeRoleResult><AssumedRoleUser><AssumedRoleId>AROA3XFRBF535PLBIFPI4:residency"
        "</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/ResidencyReadOnly/"
        "residency-scan</Arn></AssumedRoleUser><Credentials>"
        f"<AccessKeyId>{STS_KEY}</AccessKeyId><SecretAccessKey>{STS_SECRET}</SecretAccessKey>"
        f"<SessionToken>{STS_TOKEN}</SessionToken><Expiration>2030-01-01T00:00:00Z"
        "</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>"
        "c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    )
    return whole[: whole.index("</SessionToken>") + 20].encode()


def echoing_error(caller: tuple[str, str, str]) -> bytes:
    """A DynamoDB error whose message echoes the caller's keys (a misbehaving proxy)."""
    key, secret, token = caller
    return json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
        "message": f"User with key {key} and secret {secret} (session {token}) is not "
                   "authorized to perform: dynamodb:ListTables",
    }).encode()


def plant_faults(proxy: Any, caller: tuple[str, str, str]) -> None:
    proxy.add("AssumeRole", "rewrite", rewrite=assume_role_cut)
    proxy.add("ListTables", "status", status=400, body=echoing_error(caller),
              region="eu-west-1")


def canary_env(monkeypatch: pytest.MonkeyPatch, home: Path, *, env_keys: bool) -> None:
    """Caller keys in the environment (or none), a credentials file with its own."""
    creds = home / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {FILE_KEY}\naws_secret_access_key = {FILE_SECRET}\n"
        f"aws_session_token = {FILE_TOKEN}\n\n"
        f"[canary]\naws_access_key_id = {FILE_KEY}\naws_secret_access_key = {FILE_SECRET}\n"
        f"aws_session_token = {FILE_TOKEN}\n")
    config = home / "config"
    config.write_text("[default]\nregion = us-east-1\n\n[profile canary]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if env_keys:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
        monkeypatch.setenv("AWS_SESSION_TOKEN", ENV_TOKEN)
    else:
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(var, raising=False)


def scan_args(url: str, out: Path, fmt: str, *extra: str) -> list[str]:
    regions = [arg for r in REGIONS for arg in ("--aws-region", r)]
    return ["scan", "--aws", "--aws-endpoint", url, *regions, "--map", str(MAP),
            "--format", fmt, "--output", str(out / f"report.{fmt}"),
            "--inventory-out", str(out / f"inventory-{fmt}.json"),
            "--record", "--db", f"sqlite:///{out / 'history.db'}", "--as-of", "2026-06-01",
            *extra]


def assert_clean(where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in PLANTED + FRAGMENTS:
        assert secret.encode() not in data, f"{secret[:8]}… leaked into {where}"


def assert_outputs_clean(out: Path) -> None:
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "history.db" for p in files)
    for path in files:
        assert_clean(str(path.name), path.read_bytes())
    with sqlite3.connect(out / "history.db") as db:  # every row of every table, as text
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from sqlite
                assert_clean(f"history table {table}", repr(row))


def check_report(out: Path, caller_account_gap: bool = True) -> None:
    """The faults were met (the canaries were really in play) and became gaps."""
    doc = json.loads((out / "report.json").read_text())
    gaps = {g["scope"]: g["reason"] for g in doc["coverage_gaps"]}
    member_gaps = [r for s, r in gaps.items() if s.startswith("account ") and "/" not in s]
    assert member_gaps and all("MalformedAnswerError: sts AssumeRole" in r for r in member_gaps)
    if caller_account_gap:
        echoed = gaps["account 123456789012/eu-west-1 dynamodb"]
        assert echoed.startswith("AccessDeniedException:") and "[redacted]" in echoed.lower()


@pytest.mark.parametrize("env_keys", [True, False], ids=["env-keys", "file-keys"])
def test_no_canary_in_any_output_format_or_history(
    aws_estate: Any, faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    env_keys: bool,
) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    canary_env(monkeypatch, home, env_keys=env_keys)
    caller = (ENV_KEY, ENV_SECRET, ENV_TOKEN) if env_keys else (FILE_KEY, FILE_SECRET,
                                                                FILE_TOKEN)
    plant_faults(faults, caller)
    for fmt in FORMATS:
        result = CliRunner().invoke(cli, scan_args(faults.url, out, fmt))
        assert result.exit_code == 1, result.output  # gaps are findings
        assert_clean(f"stdout ({fmt})", result.stdout)
        assert_clean(f"stderr ({fmt})", result.stderr)
    check_report(out)
    assert_outputs_clean(out)


def test_no_canary_with_a_named_profile(
    aws_estate: Any, faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--aws-profile` reads the credentials file itself (no organization, no AssumeRole)."""
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    canary_env(monkeypatch, home, env_keys=False)
    plant_faults(faults, (FILE_KEY, FILE_SECRET, FILE_TOKEN))
    result = CliRunner().invoke(cli, scan_args(faults.url, out, "json", "--aws-profile",
                                               "canary"))
    assert result.exit_code == 1, result.output
    doc = json.loads((out / "report.json").read_text())
    gaps = {g["scope"]: g["reason"] for g in doc["coverage_gaps"]}
    assert "profile canary" not in gaps  # the profile's account was entered
    assert "[redacted]" in gaps["account 123456789012/eu-west-1 dynamodb"].lower()
    assert_clean("stdout", result.stdout)
    assert_clean("stderr", result.stderr)
    assert_outputs_clean(out)


LAUNCHER = """
import logging, sys
from residency.redact import install_logging_filter
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format="%(levelname)s %(name)s %(message)s")
install_logging_filter()
from residency.cli.main import main
main(sys.argv[1:])
"""


def test_no_canary_in_debug_logs_of_a_real_process(
    aws_estate: Any, faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child process with every library logging at DEBUG (botocore logs request headers
    and answer bodies) through residency's redacting filter."""
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    canary_env(monkeypatch, home, env_keys=True)
    plant_faults(faults, (ENV_KEY, ENV_SECRET, ENV_TOKEN))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *scan_args(faults.url, out, "json")],
        capture_output=True, env=env, cwd=out, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    assert b"DEBUG botocore" in proc.stderr  # the logs really were on
    (tmp_path / "stderr.log").write_bytes(proc.stderr)  # to read when this fails
    assert_clean("stdout", proc.stdout)
    assert_clean("stderr (DEBUG logs)", proc.stderr)
    check_report(out)
    assert_outputs_clean(out)
