"""Rate limits shared by every replica: one Lua script, one Redis round trip per request.

Same model as `rate_window.py` (one-second slots, a request counts for 60 s), kept
in one hash per key (`r:<slot>` requests, `t:<slot>` tokens) that expires a minute after its
last use. The script reads Redis's own clock, so replicas with skewed clocks agree, and runs
atomically, so the check and the increment cannot interleave with another replica's.
The key's requests in flight (`max_parallel`, `redis_parallel.py`) and its budget hold
(`redis_budget.py`) are counted in the same script: a limited key still costs one round trip
(two the first time a budget period is used, to seed its spend from the database).

Every call is bounded: a one-second socket timeout (connect and each read), one retry on a
fresh connection, and on the request path one deadline over both (`bounded.py`), so a
Redis that drops packets gives a 503 within the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .bounded import REDIS_SOCKET_TIMEOUT_S, bounded
from .limits import WINDOW_S, Ask, budget_error, parallel_error, rate_error, too_many_tokens
from .redis_budget import BUDGET_TTL_S, RedisBudget
from .redis_parallel import IN_FLIGHT_LUA, LEASE_S, RedisParallel

# KEYS[1] the rate hash, KEYS[2] the in-flight hash, KEYS[3] the budget hash, KEYS[4] the
# owner's holds, KEYS[5] hold-owners; ARGV: rpm, tpm, tokens, window, then max_parallel (0: not
# counted here), this process's holder name and its lease, then the budget (-1: none), the
# amount to hold, the request id, the seed for a missing spent mirror (-1: none), the
# owner, the budget hash's time to live.
ADMIT = (
    IN_FLIGHT_LUA
    + """
