"""`-o` respects the user: devices and links written through, inputs and foreign files never
replaced, temporary files never left behind (issue 11)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from residency._output import atomic_output, begin_run, guard_output, looks_like_ours, write_atomic
from residency.cli.main import cli
from residency.errors import ResidencyError
from residency.model import Report
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "examples" / "servicedesk" / "residency.yaml"
BASE = ("--map", str(MAP), "--as-of", "2026-11-30")
RESIDENCY = [sys.executable, "-c", "from residency.cli.main import main; main()"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def check(*args: str) -> tuple[int, str, str]:
    return run("check", *BASE, "--fail-on", "never", *args)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(autouse=True)
def _fresh_run() -> None:
    begin_run()  # library tests below call the writers without the CLI


# ---------------------------------------------------------------------- write through
def test_real_dev_null_stays_a_character_device() -> None:
    null = Path("/dev/null")
    before = null.stat()
    assert check("-o", str(null))[0] == 0
    after = null.stat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_mode) == \
        (before.st_ino, before.st_rdev, before.st_mode)
    assert not [p for p in Path("/dev").iterdir() if p.name.startswith(".null.")]


def test_link_to_dev_null_and_fifo_are_written_through(tmp_path: Path) -> None:
    link = tmp_path / "sink"
    link.symlink_to("/dev/null")
    assert check("-o", str(link))[0] == 0
    assert link.is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert check("-o", str(fifo))[0] == 0
    reader.join(10)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert got and got[0].startswith(b"residency check as of 2026-11-30")
    assert leftovers(tmp_path) == []


def test_dev_stdout_writes_to_our_stdout_even_when_appending(tmp_path: Path) -> None:
    out = tmp_path / "log.txt"
    out.write_text("earlier line\n")
    with out.open("a") as fh:
        proc = subprocess.run([*RESIDENCY, "check", *BASE, "--fail-on", "never",
                               "-o", "/dev/stdout"], stdout=fh, stderr=subprocess.PIPE,
                              check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("earlier line\nresidency check as of 2026-11-30")
    assert stat.S_ISREG(out.lstat().st_mode)


def test_symlink_target_is_written_and_the_link_kept(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "report.json"
    target.parent.mkdir()
    link = tmp_path / "latest.json"
    link.symlink_to(target)  # dangling: the target is created
    assert check("--format", "json", "-o", str(link))[0] == 0
    assert link.is_symlink() and link.readlink() == target
    assert target.read_text().startswith("{")
    assert check("--format", "json", "-o", str(link))[0] == 0  # our own output, again
    assert link.is_symlink() and leftovers(target.parent) == leftovers(tmp_path) == []


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResidencyError, match="is a directory"):
        write_atomic(tmp_path, "x")


# ---------------------------------------------------------------------- inputs and foreign files
def test_output_over_the_map_is_refused(tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_bytes(MAP.read_bytes())
    hard = tmp_path / "hard.yaml"
    os.link(m, hard)
    soft = tmp_path / "soft.yaml"
    soft.symlink_to(m)
    (tmp_path / "sub").mkdir()
    for out in (m, hard, soft, tmp_path / "sub" / ".." / "m.yaml"):
        for extra in ((), ("--force",)):  # --force never lets a run replace its input
            code, _, err = run("check", "--map", str(m), "--as-of", "2026-11-30",
                               "-o", str(out), *extra)
            assert code == 2, (out, extra)
            assert "input of this run" in err and str(out) in err and err.count("\n") == 1
    assert m.read_bytes() == MAP.read_bytes() and hard.read_bytes() == MAP.read_bytes()
    assert soft.is_symlink() and leftovers(tmp_path) == []


def test_policy_pack_files_are_inputs_too(tmp_path: Path) -> None:
    pack_file = ROOT / "src" / "residency" / "_policies" / "regimes.yaml"
    if not pack_file.is_file():
        pytest.skip("shipped pack not at the expected path")
    before = pack_file.read_bytes()
    code, _, err = check("-o", str(pack_file), "--force")
    assert code == 2 and "input of this run" in err
    assert pack_file.read_bytes() == before


def test_foreign_file_refused_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "notes.md"
    out.write_text("# my notes\n\nresidency plans for Q3\n")
    code, _, err = check("--format", "markdown", "-o", str(out))
    assert code == 2 and "does not look like a residency output" in err and "--force" in err
    assert out.read_text().startswith("# my notes")
    code, _, _ = check("--format", "markdown", "-o", str(out), "--force")
    assert code == 0 and out.read_text().startswith("# residency: ")
    code, _, _ = check("--format", "markdown", "-o", str(out))  # now it is ours
    assert code == 0
    assert leftovers(tmp_path) == []


def test_force_does_not_outlive_its_run(tmp_path: Path) -> None:
    out = tmp_path / "x.txt"
    out.write_text("mine")
    assert check("-o", str(tmp_path / "y.txt"), "--force")[0] == 0
    assert check("-o", str(out))[0] == 2


def test_empty_file_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "fresh"
    out.touch()  # `-o "$(mktemp)"`
    assert check("-o", str(out))[0] == 0 and out.stat().st_size > 0


OWN_OUTPUTS = [
    *[("check", *BASE, "--fail-on", "never", "--format", f) for f in
      ("text", "json", "markdown", "sarif", "junit")],
    *[("report", "register", *BASE, "--format", f) for f in ("csv", "markdown", "xlsx")],
    *[("report", "impact", *BASE, "--assume-invalid", "eu-us-dpf-2023-1795", "--format", f)
      for f in ("text", "markdown", "json")],
    ("report", "impact", *BASE),  # "no change"
    ("report", "html", *BASE),
    *[("graph", *BASE, "--format", f) for f in ("mermaid", "dot", "svg", "graphml", "json")],
]


@pytest.mark.parametrize("args", OWN_OUTPUTS, ids=lambda a: "-".join(a[:1] + a[-1:]))
def test_rerun_over_own_output(tmp_path: Path, args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    first = run(*args, "-o", str(out))
    assert first[0] == 0, first[2]
    assert looks_like_ours(out)
    second = run(*args, "-o", str(out))
    assert second[0] == 0, second[2]
    assert leftovers(tmp_path) == []


def test_unrelated_files_do_not_look_like_ours(tmp_path: Path) -> None:
    samples = {
        "map.yaml": MAP.read_bytes(),
        "readme.md": b"# residency\n\nHow we run residency check in CI.\n",
        "data.csv": b"id,name,owner\n1,a,b\n",
        "plan.json": b'{"format_version": "1.2", "resource_changes": []}',
        "records.json": b'[{"id": 1, "name": "x", "provider": "aws"}]',
        "report.txt": b"residency is a word\n",
        "archive.zip": b"PK\x03\x04 not really a zip",
        "table.parquet": b"PAR1 not really parquet PAR1",
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
        assert not looks_like_ours(tmp_path / name), name


@pytest.fixture(scope="module")
def report(pack: PolicyPack) -> Report:
    from residency.datamap import load_map
    from residency.policy.engine import Engine, EngineOptions

    return Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(load_map(MAP, pack))


def test_tables_written_by_pandas_are_recognised(tmp_path: Path, report: Report) -> None:
    pytest.importorskip("pyarrow")
    pytest.importorskip("openpyxl")
    from residency.formats.inventory import write_inventory
    from residency.history.export import export_report

    for suffix in (".csv", ".json", ".parquet"):
        path = tmp_path / f"inventory{suffix}"
        write_inventory(report, path)
        assert looks_like_ours(path), suffix
        guard_output(path)
    written = [*export_report(report, "csv", tmp_path / "csv"),
               *export_report(report, "parquet", tmp_path / "parquet"),
               *export_report(report, "xlsx", tmp_path / "run.xlsx")]
    assert len(written) == 7
    for path in written:
        assert looks_like_ours(path), path
    foreign = tmp_path / "mine.csv"
    foreign.write_text("a,b\n")
    with pytest.raises(ResidencyError, match="does not look like a residency output"):
        guard_output(foreign)


# ---------------------------------------------------------------------- temporary files
def test_no_temp_file_after_an_exception(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    write_atomic(out, "residency check as of 2026-11-30 · first\n")
    with pytest.raises(RuntimeError), atomic_output(out) as fh:
        fh.write("half a report")
        raise RuntimeError("formatter failed")
    assert out.read_text() == "residency check as of 2026-11-30 · first\n"
    assert leftovers(tmp_path) == []


HARNESS = """
import sys, time
import residency.formats as formats
real = formats.get_formatter

