"""Print how many mutated inputs each fuzz target ran, and the exit codes they gave."""

from __future__ import annotations

from typing import Any

from .harness import RUNS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RUNS:
        return
    tr = terminalreporter
    tr.section("residency fuzz: invocations per target")
    total = 0
    for target, codes in sorted(RUNS.items()):
        n = sum(codes.values())
        total += n
        spread = ", ".join(f"exit {c}: {k}" for c, k in sorted(codes.items(), key=str))
        tr.write_line(f"{target:<10} {n:>6}  ({spread})")
    tr.write_line(f"{'total':<10} {total:>6}")
