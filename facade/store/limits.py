"""Rate limits and budget reservations in the database: one short transaction per request.

Rate limits count requests and tokens in one-second slots (`rate_slots`): a request counts
from the start of the second it arrived in until 60 s later, so `Retry-After` is the whole
seconds until enough of the window has passed. The check and the increment happen under the
write lock (SQLite's, or a per-key advisory lock on PostgreSQL), so they are exact across
workers: of 20 requests at once on an rpm of 10, exactly 10 pass.

A budget is reserved by one conditional upsert on the (key, period) ledger row: it adds the
request's largest possible cost to `reserved_nusd` only if spent + reserved + it still fits,
and by a hold row naming the request and the worker that owns it (`budget_holds`), so a dead
worker's holds can be given back (see `ledger.py`). On PostgreSQL both are one statement (a
data-modifying CTE), which does nothing when the request's hold already exists: a retry after
a lost acknowledgement reserves once. The settle (true cost in, hold out) comes later,
batched (see `usage.py`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..errors import BudgetExceededError, RateLimitError
from . import Store
from .periods import period_end
from .schema import to_usd

WINDOW_S = 60


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


class SqlLimits:
    """Rate slots and budget reservations in the store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store, owner: str = "") -> None:
        self.store = store
        self.owner = owner
        q = store.q
        self._sum = q(
            "SELECT coalesce(sum(requests), 0), coalesce(sum(tokens), 0) FROM rate_slots"
            " WHERE key_id = ? AND slot > ?"
        )
        self._slots = q(
            "SELECT slot, requests, tokens FROM rate_slots WHERE key_id = ? AND slot > ?"
            " ORDER BY slot"
        )
        self._hit = q(
            "INSERT INTO rate_slots (key_id, slot, requests, tokens) VALUES (?, ?, 1, ?)"
            " ON CONFLICT (key_id, slot) DO UPDATE SET requests = rate_slots.requests + 1,"
            " tokens = rate_slots.tokens + excluded.tokens"
        )
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
        # Serializes one key's rate check and increment across PostgreSQL sessions.
        self._lock = None if store.is_sqlite else "SELECT pg_advisory_xact_lock(hashtext(%s))"

    def admit(self, ask: Ask, now: float, *, rates: bool = True) -> int | None:
        """Count the request and reserve its budget, or raise 429; returns the rate slot."""
        refuse_over_whole_budget(ask)
        rates = rates and ask.rated
        if rates and ask.tpm and ask.tokens > ask.tpm:
            raise too_many_tokens(ask)
        if not rates:
            if ask.budget_nusd is None:
                return None
            if self.store.is_sqlite:
                return self.store.atomic(lambda cur: self._reserve_step(cur, ask, now))
            # One statement (a CTE) is atomic alone: no explicit transaction needed.
            return self.store.autocommit(lambda cur: self._reserve_step(cur, ask, now))
        return self.store.atomic(lambda cur: self._admit_step(cur, ask, now))

    def check_rpm(self, ask: Ask, now: float) -> None:
        """A read, no count: 429 when the key's window is already full (see `precheck`)."""
        oldest = int(now) - WINDOW_S
        # One summed row: the window's slots (up to 60) are read only to refuse.
        ((used, _tokens),) = self.store.autocommit(
            lambda cur: cur.execute(self._sum, (ask.key_id, oldest)).fetchall()
        )
        if used >= ask.rpm:
            rows = self.store.autocommit(
                lambda cur: cur.execute(self._slots, (ask.key_id, oldest)).fetchall()
            )
            raise rate_error("rpm", ask, [(r[0], r[1]) for r in rows], used, now)

    def _admit_step(self, cur, ask: Ask, now: float) -> int:  # DBAPI cursor
        if self._lock:
            cur.execute(self._lock, (ask.key_id,))
        slot = int(now)
        oldest = slot - WINDOW_S
        ((requests, tokens),) = cur.execute(self._sum, (ask.key_id, oldest)).fetchall()
        if ask.rpm and requests + 1 > ask.rpm:
            rows = cur.execute(self._slots, (ask.key_id, oldest)).fetchall()
            raise rate_error("rpm", ask, [(r[0], r[1]) for r in rows], requests, now)
        if ask.tpm and tokens + ask.tokens > ask.tpm:
            rows = cur.execute(self._slots, (ask.key_id, oldest)).fetchall()
            raise rate_error("tpm", ask, [(r[0], r[2]) for r in rows], tokens, now)
        cur.execute(self._hit, (ask.key_id, slot, ask.tokens))
        if ask.budget_nusd is not None:
            self._reserve_step(cur, ask, now)
        return slot

    def _reserve_step(self, cur, ask: Ask, now: float) -> None:
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

PRUNE_SLOTS = "DELETE FROM rate_slots WHERE slot <= ?"
