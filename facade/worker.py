"""gunicorn's gevent worker, made to take turns: one connection cannot hold the worker.

gunicorn's async worker serves a keep-alive connection in a loop (`AsyncWorker.handle`):
parse the next request, handle it, repeat. A gevent greenlet only gives the others a turn
when it would block, and reading a socket whose kernel buffer already holds the next request
(a client that pipelines, or streams bodies back to back) never blocks. So one such
connection kept the worker to itself for seconds: other clients, live streams and even the
heartbeat waited, until the arbiter killed the worker (WORKER TIMEOUT) and cut every stream.

`FairGeventWorker` yields once after every request of a connection until the event loop's
next turn, so a busy connection is served between the others' requests, not instead of them.
It also discards the unread rest of a body itself, in large slices with turns between them.
`gevent.sleep(0)` is not enough: it resumes from the loop's callback queue, which runs up to
50 callbacks before it polls for I/O, so a flooding connection still got 50 requests in a row
(500 ms of 500 KB bodies). A sleep on a timer, however short, resumes only after the loop has
polled I/O and run the other connections that became ready. Reading a large body
takes turns too: the app reads bodies in slices and yields between them
(`facade.api.blueprint.read_body`). A cap on requests per connection would not help: the
client reconnects, and the requests up to the cap would still run back to back.

It is gunicorn's documented extension point, a worker class named in `gunicorn.conf.py`
(`worker_class = "facade.worker.FairGeventWorker"`). This module imports neither the app nor
`requests`, since the master imports it before any worker patches.
"""

from __future__ import annotations

from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker

# Any positive value makes the sleep wait on a timer, i.e. for the loop's next turn.
NEXT_TURN_S = 1e-6
DISCARD_SLICE = 256 * 1024


class FairGeventWorker(GeventWorker):
    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        # A request the app answered without reading its body (a 401, a 429 before the body)
        # would leave gunicorn to discard it 1 KiB at a time: 35 ms of CPU per megabyte.
        # Read in large slices, with turns between them, it costs about 1 ms.
        served = super().handle_request(listener_name, req, sock, addr)
        discard_body(req.body)
        # Let every other ready connection (and the heartbeat) have a turn before this
        # connection's next request is parsed.
        gevent.sleep(NEXT_TURN_S)
        return served


def discard_body(body: Any) -> None:
    """Read what is left of a request body (gunicorn's `Body`, or None), in large slices,
    yielding between them."""
    if body is None:
        return
    try:
        while body.read(DISCARD_SLICE):
            gevent.sleep(NEXT_TURN_S)
    except OSError:
        raise  # the client is gone: gunicorn closes the connection
    except Exception:
        # A malformed chunked body: gunicorn sees `body.failed` and closes the connection
        # instead of parsing another request on it.
        return
