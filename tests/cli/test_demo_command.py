"""The command `residency demo` tells you to run next is one line and runs as pasted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import child_env, run

pytest.importorskip("moto.server")


def test_the_printed_history_command_is_one_line_and_runs(tmp_path: Path) -> None:
    # longer than the 80 columns a pipe used to get, and with a space a shell would split on
    out = tmp_path / ("a folder with a long name, " * 3).strip(" ,") / "residency-demo"
    code, stdout, stderr = run("-q", "demo", "--output", str(out), "--as-of", "2026-11-30")
    assert code == 1 and stderr == ""  # -q: no progress notes
    (line,) = [line for line in stdout.splitlines() if line.startswith("History:")]
    command = line.removeprefix("History:").strip()
    assert len(command) > 80 and command.startswith("residency history --db ")
    pasted = subprocess.run(["bash", "-c", command], env=child_env(), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert pasted.returncode == 0, pasted.stderr
    rows = [row for row in pasted.stdout.splitlines() if "demo:servicedesk" in row]
    assert len(rows) == 1 and rows[0].split()[0] == "1"
    assert str(out / "report.html") in stdout.splitlines()[-3]
    # the helpdesk tenant whose token was revoked is listed among the coverage gaps
    (gap,) = [row for row in stdout.splitlines() if "tenant 4711" in row]
    assert "hubspot" in gap and "credentials refused (HTTP 401)" in gap
