"""`max_parallel`: requests of one key in flight at once, per instance and across replicas.

Every request holds a slot from admission until it settles or is released (a stream: until
it ends, however it ends). The instance's count lives in memory shared by its workers
(`inflight.py`: no store round trip, a dead worker's slots freed by gunicorn's master at
once). With Redis the count is also kept across replicas (`store/redis_parallel.py`): inside
the rate script for a key with rpm or tpm, one script call for any other key. When Redis is
unreachable a key that needs it for nothing else keeps being served, capped per instance
only: its limits are its parallel cap and nothing else, and refusing it would cut off every
key that has no limits.
"""

from __future__ import annotations

import logging

from . import inflight
from .errors import FacadeError
from .store.health import Dependencies
from .store.limits import parallel_error
from .store.redis_parallel import RedisParallel

log = logging.getLogger("facade.parallel")


class ParallelSlot:
    """One request's slot; `release()` gives it back exactly once."""

    __slots__ = ("gate", "key_id", "limit", "in_redis")

    def __init__(self, gate: ParallelGate, key_id: str, limit: int) -> None:
        self.gate = gate
        self.key_id = key_id
        self.limit = limit
        self.in_redis = False

    def release(self) -> None:
        gate, self.gate = self.gate, None
        if gate is None:
            return
        if self.in_redis:
            gate.redis.release(self.key_id)
        table, column = inflight.local()
        table.release(self.key_id, column)


class ParallelGate:
    def __init__(
        self,
        default_limit: int,
        redis: RedisParallel | None = None,
        dependencies: Dependencies | None = None,
    ) -> None:
        self.default_limit = default_limit
        self.redis = redis
        self.dependencies = dependencies

    def acquire(self, key_id: str, limit: int | None, *, redis: bool) -> ParallelSlot:
        """Take a slot on this instance, and in Redis too when `redis` (False: the rate
        script will count it, or there is no Redis); 429 "parallel" when none is free."""
        limit = limit or self.default_limit
        table, column = inflight.local()
        busy = table.acquire(key_id, limit, column)
        if busy is not None:
            raise parallel_error(limit, busy)
        slot = ParallelSlot(self, key_id, limit)
        if redis and self.redis is not None:
            try:
                self._acquire_redis(slot)
            except BaseException:
                slot.release()
                raise
        return slot

    def _acquire_redis(self, slot: ParallelSlot) -> None:
        deps = self.dependencies
        if deps is not None and not deps.up("redis"):
            return  # known down: counted on this instance only, no wait for a timeout
        try:
            busy = self.redis.acquire(slot.key_id, slot.limit)
        except FacadeError:  # the client hung up meanwhile: not Redis's fault
            raise
        except Exception as err:
            if deps is not None:
                deps.report("redis", False)
            log.warning(
                "redis unreachable for the parallel count; counting on this instance only: %s",
                type(err).__name__,
            )
            return
        if busy is not None:
            raise parallel_error(slot.limit, busy)
        slot.in_redis = True
