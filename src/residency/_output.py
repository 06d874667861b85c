"""Writing outputs: atomic for regular files, never clobbering what the user keeps.

Rules for an output path (`atomic_output`, `write_atomic`, `guard_output`):

- A regular file (or a new path) gets a temporary sibling renamed over it when the content is
  complete, so a reader never sees half a report. A symlink is followed: the target is
  replaced and the link kept. Anything else (a character device such as /dev/null, a FIFO,
  /dev/stdout, /dev/fd/N) is written through, never replaced.
- An input of the same run (`note_input`; same resolved path, or same device and inode for
  a hard link) is never overwritten, even with --force.
- An existing regular file is replaced only if residency wrote it (`looks_like_ours`: the
  marker or table header each output format emits), it is empty, or the run is forced
  (`--force`, the `forcing` context variable).
- Temporary files are `.<name>.residency-<pid>.<random>.tmp`: removed on an exception,
  SIGINT, SIGTERM and SIGHUP; after a SIGKILL the next run writing into the same directory
  removes the leftover once its process is gone (a live process's is never touched).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import IO, Any

from residency.errors import ResidencyError

_INPUTS: ContextVar[frozenset[Path]] = ContextVar("residency_inputs", default=frozenset())
_INPUT_IDS: ContextVar[frozenset[tuple[int, int]]] = ContextVar(
    "residency_input_ids", default=frozenset())
# A mutable set (one per run, made by begin_run): a TIA run writes ~50,000 drafts, and
# copying a frozenset per write made that quadratic.
_WRITTEN: ContextVar[set[tuple[int, int]] | None] = ContextVar("residency_written", default=None)
_FORCE: ContextVar[bool] = ContextVar("residency_force", default=False)
_SWEPT: ContextVar[frozenset[Path]] = ContextVar("residency_swept", default=frozenset())


# ---------------------------------------------------------------------- run state
def begin_run(*, force: bool = False) -> None:
    """Start a run's bookkeeping afresh (the CLI calls this once per command)."""
    _INPUTS.set(frozenset())
    _INPUT_IDS.set(frozenset())
    _WRITTEN.set(set())
    _SWEPT.set(frozenset())
    _FORCE.set(force)


def forcing() -> bool:
    """Whether this run may replace existing files residency did not write (--force)."""
    return _FORCE.get()


def note_input(path: Path) -> None:
    """Record that this run read `path`: no output of the same run may replace it."""
    try:
        resolved = path.resolve()
        st = path.stat()
    except (OSError, RuntimeError):
        return
    _INPUTS.set(_INPUTS.get() | {resolved})
    if stat.S_ISREG(st.st_mode):
        _INPUT_IDS.set(_INPUT_IDS.get() | {(st.st_dev, st.st_ino)})


def run_inputs() -> frozenset[Path]:
    """The files this run has read so far (resolved)."""
    return _INPUTS.get()


# ---------------------------------------------------------------------- writing
@contextmanager
def atomic_output(
    path: Path, binary: bool = False, *, ours: bool = False, updates_input: bool = False,
) -> Iterator[IO[Any]]:
    """A file handle whose content replaces `path` only when the block succeeds: a reader
    never sees half a report, and a failed run leaves the previous file as it was.

    `ours=True`: the caller has established that an existing file at `path` is residency's
    (the TIA drafts manifest), so the ownership sniff is skipped; inputs stay protected.
    `updates_input=True`: replacing an input of the run is the point (a baseline rewritten
    in place); never for `-o`.
    """
    kind, target, fd = _plan(path)
    mode = "wb" if binary else "w"
    encoding = None if binary else "utf-8"
    if kind == "fd":
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            fh = os.fdopen(os.dup(fd), mode, encoding=encoding)
        except OSError as exc:
            raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
        with _write_errors(path), fh:
            yield fh
        return
    if kind == "through":
        try:
            fh = target.open(mode, encoding=encoding)
        except OSError as exc:
            raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
        with _write_errors(path), fh:
            yield fh
        return
    _refuse_clobber(path, target, ours=ours, updates_input=updates_input)
    tmp = _temp_for(path, target)
    try:
        with os.fdopen(tmp.fd, mode, encoding=encoding) as fh:
            yield fh
        tmp.path.chmod(_file_mode(target))  # mkstemp makes 0600; keep the usual mode
        tmp.path.replace(target)
        _remember_written(target)
    except OSError as exc:
        tmp.path.unlink(missing_ok=True)
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    except BaseException:
        tmp.path.unlink(missing_ok=True)
        raise
    finally:
        _LIVE.discard(str(tmp.path))


