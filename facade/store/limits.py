"""What a request asks of its key, the 429s it may get, and budget reservations in the store.

rpm and tpm are counted in one-second slots: a request counts from the start of the second it
arrived in until 60 s later, so `Retry-After` is the whole seconds until enough of the window
has passed. Without Redis the window is in memory shared by the workers of one instance
(`WindowRates` over `rate_window.py`: no store round trip, exact across workers); with Redis,
in Redis (`redis_rates.py`, shared by every replica). Both refuse with the errors made here.

A budget is reserved by one conditional upsert on the (key, period) ledger row: it adds the
request's largest possible cost to `reserved_nusd` only if spent + reserved + it still fits,
and by a hold row naming the request and the worker that owns it (`budget_holds`), so a dead
worker's holds can be given back (see `ledger.py`). On SQLite both run in one short write
transaction; on PostgreSQL they are one statement (a data-modifying CTE), which does nothing
when the request's hold already exists: a retry after a lost acknowledgement reserves once.
The settle (true cost in, hold out) comes later, batched (see `usage.py`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from .. import rate_window
from ..errors import BudgetExceededError, RateLimitError, UnavailableError
from ..rate_window import WINDOW_S, RateTable, Refused, TableFull
from . import Store
from .periods import period_end
from .schema import to_usd

log = logging.getLogger("facade.limits")


@dataclass(slots=True)
class Ask:
    """What one request asks of its key: a request, tokens, and a budget reservation."""

    key_id: str
    key_name: str
    rpm: int | None
    tpm: int | None
    tokens: int
    budget_nusd: int | None
    reserve_nusd: int
    period: str
    period_start: str
    # The hold's key: the request's server-made id (fresh when the caller gives none).
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def rated(self) -> bool:
        return bool(self.rpm or self.tpm)


def retry_after(slots: list[tuple[int, int]], excess: int, now: float) -> float:
    """Seconds until `excess` has left the window; `slots` are (slot, amount), oldest first."""
    freed = 0
    for slot, amount in slots:
        freed += amount
        if freed >= excess:
            return max(slot + WINDOW_S - now, 0.001)
    return float(WINDOW_S)


def rate_error(kind: str, ask: Ask, slots: list[tuple[int, int]], used: int, now: float):
    if kind == "rpm":
        wait = retry_after(slots, used + 1 - ask.rpm, now)
        what = f"{ask.rpm} requests per minute"
    else:
        wait = retry_after(slots, used + ask.tokens - ask.tpm, now)
        what = f"{ask.tpm} tokens per minute"
    return RateLimitError(
        f"rate limit exceeded: this key allows {what}; retry in {max(1, int(wait + 0.999))} s",
        retry_after_s=wait,
    )


def parallel_error(limit: int, in_flight: int) -> RateLimitError:
    return RateLimitError(
        f"rate limit exceeded: this key allows {limit} parallel requests and {in_flight} are "
        "in flight; retry in 1 s",
        retry_after_s=1,
    )


def too_many_tokens(ask: Ask) -> RateLimitError:
    return RateLimitError(
        f"rate limit exceeded: this request may use {ask.tokens} tokens, more than this key's "
        f"{ask.tpm} tokens per minute; lower max_tokens or shorten the messages",
        retry_after_s=WINDOW_S,
    )


def budget_error(ask: Ask, spent_nusd: int, reserved_nusd: int, now: float) -> BudgetExceededError:
    budget = to_usd(ask.budget_nusd)
    headers = {}
    end = period_end(ask.period, ask.period_start)
    if end is not None:
        headers["Retry-After"] = str(max(1, int(end.timestamp() - now + 0.999)))
    return BudgetExceededError(
        f"budget exceeded: the {ask.period} budget of ${budget:.6g} for the key "
        f"'{ask.key_name}' is spent "
        f"(spent ${to_usd(spent_nusd):.6g}, held for requests in flight "
        f"${to_usd(reserved_nusd):.6g}; this request could cost up to "
        f"${to_usd(ask.reserve_nusd):.6g})",
        headers=headers,
    )


def refuse_over_whole_budget(ask: Ask) -> None:
    """429 at once for a request that could cost more than the whole budget: no wait helps."""
    if ask.budget_nusd is not None and ask.reserve_nusd > ask.budget_nusd:
        raise BudgetExceededError(
            f"budget exceeded: this request could cost up to ${to_usd(ask.reserve_nusd):.6g}, "
            f"more than this key's whole {ask.period} budget of "
            f"${to_usd(ask.budget_nusd):.6g}; lower max_tokens"
        )


class WindowRates:
    """rpm and tpm of one instance, in the window its workers share: the limiter without Redis.

    Under gunicorn the table is the one its master made before forking; elsewhere (Flask's
    test client, the CLI) a private one of this object's own."""

    def __init__(self, table: RateTable | None = None) -> None:
        self._own = table is None and rate_window.shared() is None
        self.table = table or rate_window.shared() or RateTable(shared=False)
        self._full_logged = 0.0

    def admit(self, ask: Ask, now: float) -> int:
        """Count the request (and its tokens, for a key with a tpm) or raise 429; returns the
        slot it was counted in."""
        if ask.tpm and ask.tokens > ask.tpm:
            raise too_many_tokens(ask)
        tokens = ask.tokens if ask.tpm else 0
        try:
            return self.table.admit(ask.key_id, ask.rpm or 0, ask.tpm or 0, tokens, now)
        except Refused as no:
            raise rate_error(no.kind, ask, no.slots, no.used, now) from None
        except TableFull:
            if now - self._full_logged >= WINDOW_S:  # one line a minute, not one a request
                self._full_logged = now
                log.error(
                    "the rate table is full: %d keys were counted in the last minute on this "
                    "instance; new keys with rpm or tpm get 503 until one is idle for a minute",
                    self.table.max_keys,
                )
            raise UnavailableError(
                "too many keys with rate limits are active on this instance; try again",
                headers={"Retry-After": "5"},
            ) from None

    def check_rpm(self, ask: Ask, now: float) -> None:
        """A read, no count: 429 when the key's window is already full (see `precheck`)."""
        try:
            self.table.check_rpm(ask.key_id, ask.rpm, now)
        except Refused as no:
            raise rate_error("rpm", ask, no.slots, no.used, now) from None

    def refund(self, ask: Ask, slot: int) -> None:
        """Take back a counted request whose budget reservation then failed."""
        self.table.adjust(ask.key_id, slot, -1, -ask.tokens if ask.tpm else 0)

    def correct(self, key_id: str, slot: int, delta: int) -> None:
        """Settle tpm: estimated tokens out, true tokens in (while the slot is in the window)."""
        self.table.adjust(key_id, slot, 0, delta)

    def close(self) -> None:
        if self._own:
            self.table.close()


