"""The OpenTelemetry side of `facade.telemetry.tracing`, imported only once tracing is on.

Spans are parented explicitly (never through the ambient context), so nothing depends on
which greenlet ends a span: a stream's server span is ended by its relay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..errors import FacadeError
from ..outcome import Outcome

PROPAGATOR = TraceContextTextMapPropagator()
_ROOT = Context()  # an empty context: a span started in it with no remote parent is a root


def _resource(version: str | None) -> Resource:
    """Resources from the OTEL_* environment; service.name "facade" unless one is given."""
    resource = Resource.create({})
    ours: dict[str, str] = {}
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        ours["service.name"] = "facade"
    if version and "service.version" not in resource.attributes:
        ours["service.version"] = version
    return resource.merge(Resource(ours)) if ours else resource


def _exporter(mode: str) -> SpanExporter:
    if mode == "console":  # one JSON object per line, like the logs
        return ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    # OTLP over HTTP/protobuf; endpoint, headers, timeout and TLS from the OTEL_EXPORTER_OTLP_*
    # environment.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


class Tracing:
    """This process's tracer provider, batching spans to one exporter."""

    def __init__(self, mode: str, version: str | None, exporter: SpanExporter | None = None):
        self.provider = TracerProvider(resource=_resource(version))
        self.provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(mode)))
        self.tracer = self.provider.get_tracer("facade")

    def start_request(self, outcome: Outcome, environ: Mapping[str, Any]) -> None:
        context = _ROOT
        traceparent = environ.get("HTTP_TRACEPARENT")
        if traceparent:
            carrier = {"traceparent": traceparent}
            tracestate = environ.get("HTTP_TRACESTATE")
            if tracestate:
                carrier["tracestate"] = tracestate
            context = PROPAGATOR.extract(carrier, _ROOT)
        method, route = outcome.method, outcome.route
        attributes = {"http.request.method": method, "facade.request_id": outcome.request_id}
        if route == "unmatched":
            name = method
        else:
            name = f"{method} {route}"
            attributes["http.route"] = route
        outcome.span = self.tracer.start_span(name, context, SpanKind.SERVER, attributes)

    def start_attempt(
        self, outcome: Outcome, model: Any, target: Any, n: int
    ) -> tuple[Span, dict[str, str] | None]:
        parent = outcome.span
        span = self.tracer.start_span(
            f"upstream {target.provider}",
            set_span_in_context(parent, _ROOT) if parent is not None else _ROOT,
            SpanKind.CLIENT,
            {
                "facade.provider": target.provider,
                "facade.model": model.name,
                "facade.upstream_model": target.model,
                "facade.attempt": n,
            },
        )
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers, set_span_in_context(span, _ROOT))
        return span, headers or None

    def force_flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()  # exports what is queued first


def _error_type(error: BaseException) -> str:
    return error.type if isinstance(error, FacadeError) else type(error).__name__


def end_attempt(span: Span, error: BaseException) -> None:
    error_type = _error_type(error)
    span.set_attribute("error.type", error_type)
    # Our own messages only (they never carry a URL or a key), not an exception's text.
    message = error.message if isinstance(error, FacadeError) else error_type
    span.set_status(Status(StatusCode.ERROR, message))
    span.end()


def answered(outcome: Outcome, span: Span, stream: bool) -> None:
    if stream and outcome.span is not None:
        outcome.upstream_span = span  # the upstream call lasts as long as the relay
    else:
        span.end()


def end_request(outcome: Outcome, status: int) -> None:
    span, upstream = outcome.span, outcome.upstream_span
    outcome.span = outcome.upstream_span = None
    error_type = outcome.error_type
    if upstream is not None:
        if status >= 500 and error_type:  # a stream that broke off (a hang-up is no error)
            upstream.set_attribute("error.type", error_type)
            upstream.set_status(Status(StatusCode.ERROR, error_type))
        upstream.end()
    if span is None:
        return
    if span.is_recording():
        attributes: dict[str, Any] = {
            "http.response.status_code": status,
            "facade.attempts": outcome.attempts,
            "facade.stream": outcome.stream,
        }
        for name, value in (
            ("facade.key_name", outcome.key_name),
            ("facade.model", outcome.model),
            ("facade.provider", outcome.provider),
            ("facade.upstream_model", outcome.upstream_model),
            ("error.type", error_type),
        ):
            if value is not None:
                attributes[name] = value
        metrics = outcome.metrics
        if metrics:
            attributes["gen_ai.usage.input_tokens"] = metrics["input_tokens"]
            attributes["gen_ai.usage.output_tokens"] = metrics["output_tokens"]
            attributes["facade.cost_usd"] = metrics["cost_usd"]
            attributes["facade.time_to_first_token_s"] = metrics["time_to_first_token_s"]
        span.set_attributes(attributes)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()
