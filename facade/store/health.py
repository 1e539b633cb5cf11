"""Whether this worker can reach each shared store now, for /readyz's body and /metrics.

A background probe (a greenlet under gunicorn's gevent worker) pings every dependency every
`PROBE_INTERVAL_S` with a short deadline; the request path also reports a failure as soon as
it meets one. Readers only look at the last state, so `/readyz` answers at once even while a
store drops every packet. The state never fails readiness: a shared store being down would
take every replica out at once, and keys that do not need it would be cut off too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..telemetry import observe
from .bounded import PROBE_DEADLINE_S, bounded

log = logging.getLogger("facade.store")

PROBE_INTERVAL_S = 2.0


class Dependencies:
    """Up or down for each named dependency (`postgresql` or `sqlite`, and `redis`)."""

    def __init__(self, interval_s: float = PROBE_INTERVAL_S) -> None:
        self._probes: dict[str, Callable[[], None]] = {}
        self._interval_s = interval_s
        self._up: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, ping: Callable[[], None]) -> None:
        """Watch a dependency; up until a probe or a request says otherwise."""
        self._probes[name] = ping
        self._up[name] = True
        observe.dependency_up(name, True)

    def up(self, name: str) -> bool:
        return self._up.get(name, True)

    def report(self, name: str, up: bool) -> None:
        if name not in self._up:
            return
        observe.dependency_up(name, up)
        if self._up[name] != up:
            self._up[name] = up
            if up:
                log.warning("%s is reachable again", name)
            else:
                log.warning("%s is unreachable", name)

    def snapshot(self) -> dict[str, str]:
        return {name: "up" if up else "down" for name, up in self._up.items()}

    def probe(self) -> None:
        """Ping every dependency once, each within `PROBE_DEADLINE_S`."""
        for name, ping in self._probes.items():
            try:
                with bounded(PROBE_DEADLINE_S, name):
                    ping()
            except Exception as err:
                if self._up.get(name):
                    log.warning("probe of %s failed: %s", name, type(err).__name__)
                self.report(name, False)
            else:
                self.report(name, True)

    def start(self) -> None:
        if self._thread is None and self._probes:
            self._thread = threading.Thread(target=self._run, name="facade-probe", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.probe()

    def close(self) -> None:
        self._stop.set()
