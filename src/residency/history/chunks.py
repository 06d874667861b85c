"""Content-addressed chunks of stored rows: how runs share what did not change.

A run's rows of one kind are cut into chunks where a row's own hash says so (content-defined
boundaries, about `AVERAGE` rows a chunk), so an inserted or changed row changes only the
chunk it falls in, and every other chunk is byte-identical to the previous run's and stored
once. A chunk is `{"c": columns, "r": [row values…]}` as compact JSON, zlib-compressed and
named by the blake2b digest of that JSON; naming the columns keeps old chunks readable when
a later version stores more of them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

AVERAGE = 16  # rows per chunk on average: the boundary is a row hash ≡ 0 mod this
MAX_ROWS = 256  # a chunk ends here whatever the hashes say
DIGEST_BYTES = 16
"""Small chunks: a nightly drift of 1% of rows, spread over the run, then rewrites about 15%
of the chunks rather than all of them (measured in benchmarks/history_bench.py)."""
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Chunk:
    kind: str
    digest: str
    rows: int
    raw: bytes  # the uncompressed JSON; `body()` compresses it for storage

    def body(self) -> bytes:
        return zlib.compress(self.raw, 6)


def cut(kind: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[Chunk]:
    """The chunks of `rows` (each a sequence of values in `columns` order)."""
    head = b'{"c":' + _DUMPS(list(columns)).encode() + b',"r":['
    batch: list[bytes] = []
    for row in rows:
        data = _DUMPS(list(row)).encode()
        batch.append(data)
        if zlib.crc32(data) % AVERAGE == 0 or len(batch) >= MAX_ROWS:
            yield _chunk(kind, head, batch)
            batch = []
    if batch:
        yield _chunk(kind, head, batch)


def _chunk(kind: str, head: bytes, batch: list[bytes]) -> Chunk:
    raw = head + b",".join(batch) + b"]}"
    digest = hashlib.blake2b(kind.encode() + b"\0" + raw, digest_size=DIGEST_BYTES).hexdigest()
    return Chunk(kind, digest, len(batch), raw)


def rows_of(body: bytes) -> list[dict[str, Any]]:
    """A stored chunk's rows as dicts keyed by column name."""
    data = json.loads(zlib.decompress(body))
    columns = data["c"]
    return [dict(zip(columns, values, strict=True)) for values in data["r"]]


def pack_digests(digests: Iterable[str]) -> bytes:
    """A run's chunk list as stored: the binary digests, concatenated."""
    return b"".join(bytes.fromhex(d) for d in digests)


def unpack_digests(data: bytes) -> list[str]:
    n = DIGEST_BYTES
    return [data[i:i + n].hex() for i in range(0, len(data), n)]