class SqlLimits:
    """Budget reservations in the store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store, owner: str = "") -> None:
        self.store = store
        self.owner = owner
        q = store.q
        self._reserve = q(
            "INSERT INTO budget_ledger (key_id, period_start, spent_nusd, reserved_nusd)"
            " VALUES (?, ?, 0, ?) ON CONFLICT (key_id, period_start) DO UPDATE"
            " SET reserved_nusd = budget_ledger.reserved_nusd + excluded.reserved_nusd"
            " WHERE budget_ledger.spent_nusd + budget_ledger.reserved_nusd"
            " + excluded.reserved_nusd <= ?"
        )
        self._ledger = q(
            "SELECT spent_nusd, reserved_nusd FROM budget_ledger"
            " WHERE key_id = ? AND period_start = ?"
        )
        self._hold = q(
            "INSERT INTO budget_holds (request_id, key_id, period_start, amount_nusd, owner, ts)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )

    def reserve(self, ask: Ask, now: float) -> None:
        """Hold the request's largest possible cost against its key's budget, or raise 429;
        nothing for a key without a budget."""
        if ask.budget_nusd is None:
            return
        refuse_over_whole_budget(ask)
        if self.store.is_sqlite:
            self.store.atomic(lambda cur: self._reserve_step(cur, ask, now))
        else:  # one statement (a CTE) is atomic alone: no explicit transaction needed
            self.store.autocommit(lambda cur: self._reserve_step(cur, ask, now))

    def _reserve_step(self, cur, ask: Ask, now: float) -> None:  # DBAPI cursor
        if self.store.is_sqlite:
            cur.execute(
                self._reserve, (ask.key_id, ask.period_start, ask.reserve_nusd, ask.budget_nusd)
            )
            held = cur.rowcount == 1
            if held:
                cur.execute(
                    self._hold,
                    (ask.request_id, ask.key_id, ask.period_start, ask.reserve_nusd, self.owner,
                     now),
                )  # fmt: skip
        else:
            args = {
                "rid": ask.request_id,
                "key": ask.key_id,
                "period": ask.period_start,
                "amount": ask.reserve_nusd,
                "budget": ask.budget_nusd,
                "owner": self.owner,
                "ts": now,
            }
            ((held,),) = cur.execute(PG_RESERVE, args).fetchall()
        if not held:
            rows = cur.execute(self._ledger, (ask.key_id, ask.period_start)).fetchall()
            spent, reserved = rows[0] if rows else (0, 0)
            raise budget_error(ask, spent, reserved, now)


# Reserve and hold in one statement; 1 when held (now, or by an earlier try of this request
# whose acknowledgement was lost), 0 when the budget cannot cover it.
PG_RESERVE = """
WITH prior AS (
  SELECT 1 FROM budget_holds WHERE request_id = %(rid)s::varchar
), reserved AS (
  INSERT INTO budget_ledger AS l (key_id, period_start, spent_nusd, reserved_nusd)
  SELECT %(key)s::varchar, %(period)s::varchar, 0, %(amount)s::bigint
  WHERE NOT EXISTS (SELECT 1 FROM prior)
  ON CONFLICT (key_id, period_start) DO UPDATE
  SET reserved_nusd = l.reserved_nusd + excluded.reserved_nusd
  WHERE l.spent_nusd + l.reserved_nusd + excluded.reserved_nusd <= %(budget)s::bigint
  RETURNING 1
), held AS (
  INSERT INTO budget_holds (request_id, key_id, period_start, amount_nusd, owner, ts)
  SELECT %(rid)s::varchar, %(key)s::varchar, %(period)s::varchar, %(amount)s::bigint,
         %(owner)s::varchar, %(ts)s::float8
  FROM reserved
  RETURNING 1
)
SELECT (SELECT count(*) FROM prior) + (SELECT count(*) FROM held)
"""
