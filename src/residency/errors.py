"""One exception tree. Every message names the file, the key and, where known, the fix."""

from __future__ import annotations


class ResidencyError(Exception):
    """Base of every error `residency` raises on purpose (exit code 2 at the CLI)."""


class InputError(ResidencyError):
    """A user-supplied file (map, plan, waivers, baseline) is unreadable or invalid."""

    def __init__(self, path: str | None, key: str | None, problem: str) -> None:
        problem = " ".join(problem.split())  # errors are one line, whatever the parser said
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
