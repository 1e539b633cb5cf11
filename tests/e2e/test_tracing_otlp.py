"""Tracing end to end: gunicorn with gevent workers exports OTLP/HTTP to a collector.

The collector is a tiny HTTP server in the test that records each POST to /v1/traces and
decodes its protobuf body with the OTLP message classes. Tracing is switched on the way an
operator would: only `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support import TEAM_KEY, base_config, start_gunicorn

CHAT = "/api/v1/chat/completions"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


class Collector:
    """Records OTLP/HTTP trace exports: (path, content type, decoded request)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, ExportTraceServiceRequest]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                collector.posts.append((self.path, self.headers.get("Content-Type"), message))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[dict, object]]:
        """(resource attributes, span) of everything received."""
        out = []
        for _path, _type, message in self.posts:
            for resource_spans in message.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out

    def wait(self, until, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return True
            time.sleep(0.05)
        return until()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    collector = Collector()
    yield collector
    collector.close()


def _chat(server, rid: str) -> requests.Response:
    return requests.post(
        server.url + CHAT,
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        headers={
            "Authorization": f"Bearer {TEAM_KEY}",
            "X-Request-ID": rid,
            "traceparent": TRACEPARENT,
        },
        timeout=10,
    )


def test_gunicorn_exports_spans_over_otlp_http(tmp_path, fake, collector):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    server = start_gunicorn(tmp_path, base_config(fake.url), env=env)
    try:
        rid = f"otlp-{uuid.uuid4().hex}"
        assert _chat(server, rid).status_code == 200
        wanted = {"POST /api/v1/chat/completions", "upstream fake"}
        assert collector.wait(lambda: wanted <= {span.name for _, span in collector.spans()})
    finally:
        server.stop()
    assert collector.posts
    assert {(path, ctype) for path, ctype, _ in collector.posts} == {
        ("/v1/traces", "application/x-protobuf")
    }
    spans = {span.name: (resource, span) for resource, span in collector.spans()}
    resource, request_span = spans["POST /api/v1/chat/completions"]
    _, attempt_span = spans["upstream fake"]
    assert resource["service.name"] == "facade"
    assert request_span.trace_id.hex() == TRACE_ID  # the caller's trace
    assert attempt_span.trace_id.hex() == TRACE_ID
    assert attempt_span.parent_span_id == request_span.span_id
    attributes = {a.key: a.value for a in request_span.attributes}
    assert attributes["facade.request_id"].string_value == rid
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["gen_ai.usage.output_tokens"].int_value > 0
    # The upstream saw the attempt span as its parent, in the caller's trace.
    [sent] = fake.requests(rid)
    assert sent["headers"]["traceparent"].split("-")[1:3] == [
        TRACE_ID,
        attempt_span.span_id.hex(),
    ]


def test_sigterm_flushes_the_spans_still_batched(tmp_path, fake, collector):
    # A schedule far longer than the test: only the shutdown flush can export these spans.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    server = start_gunicorn(tmp_path, base_config(fake.url), env=env)
    try:
        rid = f"otlp-{uuid.uuid4().hex}"
        assert _chat(server, rid).status_code == 200
        time.sleep(0.5)
        assert not collector.posts  # still in the worker's batch
    finally:
        assert server.stop(signal.SIGTERM) == 0
    assert collector.wait(lambda: collector.posts, timeout=5)
    received = collector.spans()
    assert any(span.name == "POST /api/v1/chat/completions" for _, span in received)
    assert all(ctype == "application/x-protobuf" for _, ctype, _ in collector.posts)
    ids = {
        a.value.string_value
        for _, span in received
        for a in span.attributes
        if a.key == "facade.request_id"
    }
    assert rid in ids
