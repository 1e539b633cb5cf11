"""Metrics arithmetic: exact costs, and no division by zero on odd calls."""

from __future__ import annotations

import pytest

from facade.metering import Meter, usage_tokens
from tests.builders import model_config

MODEL = model_config("m", input_cost_per_1m=0.5, output_cost_per_1m=1.5, context_window=16385)


def test_cost_uses_prices_per_million():
    assert MODEL.cost_usd(1_000_000, 1_000_000) == pytest.approx(2.0)
    assert MODEL.cost_usd(1000, 500) == pytest.approx(0.00125)


def test_non_streaming_ttft_equals_latency():
    meter = Meter()
    meter.start -= 2.0
    m = meter.metrics(MODEL, "p", "up", 10, 20)
    assert m["time_to_first_token_s"] == m["latency_s"] >= 2.0
    assert m["inter_token_latency_s"] == 0.0
    assert m["tokens_per_second"] == pytest.approx(20 / m["latency_s"], rel=1e-3)
    assert m["total_tokens"] == 30 and m["provider"] == "p" and m["upstream_model"] == "up"


def test_streaming_pace():
    meter = Meter()
    meter.content()
    meter.first = meter.start + 0.5
    meter.last = meter.start + 1.5
    meter.end = meter.start + 1.6
    m = meter.metrics(MODEL, "p", "up", 1, 11)
    assert m["time_to_first_token_s"] == pytest.approx(0.5)
    assert m["inter_token_latency_s"] == pytest.approx(0.1)
    assert m["tokens_per_second"] == pytest.approx(10.0)


@pytest.mark.parametrize("output", [0, 1])
def test_zero_and_one_token_and_zero_time(output):
    meter = Meter()
    meter.end = meter.start
    m = meter.metrics(MODEL, "p", "up", 0, output)
    assert m["tokens_per_second"] == 0.0 and m["inter_token_latency_s"] == 0.0
    assert m["cost_usd"] == pytest.approx(MODEL.cost_usd(0, output))


def test_usage_tokens_rejects_odd_usage():
    assert usage_tokens({"prompt_tokens": 3, "completion_tokens": 4}) == (3, 4)
    assert usage_tokens(None) is None
    assert usage_tokens({"prompt_tokens": "3", "completion_tokens": 4}) is None
    assert usage_tokens({"prompt_tokens": -1, "completion_tokens": 4}) is None
    assert usage_tokens({"prompt_tokens": True, "completion_tokens": 4}) is None


def test_cached_and_cache_write_input_are_priced_apart():
    from tests.builders import model_config

    claude = model_config(
        "c",
        input_cost_per_1m=3.0,
        cached_input_cost_per_1m=0.3,
        cache_write_input_cost_per_1m=3.75,
        output_cost_per_1m=15.0,
    )
    # 1000 input tokens in all: 200 read from the cache, 300 written to it, 500 plain.
    assert claude.cost_usd(1000, 100, cached=200, cache_write=300) == pytest.approx(
        (500 * 3.0 + 200 * 0.3 + 300 * 3.75 + 100 * 15.0) / 1e6, abs=1e-15
    )
    meter = Meter()
    m = meter.metrics(claude, "p", "up", 1000, 100, 1, (200, 300, 0))
    assert (m["cached_input_tokens"], m["cache_write_input_tokens"], m["cache_hit"]) == (
        200,
        300,
        False,
    )
    assert m["cost_usd"] == pytest.approx(0.004185, abs=1e-12)


def test_cache_prices_default_to_the_input_price():
    assert (MODEL.cached_input_cost_per_1m, MODEL.cache_write_input_cost_per_1m) == (0.5, 0.5)
    assert MODEL.cost_usd(100, 0, cached=40) == MODEL.cost_usd(100, 0)


def test_usage_details_read_and_clamp_the_details_objects():
    from facade.metering import usage_details, usage_of

    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20},
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
    assert usage_details(usage, 100, 50) == (30, 20, 40)
    assert usage_details({"prompt_tokens": 1, "completion_tokens": 1}, 1, 1) == (0, 0, 0)
    odd = {"prompt_tokens_details": {"cached_tokens": 500, "cache_write_tokens": "x"}}
    assert usage_details({**odd, "completion_tokens_details": None}, 100, 50) == (100, 0, 0)
    both = {"prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 80}}
    assert usage_details(both, 100, 50) == (80, 20, 0)  # never more than the input
    metrics = Meter().metrics(MODEL, "p", "up", 100, 50, 1, (30, 20, 40))
    assert usage_of(metrics) == {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20},
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
