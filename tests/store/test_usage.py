"""The batched writer: usage rows, ledger settlements, retention; and the reports on them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from facade.store import reports
from facade.store.limits import Ask, SqlLimits
from facade.store.schema import budget_ledger, usage_records
from facade.store.usage import Settlement, UsageWriter


def usage_row(
    key_id: str, model: str, day: str, tokens=(3, 5), cost=11_000, status=200, cached=0, rid=None
) -> tuple:
    ts = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC).timestamp()
    rid = rid or uuid.uuid4().hex  # the server's request id: unique per request
    return (
        ts,
        day,
        key_id,
        model,
        "fake",
        "up",
        *tokens,
        cost,
        0.1,
        status,
        rid,  # the id the caller sees (none sent: the server's)
        0.05,
        cached,
        None,
        False,
        rid,  # the server's own id: the row's unique key
    )


def writer(store, **kw) -> UsageWriter:
    return UsageWriter(store, flush_s=kw.pop("flush_s", 60), retention_days=kw.pop("days", 90))


def test_flush_writes_usage_and_settles_the_ledger(store):
    limits = SqlLimits(store)
    asks = [
        Ask("key-1", "one", None, 100, 30, 1_000_000, 400_000, "monthly", "2026-01-01")
        for _ in range(2)
    ]
    for ask in asks:
        limits.reserve(ask, time.time())
    w = writer(store)
    for ask in asks:  # both settle at a true cost of 11_000 and 8 tokens
        w.add(
            Settlement(
                usage_row("key-1", "gpt-test", "2026-01-05", rid=ask.request_id),
                "key-1",
                "2026-01-01",
                11_000,
                400_000,
            )
        )
    assert w.flush() == 2 and w.flush() == 0
    with store.engine.connect() as conn:
        ledger = conn.execute(budget_ledger.select()).mappings().one()
        assert (ledger["spent_nusd"], ledger["reserved_nusd"]) == (22_000, 0)
        assert conn.execute(select(func.count()).select_from(usage_records)).scalar() == 2
    w.close()


def test_keys_without_budget_still_track_spend(store):
    w = writer(store)
    w.add(Settlement(usage_row("cfg-1", "m", "2026-01-05"), "cfg-1", "2026-01-01", 7, 0))
    w.close()  # close writes what is left
    assert reports.spend(store, [("cfg-1", "2026-01-01"), ("cfg-1", "2025-12-01")]) == {
        ("cfg-1", "2026-01-01"): (7e-9, 0.0),
        ("cfg-1", "2025-12-01"): (0.0, 0.0),
    }


def test_the_thread_flushes_on_its_own(store):
    w = writer(store, flush_s=0.05)
    today = datetime.now(UTC).date().isoformat()
    w.add(Settlement(usage_row("k", "m", today), "k", "2026-01-01", 1, 0))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(usage_records)).scalar():
                break
        time.sleep(0.02)
    else:
        raise AssertionError("the writer thread never flushed")
    w.close()


def test_usage_report_groups_by_day_key_and_model(store):
    w = writer(store)
    rows = [
        usage_row("key-a", "gpt-test", "2026-01-05", (3, 5), 13_000),
        usage_row("key-a", "gpt-test", "2026-01-05", (4, 6), 16_000, cached=3),
        usage_row("key-a", "sim-model", "2026-01-05", (1, 1), 0),
        usage_row("key-b", "gpt-test", "2026-01-06", (2, 2), 6_000, status=502),
        usage_row("key-b", "gpt-test", "2026-02-01", (9, 9), 27_000),
    ]
    for row in rows:
        w.add(Settlement(row, row[2], "2026-01-01", row[8], 0))
    w.close()
    names = {"key-a": "team-a"}
    got = reports.usage_rows(store, date(2026, 1, 1), date(2026, 1, 31), names=names)
    assert got == [
        {
            "day": "2026-01-05",
            "key_id": "key-a",
            "key_name": "team-a",
            "model": "gpt-test",
            "requests": 2,
            "input_tokens": 7,
            "cached_input_tokens": 3,
            "output_tokens": 11,
            "cost_usd": 0.000029,
            "cache_hits": 0,
        },
        {
            "day": "2026-01-05",
            "key_id": "key-a",
            "key_name": "team-a",
            "model": "sim-model",
            "requests": 1,
            "input_tokens": 1,
            "cached_input_tokens": 0,
            "output_tokens": 1,
            "cost_usd": 0.0,
            "cache_hits": 0,
        },
        {
            "day": "2026-01-06",
            "key_id": "key-b",
            "key_name": None,
            "model": "gpt-test",
            "requests": 1,
            "input_tokens": 2,
            "cached_input_tokens": 0,
            "output_tokens": 2,
            "cost_usd": 0.000006,
            "cache_hits": 0,
        },
    ]
    only = reports.usage_rows(store, date(2026, 1, 1), date(2026, 2, 1), key_id="key-b")
    assert [r["day"] for r in only] == ["2026-01-06", "2026-02-01"]
    by_model = reports.usage_rows(store, date(2026, 1, 5), date(2026, 1, 5), model="sim-model")
    assert [(r["key_id"], r["requests"]) for r in by_model] == [("key-a", 1)]


def test_retention_prunes_old_usage(store):
    w = writer(store, days=30)
    old = datetime.now(UTC).timestamp() - 31 * 86400
    w.add(
        Settlement(
            (
                old,
                "2000-01-01",
                "k",
                "m",
                None,
                None,
                1,
                1,
                1,
                0.1,
                200,
                "r",
                None,
                0,
                None,
                False,
                "r",
            ),  # fmt: skip
            "k",
            "x",
            1,
            0,
        )
    )
    w.add(Settlement(usage_row("k", "m", datetime.now(UTC).date().isoformat()), "k", "x", 1, 0))
    w.flush()
    assert w.prune_usage() == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage_records)).scalar() == 1
    w.close()
    assert writer(store, days=0).prune_usage() == 0
