"""The second core (`residency._fork`): the same report, byte for byte, whether a worker
judged part of the flows and encoded the findings or not, and whatever happens to it."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import pytest

from residency import _fork
from residency.datamap import load_map
from residency.formats import jsonfmt
from residency.formats.jsonfmt import JsonFormatter
from residency.model import Report
from residency.policy import engine as engine_mod
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 11, 30)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deep_generate", ROOT / "benchmarks" / "deep_generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def deep_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fork") / "deep.json"
    path.write_text(json.dumps(_generator().generate(3000, seed=5)))
    return path


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Every worker started during the test, and whether it really forked: a test of the
    parallel path must not pass by running serially (another thread, one core)."""
    started: list[bool] = []
    real = _fork.Forked.__init__

    def spy(self: _fork.Forked, job: Any) -> None:
        real(self, job)
        started.append(self.running)

    monkeypatch.setattr(_fork.Forked, "__init__", spy)
    real_ahead = _fork.Ahead.__init__

    def ahead(self: _fork.Ahead, *args: Any, **kwargs: Any) -> None:
        real_ahead(self, *args, **kwargs)
        started.append(self.running)

    monkeypatch.setattr(_fork.Ahead, "__init__", ahead)
    monkeypatch.setattr(_fork.os, "cpu_count", lambda: 2)
    monkeypatch.delenv(_fork.WORKERS_ENV, raising=False)
    # Earlier tests of the session leave servers behind (moto, the fake cloud APIs), idle
    # in accept(): they hold no lock a worker takes, so these tests may fork beside them.
    # `test_no_fork_beside_other_threads` checks the real rule.
    monkeypatch.setattr(_fork.threading, "active_count", lambda: 1)
    yield started


def _run(path: Path) -> tuple[Report, bytes]:
    pack = PolicyPack.load()
    report = Engine(pack, EngineOptions(AS_OF, today=AS_OF)).run(load_map(path, pack))
    buf = io.BytesIO()
    stream = io.TextIOWrapper(buf, encoding="utf-8")
    JsonFormatter().write(report, stream)
    stream.flush()
    return report, buf.getvalue()


def _serial(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Report, bytes]:
    with monkeypatch.context() as m:
        m.setenv(_fork.WORKERS_ENV, "1")
        m.setattr(engine_mod, "_BLOCK", 10**9)  # one block: the plain loop
        return _run(path)


def _parallel_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "PARALLEL_AT", 1)
    monkeypatch.setattr(engine_mod, "_BLOCK", 250)  # the worker's rows come in blocks
    monkeypatch.setattr(JsonFormatter, "PARALLEL_AT", 1)
    monkeypatch.setattr(JsonFormatter, "STREAM_AT", 1)


