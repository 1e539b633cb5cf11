"""Where cached answers live: each worker's memory, or Redis shared by every replica.

Both hold opaque bytes under a digest and forget them after the TTL. Neither ever raises on
the request path: a cache that cannot answer is a miss.

Memory: an LRU per worker process, bounded by the number of entries and by their bytes.
Redis: one key per entry with a TTL, plus a sorted-set index by write time that caps the
entries at `max_entries` (the oldest go first). The cap is enforced by Facade itself, so it
holds in a Redis shared with other applications whatever its `maxmemory-policy`. Timeouts are
short, and after a failure Redis is left alone for a few seconds, so an outage costs the
requests that meet it a fraction of a second each at most, not every request a timeout.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Protocol

from .resp import RespClient, RespError

log = logging.getLogger("facade.cache")


class Backend(Protocol):
    def get(self, digest: str) -> bytes | None: ...

    def put(self, digest: str, value: bytes) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    """An LRU of at most `max_entries` entries and `max_bytes` bytes, entries expiring."""

    def __init__(self, ttl_s: float, max_entries: int, max_bytes: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> bytes | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._drop(digest)
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def put(self, digest: str, value: bytes) -> None:
        if digest in self._entries:
            self._drop(digest)
        self._entries[digest] = (time.monotonic() + self.ttl_s, value)
        self.bytes += len(value)
        entries = self._entries
        while len(entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, old) = entries.popitem(last=False)
            self.bytes -= len(old)

    def _drop(self, digest: str) -> None:
        _, value = self._entries.pop(digest)
        self.bytes -= len(value)

    def close(self) -> None:
        self._entries.clear()
        self.bytes = 0


# KEYS: the entry, the index. ARGV: the value, the TTL in ms, max_entries.
# Redis's own clock orders the index, so replicas with skewed clocks agree.
PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local over = math.min(redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3]), 1000)
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('DEL', unpack(oldest))
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
redis.call('PEXPIRE', KEYS[2], ttl)
return over
"""

SOCKET_TIMEOUT_S = 0.25  # a healthy Redis answers in well under a millisecond
BACK_OFF_S = 5.0  # after a failure, no Redis call for this long: every lookup is a miss
BATCH_DELAY_S = 0.002  # writes wait this long for company, then go in one pipeline
MAX_PENDING = 10_000  # writes waiting beyond this (Redis slow) are dropped, not queued


class RedisBackend:
    """Entries in Redis under `<prefix>cache:<digest>`, capped through `<prefix>cache:index`."""

    def __init__(self, url: str, prefix: str, ttl_s: float, max_entries: int) -> None:
        # No retries: a retry would only double the wait of what becomes a miss anyway.
        self.client = RespClient(url, SOCKET_TIMEOUT_S)
        self.prefix = f"{prefix}cache:"
        self.index = f"{self.prefix}index"
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.max_entries = max_entries
        self._put_sha = hashlib.sha1(PUT.encode()).hexdigest()
        self._down_until = 0.0
        self._pending: list[tuple[str, bytes]] = []
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._closed = False

    def _usable(self) -> bool:
        return self._down_until == 0.0 or time.monotonic() >= self._down_until

    def _failed(self, what: str, err: Exception) -> None:
        if self._down_until == 0.0 or time.monotonic() >= self._down_until:
            log.warning(
                "response cache: Redis %s failed (%s); answering without the cache for %.0f s",
                what,
                type(err).__name__,
                BACK_OFF_S,
            )
        self._down_until = time.monotonic() + BACK_OFF_S

    def get(self, digest: str) -> bytes | None:
        if not self._usable():
            return None
        try:
            value = self.client.call("GET", self.prefix + digest)
        except Exception as err:  # an outage is a miss, never an error
            self._failed("read", err)
            return None
        self._down_until = 0.0
        return value

    def put(self, digest: str, value: bytes) -> None:
        """Queue the write: a writer (a greenlet under gevent) sends the queue in one pipeline.

        A request never waits for its answer to be stored, and a miss costs one round trip
        (its GET), not two: the writes of many misses share one.
        """
        if self._closed or not self._usable() or len(self._pending) >= MAX_PENDING:
            return
        self._pending.append((self.prefix + digest, value))
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="facade-cache", daemon=True)
            self._writer.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            time.sleep(BATCH_DELAY_S)
            self.flush()

    def flush(self) -> None:
        """Write every queued entry now (one pipeline; a second for a Redis that lost the
        script, with EVAL, which loads it again)."""
        batch, self._pending = self._pending, []
        if not batch or not self._usable():
            return
        tail = (self.index,)
        limits = (self.ttl_ms, self.max_entries)
        commands = [
            ("EVALSHA", self._put_sha, 2, key, *tail, value, *limits) for key, value in batch
        ]
        try:
            replies = self.client.pipeline(commands)
            lost = [c for c, r in zip(commands, replies, strict=True) if _no_script(r)]
            if lost:
                replies = self.client.pipeline([("EVAL", PUT, *c[2:]) for c in lost])
            failed = next((r for r in replies if isinstance(r, RespError)), None)
            if failed is not None:
                raise failed
        except Exception as err:
            self._failed("write", err)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        self.client.close()


def _no_script(reply: object) -> bool:
    return isinstance(reply, RespError) and str(reply).startswith("NOSCRIPT")
