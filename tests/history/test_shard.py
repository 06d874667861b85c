from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from residency.errors import InputError
from residency.history import in_shard, parse_shard, shard_of

KEYS = [f"{i:012d}" for i in range(2000)] + ["my-project", "sub-0000-1111"]


def test_every_key_in_exactly_one_shard() -> None:
    for n in (1, 2, 3, 7):
        owners = Counter(k for k in KEYS for s in range(1, n + 1) if in_shard(k, f"{s}/{n}"))
        assert set(owners) == set(KEYS) and set(owners.values()) == {1}


def test_shards_are_balanced_enough() -> None:
    sizes = Counter(shard_of(k, 4) for k in KEYS)
    assert min(sizes.values()) > len(KEYS) / 4 * 0.8


def test_shard_is_stable_across_processes_and_hash_seeds() -> None:
    code = "from residency.history import shard_of; print([shard_of(k, 5) for k in " \
           f"{KEYS[:50]!r}])"
    outputs = {
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                       text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "random")
    }
    assert outputs == {f"{[shard_of(k, 5) for k in KEYS[:50]]}\n"}
    assert shard_of("123456789012", 4) == shard_of("123456789012", 4)


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1", "a/b", "1/0", "-1/3"])
def test_bad_shard_specs(spec: str) -> None:
    with pytest.raises(InputError, match="--shard"):
        parse_shard(spec)
