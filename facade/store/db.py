"""Database engines: the URL forms operators write, mapped to the installed drivers.

SQLite gets WAL (readers never wait for the writer), `synchronous=NORMAL` (a commit writes
the WAL without fsync; a power cut may lose the last commits, never corrupt the file) and a
busy timeout, so the workers of one instance can share one file. SQLite's own transaction
control is taken over (`isolation_level=None`) so a write transaction can say
`BEGIN IMMEDIATE` and take the write lock up front instead of failing on upgrade.

PostgreSQL goes through psycopg 3, which cooperates with gevent's patched sockets on its own
(no psycogreen needed), so a query waits without blocking the other requests of a worker.
Every wait on it is bounded (`bounded.py`): a stalled server costs a request a 503, never a
hang.

Start-up: `PRAGMA journal_mode = WAL` needs the file's exclusive lock and does not always go
through the busy handler, so workers opening a fresh file at once could fail with "database
is locked". The mode is persistent: a connection only sets it when the file is not in WAL
yet, and retries while another process holds the lock.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# Admin work, reports, the usage flush and start-up wait this long for another writer.
SQLITE_BUSY_TIMEOUT_S = 10.0
# The request path's own connection waits less: a SQLite wait blocks the whole worker.
SQLITE_HOT_BUSY_TIMEOUT_S = 2.0
# How long a connection keeps trying to switch a fresh file to WAL while others hold it.
SQLITE_WAL_SETUP_S = 30.0


class StoreConfigError(ValueError):
    """FACADE_DATABASE_URL cannot be used."""


def normalize_url(raw: str) -> str:
    """`postgresql://` and `postgres://` name the installed driver (psycopg 3)."""
    for scheme in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if raw.startswith(scheme):
            return "postgresql+psycopg://" + raw[len(scheme) :]
    return raw


def sqlite_path(raw_url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other database."""
    url = make_url(normalize_url(raw_url))
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database)


def make_engine(raw_url: str, *, autocommit: bool = False, pool_size: int = 5) -> Engine:
    url = make_url(normalize_url(raw_url))
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return _pg_engine(url, autocommit=autocommit, pool_size=pool_size)
    raise StoreConfigError(
        f"FACADE_DATABASE_URL: unsupported database {backend!r} (use sqlite or postgresql)"
    )


def _pg_engine(url, *, autocommit: bool, pool_size: int) -> Engine:  # sqlalchemy URL
    from .bounded import (
        HOT_IO_TIMEOUT_S,
        IDLE_IN_TRANSACTION_TIMEOUT_MS,
        PG_CONNECT_TIMEOUT_S,
        BoundedConnection,
        BulkConnection,
    )

    # The request path's statements are tiny: the server ends one that runs long (a lock
    # wait) before the client's own bound, leaving the connection usable.
    statement_ms = int(HOT_IO_TIMEOUT_S * 1000 * 0.8) if autocommit else 0
    options = (
        f"-c statement_timeout={statement_ms}"
        f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    )
    connect_args = {
        "connect_timeout": PG_CONNECT_TIMEOUT_S,
        "options": options,
        # A peer that vanishes (no FIN, no RST) is noticed by the kernel too.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": int(HOT_IO_TIMEOUT_S * 1000 * 5),
    }
    engine = _pg_engine_for(url, autocommit, pool_size, connect_args)
    connection_class = BoundedConnection if autocommit else BulkConnection

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return connection_class.connect(*cargs, **cparams)

    return engine


def _pg_engine_for(url, autocommit: bool, pool_size: int, connect_args: dict) -> Engine:
    from .bounded import REQUEST_DEADLINE_S

    if autocommit:
        # The request path: short statements, so a fixed pool that requests wait on
        # (cooperatively, under gevent) beats overflow connections opened and closed per
        # request (that churn cost more CPU than the queries). No pre-ping: Store._pg
        # retries once on a dropped connection instead of paying a round trip per checkout.
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=REQUEST_DEADLINE_S,
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
        pool_timeout=30,
        connect_args=connect_args,
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
        _wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        # Writes pass execution_options(sqlite_begin="IMMEDIATE"); reads stay deferred so a
        # long report never holds the write lock the request path needs.
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def _wal(cursor) -> None:  # a sqlite3 cursor
    """Switch the file to WAL unless it is already; retry while another process holds it."""
    deadline = time.monotonic() + SQLITE_WAL_SETUP_S
    pause = 0.01
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
