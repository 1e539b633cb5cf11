"""What the access line, the metrics and the usage record need to know of one request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Outcome:
    route: str = "unmatched"
    method: str = ""
    request_id: str = ""
    key_name: str | None = None
    key_prefix: str | None = None
    model: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    attempts: int = 0
    status: int = 200
    stream: bool = False  # a stream's relay, not after_request, finishes the request
    error_type: str | None = None
    metrics: dict | None = None
    started: float = 0.0
    finished: bool = False
