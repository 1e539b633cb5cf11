"""StoreAccounting, the seam the pipeline calls: admit, settle, release."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from facade.accounting import StoreAccounting, largest_cost_nusd
from facade.config import parse_config
from facade.errors import BudgetExceededError, RateLimitError, UpstreamTimeoutError
from facade.estimates import embedding_input_bound
from facade.keys import ApiKey
from facade.settings import Settings
from facade.store.schema import budget_ledger, usage_records

CONFIG = parse_config(
    {
        "providers": [{"name": "sim", "kind": "simulator"}],
        "models": [
            {
                "name": "cheap",
                "targets": [{"provider": "sim", "model": "a"}, {"provider": "sim", "model": "b"}],
                "input_cost_per_1m": 1.0,
                "output_cost_per_1m": 2.0,
                "max_output_tokens": 1000,
            },
            {
                "name": "dear",
                "targets": [{"provider": "sim", "model": "c"}],
                "input_cost_per_1m": 10.0,
                "output_cost_per_1m": 30.0,
                "max_output_tokens": 500,
            },
        ],
    }
)
CHEAP, DEAR = CONFIG.models["cheap"], CONFIG.models["dear"]
PLAN = [(CHEAP, t) for t in CHEAP.targets]
AUTO = PLAN + [(DEAR, DEAR.targets[0])]
BODY = {"messages": [{"role": "user", "content": "x" * 40}]}
# The admission bound of BODY with a 2- or 3-digit max_tokens: 100 JSON bytes / 4, plus 32 a
# request, 4 a message and 1 for the upstream model's name.
BOUND = 25 + 32 + 4 + 1


def key(**fields) -> ApiKey:
    return ApiKey(**{"id": "key-1", "name": "one", "prefix": "sk-one", "models": ("*",), **fields})


def metrics(input_tokens: int, output_tokens: int, model=CHEAP) -> dict:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": round(model.cost_usd(input_tokens, output_tokens), 10),
        "latency_s": 0.2,
        "provider": "sim",
        "upstream_model": "a",
    }


@pytest.fixture
def acct(store):
    accounting = StoreAccounting(store, Settings.from_env({}))
    yield accounting
    accounting.close()


def ledger(store, acct: StoreAccounting | None = None) -> tuple[int, int]:
    """(spent, held) of key-1's current period: spent in the database; held there too, or
    where `acct` keeps holds (shared memory for SQLite, Redis)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(budget_ledger.c.spent_nusd, budget_ledger.c.reserved_nusd)
        ).first()
    spent, held = tuple(row) if row is not None else (0, 0)
    if acct is not None:
        pair = ("key-1", acct.clock.start("monthly", time.time()))
        found = acct.held_nusd([pair])
        held = held if found is None else found[pair]
    return spent, held


def test_the_reservation_is_the_dearest_model_in_the_plan():
    assert largest_cost_nusd(PLAN, 17, None) == (17 * 1 + 1000 * 2) * 1000
    assert largest_cost_nusd(PLAN, 17, 10) == (17 * 1 + 10 * 2) * 1000
    assert largest_cost_nusd(AUTO, 17, None) == (17 * 10 + 500 * 30) * 1000


def test_reserve_then_settle_to_the_true_cost(acct, store):
    admission = acct.admit(key(budget_usd=1.0), PLAN, {**BODY, "max_tokens": 100}, "r1")
    assert ledger(store, acct) == (0, (BOUND + 200) * 1000)
    admission.settle(CHEAP, metrics(5, 7), "r1")
    admission.settle(CHEAP, metrics(5, 7), "r1")  # once only
    acct.flush()
    assert ledger(store, acct) == ((5 + 14) * 1000, 0)
    with store.engine.connect() as conn:
        rows = conn.execute(select(usage_records)).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert (row["key_id"], row["model"], row["input_tokens"], row["output_tokens"]) == (
        "key-1",
        "cheap",
        5,
        7,
    )
    assert (row["cost_nusd"], row["status"], row["request_id"]) == (19_000, 200, "r1")


def test_release_gives_the_reservation_back_and_records_the_failure(acct, store):
    admission = acct.admit(key(budget_usd=1.0, tpm=10_000), PLAN, BODY, "r2")
    admission.release(UpstreamTimeoutError("slow"))
    acct.flush()
    assert ledger(store, acct) == (0, 0)
    with store.engine.connect() as conn:
        row = conn.execute(select(usage_records)).mappings().one()
    assert (row["status"], row["cost_nusd"], row["provider"], row["request_id"]) == (
        504,
        0,
        "sim",
        "r2",
    )


def test_a_key_without_limits_touches_no_table_until_the_flush(acct, store):
    admission = acct.admit(key(), PLAN, BODY, "r3")
    assert admission.slot is None and admission.reserved == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(budget_ledger)).all() == []
    admission.settle(CHEAP, metrics(3, 4), "r3")
    acct.flush()
    assert ledger(store, acct) == (11_000, 0)


