"""The one exit-code boundary: 0/1/2/3, one line, redacted, never a traceback."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency.cli.main import cli
from residency.redact import RedactingFilter, redact

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "examples" / "quickstart" / "residency.yaml")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - a canary, not a secret
KEY_ID = "ASIAQWERTYUIOPASDFGH"


def _boom(*_a: object, **_k: object) -> None:
    raise RuntimeError(f"parser choked on <SecretAccessKey>{SECRET}</SecretAccessKey> {KEY_ID}")


def test_an_internal_error_is_exit_3_one_redacted_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("residency.policy.engine.Engine.run", _boom)
    result = CliRunner().invoke(cli, ["check", "--map", QUICKSTART])
    assert result.exit_code == 3, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "internal error: RuntimeError" in err and "--debug" in err
    assert SECRET not in err and KEY_ID not in err and "[REDACTED]" in err


def test_debug_prints_the_traceback_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("residency.policy.engine.Engine.run", _boom)
    result = CliRunner().invoke(cli, ["--debug", "check", "--map", QUICKSTART])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "_boom" in result.stderr
    assert SECRET not in result.stderr and KEY_ID not in result.stderr


def test_findings_stay_exit_1() -> None:
    result = CliRunner().invoke(cli, ["check", "--map", QUICKSTART, "--as-of", "2026-11-30"])
    assert result.exit_code == 1


@pytest.mark.parametrize("module", ["sqlalchemy", "jinja2"])
def test_a_missing_extra_names_the_extra(tmp_path: Path, module: str) -> None:
    """Run as a real process with the module made unimportable, as on a bare install."""
    args = (["history", "--db", str(tmp_path / "h.db")] if module == "sqlalchemy"
            else ["report", "html", "--map", QUICKSTART, "-o", str(tmp_path / "r.html")])
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from residency.cli.main import main\n"
            f"sys.argv = ['residency', *{args!r}]\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"pip install 'residency[{'history' if module == 'sqlalchemy' else 'reports'}]'" in err


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2026-02-30", "tomorrow"])
@pytest.mark.parametrize("command", [["check"], ["report", "tia", "--all"], ["report", "html"],
                                     ["report", "register"]])
def test_as_of_out_of_range_is_a_usage_error(tmp_path: Path, command: list[str],
                                             value: str) -> None:
    out = ["-o", str(tmp_path / "out")] if command[0] == "report" else []
    result = CliRunner().invoke(cli, [*command, "--map", QUICKSTART, "--as-of", value, *out])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "--as-of" in result.stderr


def test_a_malformed_database_url_is_exit_2_without_its_password() -> None:
    result = CliRunner().invoke(cli, ["history", "--db", "postgresql://u:hunter2@db:54x32/r"])
    assert result.exit_code == 2
    assert "not a database URL" in result.stderr and "hunter2" not in result.stderr


def test_log_records_are_redacted_tracebacks_included() -> None:
    record = logging.LogRecord("botocore", logging.ERROR, __file__, 1, "answer %s", (SECRET,),
                               None)
    try:
        _boom()
    except RuntimeError:
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text and KEY_ID not in text and "RuntimeError" in text


@pytest.mark.parametrize(("text", "secret"), [
    (f'{{"Credentials": {{"SecretAccessKey": "{SECRET}"}}}}', SECRET),
    (f"aws_secret_access_key = {SECRET}", SECRET),
    ("postgresql://residency:s3cr3t-pw@127.0.0.1/db", "s3cr3t-pw"),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    ("https://x.blob.core.windows.net/c?sv=2022&sig=AbCdEf0123456789%2B%3D", "AbCdEf0123456789"),
    (f"<SessionToken>{'F' * 300}", "F" * 300),
])
def test_redact_removes_each_secret_shape(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "arn:aws:s3:::acme-tokens-bucket in eu-west-1: AccessDenied (HTTP 403)"
    assert redact(text) == text
