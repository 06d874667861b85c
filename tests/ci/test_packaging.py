"""What a wheel user gets: metadata, `python -m residency`, the shipped IAM definitions."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from fnmatch import fnmatch

import pytest
import yaml
from click.testing import CliRunner

from residency.cli.main import COMMANDS, cli
from residency.cli.policies import IAM_PROVIDERS, iam_definition

from .conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_metadata() -> None:
    assert PROJECT["license"] == "Apache-2.0"  # an SPDX expression, not the deprecated table
    assert PROJECT["license-files"] == ["LICENSE"]
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]  # PEP 639
    assert {"Homepage", "Repository", "Issues"} <= set(PROJECT["urls"])
    assert all(u.startswith("https://") for u in PROJECT["urls"].values())
    assert any(c.startswith("Programming Language :: Python :: 3.11")
               for c in PROJECT["classifiers"])
    requires = PYPROJECT["build-system"]["requires"]
    assert any(r.startswith("setuptools>=") and int(r.split(">=")[1].split(".")[0]) >= 77
               for r in requires), "SPDX `license` needs setuptools 77"


def test_license_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and text.count("\n") > 170


def test_azure_extra_matches_what_the_code_needs() -> None:
    azure = PROJECT["optional-dependencies"]["azure"]
    assert "azure-mgmt-resource>=26" in azure  # SubscriptionClient moved out in 26
    assert any(r.startswith("azure-mgmt-resource-subscriptions") for r in azure)
    assert "residency[all,demo]" in PROJECT["optional-dependencies"]["dev"]  # .ci/run


def test_package_data_ships_the_iam_definitions() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["residency"]
    for path in (ROOT / "policies" / "iam").iterdir():
        rel = f"_policies/iam/{path.name}"
        assert any(fnmatch(rel, p) for p in patterns), rel


def test_python_dash_m() -> None:
    res = subprocess.run([sys.executable, "-m", "residency", "--version"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.startswith("residency, version ")


@pytest.mark.parametrize("provider", IAM_PROVIDERS)
def test_policies_iam_prints_the_shipped_definition(provider: str) -> None:
    res = CliRunner().invoke(cli, ["policies", "iam", provider])
    assert res.exit_code == 0, res.output
    name, text = iam_definition(provider)
    assert name.startswith(f"{provider}-")
    assert res.output == text == (ROOT / "policies" / "iam" / name).read_text()
    doc = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    assert doc
    named = CliRunner().invoke(cli, ["policies", "iam", provider, "--name"])
    assert named.output == name + "\n"


def test_policies_iam_refuses_unknown_providers() -> None:
    res = CliRunner().invoke(cli, ["policies", "iam", "oracle"])
    assert res.exit_code == 2


def test_new_commands_are_registered() -> None:
    assert COMMANDS["check-files"] == "residency.cli.config:check_files"
    res = CliRunner().invoke(cli, ["--help"])
    assert "check-files" in res.output