def test_limits_refuse_with_429(acct):
    limited = key(rpm=1)
    acct.admit(limited, PLAN, BODY, "a")
    with pytest.raises(RateLimitError):
        acct.admit(limited, PLAN, BODY, "b")
    with pytest.raises(BudgetExceededError, match="budget"):
        acct.admit(key(id="key-2", budget_usd=0.0001), PLAN, BODY, "c")


def test_embeddings_reserve_their_input_only(acct, store):
    body = {"model": "cheap", "input": ["abcd" * 10]}
    acct.admit(key(budget_usd=1.0), PLAN, body, "e")
    assert ledger(store, acct)[1] == largest_cost_nusd(PLAN, embedding_input_bound(body) + 1, 0)


def budget_refusal_takes_its_request_back(acct) -> None:
    limited = key(rpm=2, budget_usd=(BOUND + 20) * 1.5e-6)  # covers one request of 10 tokens
    body = {**BODY, "max_tokens": 10}
    first = acct.admit(limited, PLAN, body, "a")
    with pytest.raises(BudgetExceededError):
        acct.admit(limited, PLAN, body, "b")  # refused by budget: its rpm is not counted
    first.release()
    acct.flush()
    acct.admit(limited, PLAN, body, "c")
    with pytest.raises(RateLimitError):
        acct.admit(limited, PLAN, body, "d")


def test_a_request_refused_by_its_budget_is_not_counted_in_the_window(acct):
    budget_refusal_takes_its_request_back(acct)


def test_redis_rates_and_budget_in_one_script(store, redis_ns):
    url, prefix = redis_ns
    acct = StoreAccounting(store, Settings.from_env({}, redis_url=url, redis_prefix=prefix))
    try:
        budget_refusal_takes_its_request_back(acct)
        acct.dependencies.probe()  # readiness no longer asks the stores; their state is here
        assert acct.dependencies.snapshot() == {"redis": "up"}
    finally:
        acct.close()


def test_tpm_is_corrected_in_the_window_as_the_request_settles(acct, store):
    limited = key(tpm=200)
    body = {**BODY, "max_tokens": 100}  # counted at admission: 62 input + 100 output
    first = acct.admit(limited, PLAN, body, "a")
    with pytest.raises(RateLimitError, match="200 tokens per minute"):
        acct.admit(limited, PLAN, body, "b")
    first.settle(CHEAP, metrics(5, 7), "a")  # 12 used: no flush needed to see it
    second = acct.admit(limited, PLAN, body, "c")  # 12 + 162
    with pytest.raises(RateLimitError):
        acct.admit(limited, PLAN, body, "d")
    second.release(UpstreamTimeoutError("slow"))  # nothing used: all 162 come back
    acct.admit(limited, PLAN, body, "e")
    with store.engine.connect() as conn:  # no budget: the store saw nothing of it
        assert conn.execute(select(budget_ledger)).all() == []


def test_a_cache_hit_counts_against_rpm_not_tpm(acct):
    limited = key(rpm=2, tpm=170)
    acct.admit(limited, PLAN, BODY, "hit", cached=True).settle(CHEAP, metrics(0, 0), "hit")
    acct.admit(limited, PLAN, {**BODY, "max_tokens": 100}, "a")  # 162 tokens still fit
    with pytest.raises(RateLimitError, match="2 requests per minute"):
        acct.admit(limited, PLAN, BODY, "b", cached=True)


def test_readiness_names_what_is_down(store):
    acct = StoreAccounting(store, Settings.from_env({}, redis_url="redis://127.0.0.1:1/0"))
    try:
        acct.dependencies.probe()
        assert acct.dependencies.snapshot() == {"redis": "down"}
    finally:
        acct.close()


def precheck_then_admit(acct, limited) -> None:
    """The pre-check reads and counts nothing; only admit counts."""
    for _ in range(5):
        acct.precheck(limited)  # nothing counted yet: never refused
    acct.admit(limited, PLAN, BODY, "a")
    acct.admit(limited, PLAN, BODY, "b")
    with pytest.raises(RateLimitError, match="2 requests per minute") as refused:
        acct.precheck(limited)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    acct.precheck(key(id="key-2", rpm=2))  # another key: its own window
    acct.precheck(key())  # no rpm: nothing to check


def test_precheck_refuses_a_full_rpm_window_without_counting(acct):
    precheck_then_admit(acct, key(rpm=2))


def test_precheck_reads_the_window_in_redis(store, redis_ns):
    url, prefix = redis_ns
    acct = StoreAccounting(store, Settings.from_env({}, redis_url=url, redis_prefix=prefix))
    try:
        precheck_then_admit(acct, key(rpm=2))
    finally:
        acct.close()
