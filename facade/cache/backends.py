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

import logging
import time
from collections import OrderedDict
from typing import Protocol

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


class RedisBackend:
    """Entries in Redis under `<prefix>cache:<digest>`, capped through `<prefix>cache:index`."""

    def __init__(self, url: str, prefix: str, ttl_s: float, max_entries: int) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # a retry would only double the wait of a miss
            health_check_interval=30,
        )
        self.prefix = f"{prefix}cache:"
        self.index = f"{self.prefix}index"
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.max_entries = max_entries
        self._put = self.client.register_script(PUT)
        self._down_until = 0.0

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
            value = self.client.get(self.prefix + digest)
        except Exception as err:  # an outage is a miss, never an error
            self._failed("read", err)
            return None
        self._down_until = 0.0
        return value

    def put(self, digest: str, value: bytes) -> None:
        if not self._usable():
            return
        try:
            self._put(
                keys=[self.prefix + digest, self.index],
                args=[value, self.ttl_ms, self.max_entries],
            )
        except Exception as err:
            self._failed("write", err)

    def close(self) -> None:
        self.client.close()
