"""A token bucket for failed authentications: a few wrong guesses pass, a flood gets 429s.

One bucket per worker, sized so that an instance allows about `per_s` failures a second in
all (its workers share the load). While it is empty every attempt is refused before its key
is even compared: otherwise a guesser would learn from 429-or-200 at full speed.
"""

from __future__ import annotations

import threading
import time


class FailureThrottle:
    def __init__(self, per_s: float, burst: float) -> None:
        self.rate = per_s
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait_s(self) -> float:
        """0 when an attempt may go ahead, else the seconds until one may."""
        with self._lock:
            self._refill(time.monotonic())
            return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def failed(self) -> None:
        with self._lock:
            self._refill(time.monotonic())
            self._tokens = max(self._tokens - 1, 0.0)
