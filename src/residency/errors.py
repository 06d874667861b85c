"""One exception tree. Every message names the file, the key and, where known, the fix."""

from __future__ import annotations

MAX_PROBLEM = 400  # characters of an error's problem text


class ResidencyError(Exception):
    """Base of every error `residency` raises on purpose (exit code 2 at the CLI)."""


class InputError(ResidencyError):
    """A user-supplied file (map, plan, waivers, baseline) is unreadable or invalid."""

    def __init__(self, path: str | None, key: str | None, problem: str) -> None:
        problem = " ".join(problem.split())  # errors are one line, whatever the parser said
        if len(problem) > MAX_PROBLEM:  # a 100,000-character value is named, not echoed
            problem = problem[: MAX_PROBLEM - 1] + "…"
        if key and len(key) > MAX_PROBLEM // 2:
            key = key[: MAX_PROBLEM // 2 - 1] + "…"
        self.path = path
        self.key = key
        self.problem = problem
        where = path or "<input>"
        if key:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {problem}")


class PolicyError(InputError):
    """A policy pack file is missing, malformed or inconsistent."""


class CollectorError(ResidencyError):
    """A collector could not start at all (no credentials, SDK missing)."""