class Slow:
    def __init__(self, inner):
        self.inner = inner
    def write(self, report, fh):
        self.inner.write(report, fh)
        fh.flush()
        print("written", flush=True, file=sys.stderr)
        time.sleep(60)

formats.get_formatter = lambda name: Slow(real(name))
from residency.cli.main import main
main(sys.argv[1:])
"""


def _big_map(tmp_path: Path) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from check_generate import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    import json

    path = tmp_path / "big.json"
    path.write_text(json.dumps(generate(3000, 7, "worst")))
    return path


def _start_writer(tmp_path: Path, out: Path) -> subprocess.Popen[str]:
    big = _big_map(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "check", "--map", str(big), "--as-of", "2026-11-30",
         "--format", "json", "-o", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the whole report is in the temporary file now
    assert line == "written\n", line + proc.stderr.read()
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda s: s.name)
def test_no_temp_file_after_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    if signal.getsignal(sig) is signal.SIG_IGN:
        pytest.skip(f"{sig.name} is ignored here (nohup?); a child would inherit that")
    out_dir = tmp_path / "out"
    out = out_dir / "report.json"
    proc = _start_writer(tmp_path, out)
    (tmp,) = leftovers(out_dir)
    assert (out_dir / tmp).stat().st_size > 1_000_000  # a big report, mid-write
    proc.send_signal(sig)
    with proc:
        proc.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert proc.returncode != 0  # KeyboardInterrupt unwinds the write
    else:
        assert proc.returncode == -sig  # still dies of the signal, after cleaning up
    assert leftovers(out_dir) == [] and not out.exists()


def test_sigkill_leftover_is_removed_by_the_next_write(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out = out_dir / "report.json"
    proc = _start_writer(tmp_path, out)
    proc.kill()
    with proc:
        proc.communicate(timeout=30)
    assert len(leftovers(out_dir)) == 1  # nothing can run on SIGKILL
    live = out_dir / ".other.json.residency-1.abcdefgh.tmp"  # pid 1 is alive: kept
    live.write_text("")
    user = out_dir / "mine.tmp"  # not one of ours
    user.write_text("")
    code, _, err = check("--format", "json", "-o", str(out))
    assert code == 0, err
    assert leftovers(out_dir) == [live.name, user.name]


def test_leftovers_of_live_processes_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".report.txt.residency-{sleeper.pid}.abcdefgh.tmp"
        live.write_text("being written")
        mine_old = tmp_path / f".report.txt.residency-{os.getpid()}.zyxwvuts.tmp"
        mine_old.write_text("an earlier process with our pid")
        os.utime(mine_old, (time.time() - 86400,) * 2)
        write_atomic(out, "residency check as of 2026-11-30\n")
        assert leftovers(tmp_path) == [live.name]
    finally:
        sleeper.kill()
        sleeper.wait()
