"""Tracing: W3C trace context passed upstream when off; spans per request and attempt when on.

The app runs in-process over the live fake upstream; what the upstream received is read back
from the fake. With tracing on, spans go to the SDK's in-memory exporter through the same
batching processor the workers use (flushed before each look).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from facade.settings import Settings
from facade.telemetry import tracing
from tests.support import ROOT, TEAM_KEY

URL = "/api/v1/chat/completions"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def chat(client, auth, model="gpt-test", *, headers=None, **extra):
    rid = f"trace-{uuid.uuid4().hex}"
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    resp = client.post(URL, json=body, headers={**auth, "X-Request-ID": rid, **(headers or {})})
    return rid, resp


def upstream_headers(fake, rid) -> list[dict]:
    return [r["headers"] for r in fake.requests(rid)]


# -- off (the default): the caller's own context passes through --------------------------


def test_off_by_default():
    assert Settings.from_env({}).tracing == "off"
    assert not tracing.ENABLED


def test_caller_trace_context_goes_upstream_unchanged(client, auth, fake):
    rid, resp = chat(client, auth, headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    assert resp.status_code == 200
    [headers] = upstream_headers(fake, rid)
    assert headers["traceparent"] == TRACEPARENT
    assert headers["tracestate"] == TRACESTATE


def test_caller_context_reaches_every_attempt_and_streams_and_embeddings(client, auth, fake):
    rid, resp = chat(client, auth, "fallback", headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 200
    sent = upstream_headers(fake, rid)
    assert len(sent) == 2  # the failing target, then the fallback
    assert all(h["traceparent"] == TRACEPARENT and "tracestate" not in h for h in sent)

    rid, resp = chat(client, auth, stream=True, headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 200 and resp.get_data().endswith(b"data: [DONE]\n\n")
    assert [h["traceparent"] for h in upstream_headers(fake, rid)] == [TRACEPARENT]

    rid = f"trace-{uuid.uuid4().hex}"
    resp = client.post(
        "/api/v1/embeddings",
        json={"model": "gpt-test", "input": "x"},
        headers={**auth, "X-Request-ID": rid, "traceparent": TRACEPARENT},
    )
    assert resp.status_code == 200
    assert [h["traceparent"] for h in upstream_headers(fake, rid)] == [TRACEPARENT]


def test_no_trace_context_upstream_when_the_caller_sent_none(client, auth, fake):
    rid, resp = chat(client, auth)
    assert resp.status_code == 200
    [headers] = upstream_headers(fake, rid)
    assert "traceparent" not in headers and "tracestate" not in headers


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01",  # upper-case hex
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # invalid trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # invalid parent id
        f"ff-{TRACE_ID}-{CALLER_SPAN}-01",  # forbidden version
        f"00-{TRACE_ID}-{CALLER_SPAN}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID[:-1]}-{CALLER_SPAN}-01",  # short trace id
        f"00-{TRACE_ID}-{CALLER_SPAN}-1",
        "",
    ],
)
def test_malformed_traceparent_is_not_forwarded(client, auth, fake, bad):
    rid, resp = chat(client, auth, headers={"traceparent": bad, "tracestate": TRACESTATE})
    assert resp.status_code == 200
    [headers] = upstream_headers(fake, rid)
    assert "traceparent" not in headers and "tracestate" not in headers


def test_a_future_version_is_forwarded_and_a_malformed_tracestate_dropped(client, auth, fake):
    future = f"cc-{TRACE_ID}-{CALLER_SPAN}-01-what-the-future-holds"
    rid, _ = chat(client, auth, headers={"traceparent": future, "tracestate": "UPPER=case"})
    [headers] = upstream_headers(fake, rid)
    assert headers["traceparent"] == future
    assert "tracestate" not in headers  # dropped alone: the traceparent still goes


def test_off_imports_nothing_of_opentelemetry(tmp_path):
    """No cost when off: a request end to end never imports the SDK (a fresh interpreter)."""
    script = f"""
import sys
from facade import create_app
from facade.settings import Settings
app = create_app(settings=Settings.from_env({{}}, database_url="sqlite:///{tmp_path}/f.db"))
resp = app.test_client().post(
    "/api/v1/chat/completions",
    headers={{"Authorization": "Bearer sk-demo", "traceparent": "{TRACEPARENT}"}},
    json={{"model": "demo", "messages": [{{"role": "user", "content": "hi"}}], "max_tokens": 2}},
)
assert resp.status_code == 200, resp.get_data()
app.facade_close()
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
assert not loaded, loaded
print("OK")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACADE_", "OTEL_"))}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stderr[-3000:]


