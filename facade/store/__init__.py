"""The store: keys, budgets and usage in SQLite or PostgreSQL.

Rates (rpm, tpm) are not here: they are counted in memory shared by an instance's workers
(`rate_window.py`) or, with Redis, in Redis (`redis_rates.py`). Two ways in. Admin work,
reports and the batched usage flush use SQLAlchemy Core on `engine`. The request path (key
lookup and budget reservation) goes straight to a DBAPI cursor with fixed SQL the driver
prepares once: it runs on every request, and SQLAlchemy's per-statement overhead would be
most of its cost.

SQLite: one connection per worker process for the request path, under a lock. No greenlet
switch can happen inside a SQLite transaction (the driver never yields), so transactions stay
a few microseconds long, and other processes wait for the write lock through the busy timeout.
PostgreSQL: pooled autocommit connections; a multi-statement step runs in an explicit
transaction, a single statement (the budget reservation) in one round trip.
Each step has one deadline (`bounded.py`): a stalled server gives the request a 503.
SQLite's request-path connection waits at most `SQLITE_HOT_BUSY_TIMEOUT_S` for another
process's write lock (a SQLite wait cannot yield, so it holds up the whole worker).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from .db import SQLITE_HOT_BUSY_TIMEOUT_S, make_engine
from .migrations import migrate

log = logging.getLogger("facade.store")
T = TypeVar("T")


class Store:
    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.engine: Engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        migrate(self.engine)
        self._lock = threading.Lock()
        self._hot_engine: Engine | None = None
        self._sqlite = None
        if self.is_sqlite:
            self._sqlite = self.engine.raw_connection()
            self._cursor = self._sqlite.cursor()
            self._cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_HOT_BUSY_TIMEOUT_S * 1000)}")
        else:
            self._hot_engine = make_engine(url, autocommit=True, pool_size=pool_size)

    def q(self, sql: str) -> str:
        """SQL written with `?` placeholders, in the driver's own style."""
        return sql if self.is_sqlite else sql.replace("?", "%s")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A Core write transaction (SQLite: `BEGIN IMMEDIATE`, so it never fails on upgrade)."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    # -- the request path: DBAPI cursors --------------------------------------------------
    def atomic(self, step: Callable[[Any], T]) -> T:
        """Run `step(cursor)` in one short write transaction; an exception rolls it back."""
        if self.is_sqlite:
            with self._lock:
                cur = self._cursor
                cur.execute("BEGIN IMMEDIATE")
                try:
                    result = step(cur)
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
                return result
        return self._pg(step, transaction=True)

    def autocommit(self, step: Callable[[Any], T]) -> T:
        """Run `step(cursor)` outside an explicit transaction: for one statement, atomic alone."""
        if self.is_sqlite:
            with self._lock:
                return step(self._cursor)
        return self._pg(step, transaction=False)

    def _pg(self, step: Callable[[Any], T], *, transaction: bool) -> T:
        from .bounded import bounded

        with bounded():
            return self._pg_step(step, transaction)

    def _pg_step(self, step: Callable[[Any], T], transaction: bool) -> T:
        import psycopg

        from .bounded import PgWaitTimeout

        for attempt in (1, 2):
            raw = self._hot_engine.raw_connection()
            conn = raw.driver_connection
            try:
                if transaction:
                    with conn.transaction(), conn.cursor() as cur:
                        return step(cur)
                with conn.cursor() as cur:
                    return step(cur)
            except psycopg.OperationalError as err:
                # A connection the server dropped (restart, idle timeout): retry once on a
                # fresh one instead of paying a ping on every checkout. A server that does not
                # answer at all is not retried: the request's deadline is spent.
                raw.invalidate()
                if attempt == 2 or isinstance(err, PgWaitTimeout):
                    raise
            except BaseException:
                # A refusal (429) leaves the connection fine; an interruption (the deadline, a
                # client hang-up) mid-query has closed it (BoundedConnection).
                if conn.closed or conn.broken:
                    raw.invalidate()
                raise
            finally:
                raw.close()
        raise AssertionError("unreachable")

    # -- health and shutdown ----------------------------------------------------------------
    def ping(self) -> None:
        self.autocommit(lambda cur: cur.execute("SELECT 1").fetchall())

    def close(self) -> None:
        if self._sqlite is not None:
            with self._lock:
                self._cursor.close()
                self._sqlite.close()
                self._sqlite = None
        if self._hot_engine is not None:
            self._hot_engine.dispose()
        self.engine.dispose()
