"""Writing outputs: atomic for regular files, never clobbering what the user keeps."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

from residency.errors import ResidencyError

_INPUTS: ContextVar[frozenset[Path]] = ContextVar("residency_inputs", default=frozenset())


def note_input(path: Path) -> None:
    """Record that this run read `path`: no output of the same run may replace it."""
    try:
        resolved = path.resolve()
    except OSError:
        return
    _INPUTS.set(_INPUTS.get() | {resolved})


def run_inputs() -> frozenset[Path]:
    """The files this run has read so far (resolved)."""
    return _INPUTS.get()


@contextmanager
def atomic_output(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file handle whose content replaces `path` only when the block succeeds: a reader
    never sees half a report, and a failed run leaves the previous file as it was."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
            yield fh
        Path(tmp).chmod(_file_mode(path))  # mkstemp makes 0600; keep the usual mode
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ResidencyError(f"{path}: cannot write: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path, binary=isinstance(data, bytes)) as fh:
        fh.write(data)


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
