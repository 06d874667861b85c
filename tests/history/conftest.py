"""History tests run against SQLite always and PostgreSQL when RESIDENCY_TEST_POSTGRES_URL is set.

Each PostgreSQL test gets its own schema (via `search_path`), so runs never see each other.
In CI (env `CI` set) a missing PostgreSQL URL fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ENV = "RESIDENCY_TEST_POSTGRES_URL"


def _pg_base() -> str | None:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{PG_ENV} is not set but CI is: the PostgreSQL history tests must run in CI")
    pytest.skip(f"set {PG_ENV} (e.g. postgresql://residency:residency@127.0.0.1/residency_test)"
                " to run the history tests against PostgreSQL")
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty history database of each supported kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    base = _pg_base()
    assert base is not None
    schema = f"rt_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(base).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
