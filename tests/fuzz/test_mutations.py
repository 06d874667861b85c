"""Issue 11: thousands of mutated inputs of every kind give 0 tracebacks and 0 wrong exits.

Each target starts from real seed documents of the repository (maps, the policy pack,
Terraform plans, a waivers file, a baseline written by `--write-baseline`), mutates one of
them (see `mutate.py`), runs the CLI in-process and checks the exit-code contract (see
`harness.py`). Derandomized with a fixed budget, so a CI run is repeatable; set
RESIDENCY_FUZZ_EXAMPLES=5000 for a longer local run.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from . import mutate
from .harness import ROOT, check_contract, check_output_file, fuzz_settings, invoke

AS_OF = "2026-11-30"
FIXTURES = ROOT / "tests" / "plan" / "fixtures"
PLAN_MAP = FIXTURES / "map.yaml"
QUICKSTART = ROOT / "examples" / "quickstart" / "residency.yaml"
SERVICEDESK = ROOT / "examples" / "servicedesk" / "residency.yaml"
POLICIES = ROOT / "policies"
FORMATS = ("json", "sarif", "junit", "text")


@pytest.fixture(scope="module", autouse=True)
def _shipped_pack_loads() -> None:
    """Every target runs on the shipped pack: if it does not load, say so once, plainly
    (other failures would only be this one, repeated)."""
    run = invoke("seeds", ["policies", "validate"])
    assert run.code == 0, f"the shipped policy pack does not load: {run.stderr.strip()}"


def _strategy(text: str, syntax: str) -> st.SearchStrategy[mutate.Mutant]:
    return mutate.mutations(text, syntax)


def _as_json(yaml_path: Path) -> str:
    return json.dumps(mutate.load_seed(yaml_path.read_text(), "yaml"), indent=2)


def _pick(seeds: dict[str, tuple[str, str]]) -> st.SearchStrategy[tuple[str, mutate.Mutant]]:
    """(seed name, mutant) over several seeds; each seed's strategy is built once."""
    built = {name: _strategy(text, syntax) for name, (text, syntax) in seeds.items()}
    return st.sampled_from(sorted(built)).flatmap(
        lambda name: st.tuples(st.just(name), built[name]))


# ------------------------------------------------------------------------- maps
MAP_SEEDS = {
    "quickstart.yaml": (QUICKSTART.read_text(), "yaml"),
    "quickstart.json": (_as_json(QUICKSTART), "json"),
    "servicedesk.yaml": (SERVICEDESK.read_text(), "yaml"),
    "servicedesk.json": (_as_json(SERVICEDESK), "json"),
}


@fuzz_settings(700)
@given(case=_pick(MAP_SEEDS), fmt=st.sampled_from(FORMATS), to_file=st.booleans())
def test_mutated_map(case: tuple[str, mutate.Mutant], fmt: str, to_file: bool) -> None:
    seed, mutant = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"residency{Path(seed).suffix}"
        path.write_bytes(mutant.data)
        out = Path(tmp) / f"report.{fmt}"
        args = ["check", "--map", str(path), "--format", fmt, "--as-of", AS_OF]
        run = invoke("map", [*args, "-o", str(out)] if to_file else args)
        check_contract(run, path, f"{seed}: {mutant.description}")
        if to_file:
            check_output_file(run, out, fmt)
        elif run.code != 2 and fmt in ("json", "sarif"):
            json.loads(run.stdout)


# ------------------------------------------------------------------------- policy pack
PACK_FILES = sorted(p.relative_to(POLICIES).as_posix() for p in POLICIES.rglob("*.yaml")
                    if "iam" not in p.parts)
PACK_SEEDS = {name: ((POLICIES / name).read_text(), "yaml") for name in PACK_FILES}


