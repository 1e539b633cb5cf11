"""What operators see of each request: Prometheus metrics and one JSON access line.

Every request ends here exactly once (`finish`): ordinary responses from `after_request`,
streams when the relay ends. Labels carry only bounded values: the matched route pattern,
a configured model or provider name, a status code. Never a key, a prompt, or whatever
model string a client sent.
"""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from ..outcome import Outcome
from . import tracing

access_log = logging.getLogger("facade.access")
prompt_log = logging.getLogger("facade.prompts")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "facade_requests_total",
    "Requests answered, by route, model, provider and HTTP status.",
    ["route", "model", "provider", "status"],
)
DURATION = Histogram(
    "facade_request_duration_seconds",
    "Time from the request's arrival to its last byte (streams: to [DONE]).",
    ["route", "model", "status"],
    buckets=_LATENCY_BUCKETS,
)
TTFT = Histogram(
    "facade_time_to_first_token_seconds",
    "Time from the request's arrival to the first generated token.",
    ["model", "provider"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "facade_tokens_total",
    "Tokens metered, by model, provider and direction (input or output).",
    ["model", "provider", "direction"],
)
COST = Counter(
    "facade_cost_usd_total", "Cost in US dollars at the configured prices.", ["model", "provider"]
)
UPSTREAM_ERRORS = Counter(
    "facade_upstream_errors_total",
    "Failed upstream attempts (fallbacks included), by provider and error type.",
    ["provider", "type"],
)
REJECTIONS = Counter(
    "facade_rejections_total",
    "Requests refused by a key's limits, by reason (rate_limit_exceeded, budget_exceeded).",
    ["reason"],
)
ADMIN_AUTH_FAILURES = Counter(
    "facade_admin_auth_failures",
    "Admin API requests refused for a missing or wrong admin key (401), or throttled (429).",
    ["outcome"],
)
CACHE_REQUESTS = Counter(
    "facade_cache_requests_total",
    "Requests the response cache applied to, by result: hit, miss, or skip (bypassed by the "
    "request's Cache-Control).",
    ["result"],
)
CACHE_SAVED = Counter(
    "facade_cache_saved_usd_total",
    "US dollars not spent thanks to cache hits, at the cost of the answers they repeated.",
)
IN_FLIGHT = Gauge(
    "facade_requests_in_flight",
    "Requests being answered now, streams included.",
    multiprocess_mode="livesum",
)
# Set by every worker's probe every few seconds: the most recent answer of a live worker.
DEPENDENCY_UP = Gauge(
    "facade_dependency_up",
    "Whether a shared store (postgresql, sqlite, redis) answers this instance: 1 up, 0 down.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)


_children: dict = {}


def _child(metric, *values: str):
    """`metric.labels(*values)`, memoised: label values are bounded by design (routes,
    configured models and providers, statuses), and labels() costs a lock and checks."""
    key = (id(metric), values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def start(outcome: Outcome) -> None:
    IN_FLIGHT.inc()
    outcome.started = time.perf_counter()


def admin_auth_failed(throttled: bool = False) -> None:
    _child(ADMIN_AUTH_FAILURES, "throttled" if throttled else "refused").inc()


def dependency_up(name: str, up: bool) -> None:
    _child(DEPENDENCY_UP, name).set(1 if up else 0)


def upstream_failed(provider: str, error_type: str) -> None:
    _child(UPSTREAM_ERRORS, provider, error_type).inc()


def finish(outcome: Outcome, status: int, *, log: bool = True) -> None:
    """Count and log one request, once."""
    if outcome.finished:
        return
    outcome.finished = True
    IN_FLIGHT.dec()
    duration = time.perf_counter() - outcome.started
    model = outcome.model or "none"
    provider = outcome.provider or "none"
    code = str(status)
    _child(REQUESTS, outcome.route, model, provider, code).inc()
    _child(DURATION, outcome.route, model, code).observe(duration)
    if outcome.attempts == 0 and outcome.error_type in ("rate_limit_exceeded", "budget_exceeded"):
        _child(REJECTIONS, outcome.error_type).inc()  # the key's limits, not an upstream's 429
    metrics = outcome.metrics
    if metrics:
        _child(TTFT, model, provider).observe(metrics["time_to_first_token_s"])
        _child(TOKENS, model, provider, "input").inc(metrics["input_tokens"])
        _child(TOKENS, model, provider, "output").inc(metrics["output_tokens"])
        _child(COST, model, provider).inc(metrics["cost_usd"])
    if outcome.cache is not None:
        _child(CACHE_REQUESTS, outcome.cache).inc()
        if outcome.cache_saved_usd and status == 200:
            CACHE_SAVED.inc(outcome.cache_saved_usd)
    if log:
        access_log.info("request", extra=access_fields(outcome, status, duration))
    if outcome.prompt is not None:  # FACADE_LOG_PROMPTS is on
        prompt_log.info(
            "prompt",
            extra={
                "request_id": outcome.request_id,
                "prompt": outcome.prompt,
                "completion": outcome.completion,
            },
        )
    if outcome.span is not None:
        tracing.end_request(outcome, status)


def access_fields(outcome: Outcome, status: int, duration: float) -> dict:
    fields = {
        "request_id": outcome.request_id,
        "server_request_id": outcome.server_request_id,
        "client_request_id": outcome.client_request_id,
        "method": outcome.method,
        "route": outcome.route,
        "status": status,
        "latency_s": round(duration, 6),
        "key_name": outcome.key_name,
        "key_prefix": outcome.key_prefix,
        "model": outcome.model,
        "provider": outcome.provider,
        "upstream_model": outcome.upstream_model,
        "attempts": outcome.attempts,
        "stream": outcome.stream,
    }
    if outcome.error_type:
        fields["error_type"] = outcome.error_type
    if outcome.cache is not None:
        fields["cache"] = outcome.cache
    metrics = outcome.metrics
    if metrics:
        fields.update(
            time_to_first_token_s=metrics["time_to_first_token_s"],
            input_tokens=metrics["input_tokens"],
            output_tokens=metrics["output_tokens"],
            cost_usd=metrics["cost_usd"],
        )
    return fields


def exposition() -> tuple[bytes, str]:
    """The /metrics body: every worker's metrics when gunicorn runs several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
