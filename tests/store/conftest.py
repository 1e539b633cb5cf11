"""Fixtures for the store: every test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from facade.store import Store
from tests.support import pg_database, redis_namespace

TABLES = (
    "api_keys",
    "budget_ledger",
    "usage_records",
    "stored_responses",
    "budget_holds",
    "store_owners",
)


@pytest.fixture(scope="session")
def pg_url():
    with pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/store/facade.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/facade.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    if not store.is_sqlite:  # one database for the session: leave it empty
        with store.transaction() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(TABLES)))
    store.close()


@pytest.fixture
def redis_ns():
    with redis_namespace() as ns:
        yield ns