def test_two_cores_write_the_report_one_core_writes(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel_everywhere(monkeypatch)
    serial_report, serial_bytes = _serial(deep_map, monkeypatch)
    assert forks == [False, False]
    forks.clear()
    report, data = _run(deep_map)
    assert forks == [True, True]  # the judge's worker and the writer's
    assert len(report.transfers) > 3000 and len(report.findings) > 1000
    assert report.transfers == serial_report.transfers
    assert report.findings == serial_report.findings
    assert data == serial_bytes
    json.loads(data)


def test_the_writer_stays_on_one_core_past_its_ceiling(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel_everywhere(monkeypatch)
    _, serial_bytes = _serial(deep_map, monkeypatch)
    forks.clear()
    monkeypatch.setattr(JsonFormatter, "PARALLEL_UP_TO", 1000)
    report, data = _run(deep_map)
    assert len(report.findings) > 1000
    assert forks == [True]  # the judge's worker only: the writer started none
    assert data == serial_bytes


def test_a_worker_that_fails_costs_time_not_results(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel_everywhere(monkeypatch)
    _, serial_bytes = _serial(deep_map, monkeypatch)

    def crash(*_: Any) -> None:
        raise RuntimeError("worker bug")

    parent = os.getpid()
    real_lines = jsonfmt._finding_lines

    def lines_failing_in_a_child(findings: Any) -> Iterator[bytes]:
        if os.getpid() != parent:
            raise RuntimeError("writer bug")
        yield from real_lines(findings)

    monkeypatch.setattr(Engine, "_judge_rows", crash)
    monkeypatch.setattr(jsonfmt, "_finding_lines", lines_failing_in_a_child)
    forks.clear()
    _, data = _run(deep_map)
    assert forks == [True, True]
    assert data == serial_bytes


def test_a_killed_worker_costs_time_not_results(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel_everywhere(monkeypatch)
    _, serial_bytes = _serial(deep_map, monkeypatch)

    def killed(self: Engine, *_: Any) -> None:
        os.kill(os.getpid(), 9)

    monkeypatch.setattr(Engine, "_judge_rows", killed)
    forks.clear()
    _, data = _run(deep_map)
    assert forks[0] is True
    assert data == serial_bytes


def test_a_half_written_worker_file_is_not_used(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that wrote part of its rows and then died: its file is dropped."""
    _parallel_everywhere(monkeypatch)
    _, serial_bytes = _serial(deep_map, monkeypatch)
    real = Engine._judge_rows

    def truncated(self: Engine, ground: Any, flows: Any, out: IO[bytes]) -> None:
        real(self, ground, flows, out)
        out.flush()
        os.ftruncate(out.fileno(), 100)
        os._exit(1)

    monkeypatch.setattr(Engine, "_judge_rows", truncated)
    forks.clear()
    _, data = _run(deep_map)
    assert forks[0] is True
    assert data == serial_bytes


@pytest.mark.parametrize("cut", ["end marker", "mid-block"])
def test_a_worker_file_without_its_end_is_not_used(
    cut: str, deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that exited well but whose file lacks its end (a bug, a full disk): the
    blocks already appended are taken back and the parent judges that part itself."""
    _parallel_everywhere(monkeypatch)
    serial_report, serial_bytes = _serial(deep_map, monkeypatch)
    real = Engine._judge_rows
    blocks: list[int] = []

    def unfinished(self: Engine, ground: Any, flows: Any, out: IO[bytes]) -> None:
        real(self, ground, flows, out)
        out.flush()
        size = out.seek(0, os.SEEK_END)
        out.seek(0)
        count = 0
        with contextlib.suppress(EOFError):
            while pickle.load(out) is not None:  # noqa: S301 - the test's own file
                count += 1
        blocks.append(count)
        end = size - len(pickle.dumps(None)) if cut == "end marker" else size * 2 // 3
        os.ftruncate(out.fileno(), end)
        out.seek(end)

    monkeypatch.setattr(Engine, "_judge_rows", unfinished)
    monkeypatch.setattr(_fork, "_spawn", _spawn_reporting(blocks))
    forks.clear()
    report, data = _run(deep_map)
    assert forks[0] is True
    assert blocks and blocks[0] >= 3  # several blocks were written before the cut
    assert len(report.transfers) == len(serial_report.transfers)
    assert data == serial_bytes


def _spawn_reporting(blocks: list[int]) -> Any:
    """`_fork._spawn` whose child sends what it appended to `blocks` back to the test."""
    real = _fork._spawn

    def spawn(child: Any) -> int:
        read, write = os.pipe()

        def run() -> None:
            os.close(read)
            try:
                child()
            finally:
                os.write(write, json.dumps(blocks).encode())
                os.close(write)

        pid = real(run)
        os.close(write)
        with os.fdopen(read) as pipe:
            blocks[:] = json.loads(pipe.read() or "[]")
        return pid

    return spawn


@pytest.mark.parametrize("setting", ["1", "0"])
def test_workers_env_keeps_one_process(
    setting: str, forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_fork.WORKERS_ENV, setting)
    worker = _fork.Forked(lambda fh: None)
    assert not worker.running and worker.join() is None
    assert forks == [False]


def test_no_fork_beside_other_threads(
    forks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.undo()  # the real thread count, environment and core count
    monkeypatch.setattr(_fork.os, "cpu_count", lambda: 2)
    monkeypatch.delenv(_fork.WORKERS_ENV, raising=False)
    alone = threading.active_count() == 1  # earlier tests may have left servers running
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert not _fork.available()
    finally:
        release.set()
        thread.join()
    assert _fork.available() is alone


def test_child_result_comes_back(forks: list[bool]) -> None:
    worker = _fork.Forked(lambda fh: fh.write(b"x" * 3_000_000))
    assert worker.running
    done = worker.join()
    assert done is not None
    with done:
        assert done.read() == b"x" * 3_000_000
    worker.close()


def _render(key: str) -> bytes:
    return (key * 5000).encode()  # results larger than a pipe's buffer


KEYS = [f"k{i}" for i in range(50)]


def test_ordered_map_gives_every_result_in_order(forks: list[bool]) -> None:
    assert list(_fork.ordered_map(KEYS, _render)) == [_render(k) for k in KEYS]
    assert forks == [True]


def test_ordered_map_child_that_dies_midway(forks: list[bool]) -> None:
    parent = os.getpid()

    def dies_at_k20(key: str) -> bytes:
        if os.getpid() != parent and key == "k20":
            os._exit(3)
        return _render(key)

    assert list(_fork.ordered_map(KEYS, dies_at_k20)) == [_render(k) for k in KEYS]
    assert forks == [True]


def test_ordered_map_consumer_that_stops_early_reaps_the_child(forks: list[bool]) -> None:
    results = _fork.ordered_map(KEYS, _render)
    assert next(results) == _render("k0")
    assert next(results) == _render("k1")  # from the child
    results.close()  # the child, blocked on a full pipe, gets a broken pipe and exits
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("early", [False, True], ids=["forked-at-drafts", "ahead-of-load"])
def test_tia_drafts_rendered_ahead_are_the_drafts(
    early: bool, deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli._TiaFiles, "PARALLEL_AT", 1)
    if early:  # the map counts as large: the second process starts before it is read
        monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    args = ["report", "tia", "--all", "--map", str(deep_map), "--as-of", "2026-11-30"]
    with monkeypatch.context() as m:
        m.setenv(_fork.WORKERS_ENV, "1")
        serial = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "one")])
    assert serial.exit_code == 0, serial.output
    assert True not in forks
    forks.clear()
    two = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    assert forks == [True]  # one second process, whichever way it started
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(names) > 100
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    with pytest.raises(ChildProcessError):  # reaped
        os.waitpid(-1, os.WNOHANG)


def test_tia_ahead_does_not_outlive_a_failed_run(
    forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    bad = tmp_path / "map.yaml"
    bad.write_text("parties: [\n")
    result = CliRunner().invoke(cli, ["report", "tia", "--all", "--map", str(bad),
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert forks == [True]
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_tia_ahead_that_read_another_map_is_not_used(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The map saved between the two processes' reads: the second process's drafts
    rest on other inputs, so none of them is used."""
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    doc = json.loads(deep_map.read_text())
    for f in doc["flows"]:
        f["purpose"] = "changed meanwhile"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    parent = os.getpid()
    real = report_cli._evaluate

    def evaluate(map_path: Path, *args: Any) -> Any:
        return real(other if os.getpid() != parent else map_path, *args)

    monkeypatch.setattr(report_cli, "_evaluate", evaluate)
    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    args = ["report", "tia", "--all", "--map", str(deep_map), "--as-of", "2026-11-30"]
    with monkeypatch.context() as m:
        m.setenv(_fork.WORKERS_ENV, "1")
        serial = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "one")])
    assert serial.exit_code == 0, serial.output
    forks.clear()
    two = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    assert forks == [True]
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert "changed meanwhile" not in "".join(
        p.read_text() for p in (tmp_path / "two").iterdir() if p.suffix == ".md")


def _tia_args(deep_map: Path) -> list[str]:
    return ["report", "tia", "--all", "--map", str(deep_map), "--as-of", "2026-11-30"]


def _one_process_tia(deep_map: Path, monkeypatch: pytest.MonkeyPatch, out: Path) -> Any:
    """`report tia --all` into `out` the way one process writes it (the reference)."""
    from click.testing import CliRunner

    from residency.cli.main import cli

    with monkeypatch.context() as m:
        m.setenv(_fork.WORKERS_ENV, "1")
        result = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(out)])
    assert result.exit_code == 0, result.output
    return result


def _same_directories(one: Path, two: Path) -> None:
    names = sorted(p.name for p in one.iterdir())
    assert len(names) > 100
    assert ".residency-drafts.json" in names
    assert names == sorted(p.name for p in two.iterdir())
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def _stored_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many drafts the parent was handed as already written by the second process."""
    from residency.reports import tia as tia_mod

    seen = [0]
    real = tia_mod.StoredDraft.decode.__func__  # type: ignore[attr-defined]

    def decode(cls: type, data: bytes) -> Any:
        seen[0] += 1
        return real(cls, data)

    monkeypatch.setattr(tia_mod.StoredDraft, "decode", classmethod(decode))
    return seen


def test_tia_ahead_writes_new_drafts_itself(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    serial = _one_process_tia(deep_map, monkeypatch, tmp_path / "one")
    forks.clear()
    stored = _stored_count(monkeypatch)
    two = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    assert forks == [True]
    drafts = len([p for p in (tmp_path / "one").iterdir() if p.name.startswith("TIA-")])
    assert drafts // 3 <= stored[0] <= drafts // 2 + 1  # the child's share, written by it
    _same_directories(tmp_path / "one", tmp_path / "two")
    assert serial.output.replace("one", "two") == two.output  # every path listed, in order
    assert not [p for p in (tmp_path / "two").iterdir() if p.name.endswith(".tmp")]


def test_tia_ahead_that_dies_after_writing_costs_time_not_drafts(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """The second process writes a draft and is gone before it says so: the parent finds
    the file holding the very draft it would write, and carries on with the rest."""
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    _one_process_tia(deep_map, monkeypatch, tmp_path / "one")
    real = report_cli._store_draft
    calls = [0]

    def store_then_die(name: str, data: bytes, order: bytes) -> bytes | None:
        receipt = real(name, data, order)
        calls[0] += 1
        if calls[0] == 20:
            os._exit(1)  # written, never reported
        return receipt

    monkeypatch.setattr(report_cli, "_store_draft", store_then_die)
    forks.clear()
    stored = _stored_count(monkeypatch)
    two = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    assert forks == [True]
    assert stored[0] == 19
    _same_directories(tmp_path / "one", tmp_path / "two")


def test_tia_ahead_writes_nothing_into_a_refused_directory(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("counsel's notes")
    real_reap = _fork._reap

    def slow_reap(pid: int) -> None:  # time enough to write, had it been told where
        time.sleep(1.5)
        real_reap(pid)

    monkeypatch.setattr(_fork, "_reap", slow_reap)
    result = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert forks == [True]
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    with pytest.raises(ChildProcessError):  # reaped
        os.waitpid(-1, os.WNOHANG)


def test_tia_ahead_rerun_keeps_an_edited_draft_as_one_process_does(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Into a directory of earlier drafts, one edited since: the second process writes
    none of the names already there, and the edit is kept exactly as one process keeps it."""
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    runs = {}
    for name, workers in (("one", "1"), ("two", "")):
        out = tmp_path / name
        with monkeypatch.context() as m:
            m.setenv(_fork.WORKERS_ENV, "1")
            first = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(out)])
        assert first.exit_code == 0, first.output
        edited = sorted(p for p in out.iterdir() if p.name.startswith("TIA-"))[3]
        edited.write_text(edited.read_text() + "\ncounsel's note\n")
        (sorted(p for p in out.iterdir() if p.name.startswith("TIA-"))[5]).unlink()
        with monkeypatch.context() as m:
            m.setenv(_fork.WORKERS_ENV, workers)
            runs[name] = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(out)])
        assert runs[name].exit_code == 0, runs[name].output
    assert forks[-1] is True
    _same_directories(tmp_path / "one", tmp_path / "two")
    assert runs["one"].output.replace("one", "two") == runs["two"].output


def test_halves_swap_each_sides_result(forks: list[bool]) -> None:
    halves = _fork.Halves()

    def setup() -> tuple[bytes, list[str], Any]:
        got = halves.swap(b"same inputs", b"the child's half")
        return b"", ["k0", "k1"], lambda key: got or b"nothing"

    ahead = _fork.Ahead(setup, every=2, halves=halves)
    assert forks == [True]
    assert halves.swap(b"same inputs", b"the parent's half") == b"the child's half"
    results = list(ahead.results(["k0", "k1"], lambda key: b"parent"))
    assert results == [b"parent", b"the parent's half"]  # what the child took from us
    halves.close()


@pytest.mark.parametrize("fault", ["other-inputs", "child-gone"])
def test_halves_refuse_what_does_not_come_from_the_same_inputs(
    fault: str, forks: list[bool]
) -> None:
    halves = _fork.Halves()

    def setup() -> tuple[bytes, list[str], Any]:
        if fault == "child-gone":
            os._exit(1)
        got = halves.swap(b"another map", b"the child's half")
        return b"", ["k0", "k1"], lambda key: got or b"nothing"

    ahead = _fork.Ahead(setup, every=2, halves=halves)
    assert forks == [True]
    assert halves.swap(b"same inputs", b"the parent's half") is None
    results = list(ahead.results(["k0", "k1"], lambda key: b"parent"))
    # the child refused ours too (other inputs), or is gone (the parent rendered k1)
    assert results == [b"parent", b"nothing" if fault == "other-inputs" else b"parent"]
    halves.close()


def _judged_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many flows this process judged itself, per call."""
    from residency.policy.engine import Engine

    parent, counts = os.getpid(), []
    real = Engine._judge

    def judge(self: Any, ground: Any, flows: Any, *rest: Any) -> Any:
        if os.getpid() == parent:
            counts.append(len(flows))
        return real(self, ground, flows, *rest)

    monkeypatch.setattr(Engine, "_judge", judge)
    return counts


@pytest.mark.parametrize("fault", [None, "child-gone"])
def test_tia_processes_split_the_judge(
    fault: str | None, deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    _one_process_tia(deep_map, monkeypatch, tmp_path / "one")
    flows = len(json.loads(deep_map.read_text())["flows"])
    if fault == "child-gone":
        parent, real = os.getpid(), report_cli._evaluate

        def evaluate(*args: Any) -> Any:
            if os.getpid() != parent:
                os._exit(1)
            return real(*args)

        monkeypatch.setattr(report_cli, "_evaluate", evaluate)
    judged = _judged_here(monkeypatch)
    forks.clear()
    two = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    assert forks == [True]
    if fault is None:
        assert judged == [flows // 2]  # the second process judged the other half
    else:
        assert judged == [flows // 2, flows - flows // 2]  # nobody did: judged here
    _same_directories(tmp_path / "one", tmp_path / "two")


def test_tia_ahead_that_read_another_map_writes_no_draft(
    deep_map: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The second process read a map saved meanwhile: it is stopped before it is told
    where the drafts go, so none of its drafts reaches the directory, however long the
    parent then takes."""
    from click.testing import CliRunner

    from residency.cli import report as report_cli
    from residency.cli.main import cli

    doc = json.loads(deep_map.read_text())
    for f in doc["flows"]:
        f["purpose"] = "changed meanwhile"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    parent, real = os.getpid(), report_cli._evaluate

    def evaluate(map_path: Path, *args: Any) -> Any:
        return real(other if os.getpid() != parent else map_path, *args)

    real_check = _fork.Ahead._same_basis

    def slow_check(self: _fork.Ahead, basis: bytes) -> bool:
        time.sleep(1.5)  # time enough for a child that was told where to write
        return real_check(self, basis)

    monkeypatch.setattr(report_cli, "_evaluate", evaluate)
    monkeypatch.setattr(report_cli, "AHEAD_AT_BYTES", 1)
    monkeypatch.setattr(_fork.Ahead, "_same_basis", slow_check)
    _one_process_tia(deep_map, monkeypatch, tmp_path / "one")
    forks.clear()
    two = CliRunner().invoke(cli, [*_tia_args(deep_map), "--output", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    assert forks == [True]
    assert "kept" not in two.output and "changed since" not in two.output
    _same_directories(tmp_path / "one", tmp_path / "two")
