"""Budget periods in UTC: named by their first day, so no reset job is needed."""

from __future__ import annotations

from datetime import UTC, date, datetime

from facade.store.periods import PeriodClock, day_of, period_end, period_starts


def test_period_starts():
    sunday = date(2026, 3, 8)
    assert period_starts(sunday) == {
        "daily": "2026-03-08",
        "weekly": "2026-03-02",  # ISO weeks start on Monday
        "monthly": "2026-03-01",
        "total": "total",
    }
    assert period_starts(date(2026, 3, 9))["weekly"] == "2026-03-09"


def test_period_ends():
    assert period_end("daily", "2026-12-31") == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end("weekly", "2026-03-02") == datetime(2026, 3, 9, tzinfo=UTC)
    assert period_end("monthly", "2026-02-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert period_end("monthly", "2026-12-01") == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end("total", "total") is None


def test_clock_rolls_over_at_utc_midnight():
    clock = PeriodClock()
    before = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    after = before + 2
    assert (clock.start("monthly", before), clock.day(before)) == ("2026-01-01", "2026-01-31")
    assert (clock.start("monthly", after), clock.day(after)) == ("2026-02-01", "2026-02-01")
    assert clock.start("daily", before) == "2026-01-31" and day_of(after) == "2026-02-01"
