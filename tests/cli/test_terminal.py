"""-q and -v, colour and width on terminals and pipes, shell completion."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from residency.formats.text import DEFAULT_WIDTH, terminal_style

from .conftest import AS_OF, BIN, FIXTURES, MAP, ROOT, child_env, run

QUICKSTART = str(ROOT / "examples" / "quickstart" / "residency.yaml")
ESC = "\x1b["


def old_baseline(tmp_path: Path) -> str:
    """A baseline in the first fingerprint scheme: loading it warns."""
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"residency_baseline": 1, "findings": ["0" * 16],
                                "transfers": []}))
    return str(path)


def test_quiet_hides_the_warning_not_the_result(tmp_path: Path) -> None:
    args = ["gate", str(FIXTURES / "aws_modules.json"), "--map", str(MAP), "--as-of", AS_OF,
            "--baseline", old_baseline(tmp_path)]
    code, out, err = run(*args)
    assert "residency: warning:" in err and "old fingerprint" in err
    q_code, q_out, q_err = run("-q", *args)
    assert (q_code, q_out, q_err) == (code, out, "")
    assert run(*args, env={"RESIDENCY_QUIET": "1"})[2] == ""


def test_quiet_keeps_errors() -> None:
    code, _, err = run("-q", "check", "--map", "missing.yaml")
    assert code == 2 and "missing.yaml" in err


def test_vv_logs_debug_through_the_redacting_handler(tmp_path: Path) -> None:
    secret = "hunter2-s3cr3t"  # noqa: S105 - a fake credential the log must not show
    env = child_env(RESIDENCY_DB=f"postgresql://scanner:{secret}@db.internal/residency")
    proc = subprocess.run([str(BIN), "-vv", "config", "history"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    debug = [line for line in proc.stderr.splitlines() if "DEBUG" in line]
    assert any("RESIDENCY_DB" in line and "[REDACTED]" in line for line in debug), proc.stderr
    assert all(line.startswith("residency: DEBUG: ") for line in debug)
    assert secret not in proc.stderr and secret not in proc.stdout
    quiet = subprocess.run([str(BIN), "config", "history"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)
    assert quiet.stderr == ""  # no -v: no log lines


def test_v_logs_info_not_debug(tmp_path: Path) -> None:
    (tmp_path / ".residency.yaml").write_text("fail_on: warning\n")
    proc = subprocess.run([str(BIN), "-v", "config", "gate"], env=child_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert f"residency: INFO: residency.cli.settings: settings from {tmp_path}" in proc.stderr
    assert "DEBUG" not in proc.stderr


def on_a_terminal(columns: int, **env: str) -> str:
    """`residency check` with stdout on a pseudo-terminal `columns` wide; what it printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    with subprocess.Popen([str(BIN), "check", "--map", QUICKSTART, "--as-of", AS_OF],
                          stdout=slave, stderr=subprocess.PIPE,
                          env=child_env(TERM="xterm", **env)) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 1
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_never_with_no_color() -> None:
    assert ESC in on_a_terminal(120)
    plain = on_a_terminal(120, NO_COLOR="1")
    assert ESC not in plain and "RES-L002" in plain
    assert ESC not in on_a_terminal(120, NO_COLOR="1", FORCE_COLOR="1")


def test_width_is_the_terminal_s_or_columns() -> None:
    assert max(map(len, on_a_terminal(100, NO_COLOR="1").splitlines())) == 100
    assert max(map(len, on_a_terminal(100, NO_COLOR="1", COLUMNS="90").splitlines())) == 90


def test_a_pipe_gets_no_colour_and_140_columns_whatever_columns_says() -> None:
    args = ["check", "--map", QUICKSTART, "--as-of", AS_OF]
    out = run(*args)[1]
    assert ESC not in out and max(map(len, out.splitlines())) == DEFAULT_WIDTH
    assert run(*args, env={"COLUMNS": "80"})[1] == out  # e.g. leaked by a parent's readline
    assert ESC in run(*args, env={"FORCE_COLOR": "1"})[1]


def test_a_file_is_never_coloured(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    run("check", "--map", QUICKSTART, "--as-of", AS_OF, "-o", str(out),
        env={"FORCE_COLOR": ""})
    assert ESC not in out.read_text()


@pytest.mark.parametrize(("tty", "env", "expected"), [
    (False, {}, (DEFAULT_WIDTH, False)),
    (False, {"COLUMNS": "77"}, (DEFAULT_WIDTH, False)),
    (True, {"COLUMNS": "77"}, (77, True)),
    (True, {"COLUMNS": "77", "NO_COLOR": "1"}, (77, False)),
    (True, {"NO_COLOR": "", "TERM": "dumb"}, (DEFAULT_WIDTH, False)),  # empty NO_COLOR: unset
    (False, {"FORCE_COLOR": "1", "COLUMNS": "zero"}, (DEFAULT_WIDTH, True)),
])
def test_terminal_style(tty: bool, env: dict[str, str], expected: tuple[int, bool]) -> None:
    class Stream:
        def isatty(self) -> bool:
            return tty

        def fileno(self) -> int:
            raise OSError("not a real terminal")

    assert terminal_style(Stream(), env) == expected  # type: ignore[arg-type]


def test_shell_completion_script_and_answers() -> None:
    script = subprocess.run([str(BIN)], env=child_env(_RESIDENCY_COMPLETE="bash_source"),
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "_residency_completion()" in script and "complete -o nosort -F" in script
    answer = subprocess.run(
        [str(BIN)], capture_output=True, text=True, timeout=60, check=True,
        env=child_env(_RESIDENCY_COMPLETE="bash_complete", COMP_WORDS="residency con",
                      COMP_CWORD="1")).stdout
    assert "plain,config" in answer.splitlines()
    for shell in ("zsh", "fish"):
        assert subprocess.run([str(BIN)], env=child_env(_RESIDENCY_COMPLETE=f"{shell}_source"),
                              capture_output=True, text=True, timeout=60,
                              check=True).stdout.strip()
