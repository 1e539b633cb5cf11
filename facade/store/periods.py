"""Budget periods in UTC, named by the day they start, so the ledger needs no reset job.

A ledger row is keyed by (key, period start): when a period ends the next request simply
lands on a new row. daily starts at 00:00 UTC, weekly on Monday (ISO week), monthly on the
1st; `total` never ends. Every period changes only at a UTC midnight, so the starts are
computed once a day and the request path pays one comparison.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

TOTAL = "total"


def period_starts(day: date) -> dict[str, str]:
    return {
        "daily": day.isoformat(),
        "weekly": (day - timedelta(days=day.weekday())).isoformat(),
        "monthly": day.replace(day=1).isoformat(),
        "total": TOTAL,
    }


def period_end(period: str, start: str) -> datetime | None:
    """When the period that began on `start` ends (None for total)."""
    if period == TOTAL:
        return None
    first = date.fromisoformat(start)
    if period == "daily":
        end = first + timedelta(days=1)
    elif period == "weekly":
        end = first + timedelta(days=7)
    else:
        end = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


class PeriodClock:
    """Period starts and the day for a timestamp, recomputed only when a UTC day passes.

    The state is one tuple, replaced whole, so threads never see half of a new day.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: tuple[float, float, dict[str, str], str] = (0.0, 0.0, {}, "")

    def _current(self, ts: float) -> tuple[float, float, dict[str, str], str]:
        state = self._state
        if not state[0] <= ts < state[1]:
            today = datetime.fromtimestamp(ts, UTC).date()
            midnight = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
            state = (midnight, midnight + 86400, period_starts(today), today.isoformat())
            self._state = state
        return state

    def start(self, period: str, ts: float) -> str:
        return self._current(ts)[2][period]

    def day(self, ts: float) -> str:
        return self._current(ts)[3]
