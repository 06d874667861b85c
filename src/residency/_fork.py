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

import contextlib
import os
import select
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, cast

WORKERS_ENV = "RESIDENCY_WORKERS"
_HELD: list[bool] = []  # non-empty: the second core is taken (see `held`)


def available() -> bool:
    """Whether a second worker may be forked here and now."""
    if _HELD or os.environ.get(WORKERS_ENV, "").strip() in ("0", "1"):
        return False
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False  # fork without exec is unsafe on macOS' system frameworks
    if threading.active_count() > 1:
        return False  # a lock held by another thread would stay held in the child
    return (os.cpu_count() or 1) > 1


def _spawn(child: Callable[[], None]) -> int:
    """Fork; the child runs `child` and leaves with `os._exit` (0 when it returned)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            child()
            code = 0
        finally:
            os._exit(code)
    return pid


def _reap(pid: int) -> None:
    """End a child whose result is no longer wanted (or that has finished) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _frame(data: bytes, width: int) -> bytes:
    """`data` preceded by its length in `width` bytes."""
    return len(data).to_bytes(width, "little") + data


def _read_frame(pipe: IO[bytes], width: int) -> bytes | None:
    """One `_frame`d record, or None when the pipe ends before it is whole."""
    head = pipe.read(width)
    if len(head) < width:
        return None
    size = int.from_bytes(head, "little")
    data = pipe.read(size)
    return data if len(data) == size else None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an `Ahead` child's `store` returned for a result it put in place itself."""

    data: bytes


def _poll_order(fd: int) -> bytes | None:
    """The parent's order once it has been sent, else None (never waits for one); b"" when
    the channel closed without one (the parent does everything itself then)."""
    if not select.select([fd], [], [], 0)[0]:
        return None
    with os.fdopen(fd, "rb") as pipe:
        return _read_frame(pipe, 4) or b""


@contextlib.contextmanager
def held() -> Iterator[None]:
    """No further worker while this lasts: an `Ahead` child already has the second core."""
    _HELD.append(True)
    try:
        yield
    finally:
        _HELD.pop()


class Forked:
    """One job running in a child process; see the module docstring."""

    def __init__(self, job: Callable[[IO[bytes]], None]) -> None:
        self._pid: int | None = None
        self._file: IO[bytes] | None = None
        if not available():
            return
        # unnamed (unlinked at creation, mode 0600): only this process and its child see it;
        # it outlives this constructor, so no `with`
        file = self._file = tempfile.TemporaryFile()  # noqa: SIM115

        def child() -> None:
            job(file)
            file.flush()

        self._pid = _spawn(child)

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
        """Stop a child still running (an error in the parent) and drop its file."""
        if self._pid is not None:
            _reap(self._pid)
            self._pid = None
        if self._file is not None:
            self._file.close()


class Halves:
    """One loop split between an `Ahead` child (side 1) and its parent (side 0), which load
    the same inputs: each does one half and takes the other's result, so neither does the
    whole. Made before the fork (two unnamed files, two pipes); `Ahead` gives each process
    its side. `swap` hands over this side's result and returns the other's, or None when
    the other side is gone, never got there, or worked from other inputs (`basis`): the
    caller then does that half itself. Neither side waits on a pipe the other must empty:
    results go through the files, the pipes carry one byte."""

    def __init__(self) -> None:
        # unnamed (unlinked at creation, mode 0600); both processes keep them open
        self._files = (tempfile.TemporaryFile(), tempfile.TemporaryFile())  # noqa: SIM115
        self._pipes = (os.pipe(), os.pipe())  # side 0 tells side 1 through the first
        self._open = [fd for pipe in self._pipes for fd in pipe]
        self.side: int | None = None
        self._tell = self._hear = -1

    def take_side(self, side: int) -> None:
        """This process is `side` (right after the fork, in each process)."""
        (r0, w0), (r1, w1) = self._pipes
        self._tell, self._hear = (w0, r1) if side == 0 else (w1, r0)
        for fd in (r0, w1) if side == 0 else (r1, w0):
            self._close(fd)
        self.side = side

    def swap(self, basis: bytes, data: bytes) -> bytes | None:
        if self.side is None or self._tell not in self._open:
            return None
        mine, theirs = self._files[self.side], self._files[1 - self.side]
        mine.write(_frame(basis, 4) + _frame(data, 8))
        mine.flush()
        with contextlib.suppress(OSError):  # the other side is gone: it hears nothing
            os.write(self._tell, b"1")
        self._close(self._tell)
        heard = os.read(self._hear, 1)
        self._close(self._hear)
        if heard != b"1":
            return None
        theirs.seek(0)  # the other side has written all it will write there
        if _read_frame(theirs, 4) != basis:
            return None
        return _read_frame(theirs, 8)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.remove(fd)
            os.close(fd)

    def close(self) -> None:
        for fd in list(self._open):
            self._close(fd)
        for f in self._files:
            f.close()


