"""The one place where exceptions become error responses.

Our typed errors keep their status and type; werkzeug's HTTP errors (404, 405, 413, ...)
and flask-smorest's 422 are translated to them; anything else is a bug: logged with its
traceback and the request id, answered as a 500 that shows neither.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .. import jsonutil
from ..envelope import fail
from ..errors import (
    FacadeError,
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from .context import over_rate_instead, request_id

log = logging.getLogger("facade.api")

_HTTP_ERRORS = {
    400: (InvalidRequestError, "the request could not be read"),
    404: (NotFoundError, "no such endpoint"),
    405: (MethodNotAllowedError, "method not allowed on this endpoint"),
    413: (RequestTooLargeError, "the request body is larger than this gateway accepts"),
    415: (UnsupportedMediaTypeError, "the body must be JSON"),
    422: (InvalidRequestError, "the request is not valid"),
}


def openai_error_body(err: FacadeError) -> dict:
    """OpenAI's error shape, for the plain /v1 routes that OpenAI SDKs call."""
    return {
        "error": {"message": err.message, "type": err.type, "param": err.param, "code": err.type}
    }


# Anthropic's error types by status (its SDK raises one class per status).
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_body(err: FacadeError, request_id: str | None) -> dict:
    """Anthropic's error shape, for /v1/messages (Anthropic SDKs, Claude Code)."""
    kind = ANTHROPIC_TYPES.get(
        err.status, "api_error" if err.status >= 500 else "invalid_request_error"
    )
    return {
        "type": "error",
        "error": {"type": kind, "message": err.message},
        "request_id": request_id,
    }


def llmstudio_error_body(err: FacadeError, request_id: str | None) -> dict:
    """LLMstudio's engine (FastAPI) answers errors as `{"detail": ...}`; the type and the
    field ride beside it."""
    return {
        "detail": err.message,
        "error": {"type": err.type, "param": err.param},
        "request_id": request_id,
    }


def error_response(err: FacadeError) -> Response:
    err = over_rate_instead(err)
    outcome = g.get("outcome")
    if outcome is not None:
        outcome.error_type = err.type
    path = request.path
    if path.startswith("/v1/messages"):
        body = anthropic_error_body(err, request_id())
    elif path.startswith("/v1/"):
        body = openai_error_body(err)
    elif path.startswith("/api/engine/"):
        body = llmstudio_error_body(err, request_id())
    else:
        body = fail(err, request_id())
    resp = Response(jsonutil.dumps(body), status=err.status, mimetype="application/json")
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


def from_http_exception(exc: HTTPException) -> FacadeError:
    cls, message = _HTTP_ERRORS.get(exc.code or 500, (None, None))
    if cls is None:
        err = FacadeError(exc.description or exc.name)
        err.status = exc.code or 500
        err.type = exc.name.lower().replace(" ", "_")
        return err
    if exc.code == 413:
        limit = request.max_content_length
        message = f"{message} ({limit} bytes)" if limit else message
    if exc.code == 405:
        allowed = sorted(getattr(exc, "valid_methods", None) or ())
        if allowed:
            message = f"{message}; use {', '.join(allowed)}"
            return cls(message, headers={"Allow": ", ".join(allowed)})
    return cls(message)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(FacadeError)
    def _facade(err: FacadeError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        if exc.code == 500:  # Flask wraps bugs raised outside the view (already logged)
            return _internal()
        return error_response(from_http_exception(exc))

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"request_id": request_id()})
        return _internal()


def _internal() -> Response:
    return error_response(InternalError(f"internal error; quote request id {request_id()}"))