def test_settings_turn_tracing_on():
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert Settings.from_env(endpoint).tracing == "otlp"
    traces = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}
    assert Settings.from_env(traces).tracing == "otlp"
    assert Settings.from_env({**endpoint, "FACADE_TRACING": "off"}).tracing == "off"
    assert Settings.from_env({"FACADE_TRACING": "Console"}).tracing == "console"
    with pytest.raises(ValueError, match="FACADE_TRACING"):
        Settings.from_env({"FACADE_TRACING": "jaeger"})


# -- on: spans ----------------------------------------------------------------------------


class Spans:
    def __init__(self, exporter: InMemorySpanExporter):
        self.exporter = exporter

    def all(self):
        tracing.force_flush()
        return list(self.exporter.get_finished_spans())

    def of(self, rid: str):
        """The server span of request `rid` and its attempt spans, in order."""
        spans = self.all()
        [server] = [s for s in spans if s.attributes.get("facade.request_id") == rid]
        attempts = [s for s in spans if s.parent and s.parent.span_id == server.context.span_id]
        return server, sorted(attempts, key=lambda s: s.attributes["facade.attempt"])


@pytest.fixture
def spans(app):
    exporter = InMemorySpanExporter()
    shutdown = tracing.configure(Settings.from_env({}), exporter=exporter)
    assert tracing.ENABLED
    yield Spans(exporter)
    shutdown()
    assert not tracing.ENABLED


def _hex_trace(span) -> str:
    return f"{span.context.trace_id:032x}"


def _hex_span(span) -> str:
    return f"{span.context.span_id:016x}"


