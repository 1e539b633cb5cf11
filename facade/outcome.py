"""What the access line, the metrics and the usage record need to know of one request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcome:
    route: str = "unmatched"
    method: str = ""
    request_id: str = ""  # what the caller sees: its own X-Request-ID, else the server's id
    server_request_id: str = ""  # made here, unique: the usage row's key
    client_request_id: str | None = None  # the caller's X-Request-ID, if it sent a sane one
    key_name: str | None = None
    key_prefix: str | None = None
    model: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    attempts: int = 0
    # Admission ran (and with it the exact rpm count): a refusal after it is not the
    # put-off rpm pre-check's to replace (see api/context.py, refuse_over_rate).
    admission_tried: bool = False
    session_id: str | None = None  # a client's conversation id (LLMstudio), kept on usage rows
    status: int = 200
    stream: bool = False  # a stream's relay, not after_request, finishes the request
    error_type: str | None = None
    metrics: dict | None = None
    # The response cache: the request's Cache-Control header, and what the cache did
    # ("hit", "miss", "skip"; None when it does not apply), sent back as X-Cache.
    cache_control: str | None = None
    cache: str | None = None
    cache_saved_usd: float = 0.0  # a hit: what its original answer cost
    started: float = 0.0
    finished: bool = False
    # Only with FACADE_LOG_PROMPTS on: what was asked and answered, for the prompt log line.
    prompt: list | str | None = None
    completion: list | None = None
    # Tracing (facade/telemetry/tracing.py). The request's server span and the answering attempt's
    # span while a stream runs, both ended by observe.finish; None while tracing is off.
    span: Any = None
    upstream_span: Any = None
    # W3C trace context sent upstream while tracing is off: the caller's own, if well-formed.
    trace_headers: dict[str, str] | None = None
