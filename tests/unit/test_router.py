"""The router on its own: auto selection, weighted plans, cooldowns; no server, no upstream."""

from __future__ import annotations

import random

import pytest

from facade.config import parse_config
from facade.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    UnavailableError,
    UpstreamError,
)
from facade.keys import ApiKey
from facade.router import Router, needs_of

ANY = ApiKey(id="k", name="k", prefix="k", models=("*",))
USER = [{"role": "user", "content": "hello"}]


def config(**overrides):
    raw = {
        "providers": [{"name": "p", "kind": "simulator"}, {"name": "q", "kind": "simulator"}],
        "models": [
            {
                "name": "cheap",
                "targets": [{"provider": "p", "model": "c"}],
                "input_cost_per_1m": 0.1,
                "output_cost_per_1m": 0.2,
                "context_window": 1000,
                "capabilities": [],
            },
            {
                "name": "dear",
                "targets": [{"provider": "p", "model": "d"}],
                "input_cost_per_1m": 5,
                "output_cost_per_1m": 10,
                "context_window": 100000,
                "capabilities": ["tools", "json", "images"],
            },
            {
                "name": "split",
                "targets": [
                    {"provider": "p", "model": "a", "weight": 3},
                    {"provider": "q", "model": "b", "weight": 1},
                ],
            },
        ],
        "auto": {"candidates": ["dear", "cheap"], "strategy": "priority"},
        "routing": {"cooldown_s": 60, "failures_to_cool": 2},
    }
    raw.update(overrides)
    return parse_config(raw)


def test_a_named_model_is_the_only_candidate_and_unknown_names_are_404():
    router = Router(config())
    assert [m.name for m in router.models_for("cheap", ANY, {"messages": USER})] == ["cheap"]
    with pytest.raises(ModelNotFoundError):
        router.models_for("nope", ANY, {"messages": USER})


def test_a_key_without_the_model_is_refused():
    router = Router(config())
    only_cheap = ApiKey(id="k", name="k", prefix="k", models=("cheap",))
    with pytest.raises(PermissionDeniedError):
        router.models_for("dear", only_cheap, {"messages": USER})
    assert [m.name for m in router.models_for("auto", only_cheap, {"messages": USER})] == ["cheap"]


def test_auto_keeps_priority_order_and_filters_by_needs_and_context():
    router = Router(config())
    assert [m.name for m in router.models_for(None, ANY, {"messages": USER})] == ["dear", "cheap"]
    tools = {"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert [m.name for m in router.models_for("auto", ANY, tools)] == ["dear"]
    long = {"messages": [{"role": "user", "content": "x" * 8000}]}
    assert [m.name for m in router.models_for("auto", ANY, long)] == ["dear"]
    huge = {"messages": [{"role": "user", "content": "x" * 800000}]}
    with pytest.raises(InvalidRequestError):
        router.models_for("auto", ANY, huge)


def test_auto_cheapest_orders_by_price():
    router = Router(config(auto={"candidates": ["dear", "cheap"], "strategy": "cheapest"}))
    assert [m.name for m in router.models_for("auto", ANY, {"messages": USER})] == ["cheap", "dear"]


def test_needs_of_reads_tools_json_and_images():
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}
        ],
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert needs_of(body) == {"tools", "json", "images"}


def test_the_first_target_is_drawn_by_weight_and_the_rest_follow():
    router = Router(config(), rng=random.Random(7))
    model = router.config.models["split"]
    firsts = [router.plan(model)[0].model for _ in range(4000)]
    share = firsts.count("a") / len(firsts)
    assert 0.70 < share < 0.80  # weight 3 of 4
    assert {tuple(t.model for t in router.plan(model)) for _ in range(50)} == {
        ("a", "b"),
        ("b", "a"),
    }


def test_retryable_failures_cool_a_target_and_a_model_with_none_left_is_503():
    router = Router(config())
    model = router.config.models["cheap"]
    target = model.targets[0]
    router.failed(target, UpstreamError("boom"))
    assert router.plan(model) == [target]  # one failure of two
    router.failed(target, UpstreamError("boom"))
    with pytest.raises(UnavailableError):
        router.plan(model)
    assert router.provider_health("p")["cooling_down"] is True


def test_the_callers_own_errors_never_cool_a_target():
    router = Router(config())
    model = router.config.models["cheap"]
    target = model.targets[0]
    not_retryable = UpstreamError("bad request")
    not_retryable.retryable = False
    for _ in range(5):
        router.failed(target, not_retryable)
    assert router.plan(model) == [target]


def test_success_resets_failures_and_feeds_latency():
    router = Router(config())
    model = router.config.models["cheap"]
    target = model.targets[0]
    router.failed(target, UpstreamError("boom"))
    router.succeeded(model, target, 0.5)
    router.failed(target, UpstreamError("boom"))
    assert router.plan(model) == [target]  # the count restarted after the success
    assert router.model_latency["cheap"] == pytest.approx(0.5)
