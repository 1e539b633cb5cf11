"""Budget holds in Redis (`redis_budget.py`), on a real Redis and a real SQLite/PostgreSQL.

The database stays the ledger of record; these check what Redis must get right: exact holds
under a race, spend seeded from and mirrored after the database, one hold per request id,
and holds of dead or lease-less owners given back.
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, insert, select, update

from facade.accounting import StoreAccounting
from facade.errors import BudgetExceededError
from facade.settings import Settings
from facade.store.ledger import Settlement
from facade.store.limits import Ask
from facade.store.schema import NANO, budget_ledger, store_owners
from tests.store.test_accounting import BODY, PLAN, key, ledger, metrics
from tests.store.test_limits import race

SMALL = {**BODY, "max_tokens": 10}


def accounting(store, redis_ns) -> StoreAccounting:
    url, prefix = redis_ns
    return StoreAccounting(store, Settings.from_env({}, redis_url=url, redis_prefix=prefix))


@pytest.fixture
def acct(store, redis_ns):
    a = accounting(store, redis_ns)
    yield a
    a.close()


def period(acct: StoreAccounting, k) -> str:
    return acct.clock.start(k.budget_period, time.time())


def held(acct: StoreAccounting, k) -> int:
    pair = (k.id, period(acct, k))
    return acct.held_nusd([pair])[pair]


def mirror(acct: StoreAccounting, k) -> int | None:
    raw = acct.redis.client.hget(acct.redis.budget.budget_key(k.id, period(acct, k)), "spent")
    return None if raw is None else int(raw)


def one_hold(acct: StoreAccounting) -> int:
    """What one SMALL request holds (measured on a key of its own)."""
    probe = key(id="probe", budget_usd=1.0)
    admission = acct.admit(probe, PLAN, SMALL, "probe")
    amount = held(acct, probe)
    admission.release()
    acct.flush()
    assert held(acct, probe) == 0
    return amount


def test_holds_are_exact_under_a_race_and_never_touch_the_database(acct, store):
    amount = one_hold(acct)
    limited = key(budget_usd=(5 * amount + amount // 2) / NANO)
    admitted, refused = race(20, lambda: acct.admit(limited, PLAN, SMALL, uuid.uuid4().hex))
    assert len(admitted) == 5 and len(refused) == 15
    assert all(isinstance(e, BudgetExceededError) for e in refused)
    assert held(acct, limited) == 5 * amount
    for a in admitted:
        a.release()
    acct.flush()
    assert held(acct, limited) == 0
    with store.engine.connect() as conn:  # nothing was ever reserved in the database
        assert conn.execute(select(func.sum(budget_ledger.c.reserved_nusd))).scalar() == 0


def test_settled_spend_is_mirrored_after_the_commit(acct, store):
    limited = key(budget_usd=1.0)
    acct.admit(limited, PLAN, SMALL, "a").settle(PLAN[0][0], metrics(10, 10), "a")
    acct.flush()
    spent, _ = ledger(store)
    assert spent == round(metrics(10, 10)["cost_usd"] * NANO) > 0
    assert mirror(acct, limited) == spent
    assert held(acct, limited) == 0


def test_spend_is_seeded_from_the_database(acct, store):
    amount = one_hold(acct)
    limited = key(budget_usd=(10 * amount) / NANO)
    with store.transaction() as conn:  # spent earlier, by another instance
        conn.execute(
            insert(budget_ledger).values(
                key_id=limited.id,
                period_start=period(acct, limited),
                spent_nusd=9 * amount + 1,
                reserved_nusd=0,
            )
        )
    with pytest.raises(BudgetExceededError, match="spent"):
        acct.admit(limited, PLAN, SMALL, "a")
    assert mirror(acct, limited) == 9 * amount + 1


def test_one_hold_per_request_id(acct):
    limited = key(budget_usd=1.0)
    ask = Ask(
        key_id=limited.id,
        key_name=limited.name,
        rpm=None,
        tpm=None,
        tokens=0,
        budget_nusd=NANO,
        reserve_nusd=1234,
        period="monthly",
        period_start=period(acct, limited),
        request_id="same-id",
    )
    for _ in range(3):  # a script retried after its reply was lost
        acct.redis.admit(ask, 0, acct.writer.owner, lambda a: 0)
    assert held(acct, limited) == 1234
    done = Settlement(None, limited.id, ask.period_start, 0, 1234, hold_id="same-id")
    acct.redis.budget.settle(acct.writer.owner, {}, [done, done])
    assert held(acct, limited) == 0


def test_settling_never_creates_a_mirror(acct):
    limited = key(budget_usd=1.0)
    pair = (limited.id, period(acct, limited))
    acct.redis.budget.settle(acct.writer.owner, {pair: 5}, [])
    assert mirror(acct, limited) is None  # the next admission reads the database instead


def test_a_dead_owners_holds_come_back_and_its_mirrors_are_read_again(store, redis_ns):
    dead, alive = accounting(store, redis_ns), accounting(store, redis_ns)
    try:
        limited = key(budget_usd=1.0)
        dead.admit(limited, PLAN, SMALL, "a")
        dead.writer.sweep()  # its lease row
        assert held(alive, limited) > 0 and mirror(alive, limited) == 0
        with store.transaction() as conn:  # its lease runs out: it died
            conn.execute(
                update(store_owners)
                .where(store_owners.c.owner == dead.writer.owner)
                .values(expires_at=0)
            )
        done = alive.writer.sweep()
        assert done["released_nusd"] > 0
        assert held(alive, limited) == 0
        assert mirror(alive, limited) is None
    finally:
        alive.close()
        dead.close()


def test_holds_of_an_owner_without_a_lease_row_come_back(acct):
    limited = key(budget_usd=1.0)
    ask = Ask(limited.id, limited.name, None, None, 0, NANO, 777, "monthly", period(acct, limited))
    acct.redis.admit(ask, 0, "ghost", lambda a: 0)
    budget = acct.redis.budget
    acct.redis.client.zadd(budget.owners_key, {"ghost": time.time() - 3600})
    assert held(acct, limited) == 777
    acct.writer.sweep()
    assert held(acct, limited) == 0
    assert acct.redis.client.zscore(budget.owners_key, "ghost") is None


def test_a_batch_written_again_still_mirrors_its_spend(acct, store):
    """A flush whose COMMIT's acknowledgement was lost is written again and inserts nothing;
    its holds are given back then, so the mirror must learn the spend the first COMMIT made."""
    limited = key(budget_usd=1.0)
    acct.admit(limited, PLAN, SMALL, "a").settle(PLAN[0][0], metrics(10, 10), "a")
    acct.writer.ledger.write(list(acct.writer._queue))  # committed; Redis never heard of it
    assert mirror(acct, limited) == 0
    acct.flush()  # the same batch again
    spent, _ = ledger(store)
    assert spent > 0 and mirror(acct, limited) == spent
    assert held(acct, limited) == 0
