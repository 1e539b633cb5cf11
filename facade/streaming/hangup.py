"""Notice at once when a streaming client hangs up, even while the upstream is silent.

Without this, a hang-up is only seen at the next write, which during a long wait for a
first token can be minutes of a paid upstream call nobody will read. Under gevent a
greenlet waits for the client socket to turn readable; a peek that returns nothing means
the peer closed, and the callback closes the upstream call.
"""

from __future__ import annotations

import socket
from collections.abc import Callable


class HangupWatch:
    __slots__ = ("_greenlet", "gone")

    def __init__(self) -> None:
        self.gone = False
        self._greenlet = None

    def start(self, environ: dict, on_hangup: Callable[[], None]) -> None:
        sock = environ.get("gunicorn.socket")
        if sock is None or not _gevent_patched():
            return  # the Flask test client, or a server we cannot watch: writes notice it
        import gevent
        from gevent.socket import wait_read

        def watch() -> None:
            try:
                wait_read(sock.fileno())
                if sock.recv(1, socket.MSG_PEEK) != b"":
                    return  # the client sent more (a pipelined request): not a hang-up
            except OSError:
                pass
            self.gone = True
            on_hangup()

        self._greenlet = gevent.spawn(watch)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return monkey.is_module_patched("socket")