local rpm, tpm, need = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local slot = tonumber(t[1])
local now = slot + tonumber(t[2]) / 1000000
local oldest = slot - tonumber(ARGV[4])
local flat = redis.call('HGETALL', KEYS[1])
local requests, tokens, rs, ts, stale = 0, 0, {}, {}, {}
for i = 1, #flat, 2 do
  local s, v = tonumber(string.sub(flat[i], 3)), tonumber(flat[i + 1])
  if s <= oldest then
    stale[#stale + 1] = flat[i]
  elseif string.sub(flat[i], 1, 1) == 'r' then
    requests = requests + v
    rs[#rs + 1] = s .. ':' .. v
  else
    tokens = tokens + v
    ts[#ts + 1] = s .. ':' .. v
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
local parallel = tonumber(ARGV[5])
if parallel > 0 then
  local busy = in_flight(KEYS[2], ARGV[6], slot)
  if busy + 1 > parallel then return {0, 'parallel', busy} end
end
if rpm > 0 and requests + 1 > rpm then
  return {0, 'rpm', requests, tostring(now), rs}
end
if tpm > 0 and tokens + need > tpm then
  return {0, 'tpm', tokens, tostring(now), ts}
end
local budget = tonumber(ARGV[8])
if budget >= 0 then
  local spent = redis.call('HGET', KEYS[3], 'spent')
  if not spent then
    if tonumber(ARGV[11]) < 0 then return {0, 'seed'} end
    redis.call('HSET', KEYS[3], 'spent', ARGV[11])
    spent = ARGV[11]
  end
  local held = tonumber(redis.call('HGET', KEYS[3], 'held') or '0')
  if redis.call('HEXISTS', KEYS[4], ARGV[10]) == 0 then
    if tonumber(spent) + held + tonumber(ARGV[9]) > budget then
      return {0, 'budget', tonumber(spent), held}
    end
    redis.call('HSET', KEYS[4], ARGV[10], KEYS[3] .. ' ' .. ARGV[9])
    redis.call('HINCRBY', KEYS[3], 'held', ARGV[9])
  end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[13]))
  redis.call('ZADD', KEYS[5], now, ARGV[12])
end
if rpm > 0 or tpm > 0 then
  redis.call('HINCRBY', KEYS[1], 'r:' .. slot, 1)
  if need > 0 then redis.call('HINCRBY', KEYS[1], 't:' .. slot, need) end
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]) + 1)
end
if parallel > 0 then hold(KEYS[2], ARGV[6], slot, tonumber(ARGV[7])) end
return {1, slot}
"""
)

# The rpm check of ADMIT alone, read-only: the requests counted in the window.
PEEK = """
local t = redis.call('TIME')
local slot = tonumber(t[1])
local oldest = slot - tonumber(ARGV[1])
local flat = redis.call('HGETALL', KEYS[1])
local requests, rs = 0, {}
for i = 1, #flat, 2 do
  local s = tonumber(string.sub(flat[i], 3))
  if s > oldest and string.sub(flat[i], 1, 1) == 'r' then
    requests = requests + tonumber(flat[i + 1])
    rs[#rs + 1] = s .. ':' .. flat[i + 1]
  end
end
return {requests, tostring(slot + tonumber(t[2]) / 1000000), rs}
"""

# Add to a slot only while it is still in the window (a late correction must not revive it).
ADJUST = """
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""


# Connections one worker keeps to Redis for limits, holds and in-flight counts.
REDIS_MAX_CONNECTIONS = 64


class RedisRates:
    def __init__(self, url: str, prefix: str) -> None:
        # A blocking pool: hundreds of requests in flight on one worker share a bounded set of
        # connections and wait their turn (within the request's deadline) instead of
        # failing with redis-py's "Too many connections" past its default of 100.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self.client = redis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 1))
        self.prefix = prefix
        self.parallel = RedisParallel(self.client, prefix)
        self.budget = RedisBudget(self.client, prefix)
        self._admit = self.client.register_script(ADMIT)
        self._adjust = self.client.register_script(ADJUST)
        self._peek = self.client.register_script(PEEK)

    def _key(self, key_id: str) -> str:
        return f"{self.prefix}rate:{key_id}"

    def admit(
        self,
        ask: Ask,
        max_parallel: int = 0,
        owner: str = "",
        seed: Callable[[Ask], int] | None = None,
    ) -> int:
        """Count the request, hold a parallel slot (with `max_parallel`) and its budget
        (with `ask.budget_nusd`, for `owner`), all or nothing, or raise 429; returns the rate
        slot. `seed(ask)` reads the period's settled spend from the database, asked for only
        when Redis has no mirror of it."""
        if ask.tpm and ask.tokens > ask.tpm:
            raise too_many_tokens(ask)
        tokens = ask.tokens if ask.tpm else 0
        parallel, budget = self.parallel, self.budget
        keys = [
            self._key(ask.key_id), parallel.key(ask.key_id),
            budget.budget_key(ask.key_id, ask.period_start), budget.holds_key(owner),
            budget.owners_key,
        ]  # fmt: skip
        args = [
            ask.rpm or 0, ask.tpm or 0, tokens, WINDOW_S, max_parallel, parallel.me, LEASE_S,
            -1 if ask.budget_nusd is None else ask.budget_nusd, ask.reserve_nusd,
            ask.request_id, -1, owner, BUDGET_TTL_S,
        ]  # fmt: skip
        with bounded(dependency="redis"):
            result = self._admit(keys=keys, args=args)
        if result[0] == 0 and result[1] == b"seed" and seed is not None:
            args[10] = seed(ask)  # outside the deadline above: the database has its own
            with bounded(dependency="redis"):
                result = self._admit(keys=keys, args=args)
        if result[0] == 1:
            if max_parallel:
                parallel.counted(ask.key_id)
            return int(result[1])
        kind = result[1].decode()
        if kind == "parallel":
            raise parallel_error(max_parallel, int(result[2]))
        if kind == "budget":
            raise budget_error(ask, int(result[2]), int(result[3]), time.time())
        if kind == "seed":
            raise RuntimeError("the budget's spend could not be seeded")
        used, now = int(result[2]), float(result[3])
        slots = sorted(tuple(map(int, e.split(b":"))) for e in result[4])
        raise rate_error(kind, ask, slots, used, now)

    def check_rpm(self, ask: Ask) -> None:
        """A read, no count: 429 when the key's window is already full."""
        with bounded(dependency="redis"):
            used, now, entries = self._peek(keys=[self._key(ask.key_id)], args=[WINDOW_S])
        if int(used) >= ask.rpm:
            slots = sorted(tuple(map(int, e.split(b":"))) for e in entries)
            raise rate_error("rpm", ask, slots, int(used), float(now))

    def correct(self, deltas: dict[tuple[str, int], int]) -> None:
        """Settle tpm: estimated tokens out, true tokens in, one pipeline for the batch."""
        if not deltas:
            return
        pipe = self.client.pipeline(transaction=False)
        for (key_id, slot), delta in deltas.items():
            self._adjust(keys=[self._key(key_id)], args=[f"t:{slot}", delta], client=pipe)
        pipe.execute()

    def ping(self) -> None:
        with bounded(dependency="redis"):
            self.client.ping()

    def close(self) -> None:
        self.parallel.close()
        self.client.close()
