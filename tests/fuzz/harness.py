"""Running the CLI in-process on a mutated input and checking the exit-code contract.

Properties (every example): the exit code is 0, 1 or 2; no traceback in stdout or stderr; no
exception escaped other than SystemExit; on exit 2, stderr is exactly one line naming the
mutated file; output files are complete (parse in their format) when the run succeeded, and
absent when it failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, Phase, settings

from residency.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("RESIDENCY_FUZZ_EXAMPLES", "0")) or None
INVOKE_TIMEOUT = float(os.environ.get("RESIDENCY_FUZZ_TIMEOUT", "10"))

# per target: number of examples run and the exit codes seen (printed in the terminal summary)
RUNS: dict[str, Counter[int | str]] = defaultdict(Counter)


def fuzz_settings(default: int) -> settings:
    """Derandomized with a fixed budget (RESIDENCY_FUZZ_EXAMPLES overrides it locally)."""
    return settings(
        derandomize=True,
        database=None,
        max_examples=EXAMPLES or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much, HealthCheck.large_base_example],
        print_blob=False,
        # no shrinking: a mutant's description already says what changed, and shrinking a
        # hang would cost INVOKE_TIMEOUT per attempt
        phases=[Phase.explicit, Phase.generate],
    )


class Hang(BaseException):  # not an Exception: the CLI boundary must not catch it
    """The command ran longer than INVOKE_TIMEOUT seconds."""


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    def fire(_signum: int, _frame: object) -> None:
        raise Hang(f"no result after {seconds}s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Run:
    args: list[str]
    result: Result

    @property
    def code(self) -> int:
        return self.result.exit_code

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr


def invoke(target: str, args: list[str], cwd: Path | None = None) -> Run:
    """`residency ARGS` in-process (the group's invoke is the exit-code boundary)."""
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(_watchdog(INVOKE_TIMEOUT))
        try:
            result = CliRunner().invoke(cli, args)
        except Hang as exc:
            RUNS[target]["hang"] += 1
            raise AssertionError(f"hang: residency {' '.join(args)}: {exc}") from None
    RUNS[target][result.exit_code] += 1
    return Run(args, result)


def check_contract(run: Run, mutated: Path | list[Path] | None, what: str = "") -> None:
    """The properties every example must satisfy (`mutated`: the file(s) that may be named)."""
    res = run.result
    where = f"{what}\n  command: residency {' '.join(_short(a) for a in run.args)}"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"escaped exception {type(res.exception).__name__}: "
                             f"{res.exception!s:.300}{where}") from res.exception
    out = res.output
    assert "Traceback" not in out and "Traceback" not in res.stderr, \
        f"traceback in output{where}\n{res.stderr[-2000:]}"
    assert run.code in (0, 1, 2), \
        f"exit {run.code}{where}\n  stderr: {res.stderr.strip()[-1500:]}"
    if run.code == 2:
        err = res.stderr
        assert err.endswith("\n") and err.count("\n") == 1, \
            f"exit 2 but stderr is not one line{where}\n  stderr: {err[-1500:]!r}"
        if mutated is not None:
            names = [str(p) for p in (mutated if isinstance(mutated, list) else [mutated])]
            assert any(n in err for n in names), \
                f"exit 2 but stderr does not name {names}{where}\n  stderr: {err.strip()}"


def check_output_file(run: Run, path: Path, fmt: str) -> None:
    """A written report is complete; a failed run leaves no (partial) file behind."""
    if run.code == 2:
        assert not path.exists(), f"exit 2 but {path} was written"
        return
    assert path.exists(), f"exit {run.code} but no {path}"
    data = path.read_bytes()
    if fmt in ("json", "sarif"):
        json.loads(data)
    elif fmt == "junit":
        ET.fromstring(data)  # noqa: S314 - our own output
    elif fmt == "html":
        text = data.decode()
        assert text.rstrip().endswith("</html>"), f"{path} is cut short"
    else:
        assert data.strip(), f"{path} is empty"


def _short(arg: str) -> str:
    return arg if len(arg) < 200 else f"{arg[:80]}...({len(arg)} chars)"
