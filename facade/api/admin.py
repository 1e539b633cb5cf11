"""/api/v1/admin: keys and usage, for the holder of FACADE_ADMIN_KEY only.

With no admin key configured every route here answers 404, as if it did not exist. The admin
key is compared in constant time, is never a chat key, and a chat key is refused here (401).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from marshmallow import RAISE

from .. import key_admin
from ..envelope import ok_bytes
from ..errors import AuthenticationError, NotFoundError, RateLimitError
from ..keys import bearer_token, constant_time_equal
from ..schemas.admin_bodies import (
    KeyCreatedSchema,
    KeyCreateSchema,
    KeyListQuerySchema,
    KeyListSchema,
    KeySchema,
    KeyUpdateSchema,
    ModelStatsQuerySchema,
    ModelStatsReportSchema,
    UsageQuerySchema,
    UsageReportSchema,
)
from ..telemetry import observe
from .blueprint import BodyParser, EnvelopeBlueprint, error_responses
from .context import gateway
from .throttle import FailureThrottle


class AdminParser(BodyParser):
    """BodyParser that also names query-string fields plainly (`from`, not `query.from`)."""

    def handle_error(self, error, req, schema, **kwargs: Any):
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1 and "query" in messages:
            error.messages = messages["query"]
        return super().handle_error(error, req, schema, **kwargs)


class AdminBlueprint(EnvelopeBlueprint):
    ARGUMENTS_PARSER = AdminParser()


blp = AdminBlueprint(
    "admin",
    __name__,
    url_prefix="/api/v1/admin",
    description="Keys and usage reports; FACADE_ADMIN_KEY only (404 when it is unset).",
)
ERRORS = error_responses(400, 401, 404, 429)


# Failed admin authentications an instance lets through a second (then 429), in all.
ADMIN_FAILURES_PER_S = 10.0


def _throttle() -> FailureThrottle:
    throttle = current_app.extensions.get("facade_admin_throttle")
    if throttle is None:
        share = max(ADMIN_FAILURES_PER_S / gateway().settings.workers, 1.0)
        throttle = current_app.extensions["facade_admin_throttle"] = FailureThrottle(share, share)
    return throttle


@blp.before_request
def require_admin() -> None:
    expected = gateway().settings.admin_key
    if not expected:
        raise NotFoundError("no such endpoint")
    throttle = _throttle()
    wait = throttle.wait_s()
    if wait:
        observe.admin_auth_failed(throttled=True)
        raise RateLimitError(
            "too many failed admin authentications; retry in a moment", retry_after_s=wait
        )
    try:
        token = bearer_token(request.headers.get("Authorization"))
        if not constant_time_equal(token, expected):
            raise AuthenticationError("invalid admin key: this API needs FACADE_ADMIN_KEY")
    except AuthenticationError:
        throttle.failed()
        observe.admin_auth_failed()
        raise


def _with_plaintext(data: dict, status: int) -> Response:
    """The key with its plaintext, in the envelope whose code is the status (201 on create)."""
    body = KeyCreatedSchema().dump(data)
    return Response(ok_bytes(body, status), status=status, mimetype="application/json")


@blp.route("/keys", methods=["POST"])
@blp.arguments(KeyCreateSchema, error_status_code=400)
@blp.response(201, KeyCreatedSchema, description="The key; `key` is its plaintext, shown once.")
@blp.doc(responses=ERRORS)
def create_key(fields: dict) -> Response:
    """Create an API key; the answer holds its plaintext, which is never shown again."""
    view, plaintext = key_admin.create_key(gateway(), fields)
    return _with_plaintext({**view, "key": plaintext}, 201)


@blp.route("/keys", methods=["GET"])
@blp.arguments(KeyListQuerySchema, location="query", unknown=RAISE, error_status_code=400)
@blp.response(200, KeyListSchema)
@blp.doc(responses=ERRORS)
def list_keys(query: dict) -> dict:
    """List keys (config and store) with their spend in the current period."""
    return {"object": "list", "data": key_admin.list_keys(gateway(), query["include_revoked"])}


@blp.route("/keys/<key_id>", methods=["GET"])
@blp.response(200, KeySchema)
@blp.doc(responses=ERRORS)
def get_key(key_id: str) -> dict:
    """Read one key."""
    return key_admin.get_key(gateway(), key_id)


@blp.route("/keys/<key_id>", methods=["PATCH"])
@blp.arguments(KeyUpdateSchema, error_status_code=400)
@blp.response(200, KeySchema)
@blp.doc(responses=ERRORS)
def update_key(changes: dict, key_id: str) -> dict:
    """Change a stored key's name, models, limits, budget, expiry or metadata."""
    return key_admin.update_key(gateway(), key_id, changes)


@blp.route("/keys/<key_id>", methods=["DELETE"])
@blp.response(200, KeySchema)
@blp.doc(responses=ERRORS)
def revoke_key(key_id: str) -> dict:
    """Revoke a stored key: refused at once by every worker and replica."""
    return key_admin.revoke_key(gateway(), key_id)


@blp.route("/keys/<key_id>/rotate", methods=["POST"])
@blp.response(200, KeyCreatedSchema, description="The key; `key` is the new plaintext.")
@blp.doc(responses=ERRORS)
def rotate_key(key_id: str) -> Response:
    """Give a stored key a new plaintext (shown once); the old one stops working."""
    view, plaintext = key_admin.rotate_key(gateway(), key_id)
    return _with_plaintext({**view, "key": plaintext}, 200)


@blp.route("/usage", methods=["GET"])
@blp.arguments(UsageQuerySchema, location="query", unknown=RAISE, error_status_code=400)
@blp.response(200, UsageReportSchema)
@blp.doc(responses=ERRORS)
def usage(query: dict) -> dict:
    """Report requests, tokens and cost by day, key and model (UTC days, both included)."""
    return key_admin.usage_report(
        gateway(),
        query.get("date_from"),
        query.get("date_to"),
        key_id=query.get("key_id"),
        model=query.get("model"),
    )


@blp.route("/usage/models", methods=["GET"])
@blp.arguments(ModelStatsQuerySchema, location="query", unknown=RAISE, error_status_code=400)
@blp.response(200, ModelStatsReportSchema)
@blp.doc(responses=ERRORS)
def model_usage(query: dict) -> dict:
    """Report requests, error rate and latency p50/p95 and time-to-first-token p50 per model."""
    return key_admin.model_report(gateway(), query.get("date_from"), query.get("date_to"))
