"""Tracing with OpenTelemetry: off unless the operator configures an exporter.

On (`FACADE_TRACING=otlp` or `console`, or either standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set), each worker process has its own tracer provider
with a batching exporter (`facade.telemetry.otel`): a server span per request, parented on the
caller's `traceparent`, ended by `observe.finish` (for a stream, when its relay ends), and a
client span per upstream attempt whose context goes upstream as `traceparent`.

Off (the default), nothing of OpenTelemetry is imported and the hot path pays one flag test
per request and per attempt. The caller's own W3C trace context (`traceparent`, with its
`tracestate`) is still passed upstream unchanged when it is well-formed, so a trace that
starts before the gateway continues past it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ModelConfig, TargetConfig
    from ..outcome import Outcome
    from ..settings import Settings

ENABLED = False
_active: Any = None  # the facade.telemetry.otel.Tracing of this process while ENABLED
_otel: ModuleType | None = None  # facade.telemetry.otel, once tracing has been on in this process

# W3C Trace Context (https://www.w3.org/TR/trace-context/), checked as OpenTelemetry's own
# propagator checks it, so a header forwarded while off is one it would accept while on.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_TRACESTATE_MEMBER = re.compile(
    r"[ \t]*(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e][ \t]*"
)
_MAX_TRACEPARENT = 512
_MAX_TRACESTATE = 8192
_MAX_TRACESTATE_MEMBERS = 32


def valid_traceparent(value: str) -> bool:
    match = _TRACEPARENT.fullmatch(value)
    if match is None or len(value) > _MAX_TRACEPARENT:
        return False
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return False
    return trace_id != "0" * 32 and span_id != "0" * 16


def valid_tracestate(value: str) -> bool:
    if len(value) > _MAX_TRACESTATE:
        return False
    members = [m for m in value.split(",") if m.strip(" \t")]
    if len(members) > _MAX_TRACESTATE_MEMBERS:
        return False
    return all(_TRACESTATE_MEMBER.fullmatch(m) for m in members)


def caller_context(environ: Mapping[str, Any]) -> dict[str, str] | None:
    """The caller's W3C trace context headers to pass on unchanged, or None.

    A malformed `traceparent` is dropped with its `tracestate`; a malformed `tracestate`
    alone is dropped (the W3C rule), the `traceparent` kept.
    """
    traceparent = environ.get("HTTP_TRACEPARENT")
    if not traceparent or not valid_traceparent(traceparent):
        return None
    headers = {"traceparent": traceparent}
    tracestate = environ.get("HTTP_TRACESTATE")
    if tracestate and valid_tracestate(tracestate):
        headers["tracestate"] = tracestate
    return headers


def mode_of(settings: Settings) -> str:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "off"
    return settings.tracing


def configure(
    settings: Settings, *, version: str | None = None, exporter: Any = None
) -> Callable[[], None] | None:
    """Set up tracing for this process from `settings`; None when it is off, else the
    function that flushes and shuts it down (chained onto `app.facade_close`).

    `version` is the service.version resource attribute: passed in by the app, so tracing
    never imports the layer above it.
    `exporter`, a span exporter (tests), replaces the configured one and turns tracing on.
    """
    global ENABLED, _active, _otel
    mode = mode_of(settings)
    if exporter is None and mode == "off":
        ENABLED, _active = False, None
        return None
    from . import otel

    tracing = otel.Tracing(mode, version, exporter)
    _otel, _active, ENABLED = otel, tracing, True

    def shutdown() -> None:
        global ENABLED, _active
        if _active is tracing:
            ENABLED, _active = False, None
        tracing.shutdown()

    return shutdown


def force_flush() -> None:
    """Export every ended span now (tests)."""
    if _active is not None:
        _active.force_flush()


def begin(outcome: Outcome, environ: Mapping[str, Any]) -> None:
    """At a request's start: its server span (on), or the caller's context to pass (off)."""
    if ENABLED:
        _active.start_request(outcome, environ)
    elif "HTTP_TRACEPARENT" in environ:
        outcome.trace_headers = caller_context(environ)


def start_attempt(
    outcome: Outcome, model: ModelConfig, target: TargetConfig, n: int
) -> tuple[Any, dict[str, str] | None]:
    """Only while ENABLED: the attempt's client span and the headers that carry it upstream."""
    return _active.start_attempt(outcome, model, target, n)


def end_attempt(span: Any, error: BaseException) -> None:
    """A failed attempt: its span ends with the error."""
    _otel.end_attempt(span, error)


def answered(outcome: Outcome, span: Any, *, stream: bool) -> None:
    """The attempt that answered. A stream's span stays open until the relay ends."""
    _otel.answered(outcome, span, stream)


def end_request(outcome: Outcome, status: int) -> None:
    """From observe.finish, once per request that has a span: fill in and end it."""
    _otel.end_request(outcome, status)
