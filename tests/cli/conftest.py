from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "plan" / "fixtures"
WARNINGS_ONLY = str(FIXTURES / "unclassified.json")  # gate: warnings, no error
MAP = FIXTURES / "map.yaml"
AS_OF = "2026-11-30"
BIN = Path(sys.executable).parent / "residency"
TERMINAL_VARS = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No setting from the developer's shell: every RESIDENCY_* and terminal variable unset."""
    for name in list(os.environ):
        if name.startswith("RESIDENCY_") or name in TERMINAL_VARS:
            monkeypatch.delenv(name)
    yield


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a `residency` subprocess: this one, cleaned, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RESIDENCY_") and k not in TERMINAL_VARS}
    env["PATH"] = f"{BIN.parent}{os.pathsep}{env.get('PATH', '')}"
    return env | extra
