"""Read-only views for operators: usage by key, model and day, and spend per budget period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select

from . import Store
from .schema import budget_ledger, to_usd, usage_records


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def usage_rows(
    store: Store,
    date_from: date,
    date_to: date,
    *,
    key_id: str | None = None,
    model: str | None = None,
    names: dict[str, str] | None = None,
) -> list[dict]:
    """One row per (day, key, model) from `date_from` to `date_to`, both included (UTC)."""
    u = usage_records
    query = (
        select(
            u.c.day,
            u.c.key_id,
            u.c.model,
            func.count(),
            func.sum(u.c.input_tokens),
            func.sum(u.c.cached_input_tokens),
            func.sum(u.c.output_tokens),
            func.sum(u.c.cost_nusd),
            func.sum(case((u.c.cache_hit, 1), else_=0)),
        )
        .where(u.c.ts >= _midnight(date_from), u.c.ts < _midnight(date_to + timedelta(days=1)))
        .group_by(u.c.day, u.c.key_id, u.c.model)
        .order_by(u.c.day, u.c.key_id, u.c.model)
    )
    if key_id is not None:
        query = query.where(u.c.key_id == key_id)
    if model is not None:
        query = query.where(u.c.model == model)
    names = names or {}
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "day": day,
            "key_id": kid,
            "key_name": names.get(kid),
            "model": model_name,
            "requests": int(requests),
            "input_tokens": int(input_tokens or 0),
            "cached_input_tokens": int(cached or 0),
            "output_tokens": int(output_tokens or 0),
            "cost_usd": to_usd(int(cost or 0)),
            "cache_hits": int(hits or 0),
        }
        for (
            day,
            kid,
            model_name,
            requests,
            input_tokens,
            cached,
            output_tokens,
            cost,
            hits,
        ) in rows
    ]


Pair = tuple[str, str]


def spend(store: Store, wanted: list[Pair]) -> dict[Pair, tuple[float, float]]:
    """(spent, reserved) in USD for each (key id, period start) asked for."""
    if not wanted:
        return {}
    starts = sorted({start for _, start in wanted})
    ids = sorted({key_id for key_id, _ in wanted})
    b = budget_ledger
    query = select(b.c.key_id, b.c.period_start, b.c.spent_nusd, b.c.reserved_nusd).where(
        b.c.period_start.in_(starts), b.c.key_id.in_(ids)
    )
    with store.engine.connect() as conn:
        found = {(k, p): (to_usd(s), to_usd(r)) for k, p, s, r in conn.execute(query)}
    return {pair: found.get(pair, (0.0, 0.0)) for pair in wanted}
