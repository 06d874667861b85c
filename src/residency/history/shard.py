"""Deterministic sharding of cloud scopes for `scan --shard K/N`.

A stable hash (not Python's per-process salted `hash`) of the account, project or
subscription id, so every CI job agrees which shard owns which scope.
"""

from __future__ import annotations

import hashlib

from residency.errors import InputError


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
