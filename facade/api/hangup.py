"""Notice at once when a streaming client hangs up, even while the upstream is silent.

Without this, a hang-up is only seen at the next write, which during a long wait for a
first token can be minutes of a paid upstream call nobody will read. Under gevent a
greenlet waits for the client socket to turn readable; a peek that returns nothing means
the peer closed, and `ClientClosedError` is thrown into the request's greenlet wherever it
is blocked (an upstream read, a retry wait), which closes the upstream connection.
"""

from __future__ import annotations

import socket

from ..errors import ClientClosedError


class HangupWatch:
    __slots__ = ("_greenlet", "gone")

    def __init__(self, environ: dict) -> None:
        self.gone = False
        self._greenlet = None
        sock = environ.get("gunicorn.socket")
        if sock is not None and _gevent_patched():
            self._start(sock)
        # Else: the Flask test client or another server; a write to a gone client still fails.

    def _start(self, sock: socket.socket) -> None:
        import gevent
        from gevent.socket import wait_read

        request_greenlet = gevent.getcurrent()

        def watch() -> None:
            try:
                wait_read(sock.fileno())
                if sock.recv(1, socket.MSG_PEEK) != b"":
                    return  # the client sent more (a pipelined request): not a hang-up
            except OSError:
                pass
            self.gone = True
            gevent.kill(request_greenlet, ClientClosedError("client closed"))

        self._greenlet = gevent.spawn(watch)

    def stop(self) -> None:
        """Stop watching; call before work that must not be interrupted (settling usage)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None


def _gevent_patched() -> bool:
    """Whether sockets are gevent's (under gunicorn's gevent worker); asked once a process."""
    global _PATCHED
    if _PATCHED is None:
        from gevent import monkey

        _PATCHED = monkey.is_module_patched("socket")
    return _PATCHED


_PATCHED: bool | None = None
