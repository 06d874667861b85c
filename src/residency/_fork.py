"""A second core for the few loops that dominate a large run (the judge, the JSON writer,
the TIA drafts).

`Forked(job)` runs `job(file)` in a forked child that writes its result into an unnamed
temporary file; `join()` hands the file back, rewound, or None when there was no child
(one core, no `fork`, other threads alive, `RESIDENCY_WORKERS=1`) or it failed. A caller
that gets None runs the job itself (`ordered_map` does that on its own), so a worker can
only ever make a run faster: a crash, a kill or an exception in the child costs time,
never a result.

The child shares the parent's objects copy-on-write and leaves with `os._exit`: it runs no
`atexit` hook, flushes no inherited buffer and never writes to the parent's streams.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO

WORKERS_ENV = "RESIDENCY_WORKERS"


def available() -> bool:
    """Whether a second worker may be forked here and now."""
    if os.environ.get(WORKERS_ENV, "").strip() in ("0", "1"):
        return False
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False  # fork without exec is unsafe on macOS' system frameworks
    if threading.active_count() > 1:
        return False  # a lock held by another thread would stay held in the child
    return (os.cpu_count() or 1) > 1


class Forked:
    """One job running in a child process; see the module docstring."""

    def __init__(self, job: Callable[[IO[bytes]], None]) -> None:
        self._pid: int | None = None
        self._file: IO[bytes] | None = None
        if not available():
            return
        # unnamed (unlinked at creation, mode 0600): only this process and its child see it;
        # it outlives this constructor, so no `with`
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                job(self._file)
                self._file.flush()
                code = 0
            finally:
                os._exit(code)
        self._pid = pid

    @property
    def running(self) -> bool:
        """Whether a child took the job (else the caller must run it itself)."""
        return self._pid is not None

    def join(self) -> IO[bytes] | None:
        """The child's file, rewound, once it has finished well; else None."""
        if self._pid is None or self._file is None:
            return None
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if os.waitstatus_to_exitcode(status) != 0:
            self._file.close()
            return None
        done, self._file = self._file, None  # the caller's now
        done.seek(0)
        return done

    def close(self) -> None:
        """Wait for a child still running (an error in the parent) and drop its file."""
        if self._pid is not None:
            os.waitpid(self._pid, 0)
            self._pid = None
        if self._file is not None:
            self._file.close()


def ordered_map(keys: Sequence[str], render: Callable[[str], bytes],
                every: int = 3) -> Iterator[bytes]:
    """`render(k)` for each key, in order, a forked child rendering all but one key in
    `every` (the parent, which also consumes the results, renders that one) and handing
    each result through a pipe as soon as it is ready: the pipe's buffer keeps the two in
    step, so nothing piles up in memory. When there is no child, or it stops early, the
    parent renders what is missing itself."""
    worker = _Piped(keys, render, every) if available() and len(keys) > 1 else None
    try:
        for i, key in enumerate(keys):
            data = worker.take() if worker is not None and i % every else None
            if data is None:
                if worker is not None and i % every:
                    worker.close()  # it stopped: render the rest here
                    worker = None
                data = render(key)
            yield data
    finally:
        if worker is not None:
            worker.close()


class _Piped:
    """The child of `ordered_map`: length-prefixed results on a pipe."""

    def __init__(self, keys: Sequence[str], render: Callable[[str], bytes], every: int) -> None:
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.close(read)
                with os.fdopen(write, "wb") as out:
                    for i in range(len(keys)):
                        if not i % every:
                            continue
                        data = render(keys[i])
                        out.write(len(data).to_bytes(8, "little"))
                        out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self._pid: int | None = pid
        self._pipe: IO[bytes] | None = os.fdopen(read, "rb")

    def take(self) -> bytes | None:
        """The next result, or None when the child stopped before writing it whole."""
        if self._pipe is None:
            return None
        head = self._pipe.read(8)
        if len(head) < 8:
            return None
        size = int.from_bytes(head, "little")
        data = self._pipe.read(size)
        return data if len(data) == size else None

    def close(self) -> None:
        """Stop reading (a child still writing gets a broken pipe and exits) and reap it."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._pid is not None:
            os.waitpid(self._pid, 0)
            self._pid = None
