"""The pipeline on its own: its plan, fallback, admission and settling, over the live fake
upstream (real HTTP on loopback); no Flask app and no gunicorn."""

from __future__ import annotations

import pytest

from facade.errors import UnavailableError, UpstreamError, UpstreamStatusError
from facade.keys import ApiKey
from facade.outcome import Outcome
from tests.builders import pipeline_over

KEY = ApiKey(id="k", name="team", prefix="sk-team", models=("*",))


@pytest.fixture
def parts(fake):
    with pipeline_over(fake.url) as parts:
        yield parts


def body(model: str, text: str = "hello", **fields) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


def test_the_plan_lists_every_target_in_order(parts):
    pipeline, _ = parts
    plan = pipeline.plan(body("fallback"), KEY)
    assert [(m.name, t.model) for m, t in plan] == [
        ("fallback", "broken+status=500"),
        ("fallback", "healthy"),
    ]
    auto = pipeline.plan(body("auto"), KEY)
    assert [m.name for m, _ in auto] == ["gpt-test", "sim-model"]


def test_a_failing_target_falls_back_to_the_next_and_settles_once(parts, fake):
    pipeline, accounting = parts
    outcome = Outcome(request_id="rid-fallback")
    data = pipeline.complete(body("fallback"), KEY, "rid-fallback", outcome)
    assert data["model"] == "fallback"
    assert data["metrics"]["upstream_model"] == "healthy"
    assert (outcome.attempts, outcome.upstream_model) == (2, "healthy")
    seen = [r["body"]["model"] for r in fake.requests("rid-fallback")]
    assert seen == ["broken+status=500", "healthy"]
    kinds = [entry[0] for entry in accounting.log]
    assert kinds == ["admit", "settle"]  # one admission for both attempts, settled once


def test_the_callers_own_error_does_not_fall_back_and_releases_the_admission(parts, fake):
    pipeline, accounting = parts
    config_model = "gpt-test"
    with pytest.raises(UpstreamStatusError) as caught:
        pipeline.complete(
            body(config_model, "[[fake status=400]]"), KEY, "rid-400", Outcome(request_id="rid-400")
        )
    assert caught.value.status == 400
    assert len(fake.requests("rid-400")) == 1
    assert accounting.log[-1] == ("release", "UpstreamStatusError")


def test_when_every_target_fails_the_last_error_is_raised_and_nothing_is_settled(parts, fake):
    pipeline, accounting = parts
    with pytest.raises(UpstreamError):
        pipeline.complete(
            body("gpt-test", "[[fake status=503]]"), KEY, "rid-503", Outcome(request_id="rid-503")
        )
    assert [entry[0] for entry in accounting.log] == ["admit", "release"]


def test_a_cooling_model_is_503_before_any_admission(fake):
    routing = {"cooldown_s": 60, "failures_to_cool": 1}
    with pipeline_over(fake.url, routing=routing) as (pipeline, accounting):
        with pytest.raises(UpstreamError):
            pipeline.complete(body("gpt-test", "[[fake status=500]]"), KEY, "r1", Outcome())
        with pytest.raises(UnavailableError):
            pipeline.complete(body("gpt-test"), KEY, "r2", Outcome())
        assert [entry[0] for entry in accounting.log] == ["admit", "release"]  # r2 never admitted


def test_an_opened_stream_has_its_first_chunk_and_settles_when_finished(parts):
    pipeline, accounting = parts
    outcome = Outcome(request_id="rid-stream")
    opened = pipeline.open_stream(
        body("gpt-test", "[[fake tokens=3]]", stream=True), KEY, "rid-stream", outcome
    )
    try:
        assert isinstance(opened.first, dict)
        rest = list(opened.rest)
        assert any(c.get("usage") for c in [opened.first, *rest])
    finally:
        opened.rest.close()
    usage = next(c["usage"] for c in [opened.first, *rest] if c.get("usage"))
    metrics = opened.finish(usage, None)
    assert metrics["output_tokens"] == usage["completion_tokens"]
    assert accounting.log[-1][0] == "settle"
    assert outcome.metrics is metrics
