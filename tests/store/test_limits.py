"""Rate limits (the shared window, Redis) and budget reservations (both stores): exact under
real concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from facade.errors import BudgetExceededError, RateLimitError, UnavailableError
from facade.rate_window import RateTable
from facade.store.limits import Ask, SqlLimits, WindowRates, retry_after
from facade.store.redis_rates import RedisRates
from facade.store.schema import budget_ledger


def ask(**fields) -> Ask:
    base = dict(
        key_id="key-1",
        key_name="one",
        rpm=None,
        tpm=None,
        tokens=10,
        budget_nusd=None,
        reserve_nusd=0,
        period="monthly",
        period_start="2026-01-01",
    )
    return Ask(**{**base, **fields})


def race(n: int, fn) -> tuple[list, list[BaseException]]:
    """Run fn n times at once on real threads; (results, errors)."""
    results: list = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def one() -> None:
        barrier.wait()
        try:
            results.append(fn())
        except (RateLimitError, BudgetExceededError) as err:
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_retry_after_is_when_enough_has_left_the_window():
    slots = [(100, 3), (110, 2), (130, 5)]
    assert retry_after(slots, 1, now=120.5) == pytest.approx(39.5)  # slot 100 frees at 160
    assert retry_after(slots, 4, now=120.5) == pytest.approx(49.5)  # needs slot 110 too
    assert retry_after(slots, 99, now=120.5) == 60


@pytest.fixture
def rates():
    rates = WindowRates()  # outside gunicorn: a private table
    yield rates
    rates.close()


def test_rpm_is_exact_under_concurrency(rates):
    results, errors = race(20, lambda: rates.admit(ask(rpm=10), time.time()))
    assert len(results) == 10 and len(errors) == 10
    for err in errors:
        assert err.type == "rate_limit_exceeded" and "10 requests per minute" in err.message
        assert 1 <= int(err.headers["Retry-After"]) <= 60


def test_retry_after_is_when_the_oldest_request_leaves_the_window(rates):
    rates.admit(ask(rpm=2), 1000.2)
    rates.admit(ask(rpm=2), 1010.5)
    with pytest.raises(RateLimitError) as err:
        rates.admit(ask(rpm=2), 1020.7)
    assert err.value.retry_after_s == pytest.approx(39.3)  # slot 1000 leaves at 1060
    assert err.value.headers["Retry-After"] == "40"
    assert err.value.message == (
        "rate limit exceeded: this key allows 2 requests per minute; retry in 40 s"
    )
    with pytest.raises(RateLimitError) as err:  # the pre-check says the same, counting nothing
        rates.check_rpm(ask(rpm=2), 1020.7)
    assert err.value.headers["Retry-After"] == "40"
    rates.admit(ask(rpm=2), 1060.0)


def test_tpm_counts_tokens_and_refuses_a_request_larger_than_it(rates):
    now = time.time()
    rates.admit(ask(tpm=100, tokens=60), now)
    with pytest.raises(RateLimitError, match="100 tokens per minute") as err:
        rates.admit(ask(tpm=100, tokens=50), now)
    assert 1 <= int(err.value.headers["Retry-After"]) <= 60
    rates.admit(ask(tpm=100, tokens=40), now)
    with pytest.raises(RateLimitError, match="may use 500 tokens") as err:
        rates.admit(ask(tpm=100, tokens=500), now)
    assert err.value.headers["Retry-After"] == "60"


def test_tpm_is_corrected_at_settle_and_a_refund_gives_all_back(rates):
    now = time.time()
    slot = rates.admit(ask(tpm=100, tokens=90), now)
    with pytest.raises(RateLimitError, match="tokens per minute"):
        rates.admit(ask(tpm=100, tokens=20), now)
    rates.correct("key-1", slot, -50)  # it used 40, not 90
    second = rates.admit(ask(tpm=100, rpm=2, tokens=60), now)
    with pytest.raises(RateLimitError, match="2 requests per minute"):
        rates.admit(ask(tpm=100, rpm=2, tokens=0), now)
    rates.refund(ask(tpm=100, rpm=2, tokens=60), second)
    rates.admit(ask(tpm=100, rpm=2, tokens=60), now)


def test_the_window_slides(rates):
    then = time.time() - 59.5
    rates.admit(ask(rpm=1), then)
    with pytest.raises(RateLimitError):
        rates.admit(ask(rpm=1), then + 30)
    rates.admit(ask(rpm=1), then + 60.5)


def test_a_full_table_answers_503_and_logs_once_a_minute(caplog):
    rates = WindowRates(RateTable(entries=8, shared=False))
    try:
        for n in range(rates.table.max_keys):
            rates.admit(ask(key_id=f"key-{n}", rpm=5), 1000.0)
        for _ in range(3):
            with pytest.raises(UnavailableError) as err:
                rates.admit(ask(key_id="one-more", rpm=5), 1001.0)
            assert err.value.status == 503 and err.value.headers["Retry-After"] == "5"
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert "rate table is full" in caplog.records[0].getMessage()
        rates.admit(ask(key_id="key-0", rpm=5), 1001.0)  # keys already counted: served
        rates.admit(ask(key_id="one-more", rpm=5), 1060.0)  # the others were idle a minute
    finally:
        rates.close()


def test_budget_reservations_are_exact_under_concurrency(store):
    limits = SqlLimits(store)

    # the budget covers 10 reservations; each request is its own (its own hold)
    def one() -> Ask:
        return ask(budget_nusd=10_500, reserve_nusd=1_000)

    results, errors = race(40, lambda: limits.reserve(one(), time.time()))
    assert len(results) == 10 and len(errors) == 30
    assert all("budget" in err.message and err.type == "budget_exceeded" for err in errors)
    assert all(0 < int(err.headers["Retry-After"]) for err in errors)  # until the next month
    with store.engine.connect() as conn:
        row = conn.execute(budget_ledger.select()).mappings().one()
    assert (row["spent_nusd"], row["reserved_nusd"]) == (0, 10_000)


def test_a_key_without_a_budget_reserves_nothing(store):
    SqlLimits(store).reserve(ask(rpm=1), time.time())
    with store.engine.connect() as conn:
        assert conn.execute(budget_ledger.select()).all() == []


def test_a_request_dearer_than_the_whole_budget_is_refused_at_once(store):
    with pytest.raises(BudgetExceededError, match="whole monthly budget"):
        SqlLimits(store).reserve(ask(budget_nusd=100, reserve_nusd=101), time.time())


def test_total_budget_has_no_retry_after(store):
    limits = SqlLimits(store)

    def total() -> Ask:  # a new request each time (the same one again is held once)
        return ask(budget_nusd=100, reserve_nusd=100, period="total", period_start="total")

    limits.reserve(total(), time.time())
    with pytest.raises(BudgetExceededError) as err:
        limits.reserve(total(), time.time())
    assert "Retry-After" not in err.value.headers


def test_redis_rpm_is_exact(redis_ns):
    url, prefix = redis_ns
    rates = RedisRates(url, prefix)
    try:
        results, errors = race(20, lambda: rates.admit(ask(rpm=10)))
        assert len(results) == 10 and len(errors) == 10
        assert all(1 <= int(e.headers["Retry-After"]) <= 60 for e in errors)
        with pytest.raises(RateLimitError):
            rates.admit(ask(rpm=10))
    finally:
        rates.close()


def test_redis_tpm_is_corrected_at_settle(redis_ns):
    url, prefix = redis_ns
    rates = RedisRates(url, prefix)
    try:
        slot = rates.admit(ask(tpm=100, tokens=90))
        with pytest.raises(RateLimitError, match="tokens per minute"):
            rates.admit(ask(tpm=100, tokens=20))
        rates.correct({("key-1", slot): -50})  # it used 40, not 90
        rates.admit(ask(tpm=100, tokens=20))
        rates.ping()
    finally:
        rates.close()
