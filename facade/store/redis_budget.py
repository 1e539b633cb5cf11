"""Budget holds in Redis, beside the rate counts: a limited key costs one round trip.

With Redis, the request path holds a request's largest possible cost in Redis, inside the
rate script (`redis_rates.py`), instead of in the database: a second round trip (to
PostgreSQL) per request would cost more CPU than the rest of the admission together. The
database stays the ledger of record: usage rows and settled spend are written there, in
batches (`usage.py`), and Redis keeps what the check needs:

- `bud:<key id>:<period start>`, a hash: `held` (the sum of live holds) and `spent`, a mirror
  of the ledger's settled spend. The mirror only ever grows by max-merging the absolute
  values the ledger returns after each commit, so writers in any order agree; when it is
  missing (first use, a Redis restart, a reclaim) the rate script asks for it and the worker
  seeds it from the database (one read, then the script again).
- `holds:<owner>`, a hash per worker (the usage writer's owner, whose lease lives in the
  database's `store_owners`): request id -> "<budget hash> <amount>". A hold is made once per
  request id (a retried script holds once) and leaves once (`HDEL` decides), so `held`
  never counts a request twice; it is clamped at zero besides.
- `hold-owners`, a sorted set: owner -> when it last held, to find the holds of an owner that
  has no lease row (see `ledger.orphan_owners`).

A settlement gives its hold back only after its usage row and spend are committed to the
database (a late release makes the budget stricter for a moment, never overspent). When a
worker dies, its holds are reclaimed by the same sweep that replays its journal; reclaiming
also drops the mirrors it touched, so the next admission reads spend afresh from the
database, including anything the dead worker committed but never mirrored.
"""

from __future__ import annotations

from collections.abc import Iterable

from .bounded import bounded

# KEYS[1] the owner's holds; KEYS[2..n+1] budget hashes whose spent is updated.
# ARGV[1] n, ARGV[2..n+1] their spent (absolute, from the ledger), then request ids to give
# back. Returns the nano-dollars given back.
SETTLE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local known = redis.call('HGET', KEYS[i + 1], 'spent')
  if known and tonumber(ARGV[i + 1]) > tonumber(known) then
    redis.call('HSET', KEYS[i + 1], 'spent', ARGV[i + 1])
  end
end
local freed = 0
for i = n + 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    redis.call('HDEL', KEYS[1], ARGV[i])
    local at = string.find(v, ' ', 1, true)
    local budget, amount = string.sub(v, 1, at - 1), tonumber(string.sub(v, at + 1))
    if redis.call('HINCRBY', budget, 'held', -amount) < 0 then
      redis.call('HSET', budget, 'held', 0)
    end
    freed = freed + amount
  end
end
return freed
"""

# KEYS[1] the owner's holds, KEYS[2] hold-owners; ARGV[1] the owner. Gives back every hold and
# drops the spent mirrors they were made against. Returns the nano-dollars given back.
RECLAIM = """
local flat = redis.call('HGETALL', KEYS[1])
local freed = 0
for i = 1, #flat, 2 do
  local v = flat[i + 1]
  local at = string.find(v, ' ', 1, true)
  local budget, amount = string.sub(v, 1, at - 1), tonumber(string.sub(v, at + 1))
  if redis.call('HINCRBY', budget, 'held', -amount) < 0 then
    redis.call('HSET', budget, 'held', 0)
  end
  redis.call('HDEL', budget, 'spent')
  freed = freed + amount
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return freed
"""

# Seconds a budget hash outlives its last use: longer than any period but `total`, whose
# hash is rebuilt from the ledger when it has expired.
BUDGET_TTL_S = 40 * 86400


class RedisBudget:
    """Names of the budget keys, and the writes that come after the database's."""

    def __init__(self, client, prefix: str) -> None:  # a redis.Redis
        self.client = client
        self.prefix = prefix
        self.owners_key = f"{prefix}hold-owners"
        self._settle = client.register_script(SETTLE)
        self._reclaim = client.register_script(RECLAIM)

    def budget_key(self, key_id: str, period_start: str) -> str:
        return f"{self.prefix}bud:{key_id}:{period_start}"

    def holds_key(self, owner: str) -> str:
        return f"{self.prefix}holds:{owner}"

    def settle(
        self, owner: str, spent: dict[tuple[str, str], int], held: list, new: set | None = None
    ) -> int:
        """Mirror the ledger's new spend, then give back `owner`'s holds of the settlements
        `held`; either may be empty. A hold leaves once whatever `new` says (HDEL decides):
        every one of them is given back, rows written before or not. Returns nano-dollars."""
        released = [s.request_id for s in held]
        if not spent and not released:
            return 0
        keys = [self.holds_key(owner), *(self.budget_key(k, p) for k, p in spent)]
        with bounded(dependency="redis"):
            return int(self._settle(keys=keys, args=[len(spent), *spent.values(), *released]))

    def reclaim(self, owner: str) -> int:
        """Give back everything `owner` holds (it is dead, or stopping)."""
        with bounded(dependency="redis"):
            return int(self._reclaim(keys=[self.holds_key(owner), self.owners_key], args=[owner]))

    def quiet_owners(self, ts: float) -> list[str]:
        """Owners whose last hold is older than `ts` (Redis's clock): the sweep gives back
        the holds of those among them without a lease row."""
        with bounded(dependency="redis"):
            found = self.client.zrangebyscore(self.owners_key, "-inf", ts)
        return [o.decode() if isinstance(o, bytes) else o for o in found]

    def held(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Nano-dollars held now for each (key id, period start)."""
        pairs = list(pairs)
        if not pairs:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for key_id, start in pairs:
            pipe.hget(self.budget_key(key_id, start), "held")
        with bounded(dependency="redis"):
            values = pipe.execute()
        return {pair: int(v or 0) for pair, v in zip(pairs, values, strict=True)}