def write_atomic(
    path: Path, data: str | bytes, *, ours: bool = False, updates_input: bool = False,
) -> None:
    """Write `data` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path, binary=isinstance(data, bytes), ours=ours,
                       updates_input=updates_input) as fh:
        fh.write(data)


def write_new(path: Path, data: bytes) -> tuple[int, int] | None:
    """Write `data` to `path` only if nothing is there: the new file's (device, inode), or
    None (nothing written) if a file, link or directory already is. For the many new
    files of one run (TIA drafts): the content goes to a temporary sibling linked into
    place, so a reader never sees half a file and a file that appeared meanwhile is never
    replaced, at a few system calls per file instead of `write_atomic`'s ownership checks
    (nothing exists to check).
    The caller has made `path.parent` and checked it is no input of the run."""
    _install_signal_cleanup()
    _sweep_leftovers(path)
    directory = os.fspath(path.parent)
    tmp = os.path.join(directory, _temp_name(path.name))  # noqa: PTH118 - hot loop
    _LIVE.add(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o666)  # the umask applies, as for any new file
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            st = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces: EEXIST if something is there now
        except FileExistsError:
            return None
        except OSError:  # no hard links on this file system: rename, after checking
            if os.path.lexists(path):
                return None
            Path(tmp).replace(path)
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    finally:
        with suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108
        _LIVE.discard(tmp)
    note_written(st.st_dev, st.st_ino)
    return st.st_dev, st.st_ino


def note_written(device: int, inode: int) -> None:
    """Count a file this run wrote (here, or in its helper process) as its own."""
    written = _WRITTEN.get()
    if written is not None:
        written.add((device, inode))


_TEMP_SERIAL = iter(range(1 << 62))


def _temp_name(name: str) -> str:
    """`.<name>.residency-<pid>.<token>.tmp`, the shape `_sweep_leftovers` recognises."""
    return f".{name}.residency-{os.getpid()}.{_TOKEN}{next(_TEMP_SERIAL)}.tmp"


_TOKEN = os.urandom(4).hex()


def guard_output(path: Path) -> None:
    """Refuse (ResidencyError) what `atomic_output` would refuse, for writers that open the
    path themselves (pandas: `scan --inventory-out`, `export`)."""
    kind, target, _fd = _plan(path)
    if kind == "atomic":
        _refuse_clobber(path, target, ours=False)


def remove_leftovers(path: Path) -> None:
    """Remove temporary files a killed run left beside `path` (`write_atomic` does this
    itself; for callers that may skip writing an unchanged file)."""
    _sweep_leftovers(path)


def is_leftover_name(name: str) -> bool:
    """Whether `name` is one of our temporary files (for directory checks)."""
    return _TEMP_RE.fullmatch(name) is not None


@contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None


_OWN_FD = re.compile(r"/dev/fd/(\d+)|/proc/(?:self|thread-self|(\d+))/fd/(\d+)")
_STD = {"/dev/stdout": 1, "/dev/stderr": 2}


def _plan(path: Path) -> tuple[str, Path, int]:
    """("fd", path, n): one of our descriptors; ("through", path, -1): not a regular file;
    ("atomic", real path, -1): a regular file or a new one, links resolved."""
    text = os.path.abspath(path)  # noqa: PTH100 - lexical: resolve() would follow the links
    if text in _STD:
        return "fd", path, _STD[text]
    m = _OWN_FD.fullmatch(text)
    if m and (m.group(2) is None or int(m.group(2)) == os.getpid()):
        return "fd", path, int(m.group(1) or m.group(3))
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ResidencyError(f"{path}: is a directory; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return "through", path, -1
    if text.startswith("/proc/"):
        return "through", path, -1  # another process's descriptor: never rename over it
    try:
        return "atomic", path.resolve(), -1  # a link (even dangling) is kept; its target written
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ResidencyError(f"{path}: cannot write: {exc}") from None


def _refuse_clobber(
    path: Path, target: Path, *, ours: bool, updates_input: bool = False,
) -> None:
    try:
        st = target.stat()
    except FileNotFoundError:
        if target in run_inputs() and not updates_input:
            raise ResidencyError(f"{path}: is an input of this run; refusing to overwrite "
                                 "it (choose another output)") from None
        return
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    ident = (st.st_dev, st.st_ino)
    if not updates_input and (target in run_inputs() or ident in _INPUT_IDS.get()):
        raise ResidencyError(f"{path}: is an input of this run; refusing to overwrite it "
                             "(choose another output)")
    if ours or forcing() or ident in (_WRITTEN.get() or ()) or looks_like_ours(target):
        return
    raise ResidencyError(f"{path}: exists and does not look like a residency output; "
                         "refusing to replace it (use --force, or choose another output)")


def _remember_written(target: Path) -> None:
    try:
        st = target.stat()
    except OSError:
        return
    written = _WRITTEN.get()
    if written is None:
        written = set()
        _WRITTEN.set(written)
    written.add((st.st_dev, st.st_ino))


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# ---------------------------------------------------------------------- temporary files
_TEMP_RE = re.compile(r"\..+\.residency-(\d+)\.[^.]+\.tmp")
_STARTED = time.time()  # leftovers of an earlier process that had our pid are older
_LIVE: set[str] = set()  # temporary files that exist now, for the signal handler


class _Temp:
    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path


def _temp_for(path: Path, target: Path) -> _Temp:
    _install_signal_cleanup()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_leftovers(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.residency-{os.getpid()}.",
                                   suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    _LIVE.add(tmp)
    return _Temp(fd, Path(tmp))


def _sweep_leftovers(target: Path) -> None:
    """Remove temporary files a killed process left in `target`'s directory (never a live
    process's). Once per directory and run: a run writing thousands of drafts lists the
    directory once, not once per draft."""
    directory = target.parent
    if directory in _SWEPT.get():
        return
    try:
        names = [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]
    except OSError:
        return
    _SWEPT.set(_SWEPT.get() | {directory})
    for name in names:
        m = _TEMP_RE.fullmatch(name)
        if m is None:
            continue
        leftover = directory / name
        pid = int(m.group(1))
        try:
            if pid == os.getpid():
                if leftover.stat().st_mtime >= _STARTED:
                    continue  # this process is writing it
            elif _alive(pid):
                continue
            leftover.unlink()
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


_CLEANUP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_installed = False


def _install_signal_cleanup() -> None:
    """On SIGTERM/SIGHUP (whose default ends the process without unwinding), remove our
    temporary files, then die of the signal as before. Only replaces default handlers,
    and only from the main thread; installed on the first write, not at import."""
    global _installed  # noqa: PLW0603 - once per process
    if _installed:
        return
    try:
        for sig in _CLEANUP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread: try again on the next write
        return
    _installed = True


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    for tmp in list(_LIVE):
        with suppress(OSError):
            Path(tmp).unlink()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


# ---------------------------------------------------------------------- recognising our files
_HEAD = 8192
# The first bytes of each output residency writes; an existing file that matches one of these
# is residency's own and may be replaced by a re-run. Keep in step with the writers named.
_MARKERS = tuple(map(re.compile, (
    r"\Aresidency \S+ as of \d{4}-\d\d-\d\d",                     # formats/text.py
    r'\A\{\s*"schema": "https://github\.com/residency/residency/report\.schema\.json"',  # json
    r"\A# residency: ",                                           # formats/markdown.py
    r'\A\{\s*"\$schema":\s*"https://json\.schemastore\.org/sarif-2\.1\.0\.json",'
    r'\s*"version":\s*"2\.1\.0",\s*"runs":\s*\[\s*\{\s*"tool":\s*\{\s*"driver":\s*\{'
    r'\s*"name":\s*"residency"',                                  # formats/sarif.py
    r'\A<\?xml [^>]*\?>\s*<testsuites name="residency"',          # formats/junit.py
    r"(?s)\A<!DOCTYPE html>\s*<html[^>]*>\s*<head>.*?<title>residency report — ",  # reports/html.py
    r"(?s)\A# Transfer impact assessment \(draft\) — .*?Draft generated by residency",  # tia
    r"\A# Art\. 30 transfer register\n",                          # reports/register.py
    r"\A(?:# )?What-if: ",                                        # reports/impact.py
    r'\A\{\s*"baseline_as_of": "\d{4}-\d\d-\d\d",\s*"as_of": ',  # reports/impact.py (json)
    r"\A# Art\. 30 record of processing activities\n",           # reports/ropa.py
    r"(?s)\A<!DOCTYPE html>.*?<title>residency: ",               # reports/ropa.py (html)
    r"\A# Recipients, transfers and safeguards: ",                # reports/subject_access.py
    r'\A\{\s*"residency_subject_access": ',                      # reports/subject_access.py
    r'\A\{\n  "@context": \{"dpv": "https://w3id\.org/dpv#"',    # reports/dpv.py
    r"\Aflowchart LR\n  n_",                                      # reports/diagram.py
    r"\Adigraph residency \{\n",
    r'\A<svg [^>]*aria-label="Data flow diagram" class="flow-diagram"',
    r'(?s)\A<graphml .*attr\.name="verdict".*attr\.name="countries"'
    r'|\A<graphml .*attr\.name="countries".*attr\.name="verdict"',
    r'\A\{\n  "nodes": \[(?:\]|\n    \{\n      "id": [^\n]*\n      "label": [^\n]*\n'
    r'      "party": )',
    r"\Aresidency .*: run \d+ → \d+: \d+ new finding",            # history/diff.py
    r"\A## residency: run \d+ → \d+ ",
    r'\A\{\s*"run_a": \{\s*"id": \d+,\s*"scope": ',
    r'\A\{\s*"residency_baseline": ',                             # baseline.py
    r'\A\{\s*"residency_drafts": ',                               # reports/tia.py manifest
)))
# Tables (CSV header, JSON records, xlsx sheet, Parquet schema): their leading columns.
_TABLES = (
    ("regime", "flow", "destination", "destination_name", "destination_type"),  # register
    ("id", "name", "provider", "account", "resource_id", "origin"),  # scan --inventory-out
    ("id", "party", "role", "origin", "location", "provider", "regions"),  # export
    ("flow", "regime", "exporter", "importer", "exporter_party", "importer_party"),
    ("fingerprint", "rule", "severity", "subject", "subject_kind"),
    ("activity", "activity_name", "record", "article", "item"),  # report ropa
)
_XLSX_SHEETS = ({"Transfers"}, {"inventory", "transfers", "findings"},
                {"Record", "Transfers", "Gaps"})
_EMPTY = {b"", b"[]", b"{}"}


def looks_like_ours(path: Path) -> bool:
    """Whether the file at `path` is one residency wrote (or holds nothing): the rule
    behind refusing to overwrite a user's file without --force."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD)
    except OSError:
        return False
    if head.strip() in _EMPTY:
        return True
    if path.name.startswith(".residency-"):  # our bookkeeping files (manifests, markers)
        return _json_object(path)
    if head.startswith(b"PK\x03\x04"):
        return _xlsx_ours(path)
    if head.startswith(b"PAR1"):
        return _parquet_ours(path)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if any(m.search(text) for m in _MARKERS):
        return True
    first = text.split("\n", 1)[0].rstrip("\r")
    if any(first == ",".join(cols) or first.startswith(",".join(cols) + ",")
           for cols in _TABLES):
        return True
    if text.startswith("["):  # JSON records: the first record's keys, in order
        record = text.partition("}")[0]
        keys = tuple(re.findall(r'"([a-z_]+)":', record))
        return any(keys[:len(cols)] == cols for cols in _TABLES)
    return False


def _json_object(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except (OSError, ValueError):
        return False


def _xlsx_ours(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            workbook = z.read("xl/workbook.xml").decode("utf-8", errors="replace")
            sheet = z.read("xl/worksheets/sheet1.xml")[:65536].decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    # a sheet continued past Excel's row limit is "<name> (2)", ... (reports/_xlsx.py)
    names = {re.sub(r" \(\d+\)\Z", "", n)
             for n in re.findall(r'<sheet [^>]*name="([^"]+)"', workbook)}
    if names not in _XLSX_SHEETS:
        return False
    cells = re.findall(r"<t[^>]*>([^<]*)</t>", sheet)
    return any(tuple(cells[:len(cols)]) == cols for cols in _TABLES)


def _parquet_ours(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError:
        return False
    if not tail.endswith(b"PAR1"):
        return False
    found = re.search(rb'"columns": \[(.*?)\]', tail, re.DOTALL)
    if found is None:  # no pandas metadata: not written by our exporters
        return False
    names = tuple(n.decode() for n in re.findall(rb'"name": "([a-z_]+)"', found.group(1)))
    return any(names[:len(cols)] == cols for cols in _TABLES)