@fuzz_settings(350)
@given(case=_pick(PACK_SEEDS))
def test_mutated_policy_pack(case: tuple[str, mutate.Mutant]) -> None:
    name, mutant = case
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "policies"
        shutil.copytree(POLICIES, pack)
        mutated = pack / name
        mutated.write_bytes(mutant.data)
        what = f"policies/{name}: {mutant.description}"
        # a reference check may rightly name another file of the pack than the mutated one
        pack_files = [pack / n for n in PACK_FILES]
        run = invoke("policies", ["policies", "validate", "--policies", str(pack)])
        check_contract(run, [mutated, *pack_files], what)
        assert run.code in (0, 2), f"validate exits 0 or 2, not {run.code}: {what}"
        run = invoke("policies", ["check", "--policies", str(pack), "--map", str(QUICKSTART),
                                  "--as-of", AS_OF, "--format", "json"])
        # a country or category the pack no longer knows is rightly an error in the map
        check_contract(run, [mutated, *pack_files, QUICKSTART], what)
        if run.code != 2:
            json.loads(run.stdout)


# ------------------------------------------------------------------------- plans
PLAN_FILES = sorted(p.name for p in FIXTURES.glob("*.json"))
BYTE_ONLY = ("malformed.json", "wrong_version.json")  # rejected up front: bytes, not structure
PLAN_SEEDS = {n: ((FIXTURES / n).read_text(), "json") for n in PLAN_FILES if n not in BYTE_ONLY}
_plans = _pick(PLAN_SEEDS)
_bytes_only = st.sampled_from(BYTE_ONLY).flatmap(
    lambda n: mutate.raw_bytes((FIXTURES / n).read_bytes()).map(lambda m: (n, m)))
PLAN_CASES = st.sampled_from([True] * 7 + [False]).flatmap(  # 1 in 8 byte-only seeds
    lambda structured: _plans if structured else _bytes_only)


@fuzz_settings(600)
@given(case=PLAN_CASES, fmt=st.sampled_from(FORMATS), write_baseline=st.booleans())
def test_mutated_plan(case: tuple[str, mutate.Mutant], fmt: str, write_baseline: bool) -> None:
    name, mutant = case
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / name
        plan.write_bytes(mutant.data)
        baseline = Path(tmp) / "baseline.json"
        args = ["gate", str(plan), "--map", str(PLAN_MAP), "--as-of", AS_OF, "--format", fmt]
        if write_baseline:
            args += ["--write-baseline", str(baseline)]
        run = invoke("plan", args)
        check_contract(run, plan, f"{name}: {mutant.description}")
        if write_baseline:
            check_output_file(run, baseline, "json")
        if run.code != 2 and fmt in ("json", "sarif"):
            json.loads(run.stdout)


# ------------------------------------------------------------------------- waivers
WAIVER_PLAN = FIXTURES / "azure_grs.json"


def _waiver_seed() -> dict[str, object]:
    soon = (dt.date.today() + dt.timedelta(days=180)).isoformat()
    base = {"owner": "dpo@acme.example", "reference": "SCC-2024-17 / TIA-88",
            "reason": "DR copy approved by the DPO"}
    return {
        "version": 1,
        "max_life_days": 365,
        "waivers": [
            {**base, "id": "brgrs", "rule": "RES-L002",
             "resource": "azurerm_storage_account.brgrs*", "expires": soon},
            {**base, "id": "old", "rule": "RES-I001", "resource": "azurerm_resource_group.*",
             "expires": "2026-01-31"},
            {**base, "id": "stale", "rule": "RES-T001", "flow": "nothing-*",
             "expires": soon, "country": ["US", "BR"], "data_category": "contact_details"},
            {**base, "rule": "RES-L001", "resource": "*", "allow_fail_closed": True,
             "expires": soon},
        ],
    }


WAIVER_SEEDS = {
    "waivers.yaml": (yaml.safe_dump(_waiver_seed(), sort_keys=False), "yaml"),
    "waivers.json": (json.dumps(_waiver_seed(), indent=2), "json"),
}


