"""Bounded waits on the store: no call to PostgreSQL, SQLite or Redis may hang a request.

A store that drops packets (or a relay that accepts and then forwards nothing) is not a
refused connection: without a bound, a query waits forever. Three layers bound it:

- every wait on a PostgreSQL socket (`BoundedConnection.wait`: each query, fetch, commit,
  rollback) gives up after `io_timeout_s` and closes the connection, whose state is then
  unknown; psycopg's `connect_timeout` bounds the connection itself;
- PostgreSQL's own `statement_timeout` ends a slow statement cleanly, and
  `idle_in_transaction_session_timeout` frees the locks of a session whose client vanished
  mid-transaction (the server cannot tell a stalled client from a slow one);
- on the request path, `bounded()` puts one deadline on the whole step (pool checkout,
  connect, queries, the retry on a dropped connection): under gevent a `gevent.Timeout`
  raises `StoreTimeoutError` wherever the request's greenlet waits.

An interrupted query (the deadline, or a client hang-up thrown into the greenlet) leaves the
connection mid-protocol; `BoundedConnection` closes it then, so the pool never hands it out
again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import pq
from psycopg.errors import _WaitTimeout  # what psycopg's wait raises when its timeout expires

# The whole store step of one request: a 503 comes well within 3 s of the request.
REQUEST_DEADLINE_S = 2.0
# One wait on the request path's PostgreSQL connections (each query, commit, ...).
HOT_IO_TIMEOUT_S = 2.0
# Admin, reports and the usage flush: bigger statements, still never forever.
BULK_IO_TIMEOUT_S = 30.0
# psycopg's connect timeout (libpq's smallest useful value is 2).
PG_CONNECT_TIMEOUT_S = 2
# Server side: a session left in a transaction by a vanished client frees its locks.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000
# Redis: each socket operation and each connect; one retry on a fresh connection.
REDIS_SOCKET_TIMEOUT_S = 1.0
# The health monitor's probes (and so /readyz's view of each dependency).
PROBE_DEADLINE_S = 1.0


class StoreTimeoutError(Exception):
    """A store step ran past its deadline (the request gets a 503)."""

    def __init__(self, dependency: str, seconds: float) -> None:
        super().__init__(f"{dependency} did not answer within {seconds:g} s")
        self.dependency = dependency


class PgWaitTimeout(psycopg.OperationalError):
    """A wait on a PostgreSQL socket ran past its bound; the connection is closed."""


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose every socket wait is bounded (see the module docstring)."""

    io_timeout_s: float = HOT_IO_TIMEOUT_S

    def wait(self, gen, interval=0.1, timeout=None):  # psycopg's signature
        try:
            return super().wait(gen, interval, self.io_timeout_s if timeout is None else timeout)
        except _WaitTimeout:
            self.pgconn.finish()
            raise PgWaitTimeout(
                f"the database did not answer within {self.io_timeout_s:g} s"
            ) from None
        except BaseException:
            # Interrupted mid-query (a deadline, a client hang-up): the protocol state is
            # unknown, so the connection must never be used again.
            if self.pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
                self.pgconn.finish()
            raise


class BulkConnection(BoundedConnection):
    io_timeout_s = BULK_IO_TIMEOUT_S


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return monkey.is_module_patched("socket")


_PATCHED: bool | None = None


@contextmanager
def bounded(seconds: float = REQUEST_DEADLINE_S, dependency: str = "database") -> Iterator[None]:
    """One deadline over a whole store step of a request (gevent workers; elsewhere each
    wait is still bounded on its own)."""
    global _PATCHED
    if _PATCHED is None:
        _PATCHED = _gevent_patched()
    if not _PATCHED:
        yield
        return
    import gevent

    with gevent.Timeout(seconds, StoreTimeoutError(dependency, seconds)):
        yield
