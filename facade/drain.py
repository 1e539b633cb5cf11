"""Graceful drain on SIGTERM: readiness fails at once, and streams end properly.

A worker replaced by a SIGHUP config reload gets the same SIGTERM but *retires* instead: it
refuses nothing (the instance stays in service; new workers already run the new config), it
only finishes what it has and closes its keep-alive connections so clients move over.

gunicorn's gevent worker stops accepting on SIGTERM and lets in-flight requests run for
`graceful_timeout`, then kills their greenlets, which would cut a stream mid-sentence with
no error event. So shortly before that deadline every stream still running is interrupted
with a 503 `unavailable` error event and `[DONE]`, which a client can act on (retry
elsewhere). Usage is then settled and flushed as each relay ends.
"""

from __future__ import annotations

import logging
import socket
import weakref

from .errors import UnavailableError

log = logging.getLogger("facade.drain")
# Time left before gunicorn's hard stop for the error events to reach the clients.
MARGIN_S = 2.0
# Idle keep-alive connections may carry one last request (a readiness check that now gets
# 503, with Connection: close) for this long; then they are closed.
IDLE_GRACE_S = 2.0


class Drain:
    def __init__(self, gateway) -> None:  # facade.gateway.Gateway
        self._gateway = gateway
        self._streams: set = set()
        # Client connections between two requests. gunicorn's worker waits for every
        # connection to end before it exits; an idle keep-alive one would hold it until the
        # master's SIGKILL, and the exit hooks (usage flush, span export) would never run.
        self._idle: weakref.WeakSet = weakref.WeakSet()
        self._retiring = False

    @property
    def draining(self) -> bool:
        return self._gateway.draining

    def track(self, relay) -> None:  # facade.api.relay.Relay
        self._streams.add(relay)

    def untrack(self, relay) -> None:
        self._streams.discard(relay)

    def connection_busy(self, environ: dict) -> None:
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            self._idle.discard(sock)

    def connection_idle(self, environ: dict) -> None:
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return
        if self._gateway.draining or self._retiring:
            _shut(sock)  # gunicorn closes it too (Connection: close); no need to wait
        else:
            self._idle.add(sock)

    def begin(self, graceful_timeout_s: float, retire: bool = False) -> None:
        """Called from the worker's SIGTERM handler; `retire` after a config reload."""
        if self._gateway.draining or self._retiring:
            return
        if retire:
            self._retiring = True
            log.info(
                "retiring after a config reload: %d streams get %.0f s to finish",
                len(self._streams),
                graceful_timeout_s,
            )
        else:
            self._gateway.draining = True
            log.info(
                "draining: readiness fails now; %d streams get %.0f s to finish",
                len(self._streams),
                graceful_timeout_s,
            )
        import gevent

        gevent.spawn_later(min(IDLE_GRACE_S, graceful_timeout_s), self._close_idle)
        gevent.spawn_later(max(0.0, graceful_timeout_s - MARGIN_S), self._cut)

    def _close_idle(self) -> None:
        for sock in list(self._idle):
            _shut(sock)
        self._idle.clear()

    def _cut(self) -> None:
        if self._streams:
            log.warning("drain deadline: ending %d streams with an error event", len(self._streams))
        for relay in list(self._streams):
            relay.interrupt(UnavailableError("the server is shutting down; retry the request"))


def _shut(sock: socket.socket) -> None:
    """Shut the connection down so its waiting reader sees a clean end of file.

    gevent's own `shutdown()` would cancel that reader with an EBADF error instead, which
    gunicorn logs as a failure; a duplicate of the descriptor shuts the same connection
    down without touching the original object's waiters.
    """
    try:
        dup = socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return  # already closed
    try:
        dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        dup.close()
