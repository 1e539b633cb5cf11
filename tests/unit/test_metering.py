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
