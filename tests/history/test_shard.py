from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from residency.errors import InputError
from residency.history import in_shard, parse_shard, shard_of
from residency.history.shard import missing_shards

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


def test_missing_shards_are_gaps_naming_them() -> None:
    gaps = missing_shards([(11, "scan:aws#1/3", "1/3"), (13, "scan:aws#3/3", "3/3")])
    assert [(g.provider, g.scope) for g in gaps] == [("aws", "shard 2/3")]
    assert "shard 2/3 of scan:aws" in gaps[0].reason and "--runs 11,13" in gaps[0].reason
    assert missing_shards([(1, "scan:aws#1/2", "1/2"), (2, "scan:aws#2/2", "2/2")]) == []


def test_each_scope_is_checked_on_its_own() -> None:
    gaps = missing_shards([(1, "scan:aws#1/2", "1/2"), (2, "scan:gcp#2/2", "2/2"),
                           (3, "check:map.yaml", None)])
    assert {(g.provider, g.scope) for g in gaps} == {("aws", "shard 2/2"), ("gcp", "shard 1/2")}


@pytest.mark.parametrize(
    ("runs", "text"),
    [
        ([(1, "scan:aws#1/2", "1/2"), (1, "scan:aws#1/2", "1/2")], "run 1 is given twice"),
        ([(1, "scan:aws#1/2", "1/2"), (2, "scan:aws#1/2", "1/2")], "both shard 1/2"),
        ([(1, "scan:aws#1/2", "1/2"), (2, "scan:aws#2/3", "2/3")], "of 2 shard(s)"),
        ([(1, "scan:aws", None), (2, "scan:aws#2/2", "2/2")], "of 1 shard(s)"),  # whole + part
        ([(1, "scan:aws", None), (2, "scan:aws", None)], "both shard 1/1"),  # two nights
        ([(1, "scan:aws#x", "x")], "unreadable shard 'x'"),
    ],
)
def test_inconsistent_runs_are_input_errors(runs: list[tuple[int, str, str | None]],
                                            text: str) -> None:
    with pytest.raises(InputError, match="--runs") as exc:
        missing_shards(runs)
    assert text in str(exc.value)
