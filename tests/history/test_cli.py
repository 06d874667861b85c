from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from residency.cli.history import record_if_requested
from residency.cli.main import cli
from residency.history.store import Store
from residency.model import DataMap, Flow, Inventory, Location, Origin, Role, System
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

from .factory import finding, make_report, transfer

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "residency.yaml"


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def two_runs(db_url: str) -> tuple[str, int, int]:
    with Store.open(db_url) as store:
        a = store.record(make_report(transfers=(transfer("f", "US"),)),
                         command="check", scope="check:x")
        b = store.record(make_report(transfers=(transfer("f", "US"), transfer("g", "CN")),
                                     findings=(finding("RES-T001", "g"),)),
                         command="check", scope="check:x")
    return db_url, a, b


def test_history_lists_runs(two_runs: tuple[str, int, int]) -> None:
    db, _a, b = two_runs
    result = _run("history", "--db", db)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("RUN") and lines[1].startswith(str(b)) and "check:x" in lines[2]
    assert len(_run("history", "--db", db, "--limit", "1").output.splitlines()) == 2


def test_diff_defaults_to_last_two_of_a_scope(two_runs: tuple[str, int, int]) -> None:
    db, a, b = two_runs
    result = _run("diff", "--db", db, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert (doc["run_a"]["id"], doc["run_b"]["id"]) == (a, b)
    assert doc["new_third_countries"] == {"contact_details": ["CN"]}
    assert json.loads(_run("diff", str(b), "--db", db, "--format", "json").stdout) == doc
    assert "New findings" in _run("diff", str(a), str(b), "--db", db).stdout


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - shared with the test on purpose

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/secret-token"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("style", ["generic", "slack"])
def test_diff_notifies_a_webhook(two_runs: tuple[str, int, int], webhook: str,
                                 style: str) -> None:
    db, _a, _b = two_runs
    result = _run("diff", "--db", db, "--notify", webhook, "--notify-format", style)
    assert result.exit_code == 0 and result.stderr == ""
    (payload,) = _Hook.received
    assert "1 new finding(s) (1 error)" in payload["text"]
    if style == "generic":
        assert payload["event"] == "residency.diff" and payload["summary"]["new_transfers"] == 1
    else:
        assert set(payload) == {"text"}


def test_dead_webhook_warns_and_keeps_the_exit_code(two_runs: tuple[str, int, int]) -> None:
    db, _a, _b = two_runs
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run("diff", "--db", db, "--notify", f"http://127.0.0.1:{port}/hooks/secret-token")
    assert result.exit_code == 0
    assert result.stderr.startswith("residency: warning: notification not sent:")
    assert result.stderr.count("\n") == 1 and "secret-token" not in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_export_reads_back_with_pandas(db_url: str, tmp_path: Path, fmt: str) -> None:
    report = make_report(transfers=(transfer("f", "US"), transfer("g", "IN", basis="none")),
                         findings=(finding("RES-T001", "g"),))
    with Store.open(db_url) as store:
        run_id = store.record(report, command="check", scope="s")
    out = tmp_path / ("book.xlsx" if fmt == "xlsx" else "out")
    result = _run("export", "--run", str(run_id), "--format", fmt, "--output", str(out),
                  "--db", db_url)
    assert result.exit_code == 0, result.output
    if fmt == "xlsx":
        sheets = pd.read_excel(out, sheet_name=None)
    else:
        read = pd.read_csv if fmt == "csv" else pd.read_parquet
        sheets = {name: read(out / f"{name}.{fmt}")
                  for name in ("inventory", "transfers", "findings")}
    assert list(sheets) == ["inventory", "transfers", "findings"]
    assert list(sheets["inventory"]["id"]) == ["app", "db", "odd"]
    assert list(sheets["transfers"]["country"]) == ["US", "IN"]
    assert list(sheets["transfers"]["lawful"]) == [True, False]
    assert list(sheets["findings"]["fingerprint"]) == [report.findings[0].fingerprint]


def test_export_unknown_run_exits_2(db_url: str, tmp_path: Path) -> None:
    result = _run("export", "--run", "9", "--format", "csv", "-o", str(tmp_path), "--db", db_url)
    assert result.exit_code == 2 and "no run 9" in result.stderr


def _shard(pack: PolicyPack, datamap: DataMap, name: str, region: str) -> Inventory:
    bucket = System(name, "aws", Role.PROCESSOR, Location(provider="aws", regions=(region,)),
                    frozenset({"contact_details"}), origin=Origin.COLLECTED,
                    resource_id=f"arn:aws:s3:::{name}", account=name)
    flow = Flow(f"helpdesk-to-{name}", "helpdesk", name, frozenset({"contact_details"}),
                origin=Origin.COLLECTED, kind="replication")
    return Inventory((bucket,), (flow,))


def test_evaluate_merges_shard_runs(db_url: str) -> None:
    from residency.datamap import load_map

    pack = PolicyPack.load()
    datamap = load_map(QUICKSTART, pack)
    engine = Engine(pack, EngineOptions(dt.date(2025, 6, 1)))
    ids = []
    for i, region in enumerate(("us-east-1", "ap-south-1"), start=1):
        report = engine.run(datamap, [_shard(pack, datamap, f"bucket-{i}", region)])
        ids.append(record_if_requested(report, "scan", "scan:aws", db_url, False,
                                       shard=f"{i}/2"))
    result = _run("evaluate", "--runs", ",".join(map(str, ids)), "--map", str(QUICKSTART),
                  "--as-of", "2025-06-01", "--format", "json", "--fail-on", "never",
                  "--db", db_url, "--record")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {s["id"] for s in doc["systems"]} == {"portal", "helpdesk", "bucket-1", "bucket-2"}
    reached = {(t["flow"], c) for t in doc["transfers"] for c in t["countries"]}
    assert {("helpdesk-to-bucket-1", "US"), ("helpdesk-to-bucket-2", "IN")} <= reached
    with Store.open(db_url) as store:
        merged = store.runs(limit=1)[0]
    assert merged.command == "evaluate" and merged.scope == "evaluate:scan:aws"
    assert store_scopes(db_url) >= {"scan:aws#1/2", "scan:aws#2/2"}
    assert merged.count("systems") == 4


def test_evaluate_without_the_map_refuses_declared_systems(db_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    with Store.open(db_url) as store:
        run_id = store.record(make_report(), command="check", scope="s")
    monkeypatch.chdir(tmp_path)
    result = _run("evaluate", "--runs", str(run_id), "--db", db_url)
    assert result.exit_code == 2 and "--map" in result.stderr


def store_scopes(db_url: str) -> set[str]:
    with Store.open(db_url) as store:
        return {r.scope for r in store.runs()}


def _record_shards(db_url: str, shards: list[str], scope: str = "scan:aws") -> list[int]:
    from residency.datamap import load_map

    pack = PolicyPack.load()
    datamap = load_map(QUICKSTART, pack)
    engine = Engine(pack, EngineOptions(dt.date(2025, 6, 1)))
    ids = []
    for i, shard in enumerate(shards, start=1):
        report = engine.run(datamap, [_shard(pack, datamap, f"bucket-{i}", "eu-west-1")])
        run_id = record_if_requested(report, "scan", scope, db_url, False, shard=shard)
        assert run_id is not None
        ids.append(run_id)
    return ids


def _evaluate(db_url: str, ids: list[int]) -> Any:
    return _run("evaluate", "--runs", ",".join(map(str, ids)), "--map", str(QUICKSTART),
                "--as-of", "2025-06-01", "--format", "json", "--db", db_url)


def test_evaluate_with_a_missing_shard_reports_a_gap(db_url: str) -> None:
    ids = _record_shards(db_url, ["1/3", "3/3"])
    result = _evaluate(db_url, ids)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    s001 = [f for f in doc["findings"] if f["rule"] == "RES-S001"]
    assert [f["subject"] for f in s001] == ["aws:shard 2/3"]
    assert "shard 2/3 of scan:aws" in s001[0]["message"]
    assert [g["scope"] for g in doc["coverage_gaps"]] == ["shard 2/3"]
    complete = _evaluate(db_url, _record_shards(db_url, ["1/2", "2/2"], scope="scan:gcp"))
    assert not json.loads(complete.stdout)["coverage_gaps"]


@pytest.mark.parametrize(
    ("shards", "text"),
    [(["1/2", "1/2"], "both shard 1/2"), (["1/2", "2/3"], "give the runs of one scan")],
)
def test_evaluate_refuses_duplicate_or_mismatched_shards(db_url: str, shards: list[str],
                                                        text: str) -> None:
    result = _evaluate(db_url, _record_shards(db_url, shards))
    assert result.exit_code == 2 and "--runs" in result.stderr and text in result.stderr
    assert result.stdout == ""


def test_history_prune_keeps_the_newest(tmp_path: Path) -> None:
    """Retention (`history prune`): --keep N drops all but the newest N runs; --before a
    date in the past drops nothing newer; `history` alone still lists."""
    from click.testing import CliRunner

    from residency.cli.main import cli

    db = f"sqlite:///{tmp_path / 'h.db'}"
    quick = str(Path(__file__).resolve().parents[2] / "examples" / "quickstart" /
                "residency.yaml")
    for _ in range(3):
        CliRunner().invoke(cli, ["check", "--map", quick, "--db", db])
    assert CliRunner().invoke(cli, ["history", "--db", db]).output.count("check:") == 3
    kept = CliRunner().invoke(cli, ["history", "prune", "--db", db, "--before", "2000-01-01"])
    assert kept.exit_code == 0 and "pruned 0 run(s)" in kept.stderr
    pruned = CliRunner().invoke(cli, ["history", "prune", "--db", db, "--keep", "1"])
    assert pruned.exit_code == 0 and "pruned 2 run(s)" in pruned.stderr, pruned.output
    assert CliRunner().invoke(cli, ["history", "--db", db]).output.count("check:") == 1
    bad = CliRunner().invoke(cli, ["history", "prune", "--db", db])
    assert bad.exit_code == 2
