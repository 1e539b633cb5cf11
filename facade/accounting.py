"""The seam where limits, budgets and usage records meet the pipeline.

`admit` runs before any upstream call and may refuse (429); the returned `Admission` is
settled with the true cost once the call is measured, or released if nothing was called.

`StoreAccounting` does it for real. A key with no rpm, tpm or budget costs nothing here but an
object: its usage is journaled locally and queued for the batched writer. A limited key's
admission makes no store round trip either. Without Redis, rpm and tpm are counted in memory
the instance's workers share (`rate_window.py`, corrected there as the request settles), and
so is the budget hold (the request's largest possible cost) on SQLite (`hold_table.py`);
PostgreSQL without Redis holds it with one statement. With Redis, one script call counts the
rates, the parallel slot and the budget hold together (`store/redis_budget.py`). The
database is written by the batched settle only: see `store/usage.py`.

Each admission carries the server-made request id (unique: the usage row's key and the
hold's) and the caller's X-Request-ID, kept beside it in the row.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from . import hold_table
from .admission import Admission, FreeAdmission, StoreAdmission
from .bound import demand, largest_cost_nusd
from .config import ModelConfig, TargetConfig
from .errors import FacadeError, UnavailableError
from .keys import ApiKey
from .parallel import ParallelGate, ParallelSlot
from .settings import Settings
from .store import Store
from .store.bounded import StoreTimeoutError
from .store.health import Dependencies
from .store.limits import Ask, SqlLimits, WindowRates, budget_error, refuse_over_whole_budget
from .store.periods import PeriodClock
from .store.schema import NANO
from .store.usage import Settlement, UsageWriter, journal_root

log = logging.getLogger("facade.accounting")


class Accounting(Protocol):
    def admit(
        self,
        key: ApiKey,
        plan: list[tuple[ModelConfig, TargetConfig]],
        body: dict,
        request_id: str,
        session_id: str | None = None,
        native: dict | None = None,
        client_request_id: str | None = None,
        *,
        cached: bool = False,
    ) -> Admission:
        """Admit one request or raise 429. `cached`: answered from the response cache, so
        it asks for a request (rpm) and a parallel slot only, never tokens or budget.
        `request_id` is the server-made one (the usage row's key); `client_request_id` the
        caller's X-Request-ID, kept beside it."""

    def precheck(self, key: ApiKey) -> None: ...

    @property
    def precheck_is_remote(self) -> bool:
        """`precheck` costs a store round trip (see api/context.py, refuse_over_rate)."""

    def held_nusd(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int] | None:
        """Held per (key id, period start) when that is not the database's to say."""


class NoAccounting:
    """Counts nothing: for a gateway built without a store (unit tests of the pipeline)."""

    _admission = FreeAdmission()

    def admit(
        self,
        key: ApiKey,
        plan: list[tuple[ModelConfig, TargetConfig]],
        body: dict,
        request_id: str,
        session_id: str | None = None,
        native: dict | None = None,
        client_request_id: str | None = None,
        *,
        cached: bool = False,
    ) -> Admission:
        return self._admission

    def precheck(self, key: ApiKey) -> None:
        return None

    precheck_is_remote = False

    def held_nusd(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int] | None:
        return None


def _describe(err: Exception) -> str:
    """The error's type and message: store errors carry no secrets (never a password)."""
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class StoreAccounting:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        dependencies: Dependencies | None = None,
        max_parallel_per_key: int = 500,
    ) -> None:
        self.store = store
        self.dependencies = dependencies or Dependencies()
        self.redis = None
        if settings.redis_url:
            from .store.redis_rates import RedisRates

            self.redis = RedisRates(settings.redis_url, settings.redis_prefix)
            self.dependencies.add("redis", self.redis.ping)
        self.parallel = ParallelGate(
            max_parallel_per_key,
            self.redis.parallel if self.redis is not None else None,
            self.dependencies,
        )
        # Where budget holds live when not in the database: Redis, or for SQLite (one
        # instance's store) memory the instance's workers share (`hold_table.py`). PostgreSQL
        # without Redis holds them in the database (`store/limits.py`).
        self.holds = None
        self._local_holds = self.redis is None and store.is_sqlite
        if self.redis is not None:
            self.holds = self.redis.budget
        elif self._local_holds:
            self.holds = hold_table.shared() or hold_table.local()
        self._hold_slot: int | None = None
        self.writer = UsageWriter(
            store,
            self.redis,
            holds=self.holds,
            flush_s=settings.usage_flush_s,
            retention_days=settings.usage_retention_days,
            journal_root=journal_root(settings.journal_dir, store.url),
            lease_s=settings.lease_s,
        )
        self.limits = SqlLimits(store, self.writer.owner)
        # Without Redis, rpm and tpm are this instance's: counted in memory its workers share.
        self.rates = WindowRates() if self.redis is None else None
        self.clock = PeriodClock()
        # At once on start: settle what dead workers of this instance answered and give back
        # what they held. This worker's lease is taken by its writer thread, started by its
        # first settlement or budget hold (a hold made before it has no lease row for a
        # moment; only holds older than a lease without one are taken for orphans).
        # Neither may stop the worker from booting (gunicorn's master would exit): a store
        # that fails now is retried by the writer thread, which sweeps every lease_s / 3 and
        # prunes daily.
        try:
            self.writer.sweep(register=False)
            self.writer.prune_usage()
        except Exception:
            log.exception("could not recover what dead workers left; will retry")

    def admit(
        self,
        key: ApiKey,
        plan: list[tuple[ModelConfig, TargetConfig]],
        body: dict,
        request_id: str,
        session_id: str | None = None,
        native: dict | None = None,
        client_request_id: str | None = None,
        *,
        cached: bool = False,
    ) -> StoreAdmission:
        # A key with rpm, tpm or a budget has its parallel slot counted in Redis by the rate
        # script (a cache hit is rated by rpm alone, and holds no budget).
        scripted = key.rpm if cached else (key.rpm or key.tpm or key.budget_usd is not None)
        rated_in_redis = self.redis is not None and bool(scripted)
        parallel = self.parallel.acquire(key.id, key.max_parallel, redis=not rated_in_redis)
        try:
            admission = self._admit_limits(
                key,
                plan,
                body,
                request_id,
                parallel if rated_in_redis else None,
                session_id,
                native,
                cached,
                client_request_id,
            )
        except BaseException:
            parallel.release()
            raise
        admission.parallel = parallel
        return admission

    def _admit_limits(
        self, key, plan, body, request_id, parallel, session_id=None, native=None, cached=False,
        client_request_id=None,
    ) -> StoreAdmission:  # fmt: skip
        now = time.time()
        period_start = self.clock.start(key.budget_period, now)
        admission = StoreAdmission(
            self, key, plan, request_id, now, period_start, session_id, cached, client_request_id
        )
        if cached:  # one request of the rpm, if the key has one; no tokens, no budget
            if key.rpm is None:
                return admission
            tpm, tokens, budget, reserve = None, 0, None, 0
        elif key.rpm is None and key.tpm is None and key.budget_usd is None:
            return admission
        else:
            input_tokens, cap, n, tokens = demand(plan, body, native)
            tpm, budget = key.tpm, key.budget_usd
            reserve = 0 if budget is None else largest_cost_nusd(plan, input_tokens, cap, n)
            if budget is not None and self.writer.idle:
                self.writer.start()  # its lease covers the holds this worker makes
        ask = Ask(
            key_id=key.id,
            key_name=key.name,
            rpm=key.rpm,
            tpm=tpm,
            tokens=tokens,
            budget_nusd=None if budget is None else round(budget * NANO),
            reserve_nusd=reserve,
            period=key.budget_period,
            period_start=period_start,
            request_id=request_id,
        )
        refuse_over_whole_budget(ask)  # no wait would help: refused wherever holds live
        try:
            admission.slot = self._admit(ask, now, parallel)
        except FacadeError:
            raise
        except Exception as err:
            failed = self._dependency_of(err)
            self.dependencies.report(failed, False)
            log.warning("%s failed: %s", failed, _describe(err), extra={"request_id": request_id})
            if ask.budget_nusd is not None and not self._local_holds:
                # The store may have committed the hold and lost the acknowledgement: have
                # the writer give it back (a no-op if it was never made).
                self.writer.add(
                    Settlement(None, key.id, admission.period_start, 0, True, hold_id=request_id)
                )
            raise UnavailableError(
                "the store that enforces limits and budgets is unreachable; try again"
            ) from None
        admission.reserved = ask.reserve_nusd
        admission.tokens = ask.tokens
        return admission

    @property
    def precheck_is_remote(self) -> bool:
        return self.redis is not None

    def precheck(self, key: ApiKey) -> None:
        """Cheap before dear: refuse (429) a key whose rpm window is already full before its
        body is read and parsed. A read that counts nothing (`admit` still counts, exactly),
        so a request is never counted twice; it costs one read, for keys with an rpm only."""
        if not key.rpm:
            return
        ask = Ask(
            key_id=key.id,
            key_name=key.name,
            rpm=key.rpm,
            tpm=None,
            tokens=0,
            budget_nusd=None,
            reserve_nusd=0,
            period=key.budget_period,
            period_start="",
            request_id="",  # holds nothing: no fresh id (a uuid4 is 2 us)
        )
        try:
            if self.redis is not None:
                self.redis.check_rpm(ask)
            else:
                self.rates.check_rpm(ask, time.time())
        except FacadeError:
            raise
        except Exception as err:
            failed = self._dependency_of(err)
            self.dependencies.report(failed, False)
            log.warning("%s failed: %s", failed, _describe(err))
            raise UnavailableError(
                "the store that enforces limits and budgets is unreachable; try again"
            ) from None

    def _admit(self, ask: Ask, now: float, parallel: ParallelSlot | None) -> int | None:
        if self.redis is None:
            return self._admit_here(ask, now)
        slot = self.redis.admit(
            ask, parallel.limit if parallel is not None else 0, self.writer.owner, self._seed
        )
        if parallel is not None:
            parallel.in_redis = True
        return slot

    def _seed(self, ask: Ask) -> int:
        """The settled spend of the ask's budget period, for Redis's mirror of it."""
        return self.writer.ledger.spent(ask.key_id, ask.period_start)

    def held_nusd(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int] | None:
        """What is held now per (key id, period start) when holds live outside the
        database (Redis, shared memory); None when the database's ledger has them."""
        if self.holds is None:
            return None
        try:
            return self.holds.held(pairs)
        except Exception as err:
            self.dependencies.report("redis", False)
            raise UnavailableError("redis, which holds the budgets, is unreachable") from err

    def _admit_here(self, ask: Ask, now: float) -> int | None:
        """No Redis: rates in the instance's window, then the budget (refused: uncounted)."""
        slot = self.rates.admit(ask, now) if ask.rated else None
        try:
            if self._local_holds:
                self._hold_here(ask, now)
            else:
                self.limits.reserve(ask, now)
        except BaseException:
            if slot is not None:
                self.rates.refund(ask, slot)
            raise
        return slot

    def _hold_here(self, ask: Ask, now: float) -> None:
        """SQLite: the budget hold in the instance's shared memory (`hold_table.py`)."""
        if ask.budget_nusd is None:
            return
        try:
            if self._hold_slot is None:
                # The journal first: a sibling's sweep takes an owner with holds and no
                # journal for dead.
                self.writer.open_journal()
                self._hold_slot = self.holds.claim(self.writer.owner)
            refused = self.holds.hold(
                ask.key_id, ask.period_start, ask.budget_nusd, ask.reserve_nusd,
                self._hold_slot, lambda: self._seed(ask),
            )  # fmt: skip
        except (hold_table.TableFull, hold_table.NoSlot) as err:
            log.error("the budget hold table is full: %s", type(err).__name__)
            raise UnavailableError(
                "too many budgets are held on this instance at once; try again",
                headers={"Retry-After": "5"},
            ) from None
        if refused is not None:
            raise budget_error(ask, refused[0], refused[1], now)

    def _dependency_of(self, err: Exception) -> str:
        if isinstance(err, StoreTimeoutError):
            return err.dependency if err.dependency == "redis" else self.store.dialect
        if self.redis is not None:
            import redis

            if isinstance(err, redis.RedisError):
                return "redis"
        return self.store.dialect

    def flush(self) -> int:
        return self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        if self.rates is not None:
            self.rates.close()
        if self.redis is not None:
            self.redis.close()
