"""The envelope is built in one place; these pin its exact shape."""

from __future__ import annotations

import orjson

from facade import envelope
from facade.errors import BudgetExceededError, RateLimitError, UpstreamStatusError


def test_ok_shape():
    assert envelope.ok({"x": 1}) == {
        "success": True,
        "code": "200",
        "message": "successful",
        "data": {"x": 1},
    }
    assert envelope.ok(None, 201)["code"] == "201"


def test_fail_shape_carries_type_param_and_request_id():
    err = BudgetExceededError("the key's monthly budget is spent")
    assert envelope.fail(err, "rid-1") == {
        "success": False,
        "code": "429",
        "message": "the key's monthly budget is spent",
        "data": {"error": {"type": "budget_exceeded", "param": None}, "request_id": "rid-1"},
    }


def test_events_are_one_data_line_and_a_blank_line():
    event = envelope.ok_event({"id": "c1"})
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert event.count(b"\n") == 2
    assert orjson.loads(event[6:])["data"] == {"id": "c1"}
    assert envelope.DONE_EVENT == b"data: [DONE]\n\n"


def test_rate_limit_sets_retry_after_rounded_up():
    assert RateLimitError("slow down", retry_after_s=0.2).headers == {"Retry-After": "1"}
    assert RateLimitError("slow down", retry_after_s=12.1).headers == {"Retry-After": "13"}


def test_upstream_4xx_keeps_status_and_type():
    err = UpstreamStatusError(400, "context too long")
    assert (err.status, err.type, err.retryable) == (400, "invalid_request_error", False)
    assert UpstreamStatusError(429, "busy", retry_after_s=3).retryable
