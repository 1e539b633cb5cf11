"""Usage records and settlements, written off the request path in batches.

A request's end only appends to an in-memory queue. A background thread (a greenlet under
gunicorn's gevent worker) writes the queue every `flush_s` in one transaction: the usage rows,
the ledger settlements (true cost into `spent`, the reservation out of `reserved`, summed per
key and period) and the tpm corrections. Until a settlement is written its reservation stays
held, so a late flush makes a budget stricter for a moment, never overspent. `close()` (called
by gunicorn's `worker_exit` hook through `app.facade_close`) writes what is left.

The same thread prunes usage rows older than the retention period at start and once a day,
and rate slots that have left the window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from . import Store
from .limits import CORRECT_TOKENS, PRUNE_SLOTS, SETTLE_LEDGER, WINDOW_S

log = logging.getLogger("facade.usage")

INSERT_USAGE = (
    "INSERT INTO usage_records (ts, day, key_id, model, provider, upstream_model, input_tokens,"
    " output_tokens, cost_nusd, latency_s, status, request_id, ttft_s, cached_input_tokens,"
    " session_id, cache_hit)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PRUNE_USAGE = "DELETE FROM usage_records WHERE ts < ?"
MAX_QUEUE = 200_000  # if the store is down this long, drop the oldest rather than grow forever
PRUNE_SLOTS_EVERY_S = 60.0
PRUNE_USAGE_EVERY_S = 86400.0


@dataclass(slots=True)
class Settlement:
    """One finished request: its usage row and what it changes in the ledger and rate slots."""

    usage: tuple  # the usage_records row, in INSERT_USAGE order
    key_id: str
    period_start: str
    spent_nusd: int
    reserved_nusd: int
    slot: int | None = None
    token_delta: int = 0


class UsageWriter:
    def __init__(self, store: Store, redis_rates=None, *, flush_s: float, retention_days: int):
        self.store = store
        self.redis = redis_rates
        self.flush_s = flush_s
        self.retention_days = retention_days
        self._queue: deque[Settlement] = deque()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        q = store.q
        self._sql = [q(INSERT_USAGE), q(SETTLE_LEDGER), q(CORRECT_TOKENS)]

    def add(self, settlement: Settlement) -> None:
        self._queue.append(settlement)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="facade-usage", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        next_slots = next_usage = 0.0
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
                now = time.monotonic()
                if now >= next_slots and self.redis is None:
                    next_slots = now + PRUNE_SLOTS_EVERY_S
                    self.prune_slots()
                if now >= next_usage:
                    next_usage = now + PRUNE_USAGE_EVERY_S
                    self.prune_usage()
            except Exception:  # keep the thread alive: the store may come back
                log.exception("writing usage failed; will retry")

    def flush(self) -> int:
        """Write everything queued so far; returns how many requests were written."""
        with self._flush_lock:
            n = len(self._queue)
            if not n:
                return 0
            batch = [self._queue.popleft() for _ in range(n)]
            try:
                self._write(batch)
            except Exception:
                self._queue.extendleft(reversed(batch))
                while len(self._queue) > MAX_QUEUE:
                    self._queue.popleft()
                raise
            return n

    def _write(self, batch: list[Settlement]) -> None:
        ledger: dict[tuple[str, str], list[int]] = {}
        tokens: dict[tuple[str, int], int] = {}
        for s in batch:
            entry = ledger.get((s.key_id, s.period_start))
            if entry is None:
                ledger[(s.key_id, s.period_start)] = [s.spent_nusd, s.reserved_nusd]
            else:
                entry[0] += s.spent_nusd
                entry[1] += s.reserved_nusd
            if s.token_delta and s.slot is not None:
                where = (s.key_id, s.slot)
                tokens[where] = tokens.get(where, 0) + s.token_delta
        insert_usage, settle, correct = self._sql
        with self.store.transaction() as conn:
            conn.exec_driver_sql(insert_usage, [s.usage for s in batch])
            conn.exec_driver_sql(
                settle, [(k, p, spent, reserved) for (k, p), (spent, reserved) in ledger.items()]
            )
            if tokens and self.redis is None:
                conn.exec_driver_sql(correct, [(d, k, slot) for (k, slot), d in tokens.items()])
        if tokens and self.redis is not None:
            try:
                self.redis.correct(tokens)
            except Exception:  # the window only stays stricter for a minute
                log.warning("could not correct token counts in Redis", exc_info=True)

    def prune_slots(self) -> None:
        oldest = int(time.time()) - WINDOW_S
        with self.store.transaction() as conn:
            conn.exec_driver_sql(self.store.q(PRUNE_SLOTS), (oldest,))

    def prune_usage(self) -> int:
        """Delete usage rows older than the retention period (0 days: keep everything)."""
        if self.retention_days <= 0:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        with self.store.transaction() as conn:
            return conn.exec_driver_sql(self.store.q(PRUNE_USAGE), (cutoff,)).rowcount

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self.flush()
        except Exception:
            log.exception("could not write the last usage records at shutdown")
