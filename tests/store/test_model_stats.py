"""Per-model stats from usage rows: counts, error rate, nearest-rank percentiles."""

from __future__ import annotations

from datetime import UTC, date, datetime

from facade.store.model_stats import model_stats, percentile
from facade.store.schema import usage_records


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.95) == 95.0
    assert percentile([2.0], 0.95) == 2.0 and percentile([], 0.5) is None


def test_model_stats_on_both_stores(store):
    ts = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
    rows = []
    for i in range(20):
        status = 502 if i < 2 else 200
        rows.append(
            {
                "ts": ts, "day": "2026-01-05", "key_id": "k", "model": "m", "provider": "p",
                "upstream_model": "u", "input_tokens": 1, "output_tokens": 1, "cost_nusd": 1,
                "latency_s": 100.0 if status != 200 else float(i), "status": status,
                "request_id": f"r{i}", "ttft_s": None if status != 200 else i / 10,
            }
        )  # fmt: skip
    late = {"model": "other", "ts": ts + 86400 * 40, "day": "2026-02-14", "request_id": "r20"}
    rows.append({**rows[-1], **late})  # request ids are unique
    with store.transaction() as conn:
        conn.execute(usage_records.insert(), rows)
    got = model_stats(store, date(2026, 1, 1), date(2026, 1, 31))
    assert got == [
        {
            "model": "m",
            "requests": 20,
            "errors": 2,
            "error_rate": 0.1,
            "latency_p50_s": 10.0,  # successes are 2..19: the 9th of 18
            "latency_p95_s": 19.0,
            "ttft_p50_s": 1.0,
            "cache_hits": 0,
            "cache_hit_rate": 0.0,
        }
    ]


def test_cache_hits_are_counted_and_kept_out_of_the_percentiles(store):
    ts = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
    base = {
        "ts": ts, "day": "2026-01-05", "key_id": "k", "model": "m", "provider": "p",
        "upstream_model": "u", "input_tokens": 1, "output_tokens": 1, "cost_nusd": 0,
        "status": 200, "cached_input_tokens": 0,
    }  # fmt: skip
    rows = [
        {**base, "latency_s": 2.0, "ttft_s": 1.0, "request_id": "a", "cache_hit": False},
        *(
            {**base, "latency_s": 0.001, "ttft_s": 0.001, "request_id": f"h{i}", "cache_hit": True}
            for i in range(3)
        ),
    ]
    with store.transaction() as conn:
        conn.execute(usage_records.insert(), rows)
    (got,) = model_stats(store, date(2026, 1, 1), date(2026, 1, 31))
    assert (got["requests"], got["cache_hits"], got["cache_hit_rate"]) == (4, 3, 0.75)
    assert got["latency_p50_s"] == 2.0 and got["ttft_p50_s"] == 1.0
