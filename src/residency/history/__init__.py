"""Run history: store reports in SQLite or PostgreSQL, read, diff and merge them.

`store` and `diff` need SQLAlchemy (the `history` extra) and are imported explicitly;
sharding helpers have no dependencies so `scan` can use them without a database.
"""

from residency.history.shard import in_shard, parse_shard, shard_of

__all__ = ["in_shard", "parse_shard", "shard_of"]
