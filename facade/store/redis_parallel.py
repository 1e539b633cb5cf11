"""Requests in flight per key across replicas, in Redis, with leases for processes that die.

One hash per key (`par:<key id>`): each worker process keeps its own count under its own
field (`<host>:<pid>:<random>`) and a lease expiry beside it (`<field>:e`, Redis's clock).
Counting sums the fields whose lease is alive and deletes the others, so what a dead process
(a SIGKILLed worker, a lost replica) held is given back within `LEASE_S`. Each process renews
its leases every `RENEW_S` with its true counts, which also repairs a count a failed release
left behind. A key with rpm or tpm is counted inside the rate script (`redis_rates.py`): one
round trip for both; any other key costs one script call here. Releases cost no round trip of
their own: they ride along with the process's next acquire (applied before it counts), or a
flush at most `RELEASE_DELAY_S` later, whichever comes first.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

from .bounded import bounded

log = logging.getLogger("facade.store")

LEASE_S = 15
RENEW_S = 5.0
RELEASE_DELAY_S = 0.02

# Sum of the live holders of KEYS[1] (dead ones deleted); defines `in_flight(key, me, now)`.
IN_FLIGHT_LUA = """
local function in_flight(key, me, now)
  local flat = redis.call('HGETALL', key)
  local counts, expiry = {}, {}
  for i = 1, #flat, 2 do
    local f = flat[i]
    if string.sub(f, -2) == ':e' then
      expiry[string.sub(f, 1, -3)] = tonumber(flat[i + 1])
    else
      counts[f] = tonumber(flat[i + 1])
    end
  end
  local total, dead = 0, {}
  for holder, n in pairs(counts) do
    local e = expiry[holder]
    if holder ~= me and (e == nil or e < now) then
      dead[#dead + 1] = holder
      dead[#dead + 1] = holder .. ':e'
    elseif n > 0 then
      total = total + n
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  return total
end
local function hold(key, me, now, lease)
  redis.call('HINCRBY', key, me, 1)
  redis.call('HSET', key, me .. ':e', now + lease)
  redis.call('EXPIRE', key, lease * 4)
end
"""

# KEYS[1] the key's hash, KEYS[2..] hashes this process has releases for; ARGV: limit (0:
# only release), me, lease, then one release count per KEYS[2..]. {1} counted, or {0, in
# flight}.
ACQUIRE = (
    IN_FLIGHT_LUA
    + """
for i = 2, #KEYS do
  if redis.call('HINCRBY', KEYS[i], ARGV[2], -tonumber(ARGV[i + 2])) < 0 then
    redis.call('HSET', KEYS[i], ARGV[2], 0)
  end
end
if tonumber(ARGV[1]) == 0 then return {1} end
local now = tonumber(redis.call('TIME')[1])
local total = in_flight(KEYS[1], ARGV[2], now)
if total + 1 > tonumber(ARGV[1]) then return {0, total} end
hold(KEYS[1], ARGV[2], now, tonumber(ARGV[3]))
return {1}
"""
)

# KEYS: the hashes this process holds slots in; ARGV: me, lease, then one count per key.
RENEW = """
local now = tonumber(redis.call('TIME')[1])
local me, lease = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS do
  local n = tonumber(ARGV[i + 2])
  if n > 0 then
    redis.call('HSET', KEYS[i], me, n, me .. ':e', now + lease)
    redis.call('EXPIRE', KEYS[i], lease * 4)
  else
    redis.call('HDEL', KEYS[i], me, me .. ':e')
  end
end
return 0
"""


class RedisParallel:
    """This process's holdings in Redis: counted, released, and their leases renewed."""

    def __init__(self, client, prefix: str) -> None:  # a redis.Redis
        self.client = client
        self.prefix = prefix
        self.me = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.held: dict[str, int] = {}
        self._releases: dict[str, int] = {}  # given back here, not yet in Redis
        self._flush_due: threading.Timer | None = None
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def key(self, key_id: str) -> str:
        return f"{self.prefix}par:{key_id}"

    def acquire(self, key_id: str, limit: int) -> int | None:
        """Count one more request unless `limit` are in flight across replicas: None when
        counted, else how many are in flight."""
        releases, self._releases = self._releases, {}
        keys = [self.key(key_id), *(self.key(k) for k in releases)]
        with bounded(dependency="redis"):
            result = self._acquire(keys=keys, args=[limit, self.me, LEASE_S, *releases.values()])
        if result[0] != 1:
            return int(result[1])
        self.counted(key_id)
        return None

    def counted(self, key_id: str) -> None:
        """A slot was taken in Redis (here or inside the rate script)."""
        self.held[key_id] = self.held.get(key_id, 0) + 1
        if self._thread is None:
            self._start()

    def release(self, key_id: str) -> None:
        """Give a slot back: in Redis with the next acquire, or a flush shortly after."""
        self.held[key_id] = max(0, self.held.get(key_id, 0) - 1)
        self._releases[key_id] = self._releases.get(key_id, 0) + 1
        if self._flush_due is None and not self._stop.is_set():
            self._flush_due = threading.Timer(RELEASE_DELAY_S, self._flush)
            self._flush_due.daemon = True
            self._flush_due.start()

    def _flush(self) -> None:
        self._flush_due = None
        releases, self._releases = self._releases, {}
        if not releases or self._stop.is_set():
            return
        first, *rest = releases
        try:
            with bounded(dependency="redis"):
                self._acquire(
                    keys=[self.key(first), self.key(first), *(self.key(k) for k in rest)],
                    args=[0, self.me, LEASE_S, *releases.values()],
                )
        except Exception as err:  # the next renewal writes the true counts
            log.warning("releasing parallel slots in redis failed: %s", type(err).__name__)

    def renew(self) -> None:
        """Write this process's true counts with fresh leases; forget keys it no longer holds."""
        held = dict(self.held)
        self._releases = {}  # the absolute counts written below include them
        if not held:
            return
        with bounded(dependency="redis"):
            self._renew(keys=[self.key(k) for k in held], args=[self.me, LEASE_S, *held.values()])
        for key_id, n in held.items():
            if n == 0 and self.held.get(key_id) == 0:
                del self.held[key_id]

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="facade-leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(RENEW_S):
            try:
                self.renew()
            except Exception as err:  # Redis may come back; the leases are renewed then
                log.warning("renewing parallel leases in redis failed: %s", type(err).__name__)

    def close(self) -> None:
        """Give back what this process still holds (a clean stop)."""
        self._stop.set()
        timer = self._flush_due
        if timer is not None:
            timer.cancel()
        for key_id in self.held:
            self.held[key_id] = 0
        try:
            self.renew()
        except Exception:
            pass