def parent_of(traceparent: str) -> tuple[str, str]:
    """(trace id, parent id) of a sampled version-00 traceparent."""
    version, trace_id, parent, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled (03 adds W3C's random flag)
    return trace_id, parent


def test_a_server_span_per_request_and_a_client_span_per_attempt(client, auth, fake, spans):
    rid, resp = chat(client, auth, headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    assert resp.status_code == 200
    metrics = resp.get_json()["data"]["metrics"]
    server, [attempt] = spans.of(rid)

    assert server.name == "POST /api/v1/chat/completions"
    assert server.kind == SpanKind.SERVER
    assert server.status.status_code == StatusCode.UNSET
    assert _hex_trace(server) == TRACE_ID  # parented on the caller's traceparent
    assert server.parent.span_id == int(CALLER_SPAN, 16) and server.parent.is_remote
    attrs = dict(server.attributes)
    assert attrs == {
        "http.request.method": "POST",
        "http.route": "/api/v1/chat/completions",
        "http.response.status_code": 200,
        "facade.request_id": rid,
        "facade.model": "gpt-test",
        "facade.provider": "fake",
        "facade.upstream_model": "up-model",
        "facade.key_name": "team",
        "facade.attempts": 1,
        "facade.stream": False,
        "gen_ai.usage.input_tokens": metrics["input_tokens"],
        "gen_ai.usage.output_tokens": metrics["output_tokens"],
        "facade.cost_usd": metrics["cost_usd"],
        "facade.time_to_first_token_s": metrics["time_to_first_token_s"],
    }
    assert metrics["input_tokens"] > 0 and metrics["output_tokens"] > 0
    assert all(TEAM_KEY not in str(v) for s in spans.all() for v in s.attributes.values())

    assert attempt.name == "upstream fake"
    assert attempt.kind == SpanKind.CLIENT
    assert attempt.status.status_code == StatusCode.UNSET
    assert dict(attempt.attributes) == {
        "facade.provider": "fake",
        "facade.model": "gpt-test",
        "facade.upstream_model": "up-model",
        "facade.attempt": 1,
    }
    assert attempt.start_time >= server.start_time and attempt.end_time <= server.end_time

    # Upstream: the caller's trace, with the attempt span as parent, and the caller's state.
    [headers] = upstream_headers(fake, rid)
    assert parent_of(headers["traceparent"]) == (TRACE_ID, _hex_span(attempt))
    assert headers["tracestate"] == TRACESTATE


def test_a_fallback_gives_two_attempt_spans_the_first_failed(client, auth, fake, spans):
    rid, resp = chat(client, auth, "fallback", headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 200
    server, [first, second] = spans.of(rid)
    assert server.attributes["facade.attempts"] == 2
    assert server.status.status_code == StatusCode.UNSET

    assert first.attributes["facade.attempt"] == 1
    assert first.attributes["facade.upstream_model"] == "broken+status=500"
    assert first.attributes["error.type"] == "upstream_error"
    assert first.status.status_code == StatusCode.ERROR
    assert "500" in first.status.description
    assert second.attributes["facade.attempt"] == 2
    assert second.attributes["facade.upstream_model"] == "healthy"
    assert "error.type" not in second.attributes
    assert second.status.status_code == StatusCode.UNSET
    assert first.end_time <= second.start_time

    sent = [parent_of(h["traceparent"]) for h in upstream_headers(fake, rid)]
    assert sent == [(TRACE_ID, _hex_span(s)) for s in (first, second)]


def test_without_a_caller_context_the_request_starts_a_trace(client, auth, fake, spans):
    rid, resp = chat(client, auth)
    assert resp.status_code == 200
    server, [attempt] = spans.of(rid)
    assert server.parent is None
    assert _hex_trace(attempt) == _hex_trace(server)
    [headers] = upstream_headers(fake, rid)
    assert parent_of(headers["traceparent"]) == (_hex_trace(server), _hex_span(attempt))
    assert "tracestate" not in headers


def test_a_stream_span_ends_with_the_stream_and_carries_tokens(client, auth, fake, spans):
    rid, resp = chat(
        client,
        auth,
        "gpt-test",
        stream=True,
        stream_options={"include_usage": True},
        headers={"traceparent": TRACEPARENT},
    )
    assert resp.status_code == 200
    assert not [s for s in spans.all() if s.kind == SpanKind.SERVER]  # still streaming
    body = resp.get_data()
    resp.close()
    assert body.endswith(b"data: [DONE]\n\n")
    server, [attempt] = spans.of(rid)
    assert server.attributes["facade.stream"] is True
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["gen_ai.usage.input_tokens"] > 0
    assert server.attributes["gen_ai.usage.output_tokens"] > 0
    assert server.attributes["facade.cost_usd"] > 0
    # The attempt span covers the upstream call, which lasts as long as the relay.
    assert attempt.status.status_code == StatusCode.UNSET
    assert attempt.end_time <= server.end_time
    [headers] = upstream_headers(fake, rid)
    assert parent_of(headers["traceparent"]) == (TRACE_ID, _hex_span(attempt))


def test_a_stream_that_breaks_off_marks_both_spans(client, auth, fake, spans):
    rid = f"trace-{uuid.uuid4().hex}"
    body = {
        "model": "gpt-test",
        "stream": True,
        "messages": [{"role": "user", "content": "hi [[fake cut=3]]"}],
    }
    resp = client.post(URL, json=body, headers={**auth, "X-Request-ID": rid})
    assert resp.status_code == 200
    assert b'"success":false' in resp.get_data()  # the error event after the 200
    server, [attempt] = spans.of(rid)
    assert server.attributes["http.response.status_code"] == 502
    assert server.attributes["error.type"] == "upstream_error"
    assert server.status.status_code == StatusCode.ERROR
    assert attempt.status.status_code == StatusCode.ERROR
    assert attempt.attributes["error.type"] == "upstream_error"


def test_errors_and_other_routes_get_spans_probes_do_not(client, auth, spans):
    resp = client.post(URL, json={"model": "gpt-test", "messages": []})
    assert resp.status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/nowhere").status_code == 404
    servers = [s for s in spans.all() if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /api/v1/chat/completions", "GET"]
    unauthorized, unmatched = servers
    assert unauthorized.attributes["http.response.status_code"] == 401
    assert unauthorized.attributes["error.type"] == "authentication_error"
    assert "facade.key_name" not in unauthorized.attributes
    assert unauthorized.status.status_code == StatusCode.UNSET  # a 4xx is the caller's
    assert "http.route" not in unmatched.attributes
    assert not [s for s in spans.all() if s.kind == SpanKind.CLIENT]


def test_a_caller_that_samples_out_still_propagates(client, auth, fake, spans):
    unsampled = f"00-{TRACE_ID}-{CALLER_SPAN}-00"
    rid, resp = chat(client, auth, headers={"traceparent": unsampled})
    assert resp.status_code == 200
    assert not spans.all()  # parent-based sampling: the caller decided
    [headers] = upstream_headers(fake, rid)
    version, trace_id, parent, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert parent != CALLER_SPAN and parent != "0" * 16
