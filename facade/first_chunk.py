"""Wait for a stream's first chunk, but not forever before answering the client.

A model can take minutes to its first token. Proxies and load balancers cut connections
that stay silent longer than their idle timeout, so after `keepalive_s` without a first
chunk the 200 is committed and SSE comment lines keep the connection alive. Under gevent
the first read runs in its own greenlet so that the wait can be bounded; elsewhere (the
Flask test client) it simply blocks.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import UpstreamError
from .providers import ChunkStream

Opened = tuple  # (ChunkStream, first chunk dict)


def first_of(stream: ChunkStream, provider: str) -> dict:
    """The stream's first chunk; the stream is closed if there is none or the read fails."""
    try:
        first = next(iter(stream), None)
    except BaseException:
        stream.close()
        raise
    if first is None:
        stream.close()
        raise UpstreamError(f"upstream {provider} sent an empty stream")
    return first


class PendingFirst:
    """A stream still opening, or whose first chunk is still on its way."""

    def __init__(self, greenlet) -> None:  # gevent.Greenlet
        self._greenlet = greenlet

    def wait(self, seconds: float) -> bool:
        """True once the stream and its first chunk (or their failure) have arrived."""
        self._greenlet.join(timeout=seconds)
        return self._greenlet.ready()

    def get(self) -> Opened:
        return _unwrap(self._greenlet.get())

    def cancel(self) -> None:
        """Stop waiting; the open closes its upstream connection as it unwinds."""
        self._greenlet.kill(block=False)


def open_bounded(open_first: Callable[[], Opened], keepalive_s: float) -> Opened | PendingFirst:
    """`open_first()` if it finishes within `keepalive_s`, else a PendingFirst."""
    if keepalive_s <= 0 or not _gevent_patched():
        return open_first()
    import gevent

    greenlet = gevent.spawn(_captured, open_first)
    try:
        greenlet.join(timeout=keepalive_s)
    except BaseException:
        greenlet.kill(block=False)
        raise
    if greenlet.ready():
        return _unwrap(greenlet.get())
    return PendingFirst(greenlet)


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


def _captured(open_first: Callable[[], Opened]) -> Opened | _Failed:
    """Return the failure instead of raising it: a greenlet that dies of an exception has
    its traceback printed by gevent's hub, and these failures are ordinary, handled ones."""
    try:
        return open_first()
    except Exception as err:  # handed back to the request's greenlet
        return _Failed(err)


def _unwrap(result: Opened | _Failed) -> Opened:
    if isinstance(result, _Failed):
        raise result.error
    return result


def _gevent_patched() -> bool:
    from gevent import monkey

    return monkey.is_module_patched("socket")
