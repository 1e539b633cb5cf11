"""Idempotent settlement: usage rows, spend, budget holds and their owners' leases.

Every write here may run twice (a batch retried after its COMMIT's acknowledgement was
lost, a journal replayed by two processes, a dead worker's holds reclaimed while its journal
is replayed) and must count once:
- a usage row is inserted only if its server-made `server_request_id` is new (a unique index and
  `ON CONFLICT DO NOTHING`), and its cost goes into `spent_nusd` only when it was new, in
  the same transaction;
- a budget hold is a row of its own (`budget_holds`, one per request, with its owner); it
  leaves `reserved_nusd` only by being deleted (`DELETE ... RETURNING`), so it leaves once,
  and the subtraction is clamped at zero in SQL besides.

Owners are workers. Each renews a lease (`store_owners.expires_at`) while it lives; holds of
an owner whose lease ran out are given back by any other worker (`reclaim`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from . import Store

USAGE_COLUMNS = (
    "ts, day, key_id, model, provider, upstream_model, input_tokens, output_tokens, cost_nusd,"
    " latency_s, status, request_id, ttft_s, cached_input_tokens, session_id, cache_hit,"
    " server_request_id"
)
# PostgreSQL: the whole batch in one statement, column by column, returning the new ids.
PG_INSERT_USAGE = (
    f"INSERT INTO usage_records ({USAGE_COLUMNS}) SELECT * FROM unnest("
    "%s::float8[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[],"
    " %s::varchar[], %s::int[], %s::int[], %s::bigint[], %s::float8[], %s::int[],"
    " %s::varchar[], %s::float8[], %s::int[], %s::varchar[], %s::bool[], %s::varchar[])"
    " ON CONFLICT (server_request_id) DO NOTHING RETURNING server_request_id"
)
SERVER_ID = 16  # where the server's request id is in a usage tuple (11: the caller-facing one)
PG_TYPES = (
    float, str, str, str, str, str, int, int, int, float, int, str, float, int, str, bool, str
)  # fmt: skip
SQLITE_INSERT_USAGE = (
    f"INSERT INTO usage_records ({USAGE_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (server_request_id) DO NOTHING"
)
PG_RELEASE = (
    "DELETE FROM budget_holds WHERE request_id = ANY(%s::varchar[])"
    " RETURNING key_id, period_start, amount_nusd"
)
SQLITE_RELEASE = (
    "DELETE FROM budget_holds WHERE request_id = ? RETURNING key_id, period_start, amount_nusd"
)
RECLAIM = "DELETE FROM budget_holds WHERE owner = ? RETURNING key_id, period_start, amount_nusd"
SETTLE = (
    "INSERT INTO budget_ledger (key_id, period_start, spent_nusd, reserved_nusd)"
    " VALUES (?, ?, ?, 0) ON CONFLICT (key_id, period_start) DO UPDATE"
    " SET spent_nusd = budget_ledger.spent_nusd + excluded.spent_nusd,"
    " reserved_nusd = {greatest}(0, budget_ledger.reserved_nusd - ?)"
)
UNHOLD = (
    "UPDATE budget_ledger SET reserved_nusd = {greatest}(0, reserved_nusd - ?)"
    " WHERE key_id = ? AND period_start = ?"
)
RENEW = (
    "INSERT INTO store_owners (owner, instance, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at"
)
EXPIRED = "SELECT owner FROM store_owners WHERE expires_at < ?"
LEASED = "SELECT owner FROM store_owners WHERE owner = ?"
SPENT = "SELECT spent_nusd FROM budget_ledger WHERE key_id = ? AND period_start = ?"
OF_INSTANCE = "SELECT owner FROM store_owners WHERE instance = ?"
DROP_OWNER = "DELETE FROM store_owners WHERE owner = ?"
# Holds whose owner has no lease row at all (it was dropped while a hold was being made).
ORPHANS = (
    "SELECT DISTINCT owner FROM budget_holds h WHERE NOT EXISTS"
    " (SELECT 1 FROM store_owners o WHERE o.owner = h.owner) AND h.ts < ?"
)


@dataclass(slots=True)
class Settlement:
    """One finished request: its usage row, what it changes in the ledger and, with Redis, the
    tpm correction of its rate slot (without Redis that is made in memory as it settles)."""

    usage: tuple | None  # the usage_records row (USAGE_COLUMNS order); None: a hold only
    key_id: str
    period_start: str
    spent_nusd: int
    # The budget hold made for it, to be given back: its amount in nano-dollars (0: none; a
    # hold in the database or Redis is found by the request id, so any true value will do).
    held: int
    slot: int | None = None
    token_delta: int = 0
    hold_id: str = ""  # the request id when there is no usage row

    @property
    def request_id(self) -> str:
        """The server-made id: the usage row's key and its hold's."""
        return self.usage[SERVER_ID] if self.usage else self.hold_id

    def record(self) -> list:
        """The journal line."""
        return [*(self.usage or ()), self.key_id, self.period_start, self.spent_nusd,
                self.held, self.slot, self.token_delta, self.hold_id]  # fmt: skip

    @classmethod
    def from_record(cls, record: list) -> Settlement:
        n = len(record) - 7
        key_id, period_start, spent, held, slot, delta, hold_id = record[n:]
        usage = tuple(record[:n]) or None
        return cls(usage, key_id, period_start, spent, int(held), slot, delta, hold_id)


class Ledger:
    """The idempotent writes, on the store's request-path connections (DBAPI cursors)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        q = store.q
        greatest = "max" if store.is_sqlite else "GREATEST"
        self._settle = q(SETTLE.format(greatest=greatest))
        self._unhold = q(UNHOLD.format(greatest=greatest))
        self._reclaim = q(RECLAIM)
        self._renew = q(RENEW)
        self._spent = q(SPENT)

    # -- settlements ---------------------------------------------------------------------
    def write(
        self, batch: list[Settlement], *, spent: dict | None = None, new: set | None = None
    ) -> dict[tuple[str, int], int]:
        """Write a batch in one transaction; returns the tpm corrections of its new rows, by
        (key, slot), for Redis (a row written twice corrects once). With `spent`, fills it
        with the settled spend of each (key id, period start) the batch touched, as
        committed (for the mirror of holds kept outside the database); with `new`, with the
        request ids whose rows this write inserted."""
        return self.store.atomic(lambda cur: self._write(cur, batch, spent, new))

    def _write(self, cur, batch: list[Settlement], spent: dict | None, inserted: set | None):
        new = self._insert_usage(cur, batch)
        if inserted is not None:
            inserted.clear()
            inserted.update(new)
        held = [s.request_id for s in batch if s.held]
        ledger: dict[tuple[str, str], list[int]] = {}
        tokens: dict[tuple[str, int], int] = {}
        for s in batch:
            if s.request_id not in new:
                continue
            new.discard(s.request_id)  # the same id twice in one batch counts once too
            entry = ledger.setdefault((s.key_id, s.period_start), [0, 0])
            entry[0] += s.spent_nusd
            if s.token_delta and s.slot is not None:
                where = (s.key_id, s.slot)
                tokens[where] = tokens.get(where, 0) + s.token_delta
        for key_id, period_start, amount in self._release(cur, held):
            ledger.setdefault((key_id, period_start), [0, 0])[1] += amount
        rows = [(k, p, amount, held) for (k, p), (amount, held) in ledger.items()]
        if spent is not None:
            spent.clear()
            spent.update(self._settle_returning(cur, rows) if rows else {})
            # A batch written again (its first COMMIT's acknowledgement was lost) inserts
            # nothing, but its holds are given back now: the mirror must learn the spend that
            # first COMMIT made, or it would let the budget be spent twice.
            for pair in {(s.key_id, s.period_start) for s in batch if s.held} - spent.keys():
                found = cur.execute(self._spent, pair).fetchall()
                spent[pair] = int(found[0][0]) if found else 0
        elif rows:
            cur.executemany(self._settle, rows)
        return tokens

    def _settle_returning(self, cur, rows: list[tuple]) -> dict[tuple[str, str], int]:
        sql = self._settle + " RETURNING key_id, period_start, spent_nusd"
        if self.store.is_sqlite:
            found = [r for row in rows for r in cur.execute(sql, row).fetchall()]
        else:
            cur.executemany(sql, rows, returning=True)
            found = list(cur.fetchall())
            while cur.nextset():
                found += cur.fetchall()
        return {(k, p): int(s) for k, p, s in found}

    def _insert_usage(self, cur, batch: list[Settlement]) -> set[str]:
        batch = [s for s in batch if s.usage is not None]
        if not batch:
            return set()
        if self.store.is_sqlite:
            new = set()
            for s in batch:
                cur.execute(SQLITE_INSERT_USAGE, s.usage)
                if cur.rowcount == 1:
                    new.add(s.request_id)
            return new
        rows = zip(*(s.usage for s in batch), strict=True)
        columns = [
            [None if v is None else kind(v) for v in column]
            for kind, column in zip(PG_TYPES, rows, strict=True)
        ]
        cur.execute(PG_INSERT_USAGE, columns)
        return {row[0] for row in cur.fetchall()}

    def _release(self, cur, request_ids: list[str]) -> Iterable[tuple[str, str, int]]:
        if not request_ids:
            return []
        if self.store.is_sqlite:
            released = []
            for rid in request_ids:
                released += cur.execute(SQLITE_RELEASE, (rid,)).fetchall()
            return released
        cur.execute(PG_RELEASE, (request_ids,))
        return cur.fetchall()

    # -- owners and their leases ---------------------------------------------------------
    def renew(self, owner: str, instance: str, lease_s: float) -> None:
        expires = time.time() + lease_s
        self.store.autocommit(lambda cur: cur.execute(self._renew, (owner, instance, expires)))

    def reclaim(self, owner: str) -> int:
        """Give back everything `owner` holds and end its lease; returns the nano-dollars."""

        def step(cur) -> int:
            rows = cur.execute(self._reclaim, (owner,)).fetchall()
            sums: dict[tuple[str, str], int] = {}
            for key_id, period_start, amount in rows:
                sums[(key_id, period_start)] = sums.get((key_id, period_start), 0) + amount
            if sums:
                cur.executemany(self._unhold, [(a, k, p) for (k, p), a in sums.items()])
            cur.execute(self.store.q(DROP_OWNER), (owner,))
            return sum(sums.values())

        return self.store.atomic(step)

    def owners(self, sql: str, arg: object) -> list[str]:
        rows = self.store.autocommit(lambda cur: cur.execute(self.store.q(sql), (arg,)).fetchall())
        return [r[0] for r in rows]

    def expired_owners(self, now: float) -> list[str]:
        return self.owners(EXPIRED, now)

    def instance_owners(self, instance: str) -> list[str]:
        return self.owners(OF_INSTANCE, instance)

    def orphan_owners(self, before: float) -> list[str]:
        return self.owners(ORPHANS, before)

    def leased(self, owner: str) -> bool:
        """`owner` has a lease row (alive, or dead and not yet reclaimed)."""
        return bool(self.owners(LEASED, owner))

    def spent(self, key_id: str, period_start: str) -> int:
        """The settled spend of one budget period, in nano-dollars."""
        rows = self.store.autocommit(
            lambda cur: cur.execute(self._spent, (key_id, period_start)).fetchall()
        )
        return int(rows[0][0]) if rows else 0