def test_waiver_seed_is_valid() -> None:
    """The seed itself is accepted: the mutations start from a file the gate reads."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, (text, _) in WAIVER_SEEDS.items():
            path = Path(tmp) / name
            path.write_text(text)
            run = invoke("seeds", ["gate", str(WAIVER_PLAN), "--map", str(PLAN_MAP),
                                   "--as-of", AS_OF, "--waivers", str(path), "--format", "json"])
            assert run.code in (0, 1), run.stderr
            assert any(f["waived"] for f in json.loads(run.stdout)["findings"])


@fuzz_settings(400)
@given(case=_pick(WAIVER_SEEDS), fmt=st.sampled_from(FORMATS))
def test_mutated_waivers(case: tuple[str, mutate.Mutant], fmt: str) -> None:
    name, mutant = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(mutant.data)
        run = invoke("waivers", ["gate", str(WAIVER_PLAN), "--map", str(PLAN_MAP),
                                 "--as-of", AS_OF, "--waivers", str(path), "--format", fmt])
        check_contract(run, path, f"{name}: {mutant.description}")
        if run.code != 2 and fmt in ("json", "sarif"):
            json.loads(run.stdout)


# ------------------------------------------------------------------------- baselines
BASELINE_PLAN = FIXTURES / "aws_modules.json"


@functools.cache
def _baseline_seed() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.json"
        run = invoke("seeds", ["gate", str(BASELINE_PLAN), "--map", str(PLAN_MAP),
                               "--as-of", AS_OF, "--write-baseline", str(path)])
        assert run.code == 1 and path.exists(), run.stderr
        return path.read_text()


@st.composite
def _baseline_cases(draw: st.DrawFn) -> mutate.Mutant:
    return draw(mutate.mutations(_baseline_seed(), "json"))


def test_baseline_seed_is_valid() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.json"
        path.write_text(_baseline_seed())
        run = invoke("seeds", ["gate", str(BASELINE_PLAN), "--map", str(PLAN_MAP),
                               "--as-of", AS_OF, "--baseline", str(path), "--format", "json"])
        assert run.code == 0, run.stderr
        assert json.loads(_baseline_seed())["findings"]


@fuzz_settings(350)
@given(mutant=_baseline_cases(), fmt=st.sampled_from(FORMATS))
def test_mutated_baseline(mutant: mutate.Mutant, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.json"
        path.write_bytes(mutant.data)
        run = invoke("baseline", ["gate", str(BASELINE_PLAN), "--map", str(PLAN_MAP),
                                  "--as-of", AS_OF, "--baseline", str(path), "--format", fmt])
        check_contract(run, path, f"baseline.json: {mutant.description}")
        if run.code != 2 and fmt in ("json", "sarif"):
            json.loads(run.stdout)


# ------------------------------------------------------------------------- --as-of
AS_OF_VALUES = ["9999-12-31", "0001-01-01", "garbage", "", " ", "2025-02-30", "2199-12-31",
                "1900-01-01", "1899-12-31", "2200-01-01", "20261130", "2026-11-30T00:00:00",
                "-1", "99999-01-01", "2026-W48-1", "\x00", "２０２６-１１-３０"]
REPORTS = {
    "check": lambda out: ["check", "--format", "json"],
    "tia": lambda out: ["report", "tia", "--all", "-o", str(out / "tia")],
    "html": lambda out: ["report", "html", "-o", str(out / "report.html")],
    "register": lambda out: ["report", "register", "-o", str(out / "register.csv")],
}


@pytest.mark.parametrize("value", AS_OF_VALUES)
@pytest.mark.parametrize("command", sorted(REPORTS))
@pytest.mark.parametrize("datamap", [QUICKSTART, SERVICEDESK], ids=["quickstart", "servicedesk"])
def test_mutated_as_of(value: str, command: str, datamap: Path, tmp_path: Path) -> None:
    args = [*REPORTS[command](tmp_path), "--map", str(datamap), "--as-of", value]
    run = invoke("as-of", args)
    assert "Traceback" not in run.result.output
    assert run.result.exception is None or isinstance(run.result.exception, SystemExit)
    assert run.code in (0, 1, 2), run.stderr
    if run.code == 2:
        # a usage error (click's own format: usage, hint, error line) names the option;
        # nothing was written
        assert "--as-of" in run.stderr, run.stderr
        assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())
        return
    if command == "check":
        json.loads(run.stdout)
    elif command == "html":
        check_output_file(run, tmp_path / "report.html", "html")
    elif command == "register":
        check_output_file(run, tmp_path / "register.csv", "csv")
    else:
        drafts = list((tmp_path / "tia").iterdir())
        assert drafts and all(d.read_text().strip() for d in drafts)