def ordered_map(keys: Sequence[str], render: Callable[[str], bytes],
                every: int = 3) -> Iterator[bytes]:
    """`render(k)` for each key, in order, a forked child rendering all but one key in
    `every` (the parent, which also consumes the results, renders that one) and handing
    each result through a pipe as soon as it is ready: the pipe's buffer keeps the two in
    step, so nothing piles up in memory. When there is no child, or it stops early, the
    parent renders what is missing itself."""
    worker = Ahead(lambda: (b"", keys, render), every) if len(keys) > 1 else None
    if worker is None:
        return map(render, keys)
    return cast(Iterator[bytes], worker.results(keys, render))  # no `store`: data only


class Ahead:
    """A child rendering all but one key in `every` into a pipe, length-prefixed, each
    result preceded by its key. `setup` runs in the child and gives it what its work rests
    on (a digest of the inputs it read), the keys and the renderer: forked before a large
    input is loaded, it builds its own copy of the work (the same, deterministically)
    rather than sharing the parent's heap copy-on-write, which costs more than it saves
    here. Its stdout and stderr go to /dev/null (the parent reports what the run says).
    Inputs that differ from the parent's (a file saved in between) or a key that differs
    end its use: the parent renders the rest itself.

    `store`, when given, lets the child also put its results where they go once the parent
    says where (`order`, sent when the parent has checked the destination): from then on
    `store(key, data, order)` runs in the child, and a result it stored comes back as the
    `Receipt` it returned instead of the data (data again when it returns None)."""

    def __init__(
        self, setup: Callable[[], tuple[bytes, Sequence[str], Callable[[str], bytes]]],
        every: int = 3, store: Callable[[str, bytes, bytes], bytes | None] | None = None,
        halves: Halves | None = None,
    ) -> None:
        self.every = every
        self._pid: int | None = None
        self._pipe: IO[bytes] | None = None
        self._orders: int | None = None
        self._basis_ok: bool | None = None
        if not available():
            return
        read, write = os.pipe()
        order_read, order_write = os.pipe() if store is not None else (-1, -1)

        def child() -> None:
            _HELD.append(True)  # its own setup forks nothing more
            os.close(read)
            if halves is not None:
                halves.take_side(1)
            if order_write >= 0:
                os.close(order_write)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            order: bytes | None = None
            with os.fdopen(write, "wb") as out:
                basis, keys, render = setup()
                out.write(_frame(basis, 4))
                for i, key in enumerate(keys):
                    if not i % every:
                        continue
                    data = render(key)
                    if order is None and store is not None:
                        order = _poll_order(order_read)
                    receipt = store(key, data, order) if order and store is not None else None
                    out.write(_frame(key.encode(), 4))
                    out.write(_frame(b"S" + receipt if receipt is not None else b"D" + data, 8))
                    out.flush()  # the parent takes results in order: none waits in a buffer

        pid = _spawn(child)
        os.close(write)
        if halves is not None:
            halves.take_side(0)
        if order_read >= 0:
            os.close(order_read)
            self._orders = order_write
        self._pid = pid
        self._pipe = os.fdopen(read, "rb")

    def order(self, message: bytes, basis: bytes = b"") -> None:
        """Tell the child where its results go (once; a few hundred bytes at most, so the
        write never waits on a child that is itself waiting for us to read), but only
        once it has shown it worked from the same `basis`: a child that read other inputs
        is stopped before it can put anything anywhere."""
        if self._orders is None:
            return
        if len(message) + 4 > select.PIPE_BUF:
            raise ValueError("an order must fit in one atomic pipe write")
        if not self._same_basis(basis):
            return
        with contextlib.suppress(OSError):  # a child that has gone: the parent does it all
            os.write(self._orders, _frame(message, 4))
        os.close(self._orders)
        self._orders = None

    def results(self, keys: Sequence[str], render: Callable[[str], bytes],
                basis: bytes = b"") -> Iterator[bytes | Receipt]:
        """`render(k)` for each key in order, the child's share read from the pipe once it
        has shown it worked from the same `basis`."""
        self._same_basis(basis)
        try:
            last = len(keys) - 1
            for i, key in enumerate(keys):
                data = self._take(key) if i % self.every else None
                if data is None:
                    data = render(key)
                if i == last:
                    self.close()  # a consumer need not run the generator past its last item
                yield data
        finally:
            self.close()

    def _same_basis(self, basis: bytes) -> bool:
        """Whether the child worked from `basis` (its first frame, read once); a child
        that did not is stopped and reaped."""
        if self._basis_ok is None and self._pipe is not None:
            self._basis_ok = _read_frame(self._pipe, 4) == basis
            if not self._basis_ok:
                self.close()
        return bool(self._basis_ok) and self._pipe is not None

    def _take(self, key: str) -> bytes | Receipt | None:
        """The child's result for `key`; None once it stopped or disagrees (then never again)."""
        pipe = self._pipe
        if pipe is None:
            return None
        name = _read_frame(pipe, 4)
        data = _read_frame(pipe, 8) if name == key.encode() else None
        if not data or data[:1] not in (b"D", b"S"):
            self.close()
            return None
        return Receipt(data[1:]) if data[:1] == b"S" else data[1:]

    @property
    def running(self) -> bool:
        return self._pid is not None

    def close(self) -> None:
        """Stop the child, wherever it is (still setting up, or writing), and reap it."""
        if self._orders is not None:
            os.close(self._orders)
            self._orders = None
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._pid is not None:
            _reap(self._pid)
            self._pid = None
