"""Per-model health from usage rows: requests, error rate, latency and first-token percentiles,
and the share answered from the response cache.

Percentiles are nearest-rank over the successful requests of the range (a failed call's
latency is the time to its error, which would make a failing model look fast). Computed here,
not in SQL, so SQLite and PostgreSQL give the same numbers; rows are read in batches and only
two floats per row are kept. Cache hits count as requests but not in the percentiles: they
say nothing about the model's own latency.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from . import Store
from .schema import usage_records

BATCH_ROWS = 5000


def midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when it is empty)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def model_stats(store: Store, date_from: date, date_to: date) -> list[dict]:
    """One row per model used from `date_from` to `date_to` (UTC days, both included)."""
    u = usage_records
    query = (
        select(u.c.model, u.c.status, u.c.latency_s, u.c.ttft_s, u.c.cache_hit)
        .where(u.c.ts >= midnight(date_from), u.c.ts < midnight(date_to + timedelta(days=1)))
        .execution_options(yield_per=BATCH_ROWS)
    )
    seen: dict[str, dict] = {}
    with store.engine.connect() as conn:
        for model, status, latency, ttft, hit in conn.execute(query):
            entry = seen.get(model)
            if entry is None:
                entry = seen[model] = {
                    "requests": 0, "errors": 0, "hits": 0, "latency": [], "ttft": []
                }  # fmt: skip
            entry["requests"] += 1
            if status >= 400:
                entry["errors"] += 1
                continue
            if hit:
                entry["hits"] += 1
                continue
            entry["latency"].append(latency)
            if ttft is not None:
                entry["ttft"].append(ttft)
    rows = []
    for model in sorted(seen):
        entry = seen[model]
        latency, ttft = sorted(entry["latency"]), sorted(entry["ttft"])
        rows.append(
            {
                "model": model,
                "requests": entry["requests"],
                "errors": entry["errors"],
                "error_rate": round(entry["errors"] / entry["requests"], 6),
                "latency_p50_s": percentile(latency, 0.50),
                "latency_p95_s": percentile(latency, 0.95),
                "ttft_p50_s": percentile(ttft, 0.50),
                "cache_hits": entry["hits"],
                "cache_hit_rate": round(entry["hits"] / entry["requests"], 6),
            }
        )
    return rows
