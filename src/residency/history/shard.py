"""Deterministic sharding of cloud scopes for `scan --shard K/N`.

A stable hash (not Python's per-process salted `hash`) of the account, project or
subscription id, so every CI job agrees which shard owns which scope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from residency.errors import InputError
from residency.model import CoverageGap


def shard_of(key: str, n: int) -> int:
    """The 0-based shard (of `n`) that owns `key`."""
    if n < 1:
        raise ValueError(f"shard count must be at least 1, not {n}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


def parse_shard(spec: str) -> tuple[int, int]:
    """`"K/N"` (1-based K, as CI matrices count) → (K, N); InputError otherwise."""
    k_text, sep, n_text = spec.partition("/")
    try:
        k, n = int(k_text), int(n_text)
    except ValueError:
        k = n = 0
    if not sep or n < 1 or not 1 <= k <= n:
        raise InputError(None, "--shard", f"{spec!r} is not K/N with 1 <= K <= N (e.g. 2/4)")
    return k, n


def in_shard(key: str, spec: str) -> bool:
    """Whether shard `spec` ("K/N") owns `key`; the N shards cover every key exactly once."""
    k, n = parse_shard(spec)
    return shard_of(key, n) == k - 1


def missing_shards(runs: Iterable[tuple[int, str, str | None]]) -> list[CoverageGap]:
    """Coverage gaps for the shards `evaluate --runs` was not given: (run id, scope, shard).

    Runs are grouped by scope without the `#K/N` suffix; a run with no shard is shard 1/1.
    A group must be one scan: the same N throughout, each K once. Anything else (a run given
    twice, two runs of one shard, shard counts that differ) is an inconsistent request and
    raises InputError; a K absent from a group becomes a gap naming it, never a pass.
    """
    given: dict[int, str] = {}
    groups: dict[str, dict[int, int]] = {}
    counts: dict[str, tuple[int, int]] = {}  # scope -> (N, the run that said so)
    for run_id, scope, shard in runs:
        if run_id in given:
            raise InputError(None, "--runs", f"run {run_id} is given twice")
        given[run_id] = scope
        base = scope.partition("#")[0]
        try:
            k, n = parse_shard(shard or "1/1")
        except InputError:
            raise InputError(None, "--runs", f"run {run_id} records an unreadable shard "
                             f"{shard!r}") from None
        n_seen, first = counts.setdefault(base, (n, run_id))
        if n != n_seen:
            raise InputError(None, "--runs", f"run {run_id} is shard {k}/{n} of {base} but run "
                             f"{first} is of {n_seen} shard(s): give the runs of one scan")
        shards = groups.setdefault(base, {})
        if k in shards:
            raise InputError(None, "--runs", f"runs {shards[k]} and {run_id} are both shard "
                             f"{k}/{n} of {base}: give one run per shard")
        shards[k] = run_id
    listed = ",".join(map(str, given))
    gaps = []
    for base, shards in groups.items():
        n = counts[base][0]
        provider = base.partition(":")[2] or base  # "scan:aws,gcp" -> "aws,gcp"
        gaps += [
            CoverageGap(provider, f"shard {k}/{n}",
                        f"no run of shard {k}/{n} of {base} was given (--runs {listed}); the "
                        "accounts, projects and subscriptions it owns were not evaluated")
            for k in range(1, n + 1) if k not in shards
        ]
    return gaps
