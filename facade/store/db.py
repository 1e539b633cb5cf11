"""Database engines: the URL forms operators write, mapped to the installed drivers.

SQLite gets WAL (readers never wait for the writer), `synchronous=NORMAL` (a commit writes
the WAL without fsync; a power cut may lose the last commits, never corrupt the file) and a
busy timeout, so the workers of one instance can share one file. SQLite's own transaction
control is taken over (`isolation_level=None`) so a write transaction can say
`BEGIN IMMEDIATE` and take the write lock up front instead of failing on upgrade.

PostgreSQL goes through psycopg 3, which cooperates with gevent's patched sockets on its own
(no psycogreen needed), so a query waits without blocking the other requests of a worker.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_S = 10.0
PG_CONNECT_TIMEOUT_S = 5


class StoreConfigError(ValueError):
    """FACADE_DATABASE_URL cannot be used."""


def normalize_url(raw: str) -> str:
    """`postgresql://` and `postgres://` name the installed driver (psycopg 3)."""
    for scheme in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if raw.startswith(scheme):
            return "postgresql+psycopg://" + raw[len(scheme) :]
    return raw


def make_engine(raw_url: str, *, autocommit: bool = False, pool_size: int = 5) -> Engine:
    url = make_url(normalize_url(raw_url))
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        if autocommit:
            # The request path: short statements, so a fixed pool that requests wait on
            # (cooperatively, under gevent) beats overflow connections opened and closed per
            # request (that churn cost more CPU than the queries). No pre-ping: Store._pg
            # retries once on a dropped connection instead of paying a round trip per checkout.
            return create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=PG_CONNECT_TIMEOUT_S,
                pool_pre_ping=False,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                connect_args=connect_args,
            )
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size * 4,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    raise StoreConfigError(
        f"FACADE_DATABASE_URL: unsupported database {backend!r} (use sqlite or postgresql)"
    )


def _sqlite_engine(url) -> Engine:  # sqlalchemy URL
    database = url.database
    if not database or database == ":memory:":
        raise StoreConfigError(
            "FACADE_DATABASE_URL: an in-memory SQLite database cannot be shared by workers; "
            "give a file, e.g. sqlite:///var/facade.db"
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        # Writes pass execution_options(sqlite_begin="IMMEDIATE"); reads stay deferred so a
        # long report never holds the write lock the request path needs.
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine
